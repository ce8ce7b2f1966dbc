//! The subcommands.

pub mod demo;
pub mod geokey;
pub mod live;
pub mod relay;
pub mod simulate;
