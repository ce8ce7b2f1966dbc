//! Real WebRTC (ICE, DTLS, SRTP) on loopback: multi-hop forwarding without transcoding, fan-out,
//! a vanishing child, stall detection.

use std::sync::Arc;
use std::time::Duration;

use spaces_core::media::RTP_TICKS_PER_FRAME;
use spaces_core::rtc::{
    Certificate, LinkConfig, LinkEvent, LinkState, PeerLink, RtcError, prediction,
};
use spaces_tests::rtc_harness::{
    End, Node, TONE_SOURCE, connect, link_of, stream_tone, stream_tone_from, tone_packets,
};

const TONE: f32 = 440.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_crosses_three_forwarding_hops() {
    let config = LinkConfig::loopback();
    let (host, a, b, c) = (
        Node::new("host"),
        Node::new("a"),
        Node::new("b"),
        Node::new("c"),
    );
    let _ab = connect(&host, &a, &config).await;
    let _bc = connect(&a, &b, &config).await;
    let _cd = connect(&b, &c, &config).await;
    stream_tone(&host, TONE, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in [&a, &b, &c] {
        assert!(
            node.count() >= 140,
            "{} received {} of 150 packets",
            node.label,
            node.count()
        );
    }
    // Payloads arrive bit-identical at every depth, still naming their source: nothing
    // re-encoded or re-attributed on the way.
    let frame_100 = |n: &Arc<Node>| {
        n.received
            .lock()
            .map(|r| {
                r.iter()
                    .find(|p| p.timestamp == 100 * RTP_TICKS_PER_FRAME)
                    .map(|p| (p.payload.clone(), p.csrc.clone()))
            })
            .ok()
            .flatten()
    };
    assert!(frame_100(&a).is_some());
    assert_eq!(frame_100(&a), frame_100(&c));
    assert_eq!(frame_100(&c).map(|(_, csrc)| csrc), Some(vec![TONE_SOURCE]));
    let share = c.tone_share(TONE);
    assert!(
        share >= 0.95,
        "tone in {:.1} % of frames at depth 3",
        share * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_parent_feeds_ten_children() {
    let config = LinkConfig::loopback();
    let parent = Node::new("parent");
    let children: Vec<_> = (0..10).map(|i| Node::new(&format!("child-{i}"))).collect();
    let mut links = Vec::new();
    for child in &children {
        links.push(connect(&parent, child, &config).await);
    }
    stream_tone(&parent, TONE, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for child in &children {
        assert!(
            child.count() >= 95,
            "{} received {} of 100",
            child.label,
            child.count()
        );
        assert!(child.tone_share(TONE) >= 0.95, "{}", child.label);
    }
}

/// The receive path writes to a child itself unless the child's link is busy; then the
/// forwarding task writes that packet and the child's next ones until it has caught up. A link
/// is always busy for its first packet (its codec is learnt on that first write), so a burst
/// right after connecting takes both paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_each_child_whole_and_in_order() {
    let config = LinkConfig::loopback();
    let parent = Node::new("parent");
    let children: Vec<_> = (0..2).map(|i| Node::new(&format!("child-{i}"))).collect();
    let mut links = Vec::new();
    for child in &children {
        links.push(connect(&parent, child, &config).await);
    }
    // 30 packets a child: the node's queue (64) holds a whole burst for both.
    for packet in tone_packets(TONE, 0, 30) {
        parent.forwarder.forward(&packet);
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(parent.forwarder.dropped(), 0);
    for child in &children {
        let received = child.received.lock().map(|r| r.clone()).unwrap_or_default();
        let timestamps: Vec<u32> = received.iter().map(|p| p.timestamp).collect();
        let sent: Vec<u32> = (0..30).map(|n| n * RTP_TICKS_PER_FRAME).collect();
        assert_eq!(timestamps, sent, "{}: frames in arrival order", child.label);
        let seqs: Vec<u16> = received.iter().map(|p| p.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{}: sequence numbers {seqs:?}",
            child.label
        );
        assert!(child.tone_share(TONE) >= 0.95, "{}", child.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanishing_child_does_not_disturb_its_siblings() {
    let config = LinkConfig::loopback();
    let parent = Node::new("parent");
    let children: Vec<_> = (0..4).map(|i| Node::new(&format!("child-{i}"))).collect();
    let mut ends = Vec::new();
    for child in &children {
        ends.push(connect(&parent, child, &config).await);
    }
    let streaming = {
        let parent = Arc::clone(&parent);
        tokio::spawn(async move { stream_tone(&parent, TONE, 3).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Child 0's device disappears: its side of the link is gone without a goodbye.
    ends[0].1.link.abandon().await;
    streaming.await.expect("stream task");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for child in &children[1..] {
        assert!(
            child.count() >= 143,
            "{} received {} of 150",
            child.label,
            child.count()
        );
        assert!(child.tone_share(TONE) >= 0.95, "{}", child.label);
    }
    assert!(
        children[0].count() < 100,
        "the vanished child stopped receiving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_link_is_reported_stalled_then_resumed() {
    let config = LinkConfig::loopback();
    let (parent, child) = (Node::new("parent"), Node::new("child"));
    let (_up, mut down) = connect(&parent, &child, &config).await;
    stream_tone(&parent, TONE, 1).await;
    // The parent goes silent: the child's end reports it, long before ICE would notice.
    let alarm = tokio::time::timeout(Duration::from_secs(5), down.alarms.recv())
        .await
        .expect("an alarm");
    assert_eq!(alarm, Some(LinkEvent::Stalled));
    stream_tone_from(&parent, TONE, 50, 1).await;
    let alarm = tokio::time::timeout(Duration::from_secs(5), down.alarms.recv())
        .await
        .expect("an alarm");
    assert_eq!(alarm, Some(LinkEvent::Resumed));
}

/// Every alarm `end` raises within `window`.
async fn alarms_within(end: &mut End, window: Duration) -> Vec<LinkEvent> {
    let mut alarms = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(alarm)) = tokio::time::timeout_at(deadline, end.alarms.recv()).await {
        alarms.push(alarm);
    }
    alarms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_parent_says_goodbye_and_a_vanishing_one_does_not() {
    let config = LinkConfig::loopback();
    let parent = Node::new("parent");
    let (told, untold) = (Node::new("told"), Node::new("untold"));
    let (to_told, mut at_told) = connect(&parent, &told, &config).await;
    let (to_untold, mut at_untold) = connect(&parent, &untold, &config).await;
    stream_tone(&parent, TONE, 1).await;
    to_told.link.close().await;
    to_untold.link.abandon().await;
    let (heard, silence) = tokio::join!(
        alarms_within(&mut at_told, Duration::from_secs(1)),
        alarms_within(&mut at_untold, Duration::from_secs(1)),
    );
    // The goodbye comes before the stall window ends: the child moves on without waiting.
    assert_eq!(heard.first(), Some(&LinkEvent::Goodbye), "{heard:?}");
    assert!(!silence.contains(&LinkEvent::Goodbye), "{silence:?}");
    assert_eq!(silence.first(), Some(&LinkEvent::Stalled), "{silence:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_links_go_through_a_real_turn_server() {
    let turn = spaces_tests::rtc_harness::TurnServer::start();
    let config = LinkConfig {
        ice_servers: vec![turn.ice_server()],
        relay_only: true,
        ..LinkConfig::loopback()
    };
    let (parent, child) = (Node::new("parent"), Node::new("child"));
    let (up, down) = connect(&parent, &child, &config).await;
    stream_tone(&parent, TONE, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.count() >= 95,
        "received {} of 100 through TURN",
        child.count()
    );
    assert!(child.tone_share(TONE) >= 0.95);
    // Neither side signalled anything but relay candidates, trickled or in its description:
    // no device address leaves.
    for end in [&up, &down] {
        let mut candidates = end.candidates.lock().expect("lock").clone();
        let description = end.link.local_description().await.expect("described");
        candidates.extend(
            description
                .lines()
                .filter(|l| l.starts_with("a=candidate:"))
                .map(str::to_owned),
        );
        assert!(!candidates.is_empty());
        assert!(
            candidates.iter().all(|c| c.contains("typ relay")),
            "{candidates:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_and_answer_carry_host_candidates_and_connect_without_trickling() {
    let config = LinkConfig::loopback();
    let sink = Node::new("sink");
    let (up, mut up_events) = link_of(&sink, "child", &config, None).await;
    let (down, mut down_events) = link_of(&sink, "parent", &config, None).await;
    let offer = up.create_offer().await.expect("offer");
    assert!(offer.contains("a=candidate:"), "{offer}");
    let answer = down.accept_offer(offer).await.expect("answer");
    assert!(answer.contains("a=candidate:"), "{answer}");
    up.accept_answer(answer).await.expect("answer applied");
    // Nothing is trickled: whatever either side gathers stays here, and what it reports
    // was in its description already.
    let connected = |events: &mut tokio::sync::mpsc::UnboundedReceiver<LinkEvent>,
                     link: &PeerLink| {
        let mut trickled = Vec::new();
        while let Ok(event) = events.try_recv() {
            match event {
                LinkEvent::LocalCandidate(c) if !link.described(&c) => trickled.push(c),
                LinkEvent::State(LinkState::Connected) => return Ok(trickled),
                _ => {}
            }
        }
        Err(trickled)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connects without trickle"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        for (done, events, link) in [
            (&mut up_done, &mut up_events, &up),
            (&mut down_done, &mut down_events, &down),
        ] {
            match connected(events, link) {
                Ok(trickled) => {
                    assert!(trickled.is_empty(), "{trickled:?}");
                    *done = true;
                }
                Err(trickled) => assert!(trickled.is_empty(), "{trickled:?}"),
            }
        }
    }
    up.close().await;
    down.close().await;
}

/// Waits until `events` reports the link connected; candidates are all in the descriptions.
async fn connected(events: &mut tokio::sync::mpsc::UnboundedReceiver<LinkEvent>) {
    let wait = async {
        while let Some(event) = events.recv().await {
            if matches!(event, LinkEvent::State(LinkState::Connected)) {
                return;
            }
        }
        panic!("the link's events ended before it connected");
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_predicts_its_parents_answer_connects_and_hears_before_the_answer_arrives() {
    let config = LinkConfig::loopback();
    let (parent, child) = (Node::new("parent"), Node::new("child"));
    let (at_child, mut child_events) = link_of(&child, "parent", &config, None).await;
    let offer = at_child.create_offer().await.expect("offer");
    // The parent's fingerprint, as its JOIN announced it.
    assert!(
        at_child
            .predict(parent.certificate.fingerprint())
            .await
            .expect("the predicted answer applies"),
        "an awaited offer is predicted"
    );
    let credentials = prediction::answering_credentials(&offer);
    let (at_parent, mut parent_events) = link_of(&parent, "child", &config, credentials).await;
    let at_parent = Arc::new(at_parent);
    let answer = at_parent.accept_offer(offer).await.expect("answer");
    // The answer is held back: both ends connect on the parent's checks alone.
    connected(&mut parent_events).await;
    connected(&mut child_events).await;
    parent.forwarder.add(Arc::clone(&at_parent));
    stream_tone(&parent, TONE, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(child.count() >= 45, "{} of 50 packets", child.count());
    assert!(child.tone_share(TONE) >= 0.95);
    // When it arrives, it agrees, and changes nothing.
    at_child
        .accept_answer(answer)
        .await
        .expect("the real answer is the predicted one");
    assert!(
        !at_child
            .predict(parent.certificate.fingerprint())
            .await
            .expect("no-op"),
        "an answered offer is not predicted again"
    );
    at_child.close().await;
    at_parent.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_the_predicted_one_is_refused() {
    let config = LinkConfig::loopback();
    let (parent, child) = (Node::new("parent"), Node::new("child"));
    let announced = Certificate::generate().expect("certificate");
    for credentials_follow in [true, false] {
        let (at_child, _) = link_of(&child, "parent", &config, None).await;
        let offer = at_child.create_offer().await.expect("offer");
        // A parent that announced another certificate than the one it uses, or whose
        // credentials do not follow from the offer (another dialect).
        let fingerprint = if credentials_follow {
            announced.fingerprint()
        } else {
            parent.certificate.fingerprint()
        };
        assert!(at_child.predict(fingerprint).await.expect("applies"));
        let credentials = credentials_follow
            .then(|| prediction::answering_credentials(&offer))
            .flatten();
        let (at_parent, _) = link_of(&parent, "child", &config, credentials).await;
        let answer = at_parent.accept_offer(offer).await.expect("answer");
        assert_eq!(
            at_child.accept_answer(answer).await,
            Err(RtcError::Mispredicted)
        );
        at_child.close().await;
        at_parent.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_renegotiates_the_same_link_and_audio_continues() {
    let config = LinkConfig::loopback();
    let (parent, child) = (Node::new("parent"), Node::new("child"));
    let (up, down) = connect(&parent, &child, &config).await;
    stream_tone(&parent, TONE, 1).await;
    let before = child.count();
    // A network change on the offering side: new ICE credentials, same link, same SRTP.
    let ufrag = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    let first_offer = up
        .link
        .local_description()
        .await
        .expect("an offer was made");
    let offer = up.link.restart_ice().await.expect("restart offer");
    assert_ne!(
        ufrag(&offer),
        ufrag(&first_offer),
        "ICE restarts with new credentials"
    );
    assert!(
        down.link.renegotiates(&offer).await,
        "the peer takes the restart for its link's:\n{first_offer}\n{offer}"
    );
    let answer = down
        .link
        .accept_offer(offer)
        .await
        .expect("the peer accepts the restart on its link");
    up.link.accept_answer(answer).await.expect("answer applied");
    stream_tone_from(&parent, TONE, 50, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = child.count() - before;
    assert!(after >= 95, "{after} of 100 packets after the restart");
    assert!(child.tone_share(TONE) >= 0.95);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_reports_tell_a_parent_what_its_child_lost() {
    let config = LinkConfig::loopback();
    let (host, a) = (Node::new("host"), Node::new("a"));
    let (parent_end, child_end) = connect(&host, &a, &config).await;
    assert_eq!(
        parent_end.link.sent_loss(),
        None,
        "no receiver report before any audio"
    );
    assert_eq!(
        child_end.link.received_loss().await,
        None,
        "nothing expected before any audio"
    );
    stream_tone(&host, TONE, 3).await;
    // The last packets may still be on their way through the child's stack: the counts read
    // below must include them, or the second read finds them "new".
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The child's RTCP receiver reports reach the parent (what its uplink estimate rests
    // on), and the child counts what it lost itself (its inbound loss, against which it
    // judges its own children's reports). Loopback loses nothing.
    let sent = parent_end.link.sent_loss();
    assert!(
        sent.is_some_and(|share| share < 0.02),
        "the parent reads its child's reports: {sent:?}"
    );
    let received = child_end.link.received_loss().await;
    assert!(
        received.is_some_and(|share| share < 0.02),
        "the child counts what it lost: {received:?}"
    );
    // Read again with nothing new: nothing expected, nothing reported.
    assert_eq!(child_end.link.received_loss().await, None);
}
