//! The one error type foreign code sees (`SpacesException` in Kotlin, `SpacesError` in Swift).

use spaces_core::geo::{FixError, GeoError};

/// Why a call failed. Each variant carries a human-readable reason for logs.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum SpacesError {
    /// A latitude or longitude is NaN, infinite, out of range or malformed.
    #[error("invalid coordinate: {reason}")]
    InvalidCoordinate {
        /// What is wrong.
        reason: String,
    },
    /// A cell label is not canonical at its level.
    #[error("invalid cell label: {reason}")]
    InvalidLabel {
        /// What is wrong.
        reason: String,
    },
    /// The position lies in UPlanet's keyless `0.00` strip: no UMAP cell there.
    #[error("no UMAP cell: {reason}")]
    KeylessStrip {
        /// Which axis.
        reason: String,
    },
    /// The derived secret is not a valid key (probability ~2^-128).
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong.
        reason: String,
    },
    /// A GPS fix was refused (bad accuracy, time going backwards); nothing changed.
    #[error("invalid fix: {reason}")]
    InvalidFix {
        /// What is wrong.
        reason: String,
    },
    /// A settings value is out of its allowed range.
    #[error("invalid settings: {reason}")]
    InvalidSettings {
        /// What is wrong.
        reason: String,
    },
    /// A space address is malformed.
    #[error("invalid space: {reason}")]
    InvalidSpace {
        /// What is wrong.
        reason: String,
    },
    /// The microphone or speaker could not be opened.
    #[error("audio: {reason}")]
    Audio {
        /// What the platform said.
        reason: String,
    },
    /// Relays or WebRTC failed.
    #[error("network: {reason}")]
    Network {
        /// What failed.
        reason: String,
    },
    /// A chat line or reaction is empty or too long; nothing was sent.
    #[error("not sent: {reason}")]
    NotSent {
        /// What is wrong.
        reason: String,
    },
    /// The signer holding the user's key refused or failed (or an app callback failed).
    #[error("signer: {reason}")]
    Signer {
        /// What it said.
        reason: String,
    },
    /// The session has ended.
    #[error("stopped: {reason}")]
    Stopped {
        /// Why.
        reason: String,
    },
}

impl From<spaces_core::engine::EngineError> for SpacesError {
    fn from(err: spaces_core::engine::EngineError) -> Self {
        use spaces_core::engine::EngineError;
        let reason = err.to_string();
        match err {
            EngineError::Signaling(_) | EngineError::Rtc(_) => Self::Network { reason },
            EngineError::Protocol(_) => Self::InvalidSpace { reason },
            EngineError::Media(_) => Self::Audio { reason },
            EngineError::Stopped => Self::Stopped { reason },
            EngineError::NotSent { .. } => Self::NotSent { reason },
        }
    }
}

impl From<GeoError> for SpacesError {
    fn from(err: GeoError) -> Self {
        let reason = err.to_string();
        match err {
            GeoError::InvalidLatitude(_)
            | GeoError::InvalidLongitude(_)
            | GeoError::MalformedCoordinate { .. } => Self::InvalidCoordinate { reason },
            GeoError::InvalidLabel { .. } => Self::InvalidLabel { reason },
            GeoError::KeylessStrip { .. } => Self::KeylessStrip { reason },
            GeoError::InvalidScalar => Self::InvalidKey { reason },
        }
    }
}

impl From<FixError> for SpacesError {
    fn from(err: FixError) -> Self {
        match err {
            FixError::Coordinate(geo) => geo.into(),
            other => Self::InvalidFix {
                reason: other.to_string(),
            },
        }
    }
}

impl From<spaces_core::engine::roam::RoamError> for SpacesError {
    fn from(err: spaces_core::engine::roam::RoamError) -> Self {
        use spaces_core::engine::roam::RoamError;
        match err {
            RoamError::Fix(e) => e.into(),
            RoamError::Geo(e) => e.into(),
            RoamError::Engine(e) => e.into(),
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SpacesError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Signer {
            reason: format!("the app's callback failed: {}", err.reason),
        }
    }
}
