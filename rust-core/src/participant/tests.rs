//! Deterministic tests of the participant: alone, with events written by hand, and many of
//! them in a simulated world. Simulated time only; each runs in milliseconds of wall time.

use nostr::prelude::{EventId, Keys, PublicKey, SecretKey, Timestamp};

use super::*;
use crate::protocol::{ConnectionType, MemberInfo, NetworkMetrics, SpaceInfo};
use crate::sim::{NetworkModel, NodeId, T0, World};
use crate::space::LinkState;
use crate::topology::SEAT_PROVEN_SECS;

fn keys(n: u8) -> Keys {
    let mut bytes = [0u8; 32];
    bytes[0] = 3;
    bytes[31] = n;
    Keys::new(SecretKey::from_slice(&bytes).expect("a valid secret"))
}

fn wifi(upload_kbps: u32) -> NetworkMetrics {
    NetworkMetrics {
        download_kbps: 20_000,
        upload_kbps,
        max_audio_outputs: 0,
        connection: ConnectionType::Wifi,
    }
}

/// One participant fed by hand.
struct Alone {
    me: Participant,
    space: SpaceRef,
    now: Millis,
    serial: u32,
}

impl Alone {
    /// A participant that asks for a seat once the space is read (the host is not asked
    /// first), its first outputs drained.
    fn new(me: u8, host: u8, metrics: NetworkMetrics) -> Self {
        Self::configured(me, host, metrics, |c| c.ask_host_first = false).0
    }

    /// A participant with the default settings but for `tweak`, and what it did on creation.
    fn configured(
        me: u8,
        host: u8,
        metrics: NetworkMetrics,
        tweak: impl FnOnce(&mut ParticipantConfig),
    ) -> (Self, Vec<Output>) {
        let space = SpaceRef::new("tests", keys(host).public_key()).expect("id");
        let mut config = ParticipantConfig::new(keys(me).public_key(), space.clone(), metrics);
        tweak(&mut config);
        let mut alone = Self {
            me: Participant::new(config, T0),
            space,
            now: T0,
            serial: 0,
        };
        let created = alone.drain();
        (alone, created)
    }

    fn event(&mut self, author: u8, message: Message) {
        self.event_with_work(author, message, 0);
    }

    /// An event carrying `work` bits of proof of work.
    fn event_with_work(&mut self, author: u8, message: Message, work: u8) {
        self.serial += 1;
        let mut id = [0xEE; 32];
        id[..4].copy_from_slice(&self.serial.to_be_bytes());
        let event = SpaceEvent {
            id: EventId::from_byte_array(id),
            author: keys(author).public_key(),
            created_at: Timestamp::from_secs(self.now / 1_000),
            space: self.space.clone(),
            message,
            work,
        };
        self.me.handle_input(Input::Event(event), self.now);
    }

    fn stored_end(&mut self) {
        self.me.handle_input(Input::StoredEnd, self.now);
    }

    fn advance(&mut self, ms: Millis) {
        self.now += ms;
        self.me.handle_timeout(self.now);
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.me.poll_output()).collect()
    }

    /// The messages published since the last drain.
    fn published(&mut self) -> Vec<Message> {
        self.drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Publish(Publication { message, .. }) => Some(message),
                _ => None,
            })
            .collect()
    }
}

/// A listener's tree reservation of `confirmer`, asked after reading the space, no offer.
fn reservation(requester: u8, confirmer: u8) -> Reservation {
    Reservation {
        requester: keys(requester).public_key(),
        confirmer: keys(confirmer).public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    }
}

fn reserve(requester: u8, confirmer: u8) -> Message {
    Message::Reserve(reservation(requester, confirmer))
}

fn join(upload_kbps: u32) -> Message {
    Message::Join(MemberInfo {
        name: String::new(),
        metrics: wifi(upload_kbps),
        price: 0,
        nip44: false,
        dtls: None,
        seat: None,
    })
}

fn answer(to: u8) -> Message {
    Message::Answer {
        target: keys(to).public_key(),
        sdp: "v=0".into(),
    }
}

fn confirm(requester: u8, confirmer: u8) -> Message {
    Message::Confirm(Reservation {
        requester: keys(requester).public_key(),
        confirmer: keys(confirmer).public_key(),
        role: None,
        standby: false,
        sdp: None,
        before_read: false,
    })
}

/// `confirmer`'s word that its link to `requester` carries audio.
fn delivering(requester: u8, confirmer: u8) -> Message {
    Message::Delivering(Reservation {
        requester: keys(requester).public_key(),
        confirmer: keys(confirmer).public_key(),
        role: None,
        standby: false,
        sdp: None,
        before_read: false,
    })
}

/// `author`'s DROP of its link or reservation with `target`, asking `price` bits of work.
fn drop_of(target: u8, price: u8) -> Message {
    Message::Drop {
        target: keys(target).public_key(),
        price,
        first: false,
    }
}

impl Alone {
    /// `relay` (announcing `kbps`) joined, reserved the host (1), and the host confirmed it and
    /// says its link delivers.
    fn delivering_under_the_host(&mut self, relay: u8, kbps: u32) {
        self.event(relay, join(kbps));
        self.event(relay, reserve(relay, 1));
        self.event(1, confirm(relay, 1));
        self.event(1, delivering(relay, 1));
    }
}

fn confirms_to(messages: &[Message]) -> Vec<PublicKey> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Confirm(r) => Some(r.requester),
            _ => None,
        })
        .collect()
}

fn drops_to(messages: &[Message]) -> Vec<PublicKey> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Drop { target, .. } => Some(*target),
            _ => None,
        })
        .collect()
}

/// The RESERVEs in `outputs`, published alone or with the link they open: whom each asks,
/// the work it carries, and whether it opens a link (carries an offer).
fn reserves_in(outputs: &[Output]) -> Vec<(PublicKey, u8, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Publish(p) => Some((p, false)),
            Output::Link(LinkOp::Open {
                within: Some(p), ..
            }) => Some((p, true)),
            _ => None,
        })
        .filter_map(|(p, offered)| match &p.message {
            Message::Reserve(r) => Some((r.confirmer, p.work, offered)),
            _ => None,
        })
        .collect()
}

/// The RESERVEs in `outputs`, and whether each opens a link (carries an offer).
fn asks(outputs: &[Output]) -> Vec<(PublicKey, bool)> {
    reserves_in(outputs)
        .into_iter()
        .map(|(peer, _, offered)| (peer, offered))
        .collect()
}

/// The candidates `messages` ask for a seat.
fn reserves_to(messages: &[Message]) -> Vec<PublicKey> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Reserve(r) => Some(r.confirmer),
            _ => None,
        })
        .collect()
}

fn closes_link_to(outputs: &[Output], peer: u8) -> bool {
    outputs
        .iter()
        .any(|o| matches!(o, Output::Link(LinkOp::Close(p)) if *p == keys(peer).public_key()))
}

#[test]
fn a_burst_of_reservations_is_confirmed_only_up_to_capacity() {
    // A host announcing 400 kbit/s feeds 3 children (half of it, 56.8 kbit/s a stream).
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    assert_eq!(host.me.capacity(), 3);
    for n in 10..20 {
        host.event(n, join(100));
    }
    host.drain();
    // Ten requests within one instant, before any link exists.
    for n in 10..20 {
        host.event(n, reserve(n, 1));
    }
    let published = host.published();
    assert_eq!(confirms_to(&published).len(), 3, "{published:?}");
    assert_eq!(drops_to(&published).len(), 7);
    // One child leaves: exactly one seat opens.
    host.event(10, Message::Leave);
    for n in 20..25 {
        host.event(n, join(100));
        host.event(n, reserve(n, 1));
    }
    let published = host.published();
    assert_eq!(confirms_to(&published).len(), 1, "{published:?}");
}

impl Alone {
    /// `requester` reserves the host (1) and sends it its offer.
    fn reserve_host_with_offer(&mut self, requester: u8) {
        self.event(requester, reserve(requester, 1));
        self.event(
            requester,
            Message::Offer {
                target: keys(1).public_key(),
                sdp: "v=0".into(),
            },
        );
    }
}

/// A host of three outputs (400 kbit/s) whose three children (10, 11, 12) announce `kbps`
/// and are connected.
fn host_full_of(kbps: u32) -> Alone {
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    for child in 10..13 {
        host.event(child, join(kbps));
        host.event(child, reserve(child, 1));
    }
    assert_eq!(confirms_to(&host.published()).len(), 3);
    for child in 10..13 {
        host.offer_and_connect(child);
    }
    host
}

#[test]
fn a_full_host_hands_a_weak_leafs_seat_to_a_strong_newcomer_once_it_delivers() {
    let mut host = host_full_of(40);
    host.event(20, join(5_000));
    host.reserve_host_with_offer(20);
    let published = host.published();
    assert_eq!(
        confirms_to(&published),
        vec![keys(20).public_key()],
        "the strong newcomer gets a seat"
    );
    assert!(
        drops_to(&published).is_empty(),
        "nobody is dropped before it delivers"
    );
    // Another strong newcomer waits: one seat changes hands at a time.
    host.event(21, join(5_000));
    host.event(21, reserve(21, 1));
    assert_eq!(drops_to(&host.published()), vec![keys(21).public_key()]);
    host.link(20, LinkInput::Connected);
    let out = host.drain();
    let dropped = drops_to(&published_in(&out));
    assert_eq!(dropped.len(), 1, "one weak leaf moves on");
    let leaf = dropped[0];
    assert!((10..13).any(|w| leaf == keys(w).public_key()));
    assert_eq!(host.me.stats().children, 3);
    // The leaf keeps our audio while it looks for a parent: its link stays open and routed.
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Link(LinkOp::Close(p)) if *p == leaf))
    );
    assert!(host.me.routing().children.contains(&leaf));
    // Until the grace ends: then the link closes, with no second DROP.
    host.advance(HAND_ON_GRACE.as_millis() as Millis - 100);
    assert!(!closes_link_to_key(&host.drain(), leaf));
    host.advance(200);
    let out = host.drain();
    assert!(closes_link_to_key(&out, leaf), "{out:?}");
    assert!(drops_to(&published_in(&out)).is_empty());
    assert!(!host.me.routing().children.contains(&leaf));
}

#[test]
fn a_host_full_of_weak_relays_hands_one_seat_on_to_a_clearly_stronger_relay_now_and_then() {
    // The host feeds 3 children. Three weak relays (250 kbit/s: 2 outputs) took them, and
    // each feeds a strong relay (5,000 kbit/s: 44 outputs) that came later.
    let mut host = host_full_of(250);
    for (strong, weak) in [(20, 10), (21, 11), (22, 12)] {
        host.event(strong, join(5_000));
        host.event(strong, reserve(strong, weak));
        host.event(weak, confirm(strong, weak));
    }
    host.drain();
    // A strong relay asks for a seat: the host takes its own parent's, and hands the weak
    // relay on once the strong one delivers.
    host.reserve_host_with_offer(20);
    let published = host.published();
    assert_eq!(confirms_to(&published), vec![keys(20).public_key()]);
    assert!(drops_to(&published).is_empty(), "{published:?}");
    host.link(20, LinkInput::Connected);
    let out = host.drain();
    assert_eq!(
        drops_to(&published_in(&out)),
        vec![keys(10).public_key()],
        "the strong relay's weak parent moves, its subtree with it"
    );
    assert!(host.me.routing().children.contains(&keys(10).public_key()));
    // The next strong relay waits: a relay's seat changes hands once every 10 s at most.
    host.advance(RELAY_HAND_ON_EVERY.as_millis() as Millis / 2);
    host.event(21, reserve(21, 1));
    assert_eq!(drops_to(&host.published()), vec![keys(21).public_key()]);
    host.advance(RELAY_HAND_ON_EVERY.as_millis() as Millis / 2);
    host.drain();
    host.event(21, reserve(21, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(21).public_key()]);
    host.offer_and_connect(21);
    assert_eq!(drops_to(&host.published()), vec![keys(11).public_key()]);
    host.advance(RELAY_HAND_ON_EVERY.as_millis() as Millis);
    host.event(22, reserve(22, 1));
    host.offer_and_connect(22);
    assert_eq!(drops_to(&host.published()), vec![keys(12).public_key()]);
    // Strong relays hold every seat now: none is handed on for one like it.
    host.advance(RELAY_HAND_ON_EVERY.as_millis() as Millis);
    host.event(23, join(5_000));
    host.event(23, reserve(23, 1));
    let published = host.published();
    assert!(confirms_to(&published).is_empty(), "{published:?}");
    assert_eq!(drops_to(&published), vec![keys(23).public_key()]);
}

#[test]
fn a_flood_of_requests_is_confirmed_only_as_fast_as_relays_let_confirms_through() {
    // 44 free outputs, and 40 requests in one instant (a shallow seat every sample shows).
    let mut host = Alone::new(1, 1, wifi(5_000));
    host.stored_end();
    for n in 10..70 {
        host.event(n, join(100));
    }
    host.advance(10_000);
    host.drain();
    for n in 10..50 {
        host.event(n, reserve(n, 1));
    }
    let published = host.published();
    let confirmed = confirms_to(&published).len();
    // Relays let 30 events through at once and 10 a second after: each CONFIRM and its ICE
    // are two, and none may come more than 1.5 s late.
    assert!(
        (18..=22).contains(&confirmed),
        "{confirmed} confirmed at once"
    );
    assert!(
        drops_to(&published).is_empty(),
        "the rest hear nothing, and ask elsewhere"
    );
    assert_eq!(
        host.me.stats().rejected.get("answering too fast").copied(),
        Some(40 - confirmed as u64)
    );
    // Two seconds on, ten more CONFIRMs are on time again.
    host.advance(2_000);
    host.drain();
    for n in 50..70 {
        host.event(n, reserve(n, 1));
    }
    let again = confirms_to(&host.published()).len();
    assert!((9..=11).contains(&again), "{again}");
}

fn published_in(outputs: &[Output]) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Publish(Publication { message, .. }) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn closes_link_to_key(outputs: &[Output], peer: PublicKey) -> bool {
    outputs
        .iter()
        .any(|o| matches!(o, Output::Link(LinkOp::Close(p)) if *p == peer))
}

#[test]
fn a_leaf_whose_seat_is_handed_on_keeps_the_audio_until_its_new_parent_delivers() {
    let mut me = linked_to_a_host_of_our_dialect();
    let host = keys(1).public_key();
    // Another listener (7) hears the host and has room.
    me.delivering_under_the_host(7, 2_000);
    me.advance(2_000);
    me.drain();
    // The host hands our seat on to a stronger relay: its DROP says so, its audio goes on.
    me.event(1, drop_of(5, 0));
    let out = me.drain();
    assert!(!closes_link_to_key(&out, host), "{out:?}");
    assert_eq!(
        me.me.links().get(&host).map(|l| l.kind),
        Some(LinkKind::Retiring)
    );
    assert!(me.me.routing().upstream.contains(&host));
    assert_eq!(me.me.pending(), Some((keys(7).public_key(), false)));
    // 7 confirms and delivers: the host's link closes, without a DROP (the host sent one).
    me.event(7, confirm_carrying(5, 7, Some("v=0 answer")));
    me.link(7, LinkInput::Connected);
    let out = me.drain();
    assert!(closes_link_to_key(&out, host), "{out:?}");
    assert!(drops_to(&published_in(&out)).is_empty(), "{out:?}");
    assert_eq!(me.me.stats().parent, Some(keys(7).public_key()));
}

#[test]
fn a_parent_that_drops_us_and_closes_the_link_is_left() {
    let mut me = linked_to_a_host_of_our_dialect();
    let host = keys(1).public_key();
    me.advance(2_000);
    me.drain();
    me.event(1, drop_of(5, 0));
    // Its goodbye on the link follows (or came first): the link goes, nothing is kept.
    me.host_link(LinkInput::Goodbye);
    assert!(me.me.links().get(&host).is_none());
    assert!(!me.me.routing().upstream.contains(&host));
}

#[test]
fn a_confirmed_parent_that_never_connects_is_dropped_and_avoided() {
    let mut me = Alone::new(5, 1, wifi(2_000));
    me.event(
        1,
        Message::Create(SpaceInfo {
            host_metrics: wifi(5_000),
            ..SpaceInfo::default()
        }),
    );
    me.event(2, join(5_000));
    // Member 2 already hangs below the host, with room of its own.
    me.event(2, reserve(2, 1));
    me.event(1, confirm(2, 1));
    me.event(1, delivering(2, 1));
    me.stored_end();
    let asked = me.me.pending().map(|(peer, _)| peer);
    assert_eq!(asked, Some(keys(1).public_key()), "the host has room");
    me.drain();
    me.event(
        1,
        Message::Confirm(Reservation {
            requester: keys(5).public_key(),
            confirmer: keys(1).public_key(),
            role: None,
            standby: false,
            sdp: None,
            before_read: false,
        }),
    );
    assert!(me.drain().contains(&Output::Link(LinkOp::Open {
        peer: keys(1).public_key(),
        within: None
    })));
    // The host answers, but the link never connects.
    me.event(1, answer(5));
    me.advance(CONNECT_DEADLINE.as_millis() as Millis - 1);
    assert!(drops_to(&me.published()).is_empty(), "not yet");
    me.advance(1);
    let published = me.published();
    assert_eq!(drops_to(&published), vec![keys(1).public_key()]);
    assert_eq!(me.me.stats().parent, None);
    // The next search passes the host over and asks the other member.
    me.advance(SEARCH_AGAIN.as_millis() as Millis);
    assert_eq!(
        me.me.pending().map(|(peer, _)| peer),
        Some(keys(2).public_key())
    );
}

#[test]
fn a_reservation_to_the_host_from_a_key_not_seen_yet_is_a_join_and_a_late_join_still_counts() {
    let mut host = Alone::new(1, 1, wifi(2_000));
    host.stored_end();
    // A RESERVE before any JOIN: a draft-literal client that never sends one, or a relay
    // that handed us the RESERVE first (different authors, no order). Either way a listener.
    host.event(7, reserve(7, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(7).public_key()]);
    assert!(
        host.me
            .space()
            .members()
            .contains_key(&keys(7).public_key())
    );
    // Its JOIN, signed earlier, arrives later: its metrics still count.
    host.now -= 1_000;
    host.event(7, join(1_000));
    let member = &host.me.space().members()[&keys(7).public_key()];
    assert_eq!(member.metrics.upload_kbps, 1_000);
    // A removed key is no listener.
    host.event(
        1,
        Message::Remove {
            target: keys(8).public_key(),
        },
    );
    host.event(8, reserve(8, 1));
    assert!(confirms_to(&host.published()).is_empty());
}

#[test]
fn a_silent_parent_is_kept_and_its_return_is_noticed() {
    let mut world = world_of(2_000);
    let listener = world.join(wifi(2_000), 2_000.0);
    world.run_until(T0 + 5_000);
    let host = *world.host();
    assert_eq!(world.node(listener).participant.stats().parent, Some(host));
    let reservations = world.node(listener).participant.stats().reservations;
    // The host goes quiet (a client that sends nothing while muted): silence alone costs
    // no parent, and there is nobody above the host to move to.
    world.link_input(listener, 0, LinkInput::Stalled);
    world.run_until(T0 + 30_000);
    let stats = world.node(listener).participant.stats().clone();
    assert_eq!(stats.parent, Some(host));
    assert_eq!(stats.upstream_lost, 0);
    assert_eq!(stats.reservations, reservations, "no new reservation");
    world.link_input(listener, 0, LinkInput::Resumed);
    let link = world
        .node(listener)
        .participant
        .links()
        .get(&host)
        .cloned()
        .expect("still linked");
    assert!(link.delivers());
    // ICE saying the path is gone is another matter.
    world.link_input(listener, 0, LinkInput::Disconnected);
    assert_eq!(world.node(listener).participant.stats().upstream_lost, 1);
}

/// A world whose host announces (and has) `host_kbps`.
fn world_of(host_kbps: u32) -> World {
    World::new(
        7,
        NetworkModel::default(),
        wifi(host_kbps),
        f64::from(host_kbps),
    )
}

/// `n` listeners on Wi-Fi with `kbps` of uplink (announced and real) joining `world`, `apart`
/// ms from one another.
fn join_apart(world: &mut World, n: usize, kbps: u32, apart: Millis) -> Vec<NodeId> {
    (0..n)
        .map(|_| {
            let id = world.join(wifi(kbps), f64::from(kbps));
            world.run_until(world.now() + apart);
            id
        })
        .collect()
}

/// Runs `world` for `duration` ms, sampling every 100 ms; returns, per node, the longest
/// stretch (ms) it did not hear the host after first hearing it.
fn run_sampled(world: &mut World, duration: Millis) -> Vec<Millis> {
    let until = world.now() + duration;
    let mut gaps = vec![0; world.nodes().len()];
    let mut since: Vec<Option<Millis>> = vec![None; world.nodes().len()];
    while world.now() < until {
        let now = world.now() + 100;
        world.run_until(now);
        let hearing = world.sample();
        gaps.resize(world.nodes().len(), 0);
        since.resize(world.nodes().len(), None);
        for (id, node) in world.nodes().iter().enumerate().skip(1) {
            if !node.alive || node.first_audio.is_none() {
                continue;
            }
            if hearing[id] >= 0.9 {
                since[id] = None;
            } else {
                let start = *since[id].get_or_insert(now - 100);
                gaps[id] = gaps[id].max(now - start);
            }
        }
    }
    gaps
}

fn everyone_hears(world: &mut World, nodes: &[NodeId]) -> bool {
    let hearing = world.hearing();
    nodes.iter().all(|id| hearing[*id] >= 0.9)
}

#[test]
fn weak_listeners_first_then_strong_ones_all_hear() {
    for host_kbps in [200, 400] {
        let mut world = world_of(host_kbps);
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(world.join(wifi(40), 40.0));
            world.run_until(world.now() + 300);
        }
        for _ in 0..8 {
            listeners.push(world.join(wifi(5_000), 5_000.0));
            world.run_until(world.now() + 300);
        }
        run_sampled(&mut world, 20_000);
        let hearing = world.hearing();
        assert!(
            everyone_hears(&mut world, &listeners),
            "host at {host_kbps} kbit/s: {:?}",
            listeners.iter().map(|id| hearing[*id]).collect::<Vec<_>>()
        );
        // Strong relays took seats at the host that weak listeners held.
        let host_children: Vec<NodeId> = listeners
            .iter()
            .copied()
            .filter(|id| world.depth(*id) == Some(1))
            .collect();
        assert!(
            host_children.iter().any(|id| !listeners[..3].contains(id)),
            "host at {host_kbps}: a strong relay sits at the host"
        );
    }
}

/// A host feeding two strong relays and six more listeners below them, settled and hearing;
/// returns the world, every listener and the first relay's children. `lower` sets up the six.
fn two_relays_and_six_below(
    lower: impl Fn(&mut ParticipantConfig),
) -> (World, Vec<NodeId>, Vec<NodeId>) {
    let mut world = world_of(240);
    let mut listeners = Vec::new();
    for _ in 0..2 {
        listeners.push(world.join(wifi(5_000), 5_000.0));
        world.run_until(world.now() + 500);
    }
    for _ in 0..6 {
        listeners.push(world.join_configured(wifi(1_000), 1_000.0, &lower));
        world.run_until(world.now() + 500);
    }
    run_sampled(&mut world, 10_000);
    assert!(everyone_hears(&mut world, &listeners));
    let relay = *world.node(listeners[0]).participant.me();
    let children: Vec<NodeId> = listeners[2..]
        .iter()
        .copied()
        .filter(|id| world.node(*id).participant.stats().parent == Some(relay))
        .collect();
    assert!(!children.is_empty(), "the first relay feeds someone");
    (world, listeners, children)
}

/// Crashes the first relay of [`two_relays_and_six_below`], checks every other listener hears
/// 10 s later, and returns each node's longest gap meanwhile.
fn crash_first_relay(world: &mut World, listeners: &[NodeId]) -> Vec<Millis> {
    world.crash(listeners[0]);
    let gaps = run_sampled(world, 10_000);
    assert!(everyone_hears(world, &listeners[1..]), "a new parent found");
    gaps
}

#[test]
fn a_relaying_listener_crashes_and_its_children_keep_hearing_through_their_backups() {
    // The host feeds two strong relays; six more listeners hang below them with backups.
    let (mut world, listeners, children) = two_relays_and_six_below(|_| {});
    for child in &children {
        assert!(
            world.node(*child).participant.stats().standby.is_some(),
            "settled children have a warm backup"
        );
    }
    let gaps = crash_first_relay(&mut world, &listeners);
    for child in &children {
        // The backup already delivers: under 100 ms (one sample).
        assert!(
            gaps[*child] < 100,
            "child {child} went {} ms without audio",
            gaps[*child]
        );
        assert!(world.node(*child).participant.stats().standby_takeovers >= 1);
    }
}

#[test]
fn without_warm_backups_a_relay_crash_costs_its_children_a_gap_they_recover_from() {
    // The same tree as above, the lower listeners keeping no backup.
    let (mut world, listeners, children) =
        two_relays_and_six_below(|c: &mut ParticipantConfig| c.warm_backup = false);
    for id in &listeners[2..] {
        assert_eq!(world.node(*id).participant.stats().standby, None);
    }
    let gaps = crash_first_relay(&mut world, &listeners);
    for child in &children {
        // Nothing covers the stall window (300 ms) and the new reservation: 500-700 ms here,
        // against none with a backup (the test above).
        assert!(
            gaps[*child] >= 300,
            "child {child} went only {} ms without audio",
            gaps[*child]
        );
    }
}

#[test]
fn a_promoted_listener_moves_under_the_host_and_back_down_when_demoted() {
    let mut world = world_of(240);
    let mut listeners = Vec::new();
    for _ in 0..5 {
        listeners.push(world.join(wifi(3_000), 3_000.0));
        world.run_until(world.now() + 500);
    }
    run_sampled(&mut world, 5_000);
    let host = *world.host();
    let deep = *listeners
        .iter()
        .find(|id| world.depth(**id) == Some(2))
        .expect("someone at depth 2");
    let target = *world.node(deep).participant.me();
    world.command(0, UserCommand::Publish(Message::PromoteSpeaker { target }));
    let gaps = run_sampled(&mut world, 5_000);
    assert_eq!(world.node(deep).participant.stats().parent, Some(host));
    assert_eq!(world.node(deep).participant.stats().role, Role::Speaker);
    assert!(everyone_hears(&mut world, &listeners));
    assert!(gaps[deep] <= 200, "moving up cost {} ms", gaps[deep]);
    world.command(0, UserCommand::Publish(Message::Demote { target }));
    let gaps = run_sampled(&mut world, 15_000);
    assert_eq!(world.node(deep).participant.stats().role, Role::Listener);
    assert_ne!(
        world.node(deep).participant.stats().parent,
        Some(host),
        "the host is over capacity: the demoted listener moved down"
    );
    assert!(world.node(0).participant.stats().children <= 2);
    assert!(everyone_hears(&mut world, &listeners));
    assert!(gaps[deep] <= 200, "moving down cost {} ms", gaps[deep]);
}

#[test]
fn a_relay_switching_to_cellular_hands_its_weakest_children_on_and_everyone_hears() {
    let mut world = world_of(120);
    let relay = world.join(wifi(10_000), 10_000.0);
    world.run_until(world.now() + 2_000);
    let mut children = Vec::new();
    for kbps in [40, 60, 3_000, 4_000, 2_000] {
        children.push(world.join(wifi(kbps), f64::from(kbps)));
        world.run_until(world.now() + 500);
    }
    run_sampled(&mut world, 5_000);
    assert_eq!(world.node(relay).participant.stats().children, 5);
    // Cellular at 600 kbit/s: a quarter of it carries 2 streams.
    let cellular = NetworkMetrics {
        connection: ConnectionType::Cellular,
        ..wifi(600)
    };
    world.set_uplink(relay, 600.0);
    world.command(relay, UserCommand::NetworkChanged(cellular));
    assert_eq!(world.node(relay).participant.capacity(), 2);
    let kept: Vec<NodeId> = children
        .iter()
        .copied()
        .filter(|c| {
            let key = world.node(*c).participant.me();
            world.node(relay).participant.links().get(key).is_some()
        })
        .collect();
    assert_eq!(
        kept,
        vec![children[2], children[3]],
        "the two strongest stay"
    );
    run_sampled(&mut world, 10_000);
    let mut everyone = children.clone();
    everyone.push(relay);
    assert!(everyone_hears(&mut world, &everyone));
}

#[test]
fn relays_that_reorder_authors_by_half_a_second_still_give_everyone_a_parent() {
    let network = NetworkModel {
        relay_ms: (5, 100),
        reorder_ms: 500,
        ..NetworkModel::default()
    };
    let mut world = World::new(11, network, wifi(1_000), 1_000.0);
    let listeners: Vec<NodeId> = (0..20)
        .map(|n| {
            world.run_until(world.now() + 50);
            world.join(wifi(if n % 3 == 0 { 60 } else { 3_000 }), 3_000.0)
        })
        .collect();
    run_sampled(&mut world, 30_000);
    assert!(everyone_hears(&mut world, &listeners));
    // The host (node 0) included: it reads every newcomer's JOIN and, at once after it, the
    // RESERVE asked of it first.
    let everyone: Vec<NodeId> = std::iter::once(0)
        .chain(listeners.iter().copied())
        .collect();
    let rejected: u64 = everyone
        .iter()
        .map(|id| {
            world
                .node(*id)
                .participant
                .stats()
                .rejected
                .get("not_a_member")
                .copied()
                .unwrap_or(0)
        })
        .sum();
    let all: Vec<_> = everyone
        .iter()
        .map(|id| world.node(*id).participant.stats().rejected.clone())
        .collect();
    assert!(
        rejected > 0,
        "the reordering was real: events arrived before their author {all:?}"
    );
}

#[test]
fn a_deep_relay_climbs_when_the_host_gains_room() {
    let mut world = world_of(240);
    let mut listeners = Vec::new();
    // Two relays of two seats at the host, four more below them: the seats of depth 2.
    for _ in 0..6 {
        listeners.push(world.join(wifi(240), 240.0));
        world.run_until(world.now() + 500);
    }
    run_sampled(&mut world, 5_000);
    // A stronger relay (7 outputs, too few to take a two-seat leaf's place) ends at depth 3.
    let strong = world.join(wifi(800), 800.0);
    listeners.push(strong);
    run_sampled(&mut world, 5_000);
    assert_eq!(world.depth(strong), Some(3));
    // The host moves to a better network: seventeen seats.
    world.set_uplink(0, 2_000.0);
    world.command(0, UserCommand::NetworkChanged(wifi(2_000)));
    let gaps = run_sampled(&mut world, 15_000);
    assert_eq!(world.depth(strong), Some(1), "pulled up next to the host");
    assert!(everyone_hears(&mut world, &listeners));
    assert!(gaps[strong] <= 200, "climbing cost {} ms", gaps[strong]);
}

#[test]
fn requesters_that_never_offer_lose_their_seats_and_are_refused_for_a_while() {
    // Sybils take the host's three seats and never start a link.
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    for sybil in 10..13 {
        host.event(sybil, join(2_000_000));
        host.event(sybil, reserve(sybil, 1));
    }
    assert_eq!(confirms_to(&host.published()).len(), 3);
    host.advance(NEGOTIATE_DEADLINE.as_millis() as Millis - 1);
    assert!(drops_to(&host.published()).is_empty(), "not yet");
    host.advance(1);
    let mut dropped = drops_to(&host.published());
    dropped.sort();
    let mut sybils: Vec<PublicKey> = (10..13).map(|n| keys(n).public_key()).collect();
    sybils.sort();
    assert_eq!(dropped, sybils, "every seat goes back");
    // They ask again at once, even with the work the host now asks: refused, and a real
    // listener gets a seat.
    host.event_with_work(10, reserve(10, 1), PRICE_BITS);
    assert_eq!(drops_to(&host.published()), vec![keys(10).public_key()]);
    assert_eq!(host.me.stats().rejected.get("avoided requester"), Some(&1));
    host.event(20, join(300));
    host.event_with_work(20, reserve(20, 1), PRICE_BITS);
    assert_eq!(confirms_to(&host.published()), vec![keys(20).public_key()]);
    // After the first avoidance (and the pressure's window), one more chance; failing again
    // costs twice as long.
    host.advance(AVOID_FOR.as_millis() as Millis + 1);
    host.event(11, reserve(11, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(11).public_key()]);
    host.advance(NEGOTIATE_DEADLINE.as_millis() as Millis);
    assert!(drops_to(&host.published()).contains(&keys(11).public_key()));
    host.advance(AVOID_FOR.as_millis() as Millis + 1);
    host.event(11, reserve(11, 1));
    assert_eq!(
        drops_to(&host.published()),
        vec![keys(11).public_key()],
        "still avoided: the second strike lasts twice as long"
    );
    // Ten clean minutes after that avoidance ends, its failures are forgotten: a new one
    // costs the first 30 s again, not four times that.
    host.advance(AVOID_FOR.as_millis() as Millis + AVOID_MAX.as_millis() as Millis);
    host.event(11, reserve(11, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(11).public_key()]);
    host.advance(NEGOTIATE_DEADLINE.as_millis() as Millis);
    host.drain();
    host.advance(AVOID_FOR.as_millis() as Millis + 1);
    host.event(11, reserve(11, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(11).public_key()]);
}

#[test]
fn a_parent_that_confirms_and_never_answers_is_left_for_the_next_candidate() {
    let mut me = Alone::new(5, 1, wifi(300));
    me.event(
        1,
        Message::Create(SpaceInfo {
            name: "s".into(),
            ..SpaceInfo::default()
        }),
    );
    // A Sybil with a huge uplink hangs below the host, next to an honest relay; it really
    // linked with the host, which says so.
    for relay in [9, 2] {
        me.delivering_under_the_host(relay, 2_000_000);
    }
    me.stored_end();
    let (first, _) = me.me.pending().expect("a candidate");
    let author = [1, 2, 9]
        .into_iter()
        .find(|n| keys(*n).public_key() == first)
        .expect("one of the members");
    me.drain();
    // It confirms at once, then never answers our offer.
    me.event(author, confirm(5, author));
    assert!(me.drain().contains(&Output::Link(LinkOp::Open {
        peer: first,
        within: None
    })));
    me.advance(NEGOTIATE_DEADLINE.as_millis() as Millis - 1);
    assert!(drops_to(&me.published()).is_empty(), "not yet");
    me.advance(1);
    assert_eq!(drops_to(&me.published()), vec![first]);
    assert_eq!(me.me.stats().upstream_lost, 1);
    me.advance(SEARCH_AGAIN.as_millis() as Millis);
    let (next, _) = me
        .me
        .pending()
        .expect("the next candidate is asked at once");
    assert_ne!(next, first, "the silent one is avoided");
}

#[test]
fn offers_from_a_member_we_never_confirmed_get_no_answer_and_are_counted() {
    let mut me = Alone::new(5, 1, wifi(2_000));
    me.stored_end();
    me.event(9, join(300));
    me.drain();
    for n in 0..200u32 {
        me.event(
            9,
            Message::Offer {
                target: keys(5).public_key(),
                sdp: format!("v=0 {n}"),
            },
        );
    }
    let answered = me
        .drain()
        .into_iter()
        .filter(|o| matches!(o, Output::Link(LinkOp::Answer { .. })))
        .count();
    assert_eq!(
        answered, 0,
        "no PeerConnection, no candidates for a stranger"
    );
    assert_eq!(me.me.stats().rejected.get("unsolicited offer"), Some(&200));
}

#[test]
fn children_of_a_frozen_relay_wait_for_it_and_those_with_a_backup_hear_on() {
    // A one-seat host (120 kbit/s): everyone hangs below one relay, nobody else has room.
    let mut world = world_of(120);
    let relay = world.join(wifi(2_000), 2_000.0);
    world.run_until(world.now() + 1_000);
    let children = join_apart(&mut world, 3, 300, 500);
    run_sampled(&mut world, 15_000);
    assert_eq!(world.depth(relay), Some(1));
    assert!(everyone_hears(&mut world, &children));
    let before: Vec<u64> = children
        .iter()
        .map(|c| world.node(*c).participant.stats().reservations)
        .collect();
    world.freeze(relay, 3_000);
    let gaps = run_sampled(&mut world, 10_000);
    for (child, reservations) in children.iter().zip(before) {
        let stats = world.node(*child).participant.stats();
        assert!(gaps[*child] <= 3_300, "child {child}: {} ms", gaps[*child]);
        assert_eq!(stats.reservations, reservations, "nobody re-reserves");
        assert_eq!(stats.upstream_lost, 0, "nobody gives up its parent");
    }
    assert!(everyone_hears(&mut world, &children));

    // Two seats at the host: two relays, and the listeners below one have warm backups on
    // the other.
    let mut world = world_of(240);
    let relays = join_apart(&mut world, 2, 2_000, 500);
    let listeners = join_apart(&mut world, 4, 100, 500);
    run_sampled(&mut world, 20_000);
    let frozen = relays[0];
    let frozen_key = *world.node(frozen).participant.me();
    let below: Vec<NodeId> = listeners
        .iter()
        .copied()
        .filter(|l| world.node(*l).participant.stats().parent == Some(frozen_key))
        .collect();
    assert!(!below.is_empty(), "listeners hang below the first relay");
    assert!(
        below
            .iter()
            .all(|l| world.node(*l).participant.stats().standby.is_some()),
        "each has a warm backup"
    );
    world.freeze(frozen, 3_000);
    let gaps = run_sampled(&mut world, 10_000);
    for l in &below {
        assert!(
            gaps[*l] <= 200,
            "listener {l}: {} ms without audio",
            gaps[*l]
        );
    }
    assert!(everyone_hears(&mut world, &listeners));
}

/// The namespace suite's frozen relay, in every order the seeds give: a two-seat host, five
/// listeners of one kind joining 400 ms apart, each of them that forwards frozen for 3 s in a
/// world of its own. Whoever depends on it (as parent or as warm backup) must neither lose
/// audio nor be cut off by a peer that makes it its own backup: a backup link and a child
/// link to the same peer are one link, and choosing a peer we feed closes its feed.
#[test]
fn a_frozen_relay_costs_no_other_listener_its_audio_in_any_arrival_order() {
    for seed in 0..24 {
        let settle = |seed: u64| {
            let mut world = World::new(seed, NetworkModel::default(), wifi(240), 240.0);
            // The space is out before anyone joins, as the suite's host prints it first.
            world.run_until(world.now() + 1_000);
            let listeners = join_apart(&mut world, 5, 5_000, 400);
            run_sampled(&mut world, 10_000);
            assert!(
                everyone_hears(&mut world, &listeners),
                "seed {seed}: settled"
            );
            (world, listeners)
        };
        let (world, listeners) = settle(seed);
        let feeding: Vec<usize> = (0..listeners.len())
            .filter(|n| {
                let stats = world.node(listeners[*n]).participant.stats();
                stats.children + stats.standby_children > 0
            })
            .collect();
        for frozen in feeding {
            let (mut world, listeners) = settle(seed);
            world.freeze(listeners[frozen], 3_000);
            let gaps = run_sampled(&mut world, 10_000);
            for (n, id) in listeners.iter().enumerate().filter(|(n, _)| *n != frozen) {
                assert!(
                    gaps[*id] <= 200,
                    "seed {seed}, listener {frozen} frozen: listener {n} went {} ms without audio",
                    gaps[*id]
                );
            }
            let others: Vec<NodeId> = listeners
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != frozen)
                .map(|(_, id)| *id)
                .collect();
            assert!(
                everyone_hears(&mut world, &others),
                "seed {seed}: all hear after"
            );
        }
    }
}

/// Listeners waiting for a space to open join the moment its host does, alone or as a crowd
/// larger than the host's seats: their first RESERVE may reach the host before it has read
/// its own space (it parks it, and must not replay it after a newer one), each end reads the
/// other's events out of order, and a crowd's first asks all read the seats free (the host
/// says no to those it cannot take instead of leaving them to their timeout). Each listener
/// hears within two seconds.
#[test]
fn listeners_that_join_as_the_space_opens_hear_at_once() {
    for (seed, host_kbps, apart) in (0..12).flat_map(|seed| {
        [(240, 0), (240, 400), (5_000, 0), (5_000, 400)].map(|(kbps, ms)| (seed, kbps, ms))
    }) {
        let mut world = World::new(
            seed,
            NetworkModel::default(),
            wifi(host_kbps),
            f64::from(host_kbps),
        );
        let listeners: Vec<NodeId> = (0..5)
            .map(|_| {
                let id = world.join(wifi(5_000), 5_000.0);
                run_sampled(&mut world, apart);
                id
            })
            .collect();
        run_sampled(&mut world, 8_000);
        for id in &listeners {
            let node = world.node(*id);
            let first = node.first_audio.map(|at| at - node.joined_at);
            assert!(
                first.is_some_and(|ms| ms <= 2_000),
                "seed {seed}, host {host_kbps} kbit/s, {apart} ms apart, node {id}: first \
                 audio after {first:?} ms"
            );
        }
    }
}

/// The prices in the refusals among `messages`, by target.
fn prices(messages: &[Message]) -> Vec<(PublicKey, u8)> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Drop { target, price, .. } if *price > 0 => Some((*target, *price)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_host_under_pressure_admits_only_reservations_that_carry_work_until_it_passes() {
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    // A crowd of keys: three take the seats, the rest are refused for lack of room, which
    // is no pressure (honest crowds do that too).
    for sybil in 30..45 {
        host.event(sybil, join(2_000_000));
        host.event(sybil, reserve(sybil, 1));
    }
    let published = host.published();
    assert_eq!(confirms_to(&published).len(), 3);
    assert!(
        prices(&published).is_empty(),
        "refusals for lack of room carry no price"
    );
    // The three never set up their links: that is pressure, and the price is announced
    // before the seats free up, so that whoever sees a free seat knows its price.
    host.advance(NEGOTIATE_DEADLINE.as_millis() as Millis);
    let published = host.published();
    assert!(
        matches!(published.first(), Some(Message::Join(_))),
        "the price first: {published:?}"
    );
    assert_eq!(drops_to(&published).len(), 3);
    let announced: Vec<u8> = published
        .iter()
        .filter_map(|m| match m {
            Message::Join(info) => Some(info.price),
            _ => None,
        })
        .collect();
    assert_eq!(
        announced,
        vec![PRICE_BITS],
        "the price is announced once, in a JOIN"
    );
    // A newcomer without work is refused with the price; with it, it gets a seat.
    host.event(20, join(300));
    host.event(20, reserve(20, 1));
    let published = host.published();
    assert_eq!(
        prices(&published),
        vec![(keys(20).public_key(), PRICE_BITS)]
    );
    assert!(confirms_to(&published).is_empty());
    assert_eq!(host.me.stats().rejected.get("unpaid reservation"), Some(&1));
    host.event_with_work(20, reserve(20, 1), PRICE_BITS);
    assert_eq!(confirms_to(&host.published()), vec![keys(20).public_key()]);
    // Less work than asked is not enough.
    host.event(21, join(300));
    host.event_with_work(21, reserve(21, 1), PRICE_BITS - 1);
    assert_eq!(
        prices(&host.published()),
        vec![(keys(21).public_key(), PRICE_BITS)]
    );
    // Once the window passes without pressure, reservations are free again, and say so.
    host.advance(PRESSURE_WINDOW.as_millis() as Millis + 1);
    assert!(
        host.published()
            .iter()
            .any(|m| matches!(m, Message::Join(info) if info.price == 0))
    );
    host.event(21, reserve(21, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(21).public_key()]);
}

#[test]
fn a_host_that_leaves_our_reservation_unanswered_is_asked_again_as_soon_as_after_a_refusal() {
    // A host under a flood of requests stops refusing before it stops admitting (`Outbox`):
    // its silence is a busy host, not a dead one, and no other member has a seat to offer.
    let mut me = asking_the_host(5);
    assert_eq!(me.me.pending().map(|(p, _)| p), Some(keys(1).public_key()));
    me.drain();
    me.advance(RESERVE_TIMEOUT.as_millis() as Millis);
    assert_eq!(drops_to(&me.published()), vec![keys(1).public_key()]);
    assert_eq!(me.me.pending(), None);
    let gave_up = me.now;
    let asked_again = std::iter::from_fn(|| {
        me.advance(50);
        Some((me.now, reserves_to(&me.published())))
    })
    .take(1_000)
    .find(|(_, to)| !to.is_empty());
    let (at, to) = asked_again.expect("the host is asked again");
    assert_eq!(to, vec![keys(1).public_key()]);
    let after = at - gave_up;
    let kept_away = REFUSED_AVOID.as_millis() as Millis;
    assert!(
        (kept_away..=kept_away + SEARCH_AGAIN.as_millis() as Millis).contains(&after),
        "asked again {after} ms later"
    );
}

/// A listener (`me`) of a space the host (1) created, asking for a seat once it read it.
fn asking_the_host(me: u8) -> Alone {
    let mut alone = Alone::new(me, 1, wifi(300));
    alone.event(1, created());
    alone.stored_end();
    alone
}

/// The host's CREATE.
fn created() -> Message {
    Message::Create(SpaceInfo {
        name: "s".into(),
        host_metrics: wifi(2_000),
        ..SpaceInfo::default()
    })
}

/// The RESERVEs in `out`, with the work each carries.
fn asks_with_work(out: &[Output]) -> Vec<(PublicKey, u8)> {
    reserves_in(out)
        .into_iter()
        .map(|(peer, work, _)| (peer, work))
        .collect()
}

/// The host's JOIN announcing `price` bits of work.
fn host_join(price: u8) -> Message {
    Message::Join(MemberInfo {
        name: "host".into(),
        metrics: wifi(2_000),
        price,
        nip44: false,
        dtls: None,
        seat: None,
    })
}

#[test]
fn a_price_raised_while_we_ask_is_paid_at_once() {
    // The host came under pressure right after our ask left: it considers paid asks only,
    // and under a flood it refuses the rest silently.
    let mut me = asking_the_host(5);
    assert_eq!(me.me.pending(), Some((keys(1).public_key(), false)));
    me.drain();
    me.event(1, host_join(PRICE_BITS));
    let out = me.drain();
    let asks = asks_with_work(&out);
    assert_eq!(asks, vec![(keys(1).public_key(), PRICE_BITS)], "{out:?}");
    // Announced again, or beyond what a seat is worth: the standing ask stays.
    me.event(1, host_join(PRICE_BITS));
    me.event(1, host_join(MAX_PAY + 1));
    assert!(reserves_to(&me.published()).is_empty());
}

#[test]
fn a_priced_refusal_is_paid_at_once_and_a_flood_gets_few_refusals() {
    let mut me = asking_the_host(5);
    assert_eq!(me.me.pending().map(|(p, _)| p), Some(keys(1).public_key()));
    me.drain();
    me.event(1, drop_of(5, PRICE_BITS));
    let out = me.drain();
    let paid = asks_with_work(&out);
    assert_eq!(paid, vec![(keys(1).public_key(), PRICE_BITS)], "{out:?}");
    // A price announced in a member's JOIN is paid up front, with no refusal first.
    let mut other = Alone::new(6, 1, wifi(300));
    other.event(1, created());
    other.event(1, host_join(PRICE_BITS));
    other.stored_end();
    let first = asks_with_work(&other.drain());
    assert_eq!(first, vec![(keys(1).public_key(), PRICE_BITS)]);
    // The work takes its time on a slow phone: the wait for the CONFIRM starts once the
    // RESERVE is out, not when it was decided.
    other.advance(RESERVE_TIMEOUT.as_millis() as Millis * 2);
    other.me.handle_input(
        Input::WorkedReservationSent {
            confirmer: keys(1).public_key(),
        },
        other.now,
    );
    other.advance(RESERVE_TIMEOUT.as_millis() as Millis - 1);
    assert!(drops_to(&other.published()).is_empty(), "still waiting");
    assert_eq!(
        other.me.pending().map(|(p, _)| p),
        Some(keys(1).public_key())
    );
    // A price beyond what a seat is worth is not paid: the host is avoided instead.
    me.event(1, drop_of(5, MAX_PAY + 1));
    assert!(
        me.published()
            .iter()
            .all(|m| !matches!(m, Message::Reserve(_)))
    );

    // A host flooded with requests it must refuse answers a few, and no more.
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    for n in 0..200u8 {
        host.event(n.wrapping_add(40), join(100));
    }
    host.drain();
    for n in 0..200u8 {
        host.event(n.wrapping_add(40), reserve(n.wrapping_add(40), 1));
    }
    let refusals = drops_to(&host.published()).len();
    assert!(refusals <= 20, "{refusals} refusals in one instant");
    assert!(
        host.me
            .stats()
            .rejected
            .get("refused silently")
            .copied()
            .unwrap_or(0)
            >= 170
    );
}

#[test]
fn announcements_carry_the_capacity_in_max_audio_outputs() {
    let space = SpaceRef::new("tests", keys(1).public_key()).expect("id");
    let mut host = Participant::new(
        ParticipantConfig::new(keys(1).public_key(), space.clone(), wifi(400)),
        T0,
    );
    let mut listener = Participant::new(
        ParticipantConfig::new(keys(2).public_key(), space, wifi(40)),
        T0,
    );
    let announced = |p: &mut Participant| {
        std::iter::from_fn(|| p.poll_output()).find_map(|o| match o {
            Output::Publish(Publication {
                message: Message::Create(info),
                ..
            }) => Some(info.host_metrics.max_audio_outputs),
            Output::Publish(Publication {
                message: Message::Join(info),
                ..
            }) => Some(info.metrics.max_audio_outputs),
            _ => None,
        })
    };
    // Draft peers read 0 as "full": the host says how many it feeds (3 at 400 kbit/s).
    assert_eq!(announced(&mut host), Some(3));
    // A listener too weak to relay says 0, which is the truth for everyone.
    assert_eq!(announced(&mut listener), Some(0));
}

#[test]
fn private_payloads_go_in_clear_only_to_draft_peers_and_only_in_compatibility_mode() {
    let space = SpaceRef::new("tests", keys(1).public_key()).expect("id");
    for compat in [false, true] {
        let mut config = ParticipantConfig::new(keys(1).public_key(), space.clone(), wifi(2_000));
        config.draft_compat = compat;
        let mut host = Alone {
            me: Participant::new(config, T0),
            space: space.clone(),
            now: T0,
            serial: 0,
        };
        host.stored_end();
        // One of ours (announces NIP-44), and a draft-literal client (no JOIN at all).
        host.event(
            20,
            Message::Join(MemberInfo {
                name: "ours".into(),
                metrics: wifi(300),
                price: 0,
                nip44: true,
                dtls: None,
                seat: None,
            }),
        );
        host.drain();
        host.event(20, reserve(20, 1));
        host.event(21, reserve(21, 1));
        let clear: Vec<(PublicKey, bool)> = host
            .drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Publish(Publication {
                    message: Message::Confirm(r),
                    plaintext,
                    ..
                }) => Some((r.requester, plaintext)),
                _ => None,
            })
            .collect();
        assert_eq!(
            clear,
            vec![
                (keys(20).public_key(), false),
                (keys(21).public_key(), compat)
            ],
            "compat {compat}"
        );
        assert_eq!(host.me.plaintext_to(&keys(21).public_key()), compat);
    }
}

/// A newcomer (5) in a space whose host (1) has one seat, which a key with a huge uplink (9)
/// took a moment ago: maybe a relay, maybe a Sybil that will never link.
fn one_seat_just_taken() -> Alone {
    let mut me = Alone::new(5, 1, wifi(300));
    me.event(
        1,
        Message::Create(SpaceInfo {
            host_metrics: wifi(120),
            ..SpaceInfo::default()
        }),
    );
    me.event(9, join(2_000_000));
    me.event(9, reserve(9, 1));
    me.event(1, confirm(9, 1));
    me.stored_end();
    me
}

#[test]
fn a_seat_is_a_candidate_once_its_parent_says_it_delivers_or_it_has_stood_long_enough() {
    let mut me = one_seat_just_taken();
    assert_eq!(me.me.pending(), None, "an unproven seat is not tried");
    me.advance(SEARCH_AGAIN.as_millis() as Millis);
    assert_eq!(me.me.pending(), None, "nor later, while it is unproven");
    // The host says the link carries audio: now it is the best candidate.
    me.event(1, delivering(9, 1));
    me.advance(SEARCH_AGAIN.as_millis() as Millis);
    assert_eq!(
        me.me.pending().map(|(peer, _)| peer),
        Some(keys(9).public_key())
    );

    // A seat whose confirmer never says so (a client that does not know the tag) becomes a
    // candidate once it has stood longer than any set-up deadline.
    let mut me = one_seat_just_taken();
    me.advance((SEAT_PROVEN_SECS - 1) * 1_000);
    assert_eq!(me.me.pending(), None, "too young");
    me.advance(1_000);
    assert_eq!(
        me.me.pending().map(|(peer, _)| peer),
        Some(keys(9).public_key())
    );
}

#[test]
fn a_parent_says_a_tree_link_delivers_once_it_connects_and_never_for_backups() {
    let mut host = Alone::new(1, 1, wifi(2_000));
    host.stored_end();
    // 2 and 3 speak our dialect (NIP-44); 4 is another client, which would read one more
    // CONFIRM as a new one.
    let ours = |upload_kbps| match join(upload_kbps) {
        Message::Join(info) => Message::Join(MemberInfo {
            nip44: true,
            ..info
        }),
        other => other,
    };
    host.event(2, ours(2_000));
    host.event(2, reserve(2, 1));
    host.event(3, ours(2_000));
    host.event(
        3,
        Message::Reserve(Reservation {
            standby: true,
            ..reservation(3, 1)
        }),
    );
    host.event(4, join(2_000));
    host.event(4, reserve(4, 1));
    let published = host.published();
    assert_eq!(confirms_to(&published).len(), 3);
    assert!(
        !published
            .iter()
            .any(|m| matches!(m, Message::Delivering(_))),
        "not before the links connect"
    );
    for peer in [2, 3, 4] {
        host.link(peer, LinkInput::Connected);
    }
    let attested: Vec<PublicKey> = host
        .published()
        .iter()
        .filter_map(|m| match m {
            Message::Delivering(r) => Some(r.requester),
            _ => None,
        })
        .collect();
    assert_eq!(
        attested,
        vec![keys(2).public_key()],
        "our tree link only: not the backup, not the other client"
    );
    // Every member's view now holds a proven seat.
    assert!(matches!(
        host.me
            .space()
            .links()
            .get(&(keys(2).public_key(), keys(1).public_key())),
        Some(LinkState::Confirmed {
            delivering: true,
            ..
        })
    ));
}

#[test]
fn a_host_that_over_announces_its_uplink_learns_it_from_receiver_reports_and_everyone_hears() {
    // A phone on cellular whose platform says 5 Mbit/s up; its real uplink carries 5 streams.
    let mut world = World::new(5, NetworkModel::default(), wifi(5_000), 300.0);
    let listeners: Vec<NodeId> = (0..10)
        .map(|_| {
            world.run_until(world.now() + 300);
            world.join(wifi(3_000), 3_000.0)
        })
        .collect();
    run_sampled(&mut world, 3_000);
    let starving = world
        .hearing()
        .iter()
        .skip(1)
        .filter(|share| **share < 0.9)
        .count();
    assert!(
        starving > 0 || world.node(0).participant.stats().capacity_cuts > 0,
        "the over-announced host really starved its children at first"
    );
    run_sampled(&mut world, 30_000);
    let hearing = world.hearing();
    assert!(everyone_hears(&mut world, &listeners), "{hearing:?}");
    let host = world.node(0).participant.stats().clone();
    assert!(host.capacity_cuts > 0, "{host:?}");
    assert!(
        host.capacity <= 5 && host.children + host.standby_children <= 5,
        "the host feeds what its uplink carries: {host:?}"
    );
    // Everyone's view carries the measured figure, not the platform's.
    let announced = world.node(listeners[0]).participant.space().members()[world.host()]
        .metrics
        .upload_kbps;
    assert!(
        announced < 1_000,
        "the host now announces {announced} kbit/s"
    );
}

#[test]
fn an_unknown_uplink_starts_with_two_outputs_and_grows_on_clean_links() {
    let unknown = NetworkMetrics {
        upload_kbps: 0,
        ..wifi(0)
    };
    let mut host = Alone::new(1, 1, unknown);
    assert_eq!(host.me.capacity(), UNKNOWN_START, "unknown is not zero");
    host.stored_end();
    for child in [2, 3] {
        connect_child(&mut host, child);
    }
    assert_eq!(confirms_to(&host.published()).len(), 2);
    // Receiver reports stay clean: one more output, announced in the CREATE's metrics.
    for _ in 0..=(PROBE_AFTER / 1_000) {
        host.advance(1_000);
        for child in [2, 3] {
            host.link(child, LinkInput::Loss { permille: 0 });
        }
    }
    assert_eq!(host.me.capacity(), UNKNOWN_START + 1);
    let announced: Vec<u32> = host
        .published()
        .iter()
        .filter_map(|m| match m {
            Message::Create(info) => Some(info.host_metrics.max_audio_outputs),
            _ => None,
        })
        .collect();
    assert_eq!(announced, vec![UNKNOWN_START + 1]);
}

/// `child` joins host 1, reserves, offers, and its link connects.
fn connect_child(host: &mut Alone, child: u8) {
    host.event(child, join(2_000));
    host.event(child, reserve(child, 1));
    host.offer_and_connect(child);
}

impl Alone {
    /// A child we confirmed sends its offer (to the host, 1) and its link comes up.
    fn offer_and_connect(&mut self, child: u8) {
        self.event(
            child,
            Message::Offer {
                target: keys(1).public_key(),
                sdp: "v=0".into(),
            },
        );
        self.link(child, LinkInput::Connected);
    }
}

/// A host with eight connected children (capacity 44).
fn host_with_eight_children() -> Alone {
    let mut host = Alone::new(1, 1, wifi(5_000));
    host.stored_end();
    for child in 2..10 {
        connect_child(&mut host, child);
    }
    host
}

/// One receiver-report round every 500 ms: each child's loss from `permille_of(child)`.
fn report_round(host: &mut Alone, mut permille_of: impl FnMut(u8) -> u16) {
    host.advance(500);
    for child in 2..10 {
        let permille = permille_of(child);
        host.link(child, LinkInput::Loss { permille });
    }
}

#[test]
fn random_loss_on_ordinary_links_is_not_taken_for_a_saturated_uplink() {
    // 2 % of packets lost at random: a report covers 25 packets, so each reads 0, 4, 8 % ...
    let mut host = host_with_eight_children();
    let mut seed = 0x5EED_u64;
    let mut lost_of_25 = move || {
        (0..25)
            .filter(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (seed >> 33) % 1_000 < 20
            })
            .count() as u16
    };
    let mut spikes = 0;
    for _ in 0..240 {
        report_round(&mut host, |_| {
            let permille = lost_of_25() * 40;
            if permille >= 80 {
                spikes += 1;
            }
            permille
        });
    }
    assert!(
        spikes > 20,
        "the draw has reports of 8 % and more: {spikes}"
    );
    let stats = host.me.stats();
    assert_eq!(stats.capacity_cuts, 0, "{stats:?}");
    assert_eq!(stats.children, 8);
}

#[test]
fn a_saturated_uplink_still_shows_within_two_report_rounds() {
    let mut host = host_with_eight_children();
    report_round(&mut host, |_| 150);
    report_round(&mut host, |_| 150);
    let stats = host.me.stats();
    assert_eq!(stats.capacity_cuts, 1, "{stats:?}");
    assert!(stats.children < 8, "{stats:?}");
}

/// A listener (5) in a space whose host (1) announced our dialect, asking the host.
fn asking_a_host_of_our_dialect() -> Alone {
    let mut me = Alone::new(5, 1, wifi(2_000));
    me.event(
        1,
        Message::Create(SpaceInfo {
            host_metrics: wifi(5_000),
            nip44: true,
            ..SpaceInfo::default()
        }),
    );
    me.stored_end();
    assert_eq!(
        me.me.pending().map(|(peer, _)| peer),
        Some(keys(1).public_key())
    );
    me
}

/// The one link operation among `outputs`.
fn link_op(outputs: &[Output]) -> &LinkOp {
    let ops: Vec<&LinkOp> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Link(op) => Some(op),
            _ => None,
        })
        .collect();
    assert_eq!(ops.len(), 1, "{outputs:?}");
    ops[0]
}

fn confirm_carrying(requester: u8, confirmer: u8, sdp: Option<&str>) -> Message {
    Message::Confirm(Reservation {
        sdp: sdp.map(str::to_owned),
        ..reservation(requester, confirmer)
    })
}

#[test]
fn to_a_peer_of_our_dialect_the_offer_rides_in_the_reserve_and_the_answer_in_the_confirm() {
    let mut me = asking_a_host_of_our_dialect();
    let out = me.drain();
    // No RESERVE goes out alone: the driver opens the link and sends it with the offer.
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::Publish(Publication {
                message: Message::Reserve(_),
                ..
            })
        )),
        "{out:?}"
    );
    let LinkOp::Open {
        peer,
        within: Some(reserve),
    } = link_op(&out)
    else {
        panic!("an early offer: {out:?}")
    };
    assert_eq!(*peer, keys(1).public_key());
    let Message::Reserve(r) = &reserve.message else {
        panic!("the offer rides in a RESERVE: {reserve:?}")
    };
    assert_eq!(r.confirmer, keys(1).public_key());
    let carried = reserve.clone().carrying("v=0 offer".into());
    assert!(
        matches!(&carried.message, Message::Reserve(r) if r.sdp.as_deref() == Some("v=0 offer"))
    );
    // The answer comes in the CONFIRM: applied at once, no OFFER of ours.
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    let out = me.drain();
    assert_eq!(
        link_op(&out),
        &LinkOp::ApplyAnswer {
            peer: keys(1).public_key(),
            sdp: "v=0 answer".into()
        }
    );
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
    // Negotiated already: the SDP deadline does not drop the link.
    me.advance(NEGOTIATE_DEADLINE.as_millis() as Millis + 1);
    assert!(drops_to(&me.published()).is_empty());
}

#[test]
fn a_confirmer_that_reads_past_the_early_offer_gets_it_again_in_an_offer() {
    let mut me = asking_a_host_of_our_dialect();
    me.drain();
    me.event(1, confirm_carrying(5, 1, None));
    let out = me.drain();
    assert_eq!(link_op(&out), &LinkOp::SendOffer(keys(1).public_key()));
    // Its ANSWER, in the draft's flow, completes the link.
    me.event(1, answer(5));
    assert_eq!(
        link_op(&me.drain()),
        &LinkOp::ApplyAnswer {
            peer: keys(1).public_key(),
            sdp: "v=0".into()
        }
    );
}

#[test]
fn an_early_offer_that_is_refused_or_unanswered_closes_its_link() {
    // Refused: the host DROPs the reservation.
    let mut me = asking_a_host_of_our_dialect();
    me.drain();
    me.event(1, drop_of(5, 0));
    assert!(
        me.drain()
            .contains(&Output::Link(LinkOp::Close(keys(1).public_key()))),
        "the link the offer opened goes with the reservation"
    );
    // Unanswered: the reservation times out.
    let mut me = asking_a_host_of_our_dialect();
    me.drain();
    me.advance(RESERVE_TIMEOUT.as_millis() as Millis);
    let out = me.drain();
    assert!(
        out.contains(&Output::Link(LinkOp::Close(keys(1).public_key()))),
        "{out:?}"
    );
}

#[test]
fn an_offer_from_the_peer_that_feeds_us_never_replaces_our_parent_link() {
    let mut me = asking_a_host_of_our_dialect();
    me.drain();
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    me.drain();
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
    // Our parent asks us for a link, offer and all (a confused or hostile client).
    me.event(
        1,
        Message::Reserve(Reservation {
            sdp: Some("v=0 offer".into()),
            ..reservation(1, 5)
        }),
    );
    let out = me.drain();
    assert!(
        !out.iter().any(|o| matches!(o, Output::Link(_))),
        "no link closed or answered: {out:?}"
    );
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
}

#[test]
fn a_confirmer_answers_an_offer_that_rode_in_the_reserve_inside_its_confirm() {
    // 200 kbit/s: one child.
    let mut host = Alone::new(1, 1, wifi(200));
    host.stored_end();
    host.drain();
    host.event(
        7,
        Message::Join(MemberInfo {
            metrics: wifi(1_000),
            nip44: true,
            ..MemberInfo::default()
        }),
    );
    host.drain();
    host.event(
        7,
        Message::Reserve(Reservation {
            sdp: Some("v=0 offer".into()),
            ..reservation(7, 1)
        }),
    );
    let out = host.drain();
    let LinkOp::Answer {
        peer,
        sdp,
        within: Some(confirm),
    } = link_op(&out)
    else {
        panic!("the answer rides in the CONFIRM: {out:?}")
    };
    assert_eq!((*peer, sdp.as_str()), (keys(7).public_key(), "v=0 offer"));
    assert!(matches!(&confirm.message, Message::Confirm(r) if r.requester == keys(7).public_key()));
    let alone: Vec<Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Publish(p) => Some(p.message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        confirms_to(&alone).is_empty(),
        "no CONFIRM goes out without the answer"
    );
    assert_eq!(host.me.stats().children, 1);
    // Refused requesters' offers are never answered (no link, no candidates): the full host
    // refuses the next eight.
    for n in 20..28 {
        host.event(n, join(1_000));
        host.event(
            n,
            Message::Reserve(Reservation {
                sdp: Some(format!("v=0 offer {n}")),
                ..reservation(n, 1)
            }),
        );
    }
    let out = host.drain();
    let answers = out
        .iter()
        .filter(|o| matches!(o, Output::Link(LinkOp::Answer { .. })))
        .count();
    assert_eq!(answers, 0, "{out:?}");
    let published: Vec<Message> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Publish(p) => Some(p.message),
            _ => None,
        })
        .collect();
    assert_eq!(drops_to(&published).len(), 8);
}

/// A space whose host (1, 5 Mbit/s) announced our dialect.
fn created_by_a_host_of_our_dialect(host_kbps: u32) -> Message {
    Message::Create(SpaceInfo {
        host_metrics: wifi(host_kbps),
        nip44: true,
        ..SpaceInfo::default()
    })
}

#[test]
fn a_newcomer_asks_the_host_before_the_space_is_read_and_keeps_the_seat_the_read_confirms() {
    let (mut me, created) = Alone::configured(5, 1, wifi(2_000), |_| {});
    // Before a single event is read: JOIN, then the RESERVE to the host with our offer.
    let LinkOp::Open {
        peer,
        within: Some(reserve),
    } = link_op(&created)
    else {
        panic!("an early offer to the host: {created:?}")
    };
    assert_eq!(*peer, keys(1).public_key());
    assert!(matches!(&reserve.message, Message::Reserve(r) if r.confirmer == keys(1).public_key()));
    let position = |wanted: fn(&Output) -> bool| created.iter().position(wanted);
    assert!(
        position(|o| matches!(
            o,
            Output::Publish(Publication {
                message: Message::Join(_),
                ..
            })
        )) < position(|o| matches!(o, Output::Link(LinkOp::Open { .. }))),
        "the host reads who we are before what we ask: {created:?}"
    );
    me.event(1, created_by_a_host_of_our_dialect(5_000));
    me.stored_end();
    let out = me.drain();
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::Link(_)
                | Output::Publish(Publication {
                    message: Message::Reserve(_),
                    ..
                })
        )),
        "the read keeps the reservation: {out:?}"
    );
    // The host's CONFIRM answers a reservation our view now holds.
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    assert_eq!(
        link_op(&me.drain()),
        &LinkOp::ApplyAnswer {
            peer: keys(1).public_key(),
            sdp: "v=0 answer".into()
        }
    );
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
    assert_eq!(me.me.stats().reservations, 1);
}

#[test]
fn the_read_gives_up_a_full_host_asked_first_and_frees_the_seat_it_grants_all_the_same() {
    let (mut me, _) = Alone::configured(5, 1, wifi(2_000), |_| {});
    // Three seats at 400 kbit/s, held by relays stronger than us (no seat to take).
    me.event(1, created_by_a_host_of_our_dialect(400));
    for relay in 10..13 {
        seated_at_the_host(&mut me, relay, 5_000);
    }
    me.stored_end();
    let out = me.drain();
    assert!(
        closes_link_to(&out, 1),
        "the link our early offer opened goes: {out:?}"
    );
    let (asked, _) = me.me.pending().expect("a reservation below the host");
    assert!((10..13).any(|r| asked == keys(r).public_key()));
    // The host's own count differed from our view and it admitted us: its seat is freed.
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    assert_eq!(drops_to(&me.published()), vec![keys(1).public_key()]);
    assert_eq!(me.me.pending().map(|(p, _)| p), Some(asked));
}

#[test]
fn a_full_host_refuses_a_reservation_asked_before_the_read_silently_and_others_with_a_drop() {
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    for strong in 10..13 {
        host.event(strong, join(5_000));
        host.event(strong, reserve(strong, 1));
    }
    assert_eq!(confirms_to(&host.published()).len(), 3);
    let asked_first = |n: u8| {
        Message::Reserve(Reservation {
            before_read: true,
            ..reservation(n, 1)
        })
    };
    // One of the crowd that arrived with the children: its read may have shown seats free,
    // so it would wait for an answer. It is told.
    host.event(19, join(1_000));
    host.event(19, asked_first(19));
    assert_eq!(drops_to(&host.published()), vec![keys(19).public_key()]);
    // A newcomer no stronger than the children, asking before it read the space, once the
    // seats have been taken long enough for every read to show it: it will see the host full
    // on its own, so no DROP loads the relays.
    host.advance(FULL_SHOWN_AFTER);
    host.event(20, join(1_000));
    host.event(20, asked_first(20));
    let published = host.published();
    assert!(confirms_to(&published).is_empty() && drops_to(&published).is_empty());
    // One that read the space and asks all the same is told.
    host.event(21, join(1_000));
    host.event(21, reserve(21, 1));
    assert_eq!(drops_to(&host.published()), vec![keys(21).public_key()]);
}

/// `child` (uplink `kbps`) joins, reserves the host (1) and is confirmed, its link delivering.
fn seated_at_the_host(view: &mut Alone, child: u8, kbps: u32) {
    view.event(child, join(kbps));
    view.event(child, reserve(child, 1));
    view.event(1, confirm(child, 1));
    view.event(1, delivering(child, 1));
}

/// A host (1) at 400 kbit/s whose three seats are held by two strong relays and a weak leaf.
fn host_feeding_two_relays_and_a_weak_leaf(view: &mut Alone) {
    for (child, kbps) in [(10, 5_000), (11, 5_000), (12, 40)] {
        seated_at_the_host(view, child, kbps);
    }
}

#[test]
fn a_newcomer_whose_read_shows_only_a_leafs_seat_at_the_host_asks_for_it_again_at_once() {
    let (mut me, _) = Alone::configured(5, 1, wifi(5_000), |_| {});
    me.event(1, created_by_a_host_of_our_dialect(400));
    host_feeding_two_relays_and_a_weak_leaf(&mut me);
    me.stored_end();
    let out = me.drain();
    // A full host leaves an ask made before the read unanswered: kept for the weak leaf's
    // seat, it would wait out its deadline (two seconds of silence for a strong newcomer of
    // a crowd). It is given up, and the seat asked for again, as a reservation made knowingly.
    assert!(closes_link_to(&out, 1), "the early ask goes: {out:?}");
    let asked_again = out.iter().any(|o| {
        matches!(o, Output::Link(LinkOp::Open { peer, within: Some(p) })
            if *peer == keys(1).public_key()
                && matches!(&p.message, Message::Reserve(r) if !r.before_read))
    });
    assert!(asked_again, "the leaf's seat is asked for at once: {out:?}");
    assert_eq!(me.me.pending(), Some((keys(1).public_key(), false)));
    // A crowd's first asks may still be refused with a DROP: that one says whose ask it
    // refuses, and the new reservation stands.
    let refusal = |first| Message::Drop {
        target: keys(5).public_key(),
        price: 0,
        first,
    };
    me.event(1, refusal(true));
    assert_eq!(me.me.pending(), Some((keys(1).public_key(), false)));
    me.event(1, refusal(false));
    assert_ne!(
        me.me.pending().map(|(p, _)| p),
        Some(keys(1).public_key()),
        "the refusal of the new reservation ends it"
    );
}

#[test]
fn a_full_host_hands_a_leafs_seat_only_to_a_reservation_made_after_the_read() {
    let mut host = Alone::new(1, 1, wifi(400));
    host.stored_end();
    host_feeding_two_relays_and_a_weak_leaf(&mut host);
    host.published();
    host.advance(FULL_SHOWN_AFTER);
    // Asked before the read: the newcomer keeps such an ask only for a free output, so a
    // CONFIRM for the leaf's seat would meet its second reservation for the same seat.
    host.event(20, join(5_000));
    host.event(
        20,
        Message::Reserve(Reservation {
            before_read: true,
            ..reservation(20, 1)
        }),
    );
    let published = host.published();
    assert!(
        confirms_to(&published).is_empty() && drops_to(&published).is_empty(),
        "{published:?}"
    );
    // Asked again, knowingly: the seat is handed on.
    host.event(20, reserve(20, 1));
    assert_eq!(confirms_to(&host.published()), vec![keys(20).public_key()]);
}

/// A listener (5) whose link to the host (1, of our dialect) has just connected.
fn linked_to_a_host_of_our_dialect() -> Alone {
    let mut me = Alone::new(5, 1, wifi(2_000));
    me.event(1, created_by_a_host_of_our_dialect(5_000));
    me.stored_end();
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    me.host_link(LinkInput::Connected);
    me
}

impl Alone {
    /// What our link to the host (1) reports now.
    fn host_link(&mut self, event: LinkInput) {
        self.link(1, event);
    }
}

#[test]
fn a_link_that_connects_before_its_confirm_counts_as_set_up() {
    // The answer written in advance: the host's checks outrun its CONFIRM.
    let mut me = Alone::new(5, 1, wifi(2_000));
    me.event(1, created_by_a_host_of_our_dialect(5_000));
    me.stored_end();
    me.drain();
    me.host_link(LinkInput::Connected);
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    me.drain();
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
    // Past the set-up deadline, the link stands: it connected, only before the CONFIRM.
    me.advance(CONNECT_DEADLINE.as_millis() as Millis + 1_000);
    assert!(drops_to(&me.published()).is_empty(), "the parent is kept");
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
}

#[test]
fn a_parent_link_that_connects_and_never_carries_a_packet_is_let_go() {
    let mut me = linked_to_a_host_of_our_dialect();
    me.advance(300);
    // Nothing arrived since the link came up: not even a keep-alive.
    me.host_link(LinkInput::Stalled);
    me.drain();
    me.advance(CONNECT_DEADLINE.as_millis() as Millis - 400);
    assert!(drops_to(&me.published()).is_empty(), "not yet");
    me.advance(200);
    let out = me.drain();
    let published: Vec<Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Publish(Publication { message, .. }) => Some(message.clone()),
            Output::Link(LinkOp::Open {
                within: Some(Publication { message, .. }),
                ..
            }) => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(drops_to(&published), vec![keys(1).public_key()], "{out:?}");
    // The host is asked again at once, on a new link.
    assert!(
        published
            .iter()
            .any(|m| matches!(m, Message::Reserve(r) if r.confirmer == keys(1).public_key())),
        "{out:?}"
    );
    assert_eq!(me.me.stats().upstream_lost, 1);
}

#[test]
fn a_parent_that_delivered_and_then_went_quiet_is_kept() {
    let mut me = linked_to_a_host_of_our_dialect();
    // Audio for three seconds, then silence without keep-alives (a frozen host).
    me.advance(3_000);
    me.host_link(LinkInput::Stalled);
    me.advance(CONNECT_DEADLINE.as_millis() as Millis * 2);
    assert!(drops_to(&me.published()).is_empty());
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
}

#[test]
fn a_saturated_host_sheds_children_still_setting_up_before_those_that_hear() {
    let mut host = host_with_eight_children();
    // Two more confirmed, their links not up yet: they have heard nothing.
    for child in [10, 11] {
        host.event(child, join(2_000));
        host.event(child, reserve(child, 1));
    }
    host.published();
    // Every child that hears loses half of what we send: four streams fit, six go.
    report_round(&mut host, |_| 500);
    report_round(&mut host, |_| 500);
    let dropped = drops_to(&host.published());
    assert_eq!(dropped.len(), 6, "{dropped:?}");
    for child in [10, 11] {
        assert!(
            dropped.contains(&keys(child).public_key()),
            "{child} goes first"
        );
    }
    assert_eq!(host.me.stats().children, 4);
}

#[test]
fn a_parent_that_says_goodbye_is_left_at_once_for_another_seat() {
    let mut me = linked_to_a_host_of_our_dialect();
    // Another listener (7) hears the host.
    me.delivering_under_the_host(7, 2_000);
    me.published();
    // The host hands us back (its uplink shrank) and says so on the link, long before its
    // DROP crosses the relays: we ask 7 at once, not the host that just let us go.
    assert_eq!(me.me.stats().parent, Some(keys(1).public_key()));
    me.host_link(LinkInput::Goodbye);
    assert!(me.me.links().get(&keys(1).public_key()).is_none());
    assert_eq!(me.me.pending(), Some((keys(7).public_key(), false)));
}

#[test]
fn a_newcomer_refused_a_leafs_seat_asks_a_free_output_next_not_the_next_leaf() {
    use crate::topology::CapacityPolicy;
    let three = CapacityPolicy::default().uplink_for(3, ConnectionType::Wifi, false);
    let mut me = Alone::new(20, 1, wifi(5_000));
    me.event(
        1,
        Message::Create(SpaceInfo {
            host_metrics: wifi(three),
            ..SpaceInfo::default()
        }),
    );
    // The host feeds relays 2 and 3 and a phone too weak to relay (6). Relay 2 is full of such
    // phones; relay 3 feeds relay 5 and two of them; relay 5 has two free outputs (depth 3).
    for (child, parent, kbps) in [
        (2, 1, three),
        (3, 1, three),
        (6, 1, 40),
        (7, 2, 40),
        (8, 2, 40),
        (9, 2, 40),
        (5, 3, three),
        (10, 3, 40),
        (11, 3, 40),
        (12, 5, 40),
    ] {
        me.event(child, join(kbps));
        me.event(child, reserve(child, parent));
        me.event(parent, confirm(child, parent));
        me.event(parent, delivering(child, parent));
    }
    me.stored_end();
    me.drain();
    // Strong, we may take a weak phone's seat: the host's is the nearest. Most such asks are
    // refused, so the link's trickled candidates wait for the answer.
    assert_eq!(me.me.pending(), Some((keys(1).public_key(), false)));
    assert!(me.me.holds_candidates(&keys(1).public_key()));
    // Refused: a crowd that saw the same phones asked first.
    me.event(1, drop_of(20, 0));
    me.advance(SEARCH_AGAIN.as_millis() as Millis);
    me.drain();
    // Relays 2 and 3 hold seats of weak phones at depth 2; relay 5's free output is a hop
    // lower, and nobody there hands a seat on.
    assert_eq!(me.me.pending(), Some((keys(5).public_key(), false)));
    assert!(
        !me.me.holds_candidates(&keys(5).public_key()),
        "a free output's are not held"
    );
}

/// We (5) sit under relay `p` and ask relay `b` to be our warm backup, both under the host
/// (1). Returns (p, b).
fn under_a_relay_asking_a_backup() -> (Alone, u8, u8) {
    // The host (capacity 2) feeds relays 7 and 8; we sit under one with the other as backup.
    let mut me = Alone::new(5, 1, wifi(2_000));
    me.event(1, created_by_a_host_of_our_dialect(240));
    for relay in [7, 8] {
        me.delivering_under_the_host(relay, 5_000);
    }
    me.advance((SEAT_PROVEN_SECS + 1) * 1_000);
    me.stored_end();
    let (parent, _) = me.me.pending().expect("asks a relay");
    let index = |key: PublicKey| [7u8, 8].into_iter().find(|n| keys(*n).public_key() == key);
    let (p, b) = match index(parent) {
        Some(7) => (7, 8),
        Some(8) => (8, 7),
        other => panic!("asked {other:?}"),
    };
    me.event(p, confirm_carrying(5, p, Some("v=0 answer")));
    me.link(p, LinkInput::Connected);
    me.advance(STANDBY_AFTER.as_millis() as Millis + 100);
    assert_eq!(me.me.pending(), Some((keys(b).public_key(), true)));
    (me, p, b)
}

/// [`under_a_relay_asking_a_backup`], and `b` confirmed: its link is up but has carried
/// nothing yet (its own parent may be quiet).
fn under_a_relay_with_a_fresh_backup() -> (Alone, u8, u8) {
    let (mut me, p, b) = under_a_relay_asking_a_backup();
    me.event(
        b,
        Message::Confirm(Reservation {
            standby: true,
            sdp: Some("v=0 answer".into()),
            ..reservation(5, b)
        }),
    );
    me.link(b, LinkInput::Connected);
    me.drain();
    (me, p, b)
}

#[test]
fn a_parent_that_stalls_while_we_ask_for_a_backup_is_replaced_by_it_once_it_confirms() {
    let (mut me, p, b) = under_a_relay_asking_a_backup();
    me.drain();
    // Our parent goes quiet a moment after we asked b to be our backup. Asking b again now,
    // as our parent with a new offer, would race the first ask on the relays: the ask stands.
    me.advance(100);
    me.link(p, LinkInput::Stalled);
    assert_eq!(me.me.pending(), Some((keys(b).public_key(), true)));
    assert!(asks(&me.drain()).is_empty());
    // b confirms its seat as our backup: it is asked at once to be our parent, over the link
    // it answered (no new offer), and the quiet parent stays until b delivers.
    me.advance(100);
    me.event(
        b,
        Message::Confirm(Reservation {
            standby: true,
            sdp: Some("v=0 answer".into()),
            ..reservation(5, b)
        }),
    );
    let out = me.drain();
    assert_eq!(me.me.pending(), Some((keys(b).public_key(), false)));
    assert_eq!(asks(&out), vec![(keys(b).public_key(), false)]);
    assert_eq!(me.me.stats().parent, Some(keys(p).public_key()));
    assert!(!closes_link_to_key(&out, keys(p).public_key()));
    // A backup asked a while ago that has not answered is given up: a parent is asked
    // instead (here b again, as nobody else is left, now that its ask is over).
    let (mut me, p, b) = under_a_relay_asking_a_backup();
    me.drain();
    me.advance(RESERVE_TIMEOUT.as_millis() as Millis / 2);
    me.link(p, LinkInput::Stalled);
    assert_ne!(me.me.pending(), Some((keys(b).public_key(), true)));
}

#[test]
fn a_handed_on_leaf_keeps_the_old_audio_until_its_backup_confirms_and_proves_itself() {
    let (mut me, p, b) = under_a_relay_with_a_fresh_backup();
    // Our parent hands our seat on: the backup is asked to become our parent; its CONFIRM
    // says it is alive. Until then both feed us.
    me.event(p, drop_of(5, 0));
    let out = me.drain();
    assert!(!closes_link_to_key(&out, keys(p).public_key()), "{out:?}");
    assert_eq!(me.me.pending(), Some((keys(b).public_key(), false)));
    assert_eq!(
        me.me.links().get(&keys(p).public_key()).map(|l| l.kind),
        Some(LinkKind::Retiring)
    );
    me.advance(200);
    me.event(b, confirm_carrying(5, b, None));
    assert_eq!(me.me.stats().parent, Some(keys(b).public_key()));
    // Once the backup has carried audio a while, the old parent's link closes, without a
    // DROP.
    me.advance(500);
    assert!(!closes_link_to_key(&me.drain(), keys(p).public_key()));
    me.advance(600);
    let out = me.drain();
    assert!(closes_link_to_key(&out, keys(p).public_key()), "{out:?}");
    assert!(drops_to(&published_in(&out)).is_empty(), "{out:?}");
}

#[test]
fn a_handed_on_leaf_whose_backup_died_a_moment_ago_keeps_the_old_audio_and_looks_again() {
    let (mut me, p, b) = under_a_relay_with_a_fresh_backup();
    // The backup crashed; its link has not stalled yet when our parent hands our seat on.
    me.event(p, drop_of(5, 0));
    me.drain();
    me.advance(300);
    me.link(b, LinkInput::Stalled);
    let out = me.drain();
    assert!(
        !closes_link_to_key(&out, keys(p).public_key()),
        "the old parent still feeds us: {out:?}"
    );
    assert_eq!(
        me.me.links().get(&keys(p).public_key()).map(|l| l.kind),
        Some(LinkKind::Retiring)
    );
    assert_ne!(
        me.me.pending(),
        Some((keys(b).public_key(), false)),
        "no waiting out the reservation of a silent backup"
    );
    assert_eq!(me.me.stats().parent, None, "the silent backup is no parent");
}

impl Alone {
    /// What our link to `peer` reports now.
    fn link(&mut self, peer: u8, event: LinkInput) {
        self.me.handle_input(
            Input::Link {
                peer: keys(peer).public_key(),
                event,
            },
            self.now,
        );
    }
}

#[test]
fn a_demoted_speaker_beyond_the_hosts_capacity_is_handed_on_and_hears_while_it_moves() {
    let mut host = Alone::new(1, 1, wifi(240));
    host.stored_end();
    assert_eq!(host.me.capacity(), 2);
    connect_child(&mut host, 10);
    connect_child(&mut host, 11);
    let speaker = keys(12).public_key();
    let publish = |host: &mut Alone, message| {
        host.me
            .handle_input(Input::User(UserCommand::Publish(message)), host.now)
    };
    publish(&mut host, Message::PromoteSpeaker { target: speaker });
    connect_child(&mut host, 12);
    assert_eq!(
        host.me.stats().children,
        3,
        "a speaker beyond the tree's capacity"
    );
    host.drain();
    publish(&mut host, Message::Demote { target: speaker });
    host.drain();
    // It did not move down by itself within the grace: the host hands it on, still feeding it.
    host.advance(SHED_GRACE.as_millis() as Millis + 100);
    let out = host.drain();
    assert_eq!(drops_to(&published_in(&out)), vec![speaker], "{out:?}");
    assert!(!closes_link_to_key(&out, speaker));
    assert!(host.me.routing().children.contains(&speaker));
    assert_eq!(host.me.stats().children, 2);
    host.advance(HAND_ON_GRACE.as_millis() as Millis);
    assert!(closes_link_to_key(&host.drain(), speaker));
}

#[test]
fn a_handed_on_leaf_never_asks_the_parent_it_is_leaving_again() {
    let mut me = linked_to_a_host_of_our_dialect();
    let host = keys(1).public_key();
    me.delivering_under_the_host(7, 2_000);
    me.advance(2_000);
    me.event(1, drop_of(5, 0));
    assert_eq!(me.me.pending(), Some((keys(7).public_key(), false)));
    // 7 refuses. Once the host is no longer avoided, it still shows room in our view.
    me.event(7, drop_of(5, 0));
    me.advance(REFUSED_AVOID.as_millis() as Millis + 500);
    let out = me.drain();
    assert_ne!(me.me.pending().map(|(p, _)| p), Some(host), "{out:?}");
    assert!(!closes_link_to_key(&out, host), "{out:?}");
    assert_eq!(
        me.me.links().get(&host).map(|l| l.kind),
        Some(LinkKind::Retiring)
    );
}

mod crowd;

#[test]
fn a_long_lived_host_sleeps_between_its_timeouts() {
    // A host says no presence (its CREATE and links say it is here), yet its presence clock
    // must move on: a deadline left in the past has its driver wake it again at once, for
    // as long as the space lives.
    let mut host = host_with_eight_children();
    for _ in 0..10 {
        let next = host.me.poll_timeout();
        assert!(
            next > host.now,
            "next timeout {next} is not after now {}",
            host.now
        );
        host.now = next;
        host.me.handle_timeout(next);
    }
    assert!(
        host.now >= T0 + 2 * ms(PRESENCE_EVERY),
        "ten timeouts span more than two presence periods, now {}",
        host.now - T0
    );
}

/// Which of the relays 2, 3 and 4 `key` is.
fn relay_id(key: PublicKey) -> u8 {
    (2..=4)
        .find(|n| keys(*n).public_key() == key)
        .expect("a relay")
}

/// A listener (5, configured by `tweak`) under one of three relays (2, 3, 4) that hold the
/// host's three outputs (360 kbit/s), each with room: the returned parent, connected.
fn under_one_of_three_relays(tweak: impl FnOnce(&mut ParticipantConfig)) -> (Alone, PublicKey) {
    let (mut me, _) = Alone::configured(5, 1, wifi(2_000), |c| {
        c.ask_host_first = false;
        tweak(c);
    });
    me.event(
        1,
        Message::Create(SpaceInfo {
            host_metrics: wifi(360),
            ..SpaceInfo::default()
        }),
    );
    for relay in [2, 3, 4] {
        me.delivering_under_the_host(relay, 5_000);
    }
    me.stored_end();
    let asked = reserves_to(&me.published());
    let [parent] = asked[..] else {
        panic!("one ask: {asked:?}")
    };
    me.event(relay_id(parent), confirm(5, relay_id(parent)));
    me.event(relay_id(parent), answer(5));
    me.link(relay_id(parent), LinkInput::Connected);
    (me, parent)
}

#[test]
fn a_listener_whose_parent_went_quiet_asks_the_next_candidate_as_soon_as_one_refuses() {
    // No warm backup: a quiet parent leaves us silent.
    let (mut me, parent) = under_one_of_three_relays(|c| c.warm_backup = false);
    me.advance(5_000);
    me.drain();
    assert_eq!(me.me.stats().parent, Some(parent));

    // The parent goes quiet: we ask another relay, which is full and says so.
    me.link(relay_id(parent), LinkInput::Stalled);
    let asked = reserves_to(&me.published());
    let [refusing] = asked[..] else {
        panic!("one ask: {asked:?}")
    };
    assert_ne!(refusing, parent);
    me.advance(300);
    me.event(relay_id(refusing), drop_of(5, 0));
    // The last one is asked on the spot, not at whatever wakes us next.
    let asked = reserves_to(&me.published());
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0] != parent && asked[0] != refusing);
}

#[test]
fn a_backup_that_never_answered_is_not_asked_again_as_our_parent_when_it_goes_quiet() {
    let (mut me, parent) = under_one_of_three_relays(|_| {});
    // Settled: we ask for a warm backup, which never answers (it crashed; its seat is still
    // announced).
    me.advance(5_000);
    let asked: Vec<(PublicKey, bool)> = me
        .published()
        .into_iter()
        .filter_map(|m| match m {
            Message::Reserve(r) => Some((r.confirmer, r.standby)),
            _ => None,
        })
        .collect();
    let [(silent, true)] = asked[..] else {
        panic!("one ask for a backup: {asked:?}")
    };
    me.advance(500);
    // The parent goes quiet while we wait: the next ask goes to the third relay, not to the
    // backup that has said nothing for half a second.
    me.link(relay_id(parent), LinkInput::Stalled);
    let asked = reserves_to(&me.published());
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0] != parent && asked[0] != silent, "{asked:?}");
}
