//! The whole product on one machine: embedded relay, a host streaming a tone with a small
//! uplink, listeners joining through Nostr signaling and real WebRTC, a relay tree forming.

use spaces_cli::demo::{DemoConfig, run_demo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_eight_listeners_form_a_two_level_tree_and_all_hear_the_tone() {
    let config = DemoConfig {
        listeners: 8,
        seconds: 6,
        host_uplink_kbps: 400,
        ..DemoConfig::default()
    };
    let report = run_demo(&config, |line| eprintln!("{line}"))
        .await
        .expect("the demo runs");
    let summary = &report.summary;
    assert!(
        summary.silent.is_empty(),
        "never heard audio: {:?}",
        summary.silent
    );
    // 400 kbit/s feeds three direct children (0.5 × 400 / 56.8): the rest must hang below.
    assert_eq!(summary.host_children, 3);
    assert!(summary.max_depth >= 2, "no relaying listener: {summary:?}");
    for listener in &report.listeners {
        assert!(
            listener.depth.is_some(),
            "{} has no path to the host",
            listener.name
        );
        assert!(
            listener.tone_detected_pct >= 95.0,
            "{} heard the tone in {:.1} % of frames",
            listener.name,
            listener.tone_detected_pct
        );
        assert!(
            listener.packets_received > 150,
            "{} received {} packets",
            listener.name,
            listener.packets_received
        );
    }
    let relaying = report
        .listeners
        .iter()
        .filter(|l| l.depth == Some(2))
        .count();
    assert!(relaying >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relaying_listener_vanishes_and_its_children_get_audio_back() {
    let config = DemoConfig {
        listeners: 8,
        seconds: 9,
        host_uplink_kbps: 400,
        kill_relaying_listener_at: Some(3),
        ..DemoConfig::default()
    };
    let report = run_demo(&config, |line| eprintln!("{line}"))
        .await
        .expect("the demo runs");
    let killed = report
        .summary
        .killed
        .clone()
        .expect("a relaying listener was killed");
    let orphans: Vec<_> = report.listeners.iter().filter(|l| l.orphaned).collect();
    assert!(
        !orphans.is_empty(),
        "the killed listener {killed} had children"
    );
    // Orphans hold warm backups that already carry the stream: at least one took over.
    assert!(
        report.summary.standby_takeovers >= 1,
        "no warm backup took over: {:?}",
        report.listeners
    );
    for orphan in orphans {
        // Re-attached elsewhere, and audio flowed again: ~5 s after the kill is ~250 packets.
        assert_ne!(
            orphan.parent.as_deref(),
            Some(killed.as_str()),
            "{} still points at the dead relay",
            orphan.name
        );
        assert!(
            orphan.depth.is_some(),
            "{} has no path to the host",
            orphan.name
        );
        let after = orphan.packets_after_kill.unwrap_or(0);
        assert!(
            after > 150,
            "{} received only {after} packets after the kill",
            orphan.name
        );
        assert!(
            orphan.tone_detected_pct >= 90.0,
            "{}: {:.1} %",
            orphan.name,
            orphan.tone_detected_pct
        );
    }
    assert!(report.summary.silent.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_listener_is_heard_by_every_other_listener_and_the_host() {
    let config = DemoConfig {
        listeners: 6,
        seconds: 9,
        host_uplink_kbps: 400,
        speakers: 1,
        ..DemoConfig::default()
    };
    let report = run_demo(&config, |line| eprintln!("{line}"))
        .await
        .expect("the demo runs");
    let speaker = report.summary.speakers.first().expect("one speaker");
    let tone = spaces_cli::demo::speaker_tone_hz(0);
    assert_eq!(speaker.tone_hz, tone);
    assert!(
        speaker.heard_by_host,
        "the host did not hear {}",
        speaker.name
    );
    assert_eq!(speaker.of, 5);
    for listener in report.listeners.iter().filter(|l| l.name != speaker.name) {
        let voice = listener
            .voices
            .iter()
            .find(|v| v.speaker == speaker.name)
            .expect("a voice entry per speaker");
        // Promoted a third into the run: ~6 s of the speaker, at its own frequency.
        assert!(
            voice.frames >= 100,
            "{} played {} frames of the speaker",
            listener.name,
            voice.frames
        );
        let hz = voice.frequency_hz.expect("audio");
        assert!(
            (hz - f64::from(tone)).abs() < 0.03 * f64::from(tone),
            "{} heard the speaker at {hz:.0} Hz, not {tone} Hz",
            listener.name
        );
        // The host's voice is still there, unmixed with the speaker's in the measurement.
        assert!(
            listener.tone_detected_pct >= 95.0,
            "{}: host tone in {:.1} % of frames",
            listener.name,
            listener.tone_detected_pct
        );
    }
    assert_eq!(speaker.heard_by, 5);
    let promoted = report
        .listeners
        .iter()
        .find(|l| l.name == speaker.name)
        .expect("the speaker reports");
    assert_eq!(promoted.role, "speaker");
    assert_eq!(promoted.depth, Some(1), "speakers mesh with the host");
}

mod sessions {
    use std::sync::Arc;
    use std::time::Duration;

    use nostr::prelude::Timestamp;
    use spaces_cli::probe::{CaptureClock, Probe};
    use spaces_core::engine::Session;
    use spaces_core::media::device::ToneSource;
    use spaces_core::protocol::{ConnectionType, EventWriter, Message, NetworkMetrics};
    use spaces_core::signaling::{PoolOptions, RelayPool};
    use spaces_tests::sessions::{
        config, keys, listener, space_on_embedded_relay, start_listeners, tone_share_since,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forged_close_and_promote_from_a_non_host_disturb_nothing() {
        let (_relay, url, space) = space_on_embedded_relay("forged", 1).await;
        let host = Session::start(config(keys(1), &space, &url, true))
            .await
            .expect("host");
        let listeners = start_listeners(2..5, &space, &url).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before: Vec<u64> = listeners
            .iter()
            .map(|l| l.stats().audio.packets_received)
            .collect();
        assert!(
            before.iter().all(|p| *p > 0),
            "everyone hears before the attack: {before:?}"
        );

        // An outsider signs a CLOSE and promotes itself, with the space's own tags.
        let attacker = keys(66);
        let (pool, _rx) = RelayPool::connect(std::slice::from_ref(&url), PoolOptions::default())
            .await
            .expect("connects");
        let writer = EventWriter::new(&attacker, &space);
        for message in [
            Message::Close,
            Message::PromoteCohost {
                target: attacker.public_key(),
            },
            Message::Remove {
                target: keys(2).public_key(),
            },
        ] {
            let event = writer.build(&message, Timestamp::now()).expect("builds");
            pool.publish(&event)
                .await
                .expect("the relay stores anything signed");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (listener, before) in listeners.iter().zip(&before) {
            let stats = listener.stats();
            assert!(
                stats.audio.packets_received > before + 50,
                "audio kept flowing: {} -> {}",
                before,
                stats.audio.packets_received
            );
            assert!(
                stats
                    .tree
                    .rejected
                    .get("unauthorized")
                    .copied()
                    .unwrap_or(0)
                    >= 2,
                "{:?}",
                stats.tree.rejected
            );
            assert!(stats.tree.parent.is_some());
        }
        for listener in listeners {
            listener.stop().await;
        }
        host.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_whose_network_changes_restarts_ice_and_hands_its_children_on() {
        let (_relay, url, space) = space_on_embedded_relay("roaming", 21).await;
        let mut host_config = config(keys(21), &space, &url, true);
        // 240 kbit/s feeds two children: the two first listeners; the others hang below.
        host_config.metrics.upload_kbps = 240;
        let host = Session::start(host_config).await.expect("host");
        let mut listeners = Vec::new();
        for n in 22..26 {
            listeners.push(
                Session::start(config(keys(n), &space, &url, false))
                    .await
                    .expect("listener"),
            );
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let relaying = listeners
            .iter()
            .position(|l| l.stats().tree.children > 0)
            .expect("a listener relays");
        let relay_key = *listeners[relaying].key();
        let children: Vec<usize> = (0..listeners.len())
            .filter(|&i| listeners[i].stats().tree.parent == Some(relay_key))
            .collect();
        assert!(!children.is_empty());
        let before: Vec<u64> = listeners
            .iter()
            .map(|l| l.stats().audio.packets_received)
            .collect();

        // The relaying phone leaves Wi-Fi for a weak cellular link: it can feed nobody now.
        listeners[relaying]
            .network_changed(NetworkMetrics {
                download_kbps: 5_000,
                upload_kbps: 100,
                max_audio_outputs: 0,
                connection: ConnectionType::Cellular,
            })
            .expect("running");
        tokio::time::sleep(Duration::from_secs(3)).await;

        let stats = listeners[relaying].stats();
        assert!(stats.tree.ice_restarts >= 1, "{stats:?}");
        assert_eq!(stats.tree.children, 0, "children handed on");
        assert_eq!(
            stats.tree.parent,
            Some(*host.key()),
            "same parent, restarted link"
        );
        for (i, listener) in listeners.iter().enumerate() {
            let now = listener.stats();
            assert!(
                now.audio.packets_received > before[i] + 100,
                "listener {i} got {} packets in 3 s after the change",
                now.audio.packets_received - before[i]
            );
            if children.contains(&i) {
                assert_ne!(now.tree.parent, Some(relay_key), "listener {i} still below");
                assert!(now.tree.parent.is_some());
            }
        }
        for listener in listeners {
            listener.stop().await;
        }
        host.stop().await;
    }

    /// Waits (10 s at most) for an event the predicate accepts.
    async fn wait_for(
        events: &mut tokio::sync::broadcast::Receiver<spaces_core::space::Command>,
        wanted: impl Fn(&spaces_core::space::Command) -> bool,
    ) -> bool {
        use tokio::sync::broadcast::error::RecvError;
        let found = async {
            loop {
                match events.recv().await {
                    Ok(event) if wanted(&event) => return true,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return false,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), found)
            .await
            .unwrap_or(false)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_raised_hand_reaches_the_host_and_the_promoted_voice_reaches_the_host() {
        use spaces_core::engine::source_id;
        use spaces_core::protocol::Role;
        use spaces_core::space::Command;

        let (_relay, url, space) = space_on_embedded_relay("stage", 31).await;
        let host = Session::start(config(keys(31), &space, &url, true))
            .await
            .expect("host");
        let mut at_host = host.events();
        let mut listener_config = config(keys(32), &space, &url, false);
        listener_config.input = Some(Box::new(ToneSource::new(700.0, 0.5)));
        let listener = Session::start(listener_config).await.expect("listener");
        let mut at_listener = listener.events();
        let me = *listener.key();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(
            host.stats().audio.sources.is_empty(),
            "a listener's microphone stays closed until it is promoted"
        );

        listener.request_speech().expect("running");
        assert!(
            wait_for(&mut at_host, |e| *e
                == Command::HandRaised {
                    peer: me,
                    raised: true
                })
            .await,
            "the host's interface sees the raised hand"
        );
        host.promote_speaker(me).expect("running");
        assert!(
            wait_for(&mut at_listener, |e| *e
                == Command::RoleChanged {
                    peer: me,
                    role: Role::Speaker
                })
            .await,
            "the listener's interface sees its promotion"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(listener.stats().tree.role, Role::Speaker);
        let voice = host
            .stats()
            .audio
            .sources
            .get(&source_id(&me))
            .cloned()
            .expect("the host plays the new speaker");
        assert!(voice.frames >= 50, "{} frames", voice.frames);
        let hz = voice.frequency_hz().expect("audio");
        assert!((hz - 700.0).abs() < 21.0, "{hz} Hz");
        listener.stop().await;
        host.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nip53_client_sees_the_room_its_listeners_and_its_end() {
        use spaces_core::protocol::filter::{room_filter, room_record_filter};
        use spaces_core::protocol::{Limits, Parser, Role, RoomStatus, Transport};
        use spaces_core::signaling::Incoming;

        let (_relay, url, space) = space_on_embedded_relay("nip53", 11).await;
        // A NIP-53 client (Nests-like) watching the room's address only.
        let (watcher, mut rx) =
            RelayPool::connect(std::slice::from_ref(&url), PoolOptions::default())
                .await
                .expect("connects");
        watcher
            .subscribe(vec![room_record_filter(&space), room_filter(&space, None)])
            .await
            .expect("subscribes");
        let host = Session::start(config(keys(11), &space, &url, true))
            .await
            .expect("host");
        let listeners = start_listeners(12..14, &space, &url).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for listener in listeners {
            listener.stop().await;
        }
        host.stop().await;

        let parser = Parser::new(Limits::default(), Some(space.clone()), None);
        let (mut live, mut ended, mut present, mut leaving) = (false, false, 0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(incoming)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            let Incoming::Event { event, .. } = incoming else {
                continue;
            };
            let Ok(parsed) = parser.parse(&event, Timestamp::now()) else {
                continue;
            };
            match parsed.message {
                Message::Room(room) => {
                    assert_eq!(room.transport, Transport::NostrSpaces);
                    assert_eq!(
                        room.participants.first(),
                        Some(&(keys(11).public_key(), Role::Host))
                    );
                    live |= room.status == RoomStatus::Live;
                    ended |= room.status == RoomStatus::Ended;
                }
                Message::Presence(p) if p.leaving => leaving += 1,
                Message::Presence(_) => present += 1,
                _ => {}
            }
            if ended && leaving == 2 {
                break;
            }
        }
        assert!(live, "the room was listed live");
        assert!(ended, "the room was marked ended on close");
        assert_eq!(present, 2, "both listeners announced presence");
        assert_eq!(leaving, 2, "both listeners announced leaving");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn weak_listeners_first_then_strong_ones_all_hear_the_tone() {
        let (_relay, url, space) = space_on_embedded_relay("weak-first", 1).await;
        let clock = CaptureClock::shared();
        let mut host_config = config(keys(1), &space, &url, true);
        // Three child slots (0.5 × 400 / 56.8).
        host_config.metrics.upload_kbps = 400;
        let host = Session::start(host_config).await.expect("host");
        let mut joined = Vec::new();
        for n in 10..13 {
            // Too weak to relay: they take the host's three seats first.
            joined.push(listener(n, 40, &space, &url, &clock).await);
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        for n in 20..28 {
            joined.push(listener(n, 5_000, &space, &url, &clock).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (listeners, probes): (Vec<Session>, Vec<Arc<Probe>>) = joined.into_iter().unzip();
        tokio::time::sleep(Duration::from_secs(8)).await;
        let before: Vec<u64> = probes.iter().map(|p| p.stats().frames_with_tone).collect();
        let window = std::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let shares = tone_share_since(&probes, &before, window.elapsed());
        let host_stats = host.stats();
        for (n, share) in shares.iter().enumerate() {
            assert!(
                *share >= 0.9,
                "listener {n} heard the tone in {:.0} % of frames: {shares:?}",
                share * 100.0
            );
        }
        assert!(
            host_stats.tree.children <= 3,
            "the host stays within its capacity: {}",
            host_stats.tree.children
        );
        let weak_at_host = listeners[..3]
            .iter()
            .filter(|l| l.stats().tree.parent == Some(*host.key()))
            .count();
        assert!(
            weak_at_host < 3,
            "a strong relay took a weak listener's seat at the host"
        );
        for session in listeners {
            session.stop().await;
        }
        host.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_host_that_sends_no_audio_keeps_its_listeners() {
        let (_relay, url, space) = space_on_embedded_relay("silent", 1).await;
        let mut host_config = config(keys(1), &space, &url, true);
        host_config.input = None;
        let host = Session::start(host_config).await.expect("host");
        let listeners = start_listeners(10..13, &space, &url).await;
        tokio::time::sleep(Duration::from_secs(12)).await;
        for session in &listeners {
            let stats = session.stats();
            assert_eq!(stats.tree.parent, Some(*host.key()), "{stats:?}");
            assert_eq!(
                stats.tree.upstream_lost, 0,
                "the silent host was never dropped"
            );
            assert_eq!(stats.tree.reservations, 1, "nobody re-reserved");
            assert_eq!(stats.audio.frames_played, 0, "keep-alives are not played");
        }
        for session in listeners {
            session.stop().await;
        }
        host.stop().await;
    }
}

/// A crowd's view over a real relay: past three members the host says the space is a crowd,
/// and every listener follows only its inbox, its neighbours' JOINs and samples of open seats
/// fetched by `#o` with `since`, `until` and `limit`. The tree still forms and every listener
/// hears the tone.
async fn a_crowd_hears_the_tone(relays: Vec<String>) {
    let config = DemoConfig {
        listeners: 8,
        seconds: 6,
        host_uplink_kbps: 400,
        crowd_at: 3,
        relays,
        ..DemoConfig::default()
    };
    let report = run_demo(&config, |line| eprintln!("{line}"))
        .await
        .expect("the demo runs");
    let summary = &report.summary;
    assert!(
        summary.silent.is_empty(),
        "never heard audio: {:?}",
        summary.silent
    );
    assert!(summary.host_children <= 3, "{summary:?}");
    assert!(summary.max_depth >= 2, "no relaying listener: {summary:?}");
    for listener in &report.listeners {
        assert!(listener.crowd, "{} follows the whole space", listener.name);
        assert!(
            listener.tone_detected_pct >= 90.0,
            "{} heard the tone in {:.1} % of frames",
            listener.name,
            listener.tone_detected_pct
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_follows_its_neighbourhood_and_every_listener_hears_the_tone() {
    a_crowd_hears_the_tone(Vec::new()).await;
}

/// The same crowd over the independent relay (PyPI `nostr-relay`): its tag index, `limit` and
/// `until` serve the samples of seats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_over_an_independent_relay_hears_the_tone() {
    let relay = spaces_tests::PythonRelay::start();
    a_crowd_hears_the_tone(vec![relay.url()]).await;
}
