//! The participant: every decision one member of a space makes, as a pure state machine in the
//! shape of str0m's `Rtc`. Inputs (parsed relay events, link events, user commands) go in with
//! the current time; outputs (events to publish, links to open or close, audio routing, UI
//! events) come out of [`Participant::poll_output`]; [`Participant::poll_timeout`] says when
//! to call [`Participant::handle_timeout`] next. No sockets, no clock, no tasks: the engine's
//! driver and the simulator run the same code.

mod crowd;
mod io;
mod link;
mod outbox;
#[cfg(test)]
mod tests;
mod uplink;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use nostr::prelude::{EventId, PublicKey, Timestamp};

pub use crowd::{CROWD_AT, SAMPLE_FOR, SAMPLE_SINCE, SEAT_EVERY, SEAT_RENEW_EVERY};
pub use io::{
    Follow, Input, LinkInput, LinkOp, Millis, Output, Publication, Routing, SEAT_SAMPLE,
    UserCommand,
};
pub use link::{Link, LinkKind, Links};
pub use uplink::{
    CLEAN_LOSS, CUT_EVERY, Change as UplinkChange, PROBE_AFTER, REMEMBER_FOR, STARVED_LOSS,
    UNKNOWN_START, Uplink,
};

use crate::protocol::filter::OpenSeats;
use crate::protocol::{
    LinkRole, MemberInfo, Message, NetworkMetrics, Presence, Reservation, Role, Seat, SpaceEvent,
    SpaceInfo, SpaceRef,
};
use crate::space::{Command, Space};
use crate::topology::{Admission, PeerMetrics, Seats, TreeRules, TreeView, Want, climb_reach};
use outbox::Outbox;

/// How long a participant waits for CONFIRM before asking the next candidate: several relay
/// round trips on a slow mobile link, short enough that a silent candidate costs little.
pub const RESERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a confirmed link may take to connect before either side gives up on it: ICE over
/// TURN on a cellular link takes a few seconds; a peer that never answers frees the seat.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// How long after a CONFIRM the SDP exchange must be done: the offer at the confirmer, the
/// answer at the requester. Both are one signed event over the relays (well under a second),
/// so a peer that lets this pass is not setting up a link, and the seat (or our wait) goes
/// back long before the connection deadline. Rate-limited relays queue a busy member's events
/// by a second or so, which this leaves room for.
pub const NEGOTIATE_DEADLINE: Duration = Duration::from_millis(2_500);
/// An upstream link that stalled within this long of connecting never carried a packet worth
/// the name: with [`CONNECT_DEADLINE`] of that behind it, it is not a link.
const SILENT_FROM_THE_START: Millis = 1_000;

/// An upstream link that has been up for [`SILENT_FROM_THE_START`] without stalling: it carries
/// audio (one just connected may carry nothing yet: its sender may itself hear nothing).
fn carries(link: &Link, now: Millis) -> bool {
    link.stalled_since.is_none()
        && link
            .connected_at
            .is_some_and(|c| now >= c + SILENT_FROM_THE_START)
}

/// How long after our last seat was taken a newcomer's read surely shows us full (our CONFIRM
/// on the relays before it read): a reservation asked before the read that comes later is
/// refused silently (the read told it); sooner, it may have read seats free, and waits for an
/// answer, so it gets a DROP.
const FULL_SHOWN_AFTER: Millis = 1_000;

/// How far back links never set up count as pressure.
pub const PRESSURE_WINDOW: Duration = Duration::from_secs(30);

/// Links never set up within [`PRESSURE_WINDOW`] from which we ask every new requester for
/// proof of work. Refusals for lack of room do not count: a crowd of honest newcomers makes
/// many. Confirmed requesters that never set up their link are what Sybils do; an honest
/// phone losing its network does it once.
pub const PRESSURE_AT: usize = 3;

/// The proof of work we ask for under pressure, in NIP-13 bits. 16 bits cost an honest
/// phone tens of milliseconds once per reservation (BENCHMARKS.md), and a Sybil the same for
/// every key, every time.
pub const PRICE_BITS: u8 = 16;

/// The most work we do to be admitted: a price beyond it is not worth a seat.
pub const MAX_PAY: u8 = 20;

/// The longest a reservation's work may take before we stop waiting for it (a slow phone
/// does 20 bits in well under this).
const WORK_MAX: Duration = Duration::from_secs(30);

/// How long a price another member asked of us stays in force.
const PRICE_FOR: Duration = Duration::from_secs(60);

/// How long a peer that timed out or failed is left out of parent choice, and refused as a
/// child, the first time; each further failure doubles it, up to [`AVOID_MAX`].
pub const AVOID_FOR: Duration = Duration::from_secs(30);

/// The longest a peer is avoided for repeated failures.
pub const AVOID_MAX: Duration = Duration::from_secs(600);

/// How long a peer that refused us is left out of parent choice: it was full or not yet
/// receiving, both of which change within seconds.
pub const REFUSED_AVOID: Duration = Duration::from_secs(5);

/// How long a parent must have delivered before we look for a warm backup, and how often we
/// try again after a refusal: backups matter once the tree has settled.
pub const STANDBY_AFTER: Duration = Duration::from_secs(1);

/// How long to wait after finding no warm backup before looking again.
pub const STANDBY_RETRY: Duration = Duration::from_secs(5);

/// How often a relay looks for a seat nearer the host ([`climb_reach`]).
pub const CLIMB_EVERY: Duration = Duration::from_secs(10);

/// How soon after a warm backup took over a relay looks for a place nearer the host.
pub const CLIMB_AFTER_TAKEOVER: Duration = Duration::from_secs(2);

/// In a crowd a failed look for a warm backup, and the look for a place nearer the host,
/// wait this many times longer before the next: each look fetches seats from the relays.
const CROWD_SLOWER: u32 = 6;

/// How often a member renews its NIP-53 presence (Nests drops presences older than 5 min).
pub const PRESENCE_EVERY: Duration = Duration::from_secs(120);

/// How long a demoted speaker beyond the host's capacity has to move down by itself before
/// the host hands it on (a DROP, and its audio for [`HAND_ON_GRACE`] more).
pub const SHED_GRACE: Duration = Duration::from_secs(10);

/// How long a parent keeps feeding a leaf whose seat it handed on to a stronger relay, while
/// the leaf finds a new parent: when every seat nearby is taken or asked for, that takes
/// seconds, and the leaf has no warm backup to cover it (a depth-1 listener keeps none).
pub const HAND_ON_GRACE: Duration = Duration::from_secs(10);

/// How often, at most, the host hands a relay child's seat on to a clearly stronger relay
/// ([`Admission::HandOnRelay`]). Each such move takes a subtree along (its root finds a new
/// parent while we still feed it), and during a rush strong climbers would move the host's
/// children one after another; the few relays that took the host's outputs before the strong
/// ones arrived need only a few moves, spread out.
pub const RELAY_HAND_ON_EVERY: Duration = Duration::from_secs(10);

/// Leaves handed on and still fed at once, at most: each is a stream beyond our capacity
/// (which keeps headroom below the real uplink for such moments).
const MAX_HANDED_ON: usize = 2;

/// How long to wait before looking again for a parent when nobody had room.
const SEARCH_AGAIN: Duration = Duration::from_millis(250);

/// Most events kept waiting for an unknown member.
const MAX_PARKED: usize = 1_024;

/// How long an event waits for its unknown member: relays reorder authors by seconds at most.
const PARK_FOR: Duration = Duration::from_secs(10);

/// A RESERVE or CONFIRM older than this (relays store them) still shapes the tree we see, but
/// is not acted on: its sender has long since moved on or timed out.
const ACT_WITHIN_SECS: u64 = 30;

/// A participant's settings.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    /// Our key.
    pub me: PublicKey,
    /// The space.
    pub space: SpaceRef,
    /// Display name.
    pub name: String,
    /// What we announce about our network.
    pub metrics: NetworkMetrics,
    /// Cell labels to tag a new space with (hosts).
    pub cells: Vec<String>,
    /// CONFIRM wait ([`RESERVE_TIMEOUT`]).
    pub reserve_timeout: Duration,
    /// Confirmed to connected ([`CONNECT_DEADLINE`]).
    pub connect_deadline: Duration,
    /// The tree rules.
    pub rules: TreeRules,
    /// Draft compatibility: private payloads (RESERVE, CONFIRM, SDP, ICE) in clear to peers
    /// that did not announce NIP-44. Off by default: relays are public, and SDP and ICE carry
    /// IP addresses; on, draft-literal clients can take part.
    pub draft_compat: bool,
    /// Keep a warm backup link below depth 1: a second parent that sends every frame too, so
    /// that losing the parent costs no audio. It doubles what a listener downloads and costs
    /// its backup parent an upload stream; without it, a lost parent costs the stall window
    /// and a new reservation (BENCHMARKS.md, "Warm backups"). On by default.
    pub warm_backup: bool,
    /// Ask the host for a seat as soon as we join, before the space is read: in a space with
    /// room near the host the CONFIRM comes a relay round trip sooner (~80 ms of first audio
    /// on 40 ms links, BENCHMARKS.md). The host is taken to speak our dialect; the read then
    /// keeps the reservation or gives it up. In a space whose host is full it costs a RESERVE
    /// per newcomer, and the host's refusals (rate-limited). On by default; auto-join turns it
    /// off for a space listed as a crowd (`engine::discover::Listing::crowd`).
    pub ask_host_first: bool,
    /// The fingerprint of our DTLS certificate, announced with our JOIN or CREATE
    /// (`rtc::Certificate`): newcomers below us write our answer before it arrives.
    pub dtls: Option<String>,
    /// At the host: members at which the space becomes a crowd ([`CROWD_AT`]), each member
    /// then following its neighbourhood rather than the whole space.
    pub crowd_at: usize,
}

impl ParticipantConfig {
    /// Defaults for everything but who and where.
    pub fn new(me: PublicKey, space: SpaceRef, metrics: NetworkMetrics) -> Self {
        Self {
            me,
            space,
            name: String::new(),
            metrics,
            cells: Vec::new(),
            reserve_timeout: RESERVE_TIMEOUT,
            connect_deadline: CONNECT_DEADLINE,
            rules: TreeRules::default(),
            draft_compat: false,
            warm_backup: true,
            ask_host_first: true,
            dtls: None,
            crowd_at: CROWD_AT,
        }
    }
}

/// What a participant knows about itself, for progress, reports and the UI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParticipantStats {
    /// Our role in the space.
    pub role: Role,
    /// Our parent in the tree.
    pub parent: Option<PublicKey>,
    /// Our warm backup parent.
    pub standby: Option<PublicKey>,
    /// Times a warm backup took over from a lost parent.
    pub standby_takeovers: u64,
    /// Our children in the tree.
    pub children: usize,
    /// Children we feed as their warm backup.
    pub standby_children: usize,
    /// ICE restarts we started (network changes).
    pub ice_restarts: u64,
    /// Upstream links we gave up on (failed, disconnected, never connected).
    pub upstream_lost: u64,
    /// Reservations we made.
    pub reservations: u64,
    /// Of those, climbs nearer the host (pull-up).
    pub climbs: u64,
    /// Of those, made with proof of work (a busy confirmer priced them).
    pub paid_reservations: u64,
    /// Events the state machine refused, and requests for a link it refused, by reason
    /// (`refusals` counts every refusal sent, whatever its reason).
    pub rejected: HashMap<&'static str, u64>,
    /// Outputs we feed now: the announced uplink's, or what receiver reports taught us.
    pub capacity: u32,
    /// Times children's loss reports made us feed fewer.
    pub capacity_cuts: u64,
    /// We follow a crowd's view (our neighbourhood and samples of seats), not the whole space.
    pub crowd: bool,
    /// Members our view holds.
    pub members_in_view: usize,
}

/// A reservation we are waiting on.
#[derive(Debug, Clone, Copy)]
struct Pending {
    peer: PublicKey,
    since: Millis,
    standby: bool,
    /// The proof of work our RESERVE carried.
    work: u8,
    /// When a RESERVE carrying work actually left (the work done).
    sent: Option<Millis>,
    /// Our offer rode in the RESERVE: the driver holds a link to the peer already, which
    /// goes if the reservation does.
    offered: bool,
    /// Sent to the host before the space was read ([`ParticipantConfig::ask_host_first`]):
    /// the read settles whether it stands.
    before_read: bool,
    /// The link our offer opened connected before the CONFIRM came: its answer was written
    /// in advance (`rtc::prediction`), and the parent's checks outran its CONFIRM.
    connected: bool,
    /// We asked a full parent for a weaker leaf's seat ([`TreeRules::displaceable`]).
    leaf_seat: bool,
}

/// What a crowd's list of followed members depends on: links, parked events' authors, staff.
type FollowingMadeOf = (u64, u64, usize);

/// What a crowd's announced seat depends on: links, capacity, whether the parent delivers,
/// the parent's seat, a displacement under way.
type SeatMadeOf = (u64, u32, bool, Option<Seat>, bool);

/// One member of a space, deciding.
pub struct Participant {
    config: ParticipantConfig,
    me: PublicKey,
    space: Space,
    uplink: Uplink,
    muted: bool,
    links: Links,
    pending: Option<Pending>,
    /// Until then we look for parents with a free output only: a parent refused us a leaf's
    /// seat, and the crowd that saw the same weak leaves would meet the next one too.
    free_seats_until: Millis,
    /// The host we asked before reading the space and then passed over: if it confirms all
    /// the same, a DROP frees the seat it holds for us.
    passed_over: Option<PublicKey>,
    avoid: HashMap<PublicKey, Millis>,
    /// Links a peer agreed to and never set up, and when its avoidance for the last one ends:
    /// each doubles the next avoidance. Forgotten [`AVOID_MAX`] after that end, so an attack
    /// with endless fresh keys holds no memory for long.
    strikes: HashMap<PublicKey, (u32, Millis)>,
    /// When we dropped a requester's link that was never set up (the window of
    /// [`PRESSURE_WINDOW`]): the pressure that sets our price.
    pressure: VecDeque<Millis>,
    /// Our events as the relays count them: answers wait while they would come late
    /// ([`Outbox`]).
    outbox: Outbox,
    /// Proof of work others asked of us (bits), and until when.
    prices: HashMap<PublicKey, (u8, Millis)>,
    /// The price our last JOIN announced.
    announced_price: u8,
    /// Events received before the relays' stored events ended, applied in causal order.
    backlog: Option<Vec<SpaceEvent>>,
    /// Events refused only because a member was not known yet (relays reorder authors).
    parked: Vec<(SpaceEvent, Millis)>,
    /// Counts changes to `parked` that may change whom we follow: an event parked whose author
    /// we do not follow yet, and every event let go. A busy relay parks a stranger's events
    /// many times over; re-reading whom to follow for each cost a sort of a thousand keys.
    parked_changes: u64,
    /// Last `created_at` per addressable event (kind, other peer): a relay keeps one event per
    /// (kind, author, d) and refuses a replacement that is not newer.
    addressable_at: HashMap<(&'static str, Option<PublicKey>), u64>,
    /// Our own events get ids of their own (relays' copies of them are never fed back).
    published: u64,
    last_presence: Millis,
    next_search: Millis,
    next_climb: Millis,
    /// At the host: when it last handed a relay child's seat on ([`RELAY_HAND_ON_EVERY`]).
    relay_handed_on: Option<Millis>,
    last_standby_try: Millis,
    /// When our former parent became [`LinkKind::Retiring`]: it goes once the new parent has
    /// carried audio for [`SILENT_FROM_THE_START`] since, long enough for a stall to show.
    retired_at: Millis,
    /// What [`Self::poll_timeout`] answered, until our state changes.
    next_timeout: Option<Millis>,
    left: bool,
    now: Millis,
    routing: Routing,
    /// The host's speakers changed (roles, membership): rebuild that part of the routing,
    /// which walks every member, only then, not on every input.
    speakers_stale: bool,
    speaking: Option<bool>,
    stats: ParticipantStats,
    outputs: VecDeque<Output>,
    /// The view we asked the driver to follow ([`Follow::Space`] or [`Follow::Crowd`]);
    /// `None` before the host's CREATE is read (a driver that never says follows the space).
    view: Option<Follow>,
    /// In a crowd: the members we last asked to follow.
    following: Vec<PublicKey>,
    /// What they were computed from ([`Participant::follow_members`]).
    following_made_of: Option<FollowingMadeOf>,
    /// What our announced seat was last computed from.
    seat_made_of: Option<SeatMadeOf>,
    /// In a crowd: members a fetch of seats brought since the last one ended.
    sampled: HashSet<PublicKey>,
    /// In a crowd: the members the last fetch of seats brought.
    sample: HashSet<PublicKey>,
    /// In a crowd: when the fetch of seats out now was asked.
    seats_asked: Option<Millis>,
    /// In a crowd: when the last fetch of seats ended.
    sample_at: Option<Millis>,
    /// The last sample held only seats near the host (a climb's fetch): no sample to choose
    /// a parent or a backup from, and the only kind a climb chooses from.
    sample_shallow: bool,
    /// A fetch of seats ended before the view was read.
    seats_late: bool,
    /// In a crowd: the seat our last JOIN announced, and when.
    seat: Option<Seat>,
    seat_at: Millis,
    /// A changed seat waits for [`SEAT_EVERY`] to pass.
    seat_due: bool,
    /// Fetches of seats made (each draws its own window).
    fetches: u64,
    /// The end of the window of the fetch out now, Unix seconds.
    seats_until: u64,
    /// Which seats the fetch out now asked for.
    seats_which: OpenSeats,
    /// The shard a fetch that found few seats in its window falls back on.
    seats_shard: u8,
}

impl Participant {
    /// A participant at `now`, announcing itself: CREATE (and the NIP-53 room) for the host,
    /// JOIN and presence for anyone else.
    pub fn new(config: ParticipantConfig, now: Millis) -> Self {
        let me = config.me;
        let space = Space::new(config.space.clone(), me);
        let is_host = me == *config.space.host();
        let uplink = uplink_of(&config.rules, &config.metrics, is_host);
        let mut participant = Self {
            me,
            space,
            uplink,
            muted: false,
            links: Links::default(),
            pending: None,
            free_seats_until: 0,
            passed_over: None,
            avoid: HashMap::new(),
            strikes: HashMap::new(),
            pressure: VecDeque::new(),
            outbox: Outbox::default(),
            prices: HashMap::new(),
            announced_price: 0,
            backlog: Some(Vec::new()),
            parked: Vec::new(),
            parked_changes: 0,
            addressable_at: HashMap::new(),
            published: 0,
            last_presence: now,
            next_search: now,
            next_climb: now + ms(CLIMB_EVERY),
            relay_handed_on: None,
            last_standby_try: now,
            retired_at: now,
            next_timeout: None,
            left: false,
            now,
            routing: Routing::default(),
            speakers_stale: true,
            speaking: None,
            stats: ParticipantStats::default(),
            outputs: VecDeque::new(),
            view: None,
            following: Vec::new(),
            following_made_of: None,
            seat_made_of: None,
            sampled: HashSet::new(),
            sample: HashSet::new(),
            seats_asked: None,
            sample_at: None,
            sample_shallow: false,
            seats_late: false,
            seat: None,
            seat_at: 0,
            seat_due: false,
            fetches: 0,
            seats_until: 0,
            seats_which: OpenSeats::All,
            seats_shard: 0,
            config,
        };
        participant.announce();
        if is_host {
            // A new space is no crowd: the host follows it whole from the start, without
            // waiting for its own CREATE to come back.
            participant.view = Some(Follow::Space);
            participant.outputs.push_back(Output::Follow(Follow::Space));
            let record = participant.space.room_record();
            // The NIP-53 mirror: Nests, Amethyst and other clients list the space.
            participant.publish(Message::Room(record));
        } else {
            participant.publish(Message::Presence(Presence::default()));
            if participant.config.ask_host_first {
                participant.ask_host_first();
            }
        }
        participant.route();
        participant
    }

    /// Our key.
    pub fn me(&self) -> &PublicKey {
        &self.me
    }

    /// The space as we see it.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Our links.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Who feeds us and whom we feed, as last given to the driver.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// What we know about ourselves.
    pub fn stats(&self) -> &ParticipantStats {
        &self.stats
    }

    /// The reservation we are waiting on: (peer, as a warm backup).
    pub fn pending(&self) -> Option<(PublicKey, bool)> {
        self.pending.map(|p| (p.peer, p.standby))
    }

    /// Whether the driver holds the trickled candidates of our link to `peer` until our
    /// reservation is settled: it was asked before the space was read (the read may give it
    /// up; in a space whose host is full they would only load the relays), or for a weak
    /// leaf's seat (most such asks meet a crowd that saw the same leaf and are refused). The
    /// host candidates in the offer stand; a server-reflexive one follows the CONFIRM.
    pub fn holds_candidates(&self, peer: &PublicKey) -> bool {
        self.pending
            .is_some_and(|p| p.peer == *peer && (p.before_read || p.leaf_seat))
    }

    /// Whether we still want a link with `peer`: one we hold, or the reservation we wait on.
    pub fn wants_link(&self, peer: &PublicKey) -> bool {
        self.links.get(peer).is_some() || self.pending.is_some_and(|p| p.peer == *peer)
    }

    /// Peers we keep away from for now.
    pub fn avoided(&self) -> usize {
        self.avoid.len()
    }

    /// Children we can feed now.
    pub fn capacity(&self) -> u32 {
        self.uplink.capacity()
    }

    /// True once we left (or the space closed): nothing more to do.
    pub fn is_done(&self) -> bool {
        self.left || self.space.is_closed()
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&mut self) -> Millis {
        // It reads only our state: unchanged since the last call, so is the answer (the
        // driver asks after every input, most of them loss figures).
        if let Some(next) = self.next_timeout {
            return next;
        }
        let next = self.next_timeout_now();
        self.next_timeout = Some(next);
        next
    }

    fn next_timeout_now(&self) -> Millis {
        let mut next = self.last_presence + ms(PRESENCE_EVERY);
        let mut at = |t: Millis| next = next.min(t);
        if self.is_done() || self.backlog.is_some() {
            return next;
        }
        if let Some(p) = self.pending {
            at(self.reserve_deadline(&p));
        }
        for (_, link) in self.links.iter() {
            if !link.negotiated {
                at(link.confirmed_at + ms(NEGOTIATE_DEADLINE));
            }
            if link.connected_at.is_none() {
                at(link.confirmed_at + ms(self.config.connect_deadline));
            }
        }
        if let Some(until) = self.avoid.values().min() {
            at(*until);
        }
        if self.announced_price > 0
            && let Some(first) = self.pressure.front()
        {
            // The price falls once the pressure leaves the window.
            at(first + ms(PRESSURE_WINDOW));
        }
        for (_, link) in self.links.iter() {
            if let Some(shed_at) = link.shed_at {
                at(shed_at);
            }
        }
        if let Some(due) = self.seat_due_at() {
            at(due);
        }
        if self.links.one(LinkKind::Retiring).is_some()
            && let Some(connected) = self
                .links
                .one(LinkKind::Parent)
                .and_then(|p| self.links.get(&p))
                .and_then(|l| l.connected_at)
        {
            at(connected.max(self.retired_at) + SILENT_FROM_THE_START);
        }
        if let Some(lost) = self.seats_lost_at() {
            // A search waits for the sample of seats it asked for: its end wakes us, or,
            // if it never comes, this.
            at(lost);
        } else if !self.is_host() && self.pending.is_none() {
            match self.links.one(LinkKind::Parent) {
                None => at(self.next_search),
                Some(parent) => {
                    // A quiet parent's replacement is looked for again (`seek`); a search
                    // time already past wakes nobody (the search runs when what ends a
                    // reservation comes: a refusal, a deadline).
                    if self.quiet(&parent) && self.next_search > self.now {
                        at(self.next_search);
                    }
                    if self.wants_second_link(parent) {
                        at(self.last_standby_try + ms(STANDBY_AFTER));
                    }
                    if self.capacity() >= 2 && parent != *self.config.space.host() {
                        at(self.next_climb);
                    }
                }
            }
        }
        next
    }

    /// Time passes: deadlines, renewals, parent and backup searches.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = self.now.max(now);
        self.next_timeout = None;
        if self.is_done() {
            return;
        }
        let now = self.now;
        self.avoid.retain(|_, until| *until > now);
        self.strikes
            .retain(|_, (_, until)| *until + ms(AVOID_MAX) > now);
        self.prices.retain(|_, (_, until)| *until > now);
        if now >= self.last_presence + ms(PRESENCE_EVERY) {
            self.last_presence = now;
            // The host's CREATE and links say it is here; its clock moves on all the same,
            // or this deadline would stay in the past and wake us without end.
            if !self.is_host() {
                self.publish(Message::Presence(self.presence()));
            }
        }
        if self.backlog.is_some() {
            return;
        }
        self.check_deadlines();
        self.update_price();
        self.seek();
        self.route();
        self.keep_view();
    }

    /// Something happened at `now`.
    pub fn handle_input(&mut self, input: Input, now: Millis) {
        self.now = self.now.max(now);
        if self.left {
            return;
        }
        if !matches!(input, Input::Losses(_)) {
            self.next_timeout = None;
        }
        match input {
            Input::Event(event) => match self.backlog.as_mut() {
                Some(backlog) => backlog.push(event),
                None => self.apply(&event),
            },
            Input::StoredEnd => {
                if let Some(mut backlog) = self.backlog.take() {
                    // Within a second, ours go after what they follow (the host's CREATE) and
                    // before what answers them (the host's CONFIRM, read before the end of
                    // the stored events when relays are slow to say so).
                    let me = self.me;
                    let answers_us = |e: &SpaceEvent| match &e.message {
                        Message::Confirm(r) | Message::Delivering(r) => r.requester == me,
                        Message::Drop { target, .. } => *target == me,
                        _ => false,
                    };
                    backlog.sort_by_key(|e| {
                        let order = if e.author == me {
                            1
                        } else if answers_us(e) {
                            2
                        } else {
                            0
                        };
                        (e.created_at, order, e.id)
                    });
                    for event in &backlog {
                        if event.author == me {
                            self.apply_own(event);
                        } else {
                            self.apply(event);
                        }
                    }
                    if std::mem::take(&mut self.seats_late) {
                        self.seats_read();
                    }
                    self.settle_early_ask();
                    // The tree is known now: ask for a parent at once.
                    self.seek();
                }
            }
            Input::HostRead => self.host_read(),
            Input::SeatsRead => self.seats_read(),
            Input::Link { peer, event } => self.on_link(peer, event),
            Input::Losses(losses) => {
                if !self.take_losses(losses) {
                    // Only figures changed (twice a second per participant): nothing to
                    // route, follow or announce, and no deadline moved.
                    return;
                }
                self.next_timeout = None;
            }
            Input::WorkedReservationSent { confirmer } => {
                let now = self.now;
                if let Some(pending) = self.pending.as_mut().filter(|p| p.peer == confirmer) {
                    pending.sent = Some(now);
                }
            }
            Input::User(command) => self.on_user(command),
        }
        self.route();
        self.keep_view();
    }

    // ---- the space ----

    fn is_host(&self) -> bool {
        self.me == *self.config.space.host()
    }

    fn speaks(&self) -> bool {
        self.is_host() || self.space.role_of(&self.me).speaks()
    }

    fn presence(&self) -> Presence {
        let speaks = self.speaks();
        Presence {
            muted: self.muted,
            publishing: speaks && !self.muted,
            on_stage: speaks,
            ..Presence::default()
        }
    }

    fn announce(&mut self) {
        let message = if self.is_host() {
            Message::Create(SpaceInfo {
                name: self.config.name.clone(),
                host_metrics: self.announced_metrics(),
                cells: self.config.cells.clone(),
                crowd: self.space.is_crowd() || self.grown_into_crowd(),
                // What the wire says: our CREATE always carries `["encryption","nip44"]` (the
                // simulator hands this message over unserialized).
                nip44: true,
                dtls: self.config.dtls.clone(),
            })
        } else {
            self.join_message()
        };
        self.publish(message);
    }

    /// Our JOIN: name, metrics and the price we ask now.
    fn join_message(&self) -> Message {
        Message::Join(MemberInfo {
            name: self.config.name.clone(),
            metrics: self.announced_metrics(),
            price: self.announced_price,
            // What the wire says: our JOINs always carry `["encryption","nip44"]`.
            nip44: true,
            dtls: self.config.dtls.clone(),
            seat: self.seat,
        })
    }

    /// Our metrics as others read them: `maxAudioOutputs` carries the capacity we computed
    /// (draft peers read 0 as "full", not as "size it from my uplink"). Once receiver reports
    /// taught us our real uplink (or the platform gave none), we announce what we measured:
    /// the uplink that makes everyone's capacity rule give our capacity.
    fn announced_metrics(&self) -> NetworkMetrics {
        let mut metrics = self.config.metrics;
        let capacity = self.capacity();
        if self.uplink.measured() {
            metrics.upload_kbps =
                self.config
                    .rules
                    .policy
                    .uplink_for(capacity, metrics.connection, self.is_host());
            metrics.max_audio_outputs = if metrics.max_audio_outputs == 0 {
                capacity
            } else {
                metrics.max_audio_outputs.min(capacity)
            };
        } else if metrics.max_audio_outputs == 0 {
            metrics.max_audio_outputs = capacity;
        }
        metrics
    }

    fn apply(&mut self, event: &SpaceEvent) {
        if self.awaits_requester(event) {
            return;
        }
        let stale = event.created_at.as_secs() + ACT_WITHIN_SECS < self.now / 1_000;
        if let Message::Drop { target, price, .. } = event.message
            && target == self.me
            && price > 0
            && !stale
        {
            // A refusal with a price: the author is busy and admits work only.
            self.prices
                .insert(event.author, (price, self.now + ms(PRICE_FOR)));
        }
        match self.space.apply(event, self.timestamp()) {
            Ok(commands) => {
                self.note_sampled(event);
                self.unpark_superseded(event);
                if matches!(event.message, Message::Join(_)) {
                    self.pay_for_pending(event.author);
                }
                let joined = commands
                    .iter()
                    .any(|c| matches!(c, Command::MemberJoined(_) | Command::SpaceOpened));
                for command in commands {
                    let request = matches!(
                        command,
                        Command::ConnectionRequested { .. } | Command::ConnectionConfirmed { .. }
                    );
                    if !(stale && request) {
                        self.execute(command);
                    }
                }
                if joined && !self.parked.is_empty() {
                    self.retry_parked();
                }
            }
            Err(rejection) => {
                if matches!(rejection.reason(), "not_a_member" | "target_not_member") {
                    self.park(event);
                }
                *self.stats.rejected.entry(rejection.reason()).or_default() += 1;
            }
        }
    }

    /// Keeps `event` until its member is known (relays reorder authors; in a crowd, a
    /// stranger's JOIN is fetched). Returns whether it was kept: at most [`MAX_PARKED`] are.
    fn park(&mut self, event: &SpaceEvent) -> bool {
        if self.parked.len() >= MAX_PARKED {
            return false;
        }
        self.unpark_superseded(event);
        tracing::trace!(kind = event.message.name(), author = %event.author, "parked until its member is known");
        if self.following.binary_search(&event.author).is_err() {
            self.parked_changes += 1;
        }
        self.parked.push((event.clone(), self.now));
        true
    }

    /// Forgets parked reservations that `event` supersedes: a reservation event of the same
    /// author for the same pair of peers came after them (the draft makes them replaceable,
    /// one per pair). A RESERVE parked until its confirmer was known, and replayed after the
    /// requester asked again, would otherwise reopen the link the requester closed.
    fn unpark_superseded(&mut self, event: &SpaceEvent) {
        let Some(pair) = event.message.reservation().map(Reservation::pair) else {
            return;
        };
        let before = self.parked.len();
        self.parked.retain(|(old, _)| {
            old.author != event.author
                || old.message.reservation().map(Reservation::pair) != Some(pair)
        });
        self.note_unparked(before);
    }

    /// Counts a change of parked authors if events went since there were `before`.
    fn note_unparked(&mut self, before: usize) {
        if self.parked.len() < before {
            self.parked_changes += 1;
        }
    }

    /// Re-applies parked events until none more succeeds; forgets those parked for longer than
    /// relays reorder ([`PARK_FOR`]): their member is not coming.
    fn retry_parked(&mut self) {
        let oldest = self.now.saturating_sub(ms(PARK_FOR));
        let before = self.parked.len();
        self.parked.retain(|(_, at)| *at >= oldest);
        self.note_unparked(before);
        loop {
            let parked = std::mem::take(&mut self.parked);
            let before = parked.len();
            let mut progressed = false;
            for (event, at) in parked {
                match self.space.apply(&event, self.timestamp()) {
                    Ok(commands) => {
                        progressed = true;
                        for command in commands {
                            self.execute(command);
                        }
                    }
                    Err(rejection)
                        if matches!(rejection.reason(), "not_a_member" | "target_not_member") =>
                    {
                        self.parked.push((event, at))
                    }
                    Err(_) => {}
                }
            }
            self.note_unparked(before);
            if !progressed || self.parked.len() == before {
                break;
            }
        }
    }

    fn timestamp(&self) -> Timestamp {
        Timestamp::from_secs(self.now / 1_000)
    }

    /// Publishes, and applies to our own state what concerns it (membership, reservations,
    /// roles): relays' copies of our own events are never fed back.
    fn publish(&mut self, message: Message) {
        self.publish_with_work(message, 0);
    }

    /// [`Self::publish`] with `work` bits of proof of work (a priced reservation).
    fn publish_with_work(&mut self, message: Message, work: u8) {
        let publication = self.publication(message, work);
        self.outputs.push_back(Output::Publish(publication));
    }

    /// An event to publish, applied to our own view of the space first; the caller sends it
    /// out (on its own, or carrying a link's SDP).
    fn publication(&mut self, message: Message, work: u8) -> Publication {
        // A link we ask for or admit is followed by its ICE candidates, from the driver.
        let ice = match &message {
            Message::Reserve(_) | Message::Confirm(_) => outbox::ICE_PER_LINK,
            _ => 0.0,
        };
        self.outbox.sent(1.0 + ice, self.now);
        let now = self.now / 1_000;
        let slot = match &message {
            Message::Reserve(r) => Some(("reserve", Some(r.confirmer))),
            Message::Confirm(r) | Message::Delivering(r) => Some(("confirm", Some(r.requester))),
            Message::Drop { target, .. } => Some(("drop", Some(*target))),
            Message::Create(_) | Message::Join(_) | Message::Leave => Some(("membership", None)),
            _ => None,
        };
        let created_at = match slot {
            Some(slot) => {
                let at = self
                    .addressable_at
                    .get(&slot)
                    .map_or(now, |last| now.max(last + 1));
                self.addressable_at.insert(slot, at);
                at
            }
            None => now,
        };
        let created_at = Timestamp::from_secs(created_at);
        let private = matches!(
            message,
            Message::Offer { .. } | Message::Answer { .. } | Message::Ice { .. }
        );
        if !private {
            self.published += 1;
            let mut id = self.me.to_bytes();
            id[..8].copy_from_slice(&self.published.to_be_bytes());
            let own = SpaceEvent {
                id: EventId::from_byte_array(id),
                author: self.me,
                created_at,
                space: self.config.space.clone(),
                message: message.clone(),
                work,
            };
            match self.backlog.as_mut() {
                // Before the space is read our events wait with the stored ones, in time
                // order: a RESERVE to the host asked first must follow the host's CREATE, or
                // the host's CONFIRM would answer a reservation the view never saw.
                Some(backlog) => backlog.push(own),
                None => self.apply_own(&own),
            }
        }
        let plaintext = match &message {
            Message::Reserve(r) => self.plaintext_to(&r.confirmer),
            Message::Confirm(r) | Message::Delivering(r) => self.plaintext_to(&r.requester),
            _ => false,
        };
        Publication {
            message,
            created_at,
            work,
            plaintext,
        }
    }

    /// Applies one of our own events to our view: only what concerns roles follows (our own
    /// reservations need no answer).
    fn apply_own(&mut self, own: &SpaceEvent) {
        match self.space.apply(own, self.timestamp()) {
            Ok(commands) => {
                for command in commands {
                    if matches!(command, Command::RoleChanged { .. }) {
                        self.on_role(command);
                    }
                }
            }
            Err(rejection) => {
                tracing::info!(
                    reason = rejection.reason(),
                    kind = own.message.name(),
                    "not allowed"
                );
            }
        }
    }

    /// Whether `peer` takes an offer in our RESERVE and answers in its CONFIRM: a member that
    /// announced our dialect (`["encryption","nip44"]`), so that the SDP, stored by relays
    /// with the RESERVE, is never in clear.
    fn takes_early_offer(&self, peer: &PublicKey) -> bool {
        self.space.members().get(peer).is_some_and(|m| m.nip44) && !self.plaintext_to(peer)
    }

    /// Whether private payloads to `peer` go in clear: only in draft-compatibility mode, to a
    /// member that did not announce it reads NIP-44.
    pub fn plaintext_to(&self, peer: &PublicKey) -> bool {
        self.config.draft_compat && self.space.members().get(peer).is_some_and(|m| !m.nip44)
    }

    fn execute(&mut self, command: Command) {
        if matches!(
            command,
            Command::MemberJoined(_) | Command::MemberLeft(_) | Command::PeerRemoved(_)
        ) {
            self.speakers_stale = true;
        }
        if for_ui(&command) {
            self.outputs.push_back(Output::Ui(command.clone()));
        }
        match command {
            Command::MuteRequested { by } => {
                tracing::info!(%by, "a moderator asked us to mute");
                self.mute(true);
            }
            Command::ConnectionRequested {
                from,
                standby,
                work,
                offer,
                first,
                ..
            } => self.on_request(from, standby, work, offer, first),
            Command::ConnectionConfirmed { by, answer } => self.on_confirmed(by, answer),
            Command::RemoteOffer { from, sdp } => {
                // Only a peer we agreed to link with gets an answer (and our ICE candidates):
                // a child we confirmed, or either end of a link renegotiating (ICE restart).
                if let Some(link) = self.links.get_mut(&from) {
                    link.negotiated = true;
                    self.outputs.push_back(Output::Link(LinkOp::Answer {
                        peer: from,
                        sdp,
                        within: None,
                    }));
                } else {
                    tracing::debug!(peer = %from, "offer from a peer we did not agree to link with");
                    *self.stats.rejected.entry("unsolicited offer").or_default() += 1;
                }
            }
            Command::RemoteAnswer { from, sdp } => {
                if let Some(link) = self.links.get_mut(&from) {
                    link.negotiated = true;
                    self.outputs
                        .push_back(Output::Link(LinkOp::ApplyAnswer { peer: from, sdp }));
                } else {
                    *self.stats.rejected.entry("unsolicited answer").or_default() += 1;
                }
            }
            Command::RemoteCandidate { from, candidate } if self.links.get(&from).is_some() => {
                self.outputs.push_back(Output::Link(LinkOp::AddCandidate {
                    peer: from,
                    candidate,
                }));
            }
            Command::ConnectionDropped(peer) if self.keep_while_moving(peer) => {}
            Command::ConnectionDropped(peer)
            | Command::MemberLeft(peer)
            | Command::PeerRemoved(peer) => {
                if peer == self.me {
                    self.close_all();
                    self.left = true;
                } else {
                    self.dropped_by(peer);
                }
            }
            Command::SpaceClosed => self.close_all(),
            command @ Command::RoleChanged { .. } => self.on_role(command),
            _ => {}
        }
    }

    /// `peer` ended our link or reservation with it (its DROP, its goodbye on the link, its
    /// leaving).
    fn dropped_by(&mut self, peer: PublicKey) {
        let pending = self.pending.filter(|p| p.peer == peer);
        if pending.is_some() {
            tracing::debug!(%peer, "reservation refused");
        }
        if let Some(pending) = pending
            && let Some(price) = self
                .price_of(&peer)
                .filter(|p| *p > pending.work && *p <= MAX_PAY)
        {
            // Busy, and open to those who do the work: do it and ask again.
            tracing::info!(%peer, price, "reservation priced; paying");
            self.reserve(peer, pending.standby);
            return;
        }
        // Refused (full, or not receiving yet), or handed back by a parent that is full (its
        // uplink shrank, a stronger relay took our seat): asking again at once would only be
        // refused; try someone else for a while.
        if pending.is_some() || self.links.get(&peer).is_some_and(|l| l.kind.upstream()) {
            self.avoid_peer(peer, REFUSED_AVOID);
        }
        if pending.is_some_and(|p| p.leaf_seat) {
            self.free_seats_until = self.now + ms(REFUSED_AVOID);
        }
        self.lose(peer);
        // The next candidate at once: a listener whose parent went quiet has no deadline
        // left to wake it (in the simulator such a refusal left it silent until its old
        // reservation deadline passed, 2 s; 3.1 s of silence at 1,000, seed 18).
        self.seek();
    }

    /// Our parent DROPped us while its link still delivers: it handed our seat on to a
    /// stronger relay and keeps feeding us for a while ([`HAND_ON_GRACE`]). We keep its
    /// audio as a retiring parent's until a new parent (our warm backup, promoted, or one we
    /// ask) has carried audio a while or the grace ends, rather than go silent while we look
    /// or trust a backup that may have died a moment ago. Returns whether it did.
    fn keep_while_moving(&mut self, peer: PublicKey) -> bool {
        let backup = self.links.one(LinkKind::Standby);
        // Even with a warm backup that carries: it may have died a moment ago, too recently
        // for its link to stall, and the old parent's audio costs nothing while it lasts.
        let moving = self.links.one(LinkKind::Parent) == Some(peer)
            && self.links.one(LinkKind::Retiring).is_none()
            && self.links.get(&peer).is_some_and(Link::delivers);
        if !moving {
            return false;
        }
        tracing::info!(%peer, "our seat was handed on: its audio until a new parent delivers");
        self.avoid_peer(peer, REFUSED_AVOID);
        self.retire(peer);
        match backup {
            // The backup becomes our parent once it confirms (its CONFIRM says it is alive;
            // until then both feed us), and the old parent's audio goes a while after.
            Some(backup) => self.promote_backup(backup),
            None => self.seek(),
        }
        true
    }

    /// Our warm backup becomes our parent, asked in clear: its CONFIRM says it is alive, and
    /// tells everyone else. Its link has delivered all along, so the next backup is looked
    /// for as soon as it confirms, not a settling second later, and from a sample fetched now
    /// ([`Self::sample_ahead`]): until that backup connects, a second loss finds us with none
    /// (a new parent lost 0.3 s after it took over cost 1.1 s of silence, 1,000 random, seed
    /// 16, in the simulator).
    fn promote_backup(&mut self, backup: PublicKey) {
        self.stats.standby_takeovers += 1;
        self.last_standby_try = self.now.saturating_sub(ms(STANDBY_AFTER));
        self.reserve(backup, false);
        self.sample_ahead();
    }

    /// Our parent becomes a former parent: its audio covers us until the new one carries.
    fn retire(&mut self, parent: PublicKey) {
        if let Some(link) = self.links.get_mut(&parent) {
            link.kind = LinkKind::Retiring;
            self.retired_at = self.now;
        }
    }

    /// Closes the link to a former parent once the new one has carried audio a while (a
    /// promoted backup) or connects (a parent we asked). One that handed our seat
    /// on has DROPped us already (the pair is gone from the view): closing the link tells it
    /// the rest.
    fn let_retiring_go(&mut self) {
        let Some(old) = self.links.one(LinkKind::Retiring) else {
            return;
        };
        // We asked it: the pair is (requester, confirmer).
        if self.space.links().contains_key(&(self.me, old)) {
            self.drop_link(old);
        } else {
            self.lose(old);
        }
    }

    /// Hands a leaf's seat on (at the host, a relay's too: [`Admission::HandOnRelay`]) once the
    /// stronger relay that took it delivers: the DROP tells the child and everyone's view, and
    /// the child keeps our audio until its new parent delivers.
    fn hand_on(&mut self, leaf: PublicKey) {
        self.publish(Message::Drop {
            target: leaf,
            price: 0,
            first: false,
        });
        let until = self.now + ms(HAND_ON_GRACE);
        if let Some(link) = self.links.get_mut(&leaf) {
            link.kind = LinkKind::HandedOn;
            link.displaced_by = None;
            link.shed_at = Some(until);
        }
    }

    fn on_role(&mut self, command: Command) {
        let Command::RoleChanged { peer, role } = command else {
            return;
        };
        self.speakers_stale = true;
        let host = *self.config.space.host();
        if peer == self.me {
            tracing::info!(?role, "our role changed");
            // A demoted speaker held a seat beside the host's tree; when the host is over
            // capacity it moves down to a relay with room, keeping the host until then.
            let tree = self.tree();
            let over =
                tree.children(&host).len() as u32 > self.config.rules.capacity(&self.space, &host);
            if !role.speaks()
                && over
                && self.links.one(LinkKind::Parent) == Some(host)
                && self.pending.is_none()
                && let Some(parent) = self.choose(&tree, Want::Parent, Some(host))
            {
                self.reserve(parent, false);
            }
        }
        if self.is_host() {
            let record = self.space.room_record();
            self.publish(Message::Room(record));
            // The demoted speaker moves down by itself; if it has not within the grace, we
            // hand it back to the tree.
            let children = self.links.count(LinkKind::Child) as u32;
            let shed_at = self.now + ms(SHED_GRACE);
            if !role.speaks()
                && peer != self.me
                && children > self.capacity()
                && let Some(link) = self.links.get_mut(&peer)
                && link.kind == LinkKind::Child
            {
                link.shed_at = Some(shed_at);
            }
        }
    }

    // ---- the user ----

    fn on_user(&mut self, command: UserCommand) {
        match command {
            UserCommand::Publish(message) => self.publish(message),
            UserCommand::NetworkChanged(metrics) => self.network_changed(metrics),
            UserCommand::Mute(muted) => self.mute(muted),
            UserCommand::Leave => self.leave(),
        }
    }

    fn mute(&mut self, muted: bool) {
        self.muted = muted;
        self.publish(Message::Presence(self.presence()));
    }

    /// Our network changed: re-announce, shed what we can no longer feed (backups first,
    /// then the weakest), restart ICE on every link.
    fn network_changed(&mut self, metrics: NetworkMetrics) {
        self.config.metrics = metrics;
        // A new network is a new uplink: what we learned of the old one no longer holds.
        self.uplink = uplink_of(&self.config.rules, &metrics, self.is_host());
        tracing::info!(capacity = self.capacity(), "network changed");
        self.announce();
        self.shed_to_capacity();
        for peer in self.links.peers() {
            self.stats.ice_restarts += 1;
            self.outputs.push_back(Output::Link(LinkOp::Restart(peer)));
        }
    }

    /// Hands back the links beyond our capacity, backups first, then the weakest listeners
    /// (DROP: their warm backups cover the move).
    fn shed_to_capacity(&mut self) {
        let children: Vec<PublicKey> = self.links.of_kind(LinkKind::Child).collect();
        let standbys: Vec<PublicKey> = self.links.of_kind(LinkKind::StandbyChild).collect();
        let excess = (children.len() + standbys.len()).saturating_sub(self.capacity() as usize);
        let order =
            self.config
                .rules
                .shed_order(&self.space, &self.me, &children, &standbys, |c| {
                    self.links.get(c).is_some_and(Link::delivers)
                });
        for peer in order.into_iter().take(excess) {
            tracing::info!(%peer, capacity = self.capacity(), "handed back to the tree");
            self.drop_link(peer);
        }
    }

    /// Every link's loss, read at once, then one judgement of our uplink. Returns whether
    /// that judgement changed anything (a cut or a probe).
    fn take_losses(&mut self, mut losses: Vec<(PublicKey, u16)>) -> bool {
        self.links.record_losses(&mut losses) && self.assess_uplink()
    }

    /// Judges our uplink from the children's latest loss reports: starving children make us
    /// feed fewer (and say so), clean links for a while let us try one more. Returns whether
    /// it cut or probed.
    fn assess_uplink(&mut self) -> bool {
        let fed: Vec<&Link> = self
            .links
            .iter()
            .map(|(_, l)| l)
            .filter(|l| l.kind.downstream() && l.connected_at.is_some())
            .collect();
        let streams = fed.len() as u32;
        let downstream: Vec<f64> = fed.iter().filter_map(|l| l.loss).collect();
        let latest: Vec<f64> = fed.iter().filter_map(|l| l.latest_loss).collect();
        let inbound = self
            .links
            .one(LinkKind::Parent)
            .and_then(|p| self.links.get(&p))
            .and_then(|l| l.loss)
            .unwrap_or(0.0);
        match self
            .uplink
            .assess(self.now, streams, &downstream, &latest, inbound)
        {
            Some(UplinkChange::Cut(capacity)) => {
                tracing::info!(
                    capacity,
                    streams,
                    inbound,
                    "uplink saturated: children lose what we send, feeding fewer"
                );
                self.stats.capacity_cuts += 1;
                self.shed_to_capacity();
                self.announce();
                true
            }
            Some(UplinkChange::Probe(capacity)) => {
                tracing::info!(capacity, "links stayed clean: trying one more output");
                self.announce();
                true
            }
            None => false,
        }
    }

    fn leave(&mut self) {
        self.close_seat();
        for peer in self.links.peers() {
            self.publish(Message::Drop {
                target: peer,
                price: 0,
                first: false,
            });
        }
        if self.is_host() {
            self.publish(Message::Close);
            let record = self.space.room_record();
            self.publish(Message::Room(record));
        } else {
            // The draft's LEAVE first: a NIP-53 leaving presence in the same second must not
            // make it look stale.
            self.publish(Message::Leave);
            self.publish(Message::Presence(Presence {
                leaving: true,
                ..Presence::default()
            }));
        }
        self.close_all();
        self.left = true;
    }

    // ---- links ----

    fn on_link(&mut self, peer: PublicKey, event: LinkInput) {
        let Some(link) = self.links.get_mut(&peer) else {
            // The link of a reservation not yet confirmed: it can only have connected on an
            // answer written in advance. Counted once the CONFIRM makes it a link.
            if event == LinkInput::Connected
                && let Some(pending) = self
                    .pending
                    .as_mut()
                    .filter(|p| p.peer == peer && p.offered)
            {
                pending.connected = true;
            }
            return;
        };
        let kind = link.kind;
        let now = self.now;
        match event {
            LinkInput::Connected => {
                // Connected again after an ICE restart: the seat was attested the first time.
                let first = link.connected_at.is_none();
                link.connected_at.get_or_insert(now);
                link.stalled_since = None;
                if kind == LinkKind::Parent {
                    self.last_standby_try = now;
                    // The new parent delivers: the old one can go.
                    self.let_retiring_go();
                }
                if kind == LinkKind::Child {
                    if first {
                        self.attest(peer);
                    }
                    // A newcomer that took a weaker leaf's seat delivers: the leaf moves on.
                    let displaced: Vec<PublicKey> = self
                        .links
                        .iter()
                        .filter(|(_, l)| l.displaced_by == Some(peer))
                        .map(|(k, _)| *k)
                        .collect();
                    for leaf in displaced {
                        tracing::info!(%leaf, by = %peer, "seat handed to a stronger relay");
                        self.hand_on(leaf);
                    }
                }
            }
            LinkInput::Resumed => {
                link.stalled_since = None;
                // A backup that took over silent carries audio now.
                if kind == LinkKind::Parent {
                    self.let_retiring_go();
                }
            }
            LinkInput::Goodbye => {
                tracing::info!(%peer, ?kind, "the peer closed our link");
                self.dropped_by(peer);
            }
            LinkInput::Loss { permille } => {
                self.take_losses(vec![(peer, permille)]);
            }
            LinkInput::Stalled => {
                link.stalled_since.get_or_insert(now);
                let unanswered = ms(self.config.reserve_timeout) / 5;
                match kind {
                    // Silence alone never costs a parent (a silent speaker's keep-alives keep
                    // links alive; a foreign client may send none): switch only when the
                    // backup delivers, otherwise wait for ICE to say the path is gone.
                    LinkKind::Parent
                        if self
                            .links
                            .one(LinkKind::Standby)
                            .and_then(|b| self.links.get(&b))
                            .is_some_and(Link::delivers) =>
                    {
                        tracing::info!(%peer, "parent stalled, backup delivers");
                        self.upstream_lost(peer);
                    }
                    // A backup asked a moment ago most likely answers soon: it takes over once
                    // it confirms (`on_confirmed`), asked again over the link it answered.
                    // Asked again at once instead, as our parent with a new offer, the two
                    // RESERVEs raced on the relays, which may hand them over out of order: the
                    // backup answered the older offer last and neither link ever set up (6.2 s
                    // of silence at 1,000 random, seed 13, in the simulator).
                    LinkKind::Parent
                        if self.pending.is_some_and(|p| {
                            p.standby && p.peer != peer && now < p.since + unanswered
                        }) =>
                    {
                        tracing::info!(%peer, "parent stalled while we ask a backup: it takes over");
                    }
                    // A reservation under way must not hold up the search for another parent:
                    // a warm backup we promoted a moment ago that stalls before confirming was
                    // most likely gone already (a crash shows as silence first), and a backup
                    // we have been asking a while cannot cover a parent that is silent now.
                    // Ask for a parent instead, keeping the quiet one until the new one
                    // delivers.
                    LinkKind::Parent
                        if self.pending.is_some_and(|p| p.standby || p.peer == peer) =>
                    {
                        tracing::info!(%peer, "parent stalled while we asked: asking instead");
                        if let Some(asked) = self.pending.filter(|p| p.standby && p.peer != peer) {
                            // The backup has not answered: a crashed member's seat stays
                            // announced for a while, and asking it again as our parent would
                            // wait out the whole reservation timeout (2.9 s of silence at 1,000
                            // in the simulator, seed 11).
                            self.avoid_peer(asked.peer, REFUSED_AVOID);
                        }
                        self.abandon_pending();
                        self.seek();
                    }
                    LinkKind::Parent => self.seek(),
                    LinkKind::Standby => self.upstream_lost(peer),
                    _ => {}
                }
            }
            // A leaf we handed on was DROPped already: its link only has to go.
            LinkInput::Disconnected | LinkInput::Failed if kind == LinkKind::HandedOn => {
                self.lose(peer);
            }
            LinkInput::Disconnected => {
                if kind.upstream() {
                    self.upstream_lost(peer);
                } else {
                    // A child whose consent checks fail is gone or moving: DROP now, so that
                    // newcomers stop counting it as a member with a seat (it re-reserves if it
                    // was only changing networks).
                    self.drop_link(peer);
                }
            }
            LinkInput::Failed => {
                if kind.upstream() {
                    self.upstream_lost(peer);
                } else {
                    // DROP for everyone's view: a child that died must not look like a taken
                    // seat (nor a member with a parent) to newcomers.
                    self.drop_link(peer);
                }
            }
        }
    }

    /// An upstream link stopped working: say so, keep away from it for a while.
    fn upstream_lost(&mut self, peer: PublicKey) {
        tracing::info!(%peer, "upstream link lost");
        self.stats.upstream_lost += 1;
        self.avoid_peer(peer, AVOID_FOR);
        self.drop_link(peer);
    }

    /// Keeps away from `peer` for `period` (or longer, if it is kept away longer already).
    fn avoid_peer(&mut self, peer: PublicKey, period: Duration) {
        let until = self.now + ms(period);
        let entry = self.avoid.entry(peer).or_default();
        *entry = (*entry).max(until);
    }

    /// Keeps away from a peer that agreed to a link and never set it up, twice as long as the
    /// last time it did (a timeout alone may be a busy relay; this is not).
    fn strike(&mut self, peer: PublicKey) {
        let (strikes, avoided_until) = self.strikes.entry(peer).or_default();
        *strikes += 1;
        let factor = 1u64 << (*strikes - 1).min(16);
        let until = self.now + (ms(AVOID_FOR) * factor).min(ms(AVOID_MAX));
        *avoided_until = until;
        self.avoid.insert(peer, until);
    }

    /// Deadlines: reservations without CONFIRM, confirmed links that never connect.
    fn check_deadlines(&mut self) {
        let now = self.now;
        if let Some(pending) = self.pending
            && now >= self.reserve_deadline(&pending)
        {
            tracing::info!(candidate = %pending.peer, "reservation timed out");
            self.abandon_pending();
            // A host that stays silent is alive but answering no faster than the relays let
            // it (`Outbox`: under a flood of requests its refusals stop first), and below a
            // crowd it is often the one seat there is: it is asked again as soon as after a
            // refusal. Under a Sybil flood, a newcomer that kept away from it for the whole
            // avoidance heard nothing for 12 s (tests/node/attacks.mjs). A crowd's host is
            // silent from the load of thousands, whom other relays can seat: it is left be.
            let period = if pending.peer == *self.config.space.host() && !self.space.is_crowd() {
                REFUSED_AVOID
            } else {
                AVOID_FOR
            };
            self.avoid_peer(pending.peer, period);
            self.publish(Message::Drop {
                target: pending.peer,
                price: 0,
                first: false,
            });
        }
        let deadline = ms(self.config.connect_deadline);
        let negotiate = ms(NEGOTIATE_DEADLINE);
        let late: Vec<(PublicKey, LinkKind)> = self
            .links
            .iter()
            .filter(|(_, l)| {
                let unset = !l.negotiated && now >= l.confirmed_at + negotiate;
                unset || (l.connected_at.is_none() && now >= l.confirmed_at + deadline)
            })
            .map(|(k, l)| (*k, l.kind))
            .collect();
        for _ in late.iter().filter(|(_, kind)| !kind.upstream()) {
            self.under_pressure();
        }
        // The price goes out before the seats free up: whoever sees a seat free knows its
        // price, and pays before asking instead of after a refusal.
        self.update_price();
        for (peer, kind) in late {
            tracing::info!(%peer, ?kind, "confirmed link never set up");
            // A peer that agrees to a link and never sets it up holds a seat it does not use,
            // or keeps us waiting (the ways Sybils starve a space): the seat goes back, and
            // the peer is kept away, longer each time.
            if kind.upstream() {
                self.upstream_lost(peer);
            } else {
                self.drop_link(peer);
            }
            self.strike(peer);
        }
        // Connected is not delivering: a parent of our dialect sends audio or keep-alives from
        // the moment its link is up, so one that sent nothing for the connect deadline after
        // it (keys that do not match, a link its end forgot) is let go, as one that never
        // connected is. The host is asked again at once; anyone else is kept away.
        let host = *self.config.space.host();
        let mute: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(k, l)| {
                l.kind.upstream()
                    && self.space.members().get(*k).is_some_and(|m| m.nip44)
                    && l.connected_at.is_some_and(|c| {
                        now >= c + deadline
                            && l.stalled_since
                                .is_some_and(|s| s <= c + SILENT_FROM_THE_START)
                    })
            })
            .map(|(k, _)| *k)
            .collect();
        for peer in mute {
            tracing::info!(%peer, "connected upstream link never carried audio");
            if peer == host {
                self.stats.upstream_lost += 1;
                self.drop_link(peer);
            } else {
                self.upstream_lost(peer);
                self.strike(peer);
            }
        }
        if self.links.one(LinkKind::Retiring).is_some()
            && now >= self.retired_at + SILENT_FROM_THE_START
            && self
                .links
                .one(LinkKind::Parent)
                .and_then(|p| self.links.get(&p))
                .is_some_and(|l| carries(l, now))
        {
            self.let_retiring_go();
        }
        let due = |l: &Link| l.shed_at.is_some_and(|at| now >= at);
        let handed_on: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(_, l)| l.kind == LinkKind::HandedOn && due(l))
            .map(|(k, _)| *k)
            .collect();
        for peer in handed_on {
            // Our DROP went out when we handed the seat on: only the link is left to close.
            tracing::info!(%peer, "handed-on leaf found no parent in time");
            self.lose(peer);
        }
        let shed: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(_, l)| l.kind == LinkKind::Child && due(l))
            .map(|(k, _)| *k)
            .collect();
        let over = (self.links.count(LinkKind::Child) as u32).saturating_sub(self.capacity());
        for peer in shed.into_iter().take(over as usize) {
            // A demoted speaker that found no seat below by itself: it hears us while it
            // looks, as a leaf handed on does (beyond capacity by count; our uplink was
            // carrying it a moment ago).
            tracing::info!(%peer, "handed back to the tree");
            self.hand_on(peer);
        }
    }

    /// A parent when we have none, a link to the host when we speak, a warm backup once
    /// settled.
    fn seek(&mut self) {
        if self.is_host() || self.is_done() || self.backlog.is_some() || self.pending.is_some() {
            return;
        }
        let now = self.now;
        let host = *self.config.space.host();
        let Some(parent) = self.links.one(LinkKind::Parent) else {
            if now < self.next_search || !self.sample_ready() {
                return;
            }
            let tree = self.tree();
            let want = if now < self.free_seats_until {
                Want::FreeSeat
            } else {
                Want::Parent
            };
            match self.choose(&tree, want, None) {
                Some(parent) => {
                    let leaf_seat = self.leaf_seat(&tree, &parent);
                    self.reserve_parent(parent, leaf_seat);
                }
                None => self.next_search = now + ms(SEARCH_AGAIN),
            }
            return;
        };
        if self.quiet(&parent) && parent != host {
            // Our parent went quiet and no backup delivers: find a parent outside its subtree
            // and keep the quiet one until the new one delivers (it may only be frozen).
            if self.links.one(LinkKind::Retiring).is_some() || now < self.next_search {
                return;
            }
            // Not only seats as near the host as the quiet parent (those deeper in its branch
            // may hang below it): in the simulator such fetches came back empty for seconds
            // (the shallow tree is full), while a plain sample held a parent at once.
            if !self.sample_ready() {
                return;
            }
            let tree = self.tree();
            let want = Want::Instead {
                parent,
                free_only: now < self.free_seats_until,
            };
            match self.choose(&tree, want, None) {
                Some(instead) => {
                    let leaf_seat = self.leaf_seat(&tree, &instead);
                    self.reserve_parent(instead, leaf_seat);
                }
                // Nobody outside its subtree in this sample: look again soon, in another (a
                // window of its own). Nothing else may wake us for long (a failed backup
                // search waits half a minute in a crowd), and ICE gives the quiet parent up
                // only seconds later.
                None => {
                    self.next_search = now + ms(SEARCH_AGAIN);
                    self.sample_at = None;
                }
            }
            return;
        }
        let settled = self
            .links
            .get(&parent)
            .and_then(|l| l.connected_at)
            .is_some()
            && now >= self.last_standby_try + ms(STANDBY_AFTER);
        if self.space.role_of(&self.me).speaks() && parent != host {
            // Speakers mesh with the host: their voice goes up one hop, everyone's comes down
            // from the host directly.
            if settled && self.links.one(LinkKind::Retiring).is_none() {
                self.last_standby_try = now;
                self.reserve(host, false);
            }
            return;
        }
        if parent == host {
            // Nothing above the host to fall back on: a backup would only cost an output.
            if let Some(backup) = self.links.one(LinkKind::Standby) {
                self.drop_link(backup);
            }
            return;
        }
        if self.climb(parent) {
            return;
        }
        if !self.config.warm_backup
            || self.links.one(LinkKind::Standby).is_some()
            || !settled
            || !self.sample_ready()
        {
            return;
        }
        self.last_standby_try = now;
        let tree = self.tree();
        match self.choose(&tree, Want::Standby { parent }, None) {
            Some(backup) => self.reserve(backup, true),
            // Nobody has a free output: rooms open slowly, look again later (each look
            // walks the whole space; in a crowd, each fetches a sample of seats).
            None => {
                let wait = if self.space.is_crowd() {
                    STANDBY_RETRY * CROWD_SLOWER
                } else {
                    STANDBY_RETRY
                };
                self.last_standby_try = now + ms(wait);
            }
        }
    }

    /// Whether our link with `peer` has gone quiet (stalled, not yet resumed or lost).
    fn quiet(&self, peer: &PublicKey) -> bool {
        self.links
            .get(peer)
            .is_some_and(|l| l.stalled_since.is_some())
    }

    /// Pull-up: a relay that could sit two hops nearer the host, or one from depth 4 on when it
    /// feeds children ([`climb_reach`]; a shallow seat opened: a relay left, the host's
    /// capacity rose) moves there with its whole subtree, keeping its
    /// parent until the new one delivers. Looked at every [`CLIMB_EVERY`]; only relays climb,
    /// since seats near the host are worth most to those who widen the tree, and each to the
    /// place the rules' matching of deep relays to open places gives it
    /// ([`TreeRules::climb_target`]), so that they do not all ask for the same one. A relay at
    /// depth 2 that clearly outranks its parent at depth 1 asks the host for that parent's
    /// seat instead ([`TreeRules::outranks_branch_head`]); deeper, a relay with no place in
    /// reach that clearly outranks the head of its branch asks the host for its seat.
    fn climb(&mut self, parent: PublicKey) -> bool {
        let now = self.now;
        if now < self.next_climb
            || self.capacity() < 2
            || self.links.one(LinkKind::Retiring).is_some()
            || self
                .links
                .get(&parent)
                .is_none_or(|l| l.connected_at.is_none())
        {
            return false;
        }
        let tree = self.tree();
        let host = *self.config.space.host();
        let rules = &self.config.rules;
        if tree.depth(&self.me) == Some(2)
            && rules.outranks_branch_head(&self.space, &tree, &self.me)
        {
            // Our parent took one of the host's outputs before we came (weak-first): the host
            // may hand its seat on to us, and our subtree moves a hop nearer the host. The host
            // is always in our view (no fetch of seats, so no crowd's slower pace), and it
            // hands such seats on only now and then: look again at the plain pace.
            self.next_climb = now + ms(CLIMB_EVERY);
            if self.passes_over(&host) {
                return false;
            }
            tracing::debug!(%parent, "asking the host for our weaker parent's seat");
            self.stats.climbs += 1;
            self.reserve(host, false);
            return true;
        }
        let deep = tree.depth(&self.me).filter(|depth| *depth >= 3);
        let Some(depth) = deep else {
            self.next_climb = now + ms(self.climb_every());
            return false;
        };
        // In a crowd the places are in a fresh sample of seats (of places within our reach,
        // as the rules want them): the climb waits for it.
        let feeds = self.links.count(LinkKind::Child) > 0;
        if !self.sample_ready_to(Some(climb_reach(depth, feeds))) {
            return true;
        }
        self.next_climb = now + ms(self.climb_every());
        let tree = self.tree();
        let Some(seat) =
            self.config
                .rules
                .climb_target(&self.space, &tree, &self.me, self.timestamp(), |k| {
                    self.passes_over(k)
                })
        else {
            // No place nearer the host within reach: the seat of our branch's head, should it
            // be much weaker than we are and the host hand it on. A weak relay at depth 1
            // whose own children are weak too had nobody right below it to ask for its seat
            // (10,000 weak-first, seed 1, in the simulator: five of the host's eight outputs
            // held by relays of 4 outputs at the end).
            if self
                .config
                .rules
                .outranks_branch_head(&self.space, &tree, &self.me)
                && !self.passes_over(&host)
            {
                tracing::debug!("asking the host for our branch head's seat");
                self.stats.climbs += 1;
                self.reserve(host, false);
                return true;
            }
            return false;
        };
        tracing::debug!(%seat, depth, "climbing nearer the host");
        self.stats.climbs += 1;
        self.reserve(seat, false);
        true
    }

    /// Our warm backup became our parent. Backups are chosen by score, not depth (ranking
    /// them shallowest first sent a crashed relay's orphans to the same few seats), so it
    /// may sit deeper than the parent it replaces and take our subtree down with us: a relay
    /// looks for a place nearer the host [`CLIMB_AFTER_TAKEOVER`] later rather than at its
    /// next round. (In the simulator at 10,000, most listeners beyond the depth goal at the
    /// end sat below relays whose backup had just taken over.)
    fn climb_soon(&mut self) {
        self.next_climb = self.next_climb.min(self.now + ms(CLIMB_AFTER_TAKEOVER));
    }

    /// How often a relay looks for a place nearer the host: [`CLIMB_EVERY`], and
    /// [`CROWD_SLOWER`] times that in a crowd, where each look fetches shallow seats.
    fn climb_every(&self) -> Duration {
        if self.space.is_crowd() {
            CLIMB_EVERY * CROWD_SLOWER
        } else {
            CLIMB_EVERY
        }
    }

    /// The tree rules' choice for us, passing over avoided peers, `also_avoid`, and peers we
    /// feed. A peer we feed as its warm backup is outside our subtree, so the tree allows it;
    /// but we have one link per peer, and reserving it would close the feed it may be taking
    /// over with at that very moment (its parent frozen, as ours).
    fn choose(
        &self,
        tree: &TreeView<'_>,
        want: Want,
        also_avoid: Option<PublicKey>,
    ) -> Option<PublicKey> {
        self.config
            .rules
            .choose_parent(&self.space, tree, &self.me, want, self.timestamp(), |k| {
                Some(*k) == also_avoid || self.passes_over(k)
            })
    }

    /// Whether we pass `peer` over as a parent or backup: we avoid it for now, we feed it, or
    /// we are leaving it.
    fn passes_over(&self, peer: &PublicKey) -> bool {
        // Nor a parent we are leaving: asking it again would be refused (we are linked), and
        // that refusal would end the link whose audio covers our move.
        self.avoid.contains_key(peer)
            || self.unsampled(peer)
            || self
                .links
                .get(peer)
                .is_some_and(|l| l.kind.downstream() || l.kind == LinkKind::Retiring)
    }

    /// Whether, with this parent, we will look for another upstream link once settled: a
    /// speaker's link to the host, or a warm backup below depth 1.
    fn wants_second_link(&self, parent: PublicKey) -> bool {
        let host = *self.config.space.host();
        let connected = self
            .links
            .get(&parent)
            .is_some_and(|l| l.connected_at.is_some());
        let speaker = self.space.role_of(&self.me).speaks();
        connected
            && parent != host
            && (speaker || (self.config.warm_backup && self.links.one(LinkKind::Standby).is_none()))
    }

    /// The tree as we see it now.
    fn tree(&self) -> TreeView<'_> {
        TreeView::at(&self.space, self.timestamp())
    }

    /// The proof of work a RESERVE to `peer` carries: the price it announced or told us in a
    /// refusal, up to what we pay at most.
    fn work_for(&self, peer: &PublicKey) -> u8 {
        let announced = self.announced_price(peer);
        self.price_of(peer).unwrap_or(0).max(announced).min(MAX_PAY)
    }

    /// The price `peer` announced in its JOIN (`["pow", bits]`), 0 if none.
    fn announced_price(&self, peer: &PublicKey) -> u8 {
        self.space.members().get(peer).map_or(0, |m| m.price)
    }

    /// `peer` announced a price (its JOIN) above the work our standing ask of it carries: it
    /// considers paid asks only now, and refuses ours, silently once its refusals would eat
    /// into what the relays let it publish (a host under a Sybil flood). The work is done and
    /// the ask made again at once, rather than after a silence as long as our wait.
    fn pay_for_pending(&mut self, peer: PublicKey) {
        let Some(pending) = self.pending.filter(|p| p.peer == peer && !p.before_read) else {
            return;
        };
        let price = self.announced_price(&peer);
        // A price beyond what a seat is worth is left to the refusal it comes with.
        if price > pending.work && price <= MAX_PAY {
            tracing::info!(%peer, price, "the peer we ask raised its price; paying");
            self.reserve(peer, pending.standby);
        }
    }

    /// Whether what `parent` has for us is a leaf's seat: no free output.
    fn leaf_seat(&self, tree: &TreeView<'_>, parent: &PublicKey) -> bool {
        self.config.rules.free_outputs(&self.space, tree, parent) == 0
    }

    /// Asks `parent` for a seat in the tree, noting whether it is a leaf's: a refusal of one
    /// turns us to free outputs for a while ([`Want::FreeSeat`]), since a crowd that saw the
    /// same weak leaves asks for them too. (An orphan whose parent went quiet once asked one
    /// leaf's seat after another, refused four times a second for 20 s: 10,000 weak-first,
    /// seed 1, in the simulator.)
    fn reserve_parent(&mut self, parent: PublicKey, leaf_seat: bool) {
        self.reserve(parent, false);
        if let Some(pending) = self.pending.as_mut() {
            pending.leaf_seat = leaf_seat;
        }
    }

    fn reserve(&mut self, peer: PublicKey, standby: bool) {
        let work = self.work_for(&peer);
        // With no link to the peer yet, the offer rides in the RESERVE to a peer of our
        // dialect: its answer comes back in the CONFIRM, a relay round trip sooner than the
        // draft's RESERVE, CONFIRM, OFFER, ANSWER. A link we already have (a warm backup
        // becoming the parent) needs no offer.
        let offered = self.links.get(&peer).is_none() && self.takes_early_offer(&peer);
        self.ask(peer, standby, work, offered, false);
    }

    /// Asks the host for a seat before the space is read, taking it to speak our dialect
    /// (the offer rides sealed in the RESERVE, as our hosts take it): in a space with room near
    /// the host, the CONFIRM comes a relay round trip sooner. [`Self::settle_early_ask`] keeps
    /// or gives it up once the space is read.
    fn ask_host_first(&mut self) {
        let host = *self.config.space.host();
        self.ask(host, false, 0, true, true);
    }

    /// Once the space is read: the reservation asked of the host before it stands if the tree
    /// rules choose the host now, the host reads our dialect and asks no work of us; otherwise
    /// it goes, with its link, and a CONFIRM the host may still send is answered with a DROP.
    fn settle_early_ask(&mut self) {
        let Some(pending) = self.pending.filter(|p| p.before_read) else {
            return;
        };
        let host = pending.peer;
        let tree = self.tree();
        let chosen = self.choose(&tree, Want::Parent, None);
        // Only for a free output: a host full for a while leaves an ask made before the read
        // unanswered (the read shows it full), so an ask standing for a leaf's seat would wait
        // out its deadline. Asked again, it is answered (the seat, or a DROP).
        let free = self.config.rules.free_outputs(&self.space, &tree, &host) > 0;
        let stands = self.takes_early_offer(&host)
            && self.work_for(&host) <= pending.work
            && chosen == Some(host)
            && free;
        if let Some(pending) = self.pending.as_mut().filter(|_| stands) {
            pending.before_read = false;
            return;
        }
        tracing::debug!(%host, "the space read chose otherwise than the host asked first");
        self.abandon_pending();
        if chosen != Some(host) {
            self.passed_over = Some(host);
        }
    }

    fn ask(&mut self, peer: PublicKey, standby: bool, work: u8, offered: bool, before_read: bool) {
        tracing::debug!(%peer, standby, work, before_read, "reserve");
        // One reservation at a time: one still waiting (a backup we were asking for when the
        // parent died) gives way, with the link its offer opened.
        self.abandon_pending();
        self.stats.reservations += 1;
        self.stats.paid_reservations += u64::from(work > 0);
        self.pending = Some(Pending {
            peer,
            since: self.now,
            standby,
            work,
            sent: None,
            offered,
            before_read,
            connected: false,
            leaf_seat: false,
        });
        let reserve = self.publication(
            Message::Reserve(Reservation {
                requester: self.me,
                confirmer: peer,
                role: Some(LinkRole::Consumer),
                standby,
                sdp: None,
                before_read,
            }),
            work,
        );
        self.outputs.push_back(if offered {
            Output::Link(LinkOp::Open {
                peer,
                within: Some(reserve),
            })
        } else {
            Output::Publish(reserve)
        });
    }

    /// Gives up the reservation we are waiting on, and the link our offer opened with it.
    fn abandon_pending(&mut self) {
        if let Some(pending) = self.pending.take()
            && pending.offered
        {
            self.outputs
                .push_back(Output::Link(LinkOp::Close(pending.peer)));
        }
    }

    /// When we give up waiting for a CONFIRM: the reserve timeout after the RESERVE left. One
    /// that carries work leaves once the work is done, which the driver reports; if it never
    /// does, after [`WORK_MAX`].
    fn reserve_deadline(&self, pending: &Pending) -> Millis {
        let sent = if pending.work == 0 {
            pending.since
        } else {
            pending.sent.unwrap_or(pending.since + ms(WORK_MAX))
        };
        sent + ms(self.config.reserve_timeout)
    }

    /// The proof of work `peer` asks of us now, if any.
    fn price_of(&self, peer: &PublicKey) -> Option<u8> {
        self.prices
            .get(peer)
            .filter(|(_, until)| *until > self.now)
            .map(|(bits, _)| *bits)
    }

    /// Counts a moment of pressure (a requester's link never set up).
    fn under_pressure(&mut self) {
        self.pressure.push_back(self.now);
    }

    /// The proof of work we ask of new requesters now: [`PRICE_BITS`] while the pressure of
    /// the last [`PRESSURE_WINDOW`] is at [`PRESSURE_AT`] or more, nothing otherwise.
    fn price(&mut self) -> u8 {
        let since = self.now.saturating_sub(ms(PRESSURE_WINDOW));
        while self.pressure.front().is_some_and(|at| *at < since) {
            self.pressure.pop_front();
        }
        if self.pressure.len() >= PRESSURE_AT {
            PRICE_BITS
        } else {
            0
        }
    }

    /// Announces our price when it changed (a JOIN with `["pow", bits]`, the host's too), so
    /// that requesters do the work before they ask instead of after a refusal.
    fn update_price(&mut self) {
        let price = self.price();
        if price == self.announced_price || self.is_done() {
            return;
        }
        tracing::info!(
            price,
            pressure = self.pressure.len(),
            "reservation price changed"
        );
        self.announced_price = price;
        // The host announces its price in a JOIN too (its CREATE says nothing of it).
        self.publish(self.join_message());
    }

    /// Turns `requester` away, with our price if we have one, and saying so when it asked
    /// `first` (before reading the space); silently when a DROP would eat into what the
    /// relays let us publish for our own requests ([`Outbox::may_refuse`]).
    fn refuse(&mut self, requester: PublicKey, price: u8, first: bool) {
        if !self.outbox.may_refuse(self.now) {
            *self.stats.rejected.entry("refused silently").or_default() += 1;
            return;
        }
        self.publish(Message::Drop {
            target: requester,
            price,
            first,
        });
    }

    fn on_confirmed(&mut self, by: PublicKey, answer: Option<String>) {
        let Some(pending) = self.pending.filter(|p| p.peer == by) else {
            if self.passed_over == Some(by) && self.links.get(&by).is_none() {
                // The host we asked first and then passed over admitted us: free the seat
                // rather than leave it to its set-up deadline (which would count against us).
                self.passed_over = None;
                self.publish(Message::Drop {
                    target: by,
                    price: 0,
                    first: false,
                });
            }
            return;
        };
        tracing::debug!(peer = %by, standby = pending.standby, "reservation confirmed");
        self.pending = None;
        let now = self.now;
        if let Some(link) = self.links.get_mut(&by) {
            // Our warm backup confirmed as parent: it already delivers, nothing to set up, and
            // a parent it replaces (a climb) can go at once.
            if !pending.standby && link.kind == LinkKind::Standby {
                link.kind = LinkKind::Parent;
                self.climb_soon();
                let replaced: Vec<PublicKey> = self
                    .links
                    .of_kind(LinkKind::Parent)
                    .filter(|p| *p != by)
                    .collect();
                for old in replaced {
                    self.drop_link(old);
                }
            }
            return;
        }
        let kind = if pending.standby {
            LinkKind::Standby
        } else {
            // A parent we replace while it still delivers (a speaker moving under the host)
            // stays until the new one is connected.
            if let Some(old) = self.links.one(LinkKind::Parent) {
                self.retire(old);
            }
            LinkKind::Parent
        };
        let mut link = Link::new(kind, now);
        let op = match (pending.offered, answer) {
            (false, _) => LinkOp::Open {
                peer: by,
                within: None,
            },
            (true, Some(sdp)) => {
                link.negotiated = true;
                LinkOp::ApplyAnswer { peer: by, sdp }
            }
            // A confirmer of the draft's flow read past the offer: it waits for an OFFER.
            (true, None) => LinkOp::SendOffer(by),
        };
        self.links.insert(by, link);
        self.outputs.push_back(Output::Link(op));
        if pending.connected {
            self.on_link(by, LinkInput::Connected);
        }
        // A backup that confirms while our parent is quiet takes its place at once, asked
        // over the link it just answered (see `LinkInput::Stalled`).
        if pending.standby
            && self
                .links
                .one(LinkKind::Parent)
                .is_some_and(|p| self.quiet(&p))
        {
            tracing::info!(%by, "the backup confirmed while our parent is quiet: it takes over");
            self.promote_backup(by);
        }
    }

    /// A peer asks us for a link (as its parent or its warm backup).
    fn on_request(
        &mut self,
        from: PublicKey,
        standby: bool,
        work: u8,
        offer: Option<String>,
        first: bool,
    ) {
        let now = self.now;
        if self.pending.is_some_and(|p| p.peer == from && p.offered) {
            // We are asking it for a link ourselves, on a link our offer opened: one link
            // per pair of peers.
            self.refuse(from, 0, first);
            return;
        }
        if offer.is_some()
            && self.links.get(&from).is_some_and(|l| l.kind.downstream())
            && let Some(link) = self.links.remove(&from)
        {
            // A fresh offer from a child: it starts a new link, so the one we held with it is
            // gone at its end (it restarted, or its DROP is still on the way). A link that
            // feeds us is never replaced this way: such a request is refused below.
            tracing::debug!(peer = %from, kind = ?link.kind, "link replaced by a new offer");
            self.outputs.push_back(Output::Link(LinkOp::Close(from)));
        }
        if let Some(link) = self.links.get_mut(&from)
            && link.kind.downstream()
        {
            // A child re-asking, or our backup child's parent died and we take over.
            link.kind = if standby {
                LinkKind::StandbyChild
            } else {
                LinkKind::Child
            };
            self.confirm(from, standby, None, first);
            return;
        }
        let price = self.price();
        if work < price {
            // Under pressure, only a reservation that carries the work is considered.
            *self.stats.rejected.entry("unpaid reservation").or_default() += 1;
            self.refuse(from, price, first);
            return;
        }
        // Only a member that receives audio (or is about to: its own parent link is still
        // within its connection deadline) can pass it on; a relay whose parent went quiet,
        // or that has none, would hand a newcomer silence.
        let deadline = ms(self.config.connect_deadline);
        let delivering = self.is_host()
            || self
                .links
                .one(LinkKind::Parent)
                .and_then(|p| self.links.get(&p))
                .is_some_and(|l| {
                    l.delivers() || (l.connected_at.is_none() && now < l.confirmed_at + deadline)
                });
        let admission = if !delivering {
            *self.stats.rejected.entry("not delivering").or_default() += 1;
            Admission::Refuse
        } else if self.links.get(&from).is_some() {
            *self.stats.rejected.entry("linked otherwise").or_default() += 1;
            Admission::Refuse
        } else if self.avoid.contains_key(&from) {
            // It failed us lately (a link it never set up, or one that broke).
            *self.stats.rejected.entry("avoided requester").or_default() += 1;
            Admission::Refuse
        } else if self.links.displacing() {
            // One seat handed on at a time: the tree never holds more than one extra child.
            *self.stats.rejected.entry("handing a seat on").or_default() += 1;
            Admission::Refuse
        } else {
            let children: Vec<(PublicKey, bool)> = self
                .links
                .iter()
                .filter(|(_, l)| l.kind == LinkKind::Child)
                .map(|(k, l)| (*k, l.displaced_by.is_some()))
                .collect();
            let standbys: Vec<PublicKey> = self.links.of_kind(LinkKind::StandbyChild).collect();
            let tree = self.tree();
            let relays = self.is_host()
                && self
                    .relay_handed_on
                    .is_none_or(|at| now >= at + ms(RELAY_HAND_ON_EVERY));
            self.config.rules.admit(
                &self.space,
                &tree,
                &self.me,
                &from,
                standby,
                Seats {
                    capacity: self.capacity(),
                    children: &children,
                    standbys: &standbys,
                    relays,
                },
            )
        };
        // An ask made before the requester read the space takes a free output or nothing: the
        // requester keeps it only when its read shows one (`settle_early_ask`), and asks again
        // for a leaf's seat, which a CONFIRM to the first ask would then collide with.
        let admission = match admission {
            Admission::Displace(_) | Admission::HandOnRelay(_) if first => Admission::Refuse,
            Admission::Displace(_) | Admission::HandOnRelay(_)
                if self.links.count(LinkKind::HandedOn) >= MAX_HANDED_ON =>
            {
                Admission::Refuse
            }
            other => other,
        };
        // A speaker the host admits always gets its answer: a conversation needs it. Any other
        // admission waits while the relays would let its CONFIRM through late ([`Outbox`]):
        // silent, the requester asks elsewhere when its wait ends, where a late CONFIRM would
        // hold an output for a link that never comes.
        let speaker_to_host = self.is_host() && !standby && self.space.role_of(&from).speaks();
        if admission != Admission::Refuse && !speaker_to_host && !self.outbox.may_admit(now) {
            *self.stats.rejected.entry("answering too fast").or_default() += 1;
            return;
        }
        match admission {
            Admission::Accept => {}
            Admission::EvictStandby(backup) => {
                tracing::debug!(%backup, "backup link given up for a child");
                self.drop_link(backup);
            }
            Admission::Displace(leaf) => {
                if let Some(link) = self.links.get_mut(&leaf) {
                    link.displaced_by = Some(from);
                }
            }
            Admission::HandOnRelay(relay) => {
                tracing::info!(%relay, by = %from, "a relay's seat to a clearly stronger one");
                self.relay_handed_on = Some(now);
                if let Some(link) = self.links.get_mut(&relay) {
                    link.displaced_by = Some(from);
                }
            }
            Admission::Refuse
                if first
                    && self.links.count(LinkKind::Child) >= self.capacity() as usize
                    && self.full_shown() =>
            {
                // Asked before the requester read the space: the read tells it there is no
                // free output here, and a DROP would only load the relays (one per newcomer).
                // Refused for another reason, it is told: its read would show a seat.
                *self
                    .stats
                    .rejected
                    .entry("asked first, no room")
                    .or_default() += 1;
                return;
            }
            Admission::Refuse => {
                // No room (or not receiving): a plain refusal, whatever the price.
                *self.stats.rejected.entry("refusals").or_default() += 1;
                self.refuse(from, 0, first);
                return;
            }
        }
        let kind = if standby {
            LinkKind::StandbyChild
        } else {
            LinkKind::Child
        };
        self.links.insert(from, Link::new(kind, now));
        self.confirm(from, standby, offer, first);
    }

    /// Whether every newcomer reading the space now sees our seats taken: the last was taken
    /// [`FULL_SHOWN_AFTER`] ago or more. In a crowd arriving together, the first asks all
    /// read the seats free.
    fn full_shown(&self) -> bool {
        self.links
            .iter()
            .filter(|(_, l)| l.kind.downstream())
            .map(|(_, l)| l.confirmed_at)
            .max()
            .is_none_or(|last| self.now >= last + FULL_SHOWN_AFTER)
    }

    /// Confirms `requester`'s reservation; with its `offer`, our answer rides in the CONFIRM.
    /// The CONFIRM of a reservation asked `first` (before the requester read the space) says
    /// so: a requester that gave that ask up and has asked again since must not take it for
    /// the answer to its new one.
    fn confirm(&mut self, requester: PublicKey, standby: bool, offer: Option<String>, first: bool) {
        let confirm = self.publication(
            Message::Confirm(Reservation {
                requester,
                confirmer: self.me,
                role: Some(LinkRole::Consumer),
                standby,
                sdp: None,
                before_read: first,
            }),
            0,
        );
        match offer {
            Some(sdp) => {
                if let Some(link) = self.links.get_mut(&requester) {
                    link.negotiated = true;
                }
                self.outputs.push_back(Output::Link(LinkOp::Answer {
                    peer: requester,
                    sdp,
                    within: Some(confirm),
                }));
            }
            None => self.outputs.push_back(Output::Publish(confirm)),
        }
        // A backup becoming the tree link already carries audio.
        if !standby
            && self
                .links
                .get(&requester)
                .is_some_and(|l| l.connected_at.is_some())
        {
            self.attest(requester);
        }
    }

    /// Says publicly that our tree link to `child` carries audio, which makes `child` a seat
    /// others may pick as a relay: until then (or until the seat has stood longer than any
    /// set-up deadline) newcomers pass it over, so a Sybil we confirmed but that never links
    /// costs nobody a try. Only children that announced our dialect (NIP-44) are told: other
    /// clients (the draft's, browsers written from it) read any CONFIRM to them as a new one
    /// and renegotiate a link that works; their seats are proven by age instead. Not in a
    /// crowd: nobody but `child` follows our CONFIRMs there, and a crowd's seats are proven
    /// by their own announcement (`topology::TreeRules`), which `child` makes only once our
    /// link delivers.
    fn attest(&mut self, child: PublicKey) {
        if self.space.is_crowd() || !self.space.members().get(&child).is_some_and(|m| m.nip44) {
            return;
        }
        self.publish(Message::Delivering(Reservation {
            requester: child,
            confirmer: self.me,
            role: Some(LinkRole::Consumer),
            standby: false,
            sdp: None,
            before_read: false,
        }));
    }

    /// Ends our link with `peer`: DROP for everyone's view, then forget it locally.
    fn drop_link(&mut self, peer: PublicKey) {
        self.publish(Message::Drop {
            target: peer,
            price: 0,
            first: false,
        });
        self.lose(peer);
    }

    /// Forgets a link (and a pending reservation) with `peer`; a lost parent is replaced by
    /// the warm backup at once.
    fn lose(&mut self, peer: PublicKey) {
        if self.pending.is_some_and(|p| p.peer == peer) {
            self.abandon_pending();
        }
        self.links.forget_displacer(&peer);
        let Some(link) = self.links.remove(&peer) else {
            return;
        };
        tracing::debug!(%peer, kind = ?link.kind, "link closed");
        self.outputs.push_back(Output::Link(LinkOp::Close(peer)));
        if link.kind == LinkKind::Parent {
            if let Some(backup) = self.links.one(LinkKind::Standby) {
                // The warm backup already sends us every frame: it becomes our parent at once,
                // and the RESERVE in clear only tells everyone else.
                tracing::info!(%backup, "warm backup takes over");
                if let Some(link) = self.links.get_mut(&backup) {
                    link.kind = LinkKind::Parent;
                }
                self.climb_soon();
                self.promote_backup(backup);
            } else if let Some(old) = self.links.one(LinkKind::Retiring)
                && let Some(link) = self.links.get_mut(&old)
            {
                link.kind = LinkKind::Parent;
            } else {
                self.seek();
            }
        }
    }

    fn close_all(&mut self) {
        for peer in self.links.peers() {
            self.links.remove(&peer);
            self.outputs.push_back(Output::Link(LinkOp::Close(peer)));
        }
        self.abandon_pending();
    }

    /// Emits routing and speaking changes, and refreshes the statistics.
    fn route(&mut self) {
        let host = *self.config.space.host();
        let role = self.space.role_of(&self.me);
        let speaker = !self.is_host() && role.speaks();
        let uplink = self
            .links
            .one(LinkKind::Parent)
            .filter(|p| speaker && *p == host);
        // Most inputs change no link: compare before building anything.
        let same = |have: &[PublicKey], test: fn(LinkKind) -> bool| {
            self.links
                .iter()
                .filter(|(_, l)| test(l.kind))
                .map(|(k, _)| k)
                .eq(have.iter())
        };
        // Only the host routes speakers' voices (others leave the flag as it is).
        let unchanged = !(self.is_host() && self.speakers_stale)
            && uplink == self.routing.uplink
            && same(&self.routing.upstream, LinkKind::upstream)
            && same(&self.routing.children, LinkKind::downstream);
        if !unchanged {
            let speakers = if !self.is_host() {
                Vec::new()
            } else if std::mem::take(&mut self.speakers_stale) {
                self.space
                    .members()
                    .keys()
                    .filter(|k| **k != self.me && self.space.role_of(k).speaks())
                    .copied()
                    .collect()
            } else {
                self.routing.speakers.clone()
            };
            let routing = Routing {
                upstream: self.links.peers_where(LinkKind::upstream),
                children: self.links.peers_where(LinkKind::downstream),
                speakers,
                uplink,
            };
            if routing != self.routing {
                self.routing = routing.clone();
                self.outputs.push_back(Output::Routing(routing));
            }
        }
        let speaking = (self.is_host() || role.speaks()) && !self.muted && !self.is_done();
        if self.speaking != Some(speaking) {
            self.speaking = Some(speaking);
            self.outputs.push_back(Output::Speaking(speaking));
        }
        self.stats.role = role;
        self.stats.parent = self.links.one(LinkKind::Parent);
        self.stats.standby = self.links.one(LinkKind::Standby);
        self.stats.children = self.links.count(LinkKind::Child);
        self.stats.standby_children = self.links.count(LinkKind::StandbyChild);
        self.stats.capacity = self.capacity();
    }
}

/// Whether the user's interface needs to hear of a command (the participant has already acted
/// on it): roles, hands, speech invitations, mute requests, chat, reactions, the end.
fn for_ui(command: &Command) -> bool {
    matches!(
        command,
        Command::SpaceOpened
            | Command::SpaceClosed
            | Command::MemberJoined(_)
            | Command::MemberLeft(_)
            | Command::PeerRemoved(_)
            | Command::RoleChanged { .. }
            | Command::HandRaised { .. }
            | Command::SpeechProposed { .. }
            | Command::MuteRequested { .. }
            | Command::Chat { .. }
            | Command::Reaction { .. }
    )
}

fn ms(duration: Duration) -> Millis {
    duration.as_millis() as Millis
}

/// Our uplink estimate from the announced metrics: the capacity rule's outputs, or, when the
/// platform gives no uplink figure (0), a cautious start that receiver reports may grow up to
/// what the access network allows.
fn uplink_of(rules: &TreeRules, metrics: &NetworkMetrics, is_host: bool) -> Uplink {
    let peer = PeerMetrics::from(metrics);
    if metrics.upload_kbps > 0 {
        return Uplink::announced(rules.policy.outputs(&peer, is_host));
    }
    let unbounded = PeerMetrics {
        upload_kbps: f64::from(u32::MAX),
        ..peer
    };
    Uplink::unknown(rules.policy.outputs(&unbounded, is_host))
}
