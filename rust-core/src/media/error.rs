//! Errors of the media pipeline.

/// Why a codec or device operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// A codec setting outside its range.
    #[error("invalid codec setting: {0}")]
    InvalidSetting(String),
    /// libopus reported an error.
    #[error("opus: {0}")]
    Opus(String),
    /// A frame of the wrong length.
    #[error("frame of {got} samples, expected {expected}")]
    FrameSize {
        /// Samples given.
        got: usize,
        /// Samples expected.
        expected: usize,
    },
    /// No sound card, or none with a usable format.
    #[error("no audio {direction} device: {reason}")]
    NoDevice {
        /// `input` or `output`.
        direction: &'static str,
        /// Details from the platform.
        reason: String,
    },
    /// The sound card failed while running.
    #[error("audio device: {0}")]
    Device(String),
    /// A WAV file could not be read or written, or has an unusable format.
    #[error("wav {path}: {reason}")]
    Wav {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<opus::Error> for MediaError {
    fn from(e: opus::Error) -> Self {
        MediaError::Opus(e.to_string())
    }
}
