//! `impair`: delay, jitter, loss and reordering for the packets an iptables `NFQUEUE` rule hands
//! it, where the kernel has no `netem`. Run it in the namespace of the rule:
//!
//! ```text
//! iptables -A FORWARD -j NFQUEUE --queue-num 0 --queue-bypass
//! impair --queue 0 --delay-ms 40 --jitter-ms 15 --loss-pct 2 --reorder-pct 3
//! ```
//!
//! Held packets stay in the kernel; a verdict releases or drops each at its time. The clock is
//! polled every millisecond, the resolution of the delays.

mod impairment;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use nfq::{Message, Queue, Verdict};

use impairment::{Fate, Impairment, Profile, flow_of};

/// Bytes of each packet copied to us: the IPv4 header is all the flow key needs.
const COPY_BYTES: u16 = 40;
/// Packets the kernel holds for us before it lets more through unimpaired (fail-open).
const QUEUE_MAX: u32 = 8192;

/// Impairs the packets of one NFQUEUE queue.
#[derive(Parser, Debug)]
#[command(name = "impair", about)]
struct Args {
    /// The NFQUEUE queue number of the iptables rule.
    #[arg(long, default_value_t = 0)]
    queue: u16,
    /// Mean one-way delay added, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    /// Each packet's delay is uniform in delay ± jitter, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Packets dropped, in percent.
    #[arg(long, default_value_t = 0.0)]
    loss_pct: f64,
    /// Packets free to overtake the ones queued before them, in percent.
    #[arg(long, default_value_t = 0.0)]
    reorder_pct: f64,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let valid_pct = |p: f64| (0.0..=100.0).contains(&p);
    if !(valid_pct(args.loss_pct) && valid_pct(args.reorder_pct))
        || args.delay_ms < 0.0
        || args.jitter_ms < 0.0
        || args.jitter_ms > args.delay_ms
    {
        eprintln!("impair: percentages are 0..100, delays non-negative, jitter at most the delay");
        return ExitCode::from(2);
    }
    let profile = Profile {
        delay_us: (args.delay_ms * 1000.0) as u64,
        jitter_us: (args.jitter_ms * 1000.0) as u64,
        loss: args.loss_pct / 100.0,
        reorder: args.reorder_pct / 100.0,
    };
    match run(args.queue, Impairment::new(profile, args.seed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impair: queue {}: {e}", args.queue);
            ExitCode::FAILURE
        }
    }
}

fn run(queue_num: u16, mut link: Impairment) -> std::io::Result<()> {
    let mut queue = Queue::open()?;
    queue.bind(queue_num)?;
    queue.set_copy_range(queue_num, COPY_BYTES)?;
    queue.set_queue_max_len(queue_num, QUEUE_MAX)?;
    queue.set_fail_open(queue_num, true)?;
    queue.set_nonblocking(true);
    println!("impair: queue {queue_num} ready");
    let start = Instant::now();
    // Held packets by release time; the sequence number keeps equal times in arrival order.
    let mut held: BTreeMap<(u64, u64), Message> = BTreeMap::new();
    let mut seq = 0u64;
    loop {
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    let now = start.elapsed().as_micros() as u64;
                    // Not IPv4 (ARP never comes here; IPv6 is off in the test bed): untouched.
                    let fate = match flow_of(msg.get_payload()) {
                        Some(flow) => link.admit(now, flow),
                        None => Fate::ReleaseAt(now),
                    };
                    match fate {
                        Fate::Drop => {
                            msg.set_verdict(Verdict::Drop);
                            queue.verdict(msg)?;
                        }
                        Fate::ReleaseAt(at) => {
                            held.insert((at, seq), msg);
                            seq += 1;
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = start.elapsed().as_micros() as u64;
        while let Some(entry) = held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let mut msg = entry.remove();
            msg.set_verdict(Verdict::Accept);
            queue.verdict(msg)?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
