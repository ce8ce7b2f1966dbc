//! The tree rules every participant runs on its own view of the space: where to attach, whom
//! to admit, whom to shed. Pure: the view comes from confirmed links (public, so every member
//! rebuilds the same tree), time never enters.

use std::collections::{BTreeMap, HashMap};

use nostr::prelude::{PublicKey, Timestamp};

use super::{Candidate, CapacityPolicy, PeerMetrics, ScoreWeights, score};
use crate::protocol::Seat;
use crate::space::{LinkState, Member, Space};

/// A member silent for this long is presumed gone (a phone that died says nothing): members
/// renew their presence every 2 minutes, so this is two missed renewals and some slack.
pub const MEMBER_FRESH_SECS: u64 = 330;

/// How often a crowd's member announces its open seat again (`participant::SEAT_RENEW_EVERY`),
/// but for the seats near the host ([`renew_secs`]).
pub const SEAT_RENEW_SECS: u64 = 60;

/// How often an open seat at depth 1 (below the host) is announced again.
pub const NEAR_SEAT_RENEW_SECS: u64 = 15;

/// How often an open seat at `depth` is announced again: every [`SEAT_RENEW_SECS`], and every
/// [`NEAR_SEAT_RENEW_SECS`] at depth 1. Every sample offers the few seats below the host
/// first, so a crashed member's seat there, still on the relays, drew newcomer after newcomer
/// until it was overdue (in the simulator at 1,000, seed 15: one seat at depth 1 cost 79
/// reservations their whole 2 s wait in the 50 s it looked alive). There are as many such
/// seats as the host has outputs, so they cost few JOINs; renewing depth 2 as often too
/// doubled the JOINs of 1,000 members. (The host is no such seat: everyone follows it.)
pub fn renew_secs(depth: u32) -> u64 {
    if depth == 1 {
        NEAR_SEAT_RENEW_SECS
    } else {
        SEAT_RENEW_SECS
    }
}

/// How late a renewal may reach us: timestamps in seconds, and a relay's queue.
const RENEWAL_SLACK_SECS: u64 = 3;

/// Unanswered reservations after which a member is left alone for now: its answers are queued
/// (relays rate-limit every author), and one more request would only time out.
pub const BUSY_AFTER: u32 = 3;
/// A tree reservation unanswered for this long no longer counts as a seat taken: its requester
/// gave up long ago (2 s without a CONFIRM, 10 s at most when it had work to do first), and a
/// confirmer that refused silently (a rate-limited refusal) never answers it.
pub const RESERVATION_FRESH_SECS: u64 = 10;

/// How long a seat (a confirmed tree link) must have stood before a newcomer picks its holder
/// as a relay when the confirmer never said the link delivers: longer than a confirmed link
/// may take to connect before its ends drop it (`participant::CONNECT_DEADLINE`, 5 s), and a
/// second of timestamp rounding. Our confirmers say so within a link set-up; clients that
/// never do (the draft's) wait this long.
pub const SEAT_PROVEN_SECS: u64 = 6;

/// How much two equally good parents may differ in the eyes of different newcomers: a share
/// of the score drawn from both keys. Without it every newcomer picks the same best parent at
/// once, and a relay rate-limiting that parent's CONFIRMs turns a crowd into a storm of
/// timeouts.
const SPREAD: f64 = 0.15;

/// A fixed per-(newcomer, candidate) nudge in [0, SPREAD).
fn spread(me: &PublicKey, candidate: &PublicKey) -> f64 {
    let x = mix(word(&me.to_bytes(), 0) ^ word(&candidate.to_bytes(), 0));
    SPREAD * (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A fixed draw from one key: the order among relays of equal strength.
/// The deepest place a relay `depth` hops from the host climbs to: two hops nearer, or one
/// from depth 4 on for a relay that `feeds` children. A move costs the relay's subtree a
/// repair, worth it near the host only for two hops; deeper, one hop that lifts a subtree is
/// what keeps a crowd's deepest listeners within the depth a tree of its size needs (in the
/// simulator at 10,000, chains of relays feeding one child each, left by repairs, sat at
/// depth 4 to 6 below depth-2 relays with free outputs).
pub fn climb_reach(depth: u32, feeds: bool) -> u32 {
    let gain = if depth >= 4 && feeds { 1 } else { 2 };
    depth.saturating_sub(gain + 1)
}

fn spread_of(key: &PublicKey) -> u64 {
    mix(word(&key.to_bytes(), 8))
}

/// The eight bytes of a key from `from` on, big-endian.
pub(crate) fn word(bytes: &[u8; 32], from: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[from..from + 8]);
    u64::from_be_bytes(w)
}

/// SplitMix64's finaliser: neighbouring keys give unrelated draws.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The branch a member at depth 1 gives its subtree: the first eight bytes of its key.
pub fn branch_of(key: &PublicKey) -> u64 {
    word(&key.to_bytes(), 0)
}

/// Where a member's branch begins, as [`TreeView::branch_start`] finds it.
enum BranchStart<'a> {
    /// The member is the host.
    Host,
    /// Its ancestor at depth 1 (itself at depth 1), reached through links we know.
    Head(PublicKey),
    /// The member where the links we know end, and its seat.
    Announced(PublicKey, &'a Seat),
}

/// The bits a member adds to the lineage of its seat and of every seat below it
/// ([`crate::protocol::Seat::lineage`]): three of 64, drawn from its key. At depth 6 about
/// one member in 50 off the line reads as maybe on it: passed over, as every member in the
/// branch once was.
pub fn lineage_bits(key: &PublicKey) -> u64 {
    let draw = mix(word(&key.to_bytes(), 16));
    (1 << (draw & 63)) | (1 << ((draw >> 6) & 63)) | (1 << ((draw >> 12) & 63))
}

/// Whether `key`'s open seat, in a crowd, is overdue: an open seat is announced again every
/// [`renew_secs`] of its depth, and one we last heard of longer ago than that (and a little
/// slack for a renewal on its way) is most likely a crashed member's, still on the relays. Asking
/// it costs the whole reservation timeout, so it is asked only when nothing else will do
/// (in the simulator at 1,000, two such seats in a row cost a listener 5 s of silence).
fn overdue(space: &Space, tree: &TreeView<'_>, key: &PublicKey, now: Timestamp) -> bool {
    if !space.is_crowd() || key == space.space_ref().host() {
        return false;
    }
    let Some(seat) = tree.announced(key).filter(|seat| seat.open()) else {
        return false;
    };
    let due = renew_secs(seat.depth) + RENEWAL_SLACK_SECS;
    space
        .last_seen(key)
        .is_none_or(|at| at.as_secs() + due < now.as_secs())
}

/// Whether a member with `strong` outputs clearly outranks a leaf with `weak` ones: it can
/// relay, and the leaf cannot, or has at most a quarter of its outputs.
fn outputs_outrank(strong: u32, weak: u32) -> bool {
    strong >= 2 && (weak == 0 || strong >= weak * 4)
}

/// What a participant is looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A parent in the tree.
    Parent,
    /// A parent with a free output: no leaf's seat. What a newcomer asks for once a parent
    /// refused it a leaf's seat: a crowd that saw the same weak leaves meets the next of them
    /// a round trip later, and a seat a hop lower carries the host's voice now.
    FreeSeat,
    /// A new parent instead of `parent`, which went quiet: a parent's rules, but never in
    /// `parent`'s subtree (those are quiet too).
    Instead {
        /// Our quiet parent.
        parent: PublicKey,
        /// Only a free output, as [`Want::FreeSeat`]: a parent refused us a leaf's seat.
        free_only: bool,
    },
    /// A warm backup for when `parent` goes: never in `parent`'s subtree (it would go silent
    /// with it), and it must have a really free output (backups displace nobody).
    Standby {
        /// Our current parent.
        parent: PublicKey,
    },
}

impl Want {
    /// Whether only a free output will do (no leaf's seat).
    fn free_only(self) -> bool {
        matches!(
            self,
            Want::FreeSeat
                | Want::Instead {
                    free_only: true,
                    ..
                }
        )
    }
}

/// The tree from confirmed links: each child's parent, each node's children and backups.
///
/// In a crowd ([`Space::is_crowd`]) the view holds only our own links: where a walk up the
/// tree leaves what we know, it reads the place the member announced ([`Seat`]) instead.
#[derive(Debug, Clone, Default)]
pub struct TreeView<'a> {
    host: Option<PublicKey>,
    parent_of: HashMap<PublicKey, PublicKey>,
    children: HashMap<PublicKey, Vec<PublicKey>>,
    standbys: HashMap<PublicKey, u32>,
    /// Tree reservations each member has not answered yet.
    asked: HashMap<PublicKey, u32>,
    /// In a crowd: whose view (its own seats are counted, not read from an announcement), and
    /// the seats members announced.
    crowd: Option<(PublicKey, &'a BTreeMap<PublicKey, Member>)>,
}

impl<'a> TreeView<'a> {
    /// The tree a space's confirmed links describe, as seen at `now`: reservations older than
    /// [`RESERVATION_FRESH_SECS`] are not counted as asked.
    pub fn at(space: &'a Space, now: Timestamp) -> Self {
        Self::counting(space, |at| {
            at.as_secs() + RESERVATION_FRESH_SECS > now.as_secs()
        })
    }

    /// The tree a space's confirmed links describe (every unanswered reservation counted).
    pub fn of(space: &'a Space) -> Self {
        Self::counting(space, |_| true)
    }

    /// The tree, counting as asked the unanswered tree reservations made at a time `fresh`
    /// accepts.
    fn counting(space: &'a Space, fresh: impl Fn(&Timestamp) -> bool) -> Self {
        let crowd = space.is_crowd().then(|| (*space.me(), space.members()));
        let mut tree = TreeView {
            host: Some(*space.space_ref().host()),
            crowd,
            ..TreeView::default()
        };
        for ((child, parent), state) in space.links() {
            match state {
                LinkState::Confirmed { standby: false, .. } => {
                    tree.parent_of.insert(*child, *parent);
                    tree.children.entry(*parent).or_default().push(*child);
                }
                LinkState::Confirmed { standby: true, .. } => {
                    *tree.standbys.entry(*parent).or_default() += 1;
                }
                LinkState::Reserved {
                    standby: false,
                    first: false,
                    at,
                } if fresh(at) => {
                    *tree.asked.entry(*parent).or_default() += 1;
                }
                LinkState::Reserved { .. } => {}
            }
        }
        tree
    }

    /// Hops from the host; `None` when `peer` is not attached (or hangs in a loop).
    pub fn depth(&self, peer: &PublicKey) -> Option<u32> {
        let mut current = *peer;
        for hops in 0..64 {
            if Some(current) == self.host {
                return Some(hops);
            }
            match self.parent_of.get(&current) {
                Some(parent) => current = *parent,
                None => return self.announced(&current).map(|seat| seat.depth + hops),
            }
        }
        None
    }

    /// The seat `peer` announced, where a crowd's view reads it: any member but ourselves
    /// (our own seats we count).
    pub fn announced(&self, peer: &PublicKey) -> Option<&Seat> {
        let (me, seats) = self.crowd.as_ref()?;
        (peer != me)
            .then(|| seats.get(peer)?.seat.as_ref())
            .flatten()
    }

    /// Whether `peer` is `ancestor` or below it. Where a crowd's view does not know, a member
    /// announced deeper than `ancestor` in the same branch counts as below it: choosing it
    /// might close a loop.
    pub fn under(&self, peer: &PublicKey, ancestor: &PublicKey) -> bool {
        let mut current = *peer;
        for _ in 0..64 {
            if current == *ancestor {
                return true;
            }
            match self.parent_of.get(&current) {
                Some(p) => current = *p,
                None => {
                    let Some(seat) = self.announced(&current) else {
                        return false;
                    };
                    let deeper = self.depth(ancestor).is_some_and(|depth| seat.depth > depth);
                    let other_branch = self
                        .branch(ancestor)
                        .is_some_and(|branch| branch != seat.branch);
                    let bits = lineage_bits(ancestor);
                    let off_the_line = seat.lineage != 0 && seat.lineage & bits != bits;
                    return deeper && !other_branch && !off_the_line;
                }
            }
        }
        false
    }

    /// `peer`'s branch ([`Seat::branch`]): from the links we know up to depth 1, else as the
    /// member where they end announced it. `None` where neither says.
    pub fn branch(&self, peer: &PublicKey) -> Option<u64> {
        Some(match self.branch_start(peer)? {
            BranchStart::Host => 0,
            BranchStart::Head(head) => branch_of(&head),
            BranchStart::Announced(_, seat) => seat.branch,
        })
    }

    /// Where `peer`'s branch begins: the host itself, its ancestor at depth 1 where the links
    /// we know reach it, else the seat of the member where they end (which names its branch
    /// and its head's outputs). `None` where neither says.
    fn branch_start(&self, peer: &PublicKey) -> Option<BranchStart<'_>> {
        let mut current = *peer;
        for _ in 0..64 {
            if Some(current) == self.host {
                return Some(BranchStart::Host);
            }
            match self.parent_of.get(&current) {
                Some(parent) if Some(*parent) == self.host => {
                    return Some(BranchStart::Head(current));
                }
                Some(parent) => current = *parent,
                None => {
                    return self
                        .announced(&current)
                        .map(|seat| BranchStart::Announced(current, seat));
                }
            }
        }
        None
    }

    /// `peer`'s tree children (backups excluded).
    pub fn children(&self, peer: &PublicKey) -> &[PublicKey] {
        self.children.get(peer).map_or(&[], Vec::as_slice)
    }

    /// `peer`'s parent.
    pub fn parent(&self, peer: &PublicKey) -> Option<&PublicKey> {
        self.parent_of.get(peer)
    }

    /// Peers `peer` feeds as a warm backup.
    pub fn standbys(&self, peer: &PublicKey) -> u32 {
        self.standbys.get(peer).copied().unwrap_or(0)
    }

    /// Tree reservations `peer` has not answered yet.
    pub fn asked(&self, peer: &PublicKey) -> u32 {
        self.asked.get(peer).copied().unwrap_or(0)
    }
}

/// The tree rules with their settings: one instance per participant, the same for all.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TreeRules {
    /// Capacity from metrics.
    pub policy: CapacityPolicy,
    /// The draft's score.
    pub weights: ScoreWeights,
}

/// What a member may answer to a RESERVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A free output: CONFIRM.
    Accept,
    /// Full, but the requester is clearly stronger than this leaf child: CONFIRM, and hand
    /// the leaf on to the tree once the newcomer delivers.
    Displace(PublicKey),
    /// Full of relays, and the requester is clearly stronger than this one
    /// ([`Seats::relays`]): CONFIRM, and hand the relay on, its subtree with it, once the
    /// requester delivers.
    HandOnRelay(PublicKey),
    /// Give up this peer's warm backup link to make room for a real child.
    EvictStandby(PublicKey),
    /// No room: DROP.
    Refuse,
}

/// A member's own side of admission: the children and backups it has already confirmed
/// (counted from the CONFIRM on, not from a connected link, so a burst never overfills it).
#[derive(Debug, Clone, Copy)]
pub struct Seats<'a> {
    /// Outputs the member can feed now (its own measurement, which may be newer than what
    /// it announced).
    pub capacity: u32,
    /// Tree children confirmed and not yet gone, with the ones already being displaced.
    pub children: &'a [(PublicKey, bool)],
    /// Peers we feed as their warm backup.
    pub standbys: &'a [PublicKey],
    /// Whether a relay child's seat may change hands too, not only a leaf's. The host's
    /// alone, and rarely (`participant::RELAY_HAND_ON_EVERY`): relays that arrived before
    /// the strong ones (weak-first) would otherwise hold its few outputs for the whole
    /// session, and everything else hangs below them.
    pub relays: bool,
}

impl TreeRules {
    /// Children a member can feed, from what it announced.
    pub fn capacity(&self, space: &Space, peer: &PublicKey) -> u32 {
        let is_host = peer == space.space_ref().host();
        space.members().get(peer).map_or(0, |m| {
            self.policy.outputs(&PeerMetrics::from(&m.metrics), is_host)
        })
    }

    /// `peer`'s announced uplink per output it feeds (0 for a member we do not know).
    pub fn per_output_kbps(&self, space: &Space, peer: &PublicKey) -> f64 {
        space.members().get(peer).map_or(0.0, |m| {
            let outputs = self.capacity(space, peer).max(1);
            f64::from(m.metrics.upload_kbps) / f64::from(outputs)
        })
    }

    /// The draft's "network" figure for `peer`: the smallest uplink per output along its path
    /// from the host (a strong relay below a weak one is only as good as the weak one).
    pub fn path_kbps(&self, space: &Space, tree: &TreeView<'_>, peer: &PublicKey) -> f64 {
        let mut worst = f64::INFINITY;
        let mut current = *peer;
        for _ in 0..64 {
            worst = worst.min(self.per_output_kbps(space, &current));
            match tree.parent(&current) {
                Some(parent) => current = *parent,
                None => {
                    if let Some(seat) = tree.announced(&current) {
                        worst = worst.min(f64::from(seat.path_kbps));
                    }
                    break;
                }
            }
        }
        worst
    }

    /// Whether `newcomer` may take `leaf`'s seat: it can relay, and the leaf is clearly weaker
    /// (cannot relay, or has at most a quarter of its outputs: a seat changes hands only when
    /// the tree gains a lot, since every move costs the leaf a re-attachment and the parent
    /// signaling). Speakers are never displaced.
    pub fn outranks(&self, space: &Space, newcomer: &PublicKey, leaf: &PublicKey) -> bool {
        let strong = self.capacity(space, newcomer);
        let weak = self.capacity(space, leaf);
        outputs_outrank(strong, weak) && !space.role_of(leaf).speaks()
    }

    /// Whether `child` is a leaf: no child we know of, and, in a crowd, none it announced
    /// (a seat whose free outputs are all its outputs).
    fn is_leaf(&self, space: &Space, tree: &TreeView<'_>, child: &PublicKey) -> bool {
        tree.children(child).is_empty()
            && tree
                .announced(child)
                .is_none_or(|seat| seat.free >= self.capacity(space, child))
    }

    /// The outputs of the weakest of `children` that a strong newcomer could take the seat
    /// of (a leaf, not a speaker), as a full member announces it in a crowd.
    pub fn weakest_leaf<'a>(
        &self,
        space: &Space,
        tree: &TreeView<'_>,
        children: impl Iterator<Item = &'a PublicKey>,
    ) -> Option<u32> {
        children
            .filter(|c| self.is_leaf(space, tree, c) && !space.role_of(c).speaks())
            .map(|c| self.capacity(space, c))
            .min()
    }

    /// Whether `newcomer` may take a leaf's seat below `parent`: one of the children we
    /// see, or, in a crowd, the leaf `parent` announced.
    pub fn leaf_seat_for(
        &self,
        space: &Space,
        tree: &TreeView<'_>,
        newcomer: &PublicKey,
        parent: &PublicKey,
    ) -> bool {
        match tree.announced(parent) {
            Some(seat) => seat
                .leaf
                .is_some_and(|weak| outputs_outrank(self.capacity(space, newcomer), weak)),
            None => self
                .displaceable(space, tree, newcomer, tree.children(parent).iter())
                .is_some(),
        }
    }

    /// The weakest leaf child of `parent` that `newcomer` outranks (no children of its own,
    /// not a speaker): its seat is the one to take.
    pub fn displaceable<'a>(
        &self,
        space: &Space,
        tree: &TreeView<'_>,
        newcomer: &PublicKey,
        children: impl Iterator<Item = &'a PublicKey>,
    ) -> Option<PublicKey> {
        children
            .filter(|c| *c != newcomer && self.is_leaf(space, tree, c))
            .filter(|c| self.outranks(space, newcomer, c))
            .min_by_key(|c| (self.capacity(space, c), **c))
            .copied()
    }

    /// Children `peer` has, and seats others asked it for and it has not answered yet (as
    /// good as taken).
    /// In a crowd, another member's seats are what it announced as not free.
    fn seats_taken(&self, space: &Space, tree: &TreeView<'_>, peer: &PublicKey) -> u32 {
        let held = match tree.announced(peer) {
            Some(seat) => self.capacity(space, peer).saturating_sub(seat.free),
            None => tree.children(peer).len() as u32,
        };
        held + tree.asked(peer)
    }

    /// Outputs of `peer` that no child holds nor anyone asked for: a parent with one admits
    /// a newcomer without handing a leaf on.
    pub fn free_outputs(&self, space: &Space, tree: &TreeView<'_>, peer: &PublicKey) -> u32 {
        self.capacity(space, peer)
            .saturating_sub(self.seats_taken(space, tree, peer))
    }

    /// Pull-up as a matching that every relay computes alike from its own view, so that deep
    /// relays do not all ask for the same open seat near the host (one is confirmed, the rest
    /// refused a relay round trip later, each refusal three events on the relays). Relays
    /// that may climb (two outputs or more, three hops deep or more), strongest first, each
    /// take the shallowest place within their [`climb_reach`] (two hops nearer the host, one
    /// for a relay with children from depth 4 on) and outside
    /// their own subtree: a free output, or the seat of a leaf they clearly outrank (one per
    /// full parent nobody asked, as it hands one on at a time). Returns the place this gives
    /// `me`, if any; `avoid` (ours alone) passes places over for `me` only.
    pub fn climb_target(
        &self,
        space: &Space,
        tree: &TreeView<'_>,
        me: &PublicKey,
        now: Timestamp,
        avoid: impl Fn(&PublicKey) -> bool,
    ) -> Option<PublicKey> {
        let my_depth = tree.depth(me)?;
        if my_depth < 3 || self.capacity(space, me) < 2 {
            return None;
        }
        let my_reach = climb_reach(my_depth, !self.is_leaf(space, tree, me));
        // Places, shallowest first, then the most outputs (the same order in every view).
        let mut places: Vec<(PublicKey, u32, u32)> = space
            .members()
            .keys()
            .filter(|key| self.fresh(space, key, now) && self.proven(space, tree, key, now))
            .filter_map(|key| {
                let depth = tree.depth(key)?;
                if depth > my_reach || tree.asked(key) >= BUSY_AFTER {
                    return None;
                }
                let free = self.free_outputs(space, tree, key);
                let leaf_seat = tree.asked(key) == 0
                    && (!tree.children(key).is_empty()
                        || tree.announced(key).is_some_and(|seat| seat.leaf.is_some()));
                (free > 0 || leaf_seat).then_some((*key, depth, free))
            })
            .collect();
        places.sort_by_key(|(key, depth, free)| (*depth, std::cmp::Reverse(*free), *key));
        let mut left: Vec<u32> = places.iter().map(|(_, _, free)| (*free).max(1)).collect();
        let mut climbers: Vec<(PublicKey, u32)> = space
            .members()
            .keys()
            .filter(|key| self.capacity(space, key) >= 2)
            .filter(|key| *key == me || self.fresh(space, key, now))
            .filter_map(|key| {
                let depth = tree.depth(key).filter(|d| *d >= 3)?;
                Some((*key, climb_reach(depth, !self.is_leaf(space, tree, key))))
            })
            .collect();
        climbers.sort_by_key(|(key, _)| {
            (
                std::cmp::Reverse(self.capacity(space, key)),
                std::cmp::Reverse(spread_of(key)),
                *key,
            )
        });
        for (climber, reach) in climbers {
            let mine = climber == *me;
            let taken = places
                .iter()
                .enumerate()
                .position(|(i, (place, at, free))| {
                    left[i] > 0
                        && *at <= reach
                        && !tree.under(place, &climber)
                        && (!mine || !avoid(place))
                        && (*free > 0 || self.leaf_seat_for(space, tree, &climber, place))
                });
            if mine {
                return taken.map(|i| places[i].0);
            }
            if let Some(i) = taken {
                left[i] -= 1;
            }
        }
        None
    }

    /// Whether `key` was heard of lately (the host always is).
    fn fresh(&self, space: &Space, key: &PublicKey, now: Timestamp) -> bool {
        key == space.space_ref().host()
            || space
                .last_seen(key)
                .is_some_and(|at| at.as_secs() + MEMBER_FRESH_SECS >= now.as_secs())
    }

    /// Whether `key`'s seat is proven: the host, a member whose confirmer said its link
    /// delivers, or one whose seat stood [`SEAT_PROVEN_SECS`]. A seat nobody has seen carry
    /// audio yet may be a Sybil's that will never link: trying it costs a reserve timeout or
    /// a set-up deadline, seconds of silence.
    /// In a crowd, a member announces a seat only while its own parent delivers.
    fn proven(&self, space: &Space, tree: &TreeView<'_>, key: &PublicKey, now: Timestamp) -> bool {
        key == space.space_ref().host()
            || tree.announced(key).is_some()
            || tree.parent(key).is_some_and(|parent| {
                matches!(
                    space.links().get(&(*key, *parent)),
                    Some(LinkState::Confirmed { delivering, at, .. })
                        if *delivering || at.as_secs() + SEAT_PROVEN_SECS <= now.as_secs()
                )
            })
    }

    /// Picks the best parent (or warm backup) for `me`: the shallowest member with room (or,
    /// for a parent, a seat `me` may take from a weaker leaf), then the best draft score.
    /// Only proven seats count: the host, members whose confirmer said their link delivers,
    /// and seats older than [`SEAT_PROVEN_SECS`].
    /// `avoid` says which peers refused or failed us lately; members not heard of for
    /// [`MEMBER_FRESH_SECS`] before `now` are passed over (the host never is).
    pub fn choose_parent(
        &self,
        space: &Space,
        tree: &TreeView<'_>,
        me: &PublicKey,
        want: Want,
        now: Timestamp,
        avoid: impl Fn(&PublicKey) -> bool,
    ) -> Option<PublicKey> {
        let my_role = space.role_of(me);
        space
            .members()
            .keys()
            .filter(|key| *key != me && !avoid(key))
            .filter(|key| self.fresh(space, key, now) && self.proven(space, tree, key, now))
            .filter_map(|key| {
                let depth = tree.depth(key)?;
                // Never below ourselves (a loop), nor a backup that falls with our parent.
                if tree.under(key, me) {
                    return None;
                }
                if let Want::Standby { parent } | Want::Instead { parent, .. } = want
                    && tree.under(key, &parent)
                {
                    return None;
                }
                let capacity = self.capacity(space, key);
                let parent = !matches!(want, Want::Standby { .. });
                let asked = tree.asked(key);
                if asked >= BUSY_AFTER {
                    return None;
                }
                // A parent may evict backups to make room; a backup needs a free output.
                let taken = if parent {
                    self.seats_taken(space, tree, key)
                } else {
                    self.seats_taken(space, tree, key) + tree.standbys(key)
                };
                // A full parent hands one leaf's seat on at a time: once someone asked it, a
                // crowd of newcomers that all saw the same leaf would only be refused.
                let room = taken < capacity
                    || (parent
                        && !want.free_only()
                        && asked == 0
                        && self.leaf_seat_for(space, tree, me, key));
                if !room {
                    return None;
                }
                let candidate = Candidate {
                    role: space.role_of(key),
                    depth,
                    path_kbps_per_output: self.path_kbps(space, tree, key),
                    capacity,
                    children: taken.min(capacity),
                };
                let value = score(&self.weights, my_role, &candidate) + spread(me, key);
                // A backup's depth is not the tree's: any member outside the parent's subtree
                // that delivers will do, and ranking the shallowest first sent every orphan of
                // a crashed relay to the same few seats at once (17 of them to one in 0.9 s,
                // in the simulator). Backups are ranked by score alone (depth is in it).
                let rank = if parent { depth } else { 0 };
                Some((*key, (overdue(space, tree, key, now), rank), value))
            })
            // Seats that renew on time first (see `overdue`), then the shallowest (bounded
            // depth), then best score, then key for determinism.
            .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)))
            .map(|(key, _, _)| key)
    }

    /// How `me` answers `from`'s RESERVE, given the seats it has already confirmed.
    /// Speakers asking the host are always admitted (a conversation needs them); a tree child
    /// takes a free output, else a backup's output, else a clearly weaker leaf's seat.
    pub fn admit(
        &self,
        space: &Space,
        tree: &TreeView<'_>,
        me: &PublicKey,
        from: &PublicKey,
        standby: bool,
        seats: Seats<'_>,
    ) -> Admission {
        let is_host = me == space.space_ref().host();
        if is_host && !standby && space.role_of(from).speaks() {
            return Admission::Accept;
        }
        let capacity = seats.capacity as usize;
        let children = seats.children.len();
        let used = children + seats.standbys.len();
        if standby {
            return if used < capacity {
                Admission::Accept
            } else {
                Admission::Refuse
            };
        }
        if children < capacity {
            return match seats.standbys.first() {
                Some(backup) if used >= capacity => Admission::EvictStandby(*backup),
                _ => Admission::Accept,
            };
        }
        let settled = seats
            .children
            .iter()
            .filter(|(_, leaving)| !leaving)
            .map(|(child, _)| child);
        if let Some(leaf) = self.displaceable(space, tree, from, settled.clone()) {
            return Admission::Displace(leaf);
        }
        if !seats.relays {
            return Admission::Refuse;
        }
        // The weakest relay the requester clearly outranks; of equals, the one the requester
        // hangs below (the requester leaves it anyway: the two swap places).
        let mine = tree.branch(from);
        settled
            .filter(|c| *c != from && self.outranks(space, from, c))
            .min_by_key(|c| (self.capacity(space, c), Some(branch_of(c)) != mine, **c))
            .map_or(Admission::Refuse, |relay| Admission::HandOnRelay(*relay))
    }

    /// Whether `me`, a relay at depth 2 or deeper, should ask the host for a seat: it clearly
    /// outranks the head of its branch, its ancestor at depth 1, whose seat (or a weaker
    /// relay's) the host may hand on to it ([`Admission::HandOnRelay`]). The subtree below `me`
    /// then sits nearer the host. Only the head's outputs are read: from the links we know up
    /// to it, else from the seat of the member where they end ([`Seat::head`]); a speaker
    /// heading a branch keeps its seat, as the host's admission says.
    pub fn outranks_branch_head(&self, space: &Space, tree: &TreeView<'_>, me: &PublicKey) -> bool {
        match tree.branch_start(me) {
            Some(BranchStart::Head(head)) => head != *me && self.outranks(space, me, &head),
            Some(BranchStart::Announced(member, seat)) => {
                member != *me
                    && seat.depth >= 1
                    && seat.head > 0
                    && outputs_outrank(self.capacity(space, me), seat.head)
            }
            Some(BranchStart::Host) | None => false,
        }
    }

    /// The order in which to hand children back when capacity shrinks: backups first, then
    /// children whose link does not deliver yet (`delivers` says which do: they have heard
    /// nothing, so moving them silences nobody), then the weakest listeners (smallest
    /// capacity, then key); the host never sheds speakers.
    pub fn shed_order(
        &self,
        space: &Space,
        me: &PublicKey,
        children: &[PublicKey],
        standbys: &[PublicKey],
        delivers: impl Fn(&PublicKey) -> bool,
    ) -> Vec<PublicKey> {
        let is_host = me == space.space_ref().host();
        let mut listeners: Vec<PublicKey> = children
            .iter()
            .filter(|c| !(is_host && space.role_of(c).speaks()))
            .copied()
            .collect();
        listeners.sort_by_key(|c| (delivers(c), self.capacity(space, c), *c));
        standbys.iter().copied().chain(listeners).collect()
    }
}
