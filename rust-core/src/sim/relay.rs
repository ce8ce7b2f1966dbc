//! The simulated relay: what it stores (as NIP-01 relays do by kind class) and how fast each
//! author may publish (a token bucket, as relays rate-limit per key).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use nostr::prelude::{PublicKey, Timestamp};

use crate::participant::Millis;
use crate::protocol::filter::OpenSeats;
use crate::protocol::{Message, SpaceEvent, seat_shard};

/// How a relay would keep an event: one per slot, the newest wins; `None` for ephemeral kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    /// Regular kinds: every event is kept.
    Every(u64),
    /// Replaceable and addressable kinds: one per (kind, author, other party).
    Latest(&'static str, PublicKey, Option<PublicKey>),
}

fn slot(event: &SpaceEvent, serial: u64) -> Option<Slot> {
    let author = event.author;
    // A delivering CONFIRM replaces the CONFIRM, as on real relays (same kind and `d`).
    let name = match event.message {
        Message::Delivering(_) => "confirm",
        _ => event.message.name(),
    };
    let latest = |other| Some(Slot::Latest(name, author, other));
    match &event.message {
        Message::Create(_)
        | Message::Close
        | Message::Chat { .. }
        | Message::Reaction { .. }
        | Message::Admin { .. } => Some(Slot::Every(serial)),
        Message::Join(_) | Message::Leave | Message::Presence(_) | Message::Room(_) => latest(None),
        Message::Reserve(r) | Message::Confirm(r) | Message::Delivering(r) => {
            latest(Some(if r.requester == author {
                r.confirmer
            } else {
                r.requester
            }))
        }
        Message::Drop { target, .. }
        | Message::Remove { target }
        | Message::PromoteSpeaker { target }
        | Message::PromoteCohost { target }
        | Message::Demote { target } => latest(Some(*target)),
        Message::Offer { .. }
        | Message::Answer { .. }
        | Message::Ice { .. }
        | Message::RequestSpeech
        | Message::ProposeSpeech { .. } => None,
    }
}

/// Whether the product's subscription (`protocol::filter::session_filters`, NIP-53 side since
/// 10 minutes ago) would fetch this stored event for a newcomer at `now`.
fn fetched(event: &SpaceEvent, now: Millis) -> bool {
    let nip53_side = matches!(
        event.message,
        Message::Presence(_)
            | Message::Chat { .. }
            | Message::Reaction { .. }
            | Message::Admin { .. }
    );
    !nip53_side || event.created_at.as_secs() * 1_000 + 600_000 >= now
}

/// The peer a draft event is addressed to (its `p` tag), for a crowd's inbox.
pub fn addressed(message: &Message) -> Option<PublicKey> {
    match message {
        Message::Reserve(r) => Some(r.confirmer),
        Message::Confirm(r) | Message::Delivering(r) => Some(r.requester),
        Message::Drop { target, .. }
        | Message::Remove { target }
        | Message::PromoteSpeaker { target }
        | Message::PromoteCohost { target }
        | Message::Demote { target }
        | Message::Offer { target, .. }
        | Message::Answer { target, .. }
        | Message::Ice { target, .. } => Some(*target),
        _ => None,
    }
}

/// Whether a crowd's view follows this event whoever wrote it (`protocol::filter::
/// crowd_filters`): the host's CREATE, CLOSE and room record, and the role changes.
pub fn crowd_wide(message: &Message) -> bool {
    matches!(
        message,
        Message::Create(_)
            | Message::Close
            | Message::Room(_)
            | Message::Remove { .. }
            | Message::PromoteSpeaker { .. }
            | Message::PromoteCohost { .. }
            | Message::Demote { .. }
    )
}

/// Rate limit per author: `rate` events per second with bursts of `burst` (GCRA).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained events per second.
    pub rate: f64,
    /// Events allowed at once.
    pub burst: f64,
}

/// The relay's state.
#[derive(Debug, Default)]
pub struct Relay {
    stored: HashMap<Slot, SpaceEvent>,
    serial: u64,
    /// Theoretical arrival time per author (GCRA).
    tat: HashMap<PublicKey, f64>,
    /// What a real relay's indexes answer quickly: stored events by their `p` tag, the
    /// space-wide ones a crowd follows, and JOINs tagged `#o` by time.
    by_target: HashMap<PublicKey, HashSet<Slot>>,
    wide: HashSet<Slot>,
    open: BTreeSet<(Reverse<Timestamp>, PublicKey)>,
    open_at: HashMap<PublicKey, (Timestamp, u32)>,
    /// The same seats by their depth.
    open_by_depth: BTreeMap<u32, BTreeSet<(Reverse<Timestamp>, PublicKey)>>,
    /// The same seats by their shard.
    open_by_shard: BTreeMap<u8, BTreeSet<(Reverse<Timestamp>, PublicKey)>>,
}

impl Relay {
    /// When an event an author hands over at `now` is let through.
    pub fn admit_at(&mut self, author: PublicKey, now: Millis, limit: RateLimit) -> Millis {
        let interval = 1_000.0 / limit.rate.max(0.001);
        let tolerance = interval * (limit.burst - 1.0).max(0.0);
        let tat = self.tat.entry(author).or_insert(0.0);
        let at = (now as f64).max(*tat - tolerance);
        *tat = tat.max(at) + interval;
        at.ceil() as Millis
    }

    /// Keeps an event as a relay would (the newest per slot).
    pub fn store(&mut self, event: &SpaceEvent) {
        self.serial += 1;
        let Some(slot) = slot(event, self.serial) else {
            return;
        };
        let newer = self
            .stored
            .get(&slot)
            .is_none_or(|old| event.created_at > old.created_at);
        if !newer {
            return;
        }
        if crowd_wide(&event.message) {
            self.wide.insert(slot);
        } else if let Some(target) = addressed(&event.message) {
            self.by_target.entry(target).or_default().insert(slot);
        }
        if let Message::Join(info) = &event.message {
            if let Some((at, depth)) = self.open_at.remove(&event.author) {
                let entry = (Reverse(at), event.author);
                self.open.remove(&entry);
                if let Some(set) = self.open_by_depth.get_mut(&depth) {
                    set.remove(&entry);
                }
                if let Some(set) = self.open_by_shard.get_mut(&seat_shard(&event.author)) {
                    set.remove(&entry);
                }
            }
            if let Some(seat) = info.seat.filter(|seat| seat.open()) {
                let entry = (Reverse(event.created_at), event.author);
                self.open.insert(entry);
                self.open_by_depth
                    .entry(seat.depth)
                    .or_default()
                    .insert(entry);
                self.open_by_shard
                    .entry(seat_shard(&event.author))
                    .or_default()
                    .insert(entry);
                self.open_at
                    .insert(event.author, (event.created_at, seat.depth));
            }
        }
        self.stored.insert(slot, event.clone());
    }

    /// The host's CREATE and CLOSE, as the subscription asked for ahead of the rest fetches
    /// them (`protocol::filter::host_ahead_filter`).
    pub fn host_ahead(&self, host: &PublicKey) -> Vec<SpaceEvent> {
        let mut events: Vec<SpaceEvent> = self
            .wide
            .iter()
            .filter_map(|slot| self.stored.get(slot))
            .filter(|e| {
                e.author == *host && matches!(e.message, Message::Create(_) | Message::Close)
            })
            .cloned()
            .collect();
        events.sort_by_key(|e| (e.created_at, e.id));
        events
    }

    /// What a crowd's view fetches for `me`: the space-wide events and those addressed to it.
    pub fn crowd_stored_for(&self, me: &PublicKey) -> Vec<SpaceEvent> {
        let addressed = self.by_target.get(me).into_iter().flatten();
        let mut events: Vec<SpaceEvent> = self
            .wide
            .iter()
            .chain(addressed)
            .filter_map(|slot| self.stored.get(slot))
            .filter(|e| e.author != *me)
            .cloned()
            .collect();
        events.sort_by_key(|e| (e.created_at, e.id));
        events
    }

    /// The stored JOIN and LEAVE of `author` (a crowd begins following it).
    pub fn membership_of(&self, author: &PublicKey) -> Vec<SpaceEvent> {
        ["join", "leave"]
            .into_iter()
            .filter_map(|name| self.stored.get(&Slot::Latest(name, *author, None)))
            .cloned()
            .collect()
    }

    /// The newest `limit` JOINs with an open seat announced between `since` and `until`, of
    /// the seats asked for.
    pub fn open_seats(
        &self,
        since: Timestamp,
        until: Timestamp,
        which: OpenSeats,
        limit: usize,
    ) -> Vec<SpaceEvent> {
        let from = (Reverse(until), PublicKey::from_byte_array([0; 32]));
        let newest = |set: &BTreeSet<(Reverse<Timestamp>, PublicKey)>| {
            set.range(from..)
                .take_while(|(Reverse(at), _)| *at >= since)
                .take(limit)
                .copied()
                .collect::<Vec<_>>()
        };
        let mut seats = match which {
            OpenSeats::All => newest(&self.open),
            OpenSeats::Shard(shard) => self
                .open_by_shard
                .get(&shard)
                .map(newest)
                .unwrap_or_default(),
            OpenSeats::AtMost(deepest) => self
                .open_by_depth
                .range(..=deepest)
                .flat_map(|(_, set)| newest(set))
                .collect(),
        };
        seats.sort();
        seats
            .into_iter()
            .take(limit)
            .filter_map(|(_, author)| self.stored.get(&Slot::Latest("join", author, None)))
            .cloned()
            .collect()
    }

    /// What a newcomer's subscription fetches at `now`, oldest first (relays send newest
    /// first; the participant sorts its backlog anyway).
    pub fn stored_for(&self, me: &PublicKey, now: Millis) -> Vec<SpaceEvent> {
        let mut events: Vec<SpaceEvent> = self
            .stored
            .values()
            .filter(|e| e.author != *me && fetched(e, now))
            .cloned()
            .collect();
        events.sort_by_key(|e| (e.created_at, e.id));
        events
    }
}
