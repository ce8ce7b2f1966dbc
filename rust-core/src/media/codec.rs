//! Opus encoding and decoding (libopus, bundled), with in-band FEC, DTX and PLC.

use opus::{Application, Bitrate, Channels};

use super::MediaError;
use super::format::{FRAME_SAMPLES, SAMPLE_RATE};

/// Largest Opus packet we produce (RFC 6716 allows 1275 bytes per frame).
const MAX_PACKET: usize = 1_275;

/// Encoder settings. Defaults suit speech over lossy mobile links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecSettings {
    /// Target bitrate in bits per second, 16,000–64,000.
    pub bitrate_bps: u32,
    /// In-band forward error correction: each packet carries a low-rate copy of the previous
    /// frame, so a single loss is recovered from the next packet.
    pub fec: bool,
    /// Loss the encoder plans FEC for, in percent (0–100).
    pub expected_loss_pct: u8,
    /// Discontinuous transmission: near-silent frames become tiny packets.
    pub dtx: bool,
    /// CPU effort, 0–10.
    pub complexity: u8,
}

impl Default for CodecSettings {
    fn default() -> Self {
        Self {
            bitrate_bps: 32_000,
            fec: true,
            expected_loss_pct: 10,
            dtx: false,
            complexity: 5,
        }
    }
}

impl CodecSettings {
    /// Checks every value against its range.
    pub fn validate(&self) -> Result<(), MediaError> {
        if !(16_000..=64_000).contains(&self.bitrate_bps) {
            return Err(MediaError::InvalidSetting(format!(
                "bitrate {} bps outside 16000–64000",
                self.bitrate_bps
            )));
        }
        if self.expected_loss_pct > 100 {
            return Err(MediaError::InvalidSetting(format!(
                "expected loss {}% > 100",
                self.expected_loss_pct
            )));
        }
        if self.complexity > 10 {
            return Err(MediaError::InvalidSetting(format!(
                "complexity {} > 10",
                self.complexity
            )));
        }
        Ok(())
    }
}

/// Encodes 20 ms mono frames into Opus packets.
pub struct Encoder {
    inner: opus::Encoder,
    buffer: Vec<u8>,
}

impl Encoder {
    /// An encoder for speech (VoIP application mode) with `settings`.
    pub fn new(settings: CodecSettings) -> Result<Self, MediaError> {
        settings.validate()?;
        let mut inner = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
        let bitrate = i32::try_from(settings.bitrate_bps).unwrap_or(i32::MAX);
        inner.set_bitrate(Bitrate::Bits(bitrate))?;
        inner.set_inband_fec(settings.fec)?;
        inner.set_packet_loss_perc(i32::from(settings.expected_loss_pct))?;
        inner.set_dtx(settings.dtx)?;
        inner.set_complexity(i32::from(settings.complexity))?;
        Ok(Self {
            inner,
            buffer: vec![0; MAX_PACKET],
        })
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples.
    pub fn encode(&mut self, frame: &[i16]) -> Result<Vec<u8>, MediaError> {
        check_frame(frame.len())?;
        let len = self.inner.encode(frame, &mut self.buffer)?;
        Ok(self.buffer[..len].to_vec())
    }
}

/// Decodes Opus packets into 20 ms frames, and conceals or recovers lost ones.
pub struct Decoder {
    inner: opus::Decoder,
}

impl Decoder {
    /// A mono 48 kHz decoder.
    pub fn new() -> Result<Self, MediaError> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE, Channels::Mono)?,
        })
    }

    /// Decodes a packet into `out` ([`FRAME_SAMPLES`] long).
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<(), MediaError> {
        check_frame(out.len())?;
        self.decode_into(packet, out, false)
    }

    /// Rebuilds a lost frame from the FEC data in the packet that followed it.
    pub fn recover(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<(), MediaError> {
        check_frame(out.len())?;
        self.decode_into(next_packet, out, true)
    }

    /// Synthesises a lost frame (packet loss concealment).
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<(), MediaError> {
        check_frame(out.len())?;
        self.decode_into(&[], out, false)
    }

    fn decode_into(&mut self, packet: &[u8], out: &mut [i16], fec: bool) -> Result<(), MediaError> {
        let samples = self.inner.decode(packet, out, fec)?;
        // A packet may hold less than a frame (10 ms); pad rather than play stale samples.
        let end = samples.min(out.len());
        out[end..].fill(0);
        Ok(())
    }
}

fn check_frame(len: usize) -> Result<(), MediaError> {
    if len == FRAME_SAMPLES {
        Ok(())
    } else {
        Err(MediaError::FrameSize {
            got: len,
            expected: FRAME_SAMPLES,
        })
    }
}
