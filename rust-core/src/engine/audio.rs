//! A session's audio: what it captures and sends, what it receives, forwards and plays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::media::analysis::has_tone;
use crate::media::device::{AudioSink, AudioSource};
use crate::media::{
    AudioReceiver, CodecSettings, Encoder, FRAME_MS, FRAME_SAMPLES, JitterConfig, Packet,
    RTP_TICKS_PER_FRAME,
};
use crate::rtc::{Forwarder, RtpHeader, RtpPacket, RtpSink};

/// Capture instants by RTP timestamp, shared in-process between a host and its listeners so
/// the demo can measure capture-to-playout latency on one clock.
pub type CaptureClock = Arc<Mutex<HashMap<u32, Instant>>>;

/// What a session measured about its audio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioStats {
    /// From session start to the first decoded frame.
    pub first_audio: Option<Duration>,
    /// RTP packets received from the parent.
    pub packets_received: u64,
    /// Frames played since the first audio.
    pub frames_played: u64,
    /// Of those, frames carrying the expected tone.
    pub frames_with_tone: u64,
    /// Capture-to-playout latency of played frames, ms.
    pub latencies_ms: Vec<f64>,
    /// Longest stretch without the tone after the first audio, ms.
    pub gap_ms_max: f64,
    /// Packets lost (jitter buffer, from sequence gaps).
    pub lost: u64,
}

struct Shared {
    receiver: Mutex<AudioReceiver>,
    stats: Mutex<AudioStats>,
    epoch: Instant,
}

/// The receiving side: forwards every packet to the children and buffers it for playout.
pub struct Inbound {
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
}

impl RtpSink for Inbound {
    fn on_rtp(&self, _link: &str, packet: &RtpPacket) {
        // Children first: forwarding must not wait for our own playout.
        self.forwarder.forward(packet);
        let arrival = self.shared.epoch.elapsed().as_millis() as u64;
        let payload = Packet {
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            payload: packet.payload.to_vec(),
        };
        self.shared
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(payload, arrival);
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .packets_received += 1;
    }
}

/// A session's audio engine.
pub struct Audio {
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Audio {
    /// Starts playout (and capture when `input` is given: hosts and speakers).
    pub fn start(
        forwarder: Arc<Forwarder>,
        input: Option<Box<dyn AudioSource>>,
        output: Box<dyn AudioSink>,
        codec: CodecSettings,
        tone_hz: Option<f32>,
        clock: Option<CaptureClock>,
    ) -> Result<Self, crate::media::MediaError> {
        let shared = Arc::new(Shared {
            receiver: Mutex::new(AudioReceiver::new(JitterConfig::default())?),
            stats: Mutex::new(AudioStats::default()),
            epoch: Instant::now(),
        });
        let mut tasks = vec![tokio::spawn(playout(
            Arc::clone(&shared),
            output,
            tone_hz,
            clock.clone(),
        ))];
        if let Some(input) = input {
            let encoder = Encoder::new(codec)?;
            tasks.push(tokio::spawn(capture(
                Arc::clone(&forwarder),
                input,
                encoder,
                clock,
            )));
        }
        Ok(Self {
            shared,
            forwarder,
            tasks,
        })
    }

    /// The sink for links whose audio we receive.
    pub fn inbound(&self) -> Arc<Inbound> {
        Arc::new(Inbound {
            shared: Arc::clone(&self.shared),
            forwarder: Arc::clone(&self.forwarder),
        })
    }

    /// What was measured so far.
    pub fn stats(&self) -> AudioStats {
        let mut stats = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        stats.lost = self
            .shared
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats()
            .lost;
        stats
    }

    /// Stops capture and playout.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Audio {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every 20 ms: read, encode, stamp, hand to the children.
async fn capture(
    forwarder: Arc<Forwarder>,
    mut input: Box<dyn AudioSource>,
    mut encoder: Encoder,
    clock: Option<CaptureClock>,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    for n in 0u32.. {
        ticker.tick().await;
        if let Err(e) = input.read(&mut frame) {
            tracing::warn!(error = %e, "capture failed; sending silence");
            frame.fill(0);
        }
        let Ok(payload) = encoder.encode(&frame) else {
            continue;
        };
        let timestamp = n.wrapping_mul(RTP_TICKS_PER_FRAME);
        if let Some(clock) = &clock {
            let mut clock = clock.lock().unwrap_or_else(PoisonError::into_inner);
            clock.insert(timestamp, Instant::now());
            // Keep a minute of history.
            if clock.len() > 3_000 {
                let oldest = timestamp.wrapping_sub(3_000 * RTP_TICKS_PER_FRAME);
                clock.remove(&oldest);
            }
        }
        let packet = RtpPacket {
            header: RtpHeader {
                version: 2,
                sequence_number: n as u16,
                timestamp,
                ..RtpHeader::default()
            },
            payload: Bytes::from(payload),
        };
        forwarder.forward(&packet);
    }
}

/// Every 20 ms: pull a frame, measure it, play it.
async fn playout(
    shared: Arc<Shared>,
    mut output: Box<dyn AudioSink>,
    tone_hz: Option<f32>,
    clock: Option<CaptureClock>,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
    let mut gap_frames = 0u64;
    loop {
        ticker.tick().await;
        let (frame, played_ts) = {
            let mut receiver = shared
                .receiver
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (receiver.pull(), receiver.last_played_timestamp())
        };
        let mut stats = shared.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(frame) = frame else {
            if stats.first_audio.is_some() {
                gap_frames += 1;
                stats.gap_ms_max = stats
                    .gap_ms_max
                    .max((gap_frames * u64::from(FRAME_MS)) as f64);
            }
            continue;
        };
        if stats.first_audio.is_none() {
            stats.first_audio = Some(shared.epoch.elapsed());
        }
        stats.frames_played += 1;
        let heard = tone_hz.is_none_or(|f| has_tone(&frame, f));
        if heard {
            stats.frames_with_tone += 1;
            gap_frames = 0;
        } else {
            gap_frames += 1;
            stats.gap_ms_max = stats
                .gap_ms_max
                .max((gap_frames * u64::from(FRAME_MS)) as f64);
        }
        let captured = match (&clock, played_ts) {
            (Some(clock), Some(ts)) => clock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&ts)
                .copied(),
            _ => None,
        };
        if let Some(captured) = captured {
            stats
                .latencies_ms
                .push(captured.elapsed().as_secs_f64() * 1e3);
        }
        drop(stats);
        if let Err(e) = output.write(&frame) {
            tracing::warn!(error = %e, "playout device failed");
        }
    }
}
