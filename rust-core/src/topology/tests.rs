//! Scoring per the draft, capacity caps, depth bound, backups, repair, the cellular host,
//! metric validation.

use super::sim::{Rng, SimConfig, random_metrics, simulate};
use super::*;
use crate::protocol::{ConnectionType, Role};

fn wifi(upload_kbps: f64) -> PeerMetrics {
    PeerMetrics {
        upload_kbps,
        download_kbps: upload_kbps * 4.0,
        connection: ConnectionType::Wifi,
        ..PeerMetrics::default()
    }
}

fn cellular(upload_kbps: f64) -> PeerMetrics {
    PeerMetrics {
        connection: ConnectionType::Cellular,
        ..wifi(upload_kbps)
    }
}

#[test]
fn scoring_follows_the_draft() {
    let w = ScoreWeights::default();
    let relay = Candidate {
        role: Role::Listener,
        depth: 1,
        path_kbps_per_output: 500.0,
        capacity: 10,
        children: 0,
    };
    // Speakers, co-hosts and the host score 1 between themselves.
    assert_eq!(
        score(
            &w,
            Role::Speaker,
            &Candidate {
                role: Role::Host,
                ..relay
            }
        ),
        1.0
    );
    assert_eq!(
        score(
            &w,
            Role::Cohost,
            &Candidate {
                role: Role::Speaker,
                depth: 5,
                ..relay
            }
        ),
        1.0
    );
    // Otherwise proximity·0.4 + network·0.4 + load·0.2: depth 1 of 8, optimum network, empty.
    let expected = 0.4 * (7.0 / 8.0) + 0.4 + 0.2;
    assert!((score(&w, Role::Listener, &relay) - expected).abs() < 1e-12);
    // Each term moves the score the right way.
    let base = score(&w, Role::Listener, &relay);
    let scores_lower = |c: Candidate| score(&w, Role::Listener, &c) < base;
    assert!(scores_lower(Candidate { depth: 3, ..relay }));
    assert!(scores_lower(Candidate {
        path_kbps_per_output: 100.0,
        ..relay
    }));
    assert!(scores_lower(Candidate {
        children: 9,
        ..relay
    }));
    assert!(scores_lower(Candidate {
        capacity: 0,
        ..relay
    }));
    // Weights are configurable.
    let only_load = ScoreWeights {
        distance: 0.0,
        speed: 0.0,
        load: 1.0,
        ..w
    };
    assert!(
        (score(
            &only_load,
            Role::Listener,
            &Candidate {
                children: 5,
                ..relay
            }
        ) - 0.5)
            .abs()
            < 1e-12
    );
}

#[test]
fn capacity_is_uplink_over_stream_rate_with_caps() {
    let policy = CapacityPolicy::default();
    // 32 kbit/s Opus + 62 B headers × 50 pkt/s = 56.8 kbit/s on the wire.
    assert!((policy.stream_kbps() - 56.8).abs() < 1e-9);
    // Wi-Fi, 2 Mbit/s: 0.5 × 2000 / 56.8 = 17.
    assert_eq!(policy.children(&wifi(2_000.0), 1), 17);
    // Two streams per child halve it.
    assert_eq!(policy.children(&wifi(2_000.0), 2), 8);
    // Cellular: quarter headroom and a hard cap of 12.
    assert_eq!(policy.children(&cellular(2_000.0), 1), 8);
    assert_eq!(policy.children(&cellular(50_000.0), 1), 12);
    assert_eq!(policy.children(&wifi(1_000_000.0), 1), 64);
    // Announced outputs, metered data and low battery cap further.
    assert_eq!(
        policy.children(
            &PeerMetrics {
                max_audio_outputs: 3,
                ..wifi(10_000.0)
            },
            1
        ),
        3
    );
    assert_eq!(
        policy.children(
            &PeerMetrics {
                metered: true,
                ..cellular(50_000.0)
            },
            1
        ),
        4
    );
    assert_eq!(
        policy.children(
            &PeerMetrics {
                low_battery: true,
                ..wifi(50_000.0)
            },
            1
        ),
        2
    );
    // Measured per-child rate below the stream rate shrinks capacity.
    let measured = PeerMetrics {
        achieved_kbps_per_child: Some(28.4),
        ..wifi(2_000.0)
    };
    assert_eq!(policy.children(&measured, 1), 8);
    // A one-child relay is no relay.
    assert_eq!(policy.children(&wifi(150.0), 1), 0);
}

#[test]
fn absurd_metrics_are_refused() {
    for bad in [
        PeerMetrics {
            upload_kbps: -1.0,
            ..PeerMetrics::default()
        },
        PeerMetrics {
            download_kbps: f64::NAN,
            ..PeerMetrics::default()
        },
        PeerMetrics {
            upload_kbps: 1e12,
            ..PeerMetrics::default()
        },
        PeerMetrics {
            rtt_parent_ms: Some(f64::INFINITY),
            ..PeerMetrics::default()
        },
        PeerMetrics {
            achieved_kbps_per_child: Some(-3.0),
            ..PeerMetrics::default()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(MetricsError::OutOfRange { .. })),
            "{bad:?}"
        );
        let mut planner = Planner::new(0u32, wifi(5_000.0), PlannerConfig::default()).unwrap();
        assert!(matches!(
            planner.join(1, Role::Listener, bad),
            Err(PlanError::Metrics(_))
        ));
        assert_eq!(planner.len(), 1, "nothing changed");
        assert!(Planner::new(0u32, bad, PlannerConfig::default()).is_err());
    }
}

fn crowd(n: u32, seed: u64) -> Vec<(u32, Role, PeerMetrics)> {
    let mut rng = Rng::new(seed);
    (1..=n)
        .map(|i| (i, Role::Listener, random_metrics(&mut rng, 0.55)))
        .collect()
}

fn depth_bound(planner: &Planner<u32>, n: u32) -> u32 {
    let caps: Vec<f64> = (1..=n)
        .filter_map(|i| planner.capacity_of(&i))
        .filter(|c| *c >= 2)
        .map(f64::from)
        .collect();
    let k = caps.iter().sum::<f64>() / caps.len().max(1) as f64;
    (f64::from(n).ln() / k.max(2.0).ln()).ceil() as u32 + 1
}

#[test]
fn a_full_plan_respects_the_depth_bound_and_every_capacity() {
    for (n, seed) in [(100u32, 1u64), (1_000, 2), (10_000, 3)] {
        let planner =
            Planner::plan_all(0, wifi(4_000.0), crowd(n, seed), PlannerConfig::default()).unwrap();
        assert_eq!(planner.orphans(), 0, "n={n}");
        let max_depth = planner.depths().max().unwrap_or(0);
        let bound = depth_bound(&planner, n);
        assert!(
            max_depth <= bound,
            "n={n}: depth {max_depth} > bound {bound}"
        );
        for i in 0..=n {
            let children = planner.children_of(&i).len() as u32;
            assert!(
                children <= planner.capacity_of(&i).unwrap_or(0),
                "peer {i} over capacity"
            );
        }
    }
}

#[test]
fn every_peer_has_a_backup_that_survives_its_parent() {
    let planner =
        Planner::plan_all(0, wifi(4_000.0), crowd(500, 9), PlannerConfig::default()).unwrap();
    let mut with_backup = 0;
    for i in 1..=500u32 {
        let (Some(parent), Some(backup)) = (planner.parent_of(&i), planner.backup_of(&i)) else {
            continue;
        };
        with_backup += 1;
        assert_ne!(parent, backup);
        // The backup is not below the parent, so losing the parent does not take it too
        // (below the host is everyone: the host's loss ends the space anyway).
        if *parent == 0 {
            continue;
        }
        let mut up = Some(backup);
        while let Some(node) = up {
            assert_ne!(node, parent, "backup of {i} hangs below its parent");
            up = planner.parent_of(node);
        }
    }
    assert_eq!(with_backup, 500, "{with_backup} of 500 have a backup");
}

#[test]
fn repair_after_any_single_failure_leaves_no_orphan() {
    let base =
        Planner::plan_all(0, wifi(4_000.0), crowd(300, 4), PlannerConfig::default()).unwrap();
    let relays: Vec<u32> = (1..=300)
        .filter(|i| !base.children_of(i).is_empty())
        .collect();
    assert!(relays.len() > 5);
    for relay in relays {
        let mut planner =
            Planner::plan_all(0, wifi(4_000.0), crowd(300, 4), PlannerConfig::default()).unwrap();
        let orphaned: Vec<u32> = planner.children_of(&relay).into_iter().copied().collect();
        let backups: Vec<Option<u32>> = orphaned
            .iter()
            .map(|c| planner.backup_of(c).copied())
            .collect();
        let delta = planner.leave(&relay).unwrap();
        assert_eq!(planner.orphans(), 0, "failure of {relay}");
        // Only the orphans moved, each to its warm backup when that had room.
        assert_eq!(delta.links_moved(), orphaned.len());
        let to_backup = orphaned
            .iter()
            .zip(&backups)
            .filter(|(c, b)| planner.parent_of(c) == b.as_ref())
            .count();
        assert!(
            to_backup * 2 >= orphaned.len(),
            "{to_backup}/{} went to their backup",
            orphaned.len()
        );
        for child in &orphaned {
            assert!(planner.parent_of(child).is_some());
        }
    }
}

#[test]
fn a_cellular_host_keeps_what_its_uplink_allows_and_adapts_with_minimal_churn() {
    let mut planner =
        Planner::plan_all(0, wifi(4_000.0), crowd(400, 5), PlannerConfig::default()).unwrap();
    let on_wifi = planner.children_of(&0).len();
    assert_eq!(on_wifi, 35, "0.5 × 4000 / 56.8");
    let delta = planner.update_metrics(&0, cellular(4_000.0)).unwrap();
    let on_cellular = planner.children_of(&0).len();
    assert_eq!(on_cellular, 12, "cellular cap");
    // Only the excess moved, each under a relay with room (pushed below Wi-Fi relays).
    assert_eq!(delta.links_moved(), on_wifi - on_cellular);
    assert_eq!(planner.orphans(), 0);
    for m in &delta.moves {
        assert_eq!(m.from, Some(0));
        assert!(m.to.is_some_and(|p| p != 0));
    }
    let deepest_on_cellular = planner.depths().max().unwrap_or(0);
    // Back on Wi-Fi: the reopened room takes the strongest deep relays, at most one move per
    // new slot, and the tree gets shallower again.
    let back = planner.update_metrics(&0, wifi(4_000.0)).unwrap();
    assert!(
        back.links_moved() <= on_wifi - on_cellular,
        "{} moves",
        back.links_moved()
    );
    assert!(back.moves.iter().all(|m| m.to == Some(0)));
    assert_eq!(planner.capacity_of(&0), Some(35));
    assert!(planner.depths().max().unwrap_or(0) <= deepest_on_cellular);
    assert_eq!(planner.orphans(), 0);
    // A host with a tiny uplink still serves everyone through relays.
    let tiny =
        Planner::plan_all(0, cellular(300.0), crowd(200, 6), PlannerConfig::default()).unwrap();
    assert!(tiny.children_of(&0).len() <= 2);
    assert_eq!(tiny.orphans(), 0);
}

#[test]
fn speakers_attach_to_the_host_and_reservation_timeouts_pick_the_next_best() {
    let mut planner =
        Planner::plan_all(0, wifi(4_000.0), crowd(100, 7), PlannerConfig::default()).unwrap();
    let deep = (1..=100u32)
        .find(|i| planner.depth_of(i).is_some_and(|d| d >= 2))
        .expect("a deep peer");
    let delta = planner.set_role(&deep, Role::Speaker).unwrap();
    assert_eq!(planner.parent_of(&deep), Some(&0));
    assert_eq!(delta.links_moved(), 1);
    let leaf = (1..=100u32)
        .find(|i| {
            planner.children_of(i).is_empty() && planner.parent_of(i).is_some_and(|p| *p != 0)
        })
        .expect("a leaf");
    let parent = *planner.parent_of(&leaf).unwrap();
    planner.reservation_failed(&leaf, &parent).unwrap();
    assert!(planner.parent_of(&leaf).is_some_and(|p| *p != parent));
    assert_eq!(
        planner.join(leaf, Role::Listener, wifi(1.0)),
        Err(PlanError::AlreadyPlanned)
    );
    assert_eq!(planner.leave(&0), Err(PlanError::HostIsRoot));
    assert_eq!(planner.leave(&9_999), Err(PlanError::UnknownPeer));
}

#[test]
fn newcomers_wait_when_nobody_has_room_and_are_placed_when_a_relay_arrives() {
    // The host's uplink cannot carry even one stream.
    let mut planner = Planner::new(0u32, cellular(50.0), PlannerConfig::default()).unwrap();
    assert_eq!(planner.capacity_of(&0), Some(0));
    planner.join(1, Role::Listener, wifi(100.0)).unwrap();
    assert_eq!(planner.orphans(), 1);
    // The host's network improves: the waiting peer is placed at once.
    let delta = planner.update_metrics(&0, wifi(2_000.0)).unwrap();
    assert_eq!(planner.orphans(), 0);
    assert_eq!(delta.moves.last().map(|m| m.to), Some(Some(0)));
}

#[test]
fn the_simulation_is_deterministic_and_keeps_everyone_parented() {
    let config = SimConfig {
        peers: 500,
        seed: 42,
        churn_per_min: 20.0,
        minutes: 5.0,
        ..SimConfig::default()
    };
    let a = simulate(&config);
    let b = simulate(&config);
    assert_eq!(a, b, "same seed, same report");
    assert_eq!(a.peers, 500);
    assert_eq!(a.orphans_after_repair, 0);
    assert!(a.parented_time_share > 0.999, "{}", a.parented_time_share);
    assert_eq!(a.host_children_on_cellular, 12);
    assert!(a.links_moved_per_event < 3.0, "{}", a.links_moved_per_event);
    let other = simulate(&SimConfig { seed: 43, ..config });
    assert_ne!(a, other);
}
