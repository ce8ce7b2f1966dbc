//! Scoring per the draft, capacity caps, metric validation; the tree rules over a space
//! (`tree_view`).

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
    }
}

#[path = "tree_tests.rs"]
mod tree_view;
