//! The end-to-end demo: an embedded relay (unless relays are given), a host streaming a tone
//! with a limited uplink, and N listeners in one process as real WebRTC peers. A tree forms;
//! the report says how fast, how deep and how well audio arrived.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nostr::prelude::{Keys, PublicKey, SecretKey};
use serde::Serialize;

use spaces_core::engine::{
    EngineError, RESERVE_TIMEOUT, Session, SessionConfig, SessionStats, SourceStats, source_id,
};
use spaces_core::media::CodecSettings;
use spaces_core::media::device::{AudioSource, NullSink, ToneSource};
use spaces_core::protocol::{ConnectionType, NetworkMetrics, Signer, SpaceRef};
use spaces_core::rtc::LinkConfig;
use spaces_core::signaling::EmbeddedRelay;

use crate::probe::{CaptureClock, Probe, ProbeStats};

/// What the demo runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// Listeners.
    pub listeners: usize,
    /// Seconds of audio after the last listener joined.
    pub seconds: u64,
    /// Relays; empty starts the embedded one.
    pub relays: Vec<String>,
    /// The host's uplink, kbit/s: small enough that listeners must relay.
    pub host_uplink_kbps: u32,
    /// The host's tone.
    pub tone_hz: f32,
    /// Seconds after the last join at which one listener that relays to others vanishes.
    pub kill_relaying_listener_at: Option<u64>,
    /// Listeners the host promotes to speaker a third into the run, each with its own tone.
    pub speakers: usize,
    /// Listeners keep warm backup links.
    pub warm_backup: bool,
    /// Members at which the host makes the space a crowd (each member then follows its
    /// neighbourhood and a sample of seats).
    pub crowd_at: usize,
}

/// The tone of the `k`-th promoted speaker: clear of the host's 440 Hz and of each other.
pub fn speaker_tone_hz(k: usize) -> f32 {
    620.0 + 180.0 * k as f32
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            listeners: 12,
            seconds: 10,
            relays: Vec::new(),
            host_uplink_kbps: 400,
            tone_hz: 440.0,
            kill_relaying_listener_at: None,
            speakers: 0,
            warm_backup: true,
            crowd_at: spaces_core::participant::CROWD_AT,
        }
    }
}

/// One listener's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenerReport {
    /// Short key.
    pub name: String,
    /// Join to first decoded frame, ms.
    pub first_audio_ms: Option<f64>,
    /// It followed a crowd's view (not the whole space) at the end.
    pub crowd: bool,
    /// Members its view held at the end.
    pub members_in_view: usize,
    /// Its parent (short key).
    pub parent: Option<String>,
    /// Hops from the host.
    pub depth: Option<u32>,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets lost, percent of expected.
    pub loss_pct: f64,
    /// Played frames carrying the tone, percent.
    pub tone_detected_pct: f64,
    /// Capture at the host to playout here, p50, ms (device I/O excluded).
    pub latency_ms_p50: Option<f64>,
    /// Same, p95.
    pub latency_ms_p95: Option<f64>,
    /// Capture at the host to the packet's arrival here, p50, ms: the network path through
    /// every hop, without jitter buffer and playout tick.
    pub arrival_ms_p50: Option<f64>,
    /// Longest stretch without the tone after the first audio, ms.
    pub gap_ms_max: f64,
    /// Its jitter buffer's target delay at the end, ms.
    pub jitter_target_ms: u32,
    /// Its smoothed arrival jitter at the end, ms.
    pub jitter_ms: f32,
    /// Its parent was the listener the demo killed; it had to re-attach.
    pub orphaned: bool,
    /// Packets received after the kill (re-attached audio).
    pub packets_after_kill: Option<u64>,
    /// Its role at the end (listener or speaker).
    pub role: String,
    /// Its warm backup parent at the end (short key).
    pub standby: Option<String>,
    /// Times its warm backup took over from a lost parent.
    pub standby_takeovers: u64,
    /// The promoted speakers' voices as heard here.
    pub voices: Vec<VoiceReport>,
}

/// A speaker's voice as one listener heard it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceReport {
    /// The speaker (short key).
    pub speaker: String,
    /// Frames played.
    pub frames: u64,
    /// Measured frequency (the speaker sends a tone), Hz.
    pub frequency_hz: Option<f64>,
    /// Capture at the speaker to playout here, p50, ms.
    pub latency_ms_p50: Option<f64>,
}

/// A promoted speaker and who heard it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeakerReport {
    /// Short key.
    pub name: String,
    /// Its tone, Hz.
    pub tone_hz: f32,
    /// Other listeners that played at least a second of it at its frequency (±3 %).
    pub heard_by: usize,
    /// Of how many other listeners.
    pub of: usize,
    /// The host played it.
    pub heard_by_host: bool,
    /// Median over listeners of the speaker-to-listener latency p50, ms.
    pub latency_ms_p50: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoSummary {
    /// Listeners started.
    pub listeners: usize,
    /// Deepest listener.
    pub max_depth: u32,
    /// The host's direct children.
    pub host_children: usize,
    /// Median first-audio time, ms.
    pub first_audio_ms_p50: Option<f64>,
    /// Median latency over listeners' medians, ms.
    pub latency_ms_p50: Option<f64>,
    /// Listeners that never got audio.
    pub silent: Vec<String>,
    /// The relaying listener killed mid-run, if any.
    pub killed: Option<String>,
    /// Warm-backup takeovers over all listeners.
    pub standby_takeovers: u64,
    /// The promoted speakers.
    pub speakers: Vec<SpeakerReport>,
}

/// The report `--json` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoReport {
    /// Per listener.
    pub listeners: Vec<ListenerReport>,
    /// Summary.
    pub summary: DemoSummary,
}

fn short(key: &PublicKey) -> String {
    key.to_hex()[..8].to_owned()
}

fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    values
        .get(((values.len() as f64 - 1.0) * p).round() as usize)
        .copied()
}

fn keys(seed: u64) -> Keys {
    let mut bytes = [0x5au8; 32];
    bytes[24..].copy_from_slice(&seed.to_be_bytes());
    // 0x5a.. prefixed scalars are far below the group order: always valid.
    Keys::new(SecretKey::from_slice(&bytes).unwrap_or_else(|_| unreachable!("valid scalar")))
}

/// Listener uplinks: a few strong Wi-Fi relays, many weak phones.
fn listener_metrics(i: usize) -> NetworkMetrics {
    let (upload_kbps, connection) = match i % 4 {
        0 => (2_000, ConnectionType::Wifi),
        1 => (300, ConnectionType::Wifi),
        2 => (150, ConnectionType::Cellular),
        _ => (600, ConnectionType::Wifi),
    };
    NetworkMetrics {
        download_kbps: 20_000,
        upload_kbps,
        max_audio_outputs: 0,
        connection,
    }
}

/// Runs the demo; `progress` receives one line per second.
pub async fn run_demo(
    config: &DemoConfig,
    progress: impl Fn(String),
) -> Result<DemoReport, EngineError> {
    let embedded = if config.relays.is_empty() {
        Some(EmbeddedRelay::start(None).await?)
    } else {
        None
    };
    let relays = match &embedded {
        Some(relay) => vec![relay.url().to_string()],
        None => config.relays.clone(),
    };
    let host_keys = keys(u64::from(std::process::id()) << 16);
    let space = SpaceRef::new(
        format!("demo-{}", nostr::prelude::Timestamp::now().as_secs()),
        host_keys.public_key(),
    )?;
    let clock = CaptureClock::shared();
    let host_voice = source_id(&host_keys.public_key());
    let host_probe = Probe::new(&clock, host_voice, None);
    let link = LinkConfig::loopback();
    let host = Session::start(SessionConfig {
        signer: host_keys.into(),
        space: space.clone(),
        name: "host".into(),
        metrics: NetworkMetrics {
            download_kbps: 20_000,
            upload_kbps: config.host_uplink_kbps,
            max_audio_outputs: 0,
            connection: ConnectionType::Wifi,
        },
        relays: relays.clone(),
        link: link.clone(),
        codec: CodecSettings::default(),
        input: Some(Box::new(ToneSource::new(config.tone_hz, 0.5))),
        output: Box::new(NullSink),
        tap: Some(Arc::clone(&host_probe) as _),
        reserve_timeout: RESERVE_TIMEOUT,
        cells: Vec::new(),
        draft_compat: false,
        warm_backup: config.warm_backup,
        crowd_at: config.crowd_at,
        ask_host_first: true,
    })
    .await?;
    progress(format!(
        "host {} streaming {} Hz on {}",
        short(host.key()),
        config.tone_hz,
        relays.join(", ")
    ));
    let mut listeners = Vec::new();
    let mut probes = Vec::new();
    let mut started = Vec::new();
    // The last listeners to join are the ones promoted: they have a microphone (a tone).
    let speaker_index = |i: usize| {
        (i + config.speakers)
            .checked_sub(config.listeners)
            .filter(|_| config.speakers > 0)
    };
    let mut speakers: Vec<(PublicKey, f32)> = Vec::new();
    for i in 0..config.listeners {
        let input = speaker_index(i)
            .map(|k| Box::new(ToneSource::new(speaker_tone_hz(k), 0.5)) as Box<dyn AudioSource>);
        let probe = Probe::new(&clock, host_voice, Some(config.tone_hz));
        let session = Session::start(SessionConfig {
            signer: Signer::from(keys((u64::from(std::process::id()) << 16) + 1 + i as u64)),
            space: space.clone(),
            name: format!("listener {i}"),
            metrics: listener_metrics(i),
            relays: relays.clone(),
            link: link.clone(),
            codec: CodecSettings::default(),
            input,
            output: Box::new(NullSink),
            tap: Some(Arc::clone(&probe) as _),
            reserve_timeout: RESERVE_TIMEOUT,
            cells: Vec::new(),
            draft_compat: false,
            warm_backup: config.warm_backup,
            crowd_at: config.crowd_at,
            ask_host_first: true,
        })
        .await?;
        started.push(Instant::now());
        if let Some(k) = speaker_index(i) {
            speakers.push((*session.key(), speaker_tone_hz(k)));
        }
        listeners.push(session);
        probes.push(probe);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let total = Duration::from_secs(config.seconds);
    let begin = Instant::now();
    let mut killed: Option<(PublicKey, Vec<(PublicKey, u64)>)> = None;
    let promote_at = Duration::from_secs((config.seconds / 3).max(1));
    let mut promoted = false;
    while begin.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !promoted && !speakers.is_empty() && begin.elapsed() >= promote_at {
            promoted = true;
            for (speaker, hz) in &speakers {
                host.promote_speaker(*speaker)?;
                progress(format!("promoted {} to speaker ({hz} Hz)", short(speaker)));
            }
        }
        if killed.is_none()
            && config
                .kill_relaying_listener_at
                .is_some_and(|at| begin.elapsed() >= Duration::from_secs(at))
        {
            let stats: Vec<SessionStats> = listeners.iter().map(Session::stats).collect();
            if let Some(index) = stats.iter().position(|s| {
                s.tree.children > 0 && s.tree.parent.is_some() && !s.tree.role.speaks()
            }) {
                let victim = *listeners[index].key();
                let orphans: Vec<(PublicKey, u64)> = listeners
                    .iter()
                    .zip(&stats)
                    .filter(|(_, s)| s.tree.parent == Some(victim))
                    .map(|(l, s)| (*l.key(), s.audio.packets_received))
                    .collect();
                let session = listeners.remove(index);
                probes.remove(index);
                session.kill().await;
                progress(format!(
                    "killed relaying listener {} ({} children orphaned)",
                    short(&victim),
                    orphans.len()
                ));
                killed = Some((victim, orphans));
            }
        }
        let stats: Vec<SessionStats> = listeners.iter().map(Session::stats).collect();
        let hearing = stats
            .iter()
            .filter(|s| s.audio.first_audio.is_some())
            .count();
        let depths = depths(&host, &listeners, &stats);
        let max_depth = depths.iter().flatten().max().copied().unwrap_or(0);
        let lost: u64 = stats.iter().map(|s| s.audio.lost).sum();
        progress(format!(
            "t={:>3}s  hearing {hearing}/{}  max depth {max_depth}  host children {}  packets lost {lost}",
            begin.elapsed().as_secs(),
            listeners.len(),
            host.stats().tree.children
        ));
    }
    let stats: Vec<SessionStats> = listeners.iter().map(Session::stats).collect();
    let depths = depths(&host, &listeners, &stats);
    let mut reports = Vec::new();
    for (((session, s), depth), probe) in listeners.iter().zip(&stats).zip(&depths).zip(&probes) {
        let measured = probe.stats();
        let expected = s.audio.packets_received + s.audio.lost;
        let mut latencies = measured.latencies_ms.clone();
        reports.push(ListenerReport {
            name: short(session.key()),
            first_audio_ms: s.audio.first_audio.map(|d| d.as_secs_f64() * 1e3),
            parent: s.tree.parent.as_ref().map(short),
            depth: *depth,
            packets_received: s.audio.packets_received,
            loss_pct: if expected == 0 {
                0.0
            } else {
                s.audio.lost as f64 * 100.0 / expected as f64
            },
            tone_detected_pct: measured.tone_pct(),
            latency_ms_p50: percentile(&mut latencies, 0.5),
            latency_ms_p95: percentile(&mut latencies, 0.95),
            arrival_ms_p50: percentile(&mut measured.arrivals_ms.clone(), 0.5),
            gap_ms_max: measured.gap_ms_max,
            jitter_target_ms: s.audio.jitter_target_ms,
            jitter_ms: s.audio.jitter_ms,
            orphaned: false,
            packets_after_kill: None,
            role: s.tree.role.to_nip53().to_owned(),
            standby: s.tree.standby.as_ref().map(short),
            standby_takeovers: s.tree.standby_takeovers,
            crowd: s.tree.crowd,
            members_in_view: s.tree.members_in_view,
            voices: speakers
                .iter()
                .filter(|(speaker, _)| speaker != session.key())
                .map(|(speaker, _)| voice_report(speaker, s, &measured))
                .collect(),
        });
    }
    if let Some((_, orphans)) = &killed {
        for (report, session) in reports.iter_mut().zip(&listeners) {
            if let Some((_, before)) = orphans.iter().find(|(k, _)| k == session.key()) {
                report.orphaned = true;
                report.packets_after_kill = Some(report.packets_received.saturating_sub(*before));
            }
        }
    }
    let mut firsts: Vec<f64> = reports.iter().filter_map(|r| r.first_audio_ms).collect();
    let mut medians: Vec<f64> = reports.iter().filter_map(|r| r.latency_ms_p50).collect();
    let summary = DemoSummary {
        listeners: reports.len(),
        max_depth: depths.iter().flatten().max().copied().unwrap_or(0),
        host_children: host.stats().tree.children,
        first_audio_ms_p50: percentile(&mut firsts, 0.5),
        latency_ms_p50: percentile(&mut medians, 0.5),
        silent: reports
            .iter()
            .filter(|r| r.first_audio_ms.is_none())
            .map(|r| r.name.clone())
            .collect(),
        killed: killed.as_ref().map(|(victim, _)| short(victim)),
        standby_takeovers: stats.iter().map(|s| s.tree.standby_takeovers).sum(),
        speakers: speakers
            .iter()
            .map(|(speaker, hz)| {
                speaker_report(speaker, *hz, &reports, &host.stats(), &host_probe.stats())
            })
            .collect(),
    };
    for session in listeners {
        session.stop().await;
    }
    host.stop().await;
    if let Some(relay) = embedded {
        relay.shutdown();
    }
    Ok(DemoReport {
        listeners: reports,
        summary,
    })
}

fn voice_report(speaker: &PublicKey, stats: &SessionStats, probe: &ProbeStats) -> VoiceReport {
    let source = source_id(speaker);
    let voice = stats.audio.sources.get(&source);
    let mut latencies = probe
        .voices
        .get(&source)
        .map(|v| v.latencies_ms.clone())
        .unwrap_or_default();
    VoiceReport {
        speaker: short(speaker),
        frames: voice.map_or(0, |v| v.frames),
        frequency_hz: voice.and_then(SourceStats::frequency_hz),
        latency_ms_p50: percentile(&mut latencies, 0.5),
    }
}

/// A voice counts as heard after a second of it at the speaker's frequency.
fn heard(voice: &VoiceReport, tone_hz: f32) -> bool {
    voice.frames >= 50
        && voice
            .frequency_hz
            .is_some_and(|f| (f - f64::from(tone_hz)).abs() <= 0.03 * f64::from(tone_hz))
}

fn speaker_report(
    speaker: &PublicKey,
    tone_hz: f32,
    listeners: &[ListenerReport],
    host: &SessionStats,
    host_probe: &ProbeStats,
) -> SpeakerReport {
    let name = short(speaker);
    let voices: Vec<&VoiceReport> = listeners
        .iter()
        .filter(|l| l.name != name)
        .filter_map(|l| l.voices.iter().find(|v| v.speaker == name))
        .collect();
    let mut latencies: Vec<f64> = voices.iter().filter_map(|v| v.latency_ms_p50).collect();
    SpeakerReport {
        heard_by: voices.iter().filter(|v| heard(v, tone_hz)).count(),
        of: listeners.iter().filter(|l| l.name != name).count(),
        heard_by_host: heard(&voice_report(speaker, host, host_probe), tone_hz),
        latency_ms_p50: percentile(&mut latencies, 0.5),
        name,
        tone_hz,
    }
}

/// Each listener's depth, following parents up to the host.
fn depths(host: &Session, listeners: &[Session], stats: &[SessionStats]) -> Vec<Option<u32>> {
    let parent_of = |key: &PublicKey| -> Option<PublicKey> {
        listeners
            .iter()
            .zip(stats)
            .find(|(s, _)| s.key() == key)
            .and_then(|(_, st)| st.tree.parent)
    };
    stats
        .iter()
        .map(|s| {
            let mut current = s.tree.parent?;
            for depth in 1..64 {
                if current == *host.key() {
                    return Some(depth);
                }
                current = parent_of(&current)?;
            }
            None
        })
        .collect()
}
