//! Our side of the tree: every link we have or are setting up, keyed by the other end.

use std::collections::BTreeMap;

use nostr::prelude::PublicKey;

use super::Millis;

/// What a link is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Our parent: the audio comes from it.
    Parent,
    /// Our warm backup: it already sends us every frame, so it takes over at once.
    Standby,
    /// A former parent kept until the new one delivers (a speaker moving under the host).
    Retiring,
    /// A tree child we feed.
    Child,
    /// A peer we feed as its warm backup (first to go when a real child needs room).
    StandbyChild,
    /// A former child whose seat we handed on to a stronger relay (our DROP said so): we keep
    /// feeding it until its new parent delivers, for [`super::HAND_ON_GRACE`] at most. It
    /// holds no seat.
    HandedOn,
}

impl LinkKind {
    /// Audio comes to us over it.
    pub fn upstream(self) -> bool {
        matches!(
            self,
            LinkKind::Parent | LinkKind::Standby | LinkKind::Retiring
        )
    }

    /// We forward audio over it.
    pub fn downstream(self) -> bool {
        matches!(
            self,
            LinkKind::Child | LinkKind::StandbyChild | LinkKind::HandedOn
        )
    }
}

/// One link.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// What it is to us.
    pub kind: LinkKind,
    /// When it was confirmed (by them or by us): the connection deadline runs from here.
    pub confirmed_at: Millis,
    /// The SDP exchange is done: the offer came (we confirmed) or the answer came (we
    /// offered). A peer that leaves it undone is not setting up a link at all.
    pub negotiated: bool,
    /// When ICE and DTLS completed.
    pub connected_at: Option<Millis>,
    /// Since when nothing arrives on it (keep-alives included).
    pub stalled_since: Option<Millis>,
    /// A child whose seat a stronger newcomer (named) takes once that one delivers.
    pub displaced_by: Option<PublicKey>,
    /// A child we hand back to the tree at this time unless it moved on by itself (a demoted
    /// speaker beyond our capacity gets the time to find a parent first); for a
    /// [`LinkKind::HandedOn`] link, when we stop feeding it.
    pub shed_at: Option<Millis>,
    /// The share of packets lost lately in the direction the link carries audio: its
    /// [`super::LinkInput::Loss`] reports, smoothed (see [`Link::record_loss`]).
    pub loss: Option<f64>,
    /// The latest of those reports alone.
    pub latest_loss: Option<f64>,
}

/// Weight of the newest loss report in a link's loss. A report covers 500 ms, 25 packets, where
/// one or two random losses read as 4 or 8 %: taken alone, 2 % of random loss on ordinary links
/// looked like a saturated uplink in one report round of eight, and a host shed healthy
/// children. Smoothed over about four reports (2 s), random loss stays near its mean, while a
/// saturated uplink's 15 % still shows within two reports.
pub const LOSS_WEIGHT: f64 = 0.25;

impl Link {
    /// A link confirmed at `now`.
    pub fn new(kind: LinkKind, now: Millis) -> Self {
        Self {
            kind,
            confirmed_at: now,
            negotiated: false,
            connected_at: None,
            stalled_since: None,
            displaced_by: None,
            shed_at: None,
            loss: None,
            latest_loss: None,
        }
    }

    /// Takes in a loss report (a share, 0..=1): an exponential average from no loss, and
    /// the report itself.
    pub fn record_loss(&mut self, share: f64) {
        let before = self.loss.unwrap_or(0.0);
        self.loss = Some(before + LOSS_WEIGHT * (share - before));
        self.latest_loss = Some(share);
    }

    /// Connected and not stalled: audio (or keep-alives) flows.
    pub fn delivers(&self) -> bool {
        self.connected_at.is_some() && self.stalled_since.is_none()
    }
}

/// Every link of ours. The one owner of our side of the tree.
#[derive(Debug, Clone, Default)]
pub struct Links {
    by_peer: BTreeMap<PublicKey, Link>,
    /// Counts insertions and removals: who we link with changed when it did.
    version: u64,
    /// Counts every change but loss figures (each mutable access counts).
    changes: u64,
}

impl Links {
    /// The link with `peer`.
    pub fn get(&self, peer: &PublicKey) -> Option<&Link> {
        self.by_peer.get(peer)
    }

    /// The link with `peer`, to change it.
    pub fn get_mut(&mut self, peer: &PublicKey) -> Option<&mut Link> {
        self.changes += 1;
        self.by_peer.get_mut(peer)
    }

    /// Takes in a loss report on our link with `peer` (see [`Link::record_loss`]); returns
    /// the link's kind, if we have one.
    pub fn record_loss(&mut self, peer: &PublicKey, share: f64) -> Option<LinkKind> {
        let link = self.by_peer.get_mut(peer)?;
        link.record_loss(share);
        Some(link.kind)
    }

    /// Adds or replaces the link with `peer`.
    pub fn insert(&mut self, peer: PublicKey, link: Link) {
        self.version += 1;
        self.changes += 1;
        self.by_peer.insert(peer, link);
    }

    /// Changes whenever a link is added or removed (not when one changes state).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Changes whenever a link may have changed in any way but its loss figures: added,
    /// removed, or handed out to change.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Forgets the link with `peer`.
    pub fn remove(&mut self, peer: &PublicKey) -> Option<Link> {
        self.version += 1;
        self.changes += 1;
        self.by_peer.remove(peer)
    }

    /// Every link.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, &Link)> {
        self.by_peer.iter()
    }

    /// The peers of every link of this kind.
    pub fn of_kind(&self, kind: LinkKind) -> impl Iterator<Item = PublicKey> + '_ {
        self.by_peer
            .iter()
            .filter(move |(_, l)| l.kind == kind)
            .map(|(k, _)| *k)
    }

    /// The peers of every link whose kind passes `test` (upstream, downstream).
    pub fn peers_where(&self, test: impl Fn(LinkKind) -> bool) -> Vec<PublicKey> {
        self.by_peer
            .iter()
            .filter(|(_, l)| test(l.kind))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Whether a child's seat is being handed on to a stronger newcomer (one at a time).
    pub fn displacing(&self) -> bool {
        self.by_peer.values().any(|l| l.displaced_by.is_some())
    }

    /// The one peer of this kind (parent, backup, retiring parent).
    pub fn one(&self, kind: LinkKind) -> Option<PublicKey> {
        self.of_kind(kind).next()
    }

    /// Every peer we have a link with.
    pub fn peers(&self) -> Vec<PublicKey> {
        self.by_peer.keys().copied().collect()
    }

    /// `newcomer` will not take anyone's seat after all (it left or never connected).
    pub fn forget_displacer(&mut self, newcomer: &PublicKey) {
        self.changes += 1;
        for link in self.by_peer.values_mut() {
            if link.displaced_by.as_ref() == Some(newcomer) {
                link.displaced_by = None;
            }
        }
    }

    /// How many links of this kind.
    pub fn count(&self, kind: LinkKind) -> usize {
        self.of_kind(kind).count()
    }
}
