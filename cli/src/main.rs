//! `spaces`: the desktop command line of Nostr Spaces core.

mod cmd;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

use cmd::{demo, geokey, live, relay, simulate};

/// mimalloc rather than the system's allocator: a simulated crowd makes and drops millions of
/// small vectors a minute, and at 10,000 participants glibc's malloc and free were a tenth of
/// the simulator's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Live audio spaces over Nostr and WebRTC.
#[derive(Parser, Debug)]
#[command(name = "spaces", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Derive the UPlanet GeoKeys (UMAP, SECTOR, REGION) of a position.
    Geokey(geokey::Args),
    /// Host a space with this machine's microphone (or a tone, a WAV file).
    Host(live::HostArgs),
    /// Join a space by its address and play it on this machine's speakers (or a WAV file).
    Join(live::JoinArgs),
    /// Join the live space of the UMAP cell of a position, or open one (--host-if-empty).
    Geo(live::GeoArgs),
    /// Run a host and N listeners as real WebRTC peers on this machine and report.
    Demo(demo::Args),
    /// Simulate the relay tree of a space with N listeners, churn and network changes.
    Simulate(simulate::Args),
    /// Run the embedded Nostr relay on its own (a space on a LAN, a test bed).
    Relay(relay::Args),
}

/// A failure the user can act on: the argument at fault and why.
#[derive(Debug)]
pub struct BadArgument {
    /// The argument as typed on the command line, e.g. `--lat`.
    pub argument: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn main() -> ExitCode {
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            // Help and version are not errors; clap prints them to stdout.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {}", describe_usage_error(&err));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Geokey(args) => geokey::run(&args),
        Command::Simulate(args) => simulate::run_simulation(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Host(args) => live::host(&args),
        Command::Join(args) => live::join(&args),
        Command::Geo(args) => live::geo(&args),
        Command::Relay(args) => relay::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(bad) => {
            eprintln!("error: {}: {}", bad.argument, bad.reason);
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr so that stdout stays machine-readable; `RUST_LOG` tunes them.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // The WebRTC stack warns about normal trickle-ICE states (checks before the peer's
        // candidates arrive, DTLS without a server name): only its errors matter to a user.
        // The embedded relay logs, as errors, every peer that closes its socket without a
        // goodbye (each listener of `spaces demo` at its end): nothing a user can act on.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "warn,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error,webrtc=error,\
                 nostr_sdk::local_relay=off",
            )
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// One line naming the argument at fault: scripts read the first line of stderr.
fn describe_usage_error(err: &clap::Error) -> String {
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let arg = text(ContextKind::InvalidArg);
    match (err.kind(), arg) {
        (ErrorKind::MissingRequiredArgument, Some(arg)) => format!("{arg}: missing"),
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(arg)) => {
            let value = text(ContextKind::InvalidValue).unwrap_or_default();
            let valid = text(ContextKind::ValidValue)
                .map(|v| format!(" (expected one of: {v})"))
                .unwrap_or_default();
            format!("{arg}: invalid value {value:?}{valid}")
        }
        (ErrorKind::UnknownArgument, Some(arg)) => format!("{arg}: unknown argument"),
        (_, Some(arg)) => format!("{arg}: {}", first_line(err)),
        (_, None) => first_line(err),
    }
}

fn first_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_owned()
}
