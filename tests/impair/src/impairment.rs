//! What happens to one packet: dropped, or released after a delay. Pure: the caller brings the
//! clock and the packet's flow; the randomness is a seeded generator, so a run can be replayed.

use std::collections::HashMap;

/// How a link misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Mean one-way delay added to every packet, in microseconds.
    pub delay_us: u64,
    /// Each packet's delay is drawn uniformly from `delay_us ± jitter_us`.
    pub jitter_us: u64,
    /// Share of packets dropped, 0..=1.
    pub loss: f64,
    /// Share of packets that may overtake the packets queued before them on their flow, 0..=1.
    /// The others keep their flow's order, as on a real path where jitter comes from queues.
    pub reorder: f64,
}

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Lost on the way.
    Drop,
    /// Delivered at this time (microseconds on the caller's clock).
    ReleaseAt(u64),
}

/// A flow: source and destination address, so that one flow's order does not hold back another.
pub type Flow = [u8; 8];

/// The decisions of one impaired link.
#[derive(Debug)]
pub struct Impairment {
    profile: Profile,
    rng: SplitMix64,
    /// The latest release time given to an in-order packet of each flow.
    last_release: HashMap<Flow, u64>,
}

impl Impairment {
    /// A link with this profile; the same seed gives the same fates for the same packets.
    pub fn new(profile: Profile, seed: u64) -> Self {
        Self {
            profile,
            rng: SplitMix64(seed),
            last_release: HashMap::new(),
        }
    }

    /// Decides what happens to a packet of `flow` that arrives at `now_us`.
    pub fn admit(&mut self, now_us: u64, flow: Flow) -> Fate {
        if self.rng.unit() < self.profile.loss {
            return Fate::Drop;
        }
        let spread = 2 * self.profile.jitter_us + 1;
        let delay =
            (self.profile.delay_us + self.rng.below(spread)).saturating_sub(self.profile.jitter_us);
        let at = now_us + delay;
        if self.rng.unit() < self.profile.reorder {
            // Free to overtake: its own delay only, whatever was queued before it.
            return Fate::ReleaseAt(at);
        }
        let last = self.last_release.entry(flow).or_insert(0);
        let at = at.max(*last);
        *last = at;
        Fate::ReleaseAt(at)
    }
}

/// The flow of an IPv4 packet (source and destination address), or `None` for anything else.
pub fn flow_of(packet: &[u8]) -> Option<Flow> {
    let version = packet.first()? >> 4;
    if version != 4 {
        return None;
    }
    packet.get(12..20)?.try_into().ok()
}

/// SplitMix64: small, fast, and good enough to draw losses and delays.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: Flow = [10, 0, 0, 2, 10, 0, 0, 3];

    fn lossy() -> Profile {
        Profile {
            delay_us: 40_000,
            jitter_us: 15_000,
            loss: 0.02,
            reorder: 0.03,
        }
    }

    /// Packets every 20 ms, as Opus sends them: the fates of `n` of them.
    fn run(profile: Profile, n: u64) -> Vec<(u64, Fate)> {
        let mut link = Impairment::new(profile, 7);
        (0..n)
            .map(|i| (i * 20_000, link.admit(i * 20_000, FLOW)))
            .collect()
    }

    #[test]
    fn drops_about_the_share_asked() {
        let fates = run(lossy(), 20_000);
        let dropped = fates.iter().filter(|(_, f)| *f == Fate::Drop).count();
        assert!(
            (300..500).contains(&dropped),
            "{dropped} of 20000 dropped, 2 % asked"
        );
    }

    #[test]
    fn delays_stay_within_the_jitter_and_keep_order_but_for_the_reordered_share() {
        let fates = run(lossy(), 20_000);
        let mut released: Vec<(u64, u64)> = Vec::new();
        for (sent, fate) in &fates {
            if let Fate::ReleaseAt(at) = fate {
                let delay = at - sent;
                assert!(delay >= 25_000, "delay {delay} µs below 40 - 15 ms");
                // In-order packets may wait behind a slower one of their flow, never longer
                // than the longest delay drawn.
                assert!(delay <= 55_000, "delay {delay} µs above 40 + 15 ms");
                released.push((*sent, *at));
            }
        }
        let overtaking = released.windows(2).filter(|w| w[1].1 < w[0].1).count();
        let share = overtaking as f64 / released.len() as f64;
        assert!(
            share > 0.002 && share < 0.03,
            "{share} of packets overtook the one before"
        );
    }

    #[test]
    fn a_clean_profile_delays_exactly() {
        let fates = run(
            Profile {
                delay_us: 10_000,
                jitter_us: 0,
                loss: 0.0,
                reorder: 0.0,
            },
            100,
        );
        assert!(
            fates
                .iter()
                .all(|(sent, f)| *f == Fate::ReleaseAt(sent + 10_000))
        );
    }

    #[test]
    fn the_same_seed_replays_the_same_fates() {
        assert_eq!(run(lossy(), 500), run(lossy(), 500));
    }

    #[test]
    fn flows_are_read_from_ipv4_headers_only() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[12..20].copy_from_slice(&FLOW);
        assert_eq!(flow_of(&v4), Some(FLOW));
        assert_eq!(flow_of(&v4[..15]), None);
        let mut v6 = v4;
        v6[0] = 0x60;
        assert_eq!(flow_of(&v6), None);
        assert_eq!(flow_of(&[]), None);
    }
}
