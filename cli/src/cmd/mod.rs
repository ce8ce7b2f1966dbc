//! The subcommands.

pub mod demo;
pub mod geokey;
pub mod live;
pub mod simulate;
