//! Nostr Spaces on the desktop. The `spaces` binary is the command line; this library holds
//! what it shares with the end-to-end tests: the in-process demo ([`demo`]) and the audio
//! instruments that measure it ([`probe`]). None of it ships in the phone library.

pub mod demo;
pub mod probe;
