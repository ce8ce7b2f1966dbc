//! The tree as one participant sees it from the space state: who is linked to whom (CONFIRMed
//! reservations carry their pair in clear), and which parent to ask next.

use std::collections::{HashMap, HashSet};

use nostr::prelude::PublicKey;

use crate::space::{LinkState, Space};
use crate::topology::{Candidate, CapacityPolicy, PeerMetrics, ScoreWeights, score};

/// Picks the best parent for `me` among members with room, by the draft's score over the
/// links the space state knows. `avoid` holds parents that refused or timed out.
pub fn choose_parent(
    space: &Space,
    me: &PublicKey,
    policy: &CapacityPolicy,
    weights: &ScoreWeights,
    avoid: &HashSet<PublicKey>,
) -> Option<PublicKey> {
    let host = *space.space_ref().host();
    // Confirmed links: requester (child) -> confirmer (parent).
    let mut parent_of: HashMap<PublicKey, PublicKey> = HashMap::new();
    let mut children: HashMap<PublicKey, u32> = HashMap::new();
    for ((child, parent), state) in space.links() {
        if matches!(state, LinkState::Confirmed { .. }) {
            parent_of.insert(*child, *parent);
            *children.entry(*parent).or_default() += 1;
        }
    }
    let depth = |peer: &PublicKey| -> Option<u32> {
        let mut current = *peer;
        for hops in 0..64 {
            if current == host {
                return Some(hops);
            }
            current = *parent_of.get(&current)?;
        }
        None
    };
    let my_role = space.role_of(me);
    space
        .members()
        .iter()
        .filter(|(key, _)| *key != me && !avoid.contains(*key))
        .filter_map(|(key, member)| {
            let depth = depth(key)?;
            // Never below ourselves: that would make a loop.
            let mut up = *key;
            while let Some(p) = parent_of.get(&up) {
                if p == me {
                    return None;
                }
                up = *p;
            }
            let metrics = PeerMetrics::from(&member.metrics);
            let capacity = if *key == host {
                policy.host_children(&metrics)
            } else {
                policy.children(&metrics, 1)
            };
            let taken = children.get(key).copied().unwrap_or(0);
            if taken >= capacity {
                return None;
            }
            let candidate = Candidate {
                role: space.role_of(key),
                depth,
                path_kbps_per_output: metrics.upload_kbps / f64::from(capacity.max(1)),
                capacity,
                children: taken,
            };
            Some((*key, depth, score(weights, my_role, &candidate)))
        })
        // Shallowest first (bounded depth), then best score, then key for determinism.
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)))
        .map(|(key, _, _)| key)
}
