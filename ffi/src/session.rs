//! Spaces from an app: host or join a space, follow what happens in it, change roles, report
//! network changes. Thin wrappers over `engine::Session` running on the core's own runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nostr::prelude::{Keys, PublicKey, Timestamp};
use tokio::sync::broadcast::error::RecvError;

use super::{GeoCell, GpsFix, SpacesError, TrackerSettings, UserSigner};
use spaces_core::engine::roam::{self, RoamConfig};
use spaces_core::engine::{self, EngineError, RESERVE_TIMEOUT, Session, SessionConfig};
use spaces_core::geo;
use spaces_core::media::CodecSettings;
use spaces_core::media::device::{InputSpec, OutputSpec, open_input, open_output};
use spaces_core::protocol::{ConnectionType, NetworkMetrics, Role, Signer, SpaceRef};
use spaces_core::rtc::LinkConfig;
use spaces_core::signaling::EmbeddedRelay;
use spaces_core::space::Command;

/// One multi-threaded runtime for every session of the process: foreign code awaits our
/// futures on its own executor, the work runs here.
fn runtime() -> Result<&'static tokio::runtime::Runtime, SpacesError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("spaces-core")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| SpacesError::Network {
            reason: format!("no async runtime: {reason}"),
        })
}

/// Runs a future on the core's runtime and awaits it from any executor.
pub(crate) async fn on_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, SpacesError> {
    runtime()?
        .spawn(work)
        .await
        .map_err(|e| SpacesError::Network {
            reason: format!("task failed: {e}"),
        })
}

/// How the phone reaches the Internet: the core's own type.
#[uniffi::remote(Enum)]
pub enum ConnectionType {
    /// Wi-Fi.
    Wifi,
    /// Wired.
    Ethernet,
    /// Mobile data.
    Cellular,
    /// Not known.
    Unknown,
}

/// What the phone knows about its network (measured or from the platform).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct NetworkInfo {
    /// Network kind.
    pub kind: ConnectionType,
    /// Uplink, kbit/s: decides how many listeners this phone feeds.
    pub uplink_kbps: u32,
    /// Downlink, kbit/s.
    pub downlink_kbps: u32,
    /// Most audio streams the app allows itself to send (0: no limit; low battery: 2).
    pub max_audio_outputs: u32,
}

impl From<NetworkInfo> for NetworkMetrics {
    fn from(info: NetworkInfo) -> Self {
        NetworkMetrics {
            download_kbps: info.downlink_kbps,
            upload_kbps: info.uplink_kbps,
            max_audio_outputs: info.max_audio_outputs,
            connection: info.kind,
        }
    }
}

/// Where our voice comes from.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Enum)]
pub enum AudioInput {
    /// The microphone: opened only while we speak (a host from the start, a listener once
    /// promoted) and closed while muted, so a listener's phone never records.
    Microphone,
    /// A sine tone (tests, demos).
    Tone {
        /// Frequency, Hz.
        hz: f32,
    },
    /// Nothing: this device can never speak.
    None,
}

/// Where the space's audio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AudioOutput {
    /// The speaker or headphones.
    Speaker,
    /// Nowhere (tests).
    Silent,
}

/// How a session starts.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SessionSettings {
    /// Relay URLs (`wss://…`).
    pub relays: Vec<String>,
    /// Display name.
    pub name: String,
    /// The user's own key (nsec or hex); `null` makes a fresh one. Never a GeoKey: those are
    /// public and give no authority.
    pub secret_key: Option<String>,
    /// The network.
    pub network: NetworkInfo,
    /// Voice in.
    pub input: AudioInput,
    /// Audio out.
    pub output: AudioOutput,
    /// STUN/TURN servers for links across NATs; empty for direct links only.
    pub ice_servers: Vec<IceServerInfo>,
    /// Links through TURN only, so peers never see this device's addresses (needs a TURN
    /// server in `ice_servers`). Off by default.
    #[uniffi(default = false)]
    pub relay_only: bool,
    /// Let draft-literal clients (no NIP-44) take part: their reservations, SDP and ICE go in
    /// clear on public relays, which shows this device's IP addresses to anyone reading them.
    /// Off by default.
    #[uniffi(default = false)]
    pub draft_compat: bool,
    /// Keep a warm backup link below a relaying listener: a parent's crash then costs no
    /// audio, for a second stream down (57 kbit/s). Off saves the data and the battery, and a
    /// parent's crash costs 0.3–0.7 s of silence. On by default.
    #[uniffi(default = true)]
    pub warm_backup: bool,
}

/// A STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IceServerInfo {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub url: String,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN password (empty for STUN).
    pub credential: String,
}

/// A participant's role in a space: the core's own type.
#[uniffi::remote(Enum)]
pub enum Role {
    /// Listens.
    Listener,
    /// Speaks.
    Speaker,
    /// Moderates and speaks.
    Cohost,
    /// Opened the space.
    Host,
}

/// One voice as this device hears it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VoiceInfo {
    /// The voice's id (see [`voice_id`]).
    pub voice: u32,
    /// Frames played.
    pub frames: u64,
    /// Dominant frequency (meaningful for tones), Hz.
    pub frequency_hz: Option<f64>,
}

/// A session's state, for the UI and diagnostics.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SessionInfo {
    /// Our role.
    pub role: Role,
    /// Our parent in the relay tree (hex key).
    pub parent: Option<String>,
    /// Our warm backup parent (hex key).
    pub backup: Option<String>,
    /// Listeners we relay to.
    pub children: u32,
    /// Audio packets received.
    pub packets_received: u64,
    /// Packets lost.
    pub packets_lost: u64,
    /// From start to the first host audio played, ms.
    pub first_audio_ms: Option<f64>,
    /// Every voice heard.
    pub voices: Vec<VoiceInfo>,
}

/// What happens in a space, for the UI.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum SessionEvent {
    /// The session's state when the subscription began: always the first event.
    State {
        /// The state.
        info: SessionInfo,
    },
    /// The host's space is open.
    Opened,
    /// The space ended.
    Closed,
    /// Someone joined (hex key).
    MemberJoined {
        /// Who.
        peer: String,
    },
    /// Someone left.
    MemberLeft {
        /// Who.
        peer: String,
    },
    /// A moderator removed someone (it may be us).
    Removed {
        /// Who.
        peer: String,
    },
    /// A role changed (it may be ours).
    RoleChanged {
        /// Whose.
        peer: String,
        /// The new role.
        role: Role,
    },
    /// A hand went up or down.
    HandRaised {
        /// Whose.
        peer: String,
        /// Up?
        raised: bool,
    },
    /// A moderator invites us to ask to speak.
    SpeechProposed {
        /// The moderator.
        by: String,
    },
    /// A moderator asked us to mute (we did).
    MuteRequested {
        /// The moderator.
        by: String,
    },
    /// A chat line.
    Chat {
        /// Author.
        from: String,
        /// Text.
        text: String,
    },
    /// A reaction.
    Reaction {
        /// Author.
        from: String,
        /// Emoji.
        content: String,
    },
}

impl SessionEvent {
    fn from_command(command: Command) -> Option<Self> {
        Some(match command {
            Command::SpaceOpened => Self::Opened,
            Command::SpaceClosed => Self::Closed,
            Command::MemberJoined(peer) => Self::MemberJoined {
                peer: peer.to_hex(),
            },
            Command::MemberLeft(peer) => Self::MemberLeft {
                peer: peer.to_hex(),
            },
            Command::PeerRemoved(peer) => Self::Removed {
                peer: peer.to_hex(),
            },
            Command::RoleChanged { peer, role } => Self::RoleChanged {
                peer: peer.to_hex(),
                role,
            },
            Command::HandRaised { peer, raised } => Self::HandRaised {
                peer: peer.to_hex(),
                raised,
            },
            Command::SpeechProposed { by } => Self::SpeechProposed { by: by.to_hex() },
            Command::MuteRequested { by } => Self::MuteRequested { by: by.to_hex() },
            Command::Chat { from, text } => Self::Chat {
                from: from.to_hex(),
                text,
            },
            Command::Reaction { from, content } => Self::Reaction {
                from: from.to_hex(),
                content,
            },
            _ => return None,
        })
    }
}

/// A listener's subscription to a session's events: [`Subscription::cancel`] or dropping it
/// stops the deliveries.
#[derive(uniffi::Object)]
pub struct Subscription {
    task: tokio::task::JoinHandle<()>,
    cancelled: Arc<AtomicBool>,
}

#[uniffi::export]
impl Subscription {
    /// Stops delivering events: none starts after this returns (one being delivered at that
    /// moment still finishes).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.task.abort();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Receives a session's events, on a core thread: hand them to the UI thread.
#[uniffi::export(with_foreign)]
pub trait SessionListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: SessionEvent);
}

/// The voice id of a participant (how [`VoiceInfo`] names voices).
#[uniffi::export]
pub fn voice_id(public_key: String) -> Result<u32, SpacesError> {
    Ok(engine::source_id(&parse_key(&public_key)?))
}

fn parse_address(address: &str) -> Result<SpaceRef, SpacesError> {
    SpaceRef::from_room_address(address).map_err(|e| SpacesError::InvalidSpace {
        reason: e.to_string(),
    })
}

fn parse_key(hex_or_npub: &str) -> Result<PublicKey, SpacesError> {
    PublicKey::parse(hex_or_npub).map_err(|e| SpacesError::InvalidKey {
        reason: format!("{hex_or_npub:?}: {e}"),
    })
}

fn config(
    settings: &SessionSettings,
    signer: Signer,
    space: SpaceRef,
    cells: Vec<String>,
) -> Result<SessionConfig, SpacesError> {
    let audio = |e: spaces_core::media::MediaError| SpacesError::Audio {
        reason: e.to_string(),
    };
    let input = match settings.input {
        AudioInput::Microphone => Some(open_input(&InputSpec::SoundCard).map_err(audio)?),
        AudioInput::Tone { hz } => Some(
            open_input(&InputSpec::Tone {
                freq_hz: hz,
                amplitude: 0.3,
            })
            .map_err(audio)?,
        ),
        AudioInput::None => None,
    };
    let output = match settings.output {
        AudioOutput::Speaker => open_output(&OutputSpec::SoundCard).map_err(audio)?,
        AudioOutput::Silent => open_output(&OutputSpec::Null).map_err(audio)?,
    };
    let link = LinkConfig {
        ice_servers: settings
            .ice_servers
            .iter()
            .map(|server| spaces_core::rtc::IceServer {
                urls: vec![server.url.clone()],
                username: server.username.clone(),
                credential: server.credential.clone(),
            })
            .collect(),
        relay_only: settings.relay_only,
        ..LinkConfig::default()
    };
    if link.relay_only && !link.has_turn() {
        return Err(SpacesError::InvalidSettings {
            reason: "relay_only needs a TURN server in ice_servers".into(),
        });
    }
    Ok(SessionConfig {
        signer,
        space,
        name: settings.name.clone(),
        metrics: settings.network.into(),
        relays: settings.relays.clone(),
        link,
        codec: CodecSettings::default(),
        input,
        output,
        tap: None,
        reserve_timeout: RESERVE_TIMEOUT,
        cells,
        draft_compat: settings.draft_compat,
        warm_backup: settings.warm_backup,
        crowd_at: spaces_core::participant::CROWD_AT,
        ask_host_first: true,
    })
}

fn keys(settings: &SessionSettings) -> Result<Keys, SpacesError> {
    match &settings.secret_key {
        Some(secret) => Keys::parse(secret).map_err(|e| SpacesError::InvalidKey {
            reason: e.to_string(),
        }),
        None => Ok(Keys::generate()),
    }
}

/// A live space session: hosting or listening. [`SpaceSession::leave`] leaves politely and
/// waits; dropping the object leaves too, in the background.
#[derive(uniffi::Object)]
pub struct SpaceSession {
    space: SpaceRef,
    session: Mutex<Option<Session>>,
}

impl SpaceSession {
    async fn start(
        settings: SessionSettings,
        space: SpaceRef,
        signer: Signer,
        cells: Vec<String>,
    ) -> Result<Arc<Self>, SpacesError> {
        let config = config(&settings, signer, space.clone(), cells)?;
        Self::launch(space, config).await
    }

    /// Starts a session of `space` as `config` says.
    async fn launch(space: SpaceRef, config: SessionConfig) -> Result<Arc<Self>, SpacesError> {
        let session = on_runtime(Session::start(config)).await??;
        Ok(Arc::new(Self {
            space,
            session: Mutex::new(Some(session)),
        }))
    }

    async fn open(
        settings: SessionSettings,
        name: String,
        cells: Vec<String>,
        signer: Signer,
    ) -> Result<Arc<Self>, SpacesError> {
        let id = format!("space-{}", Timestamp::now().as_secs());
        let space =
            SpaceRef::new(id, signer.public_key()).map_err(|e| SpacesError::InvalidSpace {
                reason: e.to_string(),
            })?;
        let mut settings = settings;
        settings.name = name;
        Self::start(settings, space, signer, cells).await
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, EngineError>,
    ) -> Result<T, SpacesError> {
        let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let session = session.as_ref().ok_or(SpacesError::Stopped {
            reason: "the session has ended".into(),
        })?;
        Ok(f(session)?)
    }
}

#[uniffi::export]
impl SpaceSession {
    /// Opens a space signed with the user's key, tagged with `cells` (UMAP labels
    /// "LAT,LON", so people nearby find it), and starts streaming when the input allows.
    #[uniffi::constructor]
    pub async fn host(
        settings: SessionSettings,
        name: String,
        cells: Vec<String>,
    ) -> Result<Arc<Self>, SpacesError> {
        let signer = Signer::Keys(keys(&settings)?);
        Self::open(settings, name, cells, signer).await
    }

    /// [`Self::host`], every event signed by `signer` (a NIP-55 signer app, a NIP-46 bunker);
    /// `settings.secret_key` is not used.
    #[uniffi::constructor]
    pub async fn host_signed_by(
        settings: SessionSettings,
        name: String,
        cells: Vec<String>,
        signer: Arc<UserSigner>,
    ) -> Result<Arc<Self>, SpacesError> {
        Self::open(settings, name, cells, signer.signer()).await
    }

    /// Joins a space by its address `30312:<host hex>:<id>`.
    #[uniffi::constructor]
    pub async fn join(
        settings: SessionSettings,
        address: String,
    ) -> Result<Arc<Self>, SpacesError> {
        let signer = Signer::Keys(keys(&settings)?);
        Self::start(settings, parse_address(&address)?, signer, Vec::new()).await
    }

    /// [`Self::join`], every event signed by `signer`; `settings.secret_key` is not used.
    #[uniffi::constructor]
    pub async fn join_signed_by(
        settings: SessionSettings,
        address: String,
        signer: Arc<UserSigner>,
    ) -> Result<Arc<Self>, SpacesError> {
        Self::start(
            settings,
            parse_address(&address)?,
            signer.signer(),
            Vec::new(),
        )
        .await
    }

    /// The space's address (`30312:<host hex>:<id>`), to share.
    pub fn address(&self) -> String {
        self.space.room_address()
    }

    /// Our public key (hex).
    pub fn public_key(&self) -> Result<String, SpacesError> {
        self.with(|s| Ok(s.key().to_hex()))
    }

    /// The current state.
    pub fn info(&self) -> Result<SessionInfo, SpacesError> {
        self.with(|s| {
            let stats = s.stats();
            Ok(SessionInfo {
                role: stats.tree.role,
                parent: stats.tree.parent.map(|p| p.to_hex()),
                backup: stats.tree.standby.map(|p| p.to_hex()),
                children: u32::try_from(stats.tree.children).unwrap_or(u32::MAX),
                packets_received: stats.audio.packets_received,
                packets_lost: stats.audio.lost,
                first_audio_ms: stats.audio.first_audio.map(|d| d.as_secs_f64() * 1e3),
                voices: stats
                    .audio
                    .sources
                    .iter()
                    .map(|(voice, v)| VoiceInfo {
                        voice: *voice,
                        frames: v.frames,
                        frequency_hz: v.frequency_hz(),
                    })
                    .collect(),
            })
        })
    }

    /// Delivers the session's state, then every further event, to `listener`, until the
    /// returned handle is cancelled or dropped. Each call makes its own subscription.
    pub fn subscribe(
        &self,
        listener: Arc<dyn SessionListener>,
    ) -> Result<Arc<Subscription>, SpacesError> {
        // Subscribe before reading the state, so that nothing happens unseen in between.
        let mut events = self.with(|s| Ok(s.events()))?;
        let state = self.info()?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancelled);
        let task = runtime()?.spawn(async move {
            listener.on_event(SessionEvent::State { info: state });
            loop {
                match events.recv().await {
                    // Checked before each delivery: a task being polled finishes its poll
                    // after an abort, and buffered events are ready at once.
                    _ if stop.load(Ordering::Acquire) => break,
                    Ok(command) => {
                        if let Some(event) = SessionEvent::from_command(command) {
                            listener.on_event(event);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the UI fell behind; events dropped");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Ok(Arc::new(Subscription { task, cancelled }))
    }

    /// Sends a chat line (NIP-53 kind 1311) to everyone in the space. Empty lines and lines
    /// over 2,000 bytes are refused with `NotSent`.
    pub fn send_chat(&self, text: String) -> Result<(), SpacesError> {
        self.with(|s| s.chat(text))
    }

    /// Reacts (kind 7: an emoji or `+`), to a speaker when `target` (hex or npub) names one.
    pub fn react(&self, content: String, target: Option<String>) -> Result<(), SpacesError> {
        let target = target.as_deref().map(parse_key).transpose()?;
        self.with(|s| s.react(content, target))
    }

    /// Host or co-host: lets a member speak.
    pub fn promote_speaker(&self, peer: String) -> Result<(), SpacesError> {
        let peer = parse_key(&peer)?;
        self.with(|s| s.promote_speaker(peer))
    }

    /// Host: makes a member co-host.
    pub fn promote_cohost(&self, peer: String) -> Result<(), SpacesError> {
        let peer = parse_key(&peer)?;
        self.with(|s| s.promote_cohost(peer))
    }

    /// Host or co-host: back to listening.
    pub fn demote(&self, peer: String) -> Result<(), SpacesError> {
        let peer = parse_key(&peer)?;
        self.with(|s| s.demote(peer))
    }

    /// Host or co-host: removes a member.
    pub fn remove(&self, peer: String) -> Result<(), SpacesError> {
        let peer = parse_key(&peer)?;
        self.with(|s| s.remove(peer))
    }

    /// Host or co-host: invites a listener to ask to speak.
    pub fn propose_speech(&self, peer: String, note: String) -> Result<(), SpacesError> {
        let peer = parse_key(&peer)?;
        self.with(|s| s.propose_speech(peer, note))
    }

    /// Asks to speak (raises the hand).
    pub fn request_speech(&self) -> Result<(), SpacesError> {
        self.with(Session::request_speech)
    }

    /// Raises or lowers the hand.
    pub fn raise_hand(&self, raised: bool) -> Result<(), SpacesError> {
        self.with(|s| s.raise_hand(raised))
    }

    /// Mutes or unmutes our voice.
    pub fn set_muted(&self, muted: bool) -> Result<(), SpacesError> {
        self.with(|s| s.set_muted(muted))
    }

    /// The phone's network changed: ICE restarts, the tree adapts to the new uplink.
    pub fn network_changed(&self, network: NetworkInfo) -> Result<(), SpacesError> {
        self.with(|s| s.network_changed(network.into()))
    }

    /// Leaves politely (the host closes the space). Further calls fail with `Stopped`.
    pub async fn leave(&self) -> Result<(), SpacesError> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(session) = session {
            on_runtime(session.stop()).await?;
        }
        Ok(())
    }
}

/// Where a cell change put the user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CellPlacement {
    /// The cell the user is now in.
    pub cell: GeoCell,
    /// The space joined or opened (`30312:…`); `null` when the cell has none and hosting was
    /// not allowed.
    pub address: Option<String>,
    /// We opened the space (we are its host).
    pub hosting: bool,
}

/// Auto-join by cell: feed it GPS fixes; when the user has really moved (hysteresis), it
/// looks up the new cell's spaces, leaves the old cell's space and joins the newest live space
/// of the new cell, or opens one tagged with the cell when allowed. Its session is
/// [`CellRoamer::session`].
#[derive(uniffi::Object)]
pub struct CellRoamer {
    settings: SessionSettings,
    signer: Signer,
    /// One fix at a time: a move must finish before the next starts.
    follower: tokio::sync::Mutex<roam::CellFollower>,
    session: Mutex<Option<Arc<SpaceSession>>>,
}

impl CellRoamer {
    fn with_signer(
        settings: SessionSettings,
        host_if_empty: bool,
        tracker: TrackerSettings,
        signer: Signer,
    ) -> Result<Arc<Self>, SpacesError> {
        let config = RoamConfig {
            relays: settings.relays.clone(),
            host_if_empty,
            tracker: geo::TrackerConfig::try_from(tracker)?,
            ..RoamConfig::default()
        };
        Ok(Arc::new(Self {
            follower: tokio::sync::Mutex::new(roam::CellFollower::new(config, signer.public_key())),
            settings,
            signer,
            session: Mutex::new(None),
        }))
    }

    fn take_session(&self) -> Option<Arc<SpaceSession>> {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[uniffi::export]
impl CellRoamer {
    /// A roamer in no cell yet; `host_if_empty` lets it open a space in an empty cell.
    #[uniffi::constructor]
    pub fn new(
        settings: SessionSettings,
        host_if_empty: bool,
        tracker: TrackerSettings,
    ) -> Result<Arc<Self>, SpacesError> {
        let signer = Signer::Keys(keys(&settings)?);
        Self::with_signer(settings, host_if_empty, tracker, signer)
    }

    /// [`Self::new`], every session signed by `signer`; `settings.secret_key` is not used.
    #[uniffi::constructor]
    pub fn signed_by(
        settings: SessionSettings,
        host_if_empty: bool,
        tracker: TrackerSettings,
        signer: Arc<UserSigner>,
    ) -> Result<Arc<Self>, SpacesError> {
        Self::with_signer(settings, host_if_empty, tracker, signer.signer())
    }

    /// Feeds a fix. Returns the new placement when the user changed cells (or on the first
    /// fix), `null` when they stay. A refused fix changes nothing.
    pub async fn fix(self: Arc<Self>, fix: GpsFix) -> Result<Option<CellPlacement>, SpacesError> {
        let this = Arc::clone(&self);
        let placed = on_runtime(async move {
            let mut follower = this.follower.lock().await;
            let Some(placement) = follower.fix(fix.into()).await? else {
                return Ok::<_, SpacesError>(None);
            };
            if let Some(old) = this.take_session() {
                old.leave().await?;
            }
            let cell = (*placement.cell()).into();
            let Some((space, cells)) = placement.space_to_run() else {
                return Ok(Some(CellPlacement {
                    cell,
                    address: None,
                    hosting: false,
                }));
            };
            let address = space.room_address();
            let mut config = config(&this.settings, this.signer.clone(), space.clone(), cells)?;
            config.ask_host_first = placement.ask_host_first();
            let session = SpaceSession::launch(space, config).await?;
            *this.session.lock().unwrap_or_else(PoisonError::into_inner) = Some(session);
            Ok(Some(CellPlacement {
                cell,
                address: Some(address),
                hosting: placement.hosting(),
            }))
        })
        .await??;
        Ok(placed)
    }

    /// The session of the current cell, if any.
    pub fn session(&self) -> Option<Arc<SpaceSession>> {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Leaves the current space and forgets the cell: the next fix places the user afresh
    /// (an app coming back to the foreground rejoins its cell's space).
    pub async fn leave(&self) -> Result<(), SpacesError> {
        self.follower.lock().await.reset();
        match self.take_session() {
            Some(session) => session.leave().await,
            None => Ok(()),
        }
    }
}

/// A Nostr relay inside the app, on 127.0.0.1 (tests, a space on one device).
#[derive(uniffi::Object)]
pub struct LocalRelay {
    relay: EmbeddedRelay,
}

#[uniffi::export]
impl LocalRelay {
    /// Starts it on `port` (`null`: any free port).
    #[uniffi::constructor]
    pub async fn start(port: Option<u16>) -> Result<Arc<Self>, SpacesError> {
        let relay =
            on_runtime(EmbeddedRelay::start(port))
                .await?
                .map_err(|e| SpacesError::Network {
                    reason: e.to_string(),
                })?;
        Ok(Arc::new(Self { relay }))
    }

    /// Its `ws://127.0.0.1:PORT` URL.
    pub fn url(&self) -> String {
        self.relay.url().to_string()
    }

    /// Stops it.
    pub fn stop(&self) {
        self.relay.shutdown();
    }
}
