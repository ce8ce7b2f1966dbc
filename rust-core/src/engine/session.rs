//! One participant's session: the only place where relays, the space state machine, the
//! parent choice, WebRTC links and audio meet.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nostr::prelude::{Keys, PublicKey, Timestamp};
use tokio::sync::{broadcast, mpsc, watch};

use super::EngineError;
use super::audio::{Audio, AudioConfig, AudioStats, CaptureClock, Routing, source_id};
use super::view::{Want, choose_parent};
use crate::media::CodecSettings;
use crate::media::device::{AudioSink, AudioSource};
use crate::protocol::filter::session_filters;
use crate::protocol::{
    EventWriter, Limits, LinkRole, MemberInfo, Message, NetworkMetrics, Parser, Presence,
    Reservation, Role, SpaceEvent, SpaceInfo, SpaceRef,
};
use crate::rtc::{Forwarder, LinkConfig, LinkEvent, LinkState, PeerLink};
use crate::signaling::{Incoming, PoolOptions, RelayPool};
use crate::space::{Command, Space};
use crate::topology::{CapacityPolicy, PeerMetrics, ScoreWeights};

/// How long a listener waits for CONFIRM before asking the next candidate, by default: several
/// relay round trips on a slow mobile link, short enough that a silent candidate costs little.
pub const RESERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a session needs.
pub struct SessionConfig {
    /// The participant's own key (never a GeoKey: those give no authority).
    pub keys: Keys,
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
    /// A tone to look for in the host's voice (tests and the demo).
    pub tone_hz: Option<f32>,
    /// Shared capture clock (in-process latency measurement).
    pub capture_clock: Option<CaptureClock>,
    /// How long to wait for CONFIRM before asking the next candidate ([`RESERVE_TIMEOUT`]).
    pub reserve_timeout: Duration,
    /// Cell labels to tag a new space with (hosts).
    pub cells: Vec<String>,
}

/// What a session knows about itself, for progress and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    /// Our role in the space.
    pub role: Role,
    /// Our parent in the tree.
    pub parent: Option<PublicKey>,
    /// Our warm backup parent.
    pub standby: Option<PublicKey>,
    /// Times a warm backup took over from a lost parent.
    pub standby_takeovers: u64,
    /// Our children in the tree.
    pub children: usize,
    /// Children we feed as their warm backup.
    pub standby_children: usize,
    /// ICE restarts we started (network changes).
    pub ice_restarts: u64,
    /// Audio measurements.
    pub audio: AudioStats,
    /// Events the state machine refused, by reason.
    pub rejected: HashMap<&'static str, u64>,
}

/// A running session.
pub struct Session {
    key: PublicKey,
    audio: Arc<Audio>,
    state: Arc<Mutex<SessionStats>>,
    stop: watch::Sender<Stop>,
    control: mpsc::UnboundedSender<Control>,
    events: broadcast::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

/// Events a session keeps for a slow UI before the oldest are dropped.
const UI_EVENTS: usize = 256;

/// Whether the user's interface needs to hear of a command (the engine has already acted on
/// it): roles, hands, speech invitations, mute requests, chat, reactions, the end.
fn for_ui(command: &Command) -> bool {
    matches!(
        command,
        Command::SpaceOpened
            | Command::SpaceClosed
            | Command::MemberJoined(_)
            | Command::MemberLeft(_)
            | Command::PeerRemoved(_)
            | Command::RoleChanged { .. }
            | Command::HandRaised { .. }
            | Command::SpeechProposed { .. }
            | Command::MuteRequested { .. }
            | Command::Chat { .. }
            | Command::Reaction { .. }
    )
}

/// What the user asks a running session to do.
#[derive(Debug, Clone)]
enum Control {
    /// Publish a message (role changes, hand, speech requests).
    Publish(Message),
    /// The device's network changed.
    NetworkChanged(NetworkMetrics),
    /// Mute or unmute our voice.
    Mute(bool),
}

/// How a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// LEAVE (or CLOSE for the host) and DROPs, then close.
    Polite,
    /// Close every link at once and say nothing: a phone that died.
    Vanish,
}

impl Session {
    /// Connects, announces itself (CREATE for the host, JOIN otherwise) and runs until stopped.
    pub async fn start(config: SessionConfig) -> Result<Self, EngineError> {
        let me = config.keys.public_key();
        let (pool, incoming) = RelayPool::connect(&config.relays, PoolOptions::default()).await?;
        let since = Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(600));
        pool.subscribe(session_filters(&config.space, &me, Some(since)))
            .await?;
        let forwarder = Arc::new(Forwarder::new(config.link.child_queue));
        let is_host = me == *config.space.host();
        let audio = Arc::new(Audio::start(
            Arc::clone(&forwarder),
            AudioConfig {
                input: config.input,
                output: config.output,
                codec: config.codec,
                tone_hz: config.tone_hz,
                clock: config.capture_clock,
                routing: Routing {
                    me: source_id(&me),
                    host: source_id(config.space.host()),
                    is_host,
                    ..Routing::default()
                },
                speaking: is_host,
            },
        )?);
        let state = Arc::new(Mutex::new(SessionStats::default()));
        let (stop, stopped) = watch::channel(Stop::Running);
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(UI_EVENTS);
        let policy = CapacityPolicy::default();
        let metrics = PeerMetrics::from(&config.metrics);
        let capacity = policy.outputs(&metrics, is_host);
        let mut actor = Actor {
            writer_keys: config.keys.clone(),
            me,
            name: config.name.clone(),
            metrics: config.metrics,
            cells: config.cells.clone(),
            ui: events.clone(),
            muted: false,
            parser: Parser::new(
                Limits::default(),
                Some(config.space.clone()),
                Some(config.keys.clone()),
            ),
            space: Space::new(config.space.clone(), me),
            space_ref: config.space.clone(),
            pool,
            links: HashMap::new(),
            link_tx,
            parent: None,
            standby: None,
            retiring: None,
            pending: None,
            connected: HashSet::new(),
            standby_children: HashSet::new(),
            last_standby_try: Instant::now(),
            avoid: HashSet::new(),
            forwarder,
            audio: Arc::clone(&audio),
            link_config: config.link,
            policy,
            weights: ScoreWeights::default(),
            capacity,
            reserve_timeout: config.reserve_timeout,
            state: Arc::clone(&state),
            backlog: Some(Vec::new()),
            addressable_at: HashMap::new(),
            parked: Vec::new(),
            last_presence: Instant::now(),
            started: Instant::now(),
        };
        if is_host {
            let info = SpaceInfo {
                name: config.name.clone(),
                host_metrics: config.metrics,
                cells: config.cells,
            };
            actor.publish(Message::Create(info)).await;
            // The NIP-53 mirror: Nests, Amethyst and other clients list the space.
            actor
                .publish(Message::Room(actor.space.room_record()))
                .await;
        } else {
            actor
                .publish(Message::Join(MemberInfo {
                    name: config.name,
                    metrics: config.metrics,
                }))
                .await;
            actor.publish(Message::Presence(Presence::default())).await;
        }
        let task = tokio::spawn(actor.run(incoming, link_rx, control_rx, stopped));
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
        self.control
            .send(Control::Publish(message))
            .map_err(|_| EngineError::Stopped)
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
        self.control
            .send(Control::Mute(muted))
            .map_err(|_| EngineError::Stopped)
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
        self.control
            .send(Control::NetworkChanged(metrics))
            .map_err(|_| EngineError::Stopped)
    }

    /// Raises or lowers our hand (NIP-53 presence).
    pub fn raise_hand(&self, raised: bool) -> Result<(), EngineError> {
        self.send(Message::Presence(Presence {
            hand_raised: raised,
            ..Presence::default()
        }))
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

/// A reservation we are waiting on.
#[derive(Debug, Clone, Copy)]
struct Pending {
    peer: PublicKey,
    since: Instant,
    standby: bool,
}

struct Actor {
    writer_keys: Keys,
    me: PublicKey,
    /// What we announce (re-announced when the network changes).
    name: String,
    metrics: NetworkMetrics,
    cells: Vec<String>,
    /// Events for the user's interface.
    ui: broadcast::Sender<Command>,
    /// The user muted us (or a moderator asked to).
    muted: bool,
    parser: Parser,
    space: Space,
    space_ref: SpaceRef,
    pool: RelayPool,
    links: HashMap<PublicKey, Arc<PeerLink>>,
    link_tx: mpsc::UnboundedSender<(PublicKey, LinkEvent)>,
    /// Our parent in the tree.
    parent: Option<PublicKey>,
    /// Our warm backup: it already sends us the stream, so it takes over at once.
    standby: Option<PublicKey>,
    /// A former parent kept until the new one delivers (a speaker moving under the host).
    retiring: Option<PublicKey>,
    pending: Option<Pending>,
    /// Links whose ICE/DTLS completed.
    connected: HashSet<PublicKey>,
    /// Children we feed as their warm backup (first to go when a real child needs room).
    standby_children: HashSet<PublicKey>,
    last_standby_try: Instant,
    avoid: HashSet<PublicKey>,
    forwarder: Arc<Forwarder>,
    audio: Arc<Audio>,
    link_config: LinkConfig,
    policy: CapacityPolicy,
    weights: ScoreWeights,
    capacity: u32,
    reserve_timeout: Duration,
    state: Arc<Mutex<SessionStats>>,
    /// Events received before the first end-of-stored-events, applied in causal order.
    backlog: Option<Vec<SpaceEvent>>,
    /// Last `created_at` per addressable event (kind, other peer): a relay keeps one event per
    /// (kind, author, d) and refuses a replacement that is not newer, so a retry within the
    /// same second must carry a later timestamp.
    addressable_at: HashMap<(&'static str, Option<PublicKey>), u64>,
    /// Events refused only because a member was not known yet.
    parked: Vec<SpaceEvent>,
    /// When our NIP-53 presence was last published.
    last_presence: Instant,
    /// When the session started (the join timeline in debug logs).
    started: Instant,
}

/// How often a member renews its NIP-53 presence.
const PRESENCE_EVERY: Duration = Duration::from_secs(120);

/// Most events kept waiting for an unknown member.
const MAX_PARKED: usize = 1_024;

/// How long a parent must have delivered before we look for a warm backup, and how often we
/// try again after a refusal: backups matter once the tree has settled.
const STANDBY_AFTER: Duration = Duration::from_secs(1);

impl Actor {
    fn is_host(&self) -> bool {
        self.me == *self.space_ref.host()
    }

    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut link_events: mpsc::UnboundedReceiver<(PublicKey, LinkEvent)>,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut stopped: watch::Receiver<Stop>,
    ) {
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                message = incoming.recv() => match message {
                    Some(Incoming::Event { event, .. }) => self.on_event(&event).await,
                    Some(Incoming::EndOfStored { .. }) => self.flush_backlog().await,
                    Some(_) => {}
                    None => break,
                },
                Some((peer, event)) = link_events.recv() => self.on_link_event(peer, event).await,
                Some(command) = control.recv() => {
                    match command {
                        Control::Publish(message) => self.publish(message).await,
                        Control::NetworkChanged(metrics) => self.network_changed(metrics).await,
                        Control::Mute(muted) => self.mute(muted).await,
                    }
                    self.route();
                }
                _ = ticker.tick() => self.tick().await,
                _ = stopped.changed() => break,
            }
        }
        if *stopped.borrow() == Stop::Vanish {
            for child in self.forwarder.children() {
                self.forwarder.remove(&child);
            }
            for (_, link) in self.links.drain() {
                link.close().await;
            }
        } else {
            self.leave().await;
        }
        // Close the relay connections cleanly (a dropped client leaves them to time out).
        self.pool.shutdown().await;
    }

    async fn on_event(&mut self, event: &nostr::prelude::Event) {
        let parsed = match self.parser.parse(event, Timestamp::now()) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(error = %e, "event refused");
                return;
            }
        };
        match self.backlog.as_mut() {
            Some(backlog) => backlog.push(parsed),
            None => self.apply(&parsed).await,
        }
    }

    async fn flush_backlog(&mut self) {
        let Some(backlog) = self.backlog.take() else {
            return;
        };
        let mut events: Vec<&SpaceEvent> = backlog.iter().collect();
        events.sort_by_key(|e| (e.created_at, e.id));
        for event in events {
            self.apply(event).await;
        }
        tracing::debug!(
            ms = self.started.elapsed().as_millis(),
            "stored events applied"
        );
        // The tree is known now: ask for a parent at once rather than at the next tick.
        self.tick().await;
    }

    async fn apply(&mut self, event: &SpaceEvent) {
        let joins = matches!(
            event.message,
            Message::Create(_) | Message::Join(_) | Message::Presence(_)
        );
        match self.space.apply(event, Timestamp::now()) {
            Ok(commands) => {
                for command in commands {
                    self.execute(command).await;
                }
                if joins {
                    self.retry_parked().await;
                }
            }
            Err(rejection) => {
                // Relays do not keep order between authors (a CONFIRM may overtake the host's
                // CREATE): park what only lacks a member we have not seen yet, retry on joins.
                if matches!(rejection.reason(), "not_a_member" | "target_not_member")
                    && self.parked.len() < MAX_PARKED
                {
                    self.parked.push(event.clone());
                }
                *self.stats().rejected.entry(rejection.reason()).or_default() += 1;
            }
        }
    }

    /// Re-applies parked events until none more succeeds.
    async fn retry_parked(&mut self) {
        loop {
            let parked = std::mem::take(&mut self.parked);
            let before = parked.len();
            let mut progressed = false;
            for event in parked {
                match self.space.apply(&event, Timestamp::now()) {
                    Ok(commands) => {
                        progressed = true;
                        for command in commands {
                            Box::pin(self.execute(command)).await;
                        }
                    }
                    Err(rejection)
                        if matches!(rejection.reason(), "not_a_member" | "target_not_member") =>
                    {
                        self.parked.push(event)
                    }
                    Err(_) => {}
                }
            }
            if !progressed || self.parked.len() == before {
                break;
            }
        }
    }

    /// Signs, publishes, and applies to our own state (relays do not echo our events).
    async fn publish(&mut self, message: Message) {
        let now = Timestamp::now().as_secs();
        let slot = match &message {
            Message::Reserve(r) => Some(("reserve", Some(r.confirmer))),
            Message::Confirm(r) => Some(("confirm", Some(r.requester))),
            Message::Drop { target } => Some(("drop", Some(*target))),
            Message::Create(_) | Message::Join(_) | Message::Leave => Some(("membership", None)),
            _ => None,
        };
        let created_at = match slot {
            Some(slot) => {
                let at = self
                    .addressable_at
                    .get(&slot)
                    .map_or(now, |last| now.max(last + 1));
                self.addressable_at.insert(slot, at);
                at
            }
            None => now,
        };
        let event = match EventWriter::new(&self.writer_keys, &self.space_ref)
            .build(&message, Timestamp::from_secs(created_at))
        {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build event");
                return;
            }
        };
        let sent = Instant::now();
        if let Err(e) = self.pool.publish(&event).await {
            tracing::warn!(error = %e, kind = message.name(), "publish failed");
        }
        tracing::debug!(
            us = sent.elapsed().as_micros(),
            kind = message.name(),
            "published"
        );
        // Our own state needs our own membership, reservations and role changes; offers,
        // answers and candidates are addressed to someone else.
        let private = matches!(
            message,
            Message::Offer { .. } | Message::Answer { .. } | Message::Ice { .. }
        );
        if !private && let Ok(parsed) = self.parser.parse(&event, Timestamp::now()) {
            match self.space.apply(&parsed, Timestamp::now()) {
                Ok(commands) => {
                    for command in commands {
                        // Only what concerns roles: our own reservations need no answer.
                        if matches!(command, Command::RoleChanged { .. }) {
                            Box::pin(self.execute(command)).await;
                        }
                    }
                }
                Err(rejection) => {
                    tracing::info!(
                        reason = rejection.reason(),
                        kind = message.name(),
                        "not allowed"
                    );
                }
            }
        }
    }

    async fn reserve(&mut self, peer: PublicKey, standby: bool) {
        tracing::debug!(ms = self.started.elapsed().as_millis(), %peer, standby, "reserve");
        self.pending = Some(Pending {
            peer,
            since: Instant::now(),
            standby,
        });
        let reservation = Reservation {
            requester: self.me,
            confirmer: peer,
            role: Some(LinkRole::Consumer),
            standby,
        };
        self.publish(Message::Reserve(reservation)).await;
    }

    async fn execute(&mut self, command: Command) {
        if for_ui(&command) {
            // Nobody listening is fine: the CLI and tests often do not.
            let _ = self.ui.send(command.clone());
        }
        if matches!(
            command,
            Command::RoleChanged { .. }
                | Command::MemberJoined(_)
                | Command::MemberLeft(_)
                | Command::PeerRemoved(_)
        ) {
            self.route_speakers();
        }
        match command {
            Command::MuteRequested { by } => {
                tracing::info!(%by, "a moderator asked us to mute");
                self.mute(true).await;
            }
            Command::ConnectionRequested { from, standby, .. } => {
                self.on_request(from, standby).await
            }
            Command::ConnectionConfirmed { by } => {
                let Some(pending) = self.pending.filter(|p| p.peer == by) else {
                    return;
                };
                tracing::debug!(ms = self.started.elapsed().as_millis(), %by, "confirmed");
                self.pending = None;
                if self.links.contains_key(&by) {
                    // Our warm backup (or former link) confirmed as parent: nothing to set up.
                    if !pending.standby {
                        self.parent = Some(by);
                        if self.standby == Some(by) {
                            self.standby = None;
                        }
                    }
                } else {
                    self.connect(by, pending.standby).await;
                }
            }
            Command::RemoteOffer { from, sdp } => self.on_offer(from, sdp).await,
            Command::RemoteAnswer { from, sdp } => {
                tracing::debug!(ms = self.started.elapsed().as_millis(), %from, "answer");
                if let Some(link) = self.links.get(&from)
                    && let Err(e) = link.accept_answer(sdp).await
                {
                    tracing::warn!(error = %e, "answer refused");
                }
            }
            Command::RemoteCandidate { from, candidate } => {
                if let Some(link) = self.links.get(&from) {
                    let _ = link.add_remote_candidate(candidate).await;
                }
            }
            Command::ConnectionDropped(peer)
            | Command::MemberLeft(peer)
            | Command::PeerRemoved(peer) => {
                self.lose(peer).await;
            }
            Command::SpaceClosed => {
                for (_, link) in self.links.drain() {
                    link.close().await;
                }
            }
            Command::RoleChanged { peer, role } => {
                if peer == self.me {
                    tracing::info!(?role, "our role changed");
                    let speaking = (role.speaks() || self.is_host()) && !self.muted;
                    if !self.audio.set_speaking(speaking) {
                        tracing::warn!("promoted to speak, but there is no microphone");
                    }
                }
                if self.is_host() {
                    self.publish(Message::Room(self.space.room_record())).await;
                    // A demoted speaker held a seat beside the tree; if the tree is full it
                    // goes back down, to a relay with room.
                    if !role.speaks()
                        && peer != self.me
                        && self.tree_children() as u32 > self.capacity
                        && self.forwarder.has(&peer.to_hex())
                    {
                        self.drop_link(peer).await;
                    }
                }
            }
            _ => {}
        }
        self.route();
    }

    /// A peer asks us for a link (as its parent or its warm backup).
    async fn on_request(&mut self, from: PublicKey, standby: bool) {
        let children = self.forwarder.children().len() as u32;
        let already_child = self.forwarder.has(&from.to_hex());
        // Speakers mesh with the host whatever its tree capacity: a conversation needs them.
        let speaker = self.is_host() && !standby && self.space.role_of(&from).speaks();
        let mut accept = already_child
            || speaker
            || (!self.links.contains_key(&from) && children < self.capacity);
        if !accept && !standby && !self.links.contains_key(&from) {
            // A real child outranks someone's backup.
            if let Some(victim) = self.standby_children.iter().next().copied() {
                tracing::debug!(%victim, "backup link given up for a child");
                self.drop_link(victim).await;
                accept = true;
            }
        }
        let reservation = Reservation {
            requester: from,
            confirmer: self.me,
            role: Some(LinkRole::Consumer),
            standby,
        };
        if accept {
            if standby {
                self.standby_children.insert(from);
            } else {
                self.standby_children.remove(&from);
            }
            self.publish(Message::Confirm(reservation)).await;
        } else {
            self.publish(Message::Drop { target: from }).await;
        }
    }

    async fn on_link_event(&mut self, peer: PublicKey, event: LinkEvent) {
        match event {
            LinkEvent::LocalCandidate(candidate) => {
                self.publish(Message::Ice {
                    target: peer,
                    candidate,
                })
                .await
            }
            LinkEvent::State(LinkState::Connected) => {
                tracing::debug!(ms = self.started.elapsed().as_millis(), %peer, "link connected");
                self.connected.insert(peer);
                if self.parent == Some(peer) {
                    self.last_standby_try = Instant::now();
                    // The new parent delivers: the old one can go.
                    if let Some(old) = self.retiring.take() {
                        self.drop_link(old).await;
                    }
                }
                self.route();
            }
            LinkEvent::Stalled | LinkEvent::State(LinkState::Failed | LinkState::Closed)
                if self.parent == Some(peer) || self.standby == Some(peer) =>
            {
                tracing::info!(%peer, ?event, "upstream link lost");
                self.avoid.insert(peer);
                self.drop_link(peer).await;
            }
            LinkEvent::State(LinkState::Failed | LinkState::Closed) => self.lose(peer).await,
            _ => {}
        }
    }

    /// Every 100 ms: ask for a parent when we have none, a link to the host when we speak, a
    /// warm backup once settled; give up on silent reservations.
    async fn tick(&mut self) {
        // NIP-53 clients drop presences older than a few minutes (Nests: 5): renew every 2.
        if !self.is_host() && self.last_presence.elapsed() >= PRESENCE_EVERY {
            self.last_presence = Instant::now();
            self.publish(Message::Presence(Presence::default())).await;
        }
        if self.is_host() || self.backlog.is_some() || self.space.is_closed() {
            return;
        }
        if let Some(pending) = self.pending {
            if pending.since.elapsed() < self.reserve_timeout {
                return;
            }
            tracing::info!(candidate = %pending.peer, "reservation timed out");
            self.publish(Message::Drop {
                target: pending.peer,
            })
            .await;
            self.avoid.insert(pending.peer);
            self.pending = None;
        }
        let host = *self.space_ref.host();
        let Some(parent) = self.parent else {
            match choose_parent(
                &self.space,
                &self.me,
                Want::Parent,
                &self.policy,
                &self.weights,
                &self.avoid,
            ) {
                Some(parent) => self.reserve(parent, false).await,
                // Everyone refused: forget refusals and try again later.
                None => self.avoid.clear(),
            }
            return;
        };
        let settled =
            self.connected.contains(&parent) && self.last_standby_try.elapsed() >= STANDBY_AFTER;
        if self.space.role_of(&self.me).speaks() && parent != host {
            // Speakers mesh with the host: their voice goes up one hop, everyone's comes down
            // from the host directly.
            if settled && self.retiring.is_none() {
                self.last_standby_try = Instant::now();
                self.reserve(host, false).await;
            }
            return;
        }
        if parent == host {
            // Nothing above the host to fall back on: a backup would only cost an output.
            if let Some(backup) = self.standby.take() {
                self.drop_link(backup).await;
            }
            return;
        }
        if self.standby.is_some() || !settled {
            return;
        }
        self.last_standby_try = Instant::now();
        if let Some(backup) = choose_parent(
            &self.space,
            &self.me,
            Want::Standby { parent },
            &self.policy,
            &self.weights,
            &self.avoid,
        ) {
            self.reserve(backup, true).await;
        }
    }

    async fn new_link(&mut self, peer: PublicKey) -> Option<Arc<PeerLink>> {
        let sink = self.audio.inbound();
        match PeerLink::new(peer.to_hex(), &self.link_config, sink).await {
            Ok((link, mut events)) => {
                let link = Arc::new(link);
                let tx = self.link_tx.clone();
                tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        if tx.send((peer, event)).is_err() {
                            break;
                        }
                    }
                });
                self.links.insert(peer, Arc::clone(&link));
                Some(link)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create link");
                None
            }
        }
    }

    /// Opens a link to a confirmed parent or warm backup and offers.
    async fn connect(&mut self, peer: PublicKey, standby: bool) {
        let Some(link) = self.new_link(peer).await else {
            return;
        };
        if standby {
            self.standby = Some(peer);
        } else {
            // A parent we replace while it still delivers (a speaker moving under the host)
            // stays until the new one is connected.
            if let Some(old) = self.parent.replace(peer)
                && old != peer
            {
                self.retiring = Some(old);
            }
        }
        self.route();
        match link.create_offer().await {
            Ok(sdp) => {
                self.publish(Message::Offer { target: peer, sdp }).await;
            }
            Err(e) => tracing::warn!(error = %e, "offer failed"),
        }
    }

    /// An offer renegotiates a link we have (an ICE restart after the peer's network changed)
    /// or opens a new one from a child.
    async fn on_offer(&mut self, from: PublicKey, sdp: String) {
        if let Some(link) = self.links.get(&from).cloned()
            && link.renegotiates(&sdp).await
        {
            match link.accept_offer(sdp).await {
                Ok(answer) => {
                    tracing::info!(peer = %from, "link renegotiated (ICE restart)");
                    self.publish(Message::Answer {
                        target: from,
                        sdp: answer,
                    })
                    .await;
                }
                Err(e) => tracing::warn!(peer = %from, error = %e, "restart offer refused"),
            }
            return;
        }
        self.accept_child(from, sdp).await;
    }

    /// Stops or resumes our voice and tells NIP-53 clients.
    async fn mute(&mut self, muted: bool) {
        self.muted = muted;
        let speaks = self.is_host() || self.space.role_of(&self.me).speaks();
        self.audio.set_speaking(speaks && !muted);
        self.publish(Message::Presence(Presence {
            muted,
            publishing: speaks && !muted,
            on_stage: speaks,
            ..Presence::default()
        }))
        .await;
    }

    /// Our network changed: re-announce, shed what we can no longer feed, restart ICE.
    async fn network_changed(&mut self, metrics: NetworkMetrics) {
        self.metrics = metrics;
        self.capacity = self
            .policy
            .outputs(&PeerMetrics::from(&metrics), self.is_host());
        tracing::info!(capacity = self.capacity, "network changed");
        let announce = if self.is_host() {
            Message::Create(SpaceInfo {
                name: self.name.clone(),
                host_metrics: metrics,
                cells: self.cells.clone(),
            })
        } else {
            Message::Join(MemberInfo {
                name: self.name.clone(),
                metrics,
            })
        };
        self.publish(announce).await;
        // Backups go first, then children in key order, until we are within capacity.
        let mut children: Vec<PublicKey> = self
            .links
            .keys()
            .filter(|k| self.forwarder.has(&k.to_hex()))
            .copied()
            .collect();
        children.sort_by_key(|k| (!self.standby_children.contains(k), *k));
        let excess = children.len().saturating_sub(self.capacity as usize);
        for child in children.into_iter().take(excess) {
            self.drop_link(child).await;
        }
        let links: Vec<(PublicKey, Arc<PeerLink>)> = self
            .links
            .iter()
            .map(|(k, l)| (*k, Arc::clone(l)))
            .collect();
        for (peer, link) in links {
            match link.restart_ice().await {
                Ok(sdp) => {
                    self.stats().ice_restarts += 1;
                    self.publish(Message::Offer { target: peer, sdp }).await;
                }
                Err(e) => tracing::warn!(%peer, error = %e, "ICE restart failed"),
            }
        }
    }

    async fn accept_child(&mut self, child: PublicKey, sdp: String) {
        if let Some(old) = self.links.remove(&child) {
            old.close().await;
        }
        let Some(link) = self.new_link(child).await else {
            return;
        };
        match link.accept_offer(sdp).await {
            Ok(answer) => {
                self.forwarder.add(Arc::clone(&link));
                self.publish(Message::Answer {
                    target: child,
                    sdp: answer,
                })
                .await;
            }
            Err(e) => tracing::warn!(error = %e, "offer refused"),
        }
        self.route();
    }

    /// Ends our link with `peer`: DROP for everyone's view, then forget it locally.
    async fn drop_link(&mut self, peer: PublicKey) {
        self.publish(Message::Drop { target: peer }).await;
        self.lose(peer).await;
    }

    async fn lose(&mut self, peer: PublicKey) {
        if self.pending.is_some_and(|p| p.peer == peer) {
            self.pending = None;
            self.avoid.insert(peer);
        }
        if self.retiring == Some(peer) {
            self.retiring = None;
        }
        if self.standby == Some(peer) {
            self.standby = None;
        }
        if self.parent == Some(peer) {
            self.parent = None;
            if let Some(backup) = self.standby.take() {
                // The warm backup already sends us every frame: it becomes our parent at
                // once, and the CONFIRM only tells everyone else.
                tracing::info!(%backup, "warm backup takes over");
                self.parent = Some(backup);
                self.stats().standby_takeovers += 1;
                self.reserve(backup, false).await;
            } else if let Some(old) = self.retiring.take() {
                self.parent = Some(old);
            }
        }
        self.standby_children.remove(&peer);
        self.connected.remove(&peer);
        self.forwarder.remove(&peer.to_hex());
        if let Some(link) = self.links.remove(&peer) {
            link.close().await;
        }
        self.route();
    }

    async fn leave(&mut self) {
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            self.publish(Message::Drop { target: peer }).await;
        }
        if self.is_host() {
            self.publish(Message::Close).await;
            self.publish(Message::Room(self.space.room_record())).await;
        } else {
            // The draft's LEAVE first: a NIP-53 leaving presence in the same second must not
            // make it look stale.
            self.publish(Message::Leave).await;
            self.publish(Message::Presence(Presence {
                leaving: true,
                ..Presence::default()
            }))
            .await;
        }
        for (_, link) in self.links.drain() {
            link.close().await;
        }
    }

    /// Brings audio routing and the reported state in line with links and roles.
    fn route(&self) {
        let upstream: HashSet<String> = [self.parent, self.standby, self.retiring]
            .into_iter()
            .flatten()
            .map(|p| p.to_hex())
            .collect();
        self.audio.route(|routing| routing.upstream = upstream);
        let host = self.space_ref.host();
        let speaking = !self.is_host() && self.space.role_of(&self.me).speaks();
        self.audio.set_uplink(
            self.parent
                .filter(|p| speaking && p == host)
                .and_then(|p| self.links.get(&p).cloned()),
        );
        let mut state = self.stats();
        state.role = self.space.role_of(&self.me);
        state.parent = self.parent;
        state.standby = self.standby;
        state.standby_children = self.standby_children.len();
        state.children = self.tree_children();
    }

    /// At the host: which links may send which voice. Only roles and membership change it,
    /// so it is rebuilt on those events, not on every command (it walks every member).
    fn route_speakers(&self) {
        if !self.is_host() {
            return;
        }
        let speakers: HashMap<String, u32> = self
            .space
            .members()
            .keys()
            .filter(|k| **k != self.me && self.space.role_of(k).speaks())
            .map(|k| (k.to_hex(), source_id(k)))
            .collect();
        self.audio.route(|routing| routing.speakers = speakers);
    }

    /// Children in the tree (not those we only back up).
    fn tree_children(&self) -> usize {
        self.forwarder
            .children()
            .len()
            .saturating_sub(self.standby_children.len())
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, SessionStats> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
