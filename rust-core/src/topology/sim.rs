//! A deterministic, seeded simulation of a space: joins, churn (failures and replacements),
//! network switches and a host that moves from Wi-Fi to cellular and back. No I/O, no clock.

use serde::Serialize;

use super::{PeerMetrics, Planner, PlannerConfig};
use crate::protocol::{ConnectionType, Role};

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Listeners.
    pub peers: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Failures per minute after everyone joined (each replaced by a newcomer).
    pub churn_per_min: f64,
    /// Simulated minutes after the join phase.
    pub minutes: f64,
    /// The host's uplink, kbit/s.
    pub host_uplink_kbps: f64,
    /// Share of listeners on cellular (the rest Wi-Fi, 5 % of them wired).
    pub cellular_share: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            peers: 1_000,
            seed: 1,
            churn_per_min: 30.0,
            minutes: 10.0,
            host_uplink_kbps: 4_000.0,
            cellular_share: 0.55,
        }
    }
}

/// The simulation's findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// Listeners at the end.
    pub peers: usize,
    /// Deepest listener.
    pub max_depth: u32,
    /// Mean depth.
    pub mean_depth: f64,
    /// Listeners per depth (index = depth).
    pub depth_histogram: Vec<usize>,
    /// The bound ⌈log_k N⌉ + 1, k = mean capacity of peers able to relay.
    pub depth_bound: u32,
    /// The host's direct children at the end.
    pub host_children: usize,
    /// Most children of any peer.
    pub max_children: usize,
    /// Mean children of peers that relay.
    pub mean_children: f64,
    /// Peers left without a parent after each failure's repair, summed.
    pub orphans_after_repair: usize,
    /// Primary links moved per event (join, leave, metrics change), mean.
    pub links_moved_per_event: f64,
    /// Share of peer-time spent with a parent.
    pub parented_time_share: f64,
    /// Events simulated.
    pub events: usize,
    /// The host's children just after it switched to cellular.
    pub host_children_on_cellular: usize,
}

/// SplitMix64: tiny, fast, reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-normal with the given median and spread (σ of the log).
    pub fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.next_f64().max(1e-12), self.next_f64());
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * normal).exp()
    }
}

/// A listener's metrics drawn from the mix of the research note: cellular uplink median
/// ~8 Mbit/s (half metered), Wi-Fi ~20 Mbit/s, wired ~50 Mbit/s, wide spread.
pub fn random_metrics(rng: &mut Rng, cellular_share: f64) -> PeerMetrics {
    let roll = rng.next_f64();
    let (connection, median) = if roll < cellular_share {
        (ConnectionType::Cellular, 8_000.0)
    } else if roll < cellular_share + (1.0 - cellular_share) * 0.95 {
        (ConnectionType::Wifi, 20_000.0)
    } else {
        (ConnectionType::Ethernet, 50_000.0)
    };
    let upload = rng.log_normal(median, 0.8).clamp(100.0, 1_000_000.0);
    PeerMetrics {
        download_kbps: upload * 4.0,
        upload_kbps: upload,
        connection,
        metered: connection == ConnectionType::Cellular && rng.next_f64() < 0.5,
        low_battery: rng.next_f64() < 0.05,
        ..PeerMetrics::default()
    }
}

fn host_metrics(config: &SimConfig, connection: ConnectionType) -> PeerMetrics {
    PeerMetrics {
        download_kbps: config.host_uplink_kbps * 4.0,
        upload_kbps: config.host_uplink_kbps,
        connection,
        ..PeerMetrics::default()
    }
}

/// Runs the simulation.
pub fn simulate(config: &SimConfig) -> SimReport {
    let mut rng = Rng::new(config.seed);
    let planner_config = PlannerConfig::default();
    let host = u64::MAX;
    let mut planner = Planner::new(
        host,
        host_metrics(config, ConnectionType::Wifi),
        planner_config,
    )
    .unwrap_or_else(|_| unreachable!("generated metrics are valid"));
    let mut present: Vec<u64> = Vec::with_capacity(config.peers);
    let mut next_id = 0u64;
    let (mut moved, mut events, mut orphans_after_repair) = (0usize, 0usize, 0usize);
    let (mut parented_time, mut total_time) = (0.0f64, 0.0f64);

    // Join phase: everyone arrives within the first minute.
    for _ in 0..config.peers {
        let metrics = random_metrics(&mut rng, config.cellular_share);
        if let Ok(delta) = planner.join(next_id, Role::Listener, metrics) {
            moved += delta.links_moved();
            events += 1;
            present.push(next_id);
        }
        next_id += 1;
    }

    // Churn phase, in steps of one event.
    let failures = (config.churn_per_min * config.minutes).round() as usize;
    let switches = failures / 2;
    let total_events = failures + switches + 2;
    let step_seconds = if total_events > 0 {
        config.minutes * 60.0 / total_events as f64
    } else {
        0.0
    };
    let mut host_children_on_cellular = 0;
    for event in 0..total_events {
        let listeners = present.len() as f64;
        parented_time += (listeners - planner.orphans() as f64) * step_seconds;
        total_time += listeners * step_seconds;
        let delta = if event == total_events / 2 {
            let delta =
                planner.update_metrics(&host, host_metrics(config, ConnectionType::Cellular));
            host_children_on_cellular = planner.children_of(&host).len();
            delta
        } else if event == total_events * 3 / 4 {
            planner.update_metrics(&host, host_metrics(config, ConnectionType::Wifi))
        } else if event % 3 == 2 && !present.is_empty() {
            // A listener's phone switches network.
            let peer = present[(rng.next_f64() * present.len() as f64) as usize % present.len()];
            let metrics = random_metrics(&mut rng, config.cellular_share);
            planner.update_metrics(&peer, metrics)
        } else if !present.is_empty() {
            // A listener vanishes; a newcomer takes its place.
            let i = (rng.next_f64() * present.len() as f64) as usize % present.len();
            let gone = present.swap_remove(i);
            let repaired = planner.leave(&gone);
            orphans_after_repair += planner.orphans();
            moved += repaired.as_ref().map_or(0, |d| d.links_moved());
            events += 1;
            let metrics = random_metrics(&mut rng, config.cellular_share);
            let joined = planner.join(next_id, Role::Listener, metrics);
            present.push(next_id);
            next_id += 1;
            joined
        } else {
            continue;
        };
        if let Ok(delta) = delta {
            moved += delta.links_moved();
            events += 1;
        }
    }

    let depths: Vec<u32> = planner.depths().collect();
    let max_depth = depths.iter().copied().max().unwrap_or(0);
    let mut depth_histogram = vec![0usize; max_depth as usize + 1];
    for d in &depths {
        depth_histogram[*d as usize] += 1;
    }
    let fan: Vec<(bool, usize)> = planner.fan_outs().collect();
    let relays: Vec<usize> = fan
        .iter()
        .filter(|(_, c)| *c > 0)
        .map(|(_, c)| *c)
        .collect();
    let capacities: Vec<u32> = present
        .iter()
        .filter_map(|p| planner.capacity_of(p))
        .filter(|c| *c >= 2)
        .collect();
    let k = if capacities.is_empty() {
        2.0
    } else {
        capacities.iter().map(|c| f64::from(*c)).sum::<f64>() / capacities.len() as f64
    };
    let n = present.len().max(2) as f64;
    SimReport {
        peers: present.len(),
        max_depth,
        mean_depth: depths.iter().map(|d| f64::from(*d)).sum::<f64>() / depths.len().max(1) as f64,
        depth_histogram,
        depth_bound: (n.ln() / k.max(2.0).ln()).ceil() as u32 + 1,
        host_children: fan.iter().find(|(h, _)| *h).map_or(0, |(_, c)| *c),
        max_children: relays.iter().copied().max().unwrap_or(0),
        mean_children: relays.iter().sum::<usize>() as f64 / relays.len().max(1) as f64,
        orphans_after_repair,
        links_moved_per_event: moved as f64 / events.max(1) as f64,
        parented_time_share: if total_time > 0.0 {
            parented_time / total_time
        } else {
            1.0
        },
        events,
        host_children_on_cellular,
    }
}
