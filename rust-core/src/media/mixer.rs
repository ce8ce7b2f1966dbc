//! Mixes several speakers into one frame: per-speaker gain and mute, a soft limiter instead of
//! wrap-around or hard clipping, and per-speaker levels for the "who is speaking" display.

use std::collections::BTreeMap;

use super::analysis::level_dbfs;

/// Where the limiter starts to bend the signal, as a share of full scale.
const KNEE: f32 = 0.85;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Channel {
    gain: f32,
    muted: bool,
    level_dbfs: f32,
}

impl Default for Channel {
    fn default() -> Self {
        Self {
            gain: 1.0,
            muted: false,
            level_dbfs: -96.0,
        }
    }
}

/// A mixer over sources identified by `K` (a speaker's key).
#[derive(Debug, Clone, Default)]
pub struct Mixer<K: Ord + Clone> {
    channels: BTreeMap<K, Channel>,
}

impl<K: Ord + Clone> Mixer<K> {
    /// An empty mixer.
    pub fn new() -> Self {
        Self {
            channels: BTreeMap::new(),
        }
    }

    /// Sets a source's linear gain (clamped to 0–4).
    pub fn set_gain(&mut self, source: &K, gain: f32) {
        let gain = if gain.is_finite() {
            gain.clamp(0.0, 4.0)
        } else {
            1.0
        };
        self.channels.entry(source.clone()).or_default().gain = gain;
    }

    /// Mutes or unmutes a source.
    pub fn set_muted(&mut self, source: &K, muted: bool) {
        self.channels.entry(source.clone()).or_default().muted = muted;
    }

    /// Forgets a source.
    pub fn remove(&mut self, source: &K) {
        self.channels.remove(source);
    }

    /// Mixes one frame from each source into `out`. Sources absent this round count as
    /// silent for their level.
    pub fn mix(&mut self, inputs: &[(K, &[i16])], out: &mut [i16]) {
        let mut sum = vec![0.0f32; out.len()];
        for channel in self.channels.values_mut() {
            channel.level_dbfs = -96.0;
        }
        for (source, frame) in inputs {
            let channel = self.channels.entry(source.clone()).or_default();
            channel.level_dbfs = level_dbfs(frame);
            if channel.muted {
                continue;
            }
            for (acc, &sample) in sum.iter_mut().zip(frame.iter()) {
                *acc += f32::from(sample) / 32_768.0 * channel.gain;
            }
        }
        for (o, s) in out.iter_mut().zip(sum) {
            *o = (limit(s) * 32_767.0).round() as i16;
        }
    }

    /// Each known source's level in dBFS from the last mix (before gain; muted sources too,
    /// so the UI can show that a muted speaker is talking).
    pub fn levels(&self) -> Vec<(K, f32)> {
        self.channels
            .iter()
            .map(|(k, c)| (k.clone(), c.level_dbfs))
            .collect()
    }
}

/// Soft limiter: identity below the knee, then a tanh curve that approaches full scale
/// without ever reaching past it.
fn limit(x: f32) -> f32 {
    let magnitude = x.abs();
    if magnitude <= KNEE {
        return x;
    }
    let headroom = 1.0 - KNEE;
    let bent = KNEE + headroom * ((magnitude - KNEE) / headroom).tanh();
    bent.min(1.0).copysign(x)
}
