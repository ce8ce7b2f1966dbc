//! The tree rules over a small space seen by one member.

use nostr::prelude::{EventId, Keys, SecretKey, Timestamp};

use std::collections::HashSet;

use nostr::prelude::PublicKey;

use crate::protocol::{
    ConnectionType, LinkRole, MemberInfo, Message, NetworkMetrics, Reservation, SpaceEvent,
    SpaceInfo, SpaceRef,
};
use crate::space::Space;
use crate::topology::{Admission, Seats, TreeRules, TreeView, Want, climb_reach};

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
    space_of(
        &[
            (A, 2_000),
            (B, if b_full { 240 } else { 2_000 }),
            (SIBLING, 2_000),
            (ME, 2_000),
            (NIECE, 2_000),
            (D, 100),
            (E, 100),
        ],
        &links,
        false,
    )
}

/// A space seen by ME: a host announcing 240 kbit/s (two outputs), `members` with their
/// uplinks in kbit/s, and a confirmed tree link for each (child, parent) of `links`, said to
/// deliver when `delivering`. Returns the space and the number of events applied.
fn space_of(members: &[(u8, u32)], links: &[(u8, u8)], delivering: bool) -> (Space, u32) {
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
    for (peer, upload) in members {
        apply(
            &mut space,
            *peer,
            Message::Join(MemberInfo {
                name: String::new(),
                metrics: metrics(*upload),
                price: 0,
                nip44: false,
                dtls: None,
                seat: None,
            }),
        );
    }
    for (child, parent) in links {
        let r = Reservation {
            requester: key(*child),
            confirmer: key(*parent),
            role: Some(LinkRole::Consumer),
            standby: false,
            sdp: None,
            before_read: false,
        };
        apply(&mut space, *child, Message::Reserve(r.clone()));
        apply(&mut space, *parent, Message::Confirm(r.clone()));
        if delivering {
            apply(&mut space, *parent, Message::Delivering(r));
        }
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
        work: 0,
    };
    space.apply(&event, at).expect("accepted");
}

fn choose(space: &Space, want: Want) -> Option<PublicKey> {
    pick(space, want, &HashSet::new())
}

fn pick(space: &Space, want: Want, avoid: &HashSet<PublicKey>) -> Option<PublicKey> {
    let tree = TreeView::of(space);
    let now = Timestamp::from_secs(T0 + 100);
    TreeRules::default().choose_parent(space, &tree, &key(ME), want, now, |k| avoid.contains(k))
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
                sdp: None,
                before_read: false,
            }),
        ),
        (
            B,
            Message::Confirm(Reservation {
                requester: key(NIECE),
                confirmer: key(B),
                role: Some(LinkRole::Consumer),
                standby: true,
                sdp: None,
                before_read: false,
            }),
        ),
    ] {
        n += 1;
        accept(&mut space, n, author, message);
    }
    let tree = TreeView::of(&space);
    assert_eq!(tree.depth(&key(NIECE)), Some(3), "still below SIBLING");
    assert_eq!(tree.standbys(&key(B)), 1);
    assert!(tree.children(&key(B)).is_empty());
    // Avoiding B, no backup is left for us; a parent still is (A has room).
    let avoid = HashSet::from([key(B)]);
    assert_eq!(pick(&space, Want::Standby { parent: key(A) }, &avoid), None);
    assert_eq!(pick(&space, Want::Parent, &avoid), Some(key(A)));
}

/// D's tree RESERVE to B.
fn d_asks_b(before_read: bool) -> Message {
    Message::Reserve(Reservation {
        requester: key(D),
        confirmer: key(B),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read,
    })
}

#[test]
fn a_reservation_asked_before_the_read_is_no_seat_taken_and_a_read_one_is() {
    let (mut space, mut n) = world(false);
    let ask = |before_read| d_asks_b(before_read);
    n += 1;
    accept(&mut space, n, D, ask(true));
    assert_eq!(TreeView::of(&space).asked(&key(B)), 0);
    // The same requester, having read the space, asks again: now it counts.
    n += 1;
    accept(&mut space, n, D, ask(false));
    assert_eq!(TreeView::of(&space).asked(&key(B)), 1);
}

#[test]
fn a_reservation_left_unanswered_stops_counting_once_its_requester_gave_up() {
    let (mut space, mut n) = world(false);
    n += 1;
    accept(&mut space, n, D, d_asks_b(false));
    let asked_at = T0 + u64::from(n);
    let seen =
        |after: u64| TreeView::at(&space, Timestamp::from_secs(asked_at + after)).asked(&key(B));
    assert_eq!(seen(0), 1);
    assert_eq!(seen(crate::topology::RESERVATION_FRESH_SECS - 1), 1);
    // B refused silently (its refusals rate-limited) or never answered: no seat is taken.
    assert_eq!(seen(crate::topology::RESERVATION_FRESH_SECS), 0);
    assert_eq!(TreeView::of(&space).asked(&key(B)), 1);
}

#[test]
fn a_full_parent_someone_just_asked_is_no_seat_to_take_from_a_leaf() {
    // Away from our parent A: B's seats are held by D and E, too weak to relay, and we may
    // take one of them.
    let avoid_a: HashSet<PublicKey> = [key(A)].into();
    let (mut space, mut n) = world(true);
    assert_eq!(pick(&space, Want::Parent, &avoid_a), Some(key(B)));
    // NIECE asked B a moment ago. B hands one seat on at a time, so a crowd that saw the same
    // leaf would only be refused: we take SIBLING's free output instead.
    n += 1;
    accept(
        &mut space,
        n,
        NIECE,
        Message::Reserve(Reservation {
            requester: key(NIECE),
            confirmer: key(B),
            role: Some(LinkRole::Consumer),
            standby: false,
            sdp: None,
            before_read: false,
        }),
    );
    assert_eq!(pick(&space, Want::Parent, &avoid_a), Some(key(SIBLING)));
}

#[test]
fn after_a_refused_leafs_seat_only_free_outputs_are_chosen() {
    let avoid_a: HashSet<PublicKey> = [key(A)].into();
    let (space, _) = world(true);
    // B is full, but D and E are too weak to relay: a parent may take one of their seats.
    assert_eq!(pick(&space, Want::Parent, &avoid_a), Some(key(B)));
    // A parent refused us such a seat: the next ask goes to a free output, a hop lower.
    assert_eq!(pick(&space, Want::FreeSeat, &avoid_a), Some(key(SIBLING)));
    let tree = TreeView::of(&space);
    assert_eq!(TreeRules::default().free_outputs(&space, &tree, &key(B)), 0);
    assert!(TreeRules::default().free_outputs(&space, &tree, &key(SIBLING)) > 0);
    // The same for a listener whose parent A went quiet: outside A's subtree, B's leaves'
    // seats are all there is, until such a seat was refused.
    let instead = |free_only| Want::Instead {
        parent: key(A),
        free_only,
    };
    assert_eq!(pick(&space, instead(false), &avoid_a), Some(key(B)));
    assert_eq!(pick(&space, instead(true), &avoid_a), None);
}

#[test]
fn deep_relays_climb_to_different_places_the_strongest_nearest() {
    // host → A → SIBLING → NIECE → D, E, ME: a chain; D is too weak to relay, E is the
    // strongest, ME between. The host has one free output (240 kbit/s: two, A holds one).
    let (space, _) = space_of(
        &[
            (A, 2_000),
            (SIBLING, 2_000),
            (NIECE, 1_000),
            (D, 100),
            (E, 4_000),
            (ME, 3_000),
        ],
        &[
            (A, HOST),
            (SIBLING, A),
            (NIECE, SIBLING),
            (D, NIECE),
            (E, NIECE),
            (ME, NIECE),
        ],
        true,
    );
    let tree = TreeView::of(&space);
    let rules = TreeRules::default();
    let now = Timestamp::from_secs(T0 + 100);
    let target = |me: u8, avoid: &[u8]| {
        rules.climb_target(&space, &tree, &key(me), now, |k| {
            avoid.iter().any(|a| key(*a) == *k)
        })
    };
    // E, the strongest at depth 4, takes the host's free output; ME, next, A's outputs
    // (depth 1: two hops nearer than its 4). NIECE (depth 3) may climb to the host only, and
    // E is ahead of it there. D cannot relay.
    assert_eq!(target(E, &[]), Some(key(HOST)));
    assert_eq!(target(ME, &[]), Some(key(A)));
    assert_eq!(target(NIECE, &[]), None);
    assert_eq!(target(D, &[]), None);
    // What ME avoids is passed over for ME alone: it goes nowhere else near enough.
    assert_eq!(target(ME, &[A]), None);
    assert_eq!(target(E, &[A]), Some(key(HOST)));
}

#[test]
fn a_deep_relay_that_feeds_children_climbs_one_hop_and_one_that_feeds_none_two() {
    // host → A, B (one output each, both held); A → SIBLING (17 outputs, one held) → NIECE →
    // ME (26 outputs), at depth 4; B → E (8 outputs, a leaf ME does not clearly outrank).
    // Within two hops of ME (depth 1 or nearer) nothing is free; a hop nearer, SIBLING is.
    let members = [
        (A, 120),
        (B, 120),
        (SIBLING, 2_000),
        (E, 1_000),
        (NIECE, 120),
        (ME, 3_000),
        (D, 100),
    ];
    let mut links = vec![
        (A, HOST),
        (B, HOST),
        (SIBLING, A),
        (E, B),
        (NIECE, SIBLING),
        (ME, NIECE),
    ];
    let rules = TreeRules::default();
    let now = Timestamp::from_secs(T0 + 100);
    let target = |links: &[(u8, u8)]| {
        let (space, _) = space_of(&members, links, true);
        let tree = TreeView::of(&space);
        assert_eq!(tree.depth(&key(ME)), Some(4));
        rules.climb_target(&space, &tree, &key(ME), now, |_| false)
    };
    // With no child, one hop would lift nobody but ME: it stays.
    assert_eq!(target(&links), None);
    // Feeding D, one hop lifts D too.
    links.push((D, ME));
    assert_eq!(target(&links), Some(key(SIBLING)));
    assert_eq!(climb_reach(4, true), 2);
    assert_eq!(climb_reach(4, false), 1);
    assert_eq!(climb_reach(3, true), 0);
}

#[test]
fn a_strong_relay_below_a_weak_one_at_depth_1_may_take_its_seat_at_the_host() {
    // host → A (240 kbit/s: 2 outputs), B (2,000: 17); A → ME (5,000: 44), SIBLING (2,000).
    let (space, _) = space_of(
        &[
            (A, 240),
            (B, 2_000),
            (ME, 5_000),
            (SIBLING, 2_000),
            (D, 100),
        ],
        &[(A, HOST), (B, HOST), (ME, A), (SIBLING, A)],
        true,
    );
    let rules = TreeRules::default();
    let tree = TreeView::of(&space);
    assert!(rules.outranks_branch_head(&space, &tree, &key(ME)));
    assert!(rules.outranks_branch_head(&space, &tree, &key(SIBLING)));
    assert!(
        !rules.outranks_branch_head(&space, &tree, &key(B)),
        "already at depth 1"
    );
    assert!(
        !rules.outranks_branch_head(&space, &tree, &key(D)),
        "no parent"
    );
    let children = [(key(A), false), (key(B), false)];
    let seats = |relays| Seats {
        capacity: 2,
        children: &children,
        standbys: &[],
        relays,
    };
    let admit =
        |from: u8, relays| rules.admit(&space, &tree, &key(HOST), &key(from), false, seats(relays));
    assert_eq!(admit(ME, true), Admission::HandOnRelay(key(A)));
    assert_eq!(
        admit(ME, false),
        Admission::Refuse,
        "relays' seats only when allowed"
    );
    assert_eq!(
        admit(D, true),
        Admission::Refuse,
        "a weak newcomer outranks nobody"
    );
    // B has 17 outputs: a relay of 44 is not four times stronger.
    let strong_children = [(key(B), false)];
    let one_seat = Seats {
        capacity: 1,
        children: &strong_children,
        standbys: &[],
        relays: true,
    };
    assert_eq!(
        rules.admit(&space, &tree, &key(HOST), &key(ME), false, one_seat),
        Admission::Refuse
    );
}
