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
            let capacity = policy.outputs(&metrics, *key == tree.host);
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

#[cfg(test)]
mod tests {
    use nostr::prelude::{EventId, Keys, SecretKey, Timestamp};

    use super::*;
    use crate::protocol::{
        ConnectionType, LinkRole, MemberInfo, Message, NetworkMetrics, Reservation, SpaceEvent,
        SpaceInfo, SpaceRef,
    };

    const T0: u64 = 1_790_000_000;

    fn key(n: u8) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        bytes[31] = n;
        Keys::new(SecretKey::from_slice(&bytes).expect("valid")).public_key()
    }

    fn metrics(upload_kbps: u32) -> NetworkMetrics {
        NetworkMetrics {
            download_kbps: 20_000,
            upload_kbps,
            max_audio_outputs: 0,
            connection: ConnectionType::Wifi,
        }
    }

    const HOST: u8 = 1;
    const A: u8 = 2;
    const B: u8 = 3;
    const SIBLING: u8 = 4;
    const ME: u8 = 5;
    const NIECE: u8 = 6;
    const D: u8 = 7;
    const E: u8 = 8;

    /// host (one slot per 56.8 kbit/s at half its 240 kbit/s: 2) → A, B; A → SIBLING, ME;
    /// SIBLING → NIECE. Seen by ME. With `b_full`, B's two slots are taken by D and E,
    /// phones too weak to relay.
    fn world(b_full: bool) -> (Space, u32) {
        let mut space = Space::new(SpaceRef::new("view", key(HOST)).expect("id"), key(ME));
        let mut n = 0u32;
        let mut apply = |space: &mut Space, author: u8, message: Message| {
            n += 1;
            accept(space, n, author, message);
        };
        apply(
            &mut space,
            HOST,
            Message::Create(SpaceInfo {
                host_metrics: metrics(240),
                ..SpaceInfo::default()
            }),
        );
        for (peer, upload) in [
            (A, 2_000),
            (B, if b_full { 240 } else { 2_000 }),
            (SIBLING, 2_000),
            (ME, 2_000),
            (NIECE, 2_000),
            (D, 100),
            (E, 100),
        ] {
            apply(
                &mut space,
                peer,
                Message::Join(MemberInfo {
                    name: String::new(),
                    metrics: metrics(upload),
                }),
            );
        }
        let link = |space: &mut Space,
                    apply: &mut dyn FnMut(&mut Space, u8, Message),
                    child,
                    parent,
                    standby| {
            let r = Reservation {
                requester: key(child),
                confirmer: key(parent),
                role: Some(LinkRole::Consumer),
                standby,
            };
            apply(space, child, Message::Reserve(r.clone()));
            apply(space, parent, Message::Confirm(r));
        };
        let mut links = vec![
            (A, HOST),
            (B, HOST),
            (SIBLING, A),
            (ME, A),
            (NIECE, SIBLING),
        ];
        if b_full {
            links.extend([(D, B), (E, B)]);
        }
        for (child, parent) in links {
            link(&mut space, &mut apply, child, parent, false);
        }
        (space, n)
    }

    /// Applies the `n`-th event of the world, which must be accepted.
    fn accept(space: &mut Space, n: u32, author: u8, message: Message) {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        let at = Timestamp::from_secs(T0 + u64::from(n));
        let event = SpaceEvent {
            id: EventId::from_byte_array(id),
            author: key(author),
            created_at: at,
            space: space.space_ref().clone(),
            message,
        };
        space.apply(&event, at).expect("accepted");
    }

    fn choose(space: &Space, want: Want) -> Option<PublicKey> {
        choose_parent(
            space,
            &key(ME),
            want,
            &CapacityPolicy::default(),
            &ScoreWeights::default(),
            &HashSet::new(),
        )
    }

    #[test]
    fn a_backup_never_falls_with_the_parent() {
        let (space, _) = world(false);
        // The host is full (two children); A's subtree (A, SIBLING, NIECE) goes silent with A.
        assert_eq!(
            choose(&space, Want::Standby { parent: key(A) }),
            Some(key(B))
        );
        // With B full too, only SIBLING has room, and it is below our parent: no backup
        // rather than a useless one. A parent is still found (A has room).
        let (space, _) = world(true);
        assert_eq!(choose(&space, Want::Standby { parent: key(A) }), None);
        assert_eq!(choose(&space, Want::Parent), Some(key(A)));
    }

    #[test]
    fn backups_do_not_count_as_tree_links() {
        let (mut space, mut n) = world(false);
        // NIECE backs up on B: B has a backup, not a child; the tree is unchanged.
        for (author, message) in [
            (
                NIECE,
                Message::Reserve(Reservation {
                    requester: key(NIECE),
                    confirmer: key(B),
                    role: Some(LinkRole::Consumer),
                    standby: true,
                }),
            ),
            (
                B,
                Message::Confirm(Reservation {
                    requester: key(NIECE),
                    confirmer: key(B),
                    role: Some(LinkRole::Consumer),
                    standby: true,
                }),
            ),
        ] {
            n += 1;
            accept(&mut space, n, author, message);
        }
        let tree = Tree::of(&space);
        assert_eq!(tree.depth(&key(NIECE)), Some(3), "still below SIBLING");
        assert_eq!(tree.standbys.get(&key(B)), Some(&1));
        assert!(!tree.children.contains_key(&key(B)));
        // Avoiding B, no backup is left for us; a parent still is (A has room).
        let avoid = HashSet::from([key(B)]);
        let pick = |want| {
            choose_parent(
                &space,
                &key(ME),
                want,
                &CapacityPolicy::default(),
                &ScoreWeights::default(),
                &avoid,
            )
        };
        assert_eq!(pick(Want::Standby { parent: key(A) }), None);
        assert_eq!(pick(Want::Parent), Some(key(A)));
    }
}
