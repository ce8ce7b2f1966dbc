//! Throughput of the signaling path on one core: parse (tags, content), verify (BIP-340),
//! and reduce, per event, over a realistic mix; and what a reservation with NIP-13 proof of
//! work costs its sender, per difficulty (the price a busy confirmer asks).
//!
//! `cargo bench -p spaces-core --bench protocol`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nostr::prelude::{Event, Keys, SecretKey, Timestamp};
use spaces_core::protocol::{
    EventWriter, Limits, LinkRole, MemberInfo, Message, NetworkMetrics, Parser, Reservation,
    SpaceInfo, SpaceRef, VerifiedEvent,
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
            price: 0,
            nip44: false,
            dtls: None,
            seat: None,
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
    // What the session parses: events the relay pool's client verified already.
    let verified: Vec<VerifiedEvent> = events
        .iter()
        .filter_map(|e| VerifiedEvent::check(e.clone()).ok())
        .collect();
    group.bench_function("parse_verified", |b| {
        b.iter(|| {
            verified
                .iter()
                .filter(|e| parser.parse_verified(black_box(e), now).is_ok())
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

/// A RESERVE signed plainly and with 8 to 16 bits of work: each bit doubles the expected
/// number of hashes; the mean over many reservations is what a requester pays.
fn proof_of_work(c: &mut Criterion) {
    let (host, peer) = (key(0), key(1));
    let space = SpaceRef::new("bench", host.public_key()).expect("valid");
    let writer = EventWriter::new(&peer, &space);
    let reserve = Message::Reserve(Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    });
    let mut group = c.benchmark_group("reserve_with_work");
    group.sample_size(30);
    for bits in [0u8, 8, 12, 16] {
        let mut n = 0u64;
        group.bench_function(format!("{bits}_bits"), |b| {
            b.iter(|| {
                // A new created_at each time: a new event, a new search.
                n += 1;
                let at = Timestamp::from_secs(NOW + n);
                black_box(writer.build_with_work(&reserve, at, bits).expect("builds"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, proof_of_work);
criterion_main!(benches);
