//! Media: everything between a microphone and an RTP payload, and back to a speaker.
//!
//! ```text
//! source ─► ProcessingChain ─► Encoder ─► RTP payload
//! RTP payload ─► JitterBuffer ─► Decoder (PLC, FEC) ─► Mixer ─► sink
//! ```
//!
//! Codec, jitter buffer and mixer are pure and synchronous; only the sound-card devices touch
//! the platform.

pub mod analysis;
mod codec;
pub mod device;
mod error;
mod format;
mod jitter;
mod mixer;
mod processing;
mod receiver;

pub use codec::{CodecSettings, Decoder, Encoder};
pub use error::MediaError;
pub use format::{FRAME_MS, FRAME_SAMPLES, RTP_TICKS_PER_FRAME, SAMPLE_RATE};
pub use jitter::{Arrival, JitterBuffer, JitterConfig, JitterStats, Packet, Playout};
pub use mixer::Mixer;
pub use processing::{AudioProcessor, ProcessingChain};
pub use receiver::AudioReceiver;

#[cfg(test)]
mod tests;
