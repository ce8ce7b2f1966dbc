//! Linear-interpolation sample-rate conversion for inputs not at 48 kHz (44.1 kHz files and
//! sound cards). Speech-grade: fine for a microphone, not for music mastering.

/// Converts a mono stream from one rate to another, keeping phase across calls.
#[derive(Debug, Clone)]
pub struct Resampler {
    ratio: f64,
    position: f64,
    last: f32,
}

impl Resampler {
    /// From `from_hz` to `to_hz`.
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        Self {
            ratio: f64::from(from_hz.max(1)) / f64::from(to_hz.max(1)),
            position: 0.0,
            last: 0.0,
        }
    }

    /// True when no conversion is needed.
    pub fn is_identity(&self) -> bool {
        (self.ratio - 1.0).abs() < f64::EPSILON
    }

    /// Converts `input`, appending to `output`.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        if self.is_identity() {
            output.extend_from_slice(input);
            return;
        }
        // `position` is measured from the sample before `input[0]` (`self.last`).
        while self.position < input.len() as f64 {
            let index = self.position.floor();
            let frac = (self.position - index) as f32;
            let i = index as usize;
            let before = if i == 0 { self.last } else { input[i - 1] };
            let after = input[i];
            output.push(before + (after - before) * frac);
            self.position += self.ratio;
        }
        self.position -= input.len() as f64;
        if let Some(&last) = input.last() {
            self.last = last;
        }
    }
}
