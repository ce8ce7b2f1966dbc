//! The three nested grid levels of UPlanet.

use std::fmt;
use std::str::FromStr;

/// A grid level. Cells nest: a REGION holds 100 SECTORs, a SECTOR 100 UMAPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 0.01° cells (about 1.1 km × 0.73 km at 48.85° N).
    Umap,
    /// 0.1° cells.
    Sector,
    /// 1° cells.
    Region,
}

impl Level {
    /// Every level, finest first: the order the CLI and FFI list keys in.
    pub const ALL: [Level; 3] = [Level::Umap, Level::Sector, Level::Region];

    /// Decimal places in this level's labels.
    pub const fn decimals(self) -> u32 {
        match self {
            Level::Umap => 2,
            Level::Sector => 1,
            Level::Region => 0,
        }
    }

    /// Width of a cell in degrees.
    pub fn unit_degrees(self) -> f64 {
        match self {
            Level::Umap => 0.01,
            Level::Sector => 0.1,
            Level::Region => 1.0,
        }
    }

    /// Lower-case name as used on the CLI and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Umap => "umap",
            Level::Sector => "sector",
            Level::Region => "region",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a level name that is none of `umap`, `sector`, `region`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?} (expected umap, sector or region)")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "umap" => Ok(Level::Umap),
            "sector" => Ok(Level::Sector),
            "region" => Ok(Level::Region),
            _ => Err(UnknownLevel(s.to_owned())),
        }
    }
}

/// One of the two axes of a coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// North–south, [-90, 90].
    Latitude,
    /// East–west, [-180, 180].
    Longitude,
}

impl Axis {
    /// Largest magnitude in degrees.
    pub const fn max_degrees(self) -> u32 {
        match self {
            Axis::Latitude => 90,
            Axis::Longitude => 180,
        }
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Axis::Latitude => "latitude",
            Axis::Longitude => "longitude",
        })
    }
}
