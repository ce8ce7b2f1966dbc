//! Errors of WebRTC links.

/// Why a link operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcError {
    /// The WebRTC stack refused an operation (bad SDP, wrong state, socket failure).
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// An ICE server URL or credential the stack cannot use.
    #[error("invalid ICE server {url:?}: {reason}")]
    IceServer {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Media was written before the link negotiated a codec.
    #[error("link not negotiated yet")]
    NotNegotiated,
    /// The link is closed.
    #[error("link closed")]
    Closed,
}

impl From<webrtc::error::Error> for RtcError {
    fn from(e: webrtc::error::Error) -> Self {
        RtcError::WebRtc(e.to_string())
    }
}
