//! How links are set up: ICE servers, privacy, failure detection.

use std::time::Duration;

use ::rtc::peer_connection::configuration::setting_engine::{SettingEngine, SettingEngineBuilder};
use ::rtc::peer_connection::transport::RTCDtlsRole;

use super::RtcError;
use super::prediction::IceCredentials;

/// A STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: String,
    /// TURN password.
    pub credential: String,
}

impl IceServer {
    /// Reads one server from the form users and scripts write (kept stable):
    /// - `stun:HOST:PORT`;
    /// - `turn://USER:PASSWORD@HOST:PORT`, `turns://…` for TLS, either with `?transport=tcp`
    ///   or `?transport=udp`.
    ///
    /// TURN needs credentials; the user name may not contain `:` nor the password `@`.
    pub fn parse(url: &str) -> Result<Self, RtcError> {
        let bad = |reason: &str| RtcError::IceServer {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let host_port = |at: &str| -> Result<(), RtcError> {
            let (host, port) = at
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            if host.is_empty() || host.contains(['/', '@', ' ']) {
                return Err(bad("no host"));
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok(()),
                _ => Err(bad("the port is not a number from 1 to 65535")),
            }
        };
        if let Some(rest) = url.strip_prefix("stun:") {
            host_port(rest.trim_start_matches("//"))?;
            return Ok(Self {
                urls: vec![format!("stun:{}", rest.trim_start_matches("//"))],
                username: String::new(),
                credential: String::new(),
            });
        }
        let (scheme, rest) = url
            .strip_prefix("turn://")
            .map(|r| ("turn", r))
            .or_else(|| url.strip_prefix("turns://").map(|r| ("turns", r)))
            .ok_or_else(|| bad("expected stun:HOST:PORT or turn(s)://USER:PASSWORD@HOST:PORT"))?;
        let (credentials, address) = rest
            .rsplit_once('@')
            .ok_or_else(|| bad("TURN needs USER:PASSWORD@ before the host"))?;
        let (username, credential) = credentials
            .split_once(':')
            .filter(|(u, p)| !u.is_empty() && !p.is_empty())
            .ok_or_else(|| bad("TURN needs USER:PASSWORD@ before the host"))?;
        let (at, query) = match address.split_once('?') {
            Some((at, query)) => (at, Some(query)),
            None => (address, None),
        };
        host_port(at)?;
        let transport = match query {
            None => String::new(),
            Some(q @ ("transport=tcp" | "transport=udp")) => format!("?{q}"),
            Some(_) => return Err(bad("the only option is ?transport=tcp or ?transport=udp")),
        };
        Ok(Self {
            urls: vec![format!("{scheme}:{at}{transport}")],
            username: username.to_owned(),
            credential: credential.to_owned(),
        })
    }
}

/// Settings shared by every link of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// Use TURN relays only: peers never learn this device's own addresses.
    pub relay_only: bool,
    /// Local UDP addresses to gather on (`0.0.0.0:0` = every interface, any port).
    pub bind: Vec<String>,
    /// A link that delivers nothing for this long is reported stalled.
    pub stall_window: Duration,
    /// Packets waiting to be forwarded to the children; a packet that finds the queue full is
    /// dropped.
    pub child_queue: usize,
    /// Pause between ICE connectivity checks. webrtc-rs waits 200 ms; a check that runs
    /// before the peer's candidates arrive then costs 200 ms of first audio. RFC 8445 paces
    /// checks at 50 ms.
    pub ice_check_interval: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            relay_only: false,
            bind: vec!["0.0.0.0:0".to_owned()],
            stall_window: Duration::from_millis(300),
            child_queue: 64,
            ice_check_interval: Duration::from_millis(50),
        }
    }
}

impl LinkConfig {
    /// Whether a TURN server is configured (what `relay_only` needs to connect at all).
    pub fn has_turn(&self) -> bool {
        self.ice_servers
            .iter()
            .any(|s| s.urls.iter().any(|u| u.starts_with("turn")))
    }

    /// Loopback only: for tests and single-machine demos.
    pub fn loopback() -> Self {
        Self {
            bind: vec!["127.0.0.1:0".to_owned()],
            ..Self::default()
        }
    }

    /// The webrtc-rs settings every link runs with; `credentials` are the link's own ICE
    /// credentials when they must be known in advance (a parent answering: see
    /// `rtc::prediction`), random without.
    pub(crate) fn setting_engine(&self, credentials: Option<IceCredentials>) -> SettingEngine {
        // The same ~1.4 s budget of attempts per candidate pair as webrtc-rs's default
        // (7 × 200 ms), at a faster pace.
        let attempts = (1_400 / self.ice_check_interval.as_millis().max(1)).clamp(7, 100) as u16;
        let waits = NominationWaits::for_config(self);
        // The answerer is the DTLS client, as browsers answer. Between our peers the answerer
        // is the parent, the one that sends the audio: it selects its pair on the offerer's
        // nomination and sends its ClientHello at once (half a round trip before the offerer
        // could), and with False Start (the patched rtc-dtls) its SRTP follows its Finished
        // without waiting for the offerer's: first audio lands two round trips after the
        // first check instead of three (`rtc::handshake_tests`). The offerer's DTLS has been
        // up since it applied the answer, before its first check.
        let mut builder = SettingEngineBuilder::new();
        if let Some(IceCredentials { ufrag, pwd }) = credentials {
            builder = builder.with_ice_credentials(ufrag, pwd);
        }
        builder
            .with_ice_connection_attempts(Some(self.ice_check_interval), Some(attempts))
            .with_host_acceptance_min_wait(Some(waits.host))
            .with_prflx_acceptance_min_wait(Some(waits.peer_reflexive))
            .with_srflx_acceptance_min_wait(Some(waits.server_reflexive))
            .with_relay_acceptance_min_wait(Some(waits.relay))
            .with_answering_dtls_role(RTCDtlsRole::Client)
            .build()
    }
}

/// How long the controlling ICE agent waits, from the start of its checks, before it may
/// nominate a working pair of each candidate type. The waits exist so that a better pair still
/// being checked can win; webrtc-rs waits 1 s for a peer-reflexive pair and 2 s for a relayed
/// one.
///
/// Over Nostr the answerer's checks usually reach the offerer before the answerer's candidates
/// do, so the offerer first knows the answerer's own address as *peer-reflexive*: with the
/// default wait, every link on a real network (40 ms away) connected 1.06 s after its checks
/// began, against 0.1 s on loopback, where the candidates win the race. A peer-reflexive pair
/// has carried a check both ways: it is as good a path as the host pair it usually is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NominationWaits {
    pub host: Duration,
    pub peer_reflexive: Duration,
    pub server_reflexive: Duration,
    pub relay: Duration,
}

impl NominationWaits {
    /// Time for a direct pair to answer before a NAT mapping is taken: one check round trip
    /// on a slow mobile path.
    const SERVER_REFLEXIVE: Duration = Duration::from_millis(100);
    /// Time for a direct pair to answer before the TURN detour is taken.
    const RELAY: Duration = Duration::from_millis(300);

    /// The waits for links of `config`: with `relay_only`, relayed pairs are all there is.
    pub fn for_config(config: &LinkConfig) -> Self {
        Self {
            host: Duration::ZERO,
            peer_reflexive: Duration::ZERO,
            server_reflexive: Self::SERVER_REFLEXIVE,
            relay: if config.relay_only {
                Duration::ZERO
            } else {
                Self::RELAY
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_servers_read_as_users_write_them() {
        let stun = IceServer::parse("stun:stun.example.org:3478").expect("stun");
        assert_eq!(stun.urls, vec!["stun:stun.example.org:3478"]);
        assert!(stun.username.is_empty());
        let turn = IceServer::parse("turn://alice:s3cret@10.0.0.1:3478").expect("turn");
        assert_eq!(turn.urls, vec!["turn:10.0.0.1:3478"]);
        assert_eq!(
            (turn.username.as_str(), turn.credential.as_str()),
            ("alice", "s3cret")
        );
        let tcp =
            IceServer::parse("turns://u:p@turn.example.org:5349?transport=tcp").expect("turns");
        assert_eq!(tcp.urls, vec!["turns:turn.example.org:5349?transport=tcp"]);
        for bad in [
            "",
            "stun:",
            "stun:host",
            "stun:host:0",
            "stun:host:99999",
            "turn://host:3478",
            "turn://:p@host:3478",
            "turn://u:@host:3478",
            "turn://u:p@:3478",
            "turn://u:p@host:3478?transport=sctp",
            "http://host:80",
        ] {
            let err = IceServer::parse(bad).expect_err(bad);
            assert!(
                matches!(err, RtcError::IceServer { ref url, .. } if url == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn direct_pairs_are_nominated_at_once_and_relays_wait_only_when_a_direct_path_may_win() {
        let open = NominationWaits::for_config(&LinkConfig::default());
        assert_eq!(open.host, Duration::ZERO);
        assert_eq!(open.peer_reflexive, Duration::ZERO);
        assert!(open.server_reflexive > Duration::ZERO);
        assert!(open.relay > open.server_reflexive);
        let relayed = NominationWaits::for_config(&LinkConfig {
            relay_only: true,
            ..LinkConfig::default()
        });
        assert_eq!(relayed.relay, Duration::ZERO);
    }
}
