//! Errors of a participant's session.

use crate::media::MediaError;
use crate::protocol::ProtocolError;
use crate::rtc::RtcError;
use crate::signaling::SignalingError;

/// Why a session could not start or continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Relays.
    #[error(transparent)]
    Signaling(#[from] SignalingError),
    /// Building or reading events.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// WebRTC links.
    #[error(transparent)]
    Rtc(#[from] RtcError),
    /// Audio devices or codec.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The session has already stopped.
    #[error("the session has stopped")]
    Stopped,
    /// A chat line or reaction the user typed is empty or too long; nothing was sent.
    #[error("{what} not sent: {reason}")]
    NotSent {
        /// "chat line" or "reaction".
        what: &'static str,
        /// Why.
        reason: String,
    },
}
