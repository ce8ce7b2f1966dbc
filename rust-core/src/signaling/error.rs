//! Errors of the relay layer.

/// Why a relay operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalingError {
    /// A relay URL that is not `ws://` or `wss://` with a host.
    #[error("invalid relay url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// No relay was configured.
    #[error("no relay configured")]
    NoRelays,
    /// None of the relays accepted a connection in time.
    #[error("no relay reachable within {timeout_ms} ms: {urls:?}")]
    NoRelayReachable {
        /// The relays tried.
        urls: Vec<String>,
        /// How long we waited.
        timeout_ms: u64,
    },
    /// No relay took the event. Rejected events are not retried; undelivered ones wait in
    /// the outbox and go out when a relay is back.
    #[error("event {event_id} reached no relay ({} rejected, queued: {queued})", rejected.len())]
    Undelivered {
        /// The event.
        event_id: String,
        /// Relays that answered `OK false`, with their reason.
        rejected: Vec<(String, String)>,
        /// Whether it waits in the outbox.
        queued: bool,
    },
    /// The embedded relay could not start.
    #[error("embedded relay: {0}")]
    EmbeddedRelay(String),
    /// Any other failure of the relay client.
    #[error("relay client: {0}")]
    Client(String),
}
