//! Devices that need no hardware: a tone generator and null devices.

use super::{AudioSink, AudioSource};
use crate::media::MediaError;
use crate::media::format::SAMPLE_RATE;

/// A continuous sine tone; phase carries over between frames, so there is no click.
#[derive(Debug, Clone)]
pub struct ToneSource {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl ToneSource {
    /// A tone at `freq_hz` with peak `amplitude` (share of full scale, clamped to 0–1).
    pub fn new(freq_hz: f32, amplitude: f32) -> Self {
        Self {
            step: 2.0 * std::f64::consts::PI * f64::from(freq_hz) / f64::from(SAMPLE_RATE),
            phase: 0.0,
            amplitude: f64::from(amplitude.clamp(0.0, 1.0)) * f64::from(i16::MAX),
        }
    }
}

impl AudioSource for ToneSource {
    fn read(&mut self, frame: &mut [i16]) -> Result<bool, MediaError> {
        for sample in frame.iter_mut() {
            *sample = (self.amplitude * self.phase.sin()).round() as i16;
            self.phase = (self.phase + self.step) % (2.0 * std::f64::consts::PI);
        }
        Ok(true)
    }
}

/// Silence, forever.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSource;

impl AudioSource for NullSource {
    fn read(&mut self, frame: &mut [i16]) -> Result<bool, MediaError> {
        frame.fill(0);
        Ok(true)
    }
}

/// Discards everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn write(&mut self, _frame: &[i16]) -> Result<(), MediaError> {
        Ok(())
    }
}
