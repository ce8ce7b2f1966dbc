//! WebRTC on loopback: link set-up time, latency added per forwarding hop, CPU per forwarded
//! child stream. A harness (not criterion): each figure needs real links and real time.
//!
//! `cargo bench -p spaces-tests --bench rtc_hops`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spaces_core::rtc::{LinkConfig, RtpHeader, RtpPacket};
use spaces_tests::rtc_harness::{End, Node, connect};

const DEPTH: usize = 6;
const PACKETS: u32 = 250;
/// Links set up one after the other for the set-up figures.
const SETUPS: usize = 300;

/// Closes both ends of every link: webrtc-rs keeps a dropped link's tasks running, which
/// would load the measures that follow.
async fn close(links: Vec<(End, End)>) {
    for (up, down) in links {
        up.link.close().await;
        down.link.close().await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Process CPU time (user + system) from /proc, in seconds.
/// Resident memory of this process, KiB (`VmRSS`).
fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: utime is the 12th, stime the 13th (0-based 11, 12).
    (ticks(11) + ticks(12)) / 100.0
}

/// Sends `PACKETS` 80-byte payloads (an Opus-sized packet) every 20 ms; the first 16 bytes
/// carry the send time in ns since `epoch`.
async fn send(node: &Node, epoch: Instant) {
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for n in 0..PACKETS {
        ticker.tick().await;
        let mut payload = vec![0u8; 80];
        payload[..16].copy_from_slice(&epoch.elapsed().as_nanos().to_be_bytes());
        let packet = RtpPacket {
            header: RtpHeader {
                version: 2,
                sequence_number: n as u16,
                timestamp: n * 960,
                ..RtpHeader::default()
            },
            payload: Bytes::from(payload),
        };
        node.forwarder.forward(&packet);
    }
}

fn latencies_us(node: &Node, epoch: Instant) -> Vec<f64> {
    let received = node.received.lock().map(|r| r.clone()).unwrap_or_default();
    let mut out: Vec<f64> = received
        .iter()
        .filter_map(|p| {
            let sent = u128::from_be_bytes(p.payload.get(..16)?.try_into().ok()?);
            let arrived = p.at.duration_since(epoch).as_nanos();
            Some(arrived.saturating_sub(sent) as f64 / 1_000.0)
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let config = LinkConfig::loopback();

    // Link set-up: offer, answer (candidates in both), ICE, DTLS, until both ends are
    // connected; each pair closed before the next, so that idle links do not load the rest.
    let mut setups = Vec::new();
    for i in 0..SETUPS {
        let (a, b) = (
            Node::new(&format!("setup-a{i}")),
            Node::new(&format!("setup-b{i}")),
        );
        let start = Instant::now();
        let (up, down) = connect(&a, &b, &config).await;
        setups.push(start.elapsed().as_secs_f64() * 1e3);
        up.link.close().await;
        down.link.close().await;
    }
    setups.sort_by(f64::total_cmp);
    println!(
        "link set-up (loopback, both ends connected): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, over 1 s: {}, n={}",
        percentile(&setups, 0.5),
        percentile(&setups, 0.99),
        setups.last().copied().unwrap_or(0.0),
        setups.iter().filter(|ms| **ms > 1_000.0).count(),
        setups.len()
    );

    // Latency per hop: a chain host -> 1 -> ... -> DEPTH, each node forwarding unchanged.
    let nodes: Vec<Arc<Node>> = (0..=DEPTH)
        .map(|i| Node::new(&format!("hop-{i}")))
        .collect();
    let mut links = Vec::new();
    for pair in nodes.windows(2) {
        links.push(connect(&pair[0], &pair[1], &config).await);
    }
    let epoch = Instant::now();
    send(&nodes[0], epoch).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut p50s = Vec::new();
    for (depth, node) in nodes.iter().enumerate().skip(1) {
        let lat = latencies_us(node, epoch);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        p50s.push(p50);
        println!(
            "depth {depth}: latency p50 {p50:.0} µs, p99 {p99:.0} µs ({} packets)",
            lat.len()
        );
    }
    let per_hop = (p50s[DEPTH - 1] - p50s[0]) / (DEPTH - 1) as f64;
    println!("added per forwarding hop (p50 slope, depth 1 -> {DEPTH}): {per_hop:.0} µs");
    close(links).await;

    // CPU per forwarded child stream: one parent, 0, 10 then 40 children, same traffic.
    let mut cpu = Vec::new();
    for children in [0usize, 10, 40] {
        let parent = Node::new(&format!("cpu-parent-{children}"));
        let kids: Vec<Arc<Node>> = (0..children)
            .map(|i| Node::new(&format!("cpu-{children}-{i}")))
            .collect();
        let rss_before = rss_kib();
        let mut ends = Vec::new();
        for kid in &kids {
            ends.push(connect(&parent, kid, &config).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_idle = rss_kib();
        let before = cpu_seconds();
        send(&parent, Instant::now()).await;
        let used = cpu_seconds() - before;
        if children == 40 {
            let per_link = |rss: f64| (rss - rss_before) / children as f64;
            println!(
                "RSS per link (both ends) at 40 children: idle {:.0} KiB, with traffic {:.0} KiB",
                per_link(rss_idle),
                per_link(rss_kib())
            );
        }
        cpu.push((children, used));
        close(ends).await;
    }
    let seconds = f64::from(PACKETS) * 0.02;
    let none = cpu[0].1;
    for (children, used) in &cpu[1..] {
        let per_stream = (used - none) / *children as f64 / seconds * 100.0;
        println!(
            "CPU per forwarded child stream at {children} children (send + receive ends, both in this process): {per_stream:.2} % of one core ({used:.2} s CPU over {seconds:.0} s, {none:.2} s with none)"
        );
    }
}
