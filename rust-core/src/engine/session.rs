//! One participant's session: the only place where relays, the space state machine, the
//! parent choice, WebRTC links and audio meet.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nostr::prelude::{Keys, PublicKey, Timestamp};
use tokio::sync::{mpsc, watch};

use super::EngineError;
use super::audio::{Audio, AudioStats, CaptureClock};
use super::view::choose_parent;
use crate::media::CodecSettings;
use crate::media::device::{AudioSink, AudioSource};
use crate::protocol::filter::session_filters;
use crate::protocol::{
    EventWriter, Limits, LinkRole, MemberInfo, Message, NetworkMetrics, Parser, Presence,
    Reservation, SpaceEvent, SpaceInfo, SpaceRef,
};
use crate::rtc::{Forwarder, LinkConfig, LinkEvent, LinkState, PeerLink};
use crate::signaling::{Incoming, PoolOptions, RelayPool};
use crate::space::{Command, Space};
use crate::topology::{CapacityPolicy, PeerMetrics, ScoreWeights};

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
    /// Microphone (hosts and speakers).
    pub input: Option<Box<dyn AudioSource>>,
    /// Speaker.
    pub output: Box<dyn AudioSink>,
    /// A tone to look for in what we play (tests and the demo).
    pub tone_hz: Option<f32>,
    /// Shared capture clock (in-process latency measurement).
    pub capture_clock: Option<CaptureClock>,
    /// How long to wait for CONFIRM before asking the next candidate.
    pub reserve_timeout: Duration,
    /// Cell labels to tag a new space with (hosts).
    pub cells: Vec<String>,
}

/// What a session knows about itself, for progress and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    /// Our parent in the tree.
    pub parent: Option<PublicKey>,
    /// Our children.
    pub children: usize,
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
    task: tokio::task::JoinHandle<()>,
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
        let audio = Arc::new(Audio::start(
            Arc::clone(&forwarder),
            config.input,
            config.output,
            config.codec,
            config.tone_hz,
            config.capture_clock,
        )?);
        let state = Arc::new(Mutex::new(SessionStats::default()));
        let (stop, stopped) = watch::channel(Stop::Running);
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let policy = CapacityPolicy::default();
        let metrics = PeerMetrics::from(&config.metrics);
        let is_host = me == *config.space.host();
        let capacity = if is_host {
            policy.host_children(&metrics)
        } else {
            policy.children(&metrics, 1)
        };
        let mut actor = Actor {
            writer_keys: config.keys.clone(),
            me,
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
            pending: None,
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
        let task = tokio::spawn(actor.run(incoming, link_rx, stopped));
        Ok(Self {
            key: me,
            audio,
            state,
            stop,
            task,
        })
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

struct Actor {
    writer_keys: Keys,
    me: PublicKey,
    parser: Parser,
    space: Space,
    space_ref: SpaceRef,
    pool: RelayPool,
    links: HashMap<PublicKey, Arc<PeerLink>>,
    link_tx: mpsc::UnboundedSender<(PublicKey, LinkEvent)>,
    parent: Option<PublicKey>,
    pending: Option<(PublicKey, Instant)>,
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
}

/// How often a member renews its NIP-53 presence.
const PRESENCE_EVERY: Duration = Duration::from_secs(120);

/// Most events kept waiting for an unknown member.
const MAX_PARKED: usize = 1_024;

impl Actor {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut link_events: mpsc::UnboundedReceiver<(PublicKey, LinkEvent)>,
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
                *self
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .rejected
                    .entry(rejection.reason())
                    .or_default() += 1;
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
            Message::Join(_) | Message::Leave => Some(("membership", None)),
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
        if let Err(e) = self.pool.publish(&event).await {
            tracing::warn!(error = %e, kind = message.name(), "publish failed");
        }
        // Our own state needs our own membership and reservations; offers, answers and
        // candidates are addressed to someone else.
        let private = matches!(
            message,
            Message::Offer { .. } | Message::Answer { .. } | Message::Ice { .. }
        );
        if !private && let Ok(parsed) = self.parser.parse(&event, Timestamp::now()) {
            let _ = self.space.apply(&parsed, Timestamp::now());
        }
    }

    async fn execute(&mut self, command: Command) {
        match command {
            Command::ConnectionRequested { from, .. } => {
                let children = self.forwarder.children().len() as u32;
                let reservation = Reservation {
                    requester: from,
                    confirmer: self.me,
                    role: Some(LinkRole::Consumer),
                };
                if children < self.capacity && !self.links.contains_key(&from) {
                    self.publish(Message::Confirm(reservation)).await;
                } else {
                    self.publish(Message::Drop { target: from }).await;
                }
            }
            Command::ConnectionConfirmed { by } if self.pending.is_some_and(|(p, _)| p == by) => {
                self.pending = None;
                self.connect_parent(by).await;
            }
            Command::RemoteOffer { from, sdp } => self.accept_child(from, sdp).await,
            Command::RemoteAnswer { from, sdp } => {
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
            Command::RoleChanged { .. } if self.me == *self.space_ref.host() => {
                self.publish(Message::Room(self.space.room_record())).await;
            }
            _ => {}
        }
        self.update_state();
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
            LinkEvent::Stalled | LinkEvent::State(LinkState::Failed | LinkState::Closed)
                if self.parent == Some(peer) =>
            {
                tracing::info!(parent = %peer, ?event, "parent lost; finding another");
                self.publish(Message::Drop { target: peer }).await;
                self.avoid.insert(peer);
                self.lose(peer).await;
            }
            LinkEvent::State(LinkState::Failed | LinkState::Closed) => self.lose(peer).await,
            _ => {}
        }
    }

    /// Every 100 ms: ask for a parent when we have none, give up on silent reservations.
    async fn tick(&mut self) {
        // NIP-53 clients drop presences older than a few minutes (Nests: 5): renew every 2.
        if self.me != *self.space_ref.host() && self.last_presence.elapsed() >= PRESENCE_EVERY {
            self.last_presence = Instant::now();
            self.publish(Message::Presence(Presence::default())).await;
        }
        if self.me == *self.space_ref.host()
            || self.backlog.is_some()
            || self.parent.is_some()
            || self.space.is_closed()
        {
            return;
        }
        if let Some((candidate, since)) = self.pending {
            if since.elapsed() < self.reserve_timeout {
                return;
            }
            tracing::info!(%candidate, "reservation timed out");
            self.publish(Message::Drop { target: candidate }).await;
            self.avoid.insert(candidate);
            self.pending = None;
        }
        let choice = choose_parent(
            &self.space,
            &self.me,
            &self.policy,
            &self.weights,
            &self.avoid,
        );
        let Some(parent) = choice else {
            // Everyone refused: forget refusals and try again later.
            self.avoid.clear();
            return;
        };
        self.pending = Some((parent, Instant::now()));
        let reservation = Reservation {
            requester: self.me,
            confirmer: parent,
            role: Some(LinkRole::Consumer),
        };
        self.publish(Message::Reserve(reservation)).await;
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

    async fn connect_parent(&mut self, parent: PublicKey) {
        let Some(link) = self.new_link(parent).await else {
            return;
        };
        match link.create_offer().await {
            Ok(sdp) => {
                self.parent = Some(parent);
                self.publish(Message::Offer {
                    target: parent,
                    sdp,
                })
                .await;
            }
            Err(e) => tracing::warn!(error = %e, "offer failed"),
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
    }

    async fn lose(&mut self, peer: PublicKey) {
        if self.pending.is_some_and(|(p, _)| p == peer) {
            self.pending = None;
            self.avoid.insert(peer);
        }
        if self.parent == Some(peer) {
            self.parent = None;
        }
        self.forwarder.remove(&peer.to_hex());
        if let Some(link) = self.links.remove(&peer) {
            link.close().await;
        }
        self.update_state();
    }

    async fn leave(&mut self) {
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            self.publish(Message::Drop { target: peer }).await;
        }
        if self.me == *self.space_ref.host() {
            self.publish(Message::Close).await;
            self.publish(Message::Room(self.space.room_record())).await;
        } else {
            self.publish(Message::Presence(Presence {
                leaving: true,
                ..Presence::default()
            }))
            .await;
            self.publish(Message::Leave).await;
        }
        for (_, link) in self.links.drain() {
            link.close().await;
        }
    }

    fn update_state(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.parent = self.parent;
        state.children = self.forwarder.children().len();
    }
}
