//! `spaces demo`: a host, a tone and N listeners as real WebRTC peers on this machine.

use spaces_cli::demo::{DemoConfig, run_demo};

use crate::BadArgument;

/// Arguments of `spaces demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Listeners.
    #[arg(long, default_value_t = 12)]
    listeners: usize,
    /// Seconds of audio after the last listener joined.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A relay URL (repeatable); none starts the embedded relay.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// The host's uplink in kbit/s: small enough that listeners must relay.
    #[arg(long, default_value_t = 400)]
    host_uplink_kbps: u32,
    /// Kill one listener that relays to others this many seconds after the last join; its
    /// children's `gap_ms_max` shows the repair.
    #[arg(long, value_name = "SECS")]
    kill_relaying_listener_at: Option<u64>,
    /// Promote this many listeners to speaker a third into the run, each sending its own
    /// tone; the report says who heard whom.
    #[arg(long, default_value_t = 0)]
    speakers: usize,
    /// Listeners keep no warm backup link (to measure what backups cost and what they save).
    #[arg(long)]
    no_backup: bool,
    /// Members at which the host makes the space a crowd: each member then follows its
    /// inbox, its neighbours and a sample of open seats instead of the whole space.
    #[arg(long, default_value_t = spaces_core::participant::CROWD_AT)]
    crowd_at: usize,
    /// Write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

/// Runs `spaces demo`.
pub fn run(args: &Args) -> Result<(), BadArgument> {
    if args.listeners == 0 || args.listeners > 200 {
        return Err(BadArgument {
            argument: "--listeners",
            reason: "must be between 1 and 200".into(),
        });
    }
    if args.seconds == 0 || args.seconds > 3_600 {
        return Err(BadArgument {
            argument: "--seconds",
            reason: "must be between 1 and 3600".into(),
        });
    }
    if args.speakers > args.listeners || args.speakers > 8 {
        return Err(BadArgument {
            argument: "--speakers",
            reason: "must be at most 8 and at most --listeners".into(),
        });
    }
    let config = DemoConfig {
        speakers: args.speakers,
        listeners: args.listeners,
        seconds: args.seconds,
        relays: args.relays.clone(),
        host_uplink_kbps: args.host_uplink_kbps,
        warm_backup: !args.no_backup,
        kill_relaying_listener_at: args.kill_relaying_listener_at,
        crowd_at: args.crowd_at.max(2),
        ..DemoConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BadArgument {
            argument: "demo",
            reason: e.to_string(),
        })?;
    let report = runtime
        .block_on(run_demo(&config, |line| eprintln!("{line}")))
        .map_err(|e| BadArgument {
            argument: if args.relays.is_empty() {
                "demo"
            } else {
                "--relay"
            },
            reason: e.to_string(),
        })?;
    let summary = &report.summary;
    eprintln!(
        "listeners {}  max depth {}  host children {}  first audio p50 {}  latency p50 {}  silent {:?}",
        summary.listeners,
        summary.max_depth,
        summary.host_children,
        summary
            .first_audio_ms_p50
            .map_or("-".into(), |v| format!("{v:.0} ms")),
        summary
            .latency_ms_p50
            .map_or("-".into(), |v| format!("{v:.1} ms")),
        summary.silent
    );
    if let Some(killed) = &summary.killed {
        let orphans: Vec<_> = report.listeners.iter().filter(|l| l.orphaned).collect();
        eprintln!(
            "killed {killed}: {} orphans, warm-backup takeovers {}, worst gap {:.0} ms",
            orphans.len(),
            summary.standby_takeovers,
            orphans.iter().map(|l| l.gap_ms_max).fold(0.0, f64::max)
        );
    }
    for speaker in &summary.speakers {
        eprintln!(
            "speaker {} ({} Hz): heard by {}/{} listeners{}, latency p50 {}",
            speaker.name,
            speaker.tone_hz,
            speaker.heard_by,
            speaker.of,
            if speaker.heard_by_host {
                " and the host"
            } else {
                ""
            },
            speaker
                .latency_ms_p50
                .map_or("-".into(), |v| format!("{v:.1} ms"))
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, json).map_err(|e| BadArgument {
            argument: "--json",
            reason: e.to_string(),
        })?;
    }
    Ok(())
}
