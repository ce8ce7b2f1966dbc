//! # Nostr Spaces core
//!
//! Live audio rooms ("spaces") over Nostr relays and WebRTC, with no company server in the
//! middle. This crate is the whole engine; the Android and iOS apps are thin shells over
//! it, through the `spaces-ffi` crate.
//!
//! Pure, deterministic modules sit at the centre and do no I/O:
//! - [`geo`]: UPlanet grid cells, their NIP-101 GeoKeys and cell tracking from GPS fixes.

#![warn(missing_docs)]

pub mod engine;
pub mod geo;
pub mod media;
pub mod participant;
pub mod protocol;
pub mod rtc;
pub mod signaling;
pub mod sim;
pub mod space;
pub mod topology;
