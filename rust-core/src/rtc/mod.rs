//! WebRTC links between participants (webrtc-rs), and forwarding of RTP to children without
//! decoding.
//!
//! A relaying listener receives its parent's RTP on one link and writes the same payload,
//! sequence number and timestamp to each child's link: no decode, no encode, so a hop costs
//! network time only.

mod certificate;
mod config;
mod error;
mod forward;
#[cfg(test)]
mod handshake_tests;
mod link;
#[cfg(test)]
mod nomination_tests;
pub mod prediction;
mod reports;
mod stall;

pub use ::rtc::rtp::{Header as RtpHeader, Packet as RtpPacket};
pub use certificate::Certificate;
pub use config::{IceServer, LinkConfig};
pub use error::RtcError;
pub use forward::Forwarder;
pub use link::{LinkCounters, LinkEvent, LinkState, Numbered, PeerLink, REPORT_EVERY, RtpSink};
pub use stall::{StallChange, StallDetector};
