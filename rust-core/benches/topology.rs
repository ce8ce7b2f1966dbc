//! The tree rules the participant runs, on a space of 1k and 10k members seen by one of them:
//! rebuilding the tree view, choosing a parent, answering a RESERVE. And the simulator of the
//! product: a small crowd for a simulated minute.
//!
//! `cargo bench -p spaces-core --bench topology`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nostr::prelude::{EventId, Keys, PublicKey, SecretKey, Timestamp};
use spaces_core::protocol::{
    ConnectionType, LinkRole, MemberInfo, Message, NetworkMetrics, Reservation, SpaceEvent,
    SpaceInfo, SpaceRef,
};
use spaces_core::sim::{SimConfig, run};
use spaces_core::space::Space;
use spaces_core::topology::{Seats, TreeRules, TreeView, Want};

const T0: u64 = 1_790_000_000;

fn key(n: u32) -> PublicKey {
    let mut bytes = [7u8; 32];
    bytes[28..].copy_from_slice(&n.to_be_bytes());
    Keys::new(SecretKey::from_slice(&bytes).expect("valid")).public_key()
}

fn wifi(upload_kbps: u32) -> NetworkMetrics {
    NetworkMetrics {
        download_kbps: 20_000,
        upload_kbps,
        max_audio_outputs: 0,
        connection: ConnectionType::Wifi,
    }
}

/// A space of `n` listeners in a tree of fan-out 8 under a 4 Mbit/s host, seen by a newcomer.
fn space(n: u32) -> (Space, PublicKey) {
    let host = key(0);
    let me = key(n + 1);
    let mut space = Space::new(SpaceRef::new("bench", host).expect("id"), me);
    let mut serial = 0u32;
    let mut apply = |space: &mut Space, author: PublicKey, message: Message| {
        serial += 1;
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&serial.to_be_bytes());
        let event = SpaceEvent {
            id: EventId::from_byte_array(id),
            author,
            created_at: Timestamp::from_secs(T0),
            space: space.space_ref().clone(),
            message,
            work: 0,
        };
        space
            .apply(&event, Timestamp::from_secs(T0))
            .expect("accepted");
    };
    apply(
        &mut space,
        host,
        Message::Create(SpaceInfo {
            host_metrics: wifi(4_000),
            ..SpaceInfo::default()
        }),
    );
    for i in 1..=n + 1 {
        let uplink = if i % 4 == 0 { 100 } else { 1_500 };
        let info = MemberInfo {
            name: String::new(),
            metrics: wifi(uplink),
            price: 0,
            nip44: false,
            dtls: None,
            seat: None,
        };
        apply(&mut space, key(i), Message::Join(info));
    }
    for i in 1..=n {
        let parent = if i <= 8 { host } else { key(i / 8) };
        let r = Reservation {
            requester: key(i),
            confirmer: parent,
            role: Some(LinkRole::Consumer),
            standby: false,
            sdp: None,
            before_read: false,
        };
        apply(&mut space, key(i), Message::Reserve(r.clone()));
        apply(&mut space, parent, Message::Confirm(r));
    }
    (space, me)
}

fn tree_rules(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree");
    group.sample_size(20);
    let rules = TreeRules::default();
    let now = Timestamp::from_secs(T0 + 10);
    for n in [1_000u32, 10_000] {
        let (space, me) = space(n);
        group.bench_function(format!("view_{n}"), |b| {
            b.iter(|| black_box(TreeView::of(&space)))
        });
        let tree = TreeView::of(&space);
        group.bench_function(format!("choose_parent_{n}"), |b| {
            b.iter(|| {
                black_box(rules.choose_parent(&space, &tree, &me, Want::Parent, now, |_| false))
            })
        });
        let relay = key(1);
        let children: Vec<(PublicKey, bool)> =
            tree.children(&relay).iter().map(|c| (*c, false)).collect();
        group.bench_function(format!("admit_{n}"), |b| {
            b.iter(|| {
                black_box(rules.admit(
                    &space,
                    &tree,
                    &relay,
                    &me,
                    false,
                    Seats {
                        capacity: 13,
                        children: &children,
                        standbys: &[],
                        relays: false,
                    },
                ))
            })
        });
    }
    group.finish();
}

fn simulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    let config = SimConfig {
        peers: 100,
        join_secs: 10.0,
        minutes: 1.0,
        ..SimConfig::default()
    };
    group.bench_function("peers_100_minute_1", |b| b.iter(|| black_box(run(&config))));
    group.finish();
}

criterion_group!(benches, tree_rules, simulator);
criterion_main!(benches);
