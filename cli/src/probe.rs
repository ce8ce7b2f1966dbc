//! The instruments of the demo and the tests, plugged into sessions as an [`AudioTap`]: a
//! capture clock shared in-process (capture-to-arrival and capture-to-playout latency on one
//! clock), and per-frame tone detection (did the far end hear the host's tone, and for how
//! long did it not). The shipped library only counts frames; measuring what they carry is
//! done here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use spaces_core::engine::{AudioTap, PlayedFrame};
use spaces_core::media::analysis::has_tone;
use spaces_core::media::{FRAME_MS, RTP_TICKS_PER_FRAME};

/// Frames of history the clock keeps per voice (a minute).
const CLOCK_FRAMES: u32 = 3_000;

/// Gaps at least this long (5 frames, 100 ms) are logged when they end.
const GAP_LOGGED_FRAMES: u64 = 5;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// When each frame was captured, by (voice, RTP timestamp): one clock for every session of a
/// process, so latency is measured across the whole tree.
#[derive(Debug, Default)]
pub struct CaptureClock {
    captured: Mutex<HashMap<(u32, u32), Instant>>,
}

impl CaptureClock {
    /// A new clock, to share between the probes of one run.
    pub fn shared() -> Arc<Self> {
        Arc::default()
    }

    fn stamp(&self, source: u32, timestamp: u32) {
        let mut captured = lock(&self.captured);
        captured.insert((source, timestamp), Instant::now());
        captured.remove(&(
            source,
            timestamp.wrapping_sub(CLOCK_FRAMES * RTP_TICKS_PER_FRAME),
        ));
    }

    /// Milliseconds since `source` captured the frame `timestamp`, if this clock saw it.
    fn since(&self, source: u32, timestamp: u32) -> Option<f64> {
        let at = lock(&self.captured).get(&(source, timestamp)).copied()?;
        Some(at.elapsed().as_secs_f64() * 1e3)
    }
}

/// One voice as a probe heard it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoiceProbe {
    /// Frames played.
    pub frames: u64,
    /// Capture-to-playout latency of its frames, ms.
    pub latencies_ms: Vec<f64>,
}

/// What a probe measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeStats {
    /// Host frames played since the first one.
    pub frames: u64,
    /// Of those, frames carrying the host's tone.
    pub frames_with_tone: u64,
    /// Capture-to-playout latency of the host's frames, ms.
    pub latencies_ms: Vec<f64>,
    /// Capture-to-arrival of the host's frames, ms: the network path through every hop,
    /// before the jitter buffer and the playout tick.
    pub arrivals_ms: Vec<f64>,
    /// Longest stretch without the host's tone after its first frame, ms.
    pub gap_ms_max: f64,
    /// Every voice played, by source id.
    pub voices: BTreeMap<u32, VoiceProbe>,
}

impl ProbeStats {
    /// Host frames with the tone, percent of host frames played (0 before any).
    pub fn tone_pct(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.frames_with_tone as f64 * 100.0 / self.frames as f64
        }
    }
}

#[derive(Debug, Default)]
struct State {
    stats: ProbeStats,
    started: bool,
    gap_frames: u64,
}

/// One session's instruments.
#[derive(Debug)]
pub struct Probe {
    clock: Arc<CaptureClock>,
    host: u32,
    tone_hz: Option<f32>,
    state: Mutex<State>,
}

impl Probe {
    /// A probe on `clock` for a space whose host is voice `host`; with `tone_hz`, host frames
    /// count as heard only when they carry that tone.
    pub fn new(clock: &Arc<CaptureClock>, host: u32, tone_hz: Option<f32>) -> Arc<Self> {
        Arc::new(Self {
            clock: Arc::clone(clock),
            host,
            tone_hz,
            state: Mutex::default(),
        })
    }

    /// What was measured so far.
    pub fn stats(&self) -> ProbeStats {
        lock(&self.state).stats.clone()
    }
}

impl AudioTap for Probe {
    fn sent(&self, source: u32, timestamp: u32) {
        self.clock.stamp(source, timestamp);
    }

    fn received(&self, source: u32, timestamp: u32) {
        if source != self.host {
            return;
        }
        if let Some(ms) = self.clock.since(source, timestamp) {
            lock(&self.state).stats.arrivals_ms.push(ms);
        }
    }

    fn played(&self, frames: &[PlayedFrame<'_>]) {
        // The clock first: it and the state are never locked together.
        let latencies: Vec<Option<f64>> = frames
            .iter()
            .map(|f| self.clock.since(f.source, f.timestamp?))
            .collect();
        let mut state = lock(&self.state);
        let host_frame = frames
            .iter()
            .zip(&latencies)
            .find(|(f, _)| f.source == self.host);
        let heard = match host_frame {
            None => state.started.then_some(false),
            Some((frame, latency)) => {
                state.started = true;
                state.stats.frames += 1;
                state.stats.latencies_ms.extend(*latency);
                let tone = self.tone_hz.is_none_or(|hz| has_tone(frame.pcm, hz));
                state.stats.frames_with_tone += u64::from(tone);
                Some(tone)
            }
        };
        match heard {
            Some(true) => {
                if state.gap_frames >= GAP_LOGGED_FRAMES {
                    // When the gap ended, to line it up with the session's logs.
                    tracing::info!(gap_ms = state.gap_frames * u64::from(FRAME_MS), "audio gap");
                }
                state.gap_frames = 0;
            }
            Some(false) => {
                state.gap_frames += 1;
                let gap = (state.gap_frames * u64::from(FRAME_MS)) as f64;
                state.stats.gap_ms_max = state.stats.gap_ms_max.max(gap);
            }
            None => {}
        }
        for (frame, latency) in frames.iter().zip(&latencies) {
            let voice = state.stats.voices.entry(frame.source).or_default();
            voice.frames += 1;
            voice.latencies_ms.extend(*latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces_core::media::FRAME_SAMPLES;
    use spaces_core::media::device::{AudioSource, ToneSource};

    fn frame(tone: Option<f32>) -> Vec<i16> {
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        if let Some(hz) = tone {
            ToneSource::new(hz, 0.5).read(&mut pcm).expect("tone");
        }
        pcm
    }

    #[test]
    fn the_host_tone_counts_and_a_silent_stretch_is_a_gap() {
        let clock = CaptureClock::shared();
        let probe = Probe::new(&clock, 1, Some(440.0));
        let (tone, other) = (frame(Some(440.0)), frame(Some(1_000.0)));
        probe.played(&[]);
        assert_eq!(probe.stats().gap_ms_max, 0.0, "nothing counts before audio");
        probe.sent(1, 960);
        for pcm in [&tone, &other, &other, &other, &tone] {
            probe.played(&[PlayedFrame {
                source: 1,
                timestamp: Some(960),
                pcm,
            }]);
        }
        probe.played(&[]);
        let stats = probe.stats();
        assert_eq!((stats.frames, stats.frames_with_tone), (5, 2));
        assert_eq!(stats.gap_ms_max, 60.0, "three frames without the tone");
        assert_eq!(stats.latencies_ms.len(), 5, "every frame was stamped");
        assert_eq!(stats.tone_pct(), 40.0);
    }

    #[test]
    fn arrivals_are_timed_for_the_host_only() {
        let clock = CaptureClock::shared();
        let probe = Probe::new(&clock, 1, None);
        clock.stamp(1, 0);
        clock.stamp(2, 0);
        probe.received(1, 0);
        probe.received(2, 0);
        probe.received(1, 960);
        assert_eq!(probe.stats().arrivals_ms.len(), 1);
    }
}
