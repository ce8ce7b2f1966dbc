//! Helpers shared by the cross-component suites: real relays started and stopped by the
//! tests, and real WebRTC links on loopback.

pub mod rtc_harness;
pub mod sessions;
pub mod signers;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nostr::prelude::{Event, SubscriptionId};
use spaces_core::signaling::{EmbeddedRelay, Incoming};
use tokio::sync::mpsc;

/// The `p` quantile (0 to 1) of `sorted` durations, nearest rank; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// Runs a relay benchmark's `measure` (given the relay's name and URL) against the embedded
/// relay, then against the independent Python one.
pub async fn on_both_relays<F, Fut>(measure: F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let embedded = EmbeddedRelay::start(None).await.expect("starts");
    measure("embedded (nostr-sdk)", embedded.url().to_string()).await;
    let python = PythonRelay::start();
    measure("nostr-relay 1.14 (py)", python.url()).await;
}

/// The events a pool delivers until `subscription`'s end of stored events, or until `bound`
/// has passed (a failure bound, not a speed one) or the pool has stopped.
pub async fn until_stored(
    rx: &mut mpsc::Receiver<Incoming>,
    subscription: &SubscriptionId,
    bound: Duration,
) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Incoming::Event { event, .. })) => events.push(event.into_inner()),
            Ok(Some(Incoming::EndOfStored {
                subscription: ended,
                ..
            })) if ended == *subscription => {
                return events;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return events,
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the relay to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

fn relay_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("relays/nostr-relay.sh")
}

/// The independent relay (PyPI `nostr-relay`, Python + SQLite) on 127.0.0.1, stopped on drop.
/// Its data survives [`PythonRelay::stop`] + [`PythonRelay::restart`].
pub struct PythonRelay {
    port: u16,
    dir: PathBuf,
}

impl PythonRelay {
    /// Installs (once) and starts a relay on a free port.
    pub fn start() -> Self {
        let status = Command::new(relay_script())
            .arg("install")
            .status()
            .expect("relay script runs");
        assert!(status.success(), "installing nostr-relay failed");
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("spaces-nostr-relay-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let relay = Self { port, dir };
        relay.restart();
        relay
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Stops the relay process (its database stays).
    pub fn stop(&self) {
        let _ = Command::new(relay_script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }

    /// Starts it again on the same port and data.
    pub fn restart(&self) {
        let status = Command::new(relay_script())
            .arg("start")
            .arg(self.port.to_string())
            .arg(&self.dir)
            .status()
            .expect("relay script runs");
        assert!(
            status.success(),
            "nostr-relay did not start on {}",
            self.port
        );
    }
}

impl Drop for PythonRelay {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
