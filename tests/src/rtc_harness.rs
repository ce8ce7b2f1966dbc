//! Real WebRTC links on loopback, negotiated in-process (the relay path is tested apart):
//! nodes that send a tone, forward to children and record what they receive.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use spaces_core::media::{
    CodecSettings, Decoder, Encoder, FRAME_SAMPLES, RTP_TICKS_PER_FRAME,
    device::{AudioSource, ToneSource},
};
use spaces_core::rtc::prediction::{self, IceCredentials};
use spaces_core::rtc::{
    Certificate, Forwarder, LinkConfig, LinkEvent, LinkState, PeerLink, RtpHeader, RtpPacket,
    RtpSink,
};
use tokio::sync::{mpsc, watch};

/// A packet as a node received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// RTP sequence number (each link numbers its own packets).
    pub seq: u16,
    /// RTP timestamp (kept end to end).
    pub timestamp: u32,
    /// Contributing sources (kept end to end: whose voice it is).
    pub csrc: Vec<u32>,
    /// The payload.
    pub payload: Bytes,
    /// When it arrived.
    pub at: Instant,
}

/// A participant: forwards what it receives to its children and records it.
pub struct Node {
    /// Its name.
    pub label: String,
    /// Its children.
    pub forwarder: Arc<Forwarder>,
    /// Everything received, in arrival order.
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Its DTLS identity, on every link, as a session's.
    pub certificate: Certificate,
}

impl RtpSink for Node {
    fn on_rtp(&self, _link: &str, packet: &RtpPacket) {
        self.forwarder.forward(packet);
        if let Ok(mut received) = self.received.lock() {
            received.push(Received {
                seq: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                csrc: packet.header.csrc.clone(),
                payload: packet.payload.clone(),
                at: Instant::now(),
            });
        }
    }
}

impl Node {
    /// A node with no links yet.
    pub fn new(label: &str) -> Arc<Self> {
        Arc::new(Self {
            label: label.to_owned(),
            forwarder: Arc::new(Forwarder::new(64)),
            received: Arc::default(),
            certificate: Certificate::generate().expect("certificate"),
        })
    }

    /// Packets received so far.
    pub fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Decodes what arrived (in sequence order, concealing gaps) and returns the share of
    /// 20 ms frames carrying `freq_hz`, skipping the decoder's first frames.
    pub fn tone_share(&self, freq_hz: f32) -> f64 {
        let mut packets = self.received.lock().map(|r| r.clone()).unwrap_or_default();
        packets.sort_by_key(|p| p.timestamp);
        packets.dedup_by_key(|p| p.timestamp);
        let mut decoder = Decoder::new().expect("decoder");
        let mut frame = vec![0i16; FRAME_SAMPLES];
        let mut hits = 0usize;
        let mut total = 0usize;
        for (i, packet) in packets.iter().enumerate() {
            if decoder.decode(&packet.payload, &mut frame).is_err() {
                continue;
            }
            if i >= 5 {
                total += 1;
                hits += usize::from(spaces_core::media::analysis::has_tone(&frame, freq_hz));
            }
        }
        hits as f64 / total.max(1) as f64
    }
}

/// One end of a link with its state.
pub struct End {
    /// The link.
    pub link: Arc<PeerLink>,
    /// Its latest state.
    pub state: watch::Receiver<LinkState>,
    /// Stall and resume events.
    pub alarms: mpsc::UnboundedReceiver<LinkEvent>,
    /// Every local candidate this end signalled.
    pub candidates: Arc<Mutex<Vec<String>>>,
}

/// A link of `node`'s to the peer named `label`, with `node`'s certificate: answering links
/// take the ICE `credentials` derived from the offer, as a session's do.
pub async fn link_of(
    node: &Arc<Node>,
    label: &str,
    config: &LinkConfig,
    credentials: Option<IceCredentials>,
) -> (PeerLink, mpsc::UnboundedReceiver<LinkEvent>) {
    PeerLink::new(
        label,
        config,
        &node.certificate,
        credentials,
        Arc::clone(node) as Arc<dyn RtpSink>,
    )
    .await
    .expect("link")
}

/// Connects `parent` → `child` with a real link (ICE, DTLS, SRTP on loopback) and makes the
/// parent forward to it. Returns both ends once connected.
pub async fn connect(parent: &Arc<Node>, child: &Arc<Node>, config: &LinkConfig) -> (End, End) {
    let (up, up_events) = link_of(parent, &child.label, config, None).await;
    let up = Arc::new(up);
    let offer = up.create_offer().await.expect("offer");
    // The answering end derives its ICE credentials from the offer, as a session's do.
    let credentials = prediction::answering_credentials(&offer);
    let (down, down_events) = link_of(child, &parent.label, config, credentials).await;
    let down = Arc::new(down);
    let up_end = pump(up_events, Arc::clone(&down), Arc::clone(&up));
    let down_end = pump(down_events, Arc::clone(&up), Arc::clone(&down));
    let answer = down.accept_offer(offer).await.expect("answer");
    up.accept_answer(answer).await.expect("applies answer");
    for end in [&up_end, &down_end] {
        let mut state = end.state.clone();
        tokio::time::timeout(
            Duration::from_secs(15),
            state.wait_for(|s| *s == LinkState::Connected),
        )
        .await
        .expect("connects in time")
        .expect("state channel");
    }
    parent.forwarder.add(Arc::clone(&up));
    (up_end, down_end)
}

/// Routes a link's candidates to the other side and tracks its state.
fn pump(
    mut events: mpsc::UnboundedReceiver<LinkEvent>,
    other: Arc<PeerLink>,
    own: Arc<PeerLink>,
) -> End {
    let (state_tx, state) = watch::channel(LinkState::Connecting);
    let (alarm_tx, alarms) = mpsc::unbounded_channel();
    let candidates: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&candidates);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                LinkEvent::LocalCandidate(c) => {
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(c.candidate.clone());
                    }
                    let _ = other.add_remote_candidate(c).await;
                }
                LinkEvent::State(s) => {
                    let _ = state_tx.send(s);
                }
                alarm => {
                    let _ = alarm_tx.send(alarm);
                }
            }
        }
    });
    End {
        link: own,
        state,
        alarms,
        candidates,
    }
}

/// The contributing source every streamed tone carries.
pub const TONE_SOURCE: u32 = 0x5ace_0001;

/// Sends `seconds` of a tone from `node` to its children in real time (20 ms frames).
pub async fn stream_tone(node: &Node, freq_hz: f32, seconds: u32) {
    stream_tone_from(node, freq_hz, 0, seconds).await;
}

/// As [`stream_tone`], numbering frames from `first_frame` (a stream that resumes keeps
/// counting: SRTP refuses replayed sequence numbers).
pub async fn stream_tone_from(node: &Node, freq_hz: f32, first_frame: u32, seconds: u32) {
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for packet in tone_packets(freq_hz, first_frame, seconds * 50) {
        ticker.tick().await;
        node.forwarder.forward(&packet);
    }
}

/// `count` 20 ms Opus frames of a `freq_hz` tone from frame `first_frame` on, as RTP packets
/// naming [`TONE_SOURCE`].
pub fn tone_packets(freq_hz: f32, first_frame: u32, count: u32) -> Vec<RtpPacket> {
    let mut encoder = Encoder::new(CodecSettings::default()).expect("encoder");
    let mut tone = ToneSource::new(freq_hz, 0.5);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    (first_frame..first_frame + count)
        .map(|n| {
            let _ = tone.read(&mut frame);
            let payload = encoder.encode(&frame).expect("encodes");
            RtpPacket {
                header: RtpHeader {
                    version: 2,
                    sequence_number: n as u16,
                    timestamp: n * RTP_TICKS_PER_FRAME,
                    csrc: vec![TONE_SOURCE],
                    ..RtpHeader::default()
                },
                payload: Bytes::from(payload),
            }
        })
        .collect()
}

/// Debian's coturn on loopback, stopped on drop.
pub struct TurnServer {
    port: u16,
    dir: std::path::PathBuf,
}

impl TurnServer {
    /// Starts coturn on a free port with user `spaces` / `spaces-secret`.
    pub fn start() -> Self {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("spaces-coturn-{}-{port}", std::process::id()));
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("relays/coturn.sh");
        let status = std::process::Command::new(&script)
            .arg("start")
            .arg(port.to_string())
            .arg(&dir)
            .status()
            .expect("coturn script runs");
        assert!(status.success(), "coturn did not start");
        Self { port, dir }
    }

    /// The ICE server entry for it.
    pub fn ice_server(&self) -> spaces_core::rtc::IceServer {
        spaces_core::rtc::IceServer {
            urls: vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)],
            username: "spaces".into(),
            credential: "spaces-secret".into(),
        }
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("relays/coturn.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
