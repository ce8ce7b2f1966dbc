//! `spaces host` and `spaces join`: a real session with the microphone and speakers (or a
//! tone, WAV files, silence), until Ctrl-C or `--seconds`.

use std::time::Duration;

use nostr::prelude::{Keys, Timestamp};
use spaces_core::engine::{Session, SessionConfig};
use spaces_core::media::CodecSettings;
use spaces_core::media::device::{
    AudioSink, AudioSource, InputSpec, OutputSpec, open_input, open_output,
};
use spaces_core::protocol::{ConnectionType, NetworkMetrics, SpaceRef};
use spaces_core::rtc::LinkConfig;
use spaces_core::signaling::EmbeddedRelay;

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
    /// Audio in: `mic`, `tone`, `none` or a WAV file.
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
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
}

/// Arguments of `spaces host`.
#[derive(clap::Args, Debug)]
pub struct HostArgs {
    /// Space id (default: a fresh one).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `spaces join`.
#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// The space: `30312:<host hex>:<id>` as `spaces host` prints it.
    space: String,
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
        keys,
        space,
        name: common.name.clone(),
        metrics: NetworkMetrics {
            download_kbps: common.uplink_kbps.saturating_mul(4),
            upload_kbps: common.uplink_kbps,
            max_audio_outputs: 0,
            connection: ConnectionType::Wifi,
        },
        relays,
        link: LinkConfig::default(),
        codec: CodecSettings::default(),
        input: input(common.input.as_deref().unwrap_or(default_input), host)?,
        output: output(&common.output)?,
        tone_hz: None,
        capture_clock: None,
        reserve_timeout: Duration::from_secs(2),
        cells,
    })
}

async fn run_until_done(session: Session, seconds: Option<u64>) {
    let wait = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = &mut wait => break,
            _ = ticker.tick() => {
                let stats = session.stats();
                eprintln!(
                    "parent {}  children {}  packets {}  lost {}",
                    stats.parent.map_or("-".into(), |p| p.to_hex()[..8].to_owned()),
                    stats.children,
                    stats.audio.packets_received,
                    stats.audio.lost
                );
            }
        }
    }
    session.stop().await;
}

fn runtime() -> Result<tokio::runtime::Runtime, BadArgument> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| bad("runtime", e))
}

/// Runs `spaces host`.
pub fn host(args: &HostArgs) -> Result<(), BadArgument> {
    runtime()?.block_on(host_space(&args.common, args.id.clone(), Vec::new()))
}

/// Opens a space (tagged with `cells`) and runs it; prints its address and relay first.
async fn host_space(
    common: &Common,
    id: Option<String>,
    cells: Vec<String>,
) -> Result<(), BadArgument> {
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
    println!("space {}", space.room_address());
    println!("relay {}", relays.join(" "));
    let config = session_config(keys, space, common, relays, true, cells)?;
    let session = Session::start(config)
        .await
        .map_err(|e| bad("--relay", e))?;
    run_until_done(session, common.seconds).await;
    Ok(())
}

/// Runs `spaces join`.
pub fn join(args: &JoinArgs) -> Result<(), BadArgument> {
    let space = SpaceRef::from_room_address(&args.space).map_err(|e| bad("space", e))?;
    runtime()?.block_on(join_space(
        &args.common,
        space,
        default_relays(&args.common),
    ))
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
) -> Result<(), BadArgument> {
    let config = session_config(Keys::generate(), space, common, relays, false, Vec::new())?;
    let session = Session::start(config)
        .await
        .map_err(|e| bad("--relay", e))?;
    run_until_done(session, common.seconds).await;
    Ok(())
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
    #[command(flatten)]
    common: Common,
}

/// Runs `spaces geo`: joins the newest live space of the fix's UMAP cell, or opens one.
/// Only the cell label is published, never the position; the space is signed with this
/// device's own key (a GeoKey's secret is public and gives no authority).
pub fn geo(args: &GeoArgs) -> Result<(), BadArgument> {
    use spaces_core::engine::discover::spaces_in_cell;
    use spaces_core::geo::{Cell, GeoKeyring, Level, Point};

    let point = Point::parse(&args.lat, &args.lon).map_err(|e| bad("--lat", e))?;
    let cell = Cell::containing(point, Level::Umap).map_err(|e| bad("--lat", e))?;
    let label = format!("{},{}", cell.lat_label(), cell.lon_label());
    let geokey = GeoKeyring::origin()
        .key(&cell)
        .map_err(|e| bad("--lat", e))?;
    runtime()?.block_on(async {
        let relays = default_relays(&args.common);
        let found = spaces_in_cell(
            &relays,
            &label,
            &geokey.keys().public_key(),
            Duration::from_secs(24 * 3600),
            Duration::from_secs(3),
        )
        .await;
        let live = match found {
            Ok(live) => live,
            // No relay on this machine yet: nobody around, as far as we can tell.
            Err(_) if args.common.relays.is_empty() => Vec::new(),
            Err(e) => return Err(bad("--relay", e)),
        };
        eprintln!(
            "cell {label} ({}): {} live space(s)",
            geokey.npub(),
            live.len()
        );
        match live.first() {
            Some(found) => {
                println!("joining {}", found.space.room_address());
                join_space(&args.common, found.space.clone(), relays).await
            }
            None if args.host_if_empty => host_space(&args.common, None, vec![label]).await,
            None => Err(bad(
                "--lat",
                format!("no live space in cell {label}; --host-if-empty opens one"),
            )),
        }
    })
}
