//! Real audio through the real codec: tones survive loss, reordering and jitter; FEC beats
//! concealment; the jitter buffer, mixer and devices behave at their edges.

use super::analysis::{has_tone, level_dbfs, tone_share};
use super::device::{AudioSink, AudioSource, ToneSource, WavSink, WavSource};
use super::*;

/// A tiny deterministic generator (xorshift) so network conditions are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn tone_frames(freq: f32, count: usize) -> Vec<Vec<i16>> {
    let mut source = ToneSource::new(freq, 0.5);
    (0..count)
        .map(|_| {
            let mut frame = vec![0; FRAME_SAMPLES];
            source.read(&mut frame).unwrap();
            frame
        })
        .collect()
}

/// Sends `frames` through an encoder and a simulated network, plays them out through an
/// `AudioReceiver` on a 20 ms clock; returns the played frames and the buffer's stats.
fn through_network(
    frames: &[Vec<i16>],
    loss: f64,
    reorder: f64,
    jitter_ms: f64,
    seed: u64,
) -> (Vec<Vec<i16>>, JitterStats) {
    let mut encoder = Encoder::new(CodecSettings::default()).unwrap();
    let mut rng = Rng(seed);
    let mut arrivals: Vec<(f64, Packet)> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let payload = encoder.encode(frame).unwrap();
        let sent_ms = i as f64 * f64::from(FRAME_MS);
        if rng.next() < loss {
            continue;
        }
        let mut arrival = sent_ms + 30.0 + rng.next() * jitter_ms;
        if rng.next() < reorder {
            arrival += f64::from(FRAME_MS) * 1.5;
        }
        let packet = Packet {
            seq: i as u16,
            timestamp: (i as u32).wrapping_mul(RTP_TICKS_PER_FRAME),
            payload,
        };
        if rng.next() < 0.01 {
            arrivals.push((arrival + 5.0, packet.clone()));
        }
        arrivals.push((arrival, packet));
    }
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut receiver = AudioReceiver::new(JitterConfig::default()).unwrap();
    let mut played = Vec::new();
    let mut pending = arrivals.into_iter().peekable();
    let ticks = frames.len() + 30;
    for tick in 0..ticks {
        let now = tick as f64 * f64::from(FRAME_MS);
        while let Some((arrival, _)) = pending.peek() {
            if *arrival > now {
                break;
            }
            let Some((arrival, packet)) = pending.next() else {
                break;
            };
            receiver.push(packet, arrival as u64);
        }
        if let Some(frame) = receiver.pull() {
            played.push(frame);
        }
    }
    (played, receiver.stats())
}

/// Share of frames with the tone, and the longest run without it, after a 5-frame warm-up
/// (the decoder's first frames ramp in).
fn continuity(played: &[Vec<i16>], sent: usize, freq: f32) -> (f64, usize) {
    // Playout continues (concealing) after the last packet: judge only the sent span.
    let body = &played[5.min(played.len())..sent.min(played.len())];
    let detected: Vec<bool> = body.iter().map(|f| has_tone(f, freq)).collect();
    let share = detected.iter().filter(|d| **d).count() as f64 / detected.len().max(1) as f64;
    let mut longest = 0;
    let mut run = 0;
    for d in detected {
        run = if d { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    (share, longest)
}

#[test]
fn a_tone_survives_loss_reordering_and_jitter() {
    let frames = tone_frames(440.0, 500);
    let (played, stats) = through_network(&frames, 0.05, 0.05, 40.0, 7);
    let (share, longest_gap) = continuity(&played, frames.len(), 440.0);
    // Thresholds: 95 % of 20 ms frames carry the tone and no gap exceeds 3 frames (60 ms).
    assert!(
        share >= 0.95,
        "tone in only {:.1} % of frames ({stats:?})",
        share * 100.0
    );
    assert!(longest_gap <= 3, "gap of {longest_gap} frames ({stats:?})");
    assert!(stats.lost > 10, "loss was simulated: {stats:?}");
    assert!(stats.duplicates > 0, "duplicates were simulated: {stats:?}");
    assert!(
        stats.recovered > 0,
        "single losses were recovered by FEC: {stats:?}"
    );
    assert!(stats.target_ms > 20, "jitter raised the target: {stats:?}");
    // The tone is 440 Hz, not something else.
    let wrong = played[5..frames.len()]
        .iter()
        .filter(|f| has_tone(f, 660.0))
        .count();
    assert_eq!(wrong, 0);
}

#[test]
fn heavy_loss_degrades_but_keeps_the_stream_continuous() {
    let frames = tone_frames(523.0, 500);
    let (played, stats) = through_network(&frames, 0.20, 0.0, 10.0, 11);
    let (share, _) = continuity(&played, frames.len(), 523.0);
    assert!(
        share >= 0.80,
        "tone in only {:.1} % of frames at 20 % loss ({stats:?})",
        share * 100.0
    );
    // Every tick after start-up produced a frame: playout never stalled.
    assert!(played.len() >= 500, "{} frames played", played.len());
}

fn sweep(count: usize) -> Vec<Vec<i16>> {
    // A tone whose pitch steps every 60 ms: concealment cannot guess it, FEC carries it.
    let mut phase = 0.0f64;
    (0..count)
        .map(|i| {
            let freq = 300.0 + 150.0 * ((i / 3) % 8) as f64;
            (0..FRAME_SAMPLES)
                .map(|_| {
                    phase += 2.0 * std::f64::consts::PI * freq / f64::from(SAMPLE_RATE);
                    (12_000.0 * phase.sin()) as i16
                })
                .collect()
        })
        .collect()
}

fn error_energy(a: &[i16], b: &[i16]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum()
}

#[test]
fn fec_measurably_recovers_single_losses() {
    let frames = sweep(300);
    let mut encoder = Encoder::new(CodecSettings {
        expected_loss_pct: 20,
        ..CodecSettings::default()
    })
    .unwrap();
    let packets: Vec<Vec<u8>> = frames.iter().map(|f| encoder.encode(f).unwrap()).collect();
    let lost: Vec<usize> = (20..290).step_by(10).collect();
    let mut reference = Decoder::new().unwrap();
    let mut with_fec = Decoder::new().unwrap();
    let mut plc_only = Decoder::new().unwrap();
    let (mut fec_error, mut plc_error) = (0.0, 0.0);
    let mut clean = vec![0i16; FRAME_SAMPLES];
    let mut a = vec![0i16; FRAME_SAMPLES];
    let mut b = vec![0i16; FRAME_SAMPLES];
    for (i, packet) in packets.iter().enumerate() {
        reference.decode(packet, &mut clean).unwrap();
        if lost.contains(&i) {
            with_fec.recover(&packets[i + 1], &mut a).unwrap();
            plc_only.conceal(&mut b).unwrap();
            fec_error += error_energy(&clean, &a);
            plc_error += error_energy(&clean, &b);
        } else {
            with_fec.decode(packet, &mut a).unwrap();
            plc_only.decode(packet, &mut b).unwrap();
        }
    }
    assert!(
        fec_error < plc_error * 0.5,
        "FEC error {fec_error:.3e} vs PLC {plc_error:.3e}"
    );
}

#[test]
fn codec_settings_are_validated() {
    for bad in [
        CodecSettings {
            bitrate_bps: 8_000,
            ..CodecSettings::default()
        },
        CodecSettings {
            bitrate_bps: 96_000,
            ..CodecSettings::default()
        },
        CodecSettings {
            complexity: 11,
            ..CodecSettings::default()
        },
        CodecSettings {
            expected_loss_pct: 101,
            ..CodecSettings::default()
        },
    ] {
        assert!(
            matches!(Encoder::new(bad), Err(MediaError::InvalidSetting(_))),
            "{bad:?}"
        );
    }
    let mut encoder = Encoder::new(CodecSettings::default()).unwrap();
    assert_eq!(
        encoder.encode(&[0; 480]),
        Err(MediaError::FrameSize {
            got: 480,
            expected: FRAME_SAMPLES
        })
    );
    let mut decoder = Decoder::new().unwrap();
    let mut out = vec![0; FRAME_SAMPLES];
    assert!(matches!(
        decoder.decode(&[0xff, 0xff, 0xff], &mut out),
        Err(MediaError::Opus(_))
    ));
}

#[test]
fn dtx_shrinks_silence() {
    let mut dtx = Encoder::new(CodecSettings {
        dtx: true,
        ..CodecSettings::default()
    })
    .unwrap();
    let mut plain = Encoder::new(CodecSettings::default()).unwrap();
    let silence = vec![0i16; FRAME_SAMPLES];
    let (mut with, mut without) = (0, 0);
    for _ in 0..50 {
        with += dtx.encode(&silence).unwrap().len();
        without += plain.encode(&silence).unwrap().len();
    }
    assert!(with < without, "DTX {with} bytes vs {without}");
}

fn packet(i: u32) -> Packet {
    Packet {
        seq: i as u16,
        timestamp: i * RTP_TICKS_PER_FRAME,
        payload: vec![i as u8],
    }
}

/// Drives a buffer on a 20 ms clock: before each tick's pop, inserts the packets that have
/// arrived by then. Returns what each tick played once playout started.
fn play(buffer: &mut JitterBuffer, arrivals: &[(Packet, u64)], ticks: u64) -> Vec<Playout> {
    let mut played = Vec::new();
    for tick in 0..ticks {
        let now = tick * 20;
        for (p, at) in arrivals
            .iter()
            .filter(|(_, at)| (now.saturating_sub(19)..=now).contains(at))
        {
            buffer.insert(p.clone(), *at);
        }
        if let Some(playout) = buffer.pop() {
            played.push(playout);
        }
    }
    played
}

fn on_time(frames: &[u32]) -> Vec<(Packet, u64)> {
    frames
        .iter()
        .map(|&i| (packet(i), u64::from(i) * 20))
        .collect()
}

#[test]
fn jitter_buffer_reorders_and_drops_duplicates_and_late_packets() {
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    // 1 overtakes 0; 2 arrives twice.
    let arrivals = vec![
        (packet(1), 0),
        (packet(0), 1),
        (packet(2), 40),
        (packet(2), 41),
        (packet(3), 60),
    ];
    let played = play(&mut buffer, &arrivals, 6);
    assert_eq!(
        played[..4],
        [
            Playout::Packet(vec![0]),
            Playout::Packet(vec![1]),
            Playout::Packet(vec![2]),
            Playout::Packet(vec![3])
        ]
    );
    assert_eq!(buffer.insert(packet(1), 200), Arrival::Late);
    let stats = buffer.stats();
    assert_eq!(
        (stats.received, stats.duplicates, stats.late, stats.lost),
        (4, 1, 1, 0)
    );
}

#[test]
fn jitter_buffer_recovers_from_the_next_packet_or_conceals() {
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let played = play(&mut buffer, &on_time(&[0, 2, 3, 6, 7]), 9);
    assert_eq!(played[0], Playout::Packet(vec![0]));
    assert_eq!(
        played[1],
        Playout::Recover(vec![2]),
        "1 is lost, 2 carries its FEC"
    );
    assert_eq!(played[2], Playout::Packet(vec![2]));
    assert_eq!(
        played[4],
        Playout::Conceal,
        "4 lost and 5 not here to recover it"
    );
    assert_eq!(played[5], Playout::Recover(vec![6]));
    assert_eq!(played[6], Playout::Packet(vec![6]));
    let stats = buffer.stats();
    assert_eq!((stats.recovered, stats.concealed, stats.lost), (2, 1, 3));
}

#[test]
fn jitter_raises_the_target_within_bounds() {
    let mut steady = JitterBuffer::new(JitterConfig::default());
    let mut shaky = JitterBuffer::new(JitterConfig::default());
    let mut rng = Rng(3);
    for i in 0..200u32 {
        steady.insert(packet(i), u64::from(i) * 20);
        shaky.insert(packet(i), u64::from(i) * 20 + (rng.next() * 120.0) as u64);
    }
    assert_eq!(steady.stats().target_ms, 20);
    let target = shaky.stats().target_ms;
    assert!(
        (60..=400).contains(&target),
        "target {target} ms for ±60 ms jitter"
    );
    let capped = JitterConfig {
        max_delay_ms: 80,
        ..JitterConfig::default()
    };
    let mut bounded = JitterBuffer::new(capped);
    let mut rng = Rng(3);
    for i in 0..200u32 {
        bounded.insert(packet(i), u64::from(i) * 20 + (rng.next() * 500.0) as u64);
    }
    assert_eq!(bounded.stats().target_ms, 80);
}

#[test]
fn jitter_buffer_cuts_latency_after_a_backlog() {
    // A parent hands over the last 400 ms it held (frames 0–19) at once when we attach, then
    // the stream runs live: frame 20 is 20 ms behind frame 19's arrival, and so on.
    let mut arrivals: Vec<(Packet, u64)> = (0..20).map(|i| (packet(i), 0)).collect();
    arrivals.extend((20..60).map(|i| (packet(i), u64::from(i - 19) * 20)));
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let played = play(&mut buffer, &arrivals, 60);
    let stats = buffer.stats();
    assert!(stats.discarded >= 10, "{stats:?}");
    assert!(
        buffer.len() as u32 <= stats.target_ms / 20 + 3,
        "{} still queued, {stats:?}",
        buffer.len()
    );
    // Nothing was lost along the way: every frame was played, discarded or is still queued.
    let packets = played
        .iter()
        .filter(|p| matches!(p, Playout::Packet(_)))
        .count() as u64;
    assert_eq!(stats.late, 0, "{stats:?}");
    assert_eq!(
        packets + stats.discarded + buffer.len() as u64,
        60,
        "{stats:?}"
    );
}

#[test]
fn jitter_buffer_rebuffers_after_a_pause_and_handles_wraparound() {
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    // Sequence numbers and timestamps that wrap in the middle of the stream.
    let start_ts = u32::MAX - 2 * RTP_TICKS_PER_FRAME + 1;
    let arrivals: Vec<(Packet, u64)> = (0..5u32)
        .map(|i| {
            let p = Packet {
                seq: 65_533u16.wrapping_add(i as u16),
                timestamp: start_ts.wrapping_add(i * RTP_TICKS_PER_FRAME),
                payload: vec![i as u8],
            };
            (p, u64::from(i) * 20)
        })
        .collect();
    let played = play(&mut buffer, &arrivals, 6);
    assert_eq!(
        played,
        (0..5u8)
            .map(|i| Playout::Packet(vec![i]))
            .collect::<Vec<_>>()
    );
    assert_eq!(buffer.stats().lost, 0);
    // A long pause: playout stops concealing and waits for the stream to come back.
    let idle: Vec<Option<Playout>> = (0..20).map(|_| buffer.pop()).collect();
    assert!(idle.iter().rev().take(3).all(Option::is_none), "{idle:?}");
    // The sender resumes 2 s later (timestamps advanced with wall time, as after DTX).
    let resumed = Packet {
        seq: 10,
        timestamp: start_ts.wrapping_add(100 * RTP_TICKS_PER_FRAME),
        payload: vec![100],
    };
    assert_eq!(buffer.insert(resumed, 2_000), Arrival::Buffered);
    let next = (0..3).find_map(|_| buffer.pop());
    assert_eq!(next, Some(Playout::Packet(vec![100])));
}

#[test]
fn the_mixer_sums_speakers_and_never_wraps() {
    let mut mixer: Mixer<u8> = Mixer::new();
    let a = vec![8_000i16; 4];
    let b = vec![-3_000i16; 4];
    let mut out = vec![0i16; 4];
    mixer.mix(&[(1, &a), (2, &b)], &mut out);
    assert!(out.iter().all(|&s| (s - 5_000).abs() <= 1), "{out:?}");
    // Two loud speakers: bounded by full scale, sign kept, no wrap-around.
    let loud = vec![30_000i16; 4];
    let quiet_neg = vec![-30_000i16; 4];
    mixer.mix(&[(1, &loud), (2, &loud)], &mut out);
    assert!(out.iter().all(|&s| s > 30_000), "{out:?}");
    mixer.mix(&[(1, &quiet_neg), (2, &quiet_neg)], &mut out);
    assert!(out.iter().all(|&s| s < -30_000), "{out:?}");
    // Gain and mute.
    mixer.set_gain(&1, 0.5);
    mixer.set_muted(&2, true);
    mixer.mix(&[(1, &a), (2, &b)], &mut out);
    assert!(out.iter().all(|&s| (s - 4_000).abs() <= 1), "{out:?}");
    let levels = mixer.levels();
    assert_eq!(levels.len(), 2);
    assert!(
        levels.iter().all(|(_, db)| *db > -40.0),
        "muted speakers still show their level: {levels:?}"
    );
    mixer.mix(&[(1, &a)], &mut out);
    assert_eq!(mixer.levels()[1], (2, -96.0), "absent speaker is silent");
}

#[test]
fn tones_are_detected_by_frequency() {
    let frames = tone_frames(440.0, 3);
    assert!(tone_share(&frames[1], 440.0) > 0.9);
    assert!(tone_share(&frames[1], 880.0) < 0.1);
    assert!(!has_tone(&[0; FRAME_SAMPLES], 440.0));
    assert!(level_dbfs(&frames[1]) > -10.0);
    assert_eq!(level_dbfs(&[0; FRAME_SAMPLES]), -96.0);
}

#[test]
fn wav_files_round_trip_and_are_resampled() {
    let dir = std::env::temp_dir().join(format!("spaces-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tone.wav");
    let frames = tone_frames(440.0, 10);
    let mut sink = WavSink::create(&path).unwrap();
    for f in &frames {
        sink.write(f).unwrap();
    }
    sink.finish().unwrap();
    let mut source = WavSource::open(&path).unwrap();
    let mut frame = vec![0; FRAME_SAMPLES];
    for expected in &frames {
        assert!(source.read(&mut frame).unwrap());
        assert_eq!(&frame, expected);
    }
    assert!(!source.read(&mut frame).unwrap(), "end of file");

    // A 44.1 kHz stereo float file comes out as 48 kHz mono with the same pitch.
    let stereo = dir.join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(&stereo, spec).unwrap();
    for n in 0..44_100 {
        let v = 0.5 * (2.0 * std::f32::consts::PI * 1_000.0 * n as f32 / 44_100.0).sin();
        writer.write_sample(v).unwrap();
        writer.write_sample(v).unwrap();
    }
    writer.finalize().unwrap();
    let mut source = WavSource::open(&stereo).unwrap();
    source.read(&mut frame).unwrap();
    source.read(&mut frame).unwrap();
    assert!(
        has_tone(&frame, 1_000.0),
        "share {}",
        tone_share(&frame, 1_000.0)
    );
    let missing = dir.join("missing.wav");
    assert!(matches!(
        WavSource::open(&missing),
        Err(MediaError::Wav { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jitter_buffer_falls_back_when_the_delay_steps_up() {
    // 20 ms on the way, then 100 ms from frame 50 on (a queue filled, the path changed): the
    // frames played before the step leave the playout point 80 ms ahead of arrivals.
    let arrivals: Vec<(Packet, u64)> = (0..200u32)
        .map(|i| {
            let delay = if i < 50 { 20 } else { 100 };
            (packet(i), u64::from(i) * 20 + delay)
        })
        .collect();
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let played = play(&mut buffer, &arrivals, 215);
    let stats = buffer.stats();
    // The frames due during the step are concealed; the playout point then waits a tick per
    // late packet instead of losing every later one to lateness.
    assert!(stats.late <= 5, "{stats:?}");
    assert!(stats.held >= 1, "{stats:?}");
    // Played frames 0-49 on time, then the step; from frame 60 to the stream's end, packets.
    let after = &played[60..195];
    assert!(
        after.iter().all(|p| matches!(p, Playout::Packet(_))),
        "after the fall-back every frame is played from its packet: {stats:?}"
    );
    // The target rose with the late packets and stays within its bounds.
    assert!((40..=400).contains(&stats.target_ms), "{stats:?}");
}
