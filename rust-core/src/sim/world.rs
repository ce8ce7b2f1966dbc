//! A simulated world: real [`Participant`]s over a simulated relay and simulated WebRTC links,
//! on a simulated clock. Deterministic: the same calls give the same run.
//!
//! The world plays each participant's driver: it publishes what the participant asks (and the
//! SDP and ICE a driver sends), delivers relay events after each end's relay latency, opens
//! links that connect one ICE + DTLS exchange after the answer arrives, and reports stalls and
//! ICE failures when a peer dies. Audio is not carried packet by packet: a listener hears the
//! host when a chain of connected links reaches it, and each relay's uplink loses the share of
//! its streams it cannot carry.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use nostr::prelude::{EventId, Keys, PublicKey, SecretKey, Timestamp};
use sha2::{Digest, Sha256};

use super::relay::{RateLimit, Relay, addressed, crowd_wide};
use super::timeline::Timeline;
use super::wiring::Wiring;
use crate::participant::{
    Follow, Input, LinkInput, LinkKind, LinkOp, Millis, Output, Participant, ParticipantConfig,
    Publication, SEAT_SAMPLE, UserCommand,
};
use crate::protocol::{IceCandidate, Message, NetworkMetrics, SpaceEvent, SpaceRef};
use crate::topology::CapacityPolicy;

/// Hashes a public key by eight of its bytes: keys are uniformly random already, and the
/// world looks one up for every link of every node ten times a simulated second.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHash;

impl std::hash::BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// The hasher of [`KeyHash`]: the first eight bytes written.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

/// A participant's index in the world.
pub type NodeId = usize;

/// The simulated clock starts here (Unix ms): events carry plausible timestamps.
pub const T0: Millis = 1_790_000_000_000;

/// How the simulated network behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkModel {
    /// One-way latency between a participant and the relay, ms: each participant draws one
    /// in this range (so relays reorder events of different authors, never of one).
    pub relay_ms: (u64, u64),
    /// One-way latency of a peer-to-peer link, ms, drawn per participant (a link's latency is
    /// the sum of both ends').
    pub link_ms: (u64, u64),
    /// Packet loss on every link, as a share (concealed by FEC up to a few percent).
    pub link_loss: f64,
    /// Extra delay on the way to subscribers, drawn per event and latency group in [0, this]
    /// ms: events reach subscribers out of order, as they do from the several relays a client
    /// uses (a host's CONFIRM overtaking its CREATE has been seen on real relays).
    pub reorder_ms: u64,
    /// Per-author publish limit at the relay.
    pub rate_limit: RateLimit,
    /// Silence after which a link reports itself stalled.
    pub stall_ms: u64,
    /// Silence after which ICE says the path is gone (consent checks).
    pub ice_disconnect_ms: u64,
    /// Silence after which ICE gives up (the link fails).
    pub ice_fail_ms: u64,
}

impl Default for NetworkModel {
    fn default() -> Self {
        Self {
            relay_ms: (10, 80),
            link_ms: (5, 60),
            link_loss: 0.01,
            reorder_ms: 50,
            rate_limit: RateLimit {
                rate: 10.0,
                burst: 30.0,
            },
            stall_ms: 300,
            ice_disconnect_ms: 5_000,
            ice_fail_ms: 25_000,
        }
    }
}

/// One participant and what the world knows about it.
pub struct Node {
    /// The participant itself (boxed: sweeps over every node, as each look at the audio
    /// is, read the few fields below, not the participant's few KB).
    pub participant: Box<Participant>,
    /// Its real uplink, kbit/s (what it announced may differ).
    pub uplink_kbps: f64,
    /// Joined at.
    pub joined_at: Millis,
    /// Still running (not crashed, not left).
    pub alive: bool,
    /// First heard the host at (sampled).
    pub first_audio: Option<Millis>,
    relay_ms: u64,
    link_ms: u64,
    subscribed: bool,
    /// In a crowd's view: the members whose JOINs and LEAVEs it follows.
    follows: BTreeSet<PublicKey>,
    wake: Option<Millis>,
    /// Receives nothing, so forwards nothing.
    silent: bool,
    /// Stopped (a frozen process, a phone that suspended the app) until then: it handles
    /// nothing and forwards nothing, and catches up on what came in once it runs again.
    frozen_until: Option<Millis>,
}

/// Something due at a time.
#[derive(Debug)]
enum Action {
    Wake(NodeId),
    /// An event reaches the relay.
    AtRelay(Box<SpaceEvent>),
    /// The relay hands an event to a subscriber.
    Deliver(NodeId, Rc<SpaceEvent>),
    /// The relay hands an event to every subscriber this many ms away from it.
    Fanout(u64, Rc<SpaceEvent>),
    /// A newcomer's first subscription (the host's CREATE, asked for ahead) reaches the relay.
    Subscribe(NodeId),
    /// What a participant asked to follow reaches the relay.
    Follow(NodeId, Follow),
    /// An input a frozen node could not take when it came, or the end of what a
    /// subscription fetched.
    Input(NodeId, Box<Input>),
    /// ICE and DTLS complete between two ends.
    Connect(NodeId, NodeId),
    /// A link input, if the link it was meant for still exists (same confirmation time).
    Link {
        node: NodeId,
        peer: NodeId,
        confirmed_at: Millis,
        input: LinkInput,
    },
}

/// Counters of what crossed the relay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    /// Events published, by kind.
    pub published: HashMap<&'static str, u64>,
    /// Events handed to subscribers.
    pub delivered: u64,
    /// Links set up: a confirmed reservation's new link. An offer that rode in a RESERVE
    /// counts once its CONFIRM answers it, not when it was made (it may be refused).
    pub links_opened: u64,
}

impl Traffic {
    /// Every event published.
    pub fn total(&self) -> u64 {
        self.published.values().sum()
    }
}

/// The world.
pub struct World {
    space: SpaceRef,
    host_keys: PublicKey,
    seed: u64,
    network: NetworkModel,
    policy: CapacityPolicy,
    now: Millis,
    events: u64,
    queue: Timeline<Action>,
    nodes: Vec<Node>,
    by_key: HashMap<PublicKey, NodeId, KeyHash>,
    /// Each node's key, by id.
    keys: Vec<PublicKey>,
    relay: Relay,
    /// Subscribers to the whole space by their latency to the relay: one fan-out per
    /// latency, not per node.
    subscribers: BTreeMap<u64, Vec<NodeId>>,
    /// Nodes following a crowd's view.
    crowd: BTreeSet<NodeId>,
    /// In a crowd: who follows each member's JOIN and LEAVE.
    followers: HashMap<PublicKey, BTreeSet<NodeId>>,
    rng: super::Rng,
    /// When links next report their loss (RTCP receiver reports).
    next_report: Millis,
    /// What crossed the relay.
    pub traffic: Traffic,
    /// Links whose offer rode in a RESERVE not answered yet, by (node, peer).
    offered: HashSet<(NodeId, PublicKey)>,
    /// Links whose candidates wait for the read to settle a reservation asked before it, by
    /// node (each node's looked at after each of its inputs: a set of all would be walked
    /// whole every time, a tenth of a weak-first run at 10,000).
    held: BTreeMap<NodeId, BTreeSet<PublicKey>>,
    /// What each node heard at the last look at the audio.
    heard: Vec<f64>,
    /// What that look saw: the wiring's version, whether the host was alive, and the share
    /// each node passes on. The same again, and every share is the same.
    looked_at: (u64, bool, Vec<f64>),
    /// The link each node holds with each peer, by (node, peer): an id the offerer's end
    /// gives it and its offer carries (the simulated SDP), so that closing one end silences
    /// the other only while the other still holds that same link, not a newer one.
    held_links: HashMap<(NodeId, NodeId), u64>,
    /// The last link id given.
    last_link: u64,
    /// Who feeds whom, as the hearing model reads it.
    wiring: Wiring,
}

/// The simulated SDP: this prefix and the id of the offerer's link (the rest of an offer
/// does not matter here).
const SDP_LINK: &str = "sim-link ";

/// The link id a simulated SDP names.
fn sdp_link(sdp: &str) -> Option<u64> {
    sdp.strip_prefix(SDP_LINK)?.parse().ok()
}

/// At most this many computations of each node's share in one look at the audio: a guard
/// against shares that never settle (loops settle in a few).
const MAX_HOPS: usize = 64;

/// How often links report their loss: as the product's RTCP reports and its reading of them do.
pub const REPORT_EVERY_MS: Millis = crate::rtc::REPORT_EVERY.as_millis() as Millis;

/// A participant's deterministic key.
fn keys(seed: u64, n: u64) -> Keys {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(n.to_be_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    // A digest is a valid secret key but for a chance of 2^-128; step past it if not.
    let secret = SecretKey::from_slice(&digest).unwrap_or_else(|_| SecretKey::generate());
    Keys::new(secret)
}

impl World {
    /// A world whose host (node 0) opens a space at [`T0`] with these metrics.
    pub fn new(
        seed: u64,
        network: NetworkModel,
        host: NetworkMetrics,
        host_uplink_kbps: f64,
    ) -> Self {
        Self::with_host(seed, network, host, host_uplink_kbps, |_| {})
    }

    /// [`Self::new`] with the host's settings changed by `configure`.
    pub fn with_host(
        seed: u64,
        network: NetworkModel,
        host: NetworkMetrics,
        host_uplink_kbps: f64,
        configure: impl FnOnce(&mut ParticipantConfig),
    ) -> Self {
        let host_key = keys(seed, 0).public_key();
        let space = SpaceRef::new("sim", host_key).expect("a constant, valid space id");
        let mut world = Self {
            space,
            host_keys: host_key,
            seed,
            network,
            policy: CapacityPolicy::default(),
            now: T0,
            events: 0,
            queue: Timeline::new(T0),
            nodes: Vec::new(),
            by_key: HashMap::with_hasher(KeyHash),
            keys: Vec::new(),
            relay: Relay::default(),
            subscribers: BTreeMap::new(),
            crowd: BTreeSet::new(),
            followers: HashMap::new(),
            rng: super::Rng::new(seed ^ 0x5EED),
            next_report: T0 + REPORT_EVERY_MS,
            traffic: Traffic::default(),
            offered: HashSet::new(),
            held: BTreeMap::new(),
            heard: Vec::new(),
            looked_at: (0, false, Vec::new()),
            held_links: HashMap::new(),
            last_link: 0,
            wiring: Wiring::default(),
        };
        world.spawn(host, host_uplink_kbps, configure);
        world
    }

    /// The space.
    pub fn space(&self) -> &SpaceRef {
        &self.space
    }

    /// Simulated now.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Every participant so far (crashed and departed ones included).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// One participant.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// A participant's node, by key.
    pub fn id_of(&self, key: &PublicKey) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    /// A listener joins now, announcing `metrics`, with `uplink_kbps` of real uplink.
    pub fn join(&mut self, metrics: NetworkMetrics, uplink_kbps: f64) -> NodeId {
        self.spawn(metrics, uplink_kbps, |_| {})
    }

    /// A listener that found the space in a listing joins now, as auto-join by cell does
    /// (`engine::roam`): in a space whose host already made it a crowd, it asks no seat of
    /// the host before reading the space ([`ParticipantConfig::ask_host_first`]).
    pub fn join_listed(&mut self, metrics: NetworkMetrics, uplink_kbps: f64) -> NodeId {
        let crowd = self
            .nodes
            .first()
            .is_some_and(|host| host.participant.space().is_crowd());
        self.spawn(metrics, uplink_kbps, |c| c.ask_host_first = !crowd)
    }

    /// [`Self::join`] with settings of its own (`configure` changes the defaults).
    pub fn join_configured(
        &mut self,
        metrics: NetworkMetrics,
        uplink_kbps: f64,
        configure: impl FnOnce(&mut ParticipantConfig),
    ) -> NodeId {
        self.spawn(metrics, uplink_kbps, configure)
    }

    fn spawn(
        &mut self,
        metrics: NetworkMetrics,
        uplink_kbps: f64,
        configure: impl FnOnce(&mut ParticipantConfig),
    ) -> NodeId {
        let id = self.nodes.len();
        let key = keys(self.seed, id as u64).public_key();
        // Logs name nodes by number and peers by key: this line links the two.
        tracing::debug!(node = id, %key, t = self.now - T0, "node joins");
        let mut config = ParticipantConfig::new(key, self.space.clone(), metrics);
        configure(&mut config);
        let participant = Box::new(Participant::new(config, self.now));
        let (relay_lo, relay_hi) = self.network.relay_ms;
        let (link_lo, link_hi) = self.network.link_ms;
        let relay_ms = self.rng.between(relay_lo, relay_hi);
        let link_ms = self.rng.between(link_lo, link_hi);
        self.nodes.push(Node {
            participant,
            uplink_kbps,
            joined_at: self.now,
            alive: true,
            first_audio: None,
            relay_ms,
            link_ms,
            subscribed: false,
            follows: BTreeSet::new(),
            wake: None,
            silent: false,
            frozen_until: None,
        });
        self.by_key.insert(key, id);
        self.keys.push(key);
        self.wiring.push();
        self.at(self.now + relay_ms, Action::Subscribe(id));
        self.flush(id);
        id
    }

    /// The node's real uplink changes (its announcement is the participant's business).
    pub fn set_uplink(&mut self, node: NodeId, uplink_kbps: f64) {
        self.nodes[node].uplink_kbps = uplink_kbps;
    }

    /// A user command at `node` now.
    pub fn command(&mut self, node: NodeId, command: UserCommand) {
        if !self.nodes[node].alive {
            return;
        }
        self.input(node, Input::User(command));
    }

    /// Stops `node` for `for_ms`: no inputs handled, no timeouts, no audio forwarded (its
    /// ICE still answers within the ICE timeouts only if `for_ms` is shorter than them; longer
    /// freezes are crashes to its peers).
    pub fn freeze(&mut self, node: NodeId, for_ms: Millis) {
        self.nodes[node].frozen_until = Some(self.now + for_ms);
    }

    fn frozen(&self, node: NodeId) -> bool {
        self.nodes[node]
            .frozen_until
            .is_some_and(|until| self.now < until)
    }

    /// Feeds one input to a participant (logs carry the node and the simulated time); a
    /// frozen one gets it when it runs again.
    fn input(&mut self, node: NodeId, input: Input) {
        if let Some(until) = self.nodes[node].frozen_until.filter(|u| self.now < *u) {
            self.at(until, Action::Input(node, Box::new(input)));
            return;
        }
        let now = self.now;
        let _span = tracing::debug_span!("sim", node, t = now - T0).entered();
        self.nodes[node].participant.handle_input(input, now);
        self.flush(node);
    }

    /// Something a link reports to `node` about its link with `peer`, now (a silent peer that
    /// is not one of ours, a path that breaks).
    pub fn link_input(&mut self, node: NodeId, peer: NodeId, input: LinkInput) {
        let key = *self.nodes[peer].participant.me();
        if self.nodes[node].alive {
            self.input(
                node,
                Input::Link {
                    peer: key,
                    event: input,
                },
            );
        }
    }

    /// A polite leave: DROPs and LEAVE go out, then the node is gone.
    pub fn leave(&mut self, node: NodeId) {
        self.command(node, UserCommand::Leave);
        self.vanish(node);
    }

    /// The node dies without a word: its peers find out from the silence.
    pub fn crash(&mut self, node: NodeId) {
        tracing::debug!(node, t = self.now - T0, "node crashes");
        self.vanish(node);
    }

    fn vanish(&mut self, node: NodeId) {
        if !self.nodes[node].alive {
            return;
        }
        self.nodes[node].alive = false;
        self.unfollow(node);
        let key = *self.nodes[node].participant.me();
        let peers: Vec<NodeId> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.alive && n.participant.links().get(&key).is_some())
            .map(|(id, _)| id)
            .collect();
        for peer in peers {
            self.silence(peer, node);
        }
    }

    /// `node` hears `gone`'s goodbye on their link (RTCP BYE) one way after `gone` closed it.
    fn goodbye(&mut self, node: NodeId, gone: NodeId) {
        let one_way = self.nodes[node].link_ms + self.nodes[gone].link_ms;
        self.on_link_later(node, gone, &[(one_way, LinkInput::Goodbye)]);
    }

    /// `node` stops hearing from `gone`: a stall, then ICE disconnection, then failure.
    fn silence(&mut self, node: NodeId, gone: NodeId) {
        let net = self.network;
        self.on_link_later(
            node,
            gone,
            &[
                (net.stall_ms, LinkInput::Stalled),
                (net.ice_disconnect_ms, LinkInput::Disconnected),
                (net.ice_fail_ms, LinkInput::Failed),
            ],
        );
    }

    /// What `node`'s link with `gone` reports, each after its delay from now: for the link it
    /// holds now only (a newer one confirmed later hears none of it).
    fn on_link_later(&mut self, node: NodeId, gone: NodeId, inputs: &[(Millis, LinkInput)]) {
        let key = *self.nodes[gone].participant.me();
        let Some(link) = self.nodes[node].participant.links().get(&key) else {
            return;
        };
        let confirmed_at = link.confirmed_at;
        for &(after, input) in inputs {
            self.at(
                self.now + after,
                Action::Link {
                    node,
                    peer: gone,
                    confirmed_at,
                    input,
                },
            );
        }
    }

    /// Runs everything due until `until` (inclusive).
    pub fn run_until(&mut self, until: Millis) {
        while let Some((at, action)) = self.queue.pop(until) {
            self.now = self.now.max(at);
            self.events += 1;
            self.step(action);
        }
        self.now = self.now.max(until);
    }

    /// Actions processed so far.
    pub fn steps(&self) -> u64 {
        self.events
    }

    fn at(&mut self, at: Millis, action: Action) {
        self.queue.push(at, action);
    }

    fn step(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Wake(node) => {
                if let Some(until) = self.nodes[node].frozen_until.filter(|u| now < *u) {
                    self.nodes[node].wake = Some(until);
                    self.at(until, Action::Wake(node));
                    return;
                }
                let n = &mut self.nodes[node];
                if !n.alive || n.wake != Some(now) {
                    return;
                }
                n.wake = None;
                let _span = tracing::debug_span!("sim", node, t = now - T0).entered();
                n.participant.handle_timeout(now);
                self.flush(node);
            }
            Action::AtRelay(event) => {
                self.relay.store(&event);
                let event = Rc::new(*event);
                match private_target(&event.message) {
                    Some(target) => {
                        if let Some(id) = self.id_of(&target)
                            && self.nodes[id].alive
                            && self.nodes[id].subscribed
                        {
                            let at = now + self.nodes[id].relay_ms;
                            self.at(at, Action::Deliver(id, event));
                        }
                    }
                    None => {
                        let latencies: Vec<u64> = self.subscribers.keys().copied().collect();
                        for latency in latencies {
                            let jitter = self.rng.between(0, self.network.reorder_ms);
                            let at = now + latency + jitter;
                            self.at(at, Action::Fanout(latency, Rc::clone(&event)));
                        }
                        self.reach_crowd(&event);
                    }
                }
            }
            Action::Deliver(node, event) => {
                if !self.nodes[node].alive {
                    return;
                }
                self.traffic.delivered += 1;
                self.input(node, Input::Event((*event).clone()));
            }
            Action::Fanout(latency, event) => {
                let targets = self.subscribers.get(&latency).cloned().unwrap_or_default();
                for node in targets {
                    let n = &self.nodes[node];
                    if n.alive && *n.participant.me() != event.author {
                        self.traffic.delivered += 1;
                        self.input(node, Input::Event((*event).clone()));
                    }
                }
            }
            Action::Subscribe(node) => {
                if !self.nodes[node].alive {
                    return;
                }
                self.nodes[node].subscribed = true;
                let back = now + self.nodes[node].relay_ms;
                for event in self.relay.host_ahead(&self.host_keys) {
                    self.at(back, Action::Deliver(node, Rc::new(event)));
                }
                self.at(back, Action::Input(node, Box::new(Input::HostRead)));
            }
            Action::Follow(node, follow) => {
                if self.nodes[node].alive {
                    self.follow(node, follow);
                }
            }
            Action::Input(node, input) => {
                if self.nodes[node].alive {
                    self.input(node, *input);
                }
            }
            Action::Connect(a, b) => {
                let (ka, kb) = (
                    *self.nodes[a].participant.me(),
                    *self.nodes[b].participant.me(),
                );
                let same_link = self
                    .held_links
                    .get(&(a, b))
                    .is_some_and(|id| self.held_links.get(&(b, a)) == Some(id));
                let both = self.nodes[a].alive
                    && self.nodes[b].alive
                    && same_link
                    && self.nodes[a].participant.links().get(&kb).is_some()
                    && self.nodes[b].participant.links().get(&ka).is_some();
                if !both {
                    return;
                }
                for (node, peer) in [(a, kb), (b, ka)] {
                    self.input(
                        node,
                        Input::Link {
                            peer,
                            event: LinkInput::Connected,
                        },
                    );
                }
            }
            Action::Link {
                node,
                peer,
                confirmed_at,
                input,
            } => {
                let key = *self.nodes[peer].participant.me();
                let n = &mut self.nodes[node];
                let same = n
                    .participant
                    .links()
                    .get(&key)
                    .is_some_and(|l| l.confirmed_at == confirmed_at);
                if !n.alive || !same {
                    return;
                }
                self.input(
                    node,
                    Input::Link {
                        peer: key,
                        event: input,
                    },
                );
            }
        }
    }

    /// Carries a participant's outputs out, as its driver would, and schedules its next wake.
    fn flush(&mut self, node: NodeId) {
        self.wiring.touch(node);
        while let Some(output) = self.nodes[node].participant.poll_output() {
            match output {
                Output::Publish(publication) => self.publish_out(node, publication),
                Output::Link(op) => self.link(node, op),
                Output::Follow(follow) => {
                    let at = self.now + self.nodes[node].relay_ms;
                    self.at(at, Action::Follow(node, follow));
                }
                Output::Routing(_) | Output::Speaking(_) | Output::Ui(_) => {}
            }
        }
        if let Some(held) = self.held.get_mut(&node) {
            // In key order (a sorted set): the run stays a function of its seed.
            let participant = &self.nodes[node].participant;
            let mut settled = Vec::new();
            held.retain(|peer| {
                let holds = participant.holds_candidates(peer);
                if !holds {
                    settled.push(*peer);
                }
                holds
            });
            if held.is_empty() {
                self.held.remove(&node);
            }
            for peer in settled {
                if self.nodes[node].participant.wants_link(&peer) {
                    let created_at = Timestamp::from_secs(self.now / 1_000);
                    self.candidates(node, peer, created_at);
                }
            }
        }
        let n = &mut self.nodes[node];
        if !n.alive || n.participant.is_done() {
            return;
        }
        let wake = n.participant.poll_timeout().max(self.now + 1);
        if n.wake.is_none_or(|w| wake < w) {
            n.wake = Some(wake);
            self.at(wake, Action::Wake(node));
        }
    }

    /// What the participant decided to publish goes out, as its driver sends it.
    fn publish_out(&mut self, node: NodeId, publication: Publication) {
        let Publication {
            message,
            created_at,
            work,
            ..
        } = publication;
        let worked = match &message {
            Message::Reserve(r) if work > 0 => Some(r.confirmer),
            _ => None,
        };
        self.publish(node, message, created_at, work);
        if let Some(confirmer) = worked {
            // The driver reports a worked RESERVE once out: here, at once.
            self.input(node, Input::WorkedReservationSent { confirmer });
        }
    }

    /// An event goes to the relay. Its proof of work is taken as done at once: the simulator
    /// does not charge the mining time (tens of ms at the levels asked for).
    fn publish(&mut self, node: NodeId, message: Message, created_at: Timestamp, work: u8) {
        *self.traffic.published.entry(message.name()).or_default() += 1;
        let author = *self.nodes[node].participant.me();
        let serial = self.traffic.total();
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&serial.to_be_bytes());
        id[8..16].copy_from_slice(&(node as u64).to_be_bytes());
        id[16] = 0x51;
        let event = SpaceEvent {
            id: EventId::from_byte_array(id),
            author,
            created_at,
            space: self.space.clone(),
            message,
            work,
        };
        let let_through = self
            .relay
            .admit_at(author, self.now, self.network.rate_limit);
        let at = let_through + self.nodes[node].relay_ms;
        self.at(at, Action::AtRelay(Box::new(event)));
    }

    /// A subscription reaches the relay: it follows from now on, and what the relay stored
    /// for it comes back one way later, then its end.
    fn follow(&mut self, node: NodeId, follow: Follow) {
        let now = self.now;
        let back = now + self.nodes[node].relay_ms;
        let me = *self.nodes[node].participant.me();
        let (stored, end) = match follow {
            Follow::Space => {
                self.unfollow(node);
                let latency = self.nodes[node].relay_ms;
                self.subscribers.entry(latency).or_default().push(node);
                (self.relay.stored_for(&me, now), Some(Input::StoredEnd))
            }
            Follow::Crowd => {
                self.unfollow(node);
                self.crowd.insert(node);
                (self.relay.crowd_stored_for(&me), Some(Input::StoredEnd))
            }
            Follow::Members(keys) => {
                let keys: BTreeSet<PublicKey> = keys.into_iter().collect();
                let old = std::mem::take(&mut self.nodes[node].follows);
                for gone in old.difference(&keys) {
                    if let Some(set) = self.followers.get_mut(gone) {
                        set.remove(&node);
                    }
                }
                let mut stored = Vec::new();
                for new in keys.difference(&old) {
                    self.followers.entry(*new).or_default().insert(node);
                    stored.extend(self.relay.membership_of(new));
                }
                self.nodes[node].follows = keys;
                (stored, None)
            }
            Follow::Seats {
                since,
                until,
                which,
            } => {
                let seats = self.relay.open_seats(since, until, which, SEAT_SAMPLE);
                let seats = seats.into_iter().filter(|e| e.author != me).collect();
                (seats, Some(Input::SeatsRead))
            }
        };
        for event in stored {
            self.at(back, Action::Deliver(node, Rc::new(event)));
        }
        if let Some(end) = end {
            self.at(back, Action::Input(node, Box::new(end)));
        }
    }

    /// `node` stops following anything (it left, or it follows another view now).
    fn unfollow(&mut self, node: NodeId) {
        let latency = self.nodes[node].relay_ms;
        if let Some(group) = self.subscribers.get_mut(&latency) {
            group.retain(|n| *n != node);
            // An empty group would still cost a fan-out per public event.
            if group.is_empty() {
                self.subscribers.remove(&latency);
            }
        }
        self.crowd.remove(&node);
        for key in std::mem::take(&mut self.nodes[node].follows) {
            if let Some(set) = self.followers.get_mut(&key) {
                set.remove(&node);
            }
        }
    }

    /// A public event reaches the crowd's views that follow it: space-wide events everyone,
    /// JOINs and LEAVEs their followers, the rest the peer it is addressed to.
    fn reach_crowd(&mut self, event: &Rc<SpaceEvent>) {
        if self.crowd.is_empty() {
            return;
        }
        let mut targets: BTreeSet<NodeId> = BTreeSet::new();
        if crowd_wide(&event.message) {
            targets.extend(self.crowd.iter().copied());
        } else {
            if matches!(event.message, Message::Join(_) | Message::Leave)
                && let Some(set) = self.followers.get(&event.author)
            {
                targets.extend(set.iter().copied());
            }
            let to = addressed(&event.message).and_then(|key| self.id_of(&key));
            targets.extend(to.filter(|id| self.crowd.contains(id)));
            if matches!(event.message, Message::RequestSpeech) && self.crowd.contains(&0) {
                targets.insert(0);
            }
        }
        for node in targets {
            if *self.nodes[node].participant.me() == event.author {
                continue;
            }
            let jitter = self.rng.between(0, self.network.reorder_ms);
            let at = self.now + self.nodes[node].relay_ms + jitter;
            self.at(at, Action::Deliver(node, Rc::clone(event)));
        }
    }

    /// The driver's side of a link operation: SDP and ICE over the relay, and the connection
    /// itself one ICE + DTLS exchange after the offerer applies the answer.
    fn link(&mut self, node: NodeId, op: LinkOp) {
        let now = self.now;
        let created_at = Timestamp::from_secs(now / 1_000);
        match op {
            LinkOp::Open { peer, within } => {
                let sdp = self.new_link(node, &peer);
                match within {
                    Some(reserve) => {
                        self.offered.insert((node, peer));
                        self.publish_out(node, reserve.carrying(sdp));
                    }
                    None => {
                        self.traffic.links_opened += 1;
                        self.offer(node, peer, created_at);
                    }
                }
                if self.nodes[node].participant.holds_candidates(&peer) {
                    // Held until the reservation is settled, as the driver does.
                    self.held.entry(node).or_default().insert(peer);
                } else {
                    self.candidates(node, peer, created_at);
                }
            }
            LinkOp::Restart(peer) => self.offer(node, peer, created_at),
            LinkOp::SendOffer(peer) => {
                self.confirmed_offer(node, peer);
                self.offer(node, peer, created_at);
            }
            LinkOp::Answer { peer, within, sdp } => {
                if let Some(other) = self.id_of(&peer) {
                    // The answering end holds the link the offer opened.
                    let id = sdp_link(&sdp).unwrap_or_else(|| self.next_link());
                    self.held_links.insert((node, other), id);
                }
                match within {
                    Some(confirm) => self.publish_out(node, confirm.carrying(String::new())),
                    None => self.publish(
                        node,
                        Message::Answer {
                            target: peer,
                            sdp: String::new(),
                        },
                        created_at,
                        0,
                    ),
                }
                self.candidates(node, peer, created_at);
            }
            LinkOp::ApplyAnswer { peer, .. } => {
                self.confirmed_offer(node, peer);
                if let Some(other) = self.id_of(&peer) {
                    // Connectivity checks one round trip, DTLS one more.
                    let rtt = 2 * (self.nodes[node].link_ms + self.nodes[other].link_ms);
                    self.at(now + 2 * rtt, Action::Connect(node, other));
                }
            }
            LinkOp::AddCandidate { .. } => {}
            LinkOp::Close(peer) => {
                self.offered.remove(&(node, peer));
                // The other end, if it still holds this link (not a newer one it opened
                // since), hears our goodbye one way later, and nothing more after it.
                if let Some(other) = self.id_of(&peer) {
                    let closed = self.held_links.remove(&(node, other));
                    if closed.is_some()
                        && self.held_links.get(&(other, node)) == closed.as_ref()
                        && self.nodes[other].alive
                    {
                        self.goodbye(other, node);
                        self.silence(other, node);
                    }
                }
            }
        }
    }

    /// A link whose offer rode in `node`'s RESERVE to `peer` was confirmed: it counts as set
    /// up now. Any other link was counted when it opened.
    fn confirmed_offer(&mut self, node: NodeId, peer: PublicKey) {
        if self.offered.remove(&(node, peer)) {
            self.traffic.links_opened += 1;
        }
    }

    /// A new link from `node` to `peer`, held at `node`'s end; returns the simulated SDP of
    /// its offer (which names it).
    fn new_link(&mut self, node: NodeId, peer: &PublicKey) -> String {
        let id = self.next_link();
        if let Some(other) = self.id_of(peer) {
            self.held_links.insert((node, other), id);
        }
        format!("{SDP_LINK}{id}")
    }

    fn next_link(&mut self) -> u64 {
        self.last_link += 1;
        self.last_link
    }

    /// An offer (a new one or again, or an ICE restart) on the link `node` holds with `peer`.
    fn offer(&mut self, node: NodeId, peer: PublicKey, created_at: Timestamp) {
        let id = self
            .id_of(&peer)
            .and_then(|other| self.held_links.get(&(node, other)).copied());
        let sdp = match id {
            Some(id) => format!("{SDP_LINK}{id}"),
            None => self.new_link(node, &peer),
        };
        let offer = Message::Offer { target: peer, sdp };
        self.publish(node, offer, created_at, 0);
    }

    /// Trickled candidates: one server-reflexive per side (a STUN round trip is longer than
    /// an offer or answer waits for gathering; the host candidate rides in the description).
    fn candidates(&mut self, node: NodeId, peer: PublicKey, created_at: Timestamp) {
        self.publish(
            node,
            Message::Ice {
                target: peer,
                candidate: IceCandidate {
                    candidate: "candidate:sim srflx".into(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                },
            },
            created_at,
            0,
        );
    }

    /// Share of the host's frames each node hears now (0 for nodes that are gone): a frame
    /// reaches a node over any of its connected upstream links, each relay loses what its
    /// uplink cannot carry, every link loses `link_loss`.
    ///
    /// Audio spreads from the host a hop per round until nothing changes, as packets do: a
    /// loop of links (a relay whose warm backup hangs below a listener it feeds, in a view a
    /// moment old) carries what enters it and creates nothing. A walk from each node up to
    /// the host would go round such a loop and count silent a node that hears through
    /// another link.
    pub fn hearing(&mut self) -> Vec<f64> {
        self.rewire();
        let passes: Vec<f64> = (0..self.nodes.len())
            .map(|id| self.passes(id).unwrap_or(0.0))
            .collect();
        let host_alive = self.nodes.first().is_some_and(|host| host.alive);
        // Most looks, a tenth of a second apart, find no link connected or gone and no relay
        // passing on more or less than before: they hear what the last one heard.
        let looking_at = (self.wiring.version(), host_alive, passes);
        if looking_at == self.looked_at {
            return self.heard.clone();
        }
        self.looked_at = looking_at;
        let passes = &self.looked_at.2;
        let mut feeds = Feeds {
            all: Vec::with_capacity(2 * self.nodes.len()),
            ends: Vec::with_capacity(self.nodes.len()),
        };
        for fed in 0..self.nodes.len() {
            if fed != 0 && self.nodes[fed].alive {
                let live = self
                    .wiring
                    .feeders(fed)
                    .filter(|feeder| passes[*feeder] > 0.0);
                feeds
                    .all
                    .extend(live.map(|feeder| (feeder, passes[feeder])));
            }
            feeds.ends.push(feeds.all.len());
        }
        let heard = propagate(&feeds, host_alive, &self.heard);
        self.heard.clone_from(&heard);
        heard
    }

    /// The share of its frames a relay passes on over each link it feeds (what its uplink
    /// carries, less the link's own loss); `None` if it is gone or frozen.
    fn passes(&self, relay: NodeId) -> Option<f64> {
        let live = self.nodes[relay].alive && !self.frozen(relay);
        live.then(|| (1.0 - self.overfeed(relay)) * (1.0 - self.network.link_loss))
    }

    /// Reads again the links of every node that handled something since the last read.
    fn rewire(&mut self) {
        for id in self.wiring.take_stale() {
            let links = self.nodes[id].participant.links();
            if !self.wiring.changed(id, links.changes()) {
                continue;
            }
            let connected = |test: fn(LinkKind) -> bool| -> Vec<NodeId> {
                let mut peers: Vec<NodeId> = links
                    .iter()
                    .filter(|(_, l)| test(l.kind) && l.connected_at.is_some())
                    .filter_map(|(peer, _)| self.id_of(peer))
                    .collect();
                peers.sort_unstable();
                peers
            };
            let up = connected(LinkKind::upstream);
            let down = connected(LinkKind::downstream);
            self.wiring.read(id, up, down);
        }
    }

    /// The share of a relay's streams its real uplink cannot carry.
    fn overfeed(&self, id: NodeId) -> f64 {
        let need = self.wiring.fed_by(id) as f64 * self.policy.stream_kbps();
        let uplink = self.nodes[id].uplink_kbps;
        if need <= uplink || need == 0.0 {
            0.0
        } else {
            1.0 - uplink / need
        }
    }

    /// Hops from the host along parent links; `None` without a parent chain.
    pub fn depth(&self, id: NodeId) -> Option<u32> {
        let mut current = id;
        for hops in 0..64 {
            if current == 0 {
                return Some(hops);
            }
            let parent = self.nodes[current]
                .participant
                .links()
                .one(LinkKind::Parent)?;
            current = self.id_of(&parent)?;
        }
        None
    }

    /// The key of `id`'s ancestor at depth 1 (its own at depth 1): its branch of the tree,
    /// along the parents the participants hold.
    pub fn branch(&self, id: NodeId) -> Option<PublicKey> {
        let head = *self.line(id)?.last()?;
        Some(*self.nodes[head].participant.me())
    }

    /// `id`'s lineage ([`crate::protocol::Seat::lineage`]) along the parents the participants
    /// hold: the bits of every member from depth 1 down to `id`.
    pub fn lineage(&self, id: NodeId) -> Option<u64> {
        let line = self.line(id)?;
        Some(line.iter().fold(0, |bits, n| {
            bits | crate::topology::lineage_bits(self.nodes[*n].participant.me())
        }))
    }

    /// `id` and its ancestors up to depth 1, along the parents the participants hold (none
    /// for the host); `None` where that line breaks or runs in a loop.
    fn line(&self, id: NodeId) -> Option<Vec<NodeId>> {
        let mut line = Vec::new();
        let mut current = id;
        for _ in 0..64 {
            if current == 0 {
                return Some(line);
            }
            line.push(current);
            let parent = self.nodes[current]
                .participant
                .links()
                .one(LinkKind::Parent)?;
            current = self.id_of(&parent)?;
        }
        None
    }

    /// Looks at the audio now: who hears the host (returned, per node), the first time each
    /// node hears it well (≥ 90 % of frames), and silence spreading down the tree: a relay
    /// that receives nothing forwards nothing (no audio, no keep-alives), so its children's
    /// links stall one stall window later, and resume when it hears again.
    pub fn sample(&mut self) -> Vec<f64> {
        let hearing = self.hearing();
        let now = self.now;
        let mut changed = Vec::new();
        for (id, (node, share)) in self.nodes.iter_mut().zip(&hearing).enumerate() {
            if node.first_audio.is_none() && *share >= 0.9 {
                node.first_audio = Some(now);
            }
            // A frozen relay forwards nothing, whatever it receives.
            let frozen = node.frozen_until.is_some_and(|until| now < until);
            let silent =
                node.alive && id != 0 && (*share == 0.0 || frozen) && node.first_audio.is_some();
            if silent != node.silent {
                node.silent = silent;
                changed.push((id, silent));
            }
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_EVERY_MS;
            self.report_loss();
        }
        for (relay, silent) in changed {
            let key = *self.nodes[relay].participant.me();
            let children: Vec<NodeId> = self.nodes[relay]
                .participant
                .links()
                .peers_where(LinkKind::downstream)
                .iter()
                .filter_map(|k| self.id_of(k))
                .collect();
            for child in children {
                let Some(link) = self.nodes[child].participant.links().get(&key) else {
                    continue;
                };
                let (input, after) = if silent {
                    (LinkInput::Stalled, self.network.stall_ms)
                } else {
                    (LinkInput::Resumed, 0)
                };
                let confirmed_at = link.confirmed_at;
                self.at(
                    now + after,
                    Action::Link {
                        node: child,
                        peer: relay,
                        confirmed_at,
                        input,
                    },
                );
            }
        }
        hearing
    }

    /// Receiver reports: on every connected link a live relay feeds, the share of its packets
    /// lost on that hop (what its uplink cannot carry, and the link's own loss) goes to the
    /// relay, as its child's RTCP report says, and to the child, as it counts it itself.
    fn report_loss(&mut self) {
        // Read from the wiring as the last look at the audio left it (this instant's), so
        // that reports given to one node do not change another's.
        let hop: Vec<Option<u16>> = (0..self.nodes.len())
            .map(|relay| {
                self.passes(relay)
                    .map(|passed| ((1.0 - passed) * 1_000.0).round() as u16)
            })
            .collect();
        for node in 0..self.nodes.len() {
            if !self.nodes[node].alive {
                continue;
            }
            // Each node's reports go in together, as its driver reads them: what its children
            // lose of what it sends, and what it loses of what its feeders send.
            let down = self.wiring.down(node);
            let mut losses: Vec<(PublicKey, u16)> =
                Vec::with_capacity(down.len() + self.wiring.feeders(node).len());
            if let Some(lost) = hop[node] {
                losses.extend(down.iter().map(|&child| (self.keys[child], lost)));
            }
            losses.extend(
                self.wiring
                    .feeders(node)
                    .filter_map(|relay| Some((self.keys[relay], hop[relay]?))),
            );
            if !losses.is_empty() {
                self.input(node, Input::Losses(losses));
            }
        }
    }

    /// The host's key.
    pub fn host(&self) -> &PublicKey {
        &self.host_keys
    }
}

/// The recipient of an SDP or ICE event: relays hand it to that peer alone.
fn private_target(message: &Message) -> Option<PublicKey> {
    let private = matches!(
        message,
        Message::Offer { .. } | Message::Answer { .. } | Message::Ice { .. }
    );
    private.then(|| addressed(message)).flatten()
}

/// What feeds each node, all in one list: node `id`'s feeds end at `ends[id]`.
#[derive(Debug, Default)]
struct Feeds {
    all: Vec<(NodeId, f64)>,
    ends: Vec<usize>,
}

impl Feeds {
    fn of(&self, id: NodeId) -> &[(NodeId, f64)] {
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.all[start..self.ends[id]]
    }
}

/// The share of the host's frames each node hears, when node `id` is fed by `feeds.of(id)` (each
/// feed: the node at its other end, the share of that node's frames it carries) and node 0 is
/// the host. `last` is the answer of the last look (empty if none): a node's share starts
/// there, as a look a tenth of a second later finds nearly every share unchanged.
///
/// Computed from the host in the order audio reaches each node, then again for whoever a
/// changed share feeds, until no share moves by more than 1e-12: links may form loops for a
/// moment (a relay and its backup each feeding the other), and a loop hears only what enters
/// it from the host. Only nodes the host reaches are computed; the rest hear nothing.
fn propagate(feeds: &Feeds, host_alive: bool, last: &[f64]) -> Vec<f64> {
    let n = feeds.ends.len();
    let mut share = vec![0.0; n];
    if !host_alive || n == 0 {
        return share;
    }
    // Who each node feeds, all in one list: node `id`'s at `downs[starts[id]..starts[id + 1]]`.
    let mut starts = vec![0usize; n + 1];
    for id in 0..n {
        for (up, _) in feeds.of(id) {
            starts[*up + 1] += 1;
        }
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let mut fill = starts.clone();
    let mut downs = vec![0; starts[n]];
    for id in 0..n {
        for (up, _) in feeds.of(id) {
            downs[fill[*up]] = id;
            fill[*up] += 1;
        }
    }
    let downs_of = |id: NodeId| &downs[starts[id]..starts[id + 1]];
    // The nodes audio reaches, in the order it reaches them (breadth first from the host):
    // computed in that order, each node comes after the nodes that feed it, but for loops.
    let mut reached = vec![false; n];
    reached[0] = true;
    let mut order = vec![0];
    let mut next = 0;
    while next < order.len() {
        let up = order[next];
        next += 1;
        for &down in downs_of(up) {
            if !reached[down] {
                reached[down] = true;
                order.push(down);
            }
        }
    }
    share[0] = 1.0;
    for &id in &order[1..] {
        share[id] = last.get(id).copied().unwrap_or(0.0);
    }
    // Every node the host reaches, in that order; a node whose share moved queues again
    // those it feeds that were computed already (the others are still in line, later).
    let mut queued = vec![false; n];
    for &id in &order[1..] {
        queued[id] = true;
    }
    let mut again: std::collections::VecDeque<NodeId> = order[1..].iter().copied().collect();
    // Loops converge geometrically (each feed carries less than all); the bound only guards
    // against a share that never settles within 1e-12.
    let mut budget = MAX_HOPS * n;
    while let Some(id) = again.pop_front() {
        queued[id] = false;
        if id == 0 || budget == 0 {
            continue;
        }
        budget -= 1;
        let missed = feeds.of(id).iter().fold(1.0, |missed, (up, carried)| {
            missed * (1.0 - share[*up] * carried)
        });
        let now = 1.0 - missed;
        if (now - share[id]).abs() > 1e-12 {
            share[id] = now;
            for &down in downs_of(id) {
                if !queued[down] {
                    queued[down] = true;
                    again.push_back(down);
                }
            }
        }
    }
    share
}

#[cfg(test)]
mod tests {
    use super::{Feeds, propagate};

    #[test]
    fn hearing_spreads_from_the_host_through_loops_and_never_into_an_island() {
        // 1 hears the host and 2 (its backup, which 1 feeds); 3 hears 2; 4 and 5 feed only
        // each other, cut off from the host; every link carries 90 % of frames.
        let lists = [
            vec![],
            vec![(0, 0.9), (2, 0.9)],
            vec![(1, 0.9)],
            vec![(2, 0.9)],
            vec![(5, 0.9)],
            vec![(4, 0.9)],
        ];
        let mut feeds = Feeds::default();
        for list in lists {
            feeds.all.extend(list);
            feeds.ends.push(feeds.all.len());
        }
        let share = propagate(&feeds, true, &[]);
        // 1 = 1 - (1 - 0.9)(1 - 0.9 * share[2]), share[2] = 0.9 * share[1]: the fixed point.
        let one = 0.9 / (1.0 - 0.1 * 0.81);
        assert!((share[1] - one).abs() < 1e-9, "{share:?}");
        assert!((share[2] - 0.9 * one).abs() < 1e-9, "{share:?}");
        assert!((share[3] - 0.81 * one).abs() < 1e-9, "{share:?}");
        assert_eq!(&share[4..], &[0.0, 0.0], "an island hears nothing");
        // Started from a look that found other shares (the island heard, 1 nothing), the
        // answer is the same.
        let warm = propagate(&feeds, true, &[1.0, 0.0, 0.5, 1.0, 0.7, 0.7]);
        for (cold, warm) in share.iter().zip(&warm) {
            assert!((cold - warm).abs() < 1e-9, "{share:?} {warm:?}");
        }
        assert_eq!(&warm[4..], &[0.0, 0.0], "an island hears nothing");
        // A dead host: nobody hears.
        assert!(propagate(&feeds, false, &[]).iter().all(|s| *s == 0.0));
    }
}
