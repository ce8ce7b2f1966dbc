//! A space as one participant sees it: metadata, members and roles, hands, reservations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nostr::prelude::{EventId, PublicKey, Timestamp};

use super::seen::Seen;
use crate::protocol::{
    MemberInfo, NetworkMetrics, Role, Room, RoomStatus, Seat, SpaceInfo, SpaceRef, Transport,
};

/// Orders conflicting events: `created_at`, then event id as a deterministic tie-break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Clock {
    /// The event's time.
    pub created_at: Timestamp,
    /// Its id.
    pub id: EventId,
}

/// A participant present in the space.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Display name.
    pub name: String,
    /// Announced metrics (default for NIP-53 clients, which announce none).
    pub metrics: NetworkMetrics,
    /// When it joined (its first accepted JOIN or presence).
    pub joined_at: Timestamp,
    /// Hand raised (REQUEST_SPEECH or NIP-53 `hand`).
    pub hand_raised: bool,
    /// Muted, as its NIP-53 presence says.
    pub muted: bool,
    /// The proof of work (NIP-13 bits) its JOIN asks of a RESERVE now (0: none).
    pub price: u8,
    /// It announced that it reads NIP-44 private payloads (ours do; draft-literal clients and
    /// NIP-53 clients do not say so).
    pub nip44: bool,
    /// The fingerprint of its DTLS certificate, if it announced one (ours do).
    pub dtls: Option<String>,
    /// Its place in the tree as it announced it (in a crowd).
    pub seat: Option<Seat>,
}

/// State of a reservation between a requester and a confirmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// RESERVE seen, no CONFIRM yet.
    Reserved {
        /// When.
        at: Timestamp,
        /// A warm backup rather than a tree link.
        standby: bool,
        /// Asked before the requester read the space: not a seat others should count as
        /// taken (the requester may give it up, and a full confirmer does not answer it).
        first: bool,
    },
    /// CONFIRM seen.
    Confirmed {
        /// When.
        at: Timestamp,
        /// A warm backup rather than a tree link.
        standby: bool,
        /// The confirmer said the link carries audio ([`crate::protocol::Message::Delivering`]).
        delivering: bool,
    },
}

/// Default number of event ids remembered for duplicate detection.
pub const SEEN_CAPACITY: usize = 100_000;

/// The state of one space. Change it only through [`Space::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    pub(super) me: PublicKey,
    pub(super) space: SpaceRef,
    pub(super) info: Option<SpaceInfo>,
    pub(super) members: BTreeMap<PublicKey, Member>,
    pub(super) membership: HashMap<PublicKey, Clock>,
    /// NIP-53 presence heartbeats, kept apart from the JOIN/LEAVE clock: a heartbeat sent
    /// in the same second as a JOIN must not make the JOIN (and its metrics) look stale.
    pub(super) heard: HashMap<PublicKey, Timestamp>,
    pub(super) roles: HashMap<PublicKey, (Role, Clock)>,
    pub(super) removed: BTreeSet<PublicKey>,
    pub(super) links: BTreeMap<(PublicKey, PublicKey), LinkState>,
    pub(super) closed: bool,
    pub(super) seen: Seen,
}

impl Space {
    /// The state of `space` as seen by `me`, before any event.
    pub fn new(space: SpaceRef, me: PublicKey) -> Self {
        Self {
            me,
            space,
            info: None,
            members: BTreeMap::new(),
            membership: HashMap::new(),
            heard: HashMap::new(),
            roles: HashMap::new(),
            removed: BTreeSet::new(),
            links: BTreeMap::new(),
            closed: false,
            seen: Seen::new(SEEN_CAPACITY),
        }
    }

    /// Which space.
    pub fn space_ref(&self) -> &SpaceRef {
        &self.space
    }

    /// Whose view.
    pub fn me(&self) -> &PublicKey {
        &self.me
    }

    /// Metadata from the host's CREATE_SPACE, once seen.
    pub fn info(&self) -> Option<&SpaceInfo> {
        self.info.as_ref()
    }

    /// True once the host made the space a crowd ([`SpaceInfo::crowd`]): this view then holds
    /// our neighbourhood and a sample of seats, not the whole space.
    pub fn is_crowd(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.crowd)
    }

    /// True once the host closed the space.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Members present, by key.
    pub fn members(&self) -> &BTreeMap<PublicKey, Member> {
        &self.members
    }

    /// A peer's role: the host is always host; others as the latest role event says.
    pub fn role_of(&self, peer: &PublicKey) -> Role {
        if peer == self.space.host() {
            Role::Host
        } else {
            self.roles
                .get(peer)
                .map_or(Role::Listener, |(role, _)| *role)
        }
    }

    /// When a member last said it is here (JOIN, presence), by its own clock.
    pub fn last_seen(&self, peer: &PublicKey) -> Option<Timestamp> {
        self.members.get(peer)?;
        let joined = self.membership.get(peer).map(|clock| clock.created_at);
        joined.max(self.heard.get(peer).copied())
    }

    /// Members with a role that speaks (speakers, co-hosts), as the role events say.
    pub fn staff(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.roles
            .iter()
            .filter(|(_, (role, _))| role.speaks())
            .map(|(k, _)| *k)
    }

    /// Was this peer removed?
    pub fn is_removed(&self, peer: &PublicKey) -> bool {
        self.removed.contains(peer)
    }

    /// Members with a raised hand.
    pub fn raised_hands(&self) -> impl Iterator<Item = &PublicKey> {
        self.members
            .iter()
            .filter(|(_, m)| m.hand_raised)
            .map(|(k, _)| k)
    }

    /// Reservations and links known to us, keyed by (requester, confirmer).
    pub fn links(&self) -> &BTreeMap<(PublicKey, PublicKey), LinkState> {
        &self.links
    }

    /// The NIP-53 kind 30312 mirror of this space, for the host to publish.
    pub fn room_record(&self) -> Room {
        let mut participants = vec![(*self.space.host(), Role::Host)];
        let mut staff: Vec<(PublicKey, Role)> = self
            .members
            .keys()
            .filter(|k| *k != self.space.host())
            .map(|k| (*k, self.role_of(k)))
            .filter(|(_, role)| role.speaks())
            .collect();
        staff.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        participants.extend(staff);
        Room {
            title: self
                .info
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or_default(),
            summary: None,
            status: if self.closed {
                RoomStatus::Ended
            } else {
                RoomStatus::Live
            },
            transport: Transport::NostrSpaces,
            participants,
            cells: self
                .info
                .as_ref()
                .map(|i| i.cells.clone())
                .unwrap_or_default(),
        }
    }

    pub(super) fn admit(&mut self, peer: PublicKey, info: MemberInfo, at: Timestamp) -> bool {
        match self.members.get_mut(&peer) {
            Some(member) => {
                member.name = info.name;
                member.metrics = info.metrics;
                member.price = info.price;
                member.nip44 = info.nip44;
                member.dtls = info.dtls;
                member.seat = info.seat;
                false
            }
            None => {
                self.members.insert(
                    peer,
                    Member {
                        name: info.name,
                        metrics: info.metrics,
                        joined_at: at,
                        hand_raised: false,
                        muted: false,
                        price: info.price,
                        nip44: info.nip44,
                        dtls: info.dtls,
                        seat: info.seat,
                    },
                );
                true
            }
        }
    }

    /// Narrows the view to `keep` (a crowd's neighbourhood): every other member and every
    /// link that does not involve us is forgotten. Roles stay (they are few and space-wide).
    pub fn narrow_to(&mut self, keep: impl Fn(&PublicKey) -> bool) {
        let me = self.me;
        let host = *self.space.host();
        let gone: Vec<PublicKey> = self
            .members
            .keys()
            .filter(|k| **k != me && **k != host && !keep(k))
            .copied()
            .collect();
        for peer in &gone {
            self.members.remove(peer);
            self.membership.remove(peer);
            self.heard.remove(peer);
        }
        self.links.retain(|(a, b), _| *a == me || *b == me);
    }

    /// Forgets a peer's presence, hand and links (leave, removal).
    pub(super) fn evict(&mut self, peer: &PublicKey) -> bool {
        self.links.retain(|(a, b), _| a != peer && b != peer);
        self.heard.remove(peer);
        self.members.remove(peer).is_some()
    }
}
