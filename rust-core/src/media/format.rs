//! The one audio format inside the core: 48 kHz mono 16-bit, in 20 ms frames.

/// Samples per second.
pub const SAMPLE_RATE: u32 = 48_000;
/// Frame duration in milliseconds (Opus' default and our RTP packetisation).
pub const FRAME_MS: u32 = 20;
/// Samples per frame (mono).
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE / 1_000 * FRAME_MS) as usize;
/// RTP timestamp increment per frame (RTP clock = 48 kHz for Opus).
pub const RTP_TICKS_PER_FRAME: u32 = FRAME_SAMPLES as u32;
