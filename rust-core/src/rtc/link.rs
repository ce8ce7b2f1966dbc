//! A WebRTC link to one peer: audio-only (Opus), offer/answer carrying the candidates gathered
//! by then (later ones trickled), state events, fast stall detection, ICE restart.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ::rtc::interceptor::{ReceiverReportBuilder, SenderReportBuilder, Slot};
use ::rtc::media_stream::MediaStreamTrack;
use ::rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use ::rtc::rtcp::goodbye::Goodbye;
use ::rtc::rtp;
use ::rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::{TrackLocalStaticRTP, TryWrite};
use webrtc::media_stream::track_remote::{RtpSink as TrackSink, TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, RTCStatsReportEntry, Registry, StatsSelector,
};
use webrtc::runtime::Runtime;

use super::prediction::{IceCredentials, agree, candidates, fingerprint, predicted_answer};
use super::reports::{ReportReader, ReportedLoss};
use super::stall::{StallChange, StallDetector};
use super::{Certificate, LinkConfig, RtcError};
use crate::protocol::IceCandidate;

/// What a link reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// A local ICE candidate: to send to the peer unless the offer or answer carried it
    /// already ([`PeerLink::described`]).
    LocalCandidate(IceCandidate),
    /// The connection state changed.
    State(LinkState),
    /// No packet for the stall window: switch to a backup now.
    Stalled,
    /// Packets flow again after a stall.
    Resumed,
    /// The peer closed the link (its RTCP BYE): it knows long before its DROP crosses the
    /// relays, which a saturated uplink can delay by seconds.
    Goodbye,
}

/// How long an offer or answer waits for the link's candidates before it leaves: host
/// candidates come at once (the sockets are bound), server-reflexive and relayed ones take a
/// STUN or TURN round trip and are trickled if they miss it. Candidates in the description
/// cost no ICE_CANDIDATE event of their own on the relays.
const GATHER_WAIT: Duration = Duration::from_millis(25);

/// How often a link sends RTCP reports (and so how fresh a parent's view of its children's
/// loss is).
pub const REPORT_EVERY: Duration = Duration::from_millis(500);

/// The pause before each RTCP BYE a closing link sends (so at 0, 50 and 200 ms): three small
/// packets, the last when a queue that was full as the first left has drained (a 200 ms queue
/// on an uplink that just shed most of its load).
const GOODBYES_AFTER: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(50),
    Duration::from_millis(150),
];

/// How long a closing link leaves its driver to send the last goodbye before the connection
/// closes (a loop turn takes microseconds; a loaded phone may take milliseconds).
const GOODBYE_FLUSH: Duration = Duration::from_millis(20);

/// Connection state, simplified from the W3C states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// ICE/DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Lost; ICE may still recover.
    Disconnected,
    /// Gave up.
    Failed,
    /// Closed by either side.
    Closed,
}

/// Receives every RTP packet a link delivers, on the link's driver task as it reads the
/// packet (the `webrtc` patch in `vendor/`), so it must not block:
/// forwarding and the jitter buffer both take microseconds.
pub trait RtpSink: Send + Sync {
    /// A packet from the peer behind link `label`.
    fn on_rtp(&self, label: &str, packet: &rtp::Packet);
}

/// Counters of a link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// DTLS done, SRTP keys set: packets can go out.
    pub connected: AtomicBool,
    /// RTP packets received.
    pub received: AtomicU64,
    /// RTP packets sent.
    pub sent: AtomicU64,
    /// Inbound packets received and lost, cumulative, at the previous
    /// [`PeerLink::received_loss`].
    inbound: Mutex<(u64, i64)>,
    /// What the peer's latest receiver report says it lost of ours.
    reported: Arc<ReportedLoss>,
}

fn runtime() -> Result<Arc<dyn Runtime>, RtcError> {
    static RUNTIME: OnceLock<Option<Arc<dyn Runtime>>> = OnceLock::new();
    RUNTIME
        .get_or_init(webrtc::runtime::default_runtime)
        .clone()
        .ok_or_else(|| RtcError::WebRtc("no async runtime".into()))
}

/// The one audio track a link sends on: Opus, with our SSRC.
pub(super) fn audio_track(label: &str, ssrc: u32) -> MediaStreamTrack {
    MediaStreamTrack::new(
        format!("spaces-{label}"),
        "audio".to_owned(),
        "audio".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            active: true,
            codec: opus_codec(),
            ..Default::default()
        }],
    )
}

/// The Opus codec every link negotiates (stereo signalling per RFC 7587, mono content).
pub(super) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// A link to one peer.
pub struct PeerLink {
    label: String,
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    /// This link's own sequence numbers: packets of several sources share the link's SSRC,
    /// and SRTP's replay window and rollover counter need one gap-free sequence per SSRC.
    next_seq: AtomicU16,
    payload_type: Mutex<Option<u8>>,
    /// Remote candidates that arrived before the remote description (relays do not keep
    /// order between the SDP and trickled candidates).
    early_candidates: Mutex<Option<Vec<IceCandidate>>>,
    /// Whether ICE gathering has completed for the current local description.
    gathered: watch::Receiver<bool>,
    /// Our candidates that went out inside a description: never trickled again.
    described: Mutex<HashSet<String>>,
    /// Where our offer's answer stands (offering links only).
    answer: Mutex<Answer>,
    sender: Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    counters: Arc<LinkCounters>,
    watchdog: tokio::task::JoinHandle<()>,
    /// Closed by us: what it still reports is of a link its owner let go.
    closed: AtomicBool,
}

/// Where an offering link's answer stands.
#[derive(Debug, Clone, Default)]
enum Answer {
    /// No offer of ours awaits an answer (an answering link, or one already answered).
    #[default]
    None,
    /// Our `offer` left; its answer has not come.
    Awaited { offer: String },
    /// The answer to `offer` was predicted for a parent with `fingerprint` and applied; the
    /// real one only has to agree.
    Predicted { offer: String, fingerprint: String },
}

struct Handler {
    label: String,
    events: mpsc::UnboundedSender<LinkEvent>,
    gathered: watch::Sender<bool>,
    sink: Arc<dyn RtpSink>,
    stall: Arc<StallWatch>,
    counters: Arc<LinkCounters>,
}

#[async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.events.send(LinkEvent::LocalCandidate(IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_m_line_index: init.sdp_mline_index,
                }));
            }
            Err(e) => tracing::warn!(link = %self.label, error = %e, "unusable local candidate"),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathered
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = match state {
            RTCPeerConnectionState::Connected => {
                self.stall.arm();
                self.counters.connected.store(true, Ordering::Relaxed);
                LinkState::Connected
            }
            RTCPeerConnectionState::Disconnected => LinkState::Disconnected,
            RTCPeerConnectionState::Failed => LinkState::Failed,
            RTCPeerConnectionState::Closed => LinkState::Closed,
            _ => LinkState::Connecting,
        };
        tracing::debug!(link = %self.label, ?state, "link state");
        let _ = self.events.send(LinkEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (label, sink, stall, events, counters) = (
            self.label.clone(),
            Arc::clone(&self.sink),
            Arc::clone(&self.stall),
            self.events.clone(),
            Arc::clone(&self.counters),
        );
        let receive = move |packet: rtp::Packet| {
            counters.received.fetch_add(1, Ordering::Relaxed);
            if stall.activity() == Some(StallChange::Resumed) {
                let _ = events.send(LinkEvent::Resumed);
            }
            sink.on_rtp(&label, &packet);
        };
        // On the connection's driver task, as it reads the packet: a task woken per packet
        // to do this cost as much as the forwarding itself.
        let receive: TrackSink = Arc::new(receive);
        track.set_rtp_sink(Arc::clone(&receive));
        // Packets queued before the sink was set, and every other event, come this way.
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    receive(packet);
                }
            }
        });
    }
}

impl PeerLink {
    /// The share of what we send that the peer lost, from its latest RTCP receiver report
    /// (`None` before one came).
    pub fn sent_loss(&self) -> Option<f64> {
        self.counters.reported.latest()
    }

    /// The share of what the peer sends that we lost since the previous call (`None` when
    /// nothing was expected).
    pub async fn received_loss(&self) -> Option<f64> {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let (mut received, mut lost) = (0u64, 0i64);
        for entry in report.iter() {
            if let RTCStatsReportEntry::InboundRtp(stats) = entry {
                received += stats.received_rtp_stream_stats.packets_received;
                lost += stats.received_rtp_stream_stats.packets_lost;
            }
        }
        let mut last = self
            .counters
            .inbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (was_received, was_lost) = std::mem::replace(&mut *last, (received, lost));
        let got = received.saturating_sub(was_received);
        let missed = u64::try_from(lost - was_lost).unwrap_or(0);
        (got + missed > 0).then(|| missed as f64 / (got + missed) as f64)
    }

    /// Creates a link named `label` (the peer's key, for logs). Received RTP goes to `sink`;
    /// events to the returned receiver.
    ///
    /// Every link of a session shows the same DTLS `identity`. A link that will answer an
    /// offer takes the ICE `credentials` derived from it ([`answering_credentials`]), so that
    /// the offerer can write the answer before it arrives.
    pub async fn new(
        label: impl Into<String>,
        config: &LinkConfig,
        identity: &Certificate,
        credentials: Option<IceCredentials>,
        sink: Arc<dyn RtpSink>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<LinkEvent>), RtcError> {
        let label = label.into();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect();
        let policy = if config.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        };
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(ice_servers)
            .with_ice_transport_policy(policy)
            .with_certificates(vec![identity.rtc()])
            .build();
        let counters = Arc::new(LinkCounters::default());
        let stall = Arc::new(StallWatch::new(config.stall_window));
        let (gathered_tx, gathered) = watch::channel(false);
        let handler = Arc::new(Handler {
            label: label.clone(),
            events: events_tx.clone(),
            gathered: gathered_tx,
            sink,
            stall: Arc::clone(&stall),
            counters: Arc::clone(&counters),
        });
        let settings = config.setting_engine(credentials);
        // RTCP reports both ways: ours tell our parent what we lose, our children's (read by
        // the last interceptor) tell us what they lose of ours, which our uplink estimate
        // rests on.
        // Every 500 ms (RFC 3550's 5 s floor is for crowds; a link has two ends): a parent
        // whose uplink saturates learns it within a second.
        let reports = Registry::new()
            .with(
                Slot::ReceiverReport,
                ReceiverReportBuilder::new()
                    .with_interval(REPORT_EVERY)
                    .build(),
            )
            .with(
                Slot::SenderReport,
                SenderReportBuilder::new()
                    .with_interval(REPORT_EVERY)
                    .build(),
            )
            .with(
                Slot::from(14_000),
                ReportReader::new(Arc::clone(&counters.reported), events_tx.clone()),
            );
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_interceptor_registry(reports)
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_handler(handler)
            .with_runtime(runtime()?)
            .with_udp_addrs(config.bind.clone())
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc: u32 = rand_ssrc();
        let track = Arc::new(TrackLocalStaticRTP::new(audio_track(&label, ssrc)));
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        let watchdog = tokio::spawn(watch(stall, events_tx));
        Ok((
            Self {
                label,
                pc,
                track,
                ssrc,
                next_seq: AtomicU16::new(rand_ssrc() as u16),
                payload_type: Mutex::new(None),
                early_candidates: Mutex::new(Some(Vec::new())),
                gathered,
                described: Mutex::default(),
                answer: Mutex::default(),
                sender,
                counters,
                watchdog,
                closed: AtomicBool::new(false),
            },
            events_rx,
        ))
    }

    /// The peer this link goes to.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Creates and applies a local offer; returns its SDP for signaling, with the
    /// candidates gathered by then.
    pub async fn create_offer(&self) -> Result<String, RtcError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer.clone()).await?;
        let offer = self.described_locally(offer.sdp).await;
        *self.answer_state() = Answer::Awaited {
            offer: offer.clone(),
        };
        Ok(offer)
    }

    /// Whether our offer awaits its answer, neither arrived nor predicted.
    pub fn awaits_answer(&self) -> bool {
        matches!(*self.answer_state(), Answer::Awaited { .. })
    }

    fn answer_state(&self) -> std::sync::MutexGuard<'_, Answer> {
        self.answer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the answer a parent whose certificate has `fingerprint` will give to our
    /// offer, before it arrives ([`predicted_answer`]): ICE answers the parent's first check
    /// and DTLS takes its ClientHello while the real answer is still crossing the relays.
    /// Returns whether it did: not for a link with no offer awaiting its answer.
    pub async fn predict(&self, fingerprint: &str) -> Result<bool, RtcError> {
        let offer = match &*self.answer_state() {
            Answer::Awaited { offer } => offer.clone(),
            _ => return Ok(false),
        };
        let Some(predicted) = predicted_answer(&offer, fingerprint) else {
            return Ok(false);
        };
        self.pc
            .set_remote_description(RTCSessionDescription::answer(predicted)?)
            .await?;
        self.flush_early_candidates().await;
        let mut state = self.answer_state();
        if matches!(&*state, Answer::Awaited { offer: o } if *o == offer) {
            *state = Answer::Predicted {
                offer,
                fingerprint: fingerprint.to_owned(),
            };
        }
        Ok(true)
    }

    /// The local description as it leaves: once gathering completes, or after
    /// [`GATHER_WAIT`], with every candidate gathered by then (`fallback` if the link has
    /// no local description). Those candidates are not trickled again.
    async fn described_locally(&self, fallback: String) -> String {
        let mut gathered = self.gathered.clone();
        let _ = tokio::time::timeout(GATHER_WAIT, gathered.wait_for(|done| *done)).await;
        let sdp = self.local_description().await.unwrap_or(fallback);
        let mut described = self
            .described
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        described.extend(candidates(&sdp).map(str::to_owned));
        sdp
    }

    /// Whether our local `candidate` already went out in a description (nothing to trickle).
    pub fn described(&self, candidate: &IceCandidate) -> bool {
        self.described
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(candidate.candidate.trim().trim_start_matches("a="))
    }

    /// Applies a remote offer and returns the local answer's SDP.
    pub async fn accept_offer(&self, sdp: String) -> Result<String, RtcError> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        self.flush_early_candidates().await;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer.clone()).await?;
        Ok(self.described_locally(answer.sdp).await)
    }

    /// Applies the remote answer to our offer. If the answer was predicted, the real one
    /// must agree with the prediction ([`RtcError::Mispredicted`] otherwise: the link cannot
    /// be used) and only its candidates are added.
    pub async fn accept_answer(&self, sdp: String) -> Result<(), RtcError> {
        let state = std::mem::take(&mut *self.answer_state());
        if let Answer::Predicted { offer, fingerprint } = state {
            if !agree(&offer, &fingerprint, &sdp) {
                return Err(RtcError::Mispredicted);
            }
            for candidate in candidates(&sdp) {
                let candidate = IceCandidate {
                    candidate: candidate.to_owned(),
                    sdp_mid: Some("0".to_owned()),
                    sdp_m_line_index: Some(0),
                };
                if let Err(e) = self.apply_candidate(candidate).await {
                    tracing::debug!(link = %self.label, error = %e, "answer candidate refused");
                }
            }
            return Ok(());
        }
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        self.flush_early_candidates().await;
        Ok(())
    }

    /// Adds a trickled remote candidate; one that arrives before the remote description is
    /// kept and applied with it.
    pub async fn add_remote_candidate(&self, candidate: IceCandidate) -> Result<(), RtcError> {
        {
            let mut early = self
                .early_candidates
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(waiting) = early.as_mut() {
                waiting.push(candidate);
                return Ok(());
            }
        }
        self.apply_candidate(candidate).await
    }

    async fn flush_early_candidates(&self) {
        let waiting = self
            .early_candidates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        for candidate in waiting {
            if let Err(e) = self.apply_candidate(candidate).await {
                tracing::debug!(link = %self.label, error = %e, "early candidate refused");
            }
        }
    }

    async fn apply_candidate(&self, candidate: IceCandidate) -> Result<(), RtcError> {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_m_line_index,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// The SDP of the local description in force, if any.
    pub async fn local_description(&self) -> Option<String> {
        self.pc.local_description().await.map(|d| d.sdp)
    }

    /// Whether a remote offer renegotiates this link (the same peer connection, e.g. an ICE
    /// restart) rather than starting a new one (a peer that restarted or re-connected). A
    /// peer connection keeps its SDP session id (`o=`) for life (JSEP), and its DTLS
    /// identity; a session's links share the identity, so the session id tells them apart.
    pub async fn renegotiates(&self, offer_sdp: &str) -> bool {
        let identity = |sdp: &str| -> Option<(String, String)> {
            let origin = sdp
                .lines()
                .find_map(|l| l.trim().strip_prefix("o="))?
                .split_whitespace()
                .nth(1)?
                .to_owned();
            Some((origin, fingerprint(sdp)?.to_owned()))
        };
        match self.pc.remote_description().await {
            Some(current) => {
                identity(&current.sdp).is_some() && identity(&current.sdp) == identity(offer_sdp)
            }
            None => false,
        }
    }

    /// Restarts ICE after a network change and returns the new offer to signal.
    pub async fn restart_ice(&self) -> Result<String, RtcError> {
        self.pc.restart_ice().await?;
        let offer = self.create_offer().await?;
        // A restart's answer comes from a parent whose credentials no longer follow from
        // our offer: it is awaited, never predicted.
        *self.answer_state() = Answer::None;
        Ok(offer)
    }

    /// Sends one RTP packet to the peer, keeping its timestamp, contributing source (CSRC:
    /// whose voice it is) and payload; SSRC, sequence number and payload type become this
    /// link's.
    /// Packets sent before the link is connected are dropped here: there are no SRTP keys
    /// yet, and audio that old is useless by the time there are.
    pub async fn send(&self, mut packet: rtp::Packet) -> Result<(), RtcError> {
        if !self.counters.connected.load(Ordering::Relaxed) {
            return Ok(());
        }
        packet.header.payload_type = self.payload_type().await?;
        self.number(&mut packet);
        self.send_numbered(Numbered(packet)).await
    }

    /// [`PeerLink::send`] for a caller that must not wait, such as a forwarder on its
    /// parent's receive path: sends now, or hands the packet back, numbered, when the link is
    /// busy (its driver or another writer holds it, or the codec is not known yet). The
    /// caller sends it with [`PeerLink::send_numbered`], before any later packet for this
    /// link, so that the sequence stays in order.
    pub fn try_send(&self, mut packet: rtp::Packet) -> Result<Option<Numbered>, RtcError> {
        if !self.counters.connected.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let known = self.known_payload_type();
        self.number(&mut packet);
        let Some(payload_type) = known else {
            return Ok(Some(Numbered(packet)));
        };
        packet.header.payload_type = payload_type;
        match self.track.try_write_rtp(packet)? {
            TryWrite::Sent => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            TryWrite::Busy(packet) => Ok(Some(Numbered(packet))),
        }
    }

    /// Sends a packet [`PeerLink::try_send`] handed back.
    pub async fn send_numbered(&self, Numbered(mut packet): Numbered) -> Result<(), RtcError> {
        packet.header.payload_type = self.payload_type().await?;
        self.track.write_rtp(packet).await?;
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn number(&self, packet: &mut rtp::Packet) {
        packet.header.ssrc = self.ssrc;
        packet.header.sequence_number = self.next_seq.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether we closed the link ([`PeerLink::close`]): its events no longer speak for the
    /// peer (a newer link may).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Packet counters.
    pub fn counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// Closes the link, saying goodbye first (RTCP BYE, three times: one may be lost) when it
    /// is up, so that the peer moves on at once rather than after a stall or our DROP.
    pub async fn close(&self) {
        self.shut(true).await;
    }

    /// Closes the link without a word, as a device that lost power would: the peer finds out
    /// from the silence.
    pub async fn abandon(&self) {
        self.shut(false).await;
    }

    async fn shut(&self, goodbye: bool) {
        self.watchdog.abort();
        self.closed.store(true, Ordering::Relaxed);
        if !goodbye || !self.counters.connected.load(Ordering::Relaxed) {
            shut_down(&*self.pc, &self.label).await;
            return;
        }
        // The goodbyes go out spread over a few hundred milliseconds: a parent usually closes
        // links because its uplink is saturated, and back to back they would meet the same
        // full queue. webrtc-rs closes its core at once and drops what its driver has not
        // sent yet, so the connection ends only after the last one left; the caller does not
        // wait for any of it.
        let (pc, track, ssrc) = (Arc::clone(&self.pc), Arc::clone(&self.track), self.ssrc);
        let label = self.label.clone();
        tokio::spawn(async move {
            for pause in GOODBYES_AFTER {
                tokio::time::sleep(pause).await;
                let bye: Box<dyn ::rtc::rtcp::Packet> = Box::new(Goodbye {
                    sources: vec![ssrc],
                    reason: Bytes::new(),
                });
                if let Err(e) = track.write_rtcp(vec![bye]).await {
                    tracing::debug!(link = %label, error = %e, "goodbye");
                    break;
                }
            }
            tokio::time::sleep(GOODBYE_FLUSH).await;
            shut_down(&*pc, &label).await;
        });
    }

    /// The negotiated payload type, once a send has learnt it.
    fn known_payload_type(&self) -> Option<u8> {
        *self
            .payload_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn payload_type(&self) -> Result<u8, RtcError> {
        if let Some(pt) = self.known_payload_type() {
            return Ok(pt);
        }
        let parameters = self.sender.get_parameters().await?;
        let pt = parameters
            .rtp_parameters
            .codecs
            .first()
            .map(|c| c.payload_type)
            .ok_or(RtcError::NotNegotiated)?;
        *self
            .payload_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(pt);
        Ok(pt)
    }
}

/// A packet numbered for one link (SSRC and sequence number) that still has to be sent on it:
/// see [`PeerLink::try_send`].
#[derive(Debug)]
pub struct Numbered(rtp::Packet);

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

/// A link's stall detector, shared by its receive path, which reports every packet, and its
/// watchdog, which sleeps until the detector falls due.
struct StallWatch {
    /// Times are since this instant (tokio's clock, so that a test can pause it).
    epoch: tokio::time::Instant,
    detector: Mutex<StallDetector>,
    /// Wakes the watchdog when the detector gains a deadline (armed, or resumed after a stall).
    rearmed: Notify,
}

impl StallWatch {
    fn new(window: Duration) -> Self {
        Self {
            epoch: tokio::time::Instant::now(),
            detector: Mutex::new(StallDetector::new(window)),
            rearmed: Notify::new(),
        }
    }

    fn detector(&self) -> std::sync::MutexGuard<'_, StallDetector> {
        self.detector.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The link connected.
    fn arm(&self) {
        let now = self.epoch.elapsed();
        self.detector().arm(now);
        self.rearmed.notify_one();
    }

    /// A packet arrived.
    fn activity(&self) -> Option<StallChange> {
        let now = self.epoch.elapsed();
        let change = self.detector().activity(now);
        if change == Some(StallChange::Resumed) {
            self.rearmed.notify_one();
        }
        change
    }
}

/// Reports a stall the moment the detector falls due. It sleeps until then, so a link that
/// receives audio wakes it about once per window (to find a later deadline), and a link that
/// is not armed or already stalled not at all until it is re-armed. It used to tick at a
/// quarter of the window: a wake-up per link every 75 ms, a seventh of the CPU of a forwarder
/// feeding 40 children, and up to 75 ms late.
async fn watch(stall: Arc<StallWatch>, events: mpsc::UnboundedSender<LinkEvent>) {
    loop {
        let due = stall.detector().due();
        let Some(due) = due else {
            stall.rearmed.notified().await;
            continue;
        };
        tokio::time::sleep_until(stall.epoch + due).await;
        let now = stall.epoch.elapsed();
        let change = stall.detector().check(now);
        if change == Some(StallChange::Stalled) && events.send(LinkEvent::Stalled).is_err() {
            return;
        }
    }
}

/// Closes `pc`, the connection of the link named `label`.
async fn shut_down(pc: &dyn PeerConnection, label: &str) {
    if let Err(e) = pc.close().await {
        tracing::debug!(link = %label, error = %e, "close");
    }
}

/// A random SSRC (RFC 3550 §8: chosen at random).
fn rand_ssrc() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(300);

    /// The next alarm, and how long after `since` it came (simulated time).
    async fn next_alarm(
        alarms: &mut mpsc::UnboundedReceiver<LinkEvent>,
        since: tokio::time::Instant,
    ) -> (Option<LinkEvent>, Duration) {
        let alarm = alarms.recv().await;
        (alarm, since.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_reports_a_stall_when_the_window_ends_and_only_then() {
        let stall = Arc::new(StallWatch::new(WINDOW));
        let (events, mut alarms) = mpsc::unbounded_channel();
        let watchdog = tokio::spawn(watch(Arc::clone(&stall), events));
        // Not connected yet: nothing to miss, however long.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(alarms.try_recv().ok(), None);
        stall.arm();
        // Audio every 20 ms for 3 s: no alarm.
        for _ in 0..150 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(stall.activity(), None);
        }
        assert_eq!(alarms.try_recv().ok(), None);
        // Silence: the alarm comes as the window ends, not at some later tick.
        let silent = tokio::time::Instant::now();
        assert_eq!(
            next_alarm(&mut alarms, silent).await,
            (Some(LinkEvent::Stalled), WINDOW)
        );
        // Still silent: reported once.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(alarms.try_recv().ok(), None);
        // A packet resumes the link and re-arms the watchdog.
        assert_eq!(stall.activity(), Some(StallChange::Resumed));
        let resumed = tokio::time::Instant::now();
        assert_eq!(
            next_alarm(&mut alarms, resumed).await,
            (Some(LinkEvent::Stalled), WINDOW)
        );
        watchdog.abort();
    }
}
