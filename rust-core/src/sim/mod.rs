//! The simulator of the product: N real [`Participant`](crate::participant::Participant)s over
//! a simulated relay and simulated links, on simulated time from a seed. `spaces simulate` runs
//! [`run`]; the participant's tests use [`World`] directly.

mod relay;
mod rng;
mod timeline;
mod wiring;
mod world;

use std::collections::BTreeMap;

use serde::Serialize;

pub use relay::RateLimit;
pub use rng::Rng;
pub use world::{NetworkModel, Node, NodeId, T0, Traffic, World};

use crate::participant::{LinkKind, Millis, UserCommand};
use crate::protocol::{ConnectionType, Message, NetworkMetrics};
use crate::topology::{CapacityPolicy, PeerMetrics};

/// In which order listeners arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrival {
    /// Shuffled.
    Random,
    /// Those who cannot relay first, the strongest last.
    WeakFirst,
    /// The strongest first.
    StrongFirst,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Listeners.
    pub peers: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Arrival order.
    pub arrival: Arrival,
    /// Listeners arrive evenly over this many seconds.
    pub join_secs: f64,
    /// Simulated minutes after the join phase.
    pub minutes: f64,
    /// Crashes per minute after the join phase; each crashed listener is replaced by a
    /// newcomer 5 s later.
    pub crashes_per_min: f64,
    /// Share of listeners switching network (Wi-Fi ↔ cellular) once after the join phase.
    pub switch_share: f64,
    /// The host mutes for 20 s in every minute.
    pub host_mutes: bool,
    /// Listeners the host promotes to speaker a third into the run (demoted at two thirds).
    pub speakers: usize,
    /// The host's uplink, kbit/s (Wi-Fi).
    pub host_uplink_kbps: u32,
    /// Every peer, the host included, announces this many times its real uplink: a platform
    /// estimate that is wrong (1 announces the truth). The measured-uplink rules must find
    /// out from receiver reports.
    pub overestimate: f64,
    /// The network.
    pub network: NetworkModel,
    /// Members at which the host makes the space a crowd
    /// ([`crate::participant::ParticipantConfig::crowd_at`]).
    pub crowd_at: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            peers: 1_000,
            seed: 1,
            arrival: Arrival::Random,
            join_secs: 60.0,
            minutes: 10.0,
            crashes_per_min: 30.0,
            switch_share: 0.2,
            host_mutes: true,
            speakers: 2,
            host_uplink_kbps: 1_000,
            overestimate: 1.0,
            network: NetworkModel::default(),
            crowd_at: crate::participant::CROWD_AT,
        }
    }
}

/// A listener's network: 10 % too weak to relay, 35 % cellular, the rest Wi-Fi.
fn profile(rng: &mut Rng) -> (NetworkMetrics, f64) {
    let draw = rng.unit();
    let (connection, uplink) = if draw < 0.10 {
        (ConnectionType::Cellular, rng.range(40.0, 150.0))
    } else if draw < 0.45 {
        (ConnectionType::Cellular, rng.range(500.0, 5_000.0))
    } else {
        (ConnectionType::Wifi, rng.range(2_000.0, 20_000.0))
    };
    (metrics(connection, uplink), uplink)
}

fn metrics(connection: ConnectionType, uplink_kbps: f64) -> NetworkMetrics {
    NetworkMetrics {
        download_kbps: 20_000,
        upload_kbps: uplink_kbps as u32,
        max_audio_outputs: 0,
        connection,
    }
}

/// The other kind of network, as a phone walking out of Wi-Fi (or back in) finds it.
fn switched(rng: &mut Rng, now: &NetworkMetrics) -> (NetworkMetrics, f64) {
    if now.upload_kbps < 200 {
        return (*now, f64::from(now.upload_kbps));
    }
    match now.connection {
        ConnectionType::Wifi | ConnectionType::Ethernet => {
            let uplink = rng.range(500.0, 5_000.0);
            (metrics(ConnectionType::Cellular, uplink), uplink)
        }
        _ => {
            let uplink = rng.range(2_000.0, 20_000.0);
            (metrics(ConnectionType::Wifi, uplink), uplink)
        }
    }
}

/// What the simulation found. Times are simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// Listeners.
    pub peers: usize,
    /// Seed.
    pub seed: u64,
    /// Arrival order.
    pub arrival: Arrival,
    /// Simulated minutes after the join phase.
    pub minutes: f64,
    /// Share of present listeners (joined ≥ 10 s ago) hearing ≥ 90 % of the host's frames,
    /// averaged over the steady phase.
    pub receiving_share_steady: f64,
    /// The lowest such share at any sample of the steady phase.
    pub receiving_share_min: f64,
    /// The share every 10 simulated seconds from the start.
    pub receiving_timeline: Vec<f64>,
    /// Join to first audio (≥ 90 % of frames), ms, median.
    pub first_audio_ms_p50: f64,
    /// The same, 99th percentile.
    pub first_audio_ms_p99: f64,
    /// Listeners present ≥ 10 s that never heard the host.
    pub never_heard: usize,
    /// Deepest listener at the end.
    pub max_depth: u32,
    /// Mean depth at the end.
    pub mean_depth: f64,
    /// Listeners deeper than [`Self::depth_goal`] at the end (most of them mid-repair: a
    /// warm backup deeper than the parent it replaced, before the next climb).
    pub beyond_depth_goal: usize,
    /// The goal ⌈log_k N⌉ + 2, k = mean capacity of listeners able to relay.
    pub depth_goal: u32,
    /// Interruptions after first audio (hearing < 90 %), count.
    pub orphan_episodes: usize,
    /// Their length, ms, 99th percentile.
    pub orphan_ms_p99: f64,
    /// Their length, ms, longest.
    pub orphan_ms_max: f64,
    /// Share of listener-time spent interrupted after first audio.
    pub orphan_time_share: f64,
    /// Events published per join during the join phase (all kinds, SDP and ICE included).
    pub events_per_join: f64,
    /// Events published per minute in the steady phase.
    pub events_per_min_steady: f64,
    /// Events published, by kind.
    pub events_by_kind: BTreeMap<String, u64>,
    /// Events relays handed to subscribers, per minute of the whole run.
    pub deliveries_per_min: f64,
    /// Churn events of the steady phase (crashes, replacement joins, network switches,
    /// promotions and demotions).
    pub churn_events: usize,
    /// Links opened in the steady phase.
    pub links_moved: u64,
    /// Links opened per churn event.
    pub links_moved_per_event: f64,
    /// Capacity cuts from receiver reports (an uplink that carried less than announced), by
    /// every peer of the run.
    pub capacity_cuts: u64,
    /// What every peer of the run did and refused, summed from its own counters: reservations
    /// made, upstream links lost, warm-backup takeovers, ICE restarts, and each reason an
    /// event or a request was refused (where churn comes from).
    pub decisions: BTreeMap<String, u64>,
    /// Simulated actions processed.
    pub steps: u64,
}

/// Something the scenario does at a time.
#[derive(Debug, Clone, Copy)]
enum Happening {
    Join,
    Crash,
    Switch,
    Mute(bool),
    Promote,
    Demote,
}

/// How often the world is sampled, ms.
const SAMPLE_MS: Millis = 100;
/// Interruptions at least this long (the goal is p99 under 1 s) are logged (at debug, with the listener's index and
/// when it began), to trace them.
const LONG_INTERRUPTION_MS: Millis = 1_000;

/// Logs an interruption of `listener` from `since` to `until` if it lasted
/// [`LONG_INTERRUPTION_MS`] or more (`least`: the least it heard meanwhile).
fn log_interruption(listener: NodeId, since: Millis, until: Millis, least: f64, what: &str) {
    if until - since >= LONG_INTERRUPTION_MS {
        tracing::debug!(
            listener,
            since = since - T0,
            ms = until - since,
            least,
            "{what}"
        );
    }
}

/// Logs (debug) the host's children at the end, and each listener deeper than `goal` with its
/// path to the host: per hop the node, its capacity, its children, its real uplink, and how long
/// it has had its parent (ms). Where a deep listener hangs is what tells a slow repair from a
/// tree that cannot fit.
fn log_deep(world: &World, goal: u32, end: Millis) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let host = world.node(0).participant.links();
    let seats: Vec<String> = host
        .of_kind(LinkKind::Child)
        .filter_map(|child| world.id_of(&child))
        .map(|id| {
            let participant = &world.node(id).participant;
            let children = participant.links().count(LinkKind::Child);
            format!("{id}(cap {} kids {children})", participant.capacity())
        })
        .collect();
    tracing::debug!(
        capacity = world.node(0).participant.capacity(),
        seats = seats.join(" "),
        "the host's children at the end"
    );
    for id in 1..world.nodes().len() {
        if !world.node(id).alive || world.depth(id).is_none_or(|d| d <= goal) {
            continue;
        }
        let mut path = Vec::new();
        let mut current = id;
        while current != 0 {
            let participant = &world.node(current).participant;
            let links = participant.links();
            let Some(parent) = links.one(LinkKind::Parent) else {
                break;
            };
            let since = links
                .get(&parent)
                .map_or(0, |l| end.saturating_sub(l.confirmed_at));
            path.push(format!(
                "{current}(cap {} kids {} up {:.0} since {since})",
                participant.capacity(),
                links.count(LinkKind::Child),
                world.node(current).uplink_kbps,
            ));
            let Some(next) = world.id_of(&parent) else {
                break;
            };
            current = next;
        }
        tracing::debug!(listener = id, path = path.join(" < "), "deep at the end");
    }
}

/// Runs a scenario and reports.
pub fn run(config: &SimConfig) -> SimReport {
    run_world(config).1
}

/// [`run`], with the world as it ended.
pub(crate) fn run_world(config: &SimConfig) -> (World, SimReport) {
    let mut rng = Rng::new(config.seed);
    // What a peer announces of its real uplink.
    let announce = |(m, uplink): (NetworkMetrics, f64)| {
        let upload_kbps = (uplink * config.overestimate.max(0.0)).min(f64::from(u32::MAX)) as u32;
        (NetworkMetrics { upload_kbps, ..m }, uplink)
    };
    let (host, _) = announce((
        metrics(ConnectionType::Wifi, f64::from(config.host_uplink_kbps)),
        f64::from(config.host_uplink_kbps),
    ));
    let mut world = World::with_host(
        config.seed,
        config.network,
        host,
        f64::from(config.host_uplink_kbps),
        |c| c.crowd_at = config.crowd_at,
    );
    let policy = CapacityPolicy::default();
    let mut arrivals: Vec<(NetworkMetrics, f64)> = (0..config.peers)
        .map(|_| announce(profile(&mut rng)))
        .collect();
    let capacity = |m: &NetworkMetrics| policy.children(&PeerMetrics::from(m), 1);
    match config.arrival {
        Arrival::Random => {}
        Arrival::WeakFirst => arrivals.sort_by_key(|(m, _)| capacity(m)),
        Arrival::StrongFirst => arrivals.sort_by_key(|(m, _)| std::cmp::Reverse(capacity(m))),
    }
    let relays: Vec<u32> = arrivals
        .iter()
        .map(|(m, _)| capacity(m))
        .filter(|c| *c >= 2)
        .collect();
    let mean_capacity =
        relays.iter().map(|c| f64::from(*c)).sum::<f64>() / relays.len().max(1) as f64;

    // The schedule.
    let join_ms = (config.join_secs * 1_000.0) as Millis;
    let steady_from = T0 + join_ms + 10_000;
    let end = steady_from + (config.minutes * 60_000.0) as Millis;
    let mut plan: Vec<(Millis, Happening)> = Vec::new();
    for n in 0..config.peers {
        let at = T0 + 1_000 + join_ms * n as Millis / config.peers.max(1) as Millis;
        plan.push((at, Happening::Join));
    }
    let crashes = (config.crashes_per_min * config.minutes).round() as usize;
    for _ in 0..crashes {
        plan.push((rng.between(steady_from, end), Happening::Crash));
    }
    let switches = (config.switch_share * config.peers as f64).round() as usize;
    for _ in 0..switches {
        plan.push((rng.between(steady_from, end), Happening::Switch));
    }
    if config.host_mutes {
        let mut at = T0 + 30_000;
        while at + 20_000 < end {
            plan.push((at, Happening::Mute(true)));
            plan.push((at + 20_000, Happening::Mute(false)));
            at += 60_000;
        }
    }
    let third = (end - steady_from) / 3;
    for _ in 0..config.speakers {
        plan.push((steady_from + third, Happening::Promote));
        plan.push((steady_from + 2 * third, Happening::Demote));
    }
    plan.sort_by_key(|(at, _)| *at);

    let mut arrivals = arrivals.into_iter();
    let mut replacements: Vec<Millis> = Vec::new();
    let mut speakers: Vec<NodeId> = Vec::new();
    let mut churn_events = 0usize;
    let mut events_at_steady = 0u64;
    let mut links_at_steady = 0u64;
    let mut joins_in_join_phase = 0usize;
    let mut plan = plan.into_iter().peekable();

    let mut timeline = Vec::new();
    let mut steady_shares: Vec<f64> = Vec::new();
    // Each interrupted listener: since when, and the least it heard meanwhile.
    // A sorted map: few are interrupted at once, and a lookup of each listener every 100 ms
    // costs less without hashing; the ones still on at the end are logged in order.
    let mut gap_since: BTreeMap<NodeId, (Millis, f64)> = BTreeMap::new();
    let mut episodes: Vec<Millis> = Vec::new();
    let mut listener_ms: u64 = 0;
    let mut orphan_ms: u64 = 0;

    let mut now = T0;
    while now < end {
        now += SAMPLE_MS;
        world.run_until(now);
        if now >= steady_from && events_at_steady == 0 {
            events_at_steady = world.traffic.total().max(1);
            links_at_steady = world.traffic.links_opened;
        }
        while let Some((at, happening)) = plan.next_if(|(at, _)| *at <= now) {
            world.run_until(at);
            let steady = at >= steady_from;
            if steady {
                churn_events += 1;
            }
            match happening {
                Happening::Join => {
                    if let Some((m, uplink)) = arrivals.next() {
                        world.join_listed(m, uplink);
                        joins_in_join_phase += 1;
                    }
                }
                Happening::Crash => {
                    if let Some(victim) = any_listener(&world, &mut rng, &speakers) {
                        world.crash(victim);
                        replacements.push(at + 5_000);
                    }
                }
                Happening::Switch => {
                    if let Some(who) = any_listener(&world, &mut rng, &[]) {
                        let announced = world
                            .node(who)
                            .participant
                            .space()
                            .members()
                            .get(world.node(who).participant.me())
                            .map(|m| m.metrics);
                        if let Some(announced) = announced {
                            let (m, uplink) = announce(switched(&mut rng, &announced));
                            world.set_uplink(who, uplink);
                            world.command(who, UserCommand::NetworkChanged(m));
                        }
                    }
                }
                Happening::Mute(muted) => world.command(0, UserCommand::Mute(muted)),
                Happening::Promote => {
                    if let Some(who) = any_listener(&world, &mut rng, &speakers) {
                        let target = *world.node(who).participant.me();
                        tracing::debug!(speaker = who, "promoted");
                        world.command(0, UserCommand::Publish(Message::PromoteSpeaker { target }));
                        speakers.push(who);
                    }
                }
                Happening::Demote => {
                    if let Some(who) = speakers.pop() {
                        let target = *world.node(who).participant.me();
                        tracing::debug!(speaker = who, "demoted");
                        world.command(0, UserCommand::Publish(Message::Demote { target }));
                    }
                }
            }
        }
        // Replacements of crashed listeners.
        while let Some(pos) = replacements.iter().position(|at| *at <= now) {
            replacements.swap_remove(pos);
            let (m, uplink) = announce(profile(&mut rng));
            world.join_listed(m, uplink);
            churn_events += 1;
        }

        // Sample.
        let hearing = world.sample();
        let mut present = 0usize;
        let mut receiving = 0usize;
        for (id, node) in world.nodes().iter().enumerate().skip(1) {
            if !node.alive {
                // A gap that ends with the listener's own end is not an interruption.
                gap_since.remove(&id);
                continue;
            }
            let heard = hearing[id] >= 0.9;
            if now >= node.joined_at + 10_000 {
                present += 1;
                receiving += usize::from(heard);
            }
            if node.first_audio.is_some() {
                listener_ms += SAMPLE_MS;
                if heard {
                    if let Some((since, least)) = gap_since.remove(&id) {
                        log_interruption(id, since, now, least, "long interruption");
                        episodes.push(now - since);
                    }
                } else {
                    orphan_ms += SAMPLE_MS;
                    let gap = gap_since.entry(id).or_insert((now, 1.0));
                    gap.1 = gap.1.min(hearing[id]);
                }
            }
        }
        let share = if present == 0 {
            1.0
        } else {
            receiving as f64 / present as f64
        };
        if (now - T0).is_multiple_of(10_000) {
            timeline.push(round3(share));
        }
        if now >= steady_from {
            steady_shares.push(share);
        }
    }
    for (id, (since, least)) in gap_since {
        log_interruption(
            id,
            since,
            end,
            least,
            "long interruption, still on at the end",
        );
        episodes.push(end - since);
    }

    // Findings.
    let mut first_audio: Vec<f64> = world
        .nodes()
        .iter()
        .skip(1)
        .filter_map(|n| n.first_audio.map(|at| (at - n.joined_at) as f64))
        .collect();
    let never_heard = world
        .nodes()
        .iter()
        .skip(1)
        .filter(|n| n.alive && n.first_audio.is_none() && end >= n.joined_at + 10_000)
        .count();
    let depths: Vec<u32> = (1..world.nodes().len())
        .filter(|id| world.node(*id).alive)
        .filter_map(|id| world.depth(id))
        .collect();
    let mut episodes: Vec<f64> = episodes.into_iter().map(|ms| ms as f64).collect();
    let steady_events = world.traffic.total().saturating_sub(events_at_steady);
    let links_moved = world.traffic.links_opened.saturating_sub(links_at_steady);
    let total_minutes = (end - T0) as f64 / 60_000.0;
    let goal = depth_goal(config.peers, mean_capacity);
    log_deep(&world, goal, end);
    let report = SimReport {
        peers: config.peers,
        seed: config.seed,
        arrival: config.arrival,
        minutes: config.minutes,
        receiving_share_steady: round3(mean(&steady_shares)),
        receiving_share_min: round3(steady_shares.iter().copied().fold(1.0, f64::min)),
        receiving_timeline: timeline,
        first_audio_ms_p50: percentile(&mut first_audio, 0.5),
        first_audio_ms_p99: percentile(&mut first_audio, 0.99),
        never_heard,
        max_depth: depths.iter().copied().max().unwrap_or(0),
        mean_depth: round3(mean(
            &depths.iter().map(|d| f64::from(*d)).collect::<Vec<_>>(),
        )),
        depth_goal: goal,
        beyond_depth_goal: depths.iter().filter(|d| **d > goal).count(),
        orphan_episodes: episodes.len(),
        orphan_ms_p99: percentile(&mut episodes, 0.99),
        orphan_ms_max: episodes.iter().copied().fold(0.0, f64::max),
        orphan_time_share: if listener_ms == 0 {
            0.0
        } else {
            orphan_ms as f64 / listener_ms as f64
        },
        events_per_join: round3(events_at_steady as f64 / joins_in_join_phase.max(1) as f64),
        events_per_min_steady: round3(steady_events as f64 / config.minutes.max(1e-9)),
        events_by_kind: world
            .traffic
            .published
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        deliveries_per_min: round3(world.traffic.delivered as f64 / total_minutes),
        churn_events,
        links_moved,
        links_moved_per_event: round3(links_moved as f64 / churn_events.max(1) as f64),
        capacity_cuts: world
            .nodes()
            .iter()
            .map(|n| n.participant.stats().capacity_cuts)
            .sum(),
        decisions: decisions(&world),
        steps: world.steps(),
    };
    (world, report)
}

/// The peers' own counters, summed (see [`SimReport::decisions`]).
fn decisions(world: &World) -> BTreeMap<String, u64> {
    let mut tally = BTreeMap::new();
    for node in world.nodes() {
        let stats = node.participant.stats();
        for (name, count) in [
            ("reservations", stats.reservations),
            ("climbs", stats.climbs),
            ("upstream_lost", stats.upstream_lost),
            ("standby_takeovers", stats.standby_takeovers),
            ("ice_restarts", stats.ice_restarts),
        ]
        .into_iter()
        .chain(stats.rejected.iter().map(|(reason, n)| (*reason, *n)))
        {
            *tally.entry(name.to_owned()).or_default() += count;
        }
    }
    tally
}

/// A listener still in the space, drawn at random, other than `except`.
fn any_listener(world: &World, rng: &mut Rng, except: &[NodeId]) -> Option<NodeId> {
    let alive: Vec<NodeId> = (1..world.nodes().len())
        .filter(|id| world.node(*id).alive && !except.contains(id))
        .collect();
    (!alive.is_empty()).then(|| alive[(rng.next_u64() % alive.len() as u64) as usize])
}

/// ⌈log_k N⌉ + 2.
fn depth_goal(peers: usize, k: f64) -> u32 {
    if peers <= 1 || k <= 1.0 {
        return 2;
    }
    ((peers as f64).ln() / k.ln()).ceil() as u32 + 2
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index.min(values.len() - 1)]
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_a_run_and_a_small_crowd_with_churn_hears_the_host() {
        let config = SimConfig {
            peers: 40,
            join_secs: 10.0,
            minutes: 1.0,
            crashes_per_min: 6.0,
            ..SimConfig::default()
        };
        let report = run(&config);
        assert_eq!(report, run(&config), "same seed, same report");
        assert_eq!(report.never_heard, 0);
        assert!(report.receiving_share_steady >= 0.99, "{report:?}");
        assert!(report.max_depth <= report.depth_goal + 1, "{report:?}");
        // The tally is the peers' own: each reservation they count is a RESERVE they sent.
        assert_eq!(
            report.decisions.get("reservations"),
            report.events_by_kind.get("reserve"),
            "{report:?}"
        );
        let other = run(&SimConfig { seed: 2, ..config });
        assert_ne!(report.steps, other.steps, "another seed, another run");
    }

    #[test]
    fn a_crowd_that_announces_five_times_its_uplink_learns_it_and_hears() {
        // The host's 300 kbit/s carry five streams; announced as 1,500 they promise thirteen.
        let config = SimConfig {
            peers: 40,
            join_secs: 10.0,
            minutes: 1.0,
            crashes_per_min: 6.0,
            host_uplink_kbps: 300,
            overestimate: 5.0,
            ..SimConfig::default()
        };
        let report = run(&config);
        assert!(report.capacity_cuts > 0, "{report:?}");
        assert_eq!(report.never_heard, 0, "{report:?}");
        assert!(report.receiving_share_steady >= 0.9, "{report:?}");
    }
}
