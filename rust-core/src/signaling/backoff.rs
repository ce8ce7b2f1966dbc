//! When to try a lost relay again: soon at first (a relay restarting is back within a
//! second or two), then at a steady, bounded pace, and from the start again once it is back.
//! Pure: the pool supplies the attempt number and the jitter.

use std::time::Duration;

/// A reconnection schedule: `first`, doubling per failed attempt up to `max`, each delay
/// spread by ± `jitter` of itself so that a crowd of clients does not knock at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first attempt after a loss.
    pub first: Duration,
    /// The longest delay between attempts, however long the relay stays away.
    pub max: Duration,
    /// Share of each delay drawn at random, either way (0 to 1).
    pub jitter: f64,
}

impl Default for Backoff {
    /// 250 ms, 500 ms, then every second (± 20 %): a relay that restarts is seen again within
    /// about a second of its return, and a dead one costs one attempt a second.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(250),
            max: Duration::from_secs(1),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0 after the loss), with `unit` a draw in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let doubled = self.first.saturating_mul(1u32 << attempt.min(16));
        let base = doubled.min(self.max);
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(1.0 + spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_first_and_stay_bounded() {
        let backoff = Backoff::default();
        let exact: Vec<u128> = (0..6).map(|n| backoff.delay(n, 0.5).as_millis()).collect();
        assert_eq!(exact, vec![250, 500, 1_000, 1_000, 1_000, 1_000]);
        assert_eq!(backoff.delay(u32::MAX, 0.5), backoff.max, "no overflow");
    }

    #[test]
    fn jitter_spreads_each_delay_within_its_share() {
        let backoff = Backoff::default();
        for attempt in 0..8 {
            let base = backoff.delay(attempt, 0.5).as_secs_f64();
            for unit in [0.0, 0.25, 0.999] {
                let d = backoff.delay(attempt, unit).as_secs_f64();
                assert!(
                    (d - base).abs() <= 0.2 * base + 1e-9,
                    "{attempt} {unit}: {d}"
                );
            }
        }
        assert!(backoff.delay(3, 0.0) < backoff.delay(3, 0.999));
    }
}
