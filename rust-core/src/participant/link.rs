//! Our side of the tree: every link we have or are setting up, keyed by the other end.

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
///
/// Kept as a vector sorted by peer: a participant has a few links, a relay some tens, and every
/// decision scans them. Contiguous entries make those scans, and the twice-a-second loss
/// reports on every link, cheap where a tree map chased a pointer per node (at 10,000
/// simulated participants the map's lookups were an eighth of the simulator's time). A lookup
/// searches the keys' first eight bytes, side by side in a vector of their own, and compares
/// whole keys only where those are equal.
#[derive(Debug, Clone, Default)]
pub struct Links {
    by_peer: Vec<(PublicKey, Link)>,
    /// The first eight bytes of each key in `by_peer`, in the same order (which they keep:
    /// keys order as their bytes do).
    prefixes: Vec<u64>,
    /// Counts insertions and removals: who we link with changed when it did.
    version: u64,
    /// Counts every change but loss figures (each mutable access counts).
    changes: u64,
}

impl Links {
    /// Where `peer`'s link is, or would go.
    fn index(&self, peer: &PublicKey) -> Result<usize, usize> {
        let prefix = prefix_of(peer);
        let from = self.prefixes.partition_point(|p| *p < prefix);
        for at in from..self.by_peer.len() {
            if self.prefixes[at] != prefix {
                return Err(at);
            }
            match self.by_peer[at].0.cmp(peer) {
                std::cmp::Ordering::Equal => return Ok(at),
                std::cmp::Ordering::Greater => return Err(at),
                std::cmp::Ordering::Less => {}
            }
        }
        Err(self.by_peer.len())
    }

    /// The link with `peer`.
    pub fn get(&self, peer: &PublicKey) -> Option<&Link> {
        let at = self.index(peer).ok()?;
        Some(&self.by_peer[at].1)
    }

    /// The link with `peer`, to change it.
    pub fn get_mut(&mut self, peer: &PublicKey) -> Option<&mut Link> {
        self.changes += 1;
        let at = self.index(peer).ok()?;
        Some(&mut self.by_peer[at].1)
    }

    /// Takes in a round of loss reports, each as [`Link::record_loss`] does (permille, for
    /// the link with that peer; reports on links we no longer have are dropped). Returns
    /// whether any of them is on a link we feed.
    ///
    /// A round covers every link twice a second: sorting the few reports and walking our
    /// links once in key order reads each entry in turn, where a search per report read
    /// the prefixes and then jumped (at 10,000 simulated participants those searches were a
    /// sixth of the simulator's time, nearly all of it waiting on memory).
    pub fn record_losses(&mut self, reports: &mut [(PublicKey, u16)]) -> bool {
        // Stable: two reports on one link count in the order given.
        reports.sort_by_key(|(peer, _)| *peer);
        let mut fed = false;
        let mut at = 0;
        for (peer, permille) in reports.iter() {
            while at < self.by_peer.len() && self.by_peer[at].0 < *peer {
                at += 1;
            }
            let Some((key, link)) = self.by_peer.get_mut(at) else {
                break;
            };
            if key == peer {
                link.record_loss(f64::from((*permille).min(1_000)) / 1_000.0);
                fed |= link.kind.downstream();
            }
        }
        fed
    }

    /// Adds or replaces the link with `peer`.
    pub fn insert(&mut self, peer: PublicKey, link: Link) {
        self.version += 1;
        self.changes += 1;
        match self.index(&peer) {
            Ok(at) => self.by_peer[at].1 = link,
            Err(at) => {
                self.prefixes.insert(at, prefix_of(&peer));
                self.by_peer.insert(at, (peer, link));
            }
        }
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
        let at = self.index(peer).ok()?;
        self.prefixes.remove(at);
        Some(self.by_peer.remove(at).1)
    }

    /// Every link.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, &Link)> {
        self.by_peer.iter().map(|(k, l)| (k, l))
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
        self.by_peer.iter().any(|(_, l)| l.displaced_by.is_some())
    }

    /// The one peer of this kind (parent, backup, retiring parent).
    pub fn one(&self, kind: LinkKind) -> Option<PublicKey> {
        self.of_kind(kind).next()
    }

    /// Every peer we have a link with.
    pub fn peers(&self) -> Vec<PublicKey> {
        self.by_peer.iter().map(|(k, _)| *k).collect()
    }

    /// `newcomer` will not take anyone's seat after all (it left or never connected).
    pub fn forget_displacer(&mut self, newcomer: &PublicKey) {
        self.changes += 1;
        for (_, link) in &mut self.by_peer {
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

/// A key's first eight bytes as a number: numbers order as the keys do.
fn prefix_of(key: &PublicKey) -> u64 {
    let bytes = key.as_bytes();
    u64::from_be_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

#[cfg(test)]
mod tests {
    use nostr::prelude::PublicKey;

    use super::{Link, LinkKind, Links};

    fn key(head: u8, tail: u8) -> PublicKey {
        let mut bytes = [7u8; 32];
        bytes[0] = head;
        bytes[31] = tail;
        PublicKey::from_byte_array(bytes)
    }

    #[test]
    fn links_stay_in_key_order_and_are_found_where_keys_share_their_first_bytes() {
        // Keys 1–3 share their first eight bytes and differ at the end only.
        let keys = [key(9, 2), key(1, 5), key(9, 1), key(9, 3), key(0, 0)];
        let mut links = Links::default();
        for (i, peer) in keys.iter().enumerate() {
            links.insert(*peer, Link::new(LinkKind::Child, i as u64));
        }
        let mut sorted = keys.to_vec();
        sorted.sort();
        assert_eq!(links.peers(), sorted);
        for (i, peer) in keys.iter().enumerate() {
            assert_eq!(links.get(peer).map(|l| l.confirmed_at), Some(i as u64));
        }
        assert!(links.get(&key(9, 4)).is_none());
        assert_eq!(links.remove(&key(9, 1)).map(|l| l.confirmed_at), Some(2));
        assert!(links.get(&key(9, 1)).is_none());
        assert_eq!(links.get(&key(9, 3)).map(|l| l.confirmed_at), Some(3));
        links.insert(key(9, 1), Link::new(LinkKind::Parent, 9));
        assert_eq!(links.one(LinkKind::Parent), Some(key(9, 1)));
        assert_eq!(links.peers(), sorted);
    }

    #[test]
    fn a_round_of_loss_reports_lands_on_each_named_link_in_any_order() {
        let mut links = Links::default();
        links.insert(key(9, 1), Link::new(LinkKind::Parent, 0));
        links.insert(key(9, 3), Link::new(LinkKind::Child, 0));
        links.insert(key(2, 0), Link::new(LinkKind::Standby, 0));
        // Out of key order, one on a link we do not have, two on one link, one beyond 100 %.
        let mut round = vec![
            (key(9, 3), 400),
            (key(9, 2), 1_000),
            (key(2, 0), 5_000),
            (key(9, 1), 100),
            (key(9, 3), 0),
        ];
        assert!(
            links.record_losses(&mut round),
            "a child's report counts as fed"
        );
        // In millionths, to compare without float noise.
        let millionths = |share: Option<f64>| share.map(|s| (s * 1e6).round() as u32);
        let loss = |peer| {
            links
                .get(&peer)
                .map(|l| (millionths(l.loss), millionths(l.latest_loss)))
        };
        assert_eq!(loss(key(9, 1)), Some((Some(25_000), Some(100_000))));
        assert_eq!(loss(key(2, 0)), Some((Some(250_000), Some(1_000_000))));
        // 400 ‰ then 0 ‰, in the order given: 0.1, then 0.1 × 0.75.
        assert_eq!(loss(key(9, 3)), Some((Some(75_000), Some(0))));
        assert!(links.get(&key(9, 2)).is_none());
        let mut upstream_only = vec![(key(9, 1), 0), (key(2, 0), 0)];
        assert!(!links.record_losses(&mut upstream_only));
    }
}
