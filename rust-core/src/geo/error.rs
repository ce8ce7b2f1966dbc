//! Errors of the `geo` module.

use super::{Axis, Level};

/// Why a coordinate, label or GeoKey could not be produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// Latitude is NaN, infinite or outside [-90, 90].
    #[error("latitude {0} is not a number in [-90, 90]")]
    InvalidLatitude(f64),
    /// Longitude is NaN, infinite or outside [-180, 180].
    #[error("longitude {0} is not a number in [-180, 180]")]
    InvalidLongitude(f64),
    /// A coordinate given as text is not in the form UPlanet accepts (`-?digits[.digits]`).
    #[error("{axis} {text:?} is not a plain decimal number (no '+', exponent or spaces)")]
    MalformedCoordinate {
        /// Which axis the text was for.
        axis: Axis,
        /// The offending text.
        text: String,
    },
    /// A cell label is not the canonical label of any cell at this level.
    #[error("{axis} label {label:?} is not a {level} label")]
    InvalidLabel {
        /// Which axis the label was for.
        axis: Axis,
        /// The level the label was read at.
        level: Level,
        /// The offending label.
        label: String,
    },
    /// The point rounds to `0.00` on this axis: UPlanet has no UMAP key there
    /// (the ~1.1 km strip north of the equator or east of Greenwich).
    #[error("{axis} rounds to 0.00, the keyless UMAP strip (UPlanet derives no UMAP key there)")]
    KeylessStrip {
        /// Which axis rounds to `0.00`.
        axis: Axis,
    },
    /// The derived secret is 0 or not below the secp256k1 group order (probability ~2^-128).
    #[error("the derived secret is not a valid secp256k1 scalar")]
    InvalidScalar,
}
