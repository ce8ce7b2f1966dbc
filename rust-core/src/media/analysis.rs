//! Measuring audio: frame level (for "who is speaking") and tone detection (Goertzel), used by
//! the mixer, the tests and the demo report.

use super::format::SAMPLE_RATE;

/// Root-mean-square level of a frame in dBFS (−96 for digital silence).
pub fn level_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -96.0;
    }
    let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / frame.len() as f64).sqrt() / f64::from(i16::MAX);
    if rms <= 0.0 {
        -96.0
    } else {
        (20.0 * rms.log10()).max(-96.0) as f32
    }
}

/// Share of a frame's energy at `freq_hz` (Goertzel), from 0 to ~1. A clean sine gives ~1,
/// speech or noise a small value, silence 0.
pub fn tone_share(frame: &[i16], freq_hz: f32) -> f32 {
    let n = frame.len();
    if n == 0 {
        return 0.0;
    }
    let omega = 2.0 * std::f64::consts::PI * f64::from(freq_hz) / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &sample in frame {
        let x = f64::from(sample);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy <= 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A sine of amplitude A over n samples has Goertzel power (A·n/2)² and energy A²·n/2.
    (2.0 * power / (n as f64 * energy)).clamp(0.0, 1.0) as f32
}

/// True when a frame is clearly the tone: most of its energy at `freq_hz`, and not silence.
pub fn has_tone(frame: &[i16], freq_hz: f32) -> bool {
    level_dbfs(frame) > -50.0 && tone_share(frame, freq_hz) > 0.5
}
