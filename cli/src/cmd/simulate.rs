//! `spaces simulate`: the product's participants, thousands of them, over a simulated relay
//! and network on a seeded clock (`spaces_core::sim`).

use std::time::Instant;

use spaces_core::sim::{Arrival, SimConfig, run};

use crate::BadArgument;

/// Arguments of `spaces simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Listeners.
    #[arg(long, default_value_t = 1_000)]
    peers: usize,
    /// Seed of every random choice (same seed, same report).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Arrival order: random, weak-first or strong-first.
    #[arg(long, default_value = "random")]
    arrival: String,
    /// Listeners arrive evenly over this many seconds.
    #[arg(long, default_value_t = 60.0)]
    join_secs: f64,
    /// Simulated minutes after the join phase.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Crashes per minute after the join phase (each replaced by a newcomer 5 s later).
    #[arg(long, default_value_t = 30.0)]
    crashes_per_min: f64,
    /// Share of listeners switching between Wi-Fi and cellular once.
    #[arg(long, default_value_t = 0.2)]
    switch_share: f64,
    /// Listeners the host promotes to speaker for the middle third of the run.
    #[arg(long, default_value_t = 2)]
    speakers: usize,
    /// The host's uplink in kbit/s.
    #[arg(long, default_value_t = 1_000)]
    host_uplink_kbps: u32,
    /// Every peer, the host included, announces this many times its real uplink (a platform
    /// estimate that is wrong); receiver reports must reveal the truth.
    #[arg(long, default_value_t = 1.0)]
    overestimate: f64,
    /// The host never mutes (by default it mutes 20 s in every minute).
    #[arg(long)]
    no_mute: bool,
    /// Members at which the host makes the space a crowd, each member then following its
    /// neighbourhood and a sample of seats rather than the whole space.
    #[arg(long, default_value_t = spaces_core::participant::CROWD_AT)]
    crowd_at: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Most listeners: below the crowd size every participant keeps its own view of the whole
/// space (memory grows with the square of that part); past it, views stay bounded.
const MAX_PEERS: usize = 100_000;

/// Runs `spaces simulate`.
pub fn run_simulation(args: &Args) -> Result<(), BadArgument> {
    let bad = |argument, reason: &str| BadArgument {
        argument,
        reason: reason.to_owned(),
    };
    if args.peers == 0 || args.peers > MAX_PEERS {
        return Err(bad("--peers", "must be between 1 and 3000"));
    }
    let arrival = match args.arrival.as_str() {
        "random" => Arrival::Random,
        "weak-first" => Arrival::WeakFirst,
        "strong-first" => Arrival::StrongFirst,
        _ => {
            return Err(bad(
                "--arrival",
                "must be random, weak-first or strong-first",
            ));
        }
    };
    let finite = |x: f64, low: f64, high: f64| x.is_finite() && (low..=high).contains(&x);
    if !finite(args.join_secs, 0.0, 86_400.0) {
        return Err(bad("--join-secs", "must be between 0 and 86400"));
    }
    if !finite(args.minutes, 0.0, 1_440.0) {
        return Err(bad("--minutes", "must be between 0 and 1440"));
    }
    if !finite(args.crashes_per_min, 0.0, 10_000.0) {
        return Err(bad("--crashes-per-min", "must be between 0 and 10000"));
    }
    if !finite(args.switch_share, 0.0, 1.0) {
        return Err(bad("--switch-share", "must be between 0 and 1"));
    }
    if args.host_uplink_kbps == 0 || args.host_uplink_kbps > 10_000_000 {
        return Err(bad("--host-uplink-kbps", "must be between 1 and 10000000"));
    }
    if !finite(args.overestimate, 0.1, 100.0) {
        return Err(bad("--overestimate", "must be between 0.1 and 100"));
    }
    let config = SimConfig {
        peers: args.peers,
        seed: args.seed,
        arrival,
        join_secs: args.join_secs,
        minutes: args.minutes,
        crashes_per_min: args.crashes_per_min,
        switch_share: args.switch_share,
        host_mutes: !args.no_mute,
        speakers: args.speakers.min(args.peers),
        host_uplink_kbps: args.host_uplink_kbps,
        overestimate: args.overestimate,
        crowd_at: args.crowd_at.max(2),
        ..SimConfig::default()
    };
    let started = Instant::now();
    let report = run(&config);
    let wall_ms = started.elapsed().as_millis() as u64;
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("wall_ms".into(), wall_ms.into());
        }
        println!("{value}");
        return Ok(());
    }
    println!(
        "peers                  {} ({:?} arrival)",
        report.peers, report.arrival
    );
    println!(
        "receiving (steady)     {:.1} % mean, {:.1} % lowest",
        report.receiving_share_steady * 100.0,
        report.receiving_share_min * 100.0
    );
    println!(
        "first audio            p50 {:.0} ms, p99 {:.0} ms, never {}",
        report.first_audio_ms_p50, report.first_audio_ms_p99, report.never_heard
    );
    println!(
        "depth max / mean       {} / {:.2} (goal ≤ {}; {} deeper)",
        report.max_depth, report.mean_depth, report.depth_goal, report.beyond_depth_goal
    );
    println!(
        "interruptions          {} (p99 {:.0} ms, max {:.0} ms, {:.4} % of listening time)",
        report.orphan_episodes,
        report.orphan_ms_p99,
        report.orphan_ms_max,
        report.orphan_time_share * 100.0
    );
    println!(
        "signaling              {:.1} events per join, {:.0} per minute steady",
        report.events_per_join, report.events_per_min_steady
    );
    println!(
        "links moved            {} over {} churn events ({:.2} each)",
        report.links_moved, report.churn_events, report.links_moved_per_event
    );
    println!(
        "capacity cuts          {} (uplinks that carried less than announced)",
        report.capacity_cuts
    );
    let tally: Vec<String> = report
        .decisions
        .iter()
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    println!("decisions              {}", tally.join(", "));
    println!(
        "wall time              {wall_ms} ms ({} steps)",
        report.steps
    );
    Ok(())
}
