//! Geography: UPlanet grid cells, their GeoKeys and tracking the user's current cell.
//!
//! Pure and synchronous: no clocks, no I/O. Compatible bit for bit with the UPlanet
//! ecosystem's tools (see `docs/GEOKEYS.md` for the derivation and its quirks).

mod cell;
mod error;
mod key;
mod keyring;
mod label;
mod level;
mod tags;
mod tracker;

pub use cell::Cell;
pub use error::GeoError;
pub use key::{GeoKey, ORIGIN_NAMESPACE, Scheme, Seed, UnknownScheme};
pub use keyring::{DEFAULT_CAPACITY, GeoKeyring};
pub use label::{AxisLabel, Point};
pub use level::{Axis, Level, UnknownLevel};
pub use tags::{UPLANET_APPLICATION, geohash, geokey_p_tags, location_tags};
pub use tracker::{CellChange, CellTracker, Fix, FixError, TrackerConfig};
