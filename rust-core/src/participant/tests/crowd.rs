//! A crowd's view: the host's switch, what a member follows, seats announced and chosen from
//! a sample, requesters met only by their RESERVE.

use super::*;
use crate::protocol::Seat;
use crate::protocol::filter::OpenSeats;
use crate::sim::{Arrival, SimConfig, run_world};
use crate::topology::{NEAR_SEAT_RENEW_SECS, branch_of, lineage_bits};
use std::collections::BTreeSet;

/// A seat in branch 7 at `depth` with `free` outputs.
fn seat(depth: u32, free: u32) -> Seat {
    Seat {
        depth,
        free,
        path_kbps: 200,
        leaf: None,
        branch: 7,
        lineage: 0,
        head: 0,
    }
}

/// A JOIN announcing `seat`.
fn join_with_seat(upload_kbps: u32, seat: Seat) -> Message {
    Message::Join(MemberInfo {
        name: String::new(),
        metrics: wifi(upload_kbps),
        price: 0,
        nip44: true,
        dtls: None,
        seat: Some(seat),
    })
}

/// A newcomer (5, uplink `kbps`) in a crowd whose host (1) is full, the space read, its first
/// fetch of seats out.
fn newcomer_in_a_crowd(kbps: u32) -> Alone {
    let (mut me, _) = Alone::configured(5, 1, wifi(kbps), |c| c.ask_host_first = false);
    me.event(1, crowd_created(400));
    me.me.handle_input(Input::HostRead, me.now);
    me.stored_end();
    me.event(1, join_with_seat(400, seat(0, 0)));
    me
}

/// Ends the fetches of seats that a sample with few seats makes: the window drawn, a shard's
/// newest, the newest of all.
fn read_few_seats(me: &mut Alone) {
    for _ in 0..3 {
        me.me.handle_input(Input::SeatsRead, me.now);
    }
}

fn crowd_created(host_kbps: u32) -> Message {
    Message::Create(SpaceInfo {
        host_metrics: wifi(host_kbps),
        nip44: true,
        crowd: true,
        ..SpaceInfo::default()
    })
}

fn follows(outputs: &[Output]) -> Vec<Follow> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Follow(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn reserved(outputs: &[Output]) -> Vec<PublicKey> {
    asks(outputs).into_iter().map(|(peer, _)| peer).collect()
}

#[test]
fn a_host_past_crowd_at_members_makes_the_space_a_crowd_and_meets_requesters_by_their_reserve() {
    // 400 kbit/s: three outputs.
    let (mut host, _) = Alone::configured(1, 1, wifi(400), |c| c.crowd_at = 5);
    host.stored_end();
    for n in 10..13 {
        host.event(n, join(100));
    }
    assert!(!host.me.space().is_crowd(), "4 members are no crowd");
    host.drain();
    host.event(13, join(100));
    let out = host.drain();
    let created = published_in(&out)
        .into_iter()
        .any(|m| matches!(m, Message::Create(info) if info.crowd));
    assert!(created, "the host says so in its CREATE: {out:?}");
    assert!(follows(&out).contains(&Follow::Crowd));
    assert!(host.me.stats().crowd);
    // Members with no link to the host are forgotten.
    assert_eq!(host.me.space().members().len(), 1);
    // Requesters nobody told us about: with a free output, each is answered at once, and
    // its JOIN followed.
    for n in 20..23 {
        host.event(n, reserve(n, 1));
        let out = host.drain();
        assert_eq!(confirms_to(&published_in(&out)), vec![keys(n).public_key()]);
        let followed = follows(&out)
            .into_iter()
            .any(|f| matches!(f, Follow::Members(m) if m.contains(&keys(n).public_key())));
        assert!(followed, "its JOIN is followed: {out:?}");
    }
    // Full: a stranger's RESERVE waits for its JOIN (only its metrics say whether it may
    // take a weaker leaf's seat), then is answered.
    host.event(30, reserve(30, 1));
    let out = host.drain();
    assert!(confirms_to(&published_in(&out)).is_empty(), "{out:?}");
    assert!(drops_to(&published_in(&out)).is_empty(), "{out:?}");
    host.event(30, join(100));
    assert_eq!(drops_to(&host.published()), vec![keys(30).public_key()]);
}

#[test]
fn a_newcomer_in_a_crowd_asks_for_members_and_seats_first_and_takes_the_shallowest_open_seat() {
    let (mut me, _) = Alone::configured(5, 1, wifi(2_000), |c| c.ask_host_first = false);
    me.event(1, crowd_created(400));
    me.me.handle_input(Input::HostRead, me.now);
    let out = me.drain();
    let asked = follows(&out);
    assert!(
        matches!(
            asked.as_slice(),
            [
                Follow::Members(m),
                Follow::Seats {
                    which: OpenSeats::All,
                    ..
                },
                Follow::Crowd
            ] if m == &vec![keys(1).public_key()]
        ),
        "members and seats before the view: {asked:?}"
    );
    me.stored_end();
    // The host is full; the sample: a seat at depth 2, one at depth 1, one at depth 1 full.
    me.event(1, join_with_seat(400, seat(0, 0)));
    me.event(7, join_with_seat(5_000, seat(2, 5)));
    me.event(8, join_with_seat(5_000, seat(1, 3)));
    me.event(9, join_with_seat(5_000, seat(1, 0)));
    assert!(
        reserved(&me.drain()).is_empty(),
        "the choice waits for the sample"
    );
    me.me.handle_input(Input::SeatsRead, me.now);
    // Three seats from a window drawn in the past: the newest of one shard are fetched at
    // once, and when the shard holds few (a small crowd), the newest of all.
    let until = Timestamp::from_secs(me.now / 1_000);
    let since = Timestamp::from_secs(me.now / 1_000 - SAMPLE_SINCE.as_secs());
    let fetched = |out: &[Output]| match follows(out).as_slice() {
        [
            Follow::Seats {
                since: s,
                until: u,
                which,
            },
        ] if *s == since && *u == until => Some(*which),
        _ => None,
    };
    let out = me.drain();
    assert!(
        matches!(fetched(&out), Some(OpenSeats::Shard(_))),
        "{out:?}"
    );
    me.me.handle_input(Input::SeatsRead, me.now);
    let out = me.drain();
    assert_eq!(fetched(&out), Some(OpenSeats::All), "{out:?}");
    me.me.handle_input(Input::SeatsRead, me.now);
    assert_eq!(reserved(&me.drain()), vec![keys(8).public_key()]);
}

#[test]
fn newcomers_arriving_together_ask_for_seats_of_different_shards() {
    // A young crowd: the window each newcomer draws holds no seat yet, so it asks for the
    // newest. Relays answer everyone asking in the same second with the same newest seats: a
    // crowd arriving by the hundred a second would all ask the same few. Each draws a shard.
    let first_shard = |me: u8| {
        let (mut newcomer, _) = Alone::configured(me, 1, wifi(2_000), |c| {
            c.ask_host_first = false;
        });
        newcomer.event(1, crowd_created(400));
        newcomer.me.handle_input(Input::HostRead, newcomer.now);
        newcomer.stored_end();
        newcomer.drain();
        newcomer.me.handle_input(Input::SeatsRead, newcomer.now);
        follows(&newcomer.drain())
            .into_iter()
            .find_map(|f| match f {
                Follow::Seats {
                    which: OpenSeats::Shard(shard),
                    ..
                } => Some(shard),
                _ => None,
            })
    };
    let shards: BTreeSet<u8> = (10..74).filter_map(first_shard).collect();
    // 64 newcomers over 16 shards: drawn evenly, fewer than 13 distinct happens about once
    // in 50,000 draws (the keys here are fixed, so this is one draw; the few whose window
    // ended in the last second ask for no newer seats). Asking for the newest of all seats
    // names no shard.
    assert!(shards.len() >= 13, "{shards:?}");
}

#[test]
fn in_a_crowd_a_backup_comes_from_another_branch_or_from_above_the_parent() {
    let space = SpaceRef::new("tests", keys(1).public_key()).expect("id");
    let me = keys(5).public_key();
    let mut view = Space::new(space.clone(), me);
    let at = Timestamp::from_secs(T0 / 1_000);
    let mut serial = 0u8;
    let mut feed = |view: &mut Space, author: PublicKey, message: Message| {
        serial += 1;
        let event = SpaceEvent {
            id: EventId::from_byte_array([serial; 32]),
            author,
            created_at: at,
            space: space.clone(),
            message,
            work: 0,
        };
        view.apply(&event, at).expect("applies");
    };
    feed(&mut view, keys(1).public_key(), crowd_created(400));
    let seat = |depth, branch| Seat {
        branch,
        ..seat(depth, 2)
    };
    // Our parent (8) sits at depth 2 in branch 7. 9 is deeper in the same branch (maybe
    // below 8), 10 as deep in another branch, 11 above 8 in its branch.
    feed(
        &mut view,
        keys(8).public_key(),
        join_with_seat(5_000, seat(2, 7)),
    );
    feed(
        &mut view,
        keys(9).public_key(),
        join_with_seat(5_000, seat(3, 7)),
    );
    feed(
        &mut view,
        keys(10).public_key(),
        join_with_seat(5_000, seat(3, 8)),
    );
    feed(
        &mut view,
        keys(11).public_key(),
        join_with_seat(5_000, seat(1, 7)),
    );
    // 12 and 13 are deeper in 8's branch too, and name their lineage: 12's line runs through
    // 8, 13's does not.
    for (n, line) in [(12, [11, 8, 12]), (13, [11, 14, 13])] {
        let lineage = line
            .iter()
            .fold(0, |bits, n| bits | lineage_bits(&keys(*n).public_key()));
        let seat = Seat {
            lineage,
            ..seat(3, 7)
        };
        feed(&mut view, keys(n).public_key(), join_with_seat(5_000, seat));
    }
    let tree = TreeView::at(&view, at);
    let parent = keys(8).public_key();
    assert!(tree.under(&keys(9).public_key(), &parent));
    assert!(!tree.under(&keys(10).public_key(), &parent));
    assert!(!tree.under(&keys(11).public_key(), &parent));
    assert_eq!(tree.branch(&keys(10).public_key()), Some(8));
    assert!(tree.under(&keys(12).public_key(), &parent));
    assert!(
        !tree.under(&keys(13).public_key(), &parent),
        "a lineage without the parent's bits is off its line"
    );
}

/// The simulator's crowd: a few hundred listeners, arriving weak first then at random, with
/// crashes and network changes. Everyone hears; every view stays bounded; and the seats
/// relays announce agree with the tree the links really make (their depth, their branch, their
/// lineage, their branch head's outputs).
#[test]
fn a_crowd_hears_with_bounded_views_and_seats_that_tell_the_truth() {
    for arrival in [Arrival::WeakFirst, Arrival::Random] {
        let config = SimConfig {
            peers: 300,
            arrival,
            join_secs: 20.0,
            minutes: 1.0,
            crowd_at: 60,
            ..SimConfig::default()
        };
        let (world, report) = run_world(&config);
        assert!(
            report.receiving_share_steady >= 0.99,
            "{arrival:?}: {report:?}"
        );
        let mut relays = 0;
        let mut truthful = 0;
        for (id, node) in world.nodes().iter().enumerate().filter(|(_, n)| n.alive) {
            let p = &node.participant;
            assert!(
                p.stats().crowd,
                "{arrival:?}: node {id} follows the whole space"
            );
            assert!(
                p.stats().members_in_view <= 120,
                "{arrival:?}: node {id} holds {} members",
                p.stats().members_in_view
            );
            let seat = p.space().members().get(p.me()).and_then(|m| m.seat);
            let (Some(seat), Some(depth)) = (seat, world.depth(id)) else {
                continue;
            };
            if id == 0 {
                continue;
            }
            relays += 1;
            let head = world.branch(id);
            let branch = head.map(|key| branch_of(&key));
            let head_outputs = head
                .and_then(|key| world.id_of(&key))
                .map(|h| world.nodes()[h].participant.capacity());
            if seat.depth == depth
                && Some(seat.branch) == branch
                && Some(seat.lineage) == world.lineage(id)
                && Some(seat.head) == head_outputs
            {
                truthful += 1;
            }
        }
        assert!(relays > 20, "{arrival:?}: {relays} relays announce seats");
        // A relay that just moved may announce a second later (SEAT_EVERY).
        assert!(
            truthful * 100 >= relays * 95,
            "{arrival:?}: {truthful} of {relays} seats tell the truth"
        );
    }
}

/// Runs `me`'s timeouts until `until`: when it announced its open seat, and the seat (the
/// last of a turn's JOINs).
fn open_seats_announced(me: &mut Alone, until: Millis) -> Vec<(Millis, Seat)> {
    let mut announced = Vec::new();
    while me.now < until {
        let next = me.me.poll_timeout();
        me.now = next;
        me.me.handle_timeout(next);
        let mut seats = published_in(&me.drain())
            .into_iter()
            .filter_map(|m| match m {
                Message::Join(info) => info.seat.filter(|s| s.open()),
                _ => None,
            });
        if let Some(seat) = seats.next_back() {
            announced.push((next, seat));
        }
    }
    announced
}

#[test]
fn an_open_seat_is_renewed_on_time_with_nothing_else_to_wake_us() {
    // Relays' samples look back SAMPLE_SINCE: a seat renewed late drops out of them. Loss
    // reports, twice a second, change nothing else and no longer pass for a wake-up.
    let (mut host, _) = Alone::configured(1, 1, wifi(400), |c| c.crowd_at = 5);
    host.stored_end();
    host.advance(7_000);
    for n in 10..14 {
        host.event(n, join(100));
    }
    assert!(host.me.space().is_crowd());
    let seat_joins = |out: &[Output]| {
        published_in(out)
            .into_iter()
            .filter(|m| matches!(m, Message::Join(info) if info.seat.is_some_and(|s| s.open())))
            .count()
    };
    assert_eq!(seat_joins(&host.drain()), 1, "the seat is announced");
    let mut renewed = vec![host.now];
    let until = T0 + 6 * ms(SEAT_RENEW_EVERY);
    renewed.extend(
        open_seats_announced(&mut host, until)
            .into_iter()
            .map(|(at, _)| at),
    );
    let gaps: Vec<Millis> = renewed.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 4, "renewals {gaps:?}");
    assert!(
        gaps.iter().all(|gap| *gap == ms(SEAT_RENEW_EVERY)),
        "renewed every {gaps:?} ms"
    );
}

#[test]
fn in_a_crowd_a_parent_leaves_its_childs_seat_to_prove_itself() {
    // In a small space a parent publishes that a tree link delivers (a DELIVERING), so that
    // every view sees the child's seat proven. In a crowd nobody but the child follows our
    // CONFIRMs, and a seat counts once announced (which a member does only while its parent
    // delivers): the DELIVERING would be one more event per join that no one reads.
    let delivering_after_link = |crowd_at: usize| {
        let (mut host, _) = Alone::configured(1, 1, wifi(2_000), |c| c.crowd_at = crowd_at);
        host.stored_end();
        host.advance(7_000);
        for n in 10..14 {
            host.event(n, join(100));
        }
        // A newcomer of our dialect (NIP-44), the only kind a parent attests.
        let newcomer = match join(2_000) {
            Message::Join(info) => Message::Join(MemberInfo {
                nip44: true,
                ..info
            }),
            other => other,
        };
        host.event(2, newcomer);
        host.event(2, reserve(2, 1));
        assert_eq!(
            confirms_to(&host.published()).len(),
            1,
            "crowd_at {crowd_at}"
        );
        host.link(2, LinkInput::Connected);
        let attested = host
            .published()
            .iter()
            .filter(|m| matches!(m, Message::Delivering(r) if r.requester == keys(2).public_key()))
            .count();
        (host.me.space().is_crowd(), attested)
    };
    assert_eq!(delivering_after_link(100), (false, 1), "a small space");
    assert_eq!(delivering_after_link(5), (true, 0), "a crowd");
}

#[test]
fn a_member_whose_parent_goes_quiet_with_no_seat_in_its_sample_looks_again_on_its_own() {
    // In a crowd, candidates come from a sample of seats, and a fresh one takes a fetch.
    // When our parent goes quiet and the sample holds nobody outside its subtree, nothing
    // else may wake us for long (a failed backup search waits half a minute): we must come
    // back for a new sample by ourselves, or sit in silence until ICE gives the parent up.
    // A leaf (one output at most): no climb wakes it either.
    let mut me = settled_in_a_crowd(100, 1);
    // The backup search's sample has no other seat in it.
    // Too few seats in it: a shard's newest are fetched, then the newest of all, and bring
    // nobody either.
    read_few_seats(&mut me);
    assert!(me.me.pending().is_none(), "no backup to be had");
    me.drain();
    // The parent goes quiet. The sample is fresh and holds only the parent: another is
    // fetched soon.
    me.advance(500);
    me.link(8, LinkInput::Stalled);
    let stalled_at = me.now;
    assert!(me.me.pending().is_none());
    me.drain();
    let mut fetched = None;
    while fetched.is_none() && me.now < stalled_at + 20_000 {
        let next = me.me.poll_timeout();
        assert!(next > me.now, "woken for nothing at {next}");
        me.now = next;
        me.me.handle_timeout(next);
        fetched = follows(&me.drain())
            .into_iter()
            .any(|f| matches!(f, Follow::Seats { .. }))
            .then_some(me.now);
    }
    let at = fetched.expect("a new sample is asked for without any input");
    assert!(
        at <= stalled_at + ms(SEARCH_AGAIN),
        "asked {} ms after the parent went quiet",
        at - stalled_at
    );
}

/// The fetches of seats in `outputs`, by which seats they ask for.
fn seat_fetches(outputs: &[Output]) -> Vec<OpenSeats> {
    follows(outputs)
        .into_iter()
        .filter_map(|f| match f {
            Follow::Seats { which, .. } => Some(which),
            _ => None,
        })
        .collect()
}

/// A newcomer (uplink `kbps`) in a crowd that took the seat of 8 (announced at `depth`): its
/// link connected and settled, the search for a warm backup's fetch of seats out.
fn settled_in_a_crowd(kbps: u32, depth: u32) -> Alone {
    let mut me = newcomer_in_a_crowd(kbps);
    me.event(8, join_with_seat(5_000, seat(depth, 3)));
    read_few_seats(&mut me);
    assert_eq!(reserved(&me.drain()), vec![keys(8).public_key()]);
    me.event(8, confirm_carrying(5, 8, Some("v=0 answer")));
    me.link(8, LinkInput::Connected);
    // A backup is looked for once settled, in a new sample.
    me.advance(STANDBY_AFTER.as_millis() as Millis + SAMPLE_FOR.as_millis() as Millis);
    assert!(
        !seat_fetches(&me.drain()).is_empty(),
        "a backup search fetches seats"
    );
    me
}

/// Runs `me`'s timeouts for up to `within` ms, until it fetches shallow seats (a look for
/// a place nearer the host); returns whether it did.
fn climbs_within(me: &mut Alone, within: Millis) -> bool {
    let end = me.now + within;
    while me.me.poll_timeout() <= end {
        me.now = me.me.poll_timeout();
        me.me.handle_timeout(me.now);
        let fetched = seat_fetches(&me.drain());
        if fetched.iter().any(|w| matches!(w, OpenSeats::AtMost(_))) {
            return true;
        }
    }
    false
}

/// `me`'s backup search, its sample out, finds `n` (announcing `seat`) alone, asks it, and
/// the link connects.
fn takes_backup(me: &mut Alone, n: u8, seat: Seat) {
    me.event(n, join_with_seat(5_000, seat));
    read_few_seats(me);
    assert_eq!(reserved(&me.drain()), vec![keys(n).public_key()]);
    me.event(n, confirm_carrying(5, n, Some("v=0 answer")));
    me.link(n, LinkInput::Connected);
    me.drain();
}

#[test]
fn a_sample_of_many_seats_is_read_whole_however_few_strangers_the_view_may_hold() {
    // A relay at depth 4 under 8 (branch 7), its backup search's fetch of seats out. The fetch
    // brings 40 seats (fetches of few seats each add up): first the one backup there is, in
    // another branch, then 39 in our parent's branch, which fall with it.
    let mut me = settled_in_a_crowd(5_000, 3);
    me.event(
        20,
        join_with_seat(
            5_000,
            Seat {
                branch: 8,
                ..seat(2, 3)
            },
        ),
    );
    for n in 21..60 {
        me.event(n, join_with_seat(5_000, seat(4, 3)));
    }
    me.me.handle_input(Input::SeatsRead, me.now);
    // More members than a view keeps of strangers: the sample is all the same.
    assert_eq!(reserved(&me.drain()), vec![keys(20).public_key()]);
}

#[test]
fn a_climbs_sample_of_shallow_seats_is_no_sample_to_find_a_backup_in() {
    // A relay (5,000 kbit/s) at depth 4 under 8, with 9 as its warm backup.
    let mut me = settled_in_a_crowd(5_000, 3);
    takes_backup(&mut me, 9, seat(2, 3));
    // Later it looks for a place nearer the host: a fetch of shallow seats only, which
    // brings none.
    assert!(
        climbs_within(&mut me, 600_000),
        "a relay at depth 4 looks for a place nearer the host"
    );
    me.me.handle_input(Input::SeatsRead, me.now);
    me.drain();
    // Its backup goes at once. The shallow sample is no sample of backups: a new one is
    // fetched, and the seat it brings is asked.
    me.advance(100);
    me.link(9, LinkInput::Failed);
    me.advance(100);
    let fetched = seat_fetches(&me.drain());
    assert!(
        !fetched.is_empty() && fetched.iter().all(|w| !matches!(w, OpenSeats::AtMost(_))),
        "a sample of any seats is fetched: {fetched:?}"
    );
    me.event(10, join_with_seat(5_000, seat(2, 3)));
    read_few_seats(&mut me);
    assert_eq!(reserved(&me.drain()), vec![keys(10).public_key()]);
}

#[test]
fn a_backup_that_takes_over_brings_the_next_one_in_at_once_and_a_second_loss_is_met_at_once() {
    // A relay at depth 4 under 8, with 9 (another branch) as its warm backup; its sample is
    // no longer fresh.
    let mut me = settled_in_a_crowd(5_000, 3);
    let branch = |branch, seat| Seat { branch, ..seat };
    takes_backup(&mut me, 9, branch(9, seat(3, 3)));
    me.advance(SAMPLE_FOR.as_millis() as Millis + 1_000);
    me.drain();
    // Its parent goes: the backup takes over, and a sample is fetched at once.
    me.link(8, LinkInput::Failed);
    let out = me.drain();
    assert_eq!(reserved(&out), vec![keys(9).public_key()]);
    assert!(
        seat_fetches(&out)
            .iter()
            .any(|w| matches!(w, OpenSeats::All)),
        "a sample is fetched with the takeover"
    );
    me.event(9, confirm(5, 9));
    me.drain();
    // Once 9 confirmed and the sample is in, the next backup is asked: its link delivered
    // all along, no settling second is waited.
    me.event(10, join_with_seat(5_000, branch(10, seat(2, 3))));
    me.event(11, join_with_seat(5_000, branch(11, seat(2, 3))));
    read_few_seats(&mut me);
    let asked = reserved(&me.drain());
    assert_eq!(asked.len(), 1, "one backup asked: {asked:?}");
    assert_eq!(me.me.pending(), Some((asked[0], true)));
    // Half a second later the new parent goes quiet too, and that backup has not answered:
    // the other seat of the same sample is asked to be our parent at once, with no fetch of
    // seats first.
    me.advance(500);
    me.link(9, LinkInput::Stalled);
    let out = me.drain();
    assert!(seat_fetches(&out).is_empty(), "{:?}", seat_fetches(&out));
    let instead = reserved(&out);
    assert_eq!(instead.len(), 1);
    assert_ne!(instead[0], asked[0]);
    assert_eq!(me.me.pending(), Some((instead[0], false)));
}

#[test]
fn a_strong_relay_deep_in_a_weak_branch_with_no_place_in_reach_asks_the_host_for_its_heads_seat() {
    // A relay of 44 outputs at depth 3 under 8, whose branch is headed by a relay of
    // `head` outputs; its backup search finds nothing.
    let asks_host = |head: u32| {
        let mut me = settled_in_a_crowd(5_000, 2);
        me.event(8, join_with_seat(5_000, Seat { head, ..seat(2, 3) }));
        read_few_seats(&mut me);
        me.drain();
        // Its look for a place nearer the host finds no shallow seat.
        assert!(climbs_within(&mut me, 600_000), "a relay at depth 3 looks");
        me.me.handle_input(Input::SeatsRead, me.now);
        reserved(&me.drain()) == vec![keys(1).public_key()]
    };
    assert!(asks_host(4), "a head of 4 outputs is clearly weaker");
    assert!(!asks_host(20), "a head of 20 is not");
    assert!(!asks_host(0), "a head not said");
}

#[test]
fn a_relay_whose_backup_takes_over_looks_for_a_place_nearer_the_host_at_once() {
    // A relay (5,000 kbit/s) at depth 3 under 8, with 9 (at depth 3, another branch) as its
    // warm backup.
    let mut me = settled_in_a_crowd(5_000, 2);
    let branch = |branch, seat| Seat { branch, ..seat };
    takes_backup(&mut me, 9, branch(9, seat(3, 3)));
    // Its round of looks for a place nearer the host brings 10, at depth 1: no gain of two
    // hops from depth 3.
    assert!(climbs_within(&mut me, 600_000), "a relay at depth 3 looks");
    me.event(10, join_with_seat(5_000, branch(11, seat(1, 3))));
    me.me.handle_input(Input::SeatsRead, me.now);
    assert!(reserved(&me.drain()).is_empty());
    // Its parent goes; the backup, a hop deeper, takes over and carries us to depth 4.
    me.advance(100);
    me.link(8, LinkInput::Failed);
    assert_eq!(reserved(&me.drain()), vec![keys(9).public_key()]);
    me.event(9, confirm(5, 9));
    // The sample fetched with the takeover brings no seat.
    read_few_seats(&mut me);
    me.drain();
    assert_eq!(
        me.me.links().one(LinkKind::Parent),
        Some(keys(9).public_key())
    );
    // From depth 4, 10's seat is two hops nearer: asked within seconds, not at the next
    // round a minute later.
    let end = me.now + CLIMB_AFTER_TAKEOVER.as_millis() as Millis + 500;
    let mut asked = Vec::new();
    while me.me.poll_timeout() <= end {
        me.now = me.me.poll_timeout();
        me.me.handle_timeout(me.now);
        let out = me.drain();
        asked.extend(reserved(&out));
        for fetch in seat_fetches(&out) {
            // The relays answer: a new backup's look finds no seat, a climb's finds 10.
            if matches!(fetch, OpenSeats::AtMost(_)) {
                me.event(10, join_with_seat(5_000, branch(11, seat(1, 3))));
                me.me.handle_input(Input::SeatsRead, me.now);
            } else {
                read_few_seats(&mut me);
            }
            asked.extend(reserved(&me.drain()));
        }
    }
    assert_eq!(asked, vec![keys(10).public_key()]);
}

/// `member` (a relay of 5,000 kbit/s) announced `seat` `ago` ms before now.
fn seat_announced_ago(me: &mut Alone, member: u8, seat: Seat, ago: Millis) {
    let now = me.now;
    me.now = now - ago;
    me.event(member, join_with_seat(5_000, seat));
    me.now = now;
}

#[test]
fn a_seat_not_renewed_on_time_is_asked_only_when_no_other_will_do() {
    let mut me = newcomer_in_a_crowd(2_000);
    // The sample: 8 at depth 1, last announced 70 s ago (a renewal is due every 60 s: most
    // likely a crashed member's seat, still on the relays), and 9 at depth 2, renewed now.
    seat_announced_ago(&mut me, 8, seat(1, 3), 70_000);
    seat_announced_ago(&mut me, 9, seat(2, 3), 0);
    read_few_seats(&mut me);
    assert_eq!(reserved(&me.drain()), vec![keys(9).public_key()]);
    // 9 refuses: the overdue seat is the last one left, and it is asked.
    me.event(9, drop_of(5, 0));
    assert_eq!(reserved(&me.drain()), vec![keys(8).public_key()]);
}

#[test]
fn a_relay_below_the_host_renews_its_open_seat_sooner() {
    let (mut me, _) = Alone::configured(5, 1, wifi(10_000), |c| c.ask_host_first = false);
    me.event(1, crowd_created(400));
    me.me.handle_input(Input::HostRead, me.now);
    me.stored_end();
    me.event(1, join_with_seat(400, seat(0, 2)));
    read_few_seats(&mut me);
    assert_eq!(reserved(&me.drain()), vec![keys(1).public_key()]);
    me.event(1, confirm_carrying(5, 1, Some("v=0 answer")));
    me.link(1, LinkInput::Connected);
    let until = me.now + 70_000;
    let announced = open_seats_announced(&mut me, until);
    assert!(
        announced.iter().all(|(_, seat)| seat.depth == 1),
        "{announced:?}"
    );
    let gaps: Vec<Millis> = announced.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.len() >= 3, "renewals {gaps:?}");
    assert!(
        gaps.iter().all(|gap| *gap == NEAR_SEAT_RENEW_SECS * 1_000),
        "renewed every {gaps:?} ms"
    );
}

#[test]
fn a_seat_near_the_host_is_overdue_sooner() {
    // Announced 20 s ago, both: 8 at depth 1 (renewed every 15 s) is overdue, 9 at depth 3
    // (every 60 s) is not, and is asked first though deeper.
    let mut me = newcomer_in_a_crowd(2_000);
    seat_announced_ago(&mut me, 8, seat(1, 3), 20_000);
    seat_announced_ago(&mut me, 9, seat(3, 3), 20_000);
    read_few_seats(&mut me);
    assert_eq!(reserved(&me.drain()), vec![keys(9).public_key()]);
}
