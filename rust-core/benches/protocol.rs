//! Throughput of the signaling path on one core: parse (tags, content), verify (BIP-340),
//! and reduce, per event, over a realistic mix.
//!
//! `cargo bench -p spaces-core --bench protocol`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nostr::prelude::{Event, Keys, SecretKey, Timestamp};
use spaces_core::protocol::{
    EventWriter, Limits, MemberInfo, Message, NetworkMetrics, Parser, SpaceInfo, SpaceRef,
};
use spaces_core::space::Space;

const NOW: u64 = 1_790_000_000;
const PEERS: usize = 200;

fn key(n: usize) -> Keys {
    let mut bytes = [3u8; 32];
    bytes[28..].copy_from_slice(&u32::try_from(n).unwrap_or(0).to_be_bytes());
    Keys::new(SecretKey::from_slice(&bytes).expect("valid"))
}

/// CREATE, then per peer a JOIN, a chat line and a presence; every 10th peer promoted.
fn traffic() -> (SpaceRef, Vec<Event>) {
    let host = key(0);
    let space = SpaceRef::new("bench", host.public_key()).expect("valid");
    let at = |i: usize| Timestamp::from_secs(NOW + i as u64);
    let mut events = vec![
        EventWriter::new(&host, &space)
            .build(
                &Message::Create(SpaceInfo {
                    name: "bench".into(),
                    ..SpaceInfo::default()
                }),
                at(0),
            )
            .expect("builds"),
    ];
    for n in 1..=PEERS {
        let peer = key(n);
        let writer = EventWriter::new(&peer, &space);
        let join = Message::Join(MemberInfo {
            name: format!("peer {n}"),
            metrics: NetworkMetrics::default(),
        });
        events.push(writer.build(&join, at(n)).expect("builds"));
        events.push(
            writer
                .build(
                    &Message::Chat {
                        text: "hello everyone".into(),
                    },
                    at(n),
                )
                .expect("builds"),
        );
        if n % 10 == 0 {
            let promote = Message::PromoteSpeaker {
                target: peer.public_key(),
            };
            events.push(
                EventWriter::new(&host, &space)
                    .build(&promote, at(n))
                    .expect("builds"),
            );
        }
    }
    (space, events)
}

fn throughput(c: &mut Criterion) {
    let (space, events) = traffic();
    let now = Timestamp::from_secs(NOW + 10_000);
    let parser = Parser::new(Limits::default(), Some(space.clone()), None);
    let mut group = c.benchmark_group("signaling");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("verify_only", |b| {
        b.iter(|| events.iter().filter(|e| e.verify().is_ok()).count())
    });
    group.bench_function("parse_verify", |b| {
        b.iter(|| {
            events
                .iter()
                .filter(|e| parser.parse(black_box(e), now).is_ok())
                .count()
        })
    });
    group.bench_function("parse_verify_reduce", |b| {
        b.iter_batched(
            || Space::new(space.clone(), key(1).public_key()),
            |mut state| {
                for event in &events {
                    if let Ok(parsed) = parser.parse(event, now) {
                        let _ = state.apply(&parsed, now);
                    }
                }
                state
            },
            BatchSize::SmallInput,
        )
    });
    let parsed: Vec<_> = events
        .iter()
        .filter_map(|e| parser.parse(e, now).ok())
        .collect();
    group.bench_function("reduce_only", |b| {
        b.iter_batched(
            || Space::new(space.clone(), key(1).public_key()),
            |mut state| {
                for event in &parsed {
                    let _ = state.apply(event, now);
                }
                state
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
