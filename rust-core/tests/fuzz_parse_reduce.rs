//! Bounded fuzzing of parse + reduce: random and mutated events, signed by a small pool of
//! keys, never panic, and the space's invariants hold after every event.
//!
//! The number of cases per property follows `PROPTEST_CASES` (CI runs the default).

use nostr::prelude::{Event, EventBuilder, FinalizeEvent, Keys, Kind, SecretKey, Tag, Timestamp};
use proptest::prelude::*;
use spaces_core::protocol::{
    AdminAction, EventWriter, Limits, LinkRole, MemberInfo, Message, Parser, Presence, Reservation,
    Role, SpaceEvent, SpaceInfo, SpaceRef,
};
use spaces_core::space::{Command, Space};

const NOW: u64 = 1_790_000_000;

fn pool() -> Vec<Keys> {
    (1..=5u8)
        .map(|n| {
            let mut bytes = [7u8; 32];
            bytes[31] = n;
            Keys::new(SecretKey::from_slice(&bytes).expect("valid"))
        })
        .collect()
}

fn space_ref(keys: &[Keys]) -> SpaceRef {
    SpaceRef::new("fuzz-space", keys[0].public_key()).expect("valid")
}

/// A random, usually well-formed message from one of the pool's keys.
fn message(keys: Vec<Keys>) -> impl Strategy<Value = (usize, Message)> {
    let peers: Vec<_> = keys.iter().map(Keys::public_key).collect();
    (
        0..keys.len(),
        0..peers.len(),
        0..21u8,
        any::<bool>(),
        "[a-z ]{0,12}",
    )
        .prop_map(move |(author, t, which, flag, text)| {
            let target = peers[t];
            let message = match which {
                0 => Message::Create(SpaceInfo {
                    name: text,
                    ..SpaceInfo::default()
                }),
                1 => Message::Close,
                2 | 3 => Message::Join(MemberInfo {
                    name: text,
                    ..MemberInfo::default()
                }),
                4 => Message::Leave,
                5 => Message::Reserve(Reservation {
                    requester: peers[author],
                    confirmer: target,
                    role: Some(LinkRole::Provider),
                    standby: false,
                    sdp: Some(text.clone()),
                    before_read: false,
                }),
                6 => Message::Confirm(Reservation {
                    requester: target,
                    confirmer: peers[author],
                    role: Some(LinkRole::Consumer),
                    standby: false,
                    sdp: None,
                    before_read: false,
                }),
                7 => Message::Drop {
                    target,
                    price: (text.len() % 25) as u8,
                    first: text.len() % 2 == 0,
                },
                8 => Message::Remove { target },
                9 => Message::PromoteSpeaker { target },
                10 => Message::PromoteCohost { target },
                11 => Message::Demote { target },
                12 => Message::Offer { target, sdp: text },
                13 => Message::Answer { target, sdp: text },
                14 => Message::RequestSpeech,
                15 => Message::ProposeSpeech { target, note: text },
                16 => Message::Presence(Presence {
                    hand_raised: flag,
                    leaving: !flag && text.len() > 10,
                    ..Presence::default()
                }),
                17 => Message::Chat { text },
                18 => Message::Reaction {
                    content: text,
                    target: Some(target),
                },
                19 => Message::Admin {
                    action: if flag {
                        AdminAction::Kick
                    } else {
                        AdminAction::Mute
                    },
                    target,
                },
                _ => Message::Room(spaces_core::protocol::Room {
                    title: text,
                    summary: None,
                    status: if flag {
                        spaces_core::protocol::RoomStatus::Ended
                    } else {
                        spaces_core::protocol::RoomStatus::Live
                    },
                    transport: spaces_core::protocol::Transport::NostrSpaces,
                    participants: vec![],
                    cells: vec![],
                }),
            };
            (author, message)
        })
}

/// A random raw event: any kind near ours, tags from a pool of shapes, junk content.
fn raw_event(keys: Vec<Keys>) -> impl Strategy<Value = Event> {
    let space = space_ref(&keys);
    let host = keys[0].public_key().to_hex();
    let peer = keys[1].public_key().to_hex();
    let tag_pool = vec![
        vec!["s".to_owned(), space.id().to_owned()],
        vec!["s".to_owned(), "other".to_owned()],
        vec!["h".to_owned(), host.clone()],
        vec!["h".to_owned(), "zz".to_owned()],
        vec!["p".to_owned(), peer.clone()],
        vec!["p".to_owned()],
        vec!["d".to_owned(), format!("{}||{host}||{peer}", space.id())],
        vec!["d".to_owned(), "||||".to_owned()],
        vec!["a".to_owned(), space.room_address()],
        vec!["a".to_owned(), "30312:".to_owned()],
        vec!["speech".to_owned(), "propose".to_owned()],
        vec!["action".to_owned(), "kick".to_owned()],
        vec!["hand".to_owned(), "1".to_owned()],
        vec!["status".to_owned(), "ended".to_owned()],
        vec!["leaving".to_owned()],
    ];
    let kinds = vec![
        1000u16, 1001, 31101, 31102, 31103, 31104, 31105, 31106, 31107, 31108, 31109, 21102, 21103,
        21104, 21105, 30312, 10312, 1311, 7, 4312, 1, 30311,
    ];
    let contents = vec![
        String::new(),
        "{}".to_owned(),
        "{".to_owned(),
        format!(
            r#"{{"id":"fuzz-space","name":"x","host":{{"publicKey":"{host}","networkMetrics":{{"uploadSpeedKbps":1e308}}}}}}"#
        ),
        r#"{"networkMetrics":{"downloadSpeedKbps":"NaN","maxAudioOutputs":-1}}"#.to_owned(),
        r#"{"type":"sideways"}"#.to_owned(),
        r#"{"sdp":5}"#.to_owned(),
        r#"{"ice":{"candidate":"c","sdpMLineIndex":70000}}"#.to_owned(),
        "AjIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEy".to_owned(),
        "x".repeat(70_000),
    ];
    (
        0..keys.len(),
        prop::sample::select(kinds),
        prop::collection::vec(prop::sample::select(tag_pool), 0..8),
        prop::sample::select(contents),
        -400i64..400,
    )
        .prop_map(move |(author, kind, tags, content, skew)| {
            EventBuilder::new(Kind::from(kind), content)
                .tags(tags.into_iter().filter_map(|t| Tag::parse(t).ok()))
                .custom_created_at(Timestamp::from_secs(NOW.saturating_add_signed(skew)))
                .finalize(&keys[author])
                .expect("signs")
        })
}

fn check_invariants(space: &Space, commands: &[Command], was_closed: bool) {
    let host = *space.space_ref().host();
    assert_eq!(space.role_of(&host), Role::Host);
    for peer in space.members().keys() {
        assert!(!space.is_removed(peer), "a removed peer is a member");
        if *peer != host {
            assert_ne!(space.role_of(peer), Role::Host, "a second host");
        }
    }
    if was_closed {
        assert!(space.is_closed(), "a closed space reopened");
        assert!(commands.is_empty(), "commands after close");
    }
}

proptest! {
    #[test]
    fn well_formed_sequences_keep_the_invariants(
        steps in prop::collection::vec((message(pool()), 0..5usize, -30i64..30), 1..40)
    ) {
        let keys = pool();
        let space_ref = space_ref(&keys);
        let mut spaces: Vec<(Parser, Space)> = keys
            .iter()
            .map(|k| (
                Parser::new(Limits::default(), Some(space_ref.clone()), Some(k.clone())),
                Space::new(space_ref.clone(), k.public_key()),
            ))
            .collect();
        for (i, ((author, message), _viewer, skew)) in steps.into_iter().enumerate() {
            let at = Timestamp::from_secs((NOW + i as u64).saturating_add_signed(skew));
            let event = EventWriter::new(&keys[author], &space_ref).build(&message, at).expect("builds");
            let now = Timestamp::from_secs(NOW + i as u64);
            for (parser, space) in &mut spaces {
                let was_closed = space.is_closed();
                if let Ok(parsed) = parser.parse(&event, now) {
                    let commands = space.apply(&parsed, now).unwrap_or_default();
                    check_invariants(space, &commands, was_closed);
                }
            }
        }
    }

    #[test]
    fn random_events_never_panic_and_change_nothing_when_refused(
        events in prop::collection::vec(raw_event(pool()), 1..30)
    ) {
        let keys = pool();
        let space_ref = space_ref(&keys);
        let parser = Parser::new(Limits::default(), Some(space_ref.clone()), Some(keys[1].clone()));
        let mut space = Space::new(space_ref, keys[1].public_key());
        let now = Timestamp::from_secs(NOW);
        for event in events {
            let parsed: Result<SpaceEvent, _> = parser.parse(&event, now);
            if let Ok(parsed) = parsed {
                let before = space.clone();
                let was_closed = space.is_closed();
                match space.apply(&parsed, now) {
                    Ok(commands) => check_invariants(&space, &commands, was_closed),
                    Err(_) => prop_assert_eq!(&space, &before),
                }
            }
        }
    }
}
