//! The planner against a naive greedy baseline, in the same run: full plans of 1k and 10k
//! peers, and one incremental join and leave in a 10k tree.
//!
//! `cargo bench -p spaces-core --bench topology`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use spaces_core::protocol::{ConnectionType, Role};
use spaces_core::topology::sim::{Rng, random_metrics};
use spaces_core::topology::{
    CapacityPolicy, PeerMetrics, Planner, PlannerConfig, ScoreWeights, naive_plan,
};

fn host() -> PeerMetrics {
    PeerMetrics {
        upload_kbps: 4_000.0,
        download_kbps: 16_000.0,
        connection: ConnectionType::Wifi,
        ..PeerMetrics::default()
    }
}

fn crowd(n: u32) -> Vec<(u32, Role, PeerMetrics)> {
    let mut rng = Rng::new(u64::from(n));
    (1..=n)
        .map(|i| (i, Role::Listener, random_metrics(&mut rng, 0.55)))
        .collect()
}

fn full_plans(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for n in [1_000u32, 10_000] {
        let peers = crowd(n);
        group.bench_function(format!("planner_full_{n}"), |b| {
            b.iter(|| {
                Planner::plan_all(
                    0,
                    host(),
                    black_box(peers.clone()),
                    PlannerConfig::default(),
                )
            })
        });
        let metrics: Vec<PeerMetrics> = peers.iter().map(|(_, _, m)| *m).collect();
        group.bench_function(format!("naive_full_{n}"), |b| {
            b.iter(|| {
                naive_plan(
                    &host(),
                    black_box(&metrics),
                    &CapacityPolicy::default(),
                    &ScoreWeights::default(),
                )
            })
        });
    }
    group.finish();
}

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental_10k");
    let newcomer = random_metrics(&mut Rng::new(7), 0.55);
    // A newcomer joins a 10k tree and leaves again (so the tree stays at 10k).
    let mut planner =
        Planner::plan_all(0, host(), crowd(10_000), PlannerConfig::default()).expect("plans");
    group.bench_function("join_and_leave_leaf", |b| {
        b.iter(|| {
            let joined = planner
                .join(20_000, Role::Listener, newcomer)
                .map(|d| d.links_moved());
            let left = planner.leave(&20_000).map(|d| d.links_moved());
            (joined, left)
        })
    });
    // A relay with children fails (each child re-attached) and comes back as a newcomer.
    let mut planner =
        Planner::plan_all(0, host(), crowd(10_000), PlannerConfig::default()).expect("plans");
    let strong = PeerMetrics {
        upload_kbps: 20_000.0,
        connection: ConnectionType::Wifi,
        ..PeerMetrics::default()
    };
    group.bench_function("relay_failure_and_rejoin", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let relay = (1..=10_000u32)
                    .find(|i| planner.children_of(i).len() >= 8)
                    .unwrap_or(1);
                let start = std::time::Instant::now();
                let left = planner.leave(&relay).map(|d| d.links_moved());
                let _ = planner.join(relay, Role::Listener, strong);
                total += start.elapsed();
                let _ = black_box(left);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, full_plans, incremental);
criterion_main!(benches);
