//! Cost of the media pipeline per 20 ms frame, to read as a share of one core in real time
//! (time per frame ÷ 20 ms).
//!
//! `cargo bench -p spaces-core --bench media`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use spaces_core::media::device::{AudioSource, ToneSource};
use spaces_core::media::{
    CodecSettings, Decoder, Encoder, FRAME_SAMPLES, JitterBuffer, JitterConfig, Mixer, Packet,
    RTP_TICKS_PER_FRAME,
};

/// Speech-like input: two tones whose pitch moves, so the encoder works as on a voice.
fn frames(count: usize) -> Vec<Vec<i16>> {
    let mut a = ToneSource::new(220.0, 0.3);
    let mut b = ToneSource::new(1_250.0, 0.1);
    (0..count)
        .map(|_| {
            let (mut x, mut y) = (vec![0; FRAME_SAMPLES], vec![0; FRAME_SAMPLES]);
            let _ = a.read(&mut x);
            let _ = b.read(&mut y);
            x.iter()
                .zip(&y)
                .map(|(p, q)| p.saturating_add(*q))
                .collect()
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let input = frames(50);
    let mut group = c.benchmark_group("codec");
    for complexity in [5u8, 10] {
        for fec in [false, true] {
            let settings = CodecSettings {
                complexity,
                fec,
                ..CodecSettings::default()
            };
            let mut encoder = Encoder::new(settings).expect("encoder");
            let mut i = 0;
            group.bench_function(format!("encode_c{complexity}_fec_{fec}"), |b| {
                b.iter(|| {
                    i = (i + 1) % input.len();
                    encoder.encode(black_box(&input[i]))
                })
            });
            let mut encoder = Encoder::new(settings).expect("encoder");
            let packets: Vec<Vec<u8>> = input
                .iter()
                .map(|f| encoder.encode(f).expect("encodes"))
                .collect();
            let mut decoder = Decoder::new().expect("decoder");
            let mut out = vec![0i16; FRAME_SAMPLES];
            let mut j = 0;
            group.bench_function(format!("decode_c{complexity}_fec_{fec}"), |b| {
                b.iter(|| {
                    j = (j + 1) % packets.len();
                    decoder.decode(black_box(&packets[j]), &mut out)
                })
            });
        }
    }
    let mut decoder = Decoder::new().expect("decoder");
    let mut out = vec![0i16; FRAME_SAMPLES];
    group.bench_function("conceal_plc", |b| b.iter(|| decoder.conceal(&mut out)));
    group.finish();
}

fn jitter_and_mixer(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let mut n: u32 = 0;
    let payload = vec![0u8; 80];
    group.bench_function("jitter_insert_pop", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let packet = Packet {
                seq: n as u16,
                timestamp: n.wrapping_mul(RTP_TICKS_PER_FRAME),
                payload: payload.clone(),
            };
            buffer.insert(packet, u64::from(n) * 20);
            buffer.pop()
        })
    });
    let speakers = frames(4);
    let mut mixer: Mixer<u8> = Mixer::new();
    let mut out = vec![0i16; FRAME_SAMPLES];
    group.bench_function("mix_4_speakers", |b| {
        b.iter(|| {
            let inputs: Vec<(u8, &[i16])> = speakers
                .iter()
                .enumerate()
                .map(|(i, f)| (i as u8, f.as_slice()))
                .collect();
            mixer.mix(black_box(&inputs), &mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, codec, jitter_and_mixer);
criterion_main!(benches);
