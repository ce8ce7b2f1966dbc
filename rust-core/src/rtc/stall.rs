//! Detects a link that went silent, long before ICE's own 5–30 s timers would.
//!
//! Pure: the caller reports packet arrivals and asks at any time; time is an argument.

use std::time::Duration;

/// What changed at a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallChange {
    /// Nothing arrived for the window.
    Stalled,
    /// Packets flow again.
    Resumed,
}

/// Tracks the last arrival on one link.
#[derive(Debug, Clone, Copy)]
pub struct StallDetector {
    window: Duration,
    last_activity: Option<Duration>,
    stalled: bool,
}

impl StallDetector {
    /// A detector for `window` of silence.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last_activity: None,
            stalled: false,
        }
    }

    /// Arms the detector (the link connected) without a packet yet.
    pub fn arm(&mut self, now: Duration) {
        self.last_activity.get_or_insert(now);
    }

    /// A packet (media or keep-alive) arrived at `now`.
    pub fn activity(&mut self, now: Duration) -> Option<StallChange> {
        self.last_activity = Some(now);
        if self.stalled {
            self.stalled = false;
            return Some(StallChange::Resumed);
        }
        None
    }

    /// Checks at `now`; reports the transition to stalled once.
    pub fn check(&mut self, now: Duration) -> Option<StallChange> {
        let last = self.last_activity?;
        if !self.stalled && now.saturating_sub(last) >= self.window {
            self.stalled = true;
            return Some(StallChange::Stalled);
        }
        None
    }

    /// When [`check`](Self::check) will report a stall if nothing arrives before: `None` while
    /// not armed or already stalled (nothing to wait for until [`arm`](Self::arm) or a
    /// resuming packet).
    pub fn due(&self) -> Option<Duration> {
        match self.last_activity {
            Some(last) if !self.stalled => Some(last + self.window),
            _ => None,
        }
    }

    /// Is the link currently stalled?
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn silence_longer_than_the_window_stalls_once_and_resumes() {
        let mut d = StallDetector::new(MS(300));
        assert_eq!(d.check(MS(10_000)), None, "not armed: nothing to miss yet");
        assert_eq!(d.due(), None);
        d.arm(MS(0));
        assert_eq!(d.activity(MS(100)), None);
        assert_eq!(d.due(), Some(MS(400)));
        assert_eq!(d.check(MS(399)), None);
        assert_eq!(
            d.check(MS(400)),
            Some(StallChange::Stalled),
            "due means due"
        );
        assert_eq!(d.check(MS(900)), None, "reported once");
        assert!(d.is_stalled());
        assert_eq!(d.due(), None, "nothing to wait for until a packet comes");
        assert_eq!(d.activity(MS(950)), Some(StallChange::Resumed));
        assert_eq!(d.due(), Some(MS(1_250)));
        assert_eq!(d.check(MS(1_200)), None);
    }

    #[test]
    fn keep_alives_every_100_ms_never_stall() {
        let mut d = StallDetector::new(MS(300));
        d.arm(MS(0));
        for t in (0..10_000).step_by(100) {
            d.activity(MS(t));
            assert_eq!(d.check(MS(t + 99)), None);
        }
    }
}
