//! How links are set up: ICE servers, privacy, failure detection.

use std::time::Duration;

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
    /// Packets waiting per child before the oldest is dropped for that child alone.
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
    /// Loopback only: for tests and single-machine demos.
    pub fn loopback() -> Self {
        Self {
            bind: vec!["127.0.0.1:0".to_owned()],
            ..Self::default()
        }
    }
}
