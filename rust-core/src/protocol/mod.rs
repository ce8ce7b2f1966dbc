//! The Nostr Spaces wire protocol: every event kind of the draft and the NIP-53 kinds we
//! interoperate with, as typed builders and parsers. Pure: no I/O, time is an argument.
//!
//! Deviations from the draft and choices it leaves open are listed in `docs/PROTOCOL.md`.

mod builder;
mod error;
pub mod filter;
mod kind;
mod message;
mod metrics;
mod parser;
mod signer;
mod space_ref;
mod verified;

pub use builder::{
    ASK_FIRST_TAG, CROWD_TAG, DELIVERING_TAG, DISCOVERY_TAG, Draft, ENCRYPTION_TAG, EventWriter,
    OPEN_SEAT_TAG, SEAT_SHARDS, SEAT_TAG, TRANSPORT_TAG_VALUE, seat_shard,
};
pub use error::ProtocolError;
pub use kind::SpaceKind;
pub use message::{
    AdminAction, IceCandidate, LinkRole, MemberInfo, Message, Presence, Reservation, Role, Room,
    RoomStatus, Seat, SpaceEvent, SpaceInfo, Transport,
};
pub use metrics::{ConnectionType, NetworkMetrics};
pub use parser::{Limits, Parser, sealed_peer};
pub use signer::{RemoteSigner, Signer, SignerError, accept_signed};
pub use space_ref::SpaceRef;
pub use verified::VerifiedEvent;

#[cfg(test)]
mod tests;
