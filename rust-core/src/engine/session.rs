//! One participant's session: the driver that moves relay events, link events, user commands
//! and time into the [`Participant`] and carries its outputs out to relays, WebRTC links and
//! audio. It decides nothing; every decision is the participant's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use nostr::prelude::{Event, PublicKey, Timestamp};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::Instrument;

use super::EngineError;
use super::audio::{Audio, AudioConfig, AudioStats, AudioTap, source_id};
use super::follow::Subscriptions;
use crate::media::CodecSettings;
use crate::media::device::{AudioSink, AudioSource};
use crate::participant::{
    CONNECT_DEADLINE, Input, LinkInput, LinkOp, Millis, Output, Participant, ParticipantConfig,
    ParticipantStats, Publication, Routing, UserCommand,
};
use crate::protocol::{
    Draft, EventWriter, IceCandidate, Limits, Message, NetworkMetrics, Parser, Presence,
    RemoteSigner, Signer, SpaceRef, sealed_peer,
};
use crate::rtc::prediction::{self, IceCredentials};
use crate::rtc::{Certificate, Forwarder, LinkConfig, LinkEvent, LinkState, PeerLink, RtcError};
use crate::signaling::{Incoming, PoolOptions, RelayPool};
use crate::space::Command;
use crate::topology::TreeRules;

pub use crate::participant::RESERVE_TIMEOUT;

/// Everything a session needs.
pub struct SessionConfig {
    /// The user's identity: their own keys, or a signer elsewhere that holds them (never a
    /// GeoKey: those give no authority).
    pub signer: Signer,
    /// The space.
    pub space: SpaceRef,
    /// Display name.
    pub name: String,
    /// What we announce about our network.
    pub metrics: NetworkMetrics,
    /// Relay URLs.
    pub relays: Vec<String>,
    /// WebRTC settings.
    pub link: LinkConfig,
    /// Encoder settings.
    pub codec: CodecSettings,
    /// Microphone: the host's from the start; a listener's once promoted to speaker.
    pub input: Option<Box<dyn AudioSource>>,
    /// Speaker.
    pub output: Box<dyn AudioSink>,
    /// Watches the audio go by (meters, recorders, test instruments).
    pub tap: Option<Arc<dyn AudioTap>>,
    /// How long to wait for CONFIRM before asking the next candidate ([`RESERVE_TIMEOUT`]).
    pub reserve_timeout: Duration,
    /// Cell labels to tag a new space with (hosts).
    pub cells: Vec<String>,
    /// Draft compatibility: private payloads in clear to peers that did not announce NIP-44
    /// (see [`crate::participant::ParticipantConfig::draft_compat`]). Off by default.
    pub draft_compat: bool,
    /// Keep a warm backup link (see
    /// [`crate::participant::ParticipantConfig::warm_backup`]). On by default.
    pub warm_backup: bool,
    /// At the host: members at which the space becomes a crowd (see
    /// [`crate::participant::ParticipantConfig::crowd_at`]); [`crate::participant::CROWD_AT`]
    /// by default.
    pub crowd_at: usize,
    /// Ask the host for a seat before the space is read (see
    /// [`crate::participant::ParticipantConfig::ask_host_first`]). On by default; off for a
    /// space known to be a crowd ([`crate::engine::discover::Listing::crowd`]), where it
    /// would cost two events and the host's work for a seat it no longer has.
    pub ask_host_first: bool,
}

/// What a session knows about itself, for progress and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    /// Our place in the tree, as the participant decided it.
    pub tree: ParticipantStats,
    /// Audio measurements.
    pub audio: AudioStats,
}

/// A running session.
pub struct Session {
    key: PublicKey,
    audio: Arc<Audio>,
    state: Arc<Mutex<SessionStats>>,
    stop: watch::Sender<Stop>,
    control: mpsc::UnboundedSender<UserCommand>,
    events: broadcast::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

/// Longest chat line sent, bytes of UTF-8 (a few paragraphs; relays refuse far larger events,
/// and every member receives each line).
pub const MAX_CHAT_BYTES: usize = 2_000;

/// Longest reaction sent, bytes (an emoji sequence, or a short custom shortcode).
pub const MAX_REACTION_BYTES: usize = 64;

fn check_typed(what: &'static str, text: &str, max: usize) -> Result<(), EngineError> {
    let reason = if text.trim().is_empty() {
        "empty".to_owned()
    } else if text.len() > max {
        format!("{} bytes, at most {max}", text.len())
    } else {
        return Ok(());
    };
    Err(EngineError::NotSent { what, reason })
}

/// Events a session keeps for a slow UI before the oldest are dropped.
const UI_EVENTS: usize = 256;

/// How a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// LEAVE (or CLOSE for the host) and DROPs, then close.
    Polite,
    /// Close every link at once and say nothing: a phone that died.
    Vanish,
}

/// The participant's clock: Unix milliseconds, read from a monotonic clock anchored once, so
/// a wall-clock jump never fires or postpones a deadline.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    unix_ms: Millis,
}

impl Clock {
    fn new() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Self {
            start: Instant::now(),
            unix_ms,
        }
    }

    fn now(&self) -> Millis {
        self.unix_ms + self.start.elapsed().as_millis() as Millis
    }

    fn instant(&self, at: Millis) -> tokio::time::Instant {
        let offset = Duration::from_millis(at.saturating_sub(self.unix_ms));
        tokio::time::Instant::from_std(self.start + offset)
    }
}

/// How often links' loss is read: as often as RTCP receiver reports arrive.
const LOSS_EVERY: Duration = crate::rtc::REPORT_EVERY;

impl Session {
    /// Connects, announces itself (CREATE for the host, JOIN otherwise) and runs until stopped.
    pub async fn start(config: SessionConfig) -> Result<Self, EngineError> {
        let me = config.signer.public_key();
        // Every log line of this session names it: a phone runs one, a test or a relay host
        // many side by side.
        let span = tracing::info_span!(
            "session",
            me = %&me.to_hex()[..8],
            space = %config.space.id()
        );
        let connecting = Instant::now();
        let (pool, incoming) = RelayPool::connect(&config.relays, PoolOptions::default()).await?;
        tracing::debug!(parent: &span, ms = connecting.elapsed().as_millis() as u64, "relays connected");
        // A signer elsewhere opens what is sealed to us, in arrival order, before the driver
        // reads it; our own keys open it in the parser.
        let incoming = match &config.signer {
            Signer::Keys(_) => incoming,
            Signer::Remote(signer) => open_in_order(Arc::clone(signer), incoming),
        };
        let since = Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(600));
        let pool = Arc::new(pool);
        // The host's CREATE first, alone: it says whether the space is followed whole or as
        // a crowd, and the participant asks for one or the other once it is read.
        let subscriptions =
            Subscriptions::start(Arc::clone(&pool), config.space.clone(), me, since).await?;
        tracing::debug!(parent: &span, ms = connecting.elapsed().as_millis() as u64, "subscribed");
        let forwarder = Arc::new(Forwarder::new(config.link.child_queue));
        let is_host = me == *config.space.host();
        let audio = Arc::new(Audio::start(
            Arc::clone(&forwarder),
            AudioConfig {
                input: config.input,
                output: config.output,
                codec: config.codec,
                tap: config.tap,
                routing: super::audio::Routing {
                    me: source_id(&me),
                    host: source_id(config.space.host()),
                    is_host,
                    ..super::audio::Routing::default()
                },
                speaking: false,
                keepalive: is_host,
            },
        )?);
        let state = Arc::new(Mutex::new(SessionStats::default()));
        let (stop, stopped) = watch::channel(Stop::Running);
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(UI_EVENTS);
        let clock = Clock::new();
        // One DTLS identity for every link, announced with our JOIN or CREATE: a newcomer
        // below us writes our answer before it arrives (`rtc::prediction`).
        let certificate = Certificate::generate()?;
        let participant = Participant::new(
            ParticipantConfig {
                me,
                space: config.space.clone(),
                name: config.name,
                metrics: config.metrics,
                cells: config.cells,
                reserve_timeout: config.reserve_timeout,
                connect_deadline: CONNECT_DEADLINE,
                rules: TreeRules::default(),
                draft_compat: config.draft_compat,
                warm_backup: config.warm_backup,
                ask_host_first: config.ask_host_first,
                dtls: Some(certificate.fingerprint().to_owned()),
                crowd_at: config.crowd_at,
            },
            clock.now(),
        );
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let (mined_tx, mined_rx) = mpsc::unbounded_channel();
        let publisher = tokio::spawn(
            publish_in_order(
                Arc::clone(&pool),
                config.signer.clone(),
                config.space.clone(),
                queue_rx,
                mined_tx,
            )
            .instrument(span.clone()),
        );
        let mut driver = Driver {
            participant,
            clock,
            signer: config.signer.clone(),
            space: config.space.clone(),
            parser: Parser::new(
                Limits::default(),
                Some(config.space.clone()),
                config.signer.keys().cloned(),
            ),
            queue,
            links: HashMap::new(),
            link_tx,
            forwarder,
            audio: Arc::clone(&audio),
            link_config: config.link,
            certificate,
            subscriptions,
            read: false,
            routing: Routing::default(),
            held: HashMap::new(),
            ui: events.clone(),
            state: Arc::clone(&state),
        };
        driver.drain().instrument(span.clone()).await;
        let task = tokio::spawn(
            async move {
                let stop = driver
                    .run(incoming, link_rx, control_rx, mined_rx, stopped)
                    .await;
                let Driver { queue, .. } = driver;
                // Let the last events (DROPs, LEAVE or CLOSE) out, then close the relay
                // connections cleanly (a dropped client leaves them to time out).
                drop(queue);
                if stop != Stop::Vanish {
                    let _ = tokio::time::timeout(Duration::from_secs(3), publisher).await;
                }
                if let Ok(pool) = Arc::try_unwrap(pool) {
                    pool.shutdown().await;
                }
            }
            .instrument(span),
        );
        Ok(Self {
            key: me,
            audio,
            state,
            stop,
            control,
            events,
            task,
        })
    }

    /// What happens in the space that the user's interface shows: role changes (ours too),
    /// raised hands, invitations to speak, mute requests, chat, reactions, members coming and
    /// going, the end. A receiver that falls more than 256 events behind loses the oldest.
    pub fn events(&self) -> broadcast::Receiver<Command> {
        self.events.subscribe()
    }

    fn send(&self, message: Message) -> Result<(), EngineError> {
        self.command(UserCommand::Publish(message))
    }

    fn command(&self, command: UserCommand) -> Result<(), EngineError> {
        self.control.send(command).map_err(|_| EngineError::Stopped)
    }

    /// Host or co-host: lets a member speak. Its voice reaches everyone through the tree.
    pub fn promote_speaker(&self, target: PublicKey) -> Result<(), EngineError> {
        self.send(Message::PromoteSpeaker { target })
    }

    /// Host: makes a member co-host (a moderator who also speaks).
    pub fn promote_cohost(&self, target: PublicKey) -> Result<(), EngineError> {
        self.send(Message::PromoteCohost { target })
    }

    /// Host or co-host: back to listening.
    pub fn demote(&self, target: PublicKey) -> Result<(), EngineError> {
        self.send(Message::Demote { target })
    }

    /// Host or co-host: removes a member from the space.
    pub fn remove(&self, target: PublicKey) -> Result<(), EngineError> {
        self.send(Message::Remove { target })
    }

    /// Host or co-host: invites a listener to ask to speak.
    pub fn propose_speech(&self, target: PublicKey, note: String) -> Result<(), EngineError> {
        self.send(Message::ProposeSpeech { target, note })
    }

    /// Stops or resumes sending our voice (a speaker keeps its role); NIP-53 presence says so.
    pub fn set_muted(&self, muted: bool) -> Result<(), EngineError> {
        self.command(UserCommand::Mute(muted))
    }

    /// Listener: asks to speak (hand raised for NIP-53 clients too).
    pub fn request_speech(&self) -> Result<(), EngineError> {
        self.send(Message::RequestSpeech)?;
        self.send(Message::Presence(Presence {
            hand_raised: true,
            ..Presence::default()
        }))
    }

    /// The phone's network changed (Wi-Fi to cellular, a new address, another uplink): we
    /// re-announce our metrics, restart ICE on every link (same links, no audio re-plan when
    /// the path survives) and hand children beyond our new capacity back to the tree.
    pub fn network_changed(&self, metrics: NetworkMetrics) -> Result<(), EngineError> {
        self.command(UserCommand::NetworkChanged(metrics))
    }

    /// Raises or lowers our hand (NIP-53 presence).
    pub fn raise_hand(&self, raised: bool) -> Result<(), EngineError> {
        self.send(Message::Presence(Presence {
            hand_raised: raised,
            ..Presence::default()
        }))
    }

    /// Sends a chat line (NIP-53 kind 1311): every member and every NIP-53 client of the
    /// space reads it. Empty lines and lines over [`MAX_CHAT_BYTES`] are refused.
    pub fn chat(&self, text: String) -> Result<(), EngineError> {
        check_typed("chat line", &text, MAX_CHAT_BYTES)?;
        self.send(Message::Chat { text })
    }

    /// Reacts (kind 7: an emoji, or `+`), to a speaker when `target` names one. Empty
    /// reactions and reactions over [`MAX_REACTION_BYTES`] are refused.
    pub fn react(&self, content: String, target: Option<PublicKey>) -> Result<(), EngineError> {
        check_typed("reaction", &content, MAX_REACTION_BYTES)?;
        self.send(Message::Reaction { content, target })
    }

    /// Our key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Current statistics.
    pub fn stats(&self) -> SessionStats {
        let mut stats = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        stats.audio = self.audio.stats();
        stats
    }

    /// Leaves politely (LEAVE, DROPs) and stops.
    pub async fn stop(self) {
        let _ = self.stop.send(Stop::Polite);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
        self.audio.stop();
    }

    /// Vanishes without a word, as a phone that loses power: every link closes at once and
    /// nothing is published; children find out from the silence.
    pub async fn kill(self) {
        let _ = self.stop.send(Stop::Vanish);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
        self.audio.stop();
    }
}

/// What the publish queue carries, in the participant's order.
enum Outgoing {
    /// Built and signed already.
    Ready(Event, &'static str),
    /// To be built with proof of work first (a reservation a busy confirmer priced).
    Mine(Publication),
    /// Written, for the signer elsewhere to seal and sign.
    Draft(Draft, &'static str),
}

/// Publishes the participant's events in its order, without waiting for one relay's OK before
/// sending the next: relays see our events in our order, and an event never waits a round
/// trip behind the one before it (on a 40 ms path, a RESERVE queued behind a JOIN and a
/// presence used to leave 90 ms late, ICE candidates 80 ms behind their offer). Likewise up to
/// [`BUILDS_AHEAD`] events are built at once (a signer elsewhere signs the JOIN while it seals
/// the RESERVE's offer), and published as they finish, in order. A reservation that needed
/// work is reported on `mined` once a relay took it (the participant's wait for a CONFIRM
/// starts then).
async fn publish_in_order(
    pool: Arc<RelayPool>,
    signer: Signer,
    space: SpaceRef,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    mined: mpsc::UnboundedSender<PublicKey>,
) {
    // Events being signed (and sealed, mined), finished in queue order: a signer elsewhere
    // works on the next events while it signs this one, and relays still see them in order.
    let mut building = FuturesOrdered::new();
    // Published events waiting for their relays' OKs.
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some(built) = building.next(), if !building.is_empty() => {
                let Some((event, kind, confirmer)) = built else {
                    continue;
                };
                let pool = Arc::clone(&pool);
                let mut publish = Box::pin(async move {
                    let sent = Instant::now();
                    if let Err(e) = pool.publish(&event).await {
                        tracing::warn!(error = %e, kind, "publish failed");
                    }
                    tracing::debug!(us = sent.elapsed().as_micros(), kind, "published");
                    confirmer
                });
                // One poll now hands the event to the relay connections, in queue order; the
                // rest (waiting for OKs) runs alongside the next events.
                match futures::poll!(publish.as_mut()) {
                    std::task::Poll::Ready(Some(confirmer)) => {
                        let _ = mined.send(confirmer);
                    }
                    std::task::Poll::Ready(None) => {}
                    std::task::Poll::Pending => in_flight.push(publish),
                }
            }
            Some(confirmer) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(confirmer) = confirmer {
                    let _ = mined.send(confirmer);
                }
            }
            outgoing = queue.recv(), if open && building.len() < BUILDS_AHEAD => match outgoing {
                Some(outgoing) => building.push_back(build_outgoing(&signer, &space, outgoing)),
                // The session is closing: its last events (DROP, LEAVE) are still built,
                // published and given their OKs.
                None => open = false,
            },
            else => break,
        }
    }
}

/// Events built ahead of the one being published: with a signer elsewhere, requests for the
/// next events overlap the round trip of this one.
const BUILDS_AHEAD: usize = 8;

/// Signs what the queue carries, mining proof of work first where a confirmer priced it.
/// Returns the event, its kind's name, and the confirmer of a mined reservation.
async fn build_outgoing(
    signer: &Signer,
    space: &SpaceRef,
    outgoing: Outgoing,
) -> Option<(Event, &'static str, Option<PublicKey>)> {
    let publication = match outgoing {
        Outgoing::Ready(event, kind) => return Some((event, kind, None)),
        Outgoing::Draft(draft, kind) => {
            let Signer::Remote(remote) = signer else {
                tracing::warn!(kind, "a draft with local keys: not published");
                return None;
            };
            return finish_remotely(remote.as_ref(), draft, 0, kind)
                .await
                .map(|event| (event, kind, None));
        }
        Outgoing::Mine(publication) => publication,
    };
    let Publication {
        message,
        created_at,
        work,
        plaintext,
    } = publication;
    let kind = message.name();
    let confirmer = match &message {
        Message::Reserve(r) => Some(r.confirmer),
        _ => None,
    };
    let keys = match signer {
        Signer::Keys(keys) => keys.clone(),
        Signer::Remote(remote) => {
            let draft = EventWriter::drafts_for(remote.public_key(), space)
                .plaintext(plaintext)
                .draft(&message, created_at)
                .inspect_err(|e| tracing::warn!(error = %e, kind, "cannot build event"))
                .ok()?;
            return finish_remotely(remote.as_ref(), draft, work, kind)
                .await
                .map(|event| (event, kind, confirmer));
        }
    };
    // Mining is CPU-bound: a blocking thread, never the runtime's or the audio's.
    let space = space.clone();
    let started = Instant::now();
    let built = tokio::task::spawn_blocking(move || {
        EventWriter::new(&keys, &space)
            .plaintext(plaintext)
            .build_with_work(&message, created_at, work)
    })
    .await;
    match built {
        Ok(Ok(event)) => {
            tracing::info!(
                work,
                ms = started.elapsed().as_millis(),
                kind,
                "proof of work done"
            );
            Some((event, kind, confirmer))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, kind, "cannot build event");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, kind, "proof of work did not finish");
            None
        }
    }
}

/// Has the signer elsewhere seal a draft's payload and sign it, mining `work` bits of proof of
/// work in between (on a blocking thread). `None`, logged, when the signer refuses or fails:
/// the participant's deadlines treat it as an event lost on the way.
async fn finish_remotely(
    signer: &dyn RemoteSigner,
    draft: Draft,
    work: u8,
    kind: &'static str,
) -> Option<Event> {
    let started = Instant::now();
    let draft = match draft.seal_to() {
        Some(peer) => match signer.nip44_encrypt(peer, draft.content().to_owned()).await {
            Ok(ciphertext) => draft.sealed(ciphertext),
            Err(e) => {
                tracing::warn!(error = %e, kind, "signer did not seal");
                return None;
            }
        },
        None => draft,
    };
    let unsigned = match tokio::task::spawn_blocking(move || draft.unsigned(work)).await {
        Ok(Ok(unsigned)) => unsigned,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, kind, "cannot build event");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, kind, "proof of work did not finish");
            return None;
        }
    };
    match signer.sign(unsigned).await {
        Ok(event) => {
            tracing::debug!(ms = started.elapsed().as_millis(), kind, "signed elsewhere");
            Some(event)
        }
        Err(e) => {
            tracing::warn!(error = %e, kind, "signer did not sign");
            None
        }
    }
}

/// Opens, in arrival order, the private payloads sealed to us (or by us) with the signer
/// elsewhere, so that the parser reads them as it reads a payload in clear. Events the signer
/// cannot open are dropped, as the parser drops what it cannot decrypt.
fn open_in_order(
    signer: Arc<dyn RemoteSigner>,
    mut incoming: mpsc::Receiver<Incoming>,
) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel(INCOMING_OPENED);
    let me = signer.public_key();
    tokio::spawn(
        async move {
            while let Some(message) = incoming.recv().await {
                let message = match message {
                    Incoming::Event { event, relay } => match sealed_peer(&event, &me) {
                        None => Incoming::Event { event, relay },
                        Some(peer) => {
                            match signer.nip44_decrypt(peer, event.content.clone()).await {
                                Ok(plaintext) => Incoming::Event {
                                    event: event.opened(plaintext),
                                    relay,
                                },
                                Err(e) => {
                                    tracing::debug!(error = %e, "signer did not open a payload");
                                    continue;
                                }
                            }
                        }
                    },
                    other => other,
                };
                if tx.send(message).await.is_err() {
                    break;
                }
            }
        }
        .in_current_span(),
    );
    rx
}

/// A share of packets lost (0..=1) as the participant reads it: per thousand.
fn permille(share: f64) -> u16 {
    (share.clamp(0.0, 1.0) * 1_000.0).round() as u16
}

/// Events a signer elsewhere may hold opened for the driver (each waits its turn).
const INCOMING_OPENED: usize = 256;

struct Driver {
    participant: Participant,
    clock: Clock,
    signer: Signer,
    space: SpaceRef,
    parser: Parser,
    queue: mpsc::UnboundedSender<Outgoing>,
    links: HashMap<PublicKey, Arc<PeerLink>>,
    link_tx: mpsc::UnboundedSender<(PublicKey, LinkEvent)>,
    forwarder: Arc<Forwarder>,
    audio: Arc<Audio>,
    link_config: LinkConfig,
    /// Our DTLS identity, the same on every link.
    certificate: Certificate,
    /// What we follow on the relays.
    subscriptions: Subscriptions,
    /// Events were read since the last look for answers to predict: one may have announced
    /// a DTLS fingerprint.
    read: bool,
    /// The participant's last routing, applied again whenever a link appears.
    routing: Routing,
    /// Candidates of links whose reservation is not settled yet, held until it is
    /// ([`Participant::holds_candidates`]).
    held: HashMap<PublicKey, Vec<IceCandidate>>,
    ui: broadcast::Sender<Command>,
    state: Arc<Mutex<SessionStats>>,
}

impl Driver {
    async fn run(
        &mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut link_events: mpsc::UnboundedReceiver<(PublicKey, LinkEvent)>,
        mut control: mpsc::UnboundedReceiver<UserCommand>,
        mut mined: mpsc::UnboundedReceiver<PublicKey>,
        mut stopped: watch::Receiver<Stop>,
    ) -> Stop {
        let me = *self.participant.me();
        let mut reports = tokio::time::interval(LOSS_EVERY);
        reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reading: Option<tokio::task::JoinHandle<()>> = None;
        // Each reading's losses, all links at once.
        let (losses_tx, mut losses) = mpsc::unbounded_channel();
        loop {
            let wake = self.clock.instant(self.participant.poll_timeout());
            tokio::select! {
                _ = reports.tick() => {
                    // One reading at a time, off the loop: stats lock each connection briefly.
                    if reading.as_ref().is_none_or(|r| r.is_finished()) && !self.links.is_empty() {
                        reading = Some(self.read_loss(losses_tx.clone()));
                    }
                    continue;
                }
                message = incoming.recv() => match message {
                    Some(Incoming::Event { event, .. }) => {
                        // Our own events come back from relays: the participant already knows.
                        if event.pubkey == me {
                            continue;
                        }
                        match self.parser.parse_verified(&event, Timestamp::now()) {
                            Ok(parsed) => {
                                self.read = true;
                                self.input(Input::Event(parsed));
                            }
                            Err(e) => tracing::debug!(error = %e, "event refused"),
                        }
                    }
                    // The host's CREATE, the view, a fetch of seats: each end means something.
                    Some(Incoming::EndOfStored { subscription, .. }) => {
                        if let Some(input) = self.subscriptions.ended(&subscription).await {
                            self.read = true;
                            self.input(input);
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                Some((peer, event)) = link_events.recv() => self.on_link_event(peer, event),
                Some(read) = losses.recv() => self.input(Input::Losses(read)),
                Some(command) = control.recv() => self.input(Input::User(command)),
                Some(confirmer) = mined.recv() => self.input(Input::WorkedReservationSent { confirmer }),
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.clock.now();
                    self.participant.handle_timeout(now);
                }
                _ = stopped.changed() => break,
            }
            self.drain().await;
            if std::mem::take(&mut self.read) {
                self.predict_answers().await;
            }
            if self.participant.is_done() {
                break;
            }
        }
        let stop = *stopped.borrow();
        if stop == Stop::Vanish {
            for child in self.forwarder.children() {
                self.forwarder.remove(&child);
            }
            for (_, link) in self.links.drain() {
                link.abandon().await;
            }
        } else {
            self.input(Input::User(UserCommand::Leave));
            self.drain().await;
        }
        stop
    }

    /// Reads every link's loss in the direction it carries audio (what our child lost of
    /// ours, from its reports; what we lost of our parent's, counted) and reports them all at
    /// once ([`Input::Losses`], as the simulator does). Only links that feed us need the
    /// statistics.
    fn read_loss(
        &self,
        losses: mpsc::UnboundedSender<Vec<(PublicKey, u16)>>,
    ) -> tokio::task::JoinHandle<()> {
        let links: Vec<(PublicKey, Arc<PeerLink>, bool)> = self
            .links
            .iter()
            .map(|(k, l)| {
                let feeds = self
                    .participant
                    .links()
                    .get(k)
                    .is_some_and(|l| l.kind.downstream());
                (*k, Arc::clone(l), feeds)
            })
            .collect();
        tokio::spawn(
            async move {
                let mut read = Vec::with_capacity(links.len());
                for (peer, link, feeds) in links {
                    let loss = if feeds {
                        link.sent_loss()
                    } else {
                        link.received_loss().await
                    };
                    tracing::trace!(%peer, feeds, ?loss, "link loss");
                    if let Some(loss) = loss {
                        read.push((peer, permille(loss)));
                    }
                }
                if !read.is_empty() {
                    let _ = losses.send(read);
                }
            }
            .instrument(tracing::Span::current()),
        )
    }

    fn input(&mut self, input: Input) {
        let now = self.clock.now();
        self.participant.handle_input(input, now);
    }

    fn on_link_event(&mut self, peer: PublicKey, event: LinkEvent) {
        let input = match event {
            LinkEvent::LocalCandidate(candidate) => {
                if self.participant.holds_candidates(&peer) {
                    self.held.entry(peer).or_default().push(candidate);
                    return;
                }
                // Only links the participant agreed to exist, so only they trickle, and only
                // what their offer or answer did not carry already.
                if self
                    .links
                    .get(&peer)
                    .is_some_and(|link| !link.described(&candidate))
                {
                    self.send(Message::Ice {
                        target: peer,
                        candidate,
                    });
                }
                return;
            }
            LinkEvent::State(LinkState::Connected) => LinkInput::Connected,
            LinkEvent::State(LinkState::Disconnected) => LinkInput::Disconnected,
            LinkEvent::State(LinkState::Failed | LinkState::Closed) => LinkInput::Failed,
            LinkEvent::State(LinkState::Connecting) => return,
            LinkEvent::Stalled => LinkInput::Stalled,
            LinkEvent::Resumed => LinkInput::Resumed,
            LinkEvent::Goodbye => LinkInput::Goodbye,
        };
        self.input(Input::Link { peer, event: input });
    }

    /// Carries every pending output out.
    async fn drain(&mut self) {
        while let Some(output) = self.participant.poll_output() {
            match output {
                Output::Publish(publication) => self.publish_out(publication),
                Output::Link(op) => self.link(op).await,
                Output::Routing(routing) => {
                    self.routing = routing;
                    self.apply_routing();
                }
                Output::Speaking(speaking) => {
                    if !self.audio.set_speaking(speaking) {
                        tracing::warn!("asked to speak, but there is no microphone");
                    }
                }
                Output::Ui(command) => {
                    // Nobody listening is fine: the CLI and tests often do not.
                    let _ = self.ui.send(command);
                }
                Output::Follow(follow) => self.subscriptions.follow(follow).await,
            }
        }
        self.release_held();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tree.clone_from(self.participant.stats());
    }

    /// Trickles the candidates held for a reservation once it is settled and the link stands;
    /// forgets them if it does not.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let settled: Vec<PublicKey> = self
            .held
            .keys()
            .filter(|peer| !self.participant.holds_candidates(peer))
            .copied()
            .collect();
        for peer in settled {
            let candidates = self.held.remove(&peer).unwrap_or_default();
            if !self.participant.wants_link(&peer) {
                continue;
            }
            for candidate in candidates {
                self.on_link_event(peer, LinkEvent::LocalCandidate(candidate));
            }
        }
    }

    /// Sends out what the participant decided to publish: signed at once, or mined first
    /// when it carries proof of work.
    fn publish_out(&self, publication: Publication) {
        if publication.work == 0 {
            self.publish(
                &publication.message,
                publication.created_at,
                publication.plaintext,
            );
        } else {
            let _ = self.queue.send(Outgoing::Mine(publication));
        }
    }

    /// Signs and queues an event (the queue publishes in order without blocking us); with a
    /// signer elsewhere, queues its draft for the queue to have it sealed and signed.
    fn publish(&self, message: &Message, created_at: Timestamp, plaintext: bool) {
        let kind = message.name();
        let outgoing = match &self.signer {
            Signer::Keys(keys) => EventWriter::new(keys, &self.space)
                .plaintext(plaintext)
                .build(message, created_at)
                .map(|event| Outgoing::Ready(event, kind)),
            Signer::Remote(remote) => EventWriter::drafts_for(remote.public_key(), &self.space)
                .plaintext(plaintext)
                .draft(message, created_at)
                .map(|draft| Outgoing::Draft(draft, kind)),
        };
        match outgoing {
            Ok(outgoing) => {
                let _ = self.queue.send(outgoing);
            }
            Err(e) => tracing::warn!(error = %e, kind, "cannot build event"),
        }
    }

    /// SDP and ICE to a linked peer: the driver's own traffic, never a decision. In clear only
    /// to a draft-literal peer in draft-compatibility mode.
    fn send(&self, message: Message) {
        let plaintext = match &message {
            Message::Offer { target, .. }
            | Message::Answer { target, .. }
            | Message::Ice { target, .. } => self.participant.plaintext_to(target),
            _ => false,
        };
        self.publish(&message, Timestamp::now(), plaintext);
    }

    /// Applies the answer `peer` will give to our offer, if an offer to it awaits its answer
    /// and it announced its DTLS certificate (`rtc::prediction`).
    async fn predict_answer(&self, peer: PublicKey) {
        let Some(link) = self.links.get(&peer).filter(|l| l.awaits_answer()) else {
            return;
        };
        let Some(fingerprint) = self
            .participant
            .space()
            .members()
            .get(&peer)
            .and_then(|m| m.dtls.as_deref())
        else {
            return;
        };
        match link.predict(fingerprint).await {
            Ok(true) => tracing::debug!(%peer, "answer predicted"),
            Ok(false) => {}
            Err(e) => tracing::debug!(%peer, error = %e, "answer not predicted"),
        }
    }

    /// [`Driver::predict_answer`] for every link whose offer awaits its answer: the space's
    /// stored events are read after our first RESERVE left (`ask_host_first`), so the
    /// parent's fingerprint often comes after the offer.
    async fn predict_answers(&self) {
        let awaiting: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(_, link)| link.awaits_answer())
            .map(|(peer, _)| *peer)
            .collect();
        for peer in awaiting {
            self.predict_answer(peer).await;
        }
    }

    async fn link(&mut self, op: LinkOp) {
        match op {
            LinkOp::Open { peer, within } => {
                let offer = match self.new_link(peer, None).await {
                    Some(link) => link
                        .create_offer()
                        .await
                        .inspect_err(|e| tracing::warn!(%peer, error = %e, "offer failed"))
                        .ok(),
                    None => None,
                };
                if offer.is_some() {
                    self.predict_answer(peer).await;
                }
                match (within, offer) {
                    (Some(reserve), Some(sdp)) => self.publish_out(reserve.carrying(sdp)),
                    // No offer to carry: the RESERVE goes alone; the CONFIRM without an answer
                    // asks for the offer again (`SendOffer`), there is none, and the
                    // negotiation deadline ends the link.
                    (Some(reserve), None) => self.publish_out(reserve),
                    (None, Some(sdp)) => self.send(Message::Offer { target: peer, sdp }),
                    (None, None) => {}
                }
            }
            LinkOp::SendOffer(peer) => {
                // Before an answer, the description in force is our offer.
                let offer = match self.links.get(&peer) {
                    Some(link) => link.local_description().await,
                    None => None,
                };
                match offer {
                    Some(sdp) => self.send(Message::Offer { target: peer, sdp }),
                    None => tracing::warn!(%peer, "no offer to send again"),
                }
            }
            LinkOp::Answer { peer, sdp, within } => {
                let existing = self.links.get(&peer).cloned();
                let link = match existing {
                    Some(link) if link.renegotiates(&sdp).await => {
                        tracing::info!(%peer, "link renegotiated (ICE restart)");
                        link
                    }
                    other => {
                        if let Some(old) = other {
                            self.forwarder.remove(&peer.to_hex());
                            old.close().await;
                        }
                        let credentials = prediction::answering_credentials(&sdp);
                        let Some(link) = self.new_link(peer, credentials).await else {
                            return;
                        };
                        link
                    }
                };
                match (link.accept_offer(sdp).await, within) {
                    (Ok(answer), Some(confirm)) => self.publish_out(confirm.carrying(answer)),
                    (Ok(answer), None) => self.send(Message::Answer {
                        target: peer,
                        sdp: answer,
                    }),
                    (Err(e), confirm) => {
                        tracing::warn!(%peer, error = %e, "offer refused");
                        // The reservation stands: the requester offers again on the CONFIRM
                        // that carries no answer.
                        if let Some(confirm) = confirm {
                            self.publish_out(confirm);
                        }
                    }
                }
            }
            LinkOp::ApplyAnswer { peer, sdp } => {
                if let Some(link) = self.links.get(&peer)
                    && let Err(e) = link.accept_answer(sdp).await
                {
                    tracing::warn!(%peer, error = %e, "answer refused");
                    if e == RtcError::Mispredicted {
                        // The link was set up for another answer: it fails, and the
                        // participant looks for a seat again.
                        let _ = self
                            .link_tx
                            .send((peer, LinkEvent::State(LinkState::Failed)));
                    }
                }
            }
            LinkOp::AddCandidate { peer, candidate } => {
                if let Some(link) = self.links.get(&peer) {
                    let _ = link.add_remote_candidate(candidate).await;
                }
            }
            LinkOp::Restart(peer) => {
                let Some(link) = self.links.get(&peer).cloned() else {
                    return;
                };
                match link.restart_ice().await {
                    Ok(sdp) => self.send(Message::Offer { target: peer, sdp }),
                    Err(e) => tracing::warn!(%peer, error = %e, "ICE restart failed"),
                }
            }
            LinkOp::Close(peer) => {
                self.forwarder.remove(&peer.to_hex());
                if let Some(link) = self.links.remove(&peer) {
                    link.close().await;
                }
            }
        }
        self.apply_routing();
    }

    async fn new_link(
        &mut self,
        peer: PublicKey,
        credentials: Option<IceCredentials>,
    ) -> Option<Arc<PeerLink>> {
        let sink = self.audio.inbound();
        let link = PeerLink::new(
            peer.to_hex(),
            &self.link_config,
            &self.certificate,
            credentials,
            sink,
        );
        match link.await {
            Ok((link, mut events)) => {
                let link = Arc::new(link);
                let tx = self.link_tx.clone();
                let this = Arc::downgrade(&link);
                tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        // A link we closed (dropped, or replaced by a newer one to the same
                        // peer) no longer speaks for the peer.
                        if this.upgrade().is_none_or(|l| l.is_closed())
                            || tx.send((peer, event)).is_err()
                        {
                            break;
                        }
                    }
                });
                self.links.insert(peer, Arc::clone(&link));
                Some(link)
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot create link");
                None
            }
        }
    }

    /// Brings the forwarder and the audio path in line with the participant's routing.
    fn apply_routing(&self) {
        let routing = &self.routing;
        for child in &routing.children {
            if let Some(link) = self.links.get(child)
                && !self.forwarder.has(&child.to_hex())
            {
                self.forwarder.add(Arc::clone(link));
            }
        }
        for label in self.forwarder.children() {
            let kept = routing.children.iter().any(|c| c.to_hex() == label);
            if !kept {
                self.forwarder.remove(&label);
            }
        }
        let upstream = routing
            .upstream
            .iter()
            .map(|k| (k.to_hex(), source_id(k)))
            .collect();
        let speakers = routing
            .speakers
            .iter()
            .map(|k| (k.to_hex(), source_id(k)))
            .collect();
        self.audio.route(|audio| {
            audio.upstream = upstream;
            audio.speakers = speakers;
        });
        self.audio
            .set_uplink(routing.uplink.and_then(|p| self.links.get(&p).cloned()));
    }
}
