//! Signaling over Nostr relays: a pool that publishes to every relay, delivers each event
//! once, reconnects on its own bounded schedule, renews subscriptions with `since` and keeps undelivered
//! events for later; and the embedded relay used when the user names none.
//!
//! This module moves events; reading them is [`crate::protocol::Parser`]'s job.

mod backoff;
mod bunker;
mod embedded;
mod error;
mod pool;
mod transport;

pub use backoff::Backoff;
pub use bunker::{Bunker, BunkerError, BunkerUri};
pub use embedded::EmbeddedRelay;
pub use error::SignalingError;
pub use pool::{Incoming, PoolOptions, PublishReport, RelayPool};
pub use transport::LowLatencyTransport;
