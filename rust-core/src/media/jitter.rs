//! An adaptive jitter buffer: reorders packets, drops duplicates and late ones, and tells the
//! decoder, every 20 ms, whether to play a packet, recover a lost frame from the next packet's
//! FEC, or conceal it. Pure: arrival times are arguments.
//!
//! Frames are keyed by RTP timestamp (one key per 20 ms), so DTX gaps are concealed like
//! losses; sequence numbers count losses and duplicates.

use std::collections::BTreeMap;

use super::format::{FRAME_MS, RTP_TICKS_PER_FRAME};

/// Bounds of the playout delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Smallest target delay, ms.
    pub min_delay_ms: u32,
    /// Largest target delay, ms.
    pub max_delay_ms: u32,
    /// Consecutive empty 20 ms ticks after which playout stops and re-buffers (the sender
    /// paused, or the link was replaced).
    pub rebuffer_after_ticks: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay_ms: 20,
            max_delay_ms: 400,
            rebuffer_after_ticks: 15,
        }
    }
}

/// One received RTP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (48 kHz clock).
    pub timestamp: u32,
    /// Opus payload.
    pub payload: Vec<u8>,
}

/// What to do for the next 20 ms of playout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Decode this packet.
    Packet(Vec<u8>),
    /// The frame is lost but the next packet is here: decode its FEC data.
    Recover(Vec<u8>),
    /// The frame is lost: conceal it (Opus PLC).
    Conceal,
}

/// What the buffer did with an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Buffered for playout.
    Buffered,
    /// Its frame was already played or concealed.
    Late,
    /// Already buffered.
    Duplicate,
}

/// Counters since the buffer was created.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JitterStats {
    /// Distinct packets received.
    pub received: u64,
    /// Packets that arrived after their frame was played.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets never received (from sequence-number gaps).
    pub lost: u64,
    /// Frames synthesised by PLC.
    pub concealed: u64,
    /// Frames rebuilt from the next packet's FEC.
    pub recovered: u64,
    /// Frames dropped to bring latency back to the target.
    pub discarded: u64,
    /// Ticks concealed without moving on, after late packets (each adds 20 ms of delay).
    pub held: u64,
    /// Current target delay, ms.
    pub target_ms: u32,
    /// Smoothed inter-arrival jitter (RFC 3550), ms.
    pub jitter_ms: f32,
}

/// The jitter buffer of one incoming stream.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    frames: BTreeMap<i64, Vec<u8>>,
    /// Frame index of the first timestamp, to turn timestamps into small indexes.
    base_timestamp: Option<u32>,
    last_index: i64,
    next: Option<i64>,
    /// Frame index of the last frame `pop` produced.
    last_played: Option<i64>,
    ticks_waiting: u32,
    empty_ticks: u32,
    highest_seq: Option<i64>,
    first_seq: Option<i64>,
    last_transit_ms: Option<f64>,
    jitter_ms: f64,
    /// Frames added to the target because packets came late (see [`LATE_BOOST_MAX`]).
    late_boost: u32,
    /// When `late_boost` last changed (arrival clock, ms).
    late_boost_at: u64,
    /// Ticks to wait, on an empty buffer, instead of moving on (one per late packet).
    holds: u32,
    stats: JitterStats,
}

/// Most frames late arrivals add to the target (200 ms). The RFC 3550 jitter estimate follows
/// packet-to-packet variation; it misses a delay that steps up (a queue filling, a path
/// change) and a playout tick that ran in a burst on a loaded phone. Either way packets start
/// to arrive after their frame was concealed, and without this the playout point never moved
/// back: on lossy links one listener in three lost 11-16 % of its frames to lateness.
pub const LATE_BOOST_MAX: u32 = 10;
/// A frame of late boost is given back after this long without a late packet.
pub const LATE_BOOST_DECAY_MS: u64 = 10_000;

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        let mut buffer = Self {
            config,
            frames: BTreeMap::new(),
            base_timestamp: None,
            last_index: 0,
            next: None,
            last_played: None,
            ticks_waiting: 0,
            empty_ticks: 0,
            highest_seq: None,
            first_seq: None,
            last_transit_ms: None,
            jitter_ms: 0.0,
            late_boost: 0,
            late_boost_at: 0,
            holds: 0,
            stats: JitterStats::default(),
        };
        buffer.stats.target_ms = buffer.target_frames() * FRAME_MS;
        buffer
    }

    /// Adds a packet that arrived at `arrival_ms` (any monotonic clock in ms).
    pub fn insert(&mut self, packet: Packet, arrival_ms: u64) -> Arrival {
        let index = self.frame_index(packet.timestamp);
        self.track_sequence(packet.seq);
        self.track_jitter(packet.timestamp, arrival_ms);
        if self.next.is_some_and(|next| index < next) {
            self.stats.late += 1;
            // The cushion is too thin: raise the target, and let playout wait for the next
            // packet rather than conceal past it.
            self.late_boost = (self.late_boost + 1).min(LATE_BOOST_MAX);
            self.late_boost_at = arrival_ms;
            self.holds = (self.holds + 1).min(LATE_BOOST_MAX);
            return Arrival::Late;
        }
        if self.late_boost > 0 && arrival_ms >= self.late_boost_at + LATE_BOOST_DECAY_MS {
            self.late_boost -= 1;
            self.late_boost_at = arrival_ms;
        }
        if self.frames.contains_key(&index) {
            self.stats.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.frames.insert(index, packet.payload);
        self.stats.received += 1;
        Arrival::Buffered
    }

    /// The next 20 ms of playout; `None` while (re-)buffering.
    pub fn pop(&mut self) -> Option<Playout> {
        let next = match self.next {
            Some(next) => next,
            None => {
                let first = *self.frames.keys().next()?;
                // Hold the first packet for the target delay: the cushion that absorbs jitter.
                self.ticks_waiting += 1;
                if self.ticks_waiting <= self.target_frames() {
                    return None;
                }
                self.ticks_waiting = 0;
                first
            }
        };
        if self.frames.is_empty() {
            self.empty_ticks += 1;
            if self.empty_ticks >= self.config.rebuffer_after_ticks {
                // The stream paused: start over with a fresh delay when it resumes.
                self.next = None;
                self.empty_ticks = 0;
                return None;
            }
        } else {
            self.empty_ticks = 0;
        }
        if self.holds > 0 && self.frames.range(next..).next().is_none() {
            // Packets came late and nothing is here: conceal this tick without moving on, so
            // the playout point falls back by a frame and the next packet is on time.
            self.holds -= 1;
            self.stats.concealed += 1;
            self.stats.held += 1;
            return Some(Playout::Conceal);
        }
        let mut next = next;
        // Too much queued: skip the oldest frame to cut latency back towards the target.
        let depth = self.frames.range(next..).count();
        if depth > self.target_frames() as usize + 2 && self.frames.remove(&next).is_some() {
            self.stats.discarded += 1;
            next += 1;
        }
        self.next = Some(next + 1);
        self.last_played = Some(next);
        if let Some(payload) = self.frames.remove(&next) {
            return Some(Playout::Packet(payload));
        }
        if let Some(following) = self.frames.get(&(next + 1)) {
            self.stats.recovered += 1;
            return Some(Playout::Recover(following.clone()));
        }
        self.stats.concealed += 1;
        Some(Playout::Conceal)
    }

    /// Counters and the current target.
    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        stats.target_ms = self.target_frames() * FRAME_MS;
        stats.jitter_ms = self.jitter_ms as f32;
        if let (Some(first), Some(highest)) = (self.first_seq, self.highest_seq) {
            let expected = u64::try_from(highest - first + 1).unwrap_or(0);
            stats.lost = expected.saturating_sub(stats.received + stats.late);
        }
        stats
    }

    /// RTP timestamp of the frame the last [`JitterBuffer::pop`] produced (played, recovered
    /// or concealed).
    pub fn last_played_timestamp(&self) -> Option<u32> {
        let base = self.base_timestamp?;
        let index = self.last_played?;
        Some(base.wrapping_add((index * i64::from(RTP_TICKS_PER_FRAME)) as u32))
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Target delay in frames: one frame plus 2.5× the smoothed jitter, plus a frame per
    /// recent late packet, within the bounds.
    fn target_frames(&self) -> u32 {
        let wanted_ms = f64::from(FRAME_MS) + 2.5 * self.jitter_ms;
        let min = self.config.min_delay_ms.div_ceil(FRAME_MS).max(1);
        let max = self.config.max_delay_ms.div_ceil(FRAME_MS).max(min);
        ((wanted_ms / f64::from(FRAME_MS)).ceil() as u32 + self.late_boost).clamp(min, max)
    }

    /// Timestamps to frame indexes, unwrapping the 32-bit RTP clock around the last one.
    fn frame_index(&mut self, timestamp: u32) -> i64 {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        let ticks_from_base = i64::from(timestamp.wrapping_sub(base));
        let last_ticks = self.last_index * i64::from(RTP_TICKS_PER_FRAME);
        // Pick the unwrapped value closest to the last frame seen.
        let wrap = 1i64 << 32;
        let candidates = [
            ticks_from_base - wrap,
            ticks_from_base,
            ticks_from_base + wrap,
        ];
        let ticks = candidates
            .into_iter()
            .min_by_key(|t| (t - last_ticks).abs())
            .unwrap_or(ticks_from_base);
        let index = ticks.div_euclid(i64::from(RTP_TICKS_PER_FRAME));
        self.last_index = self.last_index.max(index);
        index
    }

    fn track_sequence(&mut self, seq: u16) {
        let extended = match self.highest_seq {
            None => i64::from(seq),
            Some(highest) => {
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest + delta
            }
        };
        self.first_seq = Some(self.first_seq.map_or(extended, |f| f.min(extended)));
        self.highest_seq = Some(self.highest_seq.map_or(extended, |h| h.max(extended)));
    }

    /// RFC 3550 §6.4.1 inter-arrival jitter, in ms.
    fn track_jitter(&mut self, timestamp: u32, arrival_ms: u64) {
        let sent_ms = f64::from(timestamp) / 48.0;
        let transit = arrival_ms as f64 - sent_ms;
        if let Some(last) = self.last_transit_ms {
            let d = (transit - last).abs();
            // A jump of minutes is a clock or stream reset, not jitter.
            if d < 10_000.0 {
                self.jitter_ms += (d - self.jitter_ms) / 16.0;
            }
        }
        self.last_transit_ms = Some(transit);
    }
}
