//! The tree as one participant sees it from the space state: who is linked to whom (CONFIRMed
//! reservations carry their pair in clear, and mark warm backups), and which parent or backup
//! to ask next.

use std::collections::{HashMap, HashSet};

use nostr::prelude::PublicKey;

use crate::space::{LinkState, Space};
use crate::topology::{Candidate, CapacityPolicy, PeerMetrics, ScoreWeights, score};

/// What we are looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A parent in the tree.
    Parent,
    /// A warm backup for when `parent` goes: never in `parent`'s subtree (it would go silent
    /// with it), and it must have a free output (backups do not displace anyone).
    Standby {
        /// Our current parent.
        parent: PublicKey,
    },
}

/// The tree from confirmed links: each child's parent, and each node's children and backups.
struct Tree {
    host: PublicKey,
    parent_of: HashMap<PublicKey, PublicKey>,
    children: HashMap<PublicKey, u32>,
    standbys: HashMap<PublicKey, u32>,
}

impl Tree {
    fn of(space: &Space) -> Self {
        let mut tree = Tree {
            host: *space.space_ref().host(),
            parent_of: HashMap::new(),
            children: HashMap::new(),
            standbys: HashMap::new(),
        };
        for ((child, parent), state) in space.links() {
            match state {
                LinkState::Confirmed { standby: false, .. } => {
                    tree.parent_of.insert(*child, *parent);
                    *tree.children.entry(*parent).or_default() += 1;
                }
                LinkState::Confirmed { standby: true, .. } => {
                    *tree.standbys.entry(*parent).or_default() += 1;
                }
                LinkState::Reserved { .. } => {}
            }
        }
        tree
    }

    fn depth(&self, peer: &PublicKey) -> Option<u32> {
        let mut current = *peer;
        for hops in 0..64 {
            if current == self.host {
                return Some(hops);
            }
            current = *self.parent_of.get(&current)?;
        }
        None
    }

    /// Whether `peer` is `ancestor` or below it.
    fn under(&self, peer: &PublicKey, ancestor: &PublicKey) -> bool {
        let mut current = *peer;
        for _ in 0..64 {
            if current == *ancestor {
                return true;
            }
            match self.parent_of.get(&current) {
                Some(p) => current = *p,
                None => return false,
            }
        }
        false
    }
}

/// Picks the best parent (or warm backup) for `me` among members with room, by the draft's
/// score over the links the space state knows. `avoid` holds peers that refused or timed out.
pub fn choose_parent(
    space: &Space,
    me: &PublicKey,
    want: Want,
    policy: &CapacityPolicy,
    weights: &ScoreWeights,
    avoid: &HashSet<PublicKey>,
) -> Option<PublicKey> {
    let tree = Tree::of(space);
    let my_role = space.role_of(me);
    space
        .members()
        .iter()
        .filter(|(key, _)| *key != me && !avoid.contains(*key))
        .filter_map(|(key, member)| {
            let depth = tree.depth(key)?;
            // Never below ourselves (a loop), nor a backup that falls with our parent.
            if tree.under(key, me) {
                return None;
            }
            if let Want::Standby { parent } = want
                && tree.under(key, &parent)
            {
                return None;
            }
            let metrics = PeerMetrics::from(&member.metrics);
            let capacity = if *key == tree.host {
                policy.host_children(&metrics)
            } else {
                policy.children(&metrics, 1)
            };
            // A parent may evict backups to make room; a backup needs a really free output.
            let mut taken = tree.children.get(key).copied().unwrap_or(0);
            if matches!(want, Want::Standby { .. }) {
                taken += tree.standbys.get(key).copied().unwrap_or(0);
            }
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
