//! The engine: the one module that wires I/O (relays, WebRTC, audio devices) to the pure
//! parts (protocol, space, topology). A participant's session, its audio, discovery and roaming.

mod audio;
pub mod discover;
mod error;
mod follow;
pub mod roam;
mod session;

pub use audio::{AudioStats, AudioTap, PlayedFrame, SourceStats, source_id};
pub use error::EngineError;
pub use session::{
    MAX_CHAT_BYTES, MAX_REACTION_BYTES, RESERVE_TIMEOUT, Session, SessionConfig, SessionStats,
};
