//! The authority matrix, ordering, idempotence and the reservation flow.

use nostr::prelude::{EventId, Keys, PublicKey, SecretKey, Timestamp};

use super::*;
use crate::protocol::{
    AdminAction, IceCandidate, LinkRole, MemberInfo, Message, NetworkMetrics, Presence,
    Reservation, Role, RoomStatus, SpaceEvent, SpaceInfo, SpaceRef,
};

const T0: u64 = 1_790_000_000;

fn key(n: u8) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes[31] = n;
    Keys::new(SecretKey::from_slice(&bytes).expect("valid")).public_key()
}

const HOST: u8 = 1;
const COHOST: u8 = 2;
const SPEAKER: u8 = 3;
const LISTENER: u8 = 4;
const OUTSIDER: u8 = 5;
const REMOVED: u8 = 6;
const COHOST2: u8 = 7;

/// A space with every kind of participant, seen by the listener.
struct World {
    space: Space,
    next: u32,
}

impl World {
    fn new() -> Self {
        let space_ref = SpaceRef::new("show", key(HOST)).unwrap();
        let mut world = Self {
            space: Space::new(space_ref, key(LISTENER)),
            next: 0,
        };
        world.ok(
            HOST,
            Message::Create(SpaceInfo {
                name: "Show".into(),
                ..SpaceInfo::default()
            }),
            0,
        );
        for peer in [COHOST, SPEAKER, LISTENER, REMOVED, COHOST2] {
            world.ok(peer, Message::Join(MemberInfo::default()), 1);
        }
        world.ok(
            HOST,
            Message::PromoteCohost {
                target: key(COHOST),
            },
            2,
        );
        world.ok(
            HOST,
            Message::PromoteCohost {
                target: key(COHOST2),
            },
            2,
        );
        world.ok(
            HOST,
            Message::PromoteSpeaker {
                target: key(SPEAKER),
            },
            2,
        );
        world.ok(
            HOST,
            Message::Remove {
                target: key(REMOVED),
            },
            3,
        );
        world
    }

    fn event(&mut self, author: u8, message: Message, at: u64) -> SpaceEvent {
        self.next += 1;
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&self.next.to_be_bytes());
        SpaceEvent {
            id: EventId::from_byte_array(id),
            author: key(author),
            created_at: Timestamp::from_secs(T0 + at),
            space: self.space.space_ref().clone(),
            message,
            work: 0,
        }
    }

    fn apply(&mut self, author: u8, message: Message, at: u64) -> Result<Vec<Command>, Rejection> {
        let event = self.event(author, message, at);
        self.space.apply(&event, Timestamp::from_secs(T0 + at))
    }

    fn ok(&mut self, author: u8, message: Message, at: u64) -> Vec<Command> {
        let name = message.name();
        self.apply(author, message, at)
            .unwrap_or_else(|e| panic!("{name} by {author}: {e}"))
    }
}

#[test]
fn the_authority_matrix() {
    type Action = fn() -> Message;
    let actions: [(&str, Action, &[u8]); 6] = [
        ("close", || Message::Close, &[HOST]),
        (
            "promote co-host",
            || Message::PromoteCohost {
                target: key(LISTENER),
            },
            &[HOST],
        ),
        (
            "promote speaker",
            || Message::PromoteSpeaker {
                target: key(LISTENER),
            },
            &[HOST, COHOST],
        ),
        (
            "demote",
            || Message::Demote {
                target: key(SPEAKER),
            },
            &[HOST, COHOST],
        ),
        (
            "remove",
            || Message::Remove {
                target: key(LISTENER),
            },
            &[HOST, COHOST],
        ),
        (
            "propose speech",
            || Message::ProposeSpeech {
                target: key(LISTENER),
                note: String::new(),
            },
            &[HOST, COHOST],
        ),
    ];
    for (name, action, allowed) in actions {
        for author in [HOST, COHOST, SPEAKER, LISTENER, OUTSIDER, REMOVED] {
            let mut world = World::new();
            let before = world.space.clone();
            let result = world.apply(author, action(), 10);
            if allowed.contains(&author) {
                assert!(
                    result.is_ok(),
                    "{name} by {author} should be accepted: {result:?}"
                );
            } else {
                let rejection = result.expect_err(name);
                let expected = if author == REMOVED {
                    "removed_peer"
                } else {
                    "unauthorized"
                };
                assert_eq!(rejection.reason(), expected, "{name} by {author}");
                assert_eq!(world.space, before, "{name} by {author} changed the state");
            }
        }
    }
}

#[test]
fn only_the_host_acts_on_a_cohost_and_nobody_on_the_host() {
    let mut world = World::new();
    for message in [
        Message::Demote {
            target: key(COHOST2),
        },
        Message::Remove {
            target: key(COHOST2),
        },
        Message::PromoteSpeaker {
            target: key(COHOST2),
        },
    ] {
        let name = message.name();
        assert_eq!(
            world.apply(COHOST, message, 10).map_err(|e| e.reason()),
            Err("unauthorized"),
            "{name}"
        );
    }
    assert_eq!(world.space.role_of(&key(COHOST2)), Role::Cohost);
    for author in [HOST, COHOST] {
        for message in [
            Message::Demote { target: key(HOST) },
            Message::Remove { target: key(HOST) },
        ] {
            assert!(matches!(
                world.apply(author, message, 10),
                Err(Rejection::TargetIsHost(_))
            ));
        }
    }
    assert!(matches!(
        world.apply(
            HOST,
            Message::PromoteSpeaker {
                target: key(REMOVED)
            },
            10
        ),
        Err(Rejection::TargetRemoved(_))
    ));
    world.ok(
        HOST,
        Message::Demote {
            target: key(COHOST2),
        },
        11,
    );
    assert_eq!(world.space.role_of(&key(COHOST2)), Role::Listener);
}

#[test]
fn a_removed_peer_cannot_come_back() {
    let mut world = World::new();
    assert!(!world.space.members().contains_key(&key(REMOVED)));
    assert_eq!(
        world.apply(REMOVED, Message::Join(MemberInfo::default()), 100),
        Err(Rejection::RemovedPeer(key(REMOVED)))
    );
    assert_eq!(
        world.apply(REMOVED, Message::Presence(Presence::default()), 100),
        Err(Rejection::RemovedPeer(key(REMOVED)))
    );
    assert!(!world.space.members().contains_key(&key(REMOVED)));
}

#[test]
fn member_only_actions_from_non_members_are_ignored() {
    let mut world = World::new();
    let before = world.space.clone();
    let reservation = Reservation {
        requester: key(OUTSIDER),
        confirmer: key(LISTENER),
        role: None,
        standby: false,
        sdp: None,
        before_read: false,
    };
    let messages = [
        Message::Chat { text: "hi".into() },
        Message::Reaction {
            content: "+".into(),
            target: None,
        },
        Message::RequestSpeech,
        Message::Reserve(reservation),
        Message::Offer {
            target: key(LISTENER),
            sdp: "v=0".into(),
        },
        Message::Drop {
            target: key(LISTENER),
            price: 0,
            first: false,
        },
    ];
    for message in messages {
        let name = message.name();
        assert_eq!(
            world.apply(OUTSIDER, message, 10).map_err(|e| e.reason()),
            Err("not_a_member"),
            "{name}"
        );
    }
    assert_eq!(world.space, before);
}

#[test]
fn role_conflicts_resolve_by_created_at_then_id_whatever_the_arrival_order() {
    // Promote at t=20 arrives first; an older demote (t=15) arriving later is stale.
    let mut world = World::new();
    world.ok(
        HOST,
        Message::PromoteSpeaker {
            target: key(LISTENER),
        },
        20,
    );
    assert_eq!(
        world.apply(
            COHOST,
            Message::Demote {
                target: key(LISTENER)
            },
            15
        ),
        Err(Rejection::Stale("demote"))
    );
    assert_eq!(world.space.role_of(&key(LISTENER)), Role::Speaker);

    // Same second: the greater event id wins, in either arrival order.
    let mut finals = Vec::new();
    for reversed in [false, true] {
        let mut world = World::new();
        let promote = world.event(
            HOST,
            Message::PromoteSpeaker {
                target: key(LISTENER),
            },
            30,
        );
        let demote = world.event(
            COHOST,
            Message::Demote {
                target: key(LISTENER),
            },
            30,
        );
        let winner = if promote.id > demote.id {
            Role::Speaker
        } else {
            Role::Listener
        };
        let order = if reversed {
            [&demote, &promote]
        } else {
            [&promote, &demote]
        };
        for event in order {
            let _ = world.space.apply(event, Timestamp::from_secs(T0 + 30));
        }
        assert_eq!(world.space.role_of(&key(LISTENER)), winner);
        finals.push(world.space.role_of(&key(LISTENER)));
    }
    assert_eq!(finals[0], finals[1]);
}

#[test]
fn a_backlog_applies_in_causal_order() {
    let mut world = World::new();
    let join = world.event(OUTSIDER, Message::Join(MemberInfo::default()), 40);
    let promote = world.event(
        HOST,
        Message::PromoteSpeaker {
            target: key(OUTSIDER),
        },
        41,
    );
    let leave = world.event(OUTSIDER, Message::Leave, 42);
    // Relays return stored events newest first.
    let results = world
        .space
        .apply_all([&leave, &promote, &join], Timestamp::from_secs(T0 + 50));
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert!(!world.space.members().contains_key(&key(OUTSIDER)));
    // A join sent before the leave but delivered after it stays stale.
    let mut world = World::new();
    let join = world.event(OUTSIDER, Message::Join(MemberInfo::default()), 40);
    let leave = world.event(OUTSIDER, Message::Leave, 42);
    world
        .space
        .apply(&leave, Timestamp::from_secs(T0 + 42))
        .unwrap();
    assert_eq!(
        world.space.apply(&join, Timestamp::from_secs(T0 + 43)),
        Err(Rejection::Stale("join"))
    );
}

#[test]
fn duplicates_and_replays_are_idempotent() {
    let mut world = World::new();
    let events = [
        world.event(OUTSIDER, Message::Join(MemberInfo::default()), 10),
        world.event(
            HOST,
            Message::PromoteSpeaker {
                target: key(OUTSIDER),
            },
            11,
        ),
        world.event(OUTSIDER, Message::Chat { text: "hi".into() }, 12),
    ];
    for event in &events {
        world
            .space
            .apply(event, Timestamp::from_secs(T0 + 20))
            .unwrap();
    }
    let after_once = world.space.clone();
    for event in events.iter().rev() {
        assert_eq!(
            world.space.apply(event, Timestamp::from_secs(T0 + 21)),
            Err(Rejection::Duplicate)
        );
    }
    assert_eq!(world.space, after_once);
}

#[test]
fn forged_close_and_promote_disturb_nothing() {
    let mut world = World::new();
    let before = world.space.clone();
    assert!(matches!(
        world.apply(SPEAKER, Message::Close, 10),
        Err(Rejection::Unauthorized { .. })
    ));
    assert!(matches!(
        world.apply(
            LISTENER,
            Message::PromoteCohost {
                target: key(LISTENER)
            },
            10
        ),
        Err(Rejection::Unauthorized { .. })
    ));
    assert!(matches!(
        world.apply(
            OUTSIDER,
            Message::PromoteSpeaker {
                target: key(OUTSIDER)
            },
            10
        ),
        Err(Rejection::Unauthorized { .. })
    ));
    assert_eq!(world.space, before);
    assert!(!world.space.is_closed());
}

#[test]
fn close_is_final() {
    let mut world = World::new();
    assert_eq!(
        world.ok(HOST, Message::Close, 10),
        vec![Command::SpaceClosed]
    );
    assert_eq!(
        world.apply(LISTENER, Message::Chat { text: "?".into() }, 11),
        Err(Rejection::SpaceClosed)
    );
    assert_eq!(
        world.apply(HOST, Message::Create(SpaceInfo::default()), 12),
        Err(Rejection::SpaceClosed)
    );
    assert_eq!(world.space.room_record().status, RoomStatus::Ended);
}

#[test]
fn the_reservation_handshake_reaches_the_right_peer() {
    let mut world = World::new();
    // The speaker reserves a link with us (we are the listener).
    let reservation = Reservation {
        requester: key(SPEAKER),
        confirmer: key(LISTENER),
        role: Some(LinkRole::Provider),
        standby: false,
        sdp: Some("v=0 offer".into()),
        before_read: false,
    };
    let commands = world.ok(SPEAKER, Message::Reserve(reservation.clone()), 10);
    assert_eq!(
        commands,
        vec![Command::ConnectionRequested {
            from: key(SPEAKER),
            role: Some(LinkRole::Provider),
            standby: false,
            work: 0,
            offer: Some("v=0 offer".into()),
            first: false,
        }]
    );
    assert!(matches!(
        world.space.links().get(&(key(SPEAKER), key(LISTENER))),
        Some(LinkState::Reserved { .. })
    ));
    // A confirmation we never asked for is refused.
    let unsolicited = Reservation {
        requester: key(LISTENER),
        confirmer: key(COHOST),
        role: None,
        standby: false,
        sdp: None,
        before_read: false,
    };
    assert_eq!(
        world.apply(COHOST, Message::Confirm(unsolicited), 11),
        Err(Rejection::UnknownReservation)
    );
    // Our own reservation, confirmed by the host.
    let ours = Reservation {
        requester: key(LISTENER),
        confirmer: key(HOST),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    };
    assert_eq!(
        world.ok(LISTENER, Message::Reserve(ours.clone()), 12),
        vec![]
    );
    assert_eq!(
        world.ok(HOST, Message::Confirm(ours), 13),
        vec![Command::ConnectionConfirmed {
            by: key(HOST),
            answer: None
        }]
    );
    // A warm backup beside the tree link: confirmed, and marked as a backup for everyone.
    let backup = Reservation {
        requester: key(LISTENER),
        confirmer: key(SPEAKER),
        role: Some(LinkRole::Consumer),
        standby: true,
        sdp: None,
        before_read: false,
    };
    world.ok(LISTENER, Message::Reserve(backup.clone()), 14);
    assert_eq!(
        world.ok(SPEAKER, Message::Confirm(backup), 15),
        vec![Command::ConnectionConfirmed {
            by: key(SPEAKER),
            answer: None
        }]
    );
    assert!(matches!(
        world.space.links().get(&(key(LISTENER), key(SPEAKER))),
        Some(LinkState::Confirmed { standby: true, .. })
    ));
    assert!(matches!(
        world.space.links().get(&(key(LISTENER), key(HOST))),
        Some(LinkState::Confirmed { standby: false, .. })
    ));
    let candidate = IceCandidate {
        candidate: String::new(),
        sdp_mid: None,
        sdp_m_line_index: None,
    };
    assert_eq!(
        world.ok(
            HOST,
            Message::Ice {
                target: key(LISTENER),
                candidate: candidate.clone()
            },
            14
        ),
        vec![Command::RemoteCandidate {
            from: key(HOST),
            candidate: candidate.clone()
        }]
    );
    assert_eq!(
        world.apply(
            HOST,
            Message::Ice {
                target: key(SPEAKER),
                candidate
            },
            15
        ),
        Err(Rejection::NotForUs)
    );
    assert_eq!(
        world.ok(
            HOST,
            Message::Drop {
                target: key(LISTENER),
                price: 0,
                first: false,
            },
            16
        ),
        vec![Command::ConnectionDropped(key(HOST))]
    );
    assert!(
        !world
            .space
            .links()
            .contains_key(&(key(LISTENER), key(HOST)))
    );
    // Links of a peer who leaves are forgotten.
    world.ok(SPEAKER, Message::Leave, 17);
    assert!(world.space.links().is_empty());
}

#[test]
fn nip53_presence_joins_raises_hands_and_leaves() {
    let mut world = World::new();
    let hand = Presence {
        hand_raised: true,
        ..Presence::default()
    };
    assert_eq!(
        world.ok(OUTSIDER, Message::Presence(hand), 10),
        vec![
            Command::MemberJoined(key(OUTSIDER)),
            Command::HandRaised {
                peer: key(OUTSIDER),
                raised: true
            }
        ]
    );
    assert_eq!(
        world.space.raised_hands().collect::<Vec<_>>(),
        vec![&key(OUTSIDER)]
    );
    // Promotion lowers the hand.
    let commands = world.ok(
        HOST,
        Message::PromoteSpeaker {
            target: key(OUTSIDER),
        },
        11,
    );
    assert!(commands.contains(&Command::HandRaised {
        peer: key(OUTSIDER),
        raised: false
    }));
    assert_eq!(
        world.ok(
            OUTSIDER,
            Message::Presence(Presence {
                leaving: true,
                ..Presence::default()
            }),
            12
        ),
        vec![Command::MemberLeft(key(OUTSIDER))]
    );
}

#[test]
fn admin_commands_need_authority_and_freshness() {
    let mut world = World::new();
    let stale = world.event(
        COHOST,
        Message::Admin {
            action: AdminAction::Kick,
            target: key(LISTENER),
        },
        10,
    );
    let now = Timestamp::from_secs(T0 + 10 + ADMIN_COMMAND_TTL_SECS + 1);
    assert!(matches!(
        world.space.apply(&stale, now),
        Err(Rejection::AdminCommandExpired { .. })
    ));
    assert!(matches!(
        world.apply(
            SPEAKER,
            Message::Admin {
                action: AdminAction::Mute,
                target: key(LISTENER)
            },
            20
        ),
        Err(Rejection::Unauthorized { .. })
    ));
    assert_eq!(
        world.ok(
            COHOST,
            Message::Admin {
                action: AdminAction::Mute,
                target: key(LISTENER)
            },
            21
        ),
        vec![Command::MuteRequested { by: key(COHOST) }]
    );
    assert_eq!(
        world.ok(
            COHOST,
            Message::Admin {
                action: AdminAction::Kick,
                target: key(LISTENER)
            },
            22
        ),
        vec![Command::PeerRemoved(key(LISTENER))]
    );
    assert!(world.space.is_removed(&key(LISTENER)));
}

#[test]
fn the_room_record_lists_host_then_staff() {
    let world = World::new();
    let room = world.space.room_record();
    assert_eq!(room.title, "Show");
    assert_eq!(room.status, RoomStatus::Live);
    assert_eq!(room.participants[0], (key(HOST), Role::Host));
    let roles: Vec<Role> = room.participants.iter().map(|(_, r)| *r).collect();
    assert_eq!(
        roles,
        vec![Role::Host, Role::Cohost, Role::Cohost, Role::Speaker]
    );
}

#[test]
fn events_of_another_space_are_refused() {
    let mut world = World::new();
    let mut event = world.event(LISTENER, Message::Chat { text: "x".into() }, 10);
    event.space = SpaceRef::new("other", key(HOST)).unwrap();
    assert_eq!(
        world.space.apply(&event, Timestamp::from_secs(T0 + 10)),
        Err(Rejection::ForeignSpace)
    );
}

#[test]
fn a_heartbeat_never_makes_a_join_stale() {
    let mut world = World::new();
    let heartbeat = Message::Presence(Presence::default());
    world.ok(OUTSIDER, heartbeat.clone(), 20);
    // A JOIN sent a second before the heartbeat arrives after it: its metrics still count.
    let join = |upload_kbps| {
        Message::Join(MemberInfo {
            name: String::new(),
            metrics: NetworkMetrics {
                upload_kbps,
                ..NetworkMetrics::default()
            },
            price: 0,
            nip44: false,
            dtls: None,
            seat: None,
        })
    };
    world.ok(OUTSIDER, join(3_000), 19);
    let metrics = |world: &World| world.space.members()[&key(OUTSIDER)].metrics.upload_kbps;
    assert_eq!(metrics(&world), 3_000);
    // A heartbeat in the same second as a newer JOIN does not hide it either.
    world.ok(OUTSIDER, heartbeat, 30);
    world.ok(OUTSIDER, join(4_000), 30);
    assert_eq!(metrics(&world), 4_000);
    // JOINs still order among themselves.
    assert!(world.apply(OUTSIDER, join(5_000), 25).is_err());
    assert_eq!(metrics(&world), 4_000);
    assert_eq!(
        world.space.last_seen(&key(OUTSIDER)),
        Some(Timestamp::from_secs(T0 + 30))
    );
}

#[test]
fn a_delivering_confirm_proves_a_seat_in_either_order_and_is_no_confirmation() {
    let mut world = World::new();
    let delivering = |requester| {
        Message::Delivering(Reservation {
            requester: key(requester),
            confirmer: key(HOST),
            role: None,
            standby: false,
            sdp: None,
            before_read: false,
        })
    };
    // Seen before the CONFIRM (relays may deliver them in either order): a proven seat.
    assert_eq!(world.ok(HOST, delivering(SPEAKER), 11), vec![]);
    assert!(matches!(
        world.space.links().get(&(key(SPEAKER), key(HOST))),
        Some(LinkState::Confirmed {
            delivering: true,
            ..
        })
    ));
    // To the requester it is no confirmation: without our RESERVE it means nothing, and
    // after the CONFIRM it starts nothing new.
    assert_eq!(
        world.apply(HOST, delivering(LISTENER), 12),
        Err(Rejection::UnknownReservation)
    );
    let reservation = Reservation {
        requester: key(LISTENER),
        confirmer: key(HOST),
        role: None,
        standby: false,
        sdp: None,
        before_read: false,
    };
    world.ok(LISTENER, Message::Reserve(reservation.clone()), 13);
    assert_eq!(
        world.ok(HOST, Message::Confirm(reservation), 14),
        vec![Command::ConnectionConfirmed {
            by: key(HOST),
            answer: None
        }]
    );
    assert_eq!(world.ok(HOST, delivering(LISTENER), 15), vec![]);
}

#[test]
fn the_confirm_of_an_ask_given_up_is_not_the_answer_to_the_ask_that_replaced_it() {
    let mut world = World::new();
    let ask = |confirmer: u8, before_read: bool| Reservation {
        requester: key(LISTENER),
        confirmer: key(confirmer),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read,
    };
    let confirmed = |by: u8| {
        vec![Command::ConnectionConfirmed {
            by: key(by),
            answer: None,
        }]
    };
    // Asked the host before reading, gave that up, asked it again after reading: the CONFIRM
    // of the first ask (it says so) is stale; the one of the second is ours.
    world.ok(LISTENER, Message::Reserve(ask(HOST, true)), 10);
    world.ok(LISTENER, Message::Reserve(ask(HOST, false)), 10);
    assert_eq!(
        world.apply(HOST, Message::Confirm(ask(HOST, true)), 10),
        Err(Rejection::UnknownReservation)
    );
    assert_eq!(
        world.ok(HOST, Message::Confirm(ask(HOST, false)), 11),
        confirmed(HOST)
    );
    // A draft client never echoes the mark: its CONFIRM of an ask made before the read is
    // the answer to it.
    world.ok(LISTENER, Message::Reserve(ask(SPEAKER, true)), 12);
    assert_eq!(
        world.ok(SPEAKER, Message::Confirm(ask(SPEAKER, false)), 12),
        confirmed(SPEAKER)
    );
}
