//! `spaces host` and `spaces join`: a real session with the microphone and speakers (or a
//! tone, WAV files, silence), until Ctrl-C, SIGTERM or `--seconds`.

use std::time::Duration;

use nostr::prelude::{Keys, Timestamp};
use spaces_cli::probe::{CaptureClock, Probe, ProbeStats};
use spaces_core::engine::roam::{Placement, RoamConfig, Roamer, cell_label};
use spaces_core::engine::{EngineError, RESERVE_TIMEOUT, Session, SessionConfig, source_id};
use spaces_core::geo::Fix;
use spaces_core::media::device::{
    AudioSink, AudioSource, InputSpec, OutputSpec, open_input, open_output,
};
use spaces_core::media::{CodecSettings, MediaError};
use spaces_core::protocol::{ConnectionType, NetworkMetrics, SpaceRef};
use spaces_core::rtc::{IceServer, LinkConfig};
use spaces_core::signaling::EmbeddedRelay;
use spaces_core::topology::CapacityPolicy;

use crate::BadArgument;

/// The port a host's embedded relay tries first, so `spaces join` finds it with no flag.
const DEFAULT_RELAY_PORT: u16 = 7777;

/// Options shared by `host` and `join`.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// A relay URL (repeatable). `host` without one starts an embedded relay on
    /// 127.0.0.1:7777; `join` without one uses ws://127.0.0.1:7777.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Audio in: `mic`, `tone` (440 Hz), `tone:<Hz>`, `none` or a WAV file.
    #[arg(long, value_name = "SOURCE")]
    input: Option<String>,
    /// Audio out: `speaker`, `null` or a WAV file to write.
    #[arg(long, value_name = "SINK", default_value = "speaker")]
    output: String,
    /// Display name.
    #[arg(long, default_value = "spaces-cli")]
    name: String,
    /// Announced uplink in kbit/s (decides how many listeners you feed).
    #[arg(long, default_value_t = 5_000)]
    uplink_kbps: u32,
    /// Stop after this many seconds, decimals allowed (default: until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = parse_seconds)]
    seconds: Option<Duration>,
    /// Let draft-literal clients (no NIP-44) take part: reservations, SDP and ICE to them go
    /// in clear on the relays, showing this machine's IP addresses to anyone reading them.
    #[arg(long)]
    draft_compat: bool,
    /// No warm backup link: half the download of a listener below a relaying listener, but a
    /// parent lost costs a gap (the stall window and a new reservation) instead of none.
    #[arg(long)]
    no_backup: bool,
    /// A STUN or TURN server (repeatable): `stun:HOST:PORT`, `turn://USER:PASSWORD@HOST:PORT`,
    /// `turns://…`, optionally with `?transport=tcp`.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
    /// Links go through TURN only: peers never see this machine's own addresses (needs a
    /// TURN `--ice-server`).
    #[arg(long)]
    relay_only: bool,
    /// The access network announced to others (it weighs in their choice of parents).
    #[arg(long, value_enum, default_value_t = Connection::Wifi)]
    connection: Connection,
    /// Data is metered (a phone plan, a tethered hotspot): relay to few listeners at most,
    /// as each costs about 22 MB an hour, and tell the others so.
    #[arg(long)]
    metered: bool,
}

/// `--connection`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    Wifi,
    Cellular,
    Ethernet,
}

impl From<Connection> for ConnectionType {
    fn from(c: Connection) -> Self {
        match c {
            Connection::Wifi => ConnectionType::Wifi,
            Connection::Cellular => ConnectionType::Cellular,
            Connection::Ethernet => ConnectionType::Ethernet,
        }
    }
}

/// The links' settings from `--ice-server` and `--relay-only`.
fn link_config(common: &Common) -> Result<LinkConfig, BadArgument> {
    let ice_servers = common
        .ice_servers
        .iter()
        .map(|url| IceServer::parse(url).map_err(|e| bad("--ice-server", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let link = LinkConfig {
        ice_servers,
        relay_only: common.relay_only,
        ..LinkConfig::default()
    };
    if link.relay_only && !link.has_turn() {
        return Err(bad(
            "--relay-only",
            "needs a TURN server: --ice-server turn://USER:PASSWORD@HOST:PORT",
        ));
    }
    Ok(link)
}

/// Arguments of `spaces host`.
#[derive(clap::Args, Debug)]
pub struct HostArgs {
    /// Space id (default: a fresh one).
    #[arg(long)]
    id: Option<String>,
    /// Open mic: promote to speaker whoever raises a hand.
    #[arg(long)]
    promote_hands: bool,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `spaces join`.
#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// The space: `30312:<host hex>:<id>` as `spaces host` prints it.
    space: String,
    /// Listen for the host's tone at this frequency and print, when done, one JSON line:
    /// first audio, the share of host frames with the tone, the longest stretch without it,
    /// and our place in the tree.
    #[arg(long, value_name = "HZ")]
    expect_tone: Option<f32>,
    #[command(flatten)]
    common: Common,
}

fn input(spec: &str, default_tone: bool) -> Result<Option<Box<dyn AudioSource>>, BadArgument> {
    let spec = match spec {
        "none" => return Ok(None),
        "tone" => InputSpec::Tone {
            freq_hz: 440.0,
            amplitude: 0.3,
        },
        "mic" => InputSpec::SoundCard,
        tone if tone.starts_with("tone:") => {
            let freq_hz = tone["tone:".len()..]
                .parse::<f32>()
                .ok()
                .filter(|f| (20.0..=20_000.0).contains(f))
                .ok_or_else(|| bad("--input", format!("{tone:?}: the tone must be 20–20000 Hz")))?;
            InputSpec::Tone {
                freq_hz,
                amplitude: 0.3,
            }
        }
        path => InputSpec::Wav(path.into()),
    };
    match open_input(&spec) {
        Ok(source) => Ok(Some(source)),
        Err(e @ spaces_core::media::MediaError::NoDevice { .. })
            if spec == InputSpec::SoundCard =>
        {
            eprintln!(
                "warning: {e}; sending {} instead",
                if default_tone {
                    "a 440 Hz tone"
                } else {
                    "nothing"
                }
            );
            if default_tone {
                open_input(&InputSpec::Tone {
                    freq_hz: 440.0,
                    amplitude: 0.3,
                })
                .map(Some)
                .map_err(|e| bad("--input", e))
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(bad("--input", e)),
    }
}

fn output(spec: &str) -> Result<Box<dyn AudioSink>, BadArgument> {
    let spec = match spec {
        "null" => OutputSpec::Null,
        "speaker" => OutputSpec::SoundCard,
        path => OutputSpec::Wav(path.into()),
    };
    match open_output(&spec) {
        Ok(sink) => Ok(sink),
        Err(e @ spaces_core::media::MediaError::NoDevice { .. })
            if spec == OutputSpec::SoundCard =>
        {
            eprintln!("warning: {e}; playing to nowhere (use --output file.wav to record)");
            open_output(&OutputSpec::Null).map_err(|e| bad("--output", e))
        }
        Err(e) => Err(bad("--output", e)),
    }
}

fn bad(argument: &'static str, e: impl std::fmt::Display) -> BadArgument {
    BadArgument {
        argument,
        reason: e.to_string(),
    }
}

fn session_config(
    keys: Keys,
    space: SpaceRef,
    common: &Common,
    relays: Vec<String>,
    host: bool,
    cells: Vec<String>,
) -> Result<SessionConfig, BadArgument> {
    let default_input = if host { "mic" } else { "none" };
    Ok(SessionConfig {
        signer: keys.into(),
        space,
        name: common.name.clone(),
        metrics: NetworkMetrics {
            download_kbps: common.uplink_kbps.saturating_mul(4),
            upload_kbps: common.uplink_kbps,
            // 0 leaves the count to the uplink; a metered plan caps it, in our announcement
            // too, so that nobody picks us for more.
            max_audio_outputs: if common.metered {
                CapacityPolicy::default().cap_metered
            } else {
                0
            },
            connection: common.connection.into(),
        },
        relays,
        link: link_config(common)?,
        codec: CodecSettings::default(),
        input: input(common.input.as_deref().unwrap_or(default_input), host)?,
        output: output(&common.output)?,
        tap: None,
        reserve_timeout: RESERVE_TIMEOUT,
        cells,
        draft_compat: common.draft_compat,
        warm_backup: !common.no_backup,
        crowd_at: spaces_core::participant::CROWD_AT,
        ask_host_first: true,
    })
}

/// `--seconds`: a positive number of seconds, decimals allowed (`12`, `24.6`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds <= 0.0 {
        return Err(format!("`{text}`: the run must last more than 0 seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// Ends a run after `seconds` (never without them), or at Ctrl-C or SIGTERM: stopped by its
/// user or by the system, a session still leaves politely (LEAVE, DROPs, a goodbye on each
/// link), so its children move on at once rather than after a stall. SIGTERM is listened for
/// from this call on (call it before the session starts), not from the first poll.
fn until_done(seconds: Option<Duration>) -> impl std::future::Future<Output = ()> {
    let terminated = terminated();
    async move {
        let timer = async {
            match seconds {
                Some(s) => tokio::time::sleep(s).await,
                None => std::future::pending().await,
            }
        };
        let interrupted = async {
            // Without signal handling, only the timer ends the run.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = timer => {}
            () = interrupted => {}
            () = terminated => {}
        }
    }
}

/// SIGTERM (how service managers and `kill` stop a process), its handler installed now.
#[cfg(unix)]
fn terminated() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    async move {
        match term {
            Some(mut term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// No SIGTERM off Unix: Ctrl-C and the timer end the run.
#[cfg(not(unix))]
fn terminated() -> impl std::future::Future<Output = ()> {
    std::future::pending()
}

async fn run_until_done(
    session: &Session,
    wait: impl std::future::Future<Output = ()>,
    promote_hands: bool,
) {
    let mut events = session.events();
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = &mut wait => break,
            _ = ticker.tick() => print_stats(session),
            event = events.recv(), if promote_hands => {
                if let Ok(spaces_core::space::Command::HandRaised { peer, raised: true }) = event {
                    match session.promote_speaker(peer) {
                        Ok(()) => eprintln!("promoted {} to speaker", &peer.to_hex()[..8]),
                        Err(e) => eprintln!("could not promote {}: {e}", &peer.to_hex()[..8]),
                    }
                }
            }
        }
    }
}

fn print_stats(session: &Session) {
    let stats = session.stats();
    eprintln!(
        "parent {}  backup {}  children {}/{}{}  packets {}  lost {}",
        stats
            .tree
            .parent
            .map_or("-".into(), |p| p.to_hex()[..8].to_owned()),
        stats
            .tree
            .standby
            .map_or("-".into(), |p| p.to_hex()[..8].to_owned()),
        stats.tree.children,
        stats.tree.capacity,
        // Capacity cut by children's loss reports: the uplink carried less than announced.
        if stats.tree.capacity_cuts > 0 {
            format!(" (cut {}x)", stats.tree.capacity_cuts)
        } else {
            String::new()
        },
        stats.audio.packets_received,
        stats.audio.lost
    );
}

fn runtime() -> Result<tokio::runtime::Runtime, BadArgument> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| bad("runtime", e))
}

/// Runs `spaces host`.
pub fn host(args: &HostArgs) -> Result<(), BadArgument> {
    runtime()?.block_on(host_space(
        &args.common,
        args.id.clone(),
        Vec::new(),
        args.promote_hands,
    ))
}

/// Opens a space (tagged with `cells`) and runs it; prints its address and relay first.
async fn host_space(
    common: &Common,
    id: Option<String>,
    cells: Vec<String>,
    promote_hands: bool,
) -> Result<(), BadArgument> {
    let wait = until_done(common.seconds);
    let keys = Keys::generate();
    let id = id.unwrap_or_else(|| format!("space-{}", Timestamp::now().as_secs()));
    let space = SpaceRef::new(id, keys.public_key()).map_err(|e| bad("--id", e))?;
    let mut _embedded = None;
    let relays = if common.relays.is_empty() {
        let relay = match EmbeddedRelay::start(Some(DEFAULT_RELAY_PORT)).await {
            Ok(relay) => relay,
            Err(_) => EmbeddedRelay::start(None)
                .await
                .map_err(|e| bad("--relay", e))?,
        };
        let url = relay.url().to_string();
        _embedded = Some(relay);
        vec![url]
    } else {
        common.relays.clone()
    };
    // `join` on this machine finds the relay we really started (7777 may have been taken).
    let _note = common
        .relays
        .is_empty()
        .then(|| RelayNote::write(&space, &relays[0]));
    println!("space {}", space.room_address());
    println!("relay {}", relays.join(" "));
    let config = session_config(keys, space, common, relays, true, cells)?;
    let session = Session::start(config)
        .await
        .map_err(|e| bad("--relay", e))?;
    run_until_done(&session, wait, promote_hands).await;
    session.stop().await;
    Ok(())
}

/// Where a host on this machine notes the embedded relay it started for a space, so that
/// `spaces join` without `--relay` finds it; removed when the host stops.
struct RelayNote(std::path::PathBuf);

impl RelayNote {
    fn path(space: &SpaceRef) -> std::path::PathBuf {
        std::env::temp_dir().join("spaces-relays").join(format!(
            "{}-{}",
            space.host().to_hex(),
            space.id()
        ))
    }

    fn write(space: &SpaceRef, url: &str) -> Option<Self> {
        let path = Self::path(space);
        let dir = path.parent()?;
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(&path, url).ok()?;
        Some(Self(path))
    }

    /// The relay a host on this machine noted for `space`, if any.
    fn read(space: &SpaceRef) -> Option<String> {
        let url = std::fs::read_to_string(Self::path(space)).ok()?;
        let url = url.trim();
        url.starts_with("ws").then(|| url.to_owned())
    }
}

impl Drop for RelayNote {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `spaces join`.
pub fn join(args: &JoinArgs) -> Result<(), BadArgument> {
    let space = SpaceRef::from_room_address(&args.space).map_err(|e| bad("space", e))?;
    let relays = match RelayNote::read(&space) {
        Some(url) if args.common.relays.is_empty() => vec![url],
        _ => default_relays(&args.common),
    };
    runtime()?.block_on(join_space(&args.common, space, relays, args.expect_tone))
}

fn default_relays(common: &Common) -> Vec<String> {
    if common.relays.is_empty() {
        vec![format!("ws://127.0.0.1:{DEFAULT_RELAY_PORT}")]
    } else {
        common.relays.clone()
    }
}

async fn join_space(
    common: &Common,
    space: SpaceRef,
    relays: Vec<String>,
    expect_tone: Option<f32>,
) -> Result<(), BadArgument> {
    let wait = until_done(common.seconds);
    let probe = expect_tone
        .map(|hz| Probe::new(&CaptureClock::shared(), source_id(space.host()), Some(hz)));
    let mut config = session_config(Keys::generate(), space, common, relays, false, Vec::new())?;
    config.tap = probe.clone().map(|p| p as _);
    let session = Session::start(config)
        .await
        .map_err(|e| bad("--relay", e))?;
    run_until_done(&session, wait, false).await;
    if let Some(probe) = probe {
        println!("{}", heard_report(&session, &probe.stats()));
    }
    session.stop().await;
    Ok(())
}

/// What `join --expect-tone` prints: what this listener heard and where it hung.
fn heard_report(session: &Session, heard: &ProbeStats) -> serde_json::Value {
    let stats = session.stats();
    serde_json::json!({
        "first_audio_ms": stats.audio.first_audio.map(|d| d.as_millis() as u64),
        "frames": heard.frames,
        "tone_pct": heard.tone_pct(),
        "gap_ms_max": heard.gap_ms_max,
        // The host voice's jitter buffer: packets lost, late, frames concealed or discarded.
        "jitter": {
            "lost": stats.audio.lost,
            "late": stats.audio.late,
            "concealed": stats.audio.concealed,
            "discarded": stats.audio.discarded,
            "target_ms": stats.audio.jitter_target_ms,
            "jitter_ms": stats.audio.jitter_ms,
        },
        "parent": stats.tree.parent.map(|p| p.to_hex()),
        "reservations": stats.tree.reservations,
        "upstream_lost": stats.tree.upstream_lost,
        "standby_takeovers": stats.tree.standby_takeovers,
        "children": stats.tree.children,
        // What we turned away and why ("unsolicited offer", "unpaid reservation", ...).
        "rejected": stats.tree.rejected,
        // Every voice played, the host's and speakers': frames and the dominant frequency.
        "voices": stats.audio.sources.iter().map(|(source, voice)| serde_json::json!({
            "source": source,
            "frames": voice.frames,
            "frequency_hz": voice.frequency_hz(),
        })).collect::<Vec<_>>(),
    })
}

/// Arguments of `spaces geo`.
#[derive(clap::Args, Debug)]
pub struct GeoArgs {
    /// Latitude of the fix, decimal degrees.
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    lat: String,
    /// Longitude of the fix, decimal degrees.
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    lon: String,
    /// Open a space for the cell when none is live.
    #[arg(long)]
    host_if_empty: bool,
    /// Further fixes, one per line `LAT LON [ACCURACY_M]`, from a file or `-` (stdin): the
    /// device moves to the space of each new cell it enters.
    #[arg(long, value_name = "FILE")]
    fixes: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// Accuracy of `--lat/--lon` and of fix lines without one, in metres (a good phone fix).
const DEFAULT_ACCURACY_M: f64 = 10.0;

/// Runs `spaces geo`: joins the newest live space of the fix's UMAP cell, or opens one, and
/// with `--fixes` follows the device from cell to cell. Only cell labels are published, never
/// the position; a space is signed with this device's own key (a GeoKey's secret is public
/// and gives no authority).
pub fn geo(args: &GeoArgs) -> Result<(), BadArgument> {
    use spaces_core::geo::Point;

    let point = Point::parse(&args.lat, &args.lon).map_err(|e| bad("--lat", e))?;
    runtime()?.block_on(async {
        let wait = until_done(args.common.seconds);
        let mut _embedded = None;
        if args.common.relays.is_empty() && args.host_if_empty {
            // Someone on this machine may already run it; then we use theirs.
            _embedded = EmbeddedRelay::start(Some(DEFAULT_RELAY_PORT)).await.ok();
        }
        let relays = default_relays(&args.common);
        let roam = RoamConfig {
            relays: relays.clone(),
            host_if_empty: args.host_if_empty,
            ..RoamConfig::default()
        };
        let common = &args.common;
        let mut roamer = Roamer::new(roam, Keys::generate(), |keys, space, cells| {
            let host = *space.host() == keys.public_key();
            session_config(keys, space, common, relays.clone(), host, cells).map_err(|e| {
                EngineError::Media(MediaError::Device(format!("{}: {}", e.argument, e.reason)))
            })
        });
        let started = std::time::Instant::now();
        let first = Fix {
            lat: point.lat(),
            lon: point.lon(),
            accuracy_m: DEFAULT_ACCURACY_M,
            time_ms: 0,
        };
        let placement = roamer.fix(first).await.map_err(|e| {
            bad(
                if args.common.relays.is_empty() {
                    "--lat"
                } else {
                    "--relay"
                },
                e,
            )
        })?;
        if let Some(Placement::Empty { cell }) = &placement
            && args.fixes.is_none()
        {
            return Err(bad(
                "--lat",
                format!(
                    "no live space in cell {}; --host-if-empty opens one",
                    cell_label(cell)
                ),
            ));
        }
        announce(placement.as_ref(), &relays, false);
        let mut fixes = match &args.fixes {
            Some(path) => read_fixes(path, started).map_err(|e| bad("--fixes", e))?,
            None => tokio::sync::mpsc::unbounded_channel().1,
        };
        tokio::pin!(wait);
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = &mut wait => break,
                Some(fix) = fixes.recv() => match roamer.fix(fix).await {
                    Ok(placement) => announce(placement.as_ref(), &relays, true),
                    Err(e) => eprintln!("warning: fix not followed: {e}"),
                },
                _ = ticker.tick() => {
                    if let Some(session) = roamer.session() {
                        print_stats(session);
                    }
                }
            }
        }
        roamer.stop().await;
        Ok(())
    })
}

/// Tells the user (stdout, machine-readable) where a fix put them.
fn announce(placement: Option<&Placement>, relays: &[String], moved: bool) {
    let Some(placement) = placement else {
        return;
    };
    let label = cell_label(placement.cell());
    if moved {
        eprintln!("moved to cell {label}");
    }
    match placement {
        Placement::Joined { space, .. } => println!("joining {}", space.room_address()),
        Placement::Hosting { space, .. } => {
            println!("space {}", space.room_address());
            println!("relay {}", relays.join(" "));
        }
        Placement::Empty { .. } => eprintln!("cell {label}: no live space"),
    }
}

/// Reads fix lines (`LAT LON [ACCURACY_M]`) on a thread; a malformed line is reported and
/// skipped.
fn read_fixes(
    path: &str,
    started: std::time::Instant,
) -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<Fix>> {
    use std::io::BufRead;

    let reader: Box<dyn BufRead + Send> = if path == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(path)?))
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for (n, line) in reader.lines().enumerate() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_fix(line, started.elapsed().as_millis() as u64) {
                Ok(fix) => {
                    if tx.send(fix).is_err() {
                        break;
                    }
                }
                Err(reason) => eprintln!("warning: --fixes line {}: {reason}", n + 1),
            }
        }
    });
    Ok(rx)
}

fn parse_fix(line: &str, time_ms: u64) -> Result<Fix, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize, name: &str| -> Result<f64, String> {
        fields
            .get(i)
            .ok_or_else(|| format!("missing {name}"))?
            .parse::<f64>()
            .map_err(|_| format!("{name} {:?} is not a number", fields[i]))
    };
    if fields.len() > 3 {
        return Err(format!("expected `LAT LON [ACCURACY_M]`, got {line:?}"));
    }
    Ok(Fix {
        lat: number(0, "latitude")?,
        lon: number(1, "longitude")?,
        accuracy_m: if fields.len() == 3 {
            number(2, "accuracy")?
        } else {
            DEFAULT_ACCURACY_M
        },
        time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_decimals_and_refuse_what_is_not_a_positive_duration() {
        assert_eq!(parse_seconds("12"), Ok(Duration::from_secs(12)));
        assert_eq!(parse_seconds("24.6"), Ok(Duration::from_millis(24_600)));
        for bad in ["0", "-1", "abc", "", "NaN", "inf", "1e30"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?} accepted");
        }
    }
}
