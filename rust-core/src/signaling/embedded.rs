//! The in-process relay used when the user names none: everything runs on one machine with
//! no set-up.

use std::net::{IpAddr, Ipv4Addr};

use nostr_sdk::prelude::{LocalRelay, RateLimit, RelayUrl};

use super::SignalingError;

/// A Nostr relay running inside this process on 127.0.0.1 (memory storage).
pub struct EmbeddedRelay {
    relay: LocalRelay,
    url: RelayUrl,
}

impl EmbeddedRelay {
    /// Starts a relay on `port` (0 or `None`: any free port).
    pub async fn start(port: Option<u16>) -> Result<Self, SignalingError> {
        let mut builder = LocalRelay::builder()
            .addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
            // One machine runs every participant of a demo: the default 60 events/minute
            // per connection would throttle a single listener's ICE trickle.
            .rate_limit(RateLimit {
                max_reqs: 1_000,
                notes_per_minute: 1_000_000,
            });
        if let Some(port) = port.filter(|p| *p != 0) {
            builder = builder.port(port);
        }
        let relay = builder.build();
        relay
            .run()
            .await
            .map_err(|e| SignalingError::EmbeddedRelay(e.to_string()))?;
        let url = relay.url().await;
        tracing::info!(%url, "embedded relay started");
        Ok(Self { relay, url })
    }

    /// Its `ws://127.0.0.1:PORT` URL.
    pub fn url(&self) -> &RelayUrl {
        &self.url
    }

    /// Its TCP port.
    pub fn port(&self) -> Option<u16> {
        self.url
            .as_str()
            .rsplit(':')
            .next()?
            .trim_end_matches('/')
            .parse()
            .ok()
    }

    /// Stops it; clients see the connection drop.
    pub fn shutdown(&self) {
        tracing::info!(url = %self.url, "embedded relay stopping");
        self.relay.shutdown();
    }
}

impl Drop for EmbeddedRelay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}
