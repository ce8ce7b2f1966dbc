//! A crowd's view (`docs/TOPOLOGY.md`, *Crowd views*): past [`ParticipantConfig::crowd_at`]
//! members the host says so in its CREATE, and every member stops following the whole space.
//! It follows its inbox, the role changes, a few members around it (the host, its links, the
//! peer it asks, the staff) and, when it chooses a parent, backup or climb, a fresh sample of
//! open seats. Members it no longer sees announce their place in the tree ([`Seat`]) in their
//! JOINs, which the tree rules read where our own links end.
//!
//! [`ParticipantConfig::crowd_at`]: super::ParticipantConfig::crowd_at

use std::collections::BTreeSet;
use std::time::Duration;

use nostr::prelude::{PublicKey, Timestamp};

use super::{LinkKind, Participant, ms};
use crate::participant::io::{Follow, Output, SEAT_SAMPLE};
use crate::protocol::filter::OpenSeats;
use crate::protocol::{Message, SEAT_SHARDS, Seat, SpaceEvent};
use crate::topology::{branch_of, lineage_bits, mix, word};

/// How many members a crowd's view may hold beyond its neighbours and its sample before it
/// forgets the others.
const STRANGERS: usize = 32;

/// Members a crowd's view may go on following after it no longer needs them, before it
/// asks the relays again.
const FOLLOW_SLACK: usize = 8;

/// How long a sample of open seats is good for choosing from: a few refusals' worth of
/// retries, short enough that seats taken meanwhile are not asked for long.
pub const SAMPLE_FOR: Duration = Duration::from_secs(3);

/// A fetch of seats that has not ended by then is asked again (a relay that went away).
const SAMPLE_LOST: Duration = Duration::from_secs(3);

/// How often an open seat deeper than the host's children is announced again (theirs, more
/// often: `topology::renew_secs`): samples look back little more than this, so a crashed
/// member's seat (its JOIN stays on the relays) drops out of them soon, and one not renewed on
/// time is asked last (`topology`'s overdue seats).
pub const SEAT_RENEW_EVERY: Duration = Duration::from_secs(crate::topology::SEAT_RENEW_SECS);

/// How far back a fetch of seats draws the time its sample ends: open seats are renewed
/// every [`SEAT_RENEW_EVERY`], so every open seat announced itself within it.
pub const SAMPLE_WINDOW: Duration = Duration::from_secs(60);

/// How far back a fetch of seats looks: an open seat is renewed every
/// [`SEAT_RENEW_EVERY`], so an older one is likely a crashed member's.
pub const SAMPLE_SINCE: Duration = Duration::from_secs(75);

/// The shortest time between two seat announcements (JOINs) of one member: a burst of
/// children arriving changes its free outputs many times in a second.
pub const SEAT_EVERY: Duration = Duration::from_secs(1);

/// How many members a space holds before its host makes it a crowd, by default. Below it a
/// phone follows every event (~1,000 a minute at 500 members under 30 crashes a minute) and
/// hears first a relay round trip or two sooner; past it, what a phone receives stops growing
/// with the crowd (BENCHMARKS.md, *Crowd views*).
pub const CROWD_AT: usize = 500;

impl Participant {
    /// The host's CREATE is read: follow the whole space, or a crowd's view.
    pub(super) fn host_read(&mut self) {
        if self.view.is_some() {
            return;
        }
        let host = *self.config.space.host();
        let crowd = self.space.is_crowd()
            || self
                .backlog
                .iter()
                .flatten()
                .filter(|e| e.author == host)
                .filter_map(|e| match &e.message {
                    Message::Create(info) => Some((e.created_at, e.id, info.crowd)),
                    _ => None,
                })
                .max()
                .is_some_and(|(_, _, crowd)| crowd);
        if crowd {
            // The members and the first sample are asked for before the view: relays answer
            // in order, so the host's seat and the sample are in when the view's end says
            // the space is read (and the ask made before it is settled).
            self.view = Some(Follow::Crowd);
            self.follow_members();
            self.fetch_seats();
            self.outputs.push_back(Output::Follow(Follow::Crowd));
        } else {
            self.view = Some(Follow::Space);
            self.outputs.push_back(Output::Follow(Follow::Space));
        }
    }

    /// After every input and timeout: the host makes the space a crowd when it grew past
    /// [`CROWD_AT`]; in a crowd, the members we follow and our announced seat stay current.
    pub(super) fn keep_view(&mut self) {
        self.keep_view_current();
        self.stats.crowd = self.view == Some(Follow::Crowd);
        self.stats.members_in_view = self.space.members().len();
    }

    fn keep_view_current(&mut self) {
        if self.backlog.is_some() || self.is_done() {
            return;
        }
        if self.is_host() && !self.space.is_crowd() && self.grown_into_crowd() {
            tracing::info!(
                members = self.space.members().len(),
                "the space is a crowd now"
            );
            self.announce();
        }
        if !self.space.is_crowd() {
            return;
        }
        if self.view != Some(Follow::Crowd) {
            // The host's CREATE said so while we followed the whole space: narrow down.
            self.view = Some(Follow::Crowd);
            self.outputs.push_back(Output::Follow(Follow::Crowd));
            let keep = self.neighbours();
            self.space.narrow_to(|k| keep.contains(k));
            self.seat = None;
            self.seat_at = 0;
            self.seat_made_of = None;
        }
        self.follow_members();
        self.forget_strangers();
        self.announce_seat();
    }

    /// A crowd's view holds our neighbours, the last sample and the one being read: members
    /// met since (the requesters we admitted or refused, former children) go once they
    /// outnumber it, so that what each decision reads stays bounded however long we stay.
    /// The sample being read stays: a relay that met many requesters once forgot each seat
    /// its fetch brought as the next one came in, and found no backup in a sample of 24 (its
    /// parent then crashed: 1.2 s of silence, 1,000 random, seed 8, in the simulator).
    fn forget_strangers(&mut self) {
        let bound = self.following.len() + self.sample.len() + self.sampled.len() + STRANGERS;
        if self.space.members().len() <= bound {
            return;
        }
        let following: BTreeSet<&PublicKey> = self.following.iter().collect();
        let (sample, sampled) = (&self.sample, &self.sampled);
        self.space
            .narrow_to(|k| following.contains(k) || sample.contains(k) || sampled.contains(k));
    }

    /// The host's rule for a crowd: this many members and more.
    pub(super) fn grown_into_crowd(&self) -> bool {
        self.is_host() && self.space.members().len() >= self.config.crowd_at
    }

    /// The members a crowd's view keeps: those it follows, and the peer we ask.
    pub(super) fn neighbours(&self) -> BTreeSet<PublicKey> {
        let mut keys: BTreeSet<PublicKey> = self.followed().into_iter().collect();
        keys.extend(self.pending.map(|p| p.peer));
        keys
    }

    /// The members whose JOIN and LEAVE a crowd's view follows: the host, every peer we link
    /// with, the staff (their voices and roles), and requesters we do not know yet (their
    /// RESERVE waits for their JOIN). The peer we ask is not among them: its JOIN came with
    /// the sample, and a link it sets up makes it one. Sorted, each once (collected, then sorted
    /// once: a relay may hold a thousand parked events).
    fn followed(&self) -> Vec<PublicKey> {
        let mut keys = self.links.peers();
        keys.push(*self.config.space.host());
        keys.extend(self.space.staff());
        keys.extend(self.parked.iter().map(|(e, _)| e.author));
        keys.retain(|k| *k != self.me);
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    fn follow_members(&mut self) {
        // What the neighbours are made of, cheaply: most inputs change none of it.
        let made_of = (
            self.links.version(),
            self.parked_changes,
            self.space.staff().count(),
        );
        if self.following_made_of == Some(made_of) {
            return;
        }
        self.following_made_of = Some(made_of);
        let keys = self.followed();
        // Each change is a new subscription on every relay: one that only drops members
        // waits until a few are left to drop (following them a while longer costs little).
        let gained = keys
            .iter()
            .any(|k| self.following.binary_search(k).is_err());
        if gained || self.following.len() > keys.len() + FOLLOW_SLACK {
            tracing::trace!(members = keys.len(), "following");
            self.following.clone_from(&keys);
            self.outputs
                .push_back(Output::Follow(Follow::Members(keys)));
        }
    }

    /// In a crowd, a RESERVE from someone we do not know yet, to a member with no free
    /// output, waits for the requester's JOIN (we follow it from now on): only its metrics
    /// say whether it may take a weaker leaf's seat. With a free output the RESERVE is
    /// answered at once (the reducer admits the requester, its JOIN follows). Returns
    /// whether it waits.
    pub(super) fn awaits_requester(&mut self, event: &SpaceEvent) -> bool {
        let children = self.links.of_kind(LinkKind::Child).count() as u32;
        let waits = self.space.is_crowd()
            && matches!(event.message, Message::Reserve(_))
            && !self.space.members().contains_key(&event.author)
            && children >= self.capacity();
        waits && self.park(event)
    }

    /// In a crowd, a JOIN of someone we do not follow came from a fetch of seats.
    pub(super) fn note_sampled(&mut self, event: &SpaceEvent) {
        if self.space.is_crowd()
            && matches!(event.message, Message::Join(_))
            && !self.following.contains(&event.author)
        {
            self.sampled.insert(event.author);
        }
    }

    /// Whether the rules may choose now: always in a small space; in a crowd, once a sample
    /// of open seats is fresh. Otherwise a fetch goes out (one at a time) and the choice
    /// waits for [`Participant::seats_read`].
    pub(super) fn sample_ready(&mut self) -> bool {
        self.sample_ready_to(None)
    }

    /// [`Self::sample_ready`] for a climb when `deepest` is given: ready only with a fresh
    /// sample of seats at most that deep (a climb's places), fetched if need be; without it,
    /// only with a fresh sample of any seats.
    pub(super) fn sample_ready_to(&mut self, deepest: Option<u32>) -> bool {
        if !self.space.is_crowd() {
            return true;
        }
        // A climb's sample of shallow seats may hold none, and a backup search that finds
        // nothing waits half a minute: a listener whose backup went right after its look for
        // a climb stayed without one (1.7 s of silence when its parent then went quiet, in
        // the simulator). The other way round, a sample of any seats holds few shallow
        // ones, and a climb that found none there waits a minute for its next look.
        let fits = deepest.is_some() == self.sample_shallow;
        if fits
            && self
                .sample_at
                .is_some_and(|at| self.now < at + ms(SAMPLE_FOR))
        {
            return true;
        }
        if self
            .seats_asked
            .is_none_or(|at| self.now >= at + ms(SAMPLE_LOST))
        {
            match deepest {
                // The newest of them: shallow seats are few, and each is worth asking for.
                Some(deepest) => {
                    self.fetch_seats_until(self.now / 1_000, OpenSeats::AtMost(deepest))
                }
                None => self.fetch_seats(),
            }
        }
        false
    }

    /// A warm backup just took over: once it confirms we look for the next backup, and should
    /// the new parent go quiet before one connects, for a parent at once. In a crowd the
    /// sample both need is fetched now, so that neither waits for it (0.2 s of the 1.1 s
    /// silence of a listener whose new parent went 0.3 s after it took over was the fetch:
    /// 1,000 random, seed 16, in the simulator).
    pub(super) fn sample_ahead(&mut self) {
        self.sample_ready();
    }

    /// In a crowd, a member the last sample did not bring (the host apart) is no candidate:
    /// the staff and our neighbours are in every member's view, and a speaker's seat, which
    /// the draft's score ranks first, drew the whole crowd of 10,000 at once in the
    /// simulator (its refusals then held its own RESERVEs behind the relay's rate limit).
    pub(super) fn unsampled(&self, peer: &PublicKey) -> bool {
        self.space.is_crowd() && peer != self.config.space.host() && !self.sample.contains(peer)
    }

    /// While a fetch of seats is out: when it counts as lost.
    pub(super) fn seats_lost_at(&self) -> Option<super::Millis> {
        self.seats_asked.map(|at| at + ms(SAMPLE_LOST))
    }

    /// Asks for a sample of open seats: the newest before a time drawn in the last
    /// [`SAMPLE_WINDOW`]. Everyone asking for the newest would meet the same few seats at
    /// once (in the simulator, one relay got tens of backups in a second and handed all but
    /// a few back); a window of its own per fetch spreads the crowd over every open seat.
    /// The fetch also draws the shard [`Self::seats_read`] falls back on.
    fn fetch_seats(&mut self) {
        self.fetches += 1;
        let draw =
            mix(word(&self.me.to_bytes(), 0) ^ self.fetches.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let back = draw % (SAMPLE_WINDOW.as_secs() + 1);
        self.seats_shard = ((draw >> 32) % u64::from(SEAT_SHARDS)) as u8;
        self.fetch_seats_until((self.now / 1_000).saturating_sub(back), OpenSeats::All);
    }

    fn fetch_seats_until(&mut self, until: u64, which: OpenSeats) {
        self.seats_asked = Some(self.now);
        self.seats_until = until;
        self.seats_which = which;
        let since = (self.now / 1_000).saturating_sub(SAMPLE_SINCE.as_secs());
        self.outputs.push_back(Output::Follow(Follow::Seats {
            since: Timestamp::from_secs(since),
            until: Timestamp::from_secs(until),
            which,
        }));
    }

    /// A fetch of seats ended: the view keeps our neighbours and this sample, and the choice
    /// that waited for it is made.
    pub(super) fn seats_read(&mut self) {
        self.seats_asked = None;
        if self.backlog.is_some() {
            // Its JOINs wait in the backlog with the rest: taken once it is read.
            self.seats_late = true;
            return;
        }
        let now_secs = self.now / 1_000;
        let few = self.sampled.len() < SEAT_SAMPLE / 2;
        match self.seats_which {
            OpenSeats::All if few && self.seats_until + 1 < now_secs => {
                // A window drawn before most seats were announced (a young space): the newest
                // then, at once, of one shard. Relays give everyone asking in the same second
                // the same newest seats (timestamps are in seconds, ties broken alike), and a
                // young crowd arrives by the hundred a second.
                tracing::debug!(seats = self.sampled.len(), "few seats in the window drawn");
                self.fetch_seats_until(now_secs, OpenSeats::Shard(self.seats_shard));
                return;
            }
            OpenSeats::Shard(_) if few => {
                // A small crowd: a shard holds few seats, the newest of all then.
                tracing::debug!(seats = self.sampled.len(), "few seats in the shard");
                self.fetch_seats_until(now_secs, OpenSeats::All);
                return;
            }
            _ => {}
        }
        self.sample_at = Some(self.now);
        self.sample_shallow = matches!(self.seats_which, OpenSeats::AtMost(_));
        let keep = self.neighbours();
        tracing::debug!(seats = self.sampled.len(), "sample of seats read");
        self.sample = std::mem::take(&mut self.sampled);
        let sample = &self.sample;
        self.space
            .narrow_to(|k| keep.contains(k) || sample.contains(k));
        self.seek();
    }

    /// Our place in the tree as we announce it: relays only (a leaf is nobody's seat), once
    /// our parent delivers (the host: always). Read from our parent's announcement, as the
    /// crowd's tree view would (it knows no link above ours), without building that view:
    /// this runs after every input.
    fn my_seat(&self) -> Option<Seat> {
        let capacity = self.capacity();
        if capacity == 0 {
            return None;
        }
        let rules = &self.config.rules;
        let per_output = self.space.members().get(&self.me).map_or(0.0, |m| {
            f64::from(m.metrics.upload_kbps) / f64::from(capacity.max(1))
        });
        let host = *self.config.space.host();
        let (depth, branch, lineage, head, above) = if self.is_host() {
            (0, 0, 0, 0, f64::INFINITY)
        } else {
            let parent = self.links.one(LinkKind::Parent)?;
            self.links.get(&parent).filter(|l| l.delivers())?;
            if parent == host {
                (
                    1,
                    branch_of(&self.me),
                    lineage_bits(&self.me),
                    capacity,
                    rules.per_output_kbps(&self.space, &host),
                )
            } else {
                let seat = self.space.members().get(&parent)?.seat?;
                // A parent that names no lineage leaves ours unknown too: a line without its
                // upper members would say we are not below them.
                let lineage = match seat.lineage {
                    0 => 0,
                    above => above | lineage_bits(&self.me),
                };
                (
                    seat.depth + 1,
                    seat.branch,
                    lineage,
                    seat.head,
                    f64::from(seat.path_kbps),
                )
            }
        };
        let held = self
            .links
            .iter()
            .filter(|(_, l)| matches!(l.kind, LinkKind::Child | LinkKind::StandbyChild))
            .count() as u32;
        let free = capacity.saturating_sub(held);
        // A seat to hand on only when full, and only one at a time (as the view would show
        // a full parent's children: one displacement after another).
        let leaf = if free == 0 && !self.links.displacing() {
            let tree = self.tree();
            let children: Vec<PublicKey> = self.links.of_kind(LinkKind::Child).collect();
            rules.weakest_leaf(&self.space, &tree, children.iter())
        } else {
            None
        };
        let path = per_output.min(above);
        Some(Seat {
            depth,
            free,
            path_kbps: if path.is_finite() {
                path.round() as u32
            } else {
                0
            },
            leaf,
            branch,
            lineage,
            head,
        })
    }

    /// Announces our seat again (a JOIN) when what others choose by changed: our depth, or
    /// whether we have a free output. Not on every child that comes or goes (the count of
    /// free outputs goes out with the next announcement), and not while we look for a new
    /// parent (our old depth is the best guess of the one we will find; our children would
    /// each announce the change too). An open seat is announced again every
    /// [`SEAT_RENEW_EVERY`]: the sample skips seats not renewed lately (crashed members
    /// leave theirs behind).
    fn announce_seat(&mut self) {
        // What our seat is made of, cheaply: most inputs change none of it. (A child's own
        // seat, which says whether it is a leaf, is read again at the next change of ours.)
        let parent = self.links.one(LinkKind::Parent);
        let made_of = (
            self.links.version(),
            self.capacity(),
            parent
                .and_then(|p| self.links.get(&p))
                .is_some_and(|l| l.delivers()),
            parent.and_then(|p| self.space.members().get(&p)?.seat),
            self.links.displacing(),
        );
        let renew = self.renewal_at().is_some_and(|at| self.now >= at);
        let due = self.seat_due && self.now >= self.seat_at + ms(SEAT_EVERY);
        if self.seat_made_of == Some(made_of) && !renew && !due {
            return;
        }
        self.seat_made_of = Some(made_of);
        let seat = self.my_seat();
        if seat.is_none() && self.capacity() > 0 && self.seat.is_some() {
            return;
        }
        let changed = match (seat, self.seat) {
            (Some(new), Some(old)) => {
                new.depth != old.depth
                    || new.branch != old.branch
                    || new.lineage != old.lineage
                    || (new.free > 0) != (old.free > 0)
                    || new.leaf.is_some() != old.leaf.is_some()
            }
            (None, None) => false,
            _ => true,
        };
        self.seat_due = changed && self.now < self.seat_at + ms(SEAT_EVERY);
        if (changed && !self.seat_due) || renew {
            tracing::debug!(?seat, "seat announced");
            self.seat = seat;
            self.seat_at = self.now;
            let join = self.join_message();
            self.publish(join);
        }
    }

    /// When our seat is announced next: a deferred change, or the renewal of an open seat.
    pub(super) fn seat_due_at(&self) -> Option<super::Millis> {
        if !self.space.is_crowd() {
            return None;
        }
        let due = self.seat_due.then(|| self.seat_at + ms(SEAT_EVERY));
        due.into_iter().chain(self.renewal_at()).min()
    }

    /// When our open seat is announced again ([`crate::topology::renew_secs`] of its depth).
    fn renewal_at(&self) -> Option<super::Millis> {
        let seat = self.seat.filter(|s| s.open())?;
        Some(self.seat_at + crate::topology::renew_secs(seat.depth) * 1_000)
    }

    /// Leaving a crowd: our open seat goes from the relays' index first, so that newcomers'
    /// samples stop offering it.
    pub(super) fn close_seat(&mut self) {
        if self.space.is_crowd() && self.seat.is_some_and(|s| s.open()) {
            self.seat = None;
            let join = self.join_message();
            self.publish(join);
        }
    }
}
