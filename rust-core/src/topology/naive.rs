//! A naive greedy planner, the baseline the real planner is measured against: every joiner
//! scans every peer for the best score with room (O(n) per join, O(n²) per full plan), and
//! nothing is incremental.

use super::score::{Candidate, ScoreWeights, score};
use super::{CapacityPolicy, PeerMetrics};
use crate::protocol::Role;

struct Slot {
    depth: u32,
    capacity: u32,
    children: u32,
    path_kbps: f64,
}

/// Plans `peers` (in arrival order) under a host; returns each peer's depth (`None` = no room).
pub fn naive_plan(
    host: &PeerMetrics,
    peers: &[PeerMetrics],
    policy: &CapacityPolicy,
    weights: &ScoreWeights,
) -> Vec<Option<u32>> {
    let host_capacity = policy.children(host, 1);
    let mut slots = vec![Slot {
        depth: 0,
        capacity: host_capacity,
        children: 0,
        path_kbps: host.upload_kbps / f64::from(host_capacity.max(1)),
    }];
    let mut depths = Vec::with_capacity(peers.len());
    for metrics in peers {
        let best = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.children < s.capacity)
            .map(|(i, s)| {
                let candidate = Candidate {
                    role: Role::Listener,
                    depth: s.depth,
                    path_kbps_per_output: s.path_kbps,
                    capacity: s.capacity,
                    children: s.children,
                };
                (i, score(weights, Role::Listener, &candidate))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        match best {
            Some(parent) => {
                slots[parent].children += 1;
                let capacity = policy.children(metrics, 1);
                let own = metrics.upload_kbps / f64::from(capacity.max(1));
                let slot = Slot {
                    depth: slots[parent].depth + 1,
                    capacity,
                    children: 0,
                    path_kbps: slots[parent].path_kbps.min(own),
                };
                depths.push(Some(slot.depth));
                slots.push(slot);
            }
            None => depths.push(None),
        }
    }
    depths
}
