//! `spaces simulate`: the relay-tree planner on a seeded, simulated crowd.

use spaces_core::topology::sim::{SimConfig, simulate};

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
    /// Failures per minute after the join phase (each replaced by a newcomer).
    #[arg(long, default_value_t = 30.0)]
    churn_per_min: f64,
    /// Simulated minutes after the join phase.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// The host's uplink in kbit/s.
    #[arg(long, default_value_t = 4_000.0)]
    host_uplink_kbps: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `spaces simulate`.
pub fn run(args: &Args) -> Result<(), BadArgument> {
    let bad = |argument, reason: &str| BadArgument {
        argument,
        reason: reason.to_owned(),
    };
    if args.peers == 0 || args.peers > 1_000_000 {
        return Err(bad("--peers", "must be between 1 and 1000000"));
    }
    if !(args.churn_per_min.is_finite() && args.churn_per_min >= 0.0) {
        return Err(bad("--churn-per-min", "must be a non-negative number"));
    }
    if !(args.minutes.is_finite() && (0.0..=10_000.0).contains(&args.minutes)) {
        return Err(bad("--minutes", "must be between 0 and 10000"));
    }
    if !(args.host_uplink_kbps.is_finite() && (0.0..=10_000_000.0).contains(&args.host_uplink_kbps))
    {
        return Err(bad("--host-uplink-kbps", "must be between 0 and 10000000"));
    }
    let report = simulate(&SimConfig {
        peers: args.peers,
        seed: args.seed,
        churn_per_min: args.churn_per_min,
        minutes: args.minutes,
        host_uplink_kbps: args.host_uplink_kbps,
        ..SimConfig::default()
    });
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!("peers                  {}", report.peers);
        println!(
            "depth max / mean       {} / {:.2} (bound {})",
            report.max_depth, report.mean_depth, report.depth_bound
        );
        println!("depth histogram        {:?}", report.depth_histogram);
        println!(
            "host children          {} ({} while on cellular)",
            report.host_children, report.host_children_on_cellular
        );
        println!(
            "children max / mean    {} / {:.2}",
            report.max_children, report.mean_children
        );
        println!("orphans after repair   {}", report.orphans_after_repair);
        println!("links moved per event  {:.3}", report.links_moved_per_event);
        println!("parented time share    {:.5}", report.parented_time_share);
        println!("events                 {}", report.events);
    }
    Ok(())
}
