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
    /// The answer that arrived is not the one applied in advance (`rtc::prediction`): the
    /// parent does not derive its credentials, or its certificate is not the one it
    /// announced. The link cannot be used.
    #[error("the answer differs from the one predicted")]
    Mispredicted,
}

impl From<webrtc::error::Error> for RtcError {
    fn from(e: webrtc::error::Error) -> Self {
        RtcError::WebRtc(e.to_string())
    }
}
