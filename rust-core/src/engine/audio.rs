//! A session's audio: what it captures and sends, what it receives, forwards, mixes and plays.
//!
//! Every packet names its voice in the RTP CSRC (the speaker's [`source_id`]); each link
//! renumbers sequence numbers for SRTP, so a voice's frames are ordered by RTP timestamp.
//! Clients that cannot set a CSRC (browsers: Chromium refuses `contributingSources` changes)
//! send their own voice without one: a packet without CSRC on a link we take a voice from is
//! that link's peer speaking, and we add the CSRC before forwarding it, so the rest of the
//! tree sees what it always sees.
//! The host's voice and the speakers' voices share the tree: speakers send theirs up to the
//! host, the host sends every voice down, each listener forwards the first copy of each frame
//! (a warm backup parent delivers a second one) and mixes the voices it hears.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nostr::prelude::PublicKey;

use crate::media::device::{AudioSink, AudioSource};
use crate::media::{
    AudioReceiver, CodecSettings, Encoder, FRAME_MS, FRAME_SAMPLES, JitterConfig, Mixer, Packet,
    RTP_TICKS_PER_FRAME,
};
use crate::rtc::{Forwarder, PeerLink, RtpHeader, RtpPacket, RtpSink};

/// A voice's identifier on the wire (the RTP CSRC): the first four bytes of the speaker's
/// key. Receivers only ever map it back through members they know, so a collision can at
/// worst merge two voices' statistics, never let a stranger speak.
pub fn source_id(key: &PublicKey) -> u32 {
    let bytes = key.to_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// One voice's frame as the playout tick pulled it, before mixing.
#[derive(Debug, Clone, Copy)]
pub struct PlayedFrame<'a> {
    /// The voice ([`source_id`]).
    pub source: u32,
    /// RTP timestamp of the frame played; `None` for concealment after a loss.
    pub timestamp: Option<u32>,
    /// The decoded samples.
    pub pcm: &'a [i16],
}

/// Something that watches a session's audio go by: level meters, recorders, and the
/// instruments of tests and the demo (capture-to-playout latency, tone detection). Called on
/// the audio paths, so it must be quick and never block.
pub trait AudioTap: Send + Sync {
    /// A frame of our own voice left with RTP `timestamp` (keep-alives are not frames).
    fn sent(&self, _source: u32, _timestamp: u32) {}
    /// A new frame of `source` arrived from the network (duplicates and keep-alives are not
    /// reported).
    fn received(&self, _source: u32, _timestamp: u32) {}
    /// One playout tick: the frames pulled, one per voice heard (empty when none was).
    fn played(&self, _frames: &[PlayedFrame<'_>]) {}
}

/// Most voices mixed at once; further ones are ignored (a space has a few speakers).
const MAX_SOURCES: usize = 16;

/// A voice not heard for this long is forgotten (its decoder and buffer freed).
const SOURCE_IDLE: Duration = Duration::from_secs(10);

/// Frames per voice remembered for duplicate detection (10 s).
const SEEN_FRAMES: usize = 512;

/// A keep-alive: a one-byte Opus packet (a TOC byte with no frame data, which RFC 6716 makes a
/// DTX frame). The host sends one every [`KEEPALIVE_EVERY`] frames while it does not speak, so
/// every link of the tree keeps carrying packets and stall detection measures the links, not
/// the speaker. Receivers forward it and never play it.
const KEEPALIVE: [u8; 1] = [0xF8];

/// Frames between keep-alives (100 ms, a third of the stall window).
const KEEPALIVE_EVERY: u32 = 5;

/// Whether a payload is a keep-alive rather than audio.
fn is_keepalive(payload: &[u8]) -> bool {
    payload.len() <= KEEPALIVE.len()
}

/// One voice's measurements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStats {
    /// Frames played.
    pub frames: u64,
    /// Zero crossings over those frames (gives a tone's frequency).
    pub crossings: u64,
    /// Samples over those frames.
    pub samples: u64,
    /// The last sample played (a crossing may straddle two frames).
    pub last_sample: Option<i16>,
}

impl SourceStats {
    /// Counts one played frame.
    pub fn add_frame(&mut self, frame: &[i16]) {
        self.frames += 1;
        self.samples += frame.len() as u64;
        let mut previous = self.last_sample;
        for &sample in frame {
            if previous.is_some_and(|p| (p < 0) != (sample < 0)) {
                self.crossings += 1;
            }
            previous = Some(sample);
        }
        self.last_sample = previous;
    }

    /// The dominant frequency of a tone, from the zero-crossing rate; `None` before any audio.
    pub fn frequency_hz(&self) -> Option<f64> {
        (self.samples > 0).then(|| {
            self.crossings as f64 / 2.0 * f64::from(crate::media::SAMPLE_RATE) / self.samples as f64
        })
    }
}

/// What a session measured about its audio. The top-level fields describe the host's voice;
/// `sources` has every voice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioStats {
    /// From session start to the first decoded frame of the host's voice.
    pub first_audio: Option<Duration>,
    /// RTP packets accepted (all voices, duplicates excluded).
    pub packets_received: u64,
    /// Host frames played since the first audio.
    pub frames_played: u64,
    /// Host packets lost (jitter buffer, from timestamp gaps).
    pub lost: u64,
    /// The host voice's jitter-buffer target, ms (what the buffer adds to latency).
    pub jitter_target_ms: u32,
    /// The host voice's smoothed arrival jitter (RFC 3550), ms.
    pub jitter_ms: f32,
    /// Host packets that arrived after their frame was played or concealed.
    pub late: u64,
    /// Host frames synthesised by packet-loss concealment.
    pub concealed: u64,
    /// Host frames dropped to bring latency back to the jitter-buffer target.
    pub discarded: u64,
    /// Copies dropped because a frame already came over another link (warm backups).
    pub duplicates: u64,
    /// Packets refused: from a link that may not send us that voice.
    pub refused: u64,
    /// Every voice heard, by source id.
    pub sources: BTreeMap<u32, SourceStats>,
}

/// Who may send us which voice. The session keeps it current; every packet reads it.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Our own voice (never taken back from the network).
    pub me: u32,
    /// The host's voice (the one the top-level statistics describe).
    pub host: u32,
    /// We are the host: speakers' voices enter the tree here.
    pub is_host: bool,
    /// Links whose audio we take, by label, with the voice of the peer at the other end (what
    /// a packet without CSRC carries): our parent and our warm backup.
    pub upstream: HashMap<String, u32>,
    /// At the host: links of speakers, each allowed to send its own voice only.
    pub speakers: HashMap<String, u32>,
}

impl Routing {
    fn admits(&self, link: &str, source: u32) -> bool {
        source != self.me
            && (self.upstream.contains_key(link)
                || (self.is_host && self.speakers.get(link) == Some(&source)))
    }

    /// The voice a packet on `link` carries: its CSRC, or without one, the voice of the peer
    /// at the other end when we take that peer's voice from this link.
    fn source(&self, link: &str, csrc: Option<u32>) -> Option<u32> {
        csrc.or_else(|| {
            self.upstream.get(link).copied().or_else(|| {
                self.is_host
                    .then(|| self.speakers.get(link).copied())
                    .flatten()
            })
        })
    }
}

/// Frames already seen per voice: a warm backup sends every frame a second time.
#[derive(Default)]
struct Seen {
    order: VecDeque<(u32, u32)>,
    set: HashSet<(u32, u32)>,
}

impl Seen {
    /// True the first time (source, timestamp) comes by.
    fn first(&mut self, source: u32, timestamp: u32) -> bool {
        if !self.set.insert((source, timestamp)) {
            return false;
        }
        self.order.push_back((source, timestamp));
        if self.order.len() > SEEN_FRAMES * MAX_SOURCES
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

struct Voice {
    receiver: AudioReceiver,
    last_arrival: Instant,
}

struct Shared {
    tap: Option<Arc<dyn AudioTap>>,
    voices: Mutex<BTreeMap<u32, Voice>>,
    seen: Mutex<Seen>,
    stats: Mutex<AudioStats>,
    routing: Mutex<Routing>,
    epoch: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The receiving side of every link: admits, de-duplicates, forwards, buffers.
pub struct Inbound {
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
}

impl RtpSink for Inbound {
    fn on_rtp(&self, link: &str, packet: &RtpPacket) {
        let shared = &self.shared;
        let csrc = packet.header.csrc.first().copied();
        let (source, admitted, is_host) = {
            let routing = lock(&shared.routing);
            let source = routing.source(link, csrc);
            (
                source,
                source.is_some_and(|s| routing.admits(link, s)),
                routing.is_host,
            )
        };
        let Some(source) = source.filter(|_| admitted) else {
            lock(&shared.stats).refused += 1;
            return;
        };
        if !lock(&shared.seen).first(source, packet.header.timestamp) {
            lock(&shared.stats).duplicates += 1;
            return;
        }
        // Children first: forwarding must not wait for our own playout. The host does not
        // echo a speaker's voice back to the speaker. A voice that came without its CSRC
        // leaves with it.
        let origin = is_host.then_some(link);
        if csrc.is_some() {
            self.forwarder.forward_except(packet, origin);
        } else {
            self.forwarder
                .forward_except(&with_voice(packet, source), origin);
        }
        if is_keepalive(&packet.payload) {
            return;
        }
        if let Some(tap) = &shared.tap {
            tap.received(source, packet.header.timestamp);
        }
        let arrival = shared.epoch.elapsed().as_millis() as u64;
        let frame = Packet {
            // Links renumber sequence numbers; a voice's frames are 20 ms apart in timestamp.
            seq: (packet.header.timestamp / RTP_TICKS_PER_FRAME) as u16,
            timestamp: packet.header.timestamp,
            payload: packet.payload.to_vec(),
        };
        let mut voices = lock(&shared.voices);
        if !voices.contains_key(&source) && voices.len() < MAX_SOURCES {
            match AudioReceiver::new(JitterConfig::default()) {
                Ok(receiver) => {
                    voices.insert(
                        source,
                        Voice {
                            receiver,
                            last_arrival: Instant::now(),
                        },
                    );
                }
                Err(e) => tracing::warn!(error = %e, "cannot decode a new voice"),
            }
        }
        if let Some(voice) = voices.get_mut(&source) {
            voice.receiver.push(frame, arrival);
            voice.last_arrival = Instant::now();
            drop(voices);
            lock(&shared.stats).packets_received += 1;
        }
    }
}

/// A copy of `packet` naming its voice in the CSRC, for a packet that came without one.
fn with_voice(packet: &RtpPacket, source: u32) -> RtpPacket {
    let mut named = packet.clone();
    named.header.csrc = vec![source];
    named
}

/// Where captured audio goes and whether it flows.
#[derive(Default)]
struct Outbound {
    /// Capturing (hosts from the start; speakers once promoted).
    speaking: AtomicBool,
    /// The link to the host, for a speaker that is not the host.
    uplink: Mutex<Option<Arc<PeerLink>>>,
}

/// How a session's audio is set up.
pub struct AudioConfig {
    /// Microphone (hosts, and listeners who may be promoted).
    pub input: Option<Box<dyn AudioSource>>,
    /// Speaker.
    pub output: Box<dyn AudioSink>,
    /// Encoder settings.
    pub codec: CodecSettings,
    /// Watches the audio go by.
    pub tap: Option<Arc<dyn AudioTap>>,
    /// Who we are and who hosts, as voices.
    pub routing: Routing,
    /// Capture from the start.
    pub speaking: bool,
    /// Send keep-alives while not speaking (the host: the root of every link's traffic).
    pub keepalive: bool,
}

/// A session's audio engine.
pub struct Audio {
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
    outbound: Arc<Outbound>,
    can_speak: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Audio {
    /// Starts playout, and capture when there is an input (it sends only while speaking).
    pub fn start(
        forwarder: Arc<Forwarder>,
        config: AudioConfig,
    ) -> Result<Self, crate::media::MediaError> {
        let me = config.routing.me;
        let host = config.routing.host;
        let shared = Arc::new(Shared {
            tap: config.tap.clone(),
            voices: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(Seen::default()),
            stats: Mutex::new(AudioStats::default()),
            routing: Mutex::new(config.routing),
            epoch: Instant::now(),
        });
        let outbound = Arc::new(Outbound::default());
        outbound.speaking.store(config.speaking, Ordering::Relaxed);
        let mut tasks = vec![tokio::spawn(playout(
            Arc::clone(&shared),
            config.output,
            host,
        ))];
        let can_speak = config.input.is_some();
        if can_speak || config.keepalive {
            let encoder = Encoder::new(config.codec)?;
            tasks.push(tokio::spawn(capture(
                Arc::clone(&forwarder),
                Arc::clone(&outbound),
                Capture {
                    input: config.input,
                    encoder,
                    tap: config.tap,
                    source: me,
                    keepalive: config.keepalive,
                },
            )));
        }
        Ok(Self {
            shared,
            forwarder,
            outbound,
            can_speak,
            tasks,
        })
    }

    /// The sink for every link.
    pub fn inbound(&self) -> Arc<Inbound> {
        Arc::new(Inbound {
            shared: Arc::clone(&self.shared),
            forwarder: Arc::clone(&self.forwarder),
        })
    }

    /// Changes who may send us what.
    pub fn route(&self, change: impl FnOnce(&mut Routing)) {
        change(&mut lock(&self.shared.routing));
    }

    /// Starts or stops sending our voice; false when there is no microphone.
    pub fn set_speaking(&self, speaking: bool) -> bool {
        self.outbound.speaking.store(speaking, Ordering::Relaxed);
        self.can_speak || !speaking
    }

    /// Sends our voice up this link too (a speaker's link to the host).
    pub fn set_uplink(&self, link: Option<Arc<PeerLink>>) {
        *lock(&self.outbound.uplink) = link;
    }

    /// What was measured so far.
    pub fn stats(&self) -> AudioStats {
        let mut stats = lock(&self.shared.stats).clone();
        let host = lock(&self.shared.routing).host;
        if let Some(voice) = lock(&self.shared.voices).get(&host) {
            let jitter = voice.receiver.stats();
            stats.lost = jitter.lost;
            stats.jitter_target_ms = jitter.target_ms;
            stats.jitter_ms = jitter.jitter_ms;
            stats.late = jitter.late;
            stats.concealed = jitter.concealed;
            stats.discarded = jitter.discarded;
        }
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

/// The sending side: the microphone (if any), the encoder, our voice's id.
struct Capture {
    input: Option<Box<dyn AudioSource>>,
    encoder: Encoder,
    tap: Option<Arc<dyn AudioTap>>,
    source: u32,
    keepalive: bool,
}

/// Every 20 ms: read, and while speaking encode, stamp with our voice, send to our children
/// and up to the host; while not speaking, a keep-alive every 100 ms when asked to.
async fn capture(forwarder: Arc<Forwarder>, outbound: Arc<Outbound>, mut capture: Capture) {
    let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let source = capture.source;
    let (mut active, mut retry_at) = (false, 0u32);
    for n in 0u32.. {
        ticker.tick().await;
        let wanted = outbound.speaking.load(Ordering::Relaxed);
        if let Some(input) = capture.input.as_mut() {
            // The microphone opens when we start speaking and closes when we stop (muted,
            // demoted): a device that fails to open costs our voice, not the session, and
            // is tried again a second later.
            if wanted != active && n >= retry_at {
                match input.set_active(wanted) {
                    Ok(()) => active = wanted,
                    Err(e) => {
                        tracing::warn!(error = %e, "microphone did not open; trying again in 1 s");
                        retry_at = n + 1_000 / FRAME_MS;
                    }
                }
            }
            // Keep reading while muted: a source's buffer must not fill with stale audio.
            if let Err(e) = input.read(&mut frame) {
                tracing::warn!(error = %e, "capture failed; sending silence");
                frame.fill(0);
            }
        }
        let timestamp = n.wrapping_mul(RTP_TICKS_PER_FRAME);
        let speaking = capture.input.is_some() && active;
        let payload = if speaking {
            match capture.encoder.encode(&frame) {
                Ok(payload) => payload,
                Err(_) => continue,
            }
        } else if capture.keepalive && n % KEEPALIVE_EVERY == 0 {
            KEEPALIVE.to_vec()
        } else {
            continue;
        };
        if speaking && let Some(tap) = &capture.tap {
            tap.sent(source, timestamp);
        }
        let packet = RtpPacket {
            header: RtpHeader {
                version: 2,
                sequence_number: n as u16,
                timestamp,
                csrc: vec![source],
                ..RtpHeader::default()
            },
            payload: Bytes::from(payload),
        };
        forwarder.forward(&packet);
        if !speaking {
            continue;
        }
        let uplink = lock(&outbound.uplink).clone();
        if let Some(uplink) = uplink
            && let Err(e) = uplink.send(packet).await
        {
            tracing::debug!(error = %e, "voice not sent to the host");
        }
    }
}

/// Every 20 ms: pull a frame of every voice, count, show the tap, mix, play.
async fn playout(shared: Arc<Shared>, mut output: Box<dyn AudioSink>, host: u32) {
    let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
    let mut mixer = Mixer::<u32>::new();
    let mut mixed = vec![0i16; FRAME_SAMPLES];
    loop {
        ticker.tick().await;
        let pulled: Vec<(u32, Vec<i16>, Option<u32>)> = {
            let mut voices = lock(&shared.voices);
            voices.retain(|source, voice| {
                let live = voice.last_arrival.elapsed() < SOURCE_IDLE;
                if !live {
                    mixer.remove(source);
                }
                live
            });
            voices
                .iter_mut()
                .filter_map(|(source, voice)| {
                    let frame = voice.receiver.pull()?;
                    Some((*source, frame, voice.receiver.last_played_timestamp()))
                })
                .collect()
        };
        {
            let mut stats = lock(&shared.stats);
            if pulled.iter().any(|(source, ..)| *source == host) {
                if stats.first_audio.is_none() {
                    let first = shared.epoch.elapsed();
                    tracing::debug!(ms = first.as_millis() as u64, "first audio played");
                    stats.first_audio = Some(first);
                }
                stats.frames_played += 1;
            }
            for (source, frame, _) in &pulled {
                stats.sources.entry(*source).or_default().add_frame(frame);
            }
        }
        if let Some(tap) = &shared.tap {
            let frames: Vec<PlayedFrame<'_>> = pulled
                .iter()
                .map(|(source, pcm, timestamp)| PlayedFrame {
                    source: *source,
                    timestamp: *timestamp,
                    pcm,
                })
                .collect();
            tap.played(&frames);
        }
        if pulled.is_empty() {
            continue;
        }
        let inputs: Vec<(u32, &[i16])> = pulled
            .iter()
            .map(|(source, frame, _)| (*source, frame.as_slice()))
            .collect();
        mixer.mix(&inputs, &mut mixed);
        if let Err(e) = output.write(&mixed) {
            tracing::warn!(error = %e, "playout device failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_counts_once_per_voice() {
        let mut seen = Seen::default();
        assert!(seen.first(1, 960));
        assert!(!seen.first(1, 960), "the backup's copy is a duplicate");
        assert!(
            seen.first(2, 960),
            "another voice with the same timestamp is not"
        );
        for ts in 0..(SEEN_FRAMES * MAX_SOURCES) as u32 + 10 {
            seen.first(3, ts * 960 + 1);
        }
        assert!(
            seen.set.len() <= SEEN_FRAMES * MAX_SOURCES,
            "memory is bounded"
        );
    }

    #[test]
    fn routing_admits_only_upstream_or_a_speakers_own_voice() {
        let mut routing = Routing {
            me: 7,
            host: 1,
            ..Routing::default()
        };
        routing.upstream.insert("parent".into(), 4);
        assert!(routing.admits("parent", 1));
        assert!(
            routing.admits("parent", 9),
            "a speaker's voice comes down the tree"
        );
        assert!(!routing.admits("parent", 7), "never our own voice back");
        assert!(!routing.admits("child", 1), "a child cannot inject audio");
        routing.is_host = true;
        routing.speakers.insert("speaker".into(), 9);
        assert!(routing.admits("speaker", 9));
        assert!(
            !routing.admits("speaker", 1),
            "a speaker sends only its own voice"
        );
        assert!(!routing.admits("listener", 5));
    }

    #[test]
    fn a_packet_without_csrc_is_the_voice_of_the_peer_we_take_a_voice_from() {
        let mut routing = Routing {
            me: 7,
            host: 1,
            ..Routing::default()
        };
        routing.upstream.insert("browser-host".into(), 1);
        assert_eq!(routing.source("browser-host", None), Some(1));
        assert_eq!(
            routing.source("browser-host", Some(9)),
            Some(9),
            "a CSRC wins"
        );
        assert_eq!(
            routing.source("child", None),
            None,
            "a child has no voice here"
        );
        routing.speakers.insert("browser-speaker".into(), 5);
        assert_eq!(
            routing.source("browser-speaker", None),
            None,
            "only the host takes speakers' voices"
        );
        routing.is_host = true;
        assert_eq!(routing.source("browser-speaker", None), Some(5));
        assert!(routing.admits("browser-speaker", 5));
        let bare = RtpPacket {
            header: RtpHeader {
                version: 2,
                timestamp: 960,
                ..RtpHeader::default()
            },
            payload: Bytes::from_static(&[0x78, 1, 2]),
        };
        let named = with_voice(&bare, 5);
        assert_eq!(named.header.csrc, vec![5], "forwarded with its voice named");
        assert_eq!(
            (named.header.timestamp, &named.payload),
            (960, &bare.payload),
            "and nothing else changed"
        );
    }

    #[test]
    fn a_tone_frequency_comes_from_zero_crossings() {
        let mut stats = SourceStats::default();
        let mut tone = crate::media::device::ToneSource::new(660.0, 0.5);
        let mut frame = vec![0i16; FRAME_SAMPLES];
        for _ in 0..50 {
            tone.read(&mut frame).expect("tone");
            stats.add_frame(&frame);
        }
        let hz = stats.frequency_hz().expect("audio");
        assert!((hz - 660.0).abs() < 2.0, "{hz} Hz");
        assert_eq!(stats.frames, 50);
        assert_eq!(SourceStats::default().frequency_hz(), None);
    }

    /// A microphone that logs when it is opened and closed; its first `fail` opens fail.
    struct LoggedMic {
        log: Arc<Mutex<Vec<bool>>>,
        fail: usize,
    }

    impl AudioSource for LoggedMic {
        fn read(&mut self, frame: &mut [i16]) -> Result<bool, crate::media::MediaError> {
            frame.fill(0);
            Ok(true)
        }

        fn set_active(&mut self, active: bool) -> Result<(), crate::media::MediaError> {
            lock(&self.log).push(active);
            if active && self.fail > 0 {
                self.fail -= 1;
                return Err(crate::media::MediaError::Device("busy".into()));
            }
            Ok(())
        }
    }

    fn with_mic(fail: usize) -> (Audio, Arc<Mutex<Vec<bool>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let audio = Audio::start(
            Arc::new(Forwarder::new(16)),
            AudioConfig {
                input: Some(Box::new(LoggedMic {
                    log: Arc::clone(&log),
                    fail,
                })),
                output: Box::new(crate::media::device::NullSink),
                codec: CodecSettings::default(),
                tap: None,
                routing: Routing::default(),
                speaking: false,
                keepalive: false,
            },
        )
        .expect("audio");
        (audio, log)
    }

    #[tokio::test(start_paused = true)]
    async fn the_microphone_is_open_only_while_we_speak() {
        let (audio, log) = with_mic(0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            lock(&log).is_empty(),
            "a listener's microphone stays closed"
        );
        assert!(audio.set_speaking(true));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*lock(&log), [true], "opened once on promotion");
        audio.set_speaking(false);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*lock(&log), [true, false], "closed when muted");
        audio.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn a_microphone_that_fails_to_open_is_tried_again_a_second_later() {
        let (audio, log) = with_mic(1);
        audio.set_speaking(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(*lock(&log), [true], "one attempt, then a pause");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(*lock(&log), [true, true], "tried again, and open");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(lock(&log).len(), 2, "no further attempt once open");
        audio.stop();
    }

    #[tokio::test]
    async fn a_keep_alive_is_admitted_but_never_played_and_audio_still_is() {
        let forwarder = Arc::new(Forwarder::new(16));
        let audio = Audio::start(
            Arc::clone(&forwarder),
            AudioConfig {
                input: None,
                output: Box::new(crate::media::device::NullSink),
                codec: CodecSettings::default(),
                tap: None,
                routing: Routing {
                    me: 7,
                    host: 1,
                    ..Routing::default()
                },
                speaking: false,
                keepalive: false,
            },
        )
        .expect("audio");
        audio.route(|r| r.upstream = HashMap::from([("parent".to_owned(), 1)]));
        let inbound = audio.inbound();
        let packet = |timestamp: u32, payload: Vec<u8>| RtpPacket {
            header: RtpHeader {
                version: 2,
                timestamp,
                csrc: vec![1],
                ..RtpHeader::default()
            },
            payload: Bytes::from(payload),
        };
        for n in 0..5 {
            inbound.on_rtp(
                "parent",
                &packet(n * 5 * RTP_TICKS_PER_FRAME, KEEPALIVE.to_vec()),
            );
        }
        let stats = audio.stats();
        assert_eq!(stats.packets_received, 0, "keep-alives are not audio");
        assert_eq!(stats.refused, 0, "but they come from an admitted link");
        assert!(
            lock(&audio.shared.voices).is_empty(),
            "no decoder for silence"
        );
        let mut encoder = Encoder::new(CodecSettings::default()).expect("encoder");
        let frame = encoder.encode(&vec![0i16; FRAME_SAMPLES]).expect("frame");
        assert!(
            !is_keepalive(&frame),
            "an encoded frame is never taken for a keep-alive"
        );
        inbound.on_rtp("parent", &packet(100 * RTP_TICKS_PER_FRAME, frame.clone()));
        assert_eq!(audio.stats().packets_received, 1);
        // A client that cannot set a CSRC (a browser host): its packets are its voice.
        let mut bare = packet(101 * RTP_TICKS_PER_FRAME, frame);
        bare.header.csrc.clear();
        inbound.on_rtp("parent", &bare);
        inbound.on_rtp("child", &bare);
        let stats = audio.stats();
        assert_eq!(
            stats.packets_received, 2,
            "taken once, as the parent's voice"
        );
        assert_eq!(stats.refused, 1, "not from a child");
        assert!(lock(&audio.shared.voices).contains_key(&1));
        audio.stop();
    }
}
