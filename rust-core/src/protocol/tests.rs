//! Round trips per kind, every parse error, draft-literal peers and NIP-53 shapes.

use nostr::prelude::{Event, EventBuilder, FinalizeEvent, Keys, Kind, SecretKey, Tag, Timestamp};

use super::*;

const NOW: u64 = 1_790_000_000;

pub(crate) fn keys(n: u8) -> Keys {
    let mut bytes = [0u8; 32];
    bytes[31] = n;
    bytes[0] = 1;
    Keys::new(SecretKey::from_slice(&bytes).expect("valid scalar"))
}

/// A SHA-256 certificate fingerprint as the SDP writes it.
const FINGERPRINT: &str = "sha-256 4F:9B:9C:1B:0F:4F:47:43:1F:22:FD:D9:0E:F9:9E:E0:73:56:92:2F:6D:A9:A8:26:58:03:56:21:31:1B:5D:2E";

fn now() -> Timestamp {
    Timestamp::from_secs(NOW)
}

fn space(host: &Keys) -> SpaceRef {
    SpaceRef::new("morning-show", host.public_key()).expect("valid id")
}

fn metrics() -> NetworkMetrics {
    NetworkMetrics {
        download_kbps: 20_000,
        upload_kbps: 5_000,
        max_audio_outputs: 8,
        connection: ConnectionType::Wifi,
    }
}

/// Every message kind, as (author, message, reader that should see it in full).
fn every_message(host: &Keys, peer: &Keys) -> Vec<(Keys, Message, Keys)> {
    let (h, p) = (host.public_key(), peer.public_key());
    let candidate = IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    };
    let reservation = Reservation {
        requester: p,
        confirmer: h,
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    };
    vec![
        (
            host.clone(),
            Message::Create(SpaceInfo {
                name: "Morning show".into(),
                host_metrics: metrics(),
                cells: vec!["48.85,-2.34".into()],
                nip44: true,
                dtls: Some(FINGERPRINT.into()),
                crowd: false,
            }),
            peer.clone(),
        ),
        (host.clone(), Message::Close, peer.clone()),
        (
            peer.clone(),
            Message::Join(MemberInfo {
                name: "Ana".into(),
                metrics: metrics(),
                price: 0,
                nip44: true,
                dtls: Some(FINGERPRINT.into()),
                seat: None,
            }),
            host.clone(),
        ),
        (
            host.clone(),
            Message::Create(SpaceInfo {
                name: "Morning show".into(),
                host_metrics: metrics(),
                nip44: true,
                crowd: true,
                ..SpaceInfo::default()
            }),
            peer.clone(),
        ),
        (
            peer.clone(),
            Message::Join(MemberInfo {
                name: "Ana".into(),
                metrics: metrics(),
                nip44: true,
                seat: Some(Seat {
                    depth: 3,
                    free: 0,
                    path_kbps: 180,
                    leaf: Some(0),
                    branch: 0x0123_4567_89ab_cdef,
                    lineage: 0x8000_0000_0100_0002,
                    head: 4,
                }),
                ..MemberInfo::default()
            }),
            host.clone(),
        ),
        (
            peer.clone(),
            Message::Join(MemberInfo {
                name: "Ana".into(),
                metrics: metrics(),
                nip44: true,
                seat: Some(Seat {
                    depth: 1,
                    free: 4,
                    path_kbps: 250,
                    leaf: None,
                    branch: 9,
                    lineage: 0,
                    head: 0,
                }),
                ..MemberInfo::default()
            }),
            host.clone(),
        ),
        (peer.clone(), Message::Leave, host.clone()),
        (
            peer.clone(),
            Message::Reserve(reservation.clone()),
            host.clone(),
        ),
        (host.clone(), Message::Confirm(reservation), peer.clone()),
        (
            peer.clone(),
            Message::Drop {
                target: h,
                price: 0,
                first: false,
            },
            host.clone(),
        ),
        (host.clone(), Message::Remove { target: p }, peer.clone()),
        (
            host.clone(),
            Message::PromoteSpeaker { target: p },
            peer.clone(),
        ),
        (
            host.clone(),
            Message::PromoteCohost { target: p },
            peer.clone(),
        ),
        (host.clone(), Message::Demote { target: p }, peer.clone()),
        (
            peer.clone(),
            Message::Offer {
                target: h,
                sdp: "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n".into(),
            },
            host.clone(),
        ),
        (
            host.clone(),
            Message::Answer {
                target: p,
                sdp: "v=0\r\n".into(),
            },
            peer.clone(),
        ),
        (
            peer.clone(),
            Message::Ice {
                target: h,
                candidate,
            },
            host.clone(),
        ),
        (peer.clone(), Message::RequestSpeech, host.clone()),
        (
            host.clone(),
            Message::ProposeSpeech {
                target: p,
                note: "come up!".into(),
            },
            peer.clone(),
        ),
        (
            host.clone(),
            Message::Room(Room {
                title: "Morning show".into(),
                summary: Some("news".into()),
                status: RoomStatus::Live,
                transport: Transport::NostrSpaces,
                participants: vec![(h, Role::Host), (p, Role::Speaker)],
                cells: vec!["48.85,-2.34".into()],
            }),
            peer.clone(),
        ),
        (
            peer.clone(),
            Message::Presence(Presence {
                hand_raised: true,
                muted: true,
                publishing: false,
                on_stage: false,
                leaving: false,
            }),
            host.clone(),
        ),
        (
            peer.clone(),
            Message::Chat {
                text: "hello".into(),
            },
            host.clone(),
        ),
        (
            peer.clone(),
            Message::Reaction {
                content: "🔥".into(),
                target: Some(h),
            },
            host.clone(),
        ),
        (
            host.clone(),
            Message::Admin {
                action: AdminAction::Mute,
                target: p,
            },
            peer.clone(),
        ),
    ]
}

#[test]
fn every_kind_round_trips_through_build_sign_parse() {
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let messages = every_message(&host, &peer);
    let mut kinds: Vec<u16> = Vec::new();
    for (author, message, reader) in messages {
        let event = EventWriter::new(&author, &space)
            .build(&message, now())
            .expect("builds");
        kinds.push(event.kind.as_u16());
        let parser = Parser::new(Limits::default(), Some(space.clone()), Some(reader));
        let parsed = parser
            .parse(&event, now())
            .unwrap_or_else(|e| panic!("{}: {e}", message.name()));
        assert_eq!(parsed.message, message);
        assert_eq!(parsed.author, author.public_key());
        assert_eq!(parsed.space, space);
        assert_eq!(parsed.id, event.id);
    }
    kinds.sort_unstable();
    kinds.dedup();
    let mut all: Vec<u16> = SpaceKind::ALL.iter().map(|k| k.number()).collect();
    all.sort_unstable();
    assert_eq!(kinds, all, "every kind is exercised");
}

#[test]
fn private_payloads_are_encrypted_and_readable_only_by_their_recipient() {
    let (host, peer, other) = (keys(1), keys(2), keys(3));
    let space = space(&host);
    let offer = Message::Offer {
        target: host.public_key(),
        sdp: "v=0 secret-ip 192.0.2.7".into(),
    };
    let event = EventWriter::new(&peer, &space)
        .build(&offer, now())
        .unwrap();
    assert!(
        !event.content.contains("192.0.2.7"),
        "SDP must not travel in clear"
    );
    let outsider = Parser::new(Limits::default(), Some(space.clone()), Some(other.clone()));
    assert_eq!(outsider.parse(&event, now()), Err(ProtocolError::NotForUs));
    // A third party still sees who reserves whom (from tags), not the role.
    let reserve = Message::Reserve(Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Provider),
        standby: false,
        sdp: None,
        before_read: false,
    });
    let event = EventWriter::new(&peer, &space)
        .build(&reserve, now())
        .unwrap();
    let seen = outsider.parse(&event, now()).unwrap();
    assert_eq!(
        seen.message,
        Message::Reserve(Reservation {
            requester: peer.public_key(),
            confirmer: host.public_key(),
            role: None,
            standby: false,
            sdp: None,
            before_read: false,
        })
    );
    // The sender can read its own payload back (resync from a relay after a restart).
    let own = Parser::new(Limits::default(), Some(space.clone()), Some(peer.clone()));
    assert_eq!(own.parse(&event, now()).unwrap().message, reserve);
    // Whether a link is a warm backup is public: everyone rebuilds the same tree.
    let backup = Message::Confirm(Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: true,
        sdp: None,
        before_read: false,
    });
    let event = EventWriter::new(&host, &space)
        .build(&backup, now())
        .unwrap();
    assert!(matches!(
        outsider.parse(&event, now()).unwrap().message,
        Message::Confirm(Reservation {
            role: None,
            standby: true,
            ..
        })
    ));
    // So is a confirmer's word that a link carries audio: the same CONFIRM (it replaces the
    // first on relays), tagged.
    let delivering = Message::Delivering(Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    });
    let event = EventWriter::new(&host, &space)
        .build(&delivering, now())
        .unwrap();
    assert_eq!(event.kind, SpaceKind::ConfirmConnection.kind());
    assert!(matches!(
        outsider.parse(&event, now()).unwrap().message,
        Message::Delivering(Reservation { role: None, .. })
    ));
    assert_eq!(own.parse(&event, now()).unwrap().message, delivering);
}

#[test]
fn an_offer_rides_sealed_in_a_reserve_and_an_answer_in_a_confirm() {
    let (host, peer, other) = (keys(1), keys(2), keys(3));
    let space = space(&host);
    let reservation = |sdp: &str| Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: Some(sdp.into()),
        before_read: false,
    };
    let reserve = Message::Reserve(reservation("v=0 offer 192.0.2.7"));
    let event = EventWriter::new(&peer, &space)
        .build(&reserve, now())
        .unwrap();
    assert!(!event.content.contains("192.0.2.7"), "sealed like an OFFER");
    let at_host = Parser::new(Limits::default(), Some(space.clone()), Some(host.clone()));
    assert_eq!(at_host.parse(&event, now()).unwrap().message, reserve);
    // Everyone else sees the reservation, not the offer.
    let outsider = Parser::new(Limits::default(), Some(space.clone()), Some(other.clone()));
    assert!(matches!(
        outsider.parse(&event, now()).unwrap().message,
        Message::Reserve(Reservation {
            role: None,
            sdp: None,
            ..
        })
    ));
    let confirm = Message::Confirm(reservation("v=0 answer"));
    let event = EventWriter::new(&host, &space)
        .build(&confirm, now())
        .unwrap();
    let at_peer = Parser::new(Limits::default(), Some(space.clone()), Some(peer.clone()));
    assert_eq!(at_peer.parse(&event, now()).unwrap().message, confirm);
    // A browser writes its description as an object; the draft's payload has none.
    for (payload, sdp) in [
        (
            r#"{"type":"consumer","sdp":{"type":"offer","sdp":"v=0 b"}}"#,
            Some("v=0 b"),
        ),
        (r#"{"type":"consumer"}"#, None),
    ] {
        let sealed = nostr::nips::nip44::encrypt(
            peer.secret_key(),
            &host.public_key(),
            payload,
            nostr::nips::nip44::Version::V2,
        )
        .unwrap();
        let d = format!(
            "{}||{}||{}||{}",
            space.id(),
            host.public_key().to_hex(),
            peer.public_key().to_hex(),
            host.public_key().to_hex()
        );
        let event = raw(
            &peer,
            SpaceKind::ReserveConnection.kind().as_u16(),
            &sealed,
            vec![
                vec!["s".into(), space.id().into()],
                vec!["h".into(), host.public_key().to_hex()],
                vec!["d".into(), d],
                vec!["p".into(), host.public_key().to_hex()],
            ],
            now().as_secs(),
        );
        let Message::Reserve(r) = at_host.parse(&event, now()).unwrap().message else {
            panic!("a RESERVE")
        };
        assert_eq!(r.sdp.as_deref(), sdp, "{payload}");
    }
    // A CONFIRM re-published once the link delivers answers nothing.
    let event = EventWriter::new(&host, &space)
        .build(&Message::Delivering(reservation("v=0 stale")), now())
        .unwrap();
    assert!(matches!(
        at_peer.parse(&event, now()).unwrap().message,
        Message::Delivering(Reservation { sdp: None, .. })
    ));
}

fn raw(author: &Keys, kind: u16, content: &str, tags: Vec<Vec<String>>, at: u64) -> Event {
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags.into_iter().map(|t| Tag::parse(t).expect("tag")))
        .custom_created_at(Timestamp::from_secs(at))
        .finalize(author)
        .expect("signs")
}

fn t(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn draft_literal_peers_are_understood() {
    // Exactly the draft's shapes: plaintext JSON payloads, no speech marker, CREATE without `s`.
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let (h, p) = (host.public_key().to_hex(), peer.public_key().to_hex());
    let parser = Parser::new(Limits::default(), Some(space.clone()), Some(host.clone()));
    let create = raw(
        &host,
        1000,
        &format!(
            r#"{{"id":"morning-show","name":"Show","host":{{"publicKey":"{h}","networkMetrics":{{"downloadSpeedKbps":1000,"uploadSpeedKbps":500,"maxAudioOutputs":10,"networkConnectionType":"4g"}}}}}}"#
        ),
        vec![t(&["webrtc", "spaces"]), t(&["h", &h])],
        NOW,
    );
    let Message::Create(info) = parser.parse(&create, now()).unwrap().message else {
        panic!("not a create")
    };
    // A session's subscription sees it, though it carries no `s`.
    let seen = filter::session_filters(&space, &peer.public_key(), None)
        .iter()
        .any(|f| f.match_event(&create, nostr::prelude::MatchEventOptions::default()));
    assert!(seen, "a CREATE without `s` reaches the space's members");
    assert_eq!(info.host_metrics.connection, ConnectionType::Cellular);
    assert_eq!(info.host_metrics.upload_kbps, 500);
    let d = format!("morning-show||{h}||{p}||{h}");
    let reserve = raw(
        &peer,
        31103,
        r#"{"type":"consumer"}"#,
        vec![
            t(&["s", "morning-show"]),
            t(&["p", &h]),
            t(&["h", &h]),
            t(&["webrtc", "spaces"]),
            t(&["d", &d]),
        ],
        NOW,
    );
    assert_eq!(
        parser.parse(&reserve, now()).unwrap().message,
        Message::Reserve(Reservation {
            requester: peer.public_key(),
            confirmer: host.public_key(),
            role: Some(LinkRole::Consumer),
            standby: false,
            sdp: None,
            before_read: false,
        })
    );
    // A RESERVE without `type`, or with no content at all, is a listener's.
    for content in ["{}", "", r#"{"note":"hi"}"#] {
        let bare = raw(
            &peer,
            31103,
            content,
            vec![
                t(&["s", "morning-show"]),
                t(&["p", &h]),
                t(&["h", &h]),
                t(&["d", &d]),
            ],
            NOW,
        );
        let Message::Reserve(r) = parser.parse(&bare, now()).unwrap().message else {
            panic!("not a reserve")
        };
        assert_eq!(r.role, Some(LinkRole::Consumer), "content {content:?}");
    }
    let offer = raw(
        &peer,
        21102,
        r#"{"sdp":{"type":"offer","sdp":"v=0"}}"#,
        vec![t(&["s", "morning-show"]), t(&["p", &h]), t(&["h", &h])],
        NOW,
    );
    assert_eq!(
        parser.parse(&offer, now()).unwrap().message,
        Message::Offer {
            target: host.public_key(),
            sdp: "v=0".into()
        }
    );
    let ice = raw(
        &peer,
        21104,
        r#"{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}"#,
        vec![t(&["s", "morning-show"]), t(&["p", &h]), t(&["h", &h])],
        NOW,
    );
    assert!(matches!(
        parser.parse(&ice, now()).unwrap().message,
        Message::Ice { .. }
    ));
    let request = raw(
        &peer,
        21105,
        "",
        vec![
            t(&["s", "morning-show"]),
            t(&["p", &p]),
            t(&["h", &h]),
            t(&["d", &format!("morning-show||{h}||{p}")]),
        ],
        NOW,
    );
    assert_eq!(
        parser.parse(&request, now()).unwrap().message,
        Message::RequestSpeech
    );
    let propose = raw(
        &host,
        21105,
        "",
        vec![t(&["s", "morning-show"]), t(&["p", &p]), t(&["h", &h])],
        NOW,
    );
    assert!(matches!(
        parser.parse(&propose, now()).unwrap().message,
        Message::ProposeSpeech { .. }
    ));
}

#[test]
fn every_malformation_is_a_typed_error() {
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let h = host.public_key().to_hex();
    let parser = Parser::new(Limits::default(), Some(space.clone()), Some(host.clone()));
    let base = || vec![t(&["s", "morning-show"]), t(&["h", &h])];
    let check = |event: Event, expected: fn(&ProtocolError) -> bool, what: &str| {
        let err = parser.parse(&event, now()).expect_err(what);
        assert!(expected(&err), "{what}: got {err:?}");
    };
    check(
        raw(&peer, 1, "", base(), NOW),
        |e| matches!(e, ProtocolError::UnknownKind(1)),
        "unknown kind",
    );
    check(
        raw(&peer, 31102, &"x".repeat(70_000), base(), NOW),
        |e| matches!(e, ProtocolError::ContentTooLarge { .. }),
        "oversized",
    );
    let many: Vec<Vec<String>> = (0..300)
        .map(|i| t(&["x", &i.to_string()]))
        .chain(base())
        .collect();
    check(
        raw(&peer, 31102, "", many, NOW),
        |e| matches!(e, ProtocolError::TooManyTags { .. }),
        "too many tags",
    );
    check(
        raw(&peer, 31102, "", vec![t(&["h", &h])], NOW),
        |e| *e == ProtocolError::MissingTag("s"),
        "no s",
    );
    check(
        raw(&peer, 31102, "", vec![t(&["s", "morning-show"])], NOW),
        |e| *e == ProtocolError::MissingTag("h"),
        "no h",
    );
    check(
        raw(
            &peer,
            31102,
            "",
            vec![t(&["s", "morning-show"]), t(&["h", "zz"])],
            NOW,
        ),
        |e| matches!(e, ProtocolError::MalformedTag { tag: "h", .. }),
        "bad h",
    );
    check(
        raw(&peer, 31107, "", base(), NOW),
        |e| *e == ProtocolError::MissingTag("p"),
        "promote without p",
    );
    check(
        raw(
            &peer,
            31107,
            "",
            [base(), vec![t(&["p", "nothex"])]].concat(),
            NOW,
        ),
        |e| matches!(e, ProtocolError::MalformedTag { tag: "p", .. }),
        "bad p",
    );
    check(
        raw(&peer, 31101, "{not json", base(), NOW),
        |e| matches!(e, ProtocolError::BadContent(_)),
        "bad json",
    );
    check(
        raw(
            &peer,
            31101,
            r#"{"networkMetrics":{"uploadSpeedKbps":-5}}"#,
            base(),
            NOW,
        ),
        |e| matches!(e, ProtocolError::BadMetrics(_)),
        "negative metrics",
    );
    check(
        raw(&peer, 31101, r#"{"publicKey":"00"}"#, base(), NOW),
        |e| matches!(e, ProtocolError::BadContent(_)),
        "join naming another key",
    );
    check(
        raw(
            &peer,
            31101,
            "{}",
            [base(), vec![t(&["d", "other||x||y"])]].concat(),
            NOW,
        ),
        |e| matches!(e, ProtocolError::MalformedTag { tag: "d", .. }),
        "bad d",
    );
    check(
        raw(
            &peer,
            31102,
            "",
            vec![t(&["s", "evening-show"]), t(&["h", &h])],
            NOW,
        ),
        |e| matches!(e, ProtocolError::ForeignSpace { .. }),
        "foreign space",
    );
    let impostor = keys(9).public_key().to_hex();
    check(
        raw(
            &peer,
            31102,
            "",
            vec![t(&["s", "morning-show"]), t(&["h", &impostor])],
            NOW,
        ),
        |e| matches!(e, ProtocolError::ForeignSpace { .. }),
        "same id, other host",
    );
    check(
        raw(&peer, 31102, "", base(), NOW - 8 * 24 * 3600),
        |e| matches!(e, ProtocolError::TooOld { .. }),
        "old state",
    );
    check(
        raw(
            &peer,
            21104,
            "{}",
            [base(), vec![t(&["p", &h])]].concat(),
            NOW - 121,
        ),
        |e| matches!(e, ProtocolError::TooOld { .. }),
        "old signaling",
    );
    check(
        raw(&peer, 31102, "", base(), NOW + 301),
        |e| matches!(e, ProtocolError::InFuture { .. }),
        "future",
    );
    check(
        raw(
            &peer,
            21104,
            "bm90IG5pcDQ0",
            [base(), vec![t(&["p", &h])]].concat(),
            NOW,
        ),
        |e| matches!(e, ProtocolError::Decryption(_)),
        "garbage ciphertext",
    );
    check(
        raw(
            &peer,
            21105,
            "",
            [base(), vec![t(&["p", &h]), t(&["speech", "request"])]].concat(),
            NOW,
        ),
        |e| matches!(e, ProtocolError::MalformedTag { tag: "p", .. }),
        "request naming another peer",
    );
    check(
        raw(
            &peer,
            4312,
            "",
            vec![
                t(&["a", &space.room_address()]),
                t(&["p", &h]),
                t(&["action", "ban"]),
            ],
            NOW,
        ),
        |e| matches!(e, ProtocolError::MalformedTag { tag: "action", .. }),
        "unknown admin action",
    );
    check(
        raw(&peer, 10312, "", vec![t(&["a", "30311:abc:d"])], NOW),
        |e| *e == ProtocolError::MissingTag("a"),
        "presence for a non-room",
    );
    // Tampering after signing breaks the id.
    let mut tampered = raw(&peer, 31102, "", base(), NOW);
    tampered.content = "changed".into();
    check(tampered, |e| *e == ProtocolError::BadSignature, "tampered");
}

#[test]
fn space_ids_and_room_addresses_are_validated() {
    let host = keys(1).public_key();
    for bad in ["", "a||b", "line\nbreak", &"x".repeat(129)] {
        assert!(
            matches!(
                SpaceRef::new(bad, host),
                Err(ProtocolError::InvalidSpaceId(_))
            ),
            "{bad:?}"
        );
    }
    let space = SpaceRef::new("room-1", host).unwrap();
    assert_eq!(
        SpaceRef::from_room_address(&space.room_address()),
        Ok(space)
    );
    for bad in ["30311:aa:b", "30312:nothex:b", "30312", "30312:aa"] {
        assert!(SpaceRef::from_room_address(bad).is_err(), "{bad}");
    }
}

/// Room events as deployed clients write them (tag shapes from the research note, signed
/// here with throwaway keys): they read as listed spaces marked with their own transport.
#[test]
fn nip53_rooms_of_other_clients_read_as_listed_spaces() {
    let host = keys(5);
    let speaker = keys(6).public_key().to_hex();
    let h = host.public_key().to_hex();
    let discovery = Parser::new(Limits::default(), None, None);
    let fixtures: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/nip53-rooms.json")).unwrap();
    for fixture in fixtures.as_array().unwrap() {
        let name = fixture["client"].as_str().unwrap();
        let tags: Vec<Vec<String>> = fixture["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| {
                tag.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .unwrap()
                            .replace("$HOST", &h)
                            .replace("$SPEAKER", &speaker)
                            .replace("$ROOMHOST", &keys(7).public_key().to_hex())
                    })
                    .collect()
            })
            .collect();
        let kind = u16::try_from(fixture["kind"].as_u64().unwrap()).unwrap();
        let event = raw(
            &host,
            kind,
            fixture["content"].as_str().unwrap_or(""),
            tags,
            NOW,
        );
        let parsed = discovery
            .parse(&event, now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = &fixture["expect"];
        match parsed.message {
            Message::Room(room) => {
                assert_eq!(room.title, expect["title"].as_str().unwrap(), "{name}");
                let status = match room.status {
                    RoomStatus::Live => "live",
                    RoomStatus::Ended => "ended",
                    RoomStatus::Planned => "planned",
                    RoomStatus::Private => "private",
                };
                assert_eq!(status, expect["status"].as_str().unwrap(), "{name}");
                let transport = match &room.transport {
                    Transport::Moq { .. } => "moq",
                    Transport::Service(_) => "service",
                    Transport::NostrSpaces => "nostr-spaces",
                    Transport::Unknown => "unknown",
                };
                assert_eq!(transport, expect["transport"].as_str().unwrap(), "{name}");
                let roles: Vec<String> = room
                    .participants
                    .iter()
                    .map(|(_, r)| r.to_nip53().to_owned())
                    .collect();
                let expected_roles: Vec<String> = expect["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(roles, expected_roles, "{name}");
            }
            Message::Presence(p) => {
                assert_eq!(p.hand_raised, expect["hand"].as_bool().unwrap(), "{name}");
                assert_eq!(p.leaving, expect["leaving"].as_bool().unwrap(), "{name}");
                assert_eq!(
                    parsed.space.host(),
                    &keys(7).public_key(),
                    "{name}: room host from the a tag"
                );
            }
            Message::Admin { action, .. } => assert_eq!(
                action == AdminAction::Mute,
                expect["mute"].as_bool().unwrap(),
                "{name}"
            ),
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn proof_of_work_is_read_from_the_id_up_to_the_committed_target() {
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let reserve = Message::Reserve(Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    });
    let writer = EventWriter::new(&peer, &space);
    let parser = Parser::new(Limits::default(), Some(space.clone()), Some(host.clone()));
    let mined = writer.build_with_work(&reserve, now(), 10).expect("mines");
    let parsed = parser.parse(&mined, now()).expect("parses");
    assert_eq!(parsed.work, 10, "the committed target, which the id meets");
    assert_eq!(parsed.message, reserve);
    let plain = writer.build(&reserve, now()).expect("builds");
    assert_eq!(parser.parse(&plain, now()).expect("parses").work, 0);
    // A nonce tag claiming more than the id has proves only what the id has.
    let d = space.d_tag(&[&peer.public_key(), &host.public_key()]);
    let claimed = raw(
        &peer,
        SpaceKind::DropConnection.number(),
        "",
        vec![
            t(&["s", space.id()]),
            t(&["h", &host.public_key().to_hex()]),
            t(&["d", &d]),
            t(&["p", &host.public_key().to_hex()]),
            t(&["nonce", "1", "30"]),
            t(&["pow", "99"]),
        ],
        now().as_secs(),
    );
    let parsed = parser.parse(&claimed, now()).expect("parses");
    assert!(parsed.work < 30);
    assert_eq!(
        parsed.message,
        Message::Drop {
            target: host.public_key(),
            price: 0,
            first: false,
        },
        "a price nobody would pay is no price"
    );
}

#[test]
fn we_announce_nip44_and_write_in_clear_only_when_asked() {
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let parser = Parser::new(Limits::default(), Some(space.clone()), None);
    let writer = EventWriter::new(&peer, &space);
    let join = writer
        .build(
            &Message::Join(MemberInfo {
                name: "p".into(),
                metrics: metrics(),
                price: 0,
                nip44: false,
                dtls: None,
                seat: None,
            }),
            now(),
        )
        .expect("builds");
    let Message::Join(info) = parser.parse(&join, now()).expect("parses").message else {
        panic!("not a join")
    };
    assert!(
        info.nip44,
        "our JOIN says we read NIP-44, whatever the struct said"
    );
    let reserve = Message::Reserve(Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: None,
        before_read: false,
    });
    let sealed = writer.build(&reserve, now()).expect("builds");
    assert!(!sealed.content.starts_with('{'), "NIP-44 by default");
    let clear = EventWriter::new(&peer, &space)
        .plaintext(true)
        .build(&reserve, now())
        .expect("builds");
    assert_eq!(clear.content, r#"{"type":"consumer"}"#);
    // A reader without the recipient's key (a draft-literal client) reads the clear one.
    assert_eq!(
        parser.parse(&clear, now()).expect("parses").message,
        reserve
    );
}

#[test]
fn a_verified_event_is_checked_once_and_parses_as_a_checked_one() {
    let peer = keys(2);
    let h = keys(1).public_key().to_hex();
    let tags = vec![t(&["s", "morning-show"]), t(&["h", &h])];
    let good = raw(&peer, 31102, "", tags, NOW);
    let mut tampered = good.clone();
    tampered.content = "changed".into();
    assert_eq!(
        VerifiedEvent::check(tampered),
        Err(ProtocolError::BadSignature)
    );
    let verified = VerifiedEvent::check(good.clone()).expect("a good signature");
    let parser = Parser::new(Limits::default(), None, None);
    let now = Timestamp::from(NOW);
    assert!(
        parser.parse(&good, now).is_ok(),
        "a LEAVE of space morning-show"
    );
    assert_eq!(
        parser.parse_verified(&verified, now),
        parser.parse(&good, now)
    );
    assert_eq!(verified.into_inner(), good);
}

#[test]
fn a_reserve_asked_before_the_space_was_read_and_its_confirm_say_so_in_public_and_nothing_else_does()
 {
    let (host, peer, other) = (keys(1), keys(2), keys(3));
    let space = space(&host);
    let first = Reservation {
        requester: peer.public_key(),
        confirmer: host.public_key(),
        role: Some(LinkRole::Consumer),
        standby: false,
        sdp: Some("v=0 offer".into()),
        before_read: true,
    };
    let event = EventWriter::new(&peer, &space)
        .build(&Message::Reserve(first.clone()), now())
        .expect("builds");
    assert!(
        event
            .tags
            .iter()
            .any(|t| t.as_slice() == ["ask".to_owned(), "first".to_owned()]),
        "{:?}",
        event.tags
    );
    // The host reads all of it; an outsider still sees that it was asked first (so that its
    // view does not count the seat as taken), not the offer.
    let at_host = Parser::new(Limits::default(), Some(space.clone()), Some(host.clone()))
        .parse(&event, now())
        .expect("parses");
    assert_eq!(at_host.message, Message::Reserve(first.clone()));
    let outsider = Parser::new(Limits::default(), Some(space.clone()), Some(other))
        .parse(&event, now())
        .expect("parses");
    assert!(matches!(outsider.message, Message::Reserve(r) if r.before_read && r.sdp.is_none()));
    // Its CONFIRM says so too (a requester that asked again since knows it for stale); the
    // CONFIRM saying the link delivers never does, even if asked to.
    let marked = |event: &Event| {
        event
            .tags
            .iter()
            .any(|t| t.as_slice() == ["ask".to_owned(), "first".to_owned()])
    };
    let confirm = EventWriter::new(&host, &space)
        .build(&Message::Confirm(first.clone()), now())
        .expect("builds");
    assert!(marked(&confirm));
    let at_peer = Parser::new(Limits::default(), Some(space.clone()), Some(peer.clone()));
    let parsed = at_peer.parse(&confirm, now()).expect("parses");
    assert!(matches!(parsed.message, Message::Confirm(r) if r.before_read));
    let delivering = EventWriter::new(&host, &space)
        .build(&Message::Delivering(first), now())
        .expect("builds");
    assert!(
        !delivering
            .tags
            .iter()
            .any(|t| t.as_slice().first().is_some_and(|n| n == "ask"))
    );
    // So does the refusal of such an ask, and only of such an ask.
    for first in [true, false] {
        let refusal = Message::Drop {
            target: peer.public_key(),
            price: 0,
            first,
        };
        let drop = EventWriter::new(&host, &space)
            .build(&refusal, now())
            .expect("builds");
        assert_eq!(marked(&drop), first);
        assert_eq!(
            at_peer.parse(&drop, now()).expect("parses").message,
            refusal
        );
    }
    let parsed = at_peer.parse(&delivering, now()).expect("parses");
    assert!(matches!(parsed.message, Message::Delivering(r) if !r.before_read));
}

/// What a session signed elsewhere hands its signer to open before the parser reads it.
#[test]
fn a_signer_elsewhere_opens_only_payloads_sealed_between_us_and_a_peer() {
    let (me, peer, other) = (keys(1), keys(2), keys(3));
    let space = space(&me);
    let offer = |from: &Keys, to: &Keys, clear: bool| {
        EventWriter::new(from, &space)
            .plaintext(clear)
            .build(
                &Message::Offer {
                    target: to.public_key(),
                    sdp: "v=0".into(),
                },
                Timestamp::now(),
            )
            .expect("builds")
    };
    let mine = me.public_key();
    assert_eq!(
        sealed_peer(&offer(&peer, &me, false), &mine),
        Some(peer.public_key())
    );
    assert_eq!(
        sealed_peer(&offer(&me, &peer, false), &mine),
        Some(peer.public_key()),
        "what we sealed, we can read back"
    );
    assert_eq!(
        sealed_peer(&offer(&peer, &other, false), &mine),
        None,
        "not ours"
    );
    assert_eq!(
        sealed_peer(&offer(&peer, &me, true), &mine),
        None,
        "in clear"
    );
    // A draft client's RESERVE of a plain listener carries no content at all.
    let empty = raw(
        &peer,
        SpaceKind::ReserveConnection.number(),
        "",
        vec![t(&["p", &mine.to_hex()])],
        Timestamp::now().as_secs(),
    );
    assert_eq!(sealed_peer(&empty, &mine), None, "nothing to open");
    let chat = EventWriter::new(&peer, &space)
        .build(&Message::Chat { text: "hi".into() }, Timestamp::now())
        .expect("builds");
    assert_eq!(sealed_peer(&chat, &mine), None, "a public kind");
}

/// `peer`'s JOIN of `host`'s space with one more tag, written by hand.
fn join_tagged(host: &Keys, peer: &Keys, space: &SpaceRef, tag: Vec<String>) -> Event {
    raw(
        peer,
        SpaceKind::Join.number(),
        r#"{"name":"p"}"#,
        vec![
            t(&["s", space.id()]),
            t(&["h", &host.public_key().to_hex()]),
            t(&["d", &space.d_tag(&[&peer.public_key()])]),
            tag,
        ],
        now().as_secs(),
    )
}

#[test]
fn a_dtls_fingerprint_is_read_only_when_well_formed() {
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let parser = Parser::new(Limits::default(), Some(space.clone()), None);
    let join_with = |value: &str| join_tagged(&host, &peer, &space, t(&["dtls", value]));
    let dtls = |value: &str| match parser.parse(&join_with(value), now()) {
        Ok(SpaceEvent {
            message: Message::Join(info),
            ..
        }) => info.dtls,
        other => panic!("a JOIN with a dtls tag still parses: {other:?}"),
    };
    assert_eq!(dtls(FINGERPRINT).as_deref(), Some(FINGERPRINT));
    assert_eq!(
        dtls(&FINGERPRINT.to_ascii_lowercase()).as_deref(),
        Some(FINGERPRINT),
        "hex digits in either case"
    );
    for bad in [
        "md5 4F:9B",
        "sha-256 4F:9B",
        "sha-256 ZZ:9B:9C:1B:0F:4F:47:43:1F:22:FD:D9:0E:F9:9E:E0:73:56:92:2F:6D:A9:A8:26:58:03:56:21:31:1B:5D:2E",
        "",
    ] {
        assert_eq!(dtls(bad), None, "{bad:?} reads as no fingerprint");
    }
}

#[test]
fn an_open_seat_is_indexed_by_space_depth_and_shard_and_a_malformed_one_reads_as_none() {
    let (host, peer) = (keys(1), keys(2));
    let space = space(&host);
    let seat = |free, leaf| Seat {
        depth: 2,
        free,
        path_kbps: 100,
        leaf,
        branch: 5,
        lineage: 6,
        head: 30,
    };
    let o_tags = |seat: Seat| {
        let join = Message::Join(MemberInfo {
            seat: Some(seat),
            ..MemberInfo::default()
        });
        let event = EventWriter::new(&peer, &space)
            .build(&join, now())
            .expect("builds");
        event
            .tags
            .iter()
            .map(|t| t.as_slice())
            .filter(|t| t.first().is_some_and(|n| n == OPEN_SEAT_TAG))
            .filter_map(|t| t.get(1).cloned())
            .collect::<Vec<_>>()
    };
    let shard = peer.public_key().to_bytes()[0] % SEAT_SHARDS;
    let open = vec![
        space.id().to_owned(),
        format!("{}:2", space.id()),
        format!("{}/{shard}", space.id()),
    ];
    assert_eq!(o_tags(seat(3, None)), open);
    assert_eq!(
        o_tags(seat(0, Some(0))),
        open,
        "a leaf's seat to hand on is open too"
    );
    assert!(
        o_tags(seat(0, None)).is_empty(),
        "a full seat is not indexed"
    );
    let parser = Parser::new(Limits::default(), Some(space.clone()), None);
    let join_with = |value: Vec<&str>| {
        let mut seat = vec!["seat"];
        seat.extend(value);
        join_tagged(&host, &peer, &space, t(&seat))
    };
    let parsed = |value: Vec<&str>| match parser.parse(&join_with(value), now()) {
        Ok(SpaceEvent {
            message: Message::Join(info),
            ..
        }) => info.seat,
        other => panic!("a JOIN with a seat tag still parses: {other:?}"),
    };
    assert_eq!(
        parsed(vec!["1", "2", "300", "-", "00000000000000ff"]),
        Some(Seat {
            depth: 1,
            free: 2,
            path_kbps: 300,
            leaf: None,
            branch: 255,
            lineage: 0,
            head: 0,
        }),
        "a seat without its lineage (an older build) names none"
    );
    // The lineage and the branch head's outputs, each said or not (an older build).
    let lineage = "0000000000000a01";
    for (extra, expected) in [
        (vec![lineage], (0xa01, 0)),
        (vec![lineage, "17"], (0xa01, 17)),
    ] {
        let mut value = vec!["1", "2", "300", "-", "00000000000000ff"];
        value.extend(extra);
        assert_eq!(parsed(value).map(|s| (s.lineage, s.head)), Some(expected));
    }
    for bad in [
        vec!["1", "2"],
        vec!["x", "2", "300"],
        vec!["99", "2", "300"],
        vec!["1", "5000", "300"],
        vec!["1", "2", "300", "many"],
        vec!["1", "2", "300", "-", "not hex"],
        vec!["1", "2", "300", "-", "00000000000000ff", "not hex"],
        vec!["1", "2", "300", "-", "00000000000000ff", "0", "many"],
        vec!["1", "2", "300", "-", "00000000000000ff", "0", "5000"],
    ] {
        assert_eq!(parsed(bad.clone()), None, "{bad:?}");
    }
}
