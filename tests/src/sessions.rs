//! Sessions for the end-to-end suites: identities, configurations, a space on an embedded
//! relay, listeners with a probe listening for the host's tone.

use std::sync::Arc;
use std::time::Duration;

use nostr::prelude::{Keys, SecretKey, Timestamp};
use spaces_cli::probe::{CaptureClock, Probe};
use spaces_core::engine::{RESERVE_TIMEOUT, Session, SessionConfig, source_id};
use spaces_core::media::CodecSettings;
use spaces_core::media::device::{NullSink, ToneSource};
use spaces_core::protocol::{ConnectionType, NetworkMetrics, SpaceRef};
use spaces_core::rtc::LinkConfig;
use spaces_core::signaling::EmbeddedRelay;

/// Logs of the sessions under test, to the test's output, when `RUST_LOG` asks for them (for
/// reading a failed or slow run; the tests assert nothing on them).
pub fn logs() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// The `n`-th test identity.
pub fn keys(n: u8) -> Keys {
    let mut bytes = [0x33u8; 32];
    bytes[31] = n;
    Keys::new(SecretKey::from_slice(&bytes).expect("valid"))
}

/// A session of `keys` in `space` on `relay`: Wi-Fi, 2 Mbit/s up; the host streams 440 Hz.
pub fn config(keys: Keys, space: &SpaceRef, relay: &str, host: bool) -> SessionConfig {
    SessionConfig {
        signer: keys.into(),
        space: space.clone(),
        name: if host {
            "host".into()
        } else {
            "listener".into()
        },
        metrics: NetworkMetrics {
            download_kbps: 20_000,
            upload_kbps: 2_000,
            max_audio_outputs: 0,
            connection: ConnectionType::Wifi,
        },
        relays: vec![relay.to_owned()],
        link: LinkConfig::loopback(),
        codec: CodecSettings::default(),
        input: host.then(|| Box::new(ToneSource::new(440.0, 0.5)) as _),
        output: Box::new(NullSink),
        tap: None,
        reserve_timeout: RESERVE_TIMEOUT,
        cells: vec![],
        draft_compat: false,
        warm_backup: true,
        crowd_at: spaces_core::participant::CROWD_AT,
        ask_host_first: true,
    }
}

/// A fresh embedded relay and a space hosted by `keys(host)` with a unique id.
pub async fn space_on_embedded_relay(name: &str, host: u8) -> (EmbeddedRelay, String, SpaceRef) {
    let relay = EmbeddedRelay::start(None).await.expect("relay");
    let url = relay.url().to_string();
    let space = SpaceRef::new(
        format!("{name}-{}", Timestamp::now().as_secs()),
        keys(host).public_key(),
    )
    .expect("id");
    (relay, url, space)
}

/// Listeners `keys(n)` for each `n` of `range`, joined one after the other.
pub async fn start_listeners(
    range: std::ops::Range<u8>,
    space: &SpaceRef,
    url: &str,
) -> Vec<Session> {
    let mut listeners = Vec::new();
    for n in range {
        listeners.push(
            Session::start(config(keys(n), space, url, false))
                .await
                .expect("listener"),
        );
    }
    listeners
}

/// A listener announcing `upload_kbps` of Wi-Fi uplink, started with a probe listening for
/// the host's 440 Hz.
pub async fn listener(
    n: u8,
    upload_kbps: u32,
    space: &SpaceRef,
    url: &str,
    clock: &Arc<CaptureClock>,
) -> (Session, Arc<Probe>) {
    let probe = Probe::new(clock, source_id(space.host()), Some(440.0));
    let mut config = config(keys(n), space, url, false);
    config.metrics.upload_kbps = upload_kbps;
    config.tap = Some(Arc::clone(&probe) as _);
    (Session::start(config).await.expect("listener"), probe)
}

/// Host frames with the tone each probe heard since `before`, as a share of the frames
/// that much wall time holds.
pub fn tone_share_since(probes: &[Arc<Probe>], before: &[u64], elapsed: Duration) -> Vec<f64> {
    let frames = elapsed.as_millis() as f64 / 20.0;
    probes
        .iter()
        .zip(before)
        .map(|(p, b)| (p.stats().frames_with_tone - b) as f64 / frames)
        .collect()
}
