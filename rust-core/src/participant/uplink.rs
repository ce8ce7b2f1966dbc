//! What our uplink really carries. The announced figure is a first guess: a phone's platform
//! estimate may be ten times too high, or missing. Children's receiver reports tell the truth:
//! when at least half of the children lose packets that our own inbound did not lose, our
//! uplink is saturated, and we feed what got through. Clean reports for a while let us try one
//! more.
//! Pure: reports and time come in, a new capacity comes out.

use super::Millis;

/// Loss a child must see beyond our own inbound loss to count as starved by our uplink.
pub const STARVED_LOSS: f64 = 0.05;

/// Loss (beyond our inbound loss) under which a child's link counts as clean.
pub const CLEAN_LOSS: f64 = 0.01;

/// Between two cuts: the shed streams must have stopped and fresh receiver reports (one every
/// second or so) must show the effect before we judge again.
pub const CUT_EVERY: Millis = 3_000;

/// Clean reports from every child for this long before one more output is tried.
pub const PROBE_AFTER: Millis = 20_000;

/// A count of streams that saturated the uplink is not tried again for this long (networks
/// change, so not forever).
pub const REMEMBER_FOR: Millis = 300_000;

/// Outputs tried first when the uplink is unknown (a platform that gives no estimate): enough
/// to relay, few enough that a weak uplink starves nobody for long.
pub const UNKNOWN_START: u32 = 2;

/// The uplink estimate, in outputs (streams we can feed).
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// The most we try: what the announced uplink allows, or the access network's cap when
    /// the uplink is unknown.
    ceiling: u32,
    capacity: u32,
    /// The estimate differs from the announced figure (cut, or grown from unknown).
    measured: bool,
    /// The fewest streams that saturated us, and until when we believe it.
    saturated_at: Option<(u32, Millis)>,
    last_cut: Option<Millis>,
    clean_since: Option<Millis>,
}

/// A change of the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Children starve: feed this many.
    Cut(u32),
    /// Links stayed clean: try this many.
    Probe(u32),
}

impl Uplink {
    /// From an announced uplink that allows `outputs`: we start there, and never probe past.
    pub fn announced(outputs: u32) -> Self {
        Self::starting(outputs, outputs, false)
    }

    /// From an unknown uplink: we start at [`UNKNOWN_START`] and may grow to `ceiling` (what
    /// the access network allows).
    pub fn unknown(ceiling: u32) -> Self {
        Self::starting(UNKNOWN_START.min(ceiling), ceiling, true)
    }

    fn starting(capacity: u32, ceiling: u32, measured: bool) -> Self {
        Self {
            ceiling,
            capacity,
            measured,
            saturated_at: None,
            last_cut: None,
            clean_since: None,
        }
    }

    /// Outputs we feed now.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Whether the estimate comes from measurement rather than the announced figure (then
    /// we announce it, so that others' choices use it).
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// Judges the latest receiver reports of the `streams` links we feed against `inbound`,
    /// the share we lost ourselves: `reports`, the share of our packets each child lost
    /// lately, smoothed over a few reports, decide whether we cut (a random loss reads high
    /// in one report in eight); `latest`, each child's last report alone, size the cut (the
    /// smoothed figure still lags a saturation that just began: a cut sized on it took two
    /// steps, three seconds apart, while the first children starved).
    pub fn assess(
        &mut self,
        now: Millis,
        streams: u32,
        reports: &[f64],
        latest: &[f64],
        inbound: f64,
    ) -> Option<Change> {
        if reports.is_empty() {
            self.clean_since = None;
            return None;
        }
        let starved = reports
            .iter()
            .filter(|loss| **loss - inbound >= STARVED_LOSS)
            .count();
        if streams >= 2 && starved >= 1 && starved * 2 >= reports.len() {
            self.clean_since = None;
            if self.last_cut.is_some_and(|at| now < at + CUT_EVERY) {
                return None;
            }
            // What got through says what the uplink carries: with a median child losing a
            // share L of our packets, (1 - L) of the load fits. One such cut converges; at
            // least one stream goes, and never more than half at once (one bad second must
            // not empty a relay).
            let sizing = if latest.len() == reports.len() {
                latest
            } else {
                reports
            };
            let mut losses: Vec<f64> = sizing.iter().map(|l| (l - inbound).max(0.0)).collect();
            losses.sort_by(f64::total_cmp);
            let median = losses[losses.len() / 2];
            let fits = (f64::from(streams) * (1.0 - median)).floor() as u32;
            let cut = fits.clamp(streams.div_ceil(2), streams - 1);
            // Never below two on a cut: reports can lag a shrinking load (children that left
            // by themselves), and an uplink that cannot carry two streams gains nothing from
            // feeding one fewer.
            let capacity = cut.max(UNKNOWN_START).min(self.capacity.max(1));
            self.saturated_at = Some((
                self.saturated_at
                    .filter(|(_, until)| now < *until)
                    .map_or(streams, |(n, _)| n.min(streams)),
                now + REMEMBER_FOR,
            ));
            self.last_cut = Some(now);
            if capacity == self.capacity {
                return None;
            }
            self.measured = true;
            self.capacity = capacity;
            return Some(Change::Cut(capacity));
        }
        if reports.iter().any(|loss| *loss - inbound >= CLEAN_LOSS) {
            self.clean_since = None;
            return None;
        }
        if streams < self.capacity {
            // Not all outputs in use: the clean links say nothing of one more.
            self.clean_since = None;
            return None;
        }
        let since = *self.clean_since.get_or_insert(now);
        let next = self.capacity + 1;
        let known_bad = self
            .saturated_at
            .is_some_and(|(n, until)| now < until && next >= n);
        if now < since + PROBE_AFTER || next > self.ceiling || known_bad {
            return None;
        }
        self.clean_since = Some(now);
        self.capacity = next;
        Some(Change::Probe(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starving_children_cut_to_what_got_through() {
        let mut uplink = Uplink::announced(10);
        // Our own inbound loses 2 %: children losing the same are not our uplink's fault.
        assert_eq!(uplink.assess(0, 10, &[0.03; 10], &[0.03; 10], 0.02), None);
        // Ten streams, every child loses 47 %: a 300 kbit/s uplink carrying 568. Five fit.
        assert_eq!(
            uplink.assess(1_000, 10, &[0.47; 10], &[0.47; 10], 0.0),
            Some(Change::Cut(5))
        );
        assert!(uplink.measured());
        // Reports right after the cut still show the old load: no second cut yet.
        assert_eq!(uplink.assess(2_000, 5, &[0.47; 5], &[0.47; 5], 0.0), None);
        // A slight excess costs one stream; a huge one at most half at once.
        let reports = [0.15, 0.15, 0.15, 0.0, 0.0];
        assert_eq!(
            uplink.assess(1_000 + CUT_EVERY, 5, &reports, &reports, 0.0),
            Some(Change::Cut(4))
        );
        let mut relay = Uplink::announced(8);
        assert_eq!(
            relay.assess(0, 8, &[0.9; 8], &[0.9; 8], 0.0),
            Some(Change::Cut(4))
        );
        // One child alone losing is its own network's business.
        assert_eq!(
            uplink.assess(20_000, 4, &[0.3, 0.0, 0.0, 0.0], &[0.3, 0.0, 0.0, 0.0], 0.0),
            None
        );
        assert_eq!(uplink.capacity(), 4);
        // Two starving streams are not cut to one: the reports may describe a heavier load.
        let mut small = Uplink::announced(2);
        assert_eq!(small.assess(0, 2, &[0.5, 0.5], &[0.5, 0.5], 0.0), None);
        assert_eq!(small.capacity(), 2);
    }

    #[test]
    fn a_saturation_that_just_began_is_cut_in_one_step_by_the_latest_reports() {
        // Seven streams on an uplink that carries four and a half: every child's last report
        // says 37 %; smoothed from no loss, the first such report reads 9 %.
        let mut uplink = Uplink::announced(40);
        assert_eq!(
            uplink.assess(0, 7, &[0.0925; 7], &[0.37; 7], 0.0),
            Some(Change::Cut(4))
        );
        // Sized on the smoothed figure, the same moment cut only one stream.
        let mut lagging = Uplink::announced(40);
        assert_eq!(
            lagging.assess(0, 7, &[0.0925; 7], &[0.0925; 7], 0.0),
            Some(Change::Cut(6))
        );
    }

    #[test]
    fn clean_links_grow_an_unknown_uplink_but_never_back_into_a_known_saturation() {
        let mut uplink = Uplink::unknown(12);
        assert_eq!(uplink.capacity(), UNKNOWN_START);
        // Not full: nothing to learn.
        assert_eq!(uplink.assess(0, 1, &[0.0], &[0.0], 0.0), None);
        assert_eq!(uplink.assess(PROBE_AFTER, 1, &[0.0], &[0.0], 0.0), None);
        // Full and clean for PROBE_AFTER: one more.
        assert_eq!(
            uplink.assess(PROBE_AFTER, 2, &[0.0, 0.0], &[0.0, 0.0], 0.0),
            None
        );
        assert_eq!(
            uplink.assess(2 * PROBE_AFTER, 2, &[0.0, 0.0], &[0.0, 0.0], 0.0),
            Some(Change::Probe(3))
        );
        // Three starve: back to two, and three is not tried again soon.
        let t = 2 * PROBE_AFTER + 1_000;
        assert_eq!(
            uplink.assess(t, 3, &[0.2, 0.2, 0.0], &[0.2, 0.2, 0.0], 0.0),
            Some(Change::Cut(2))
        );
        assert_eq!(
            uplink.assess(t + PROBE_AFTER, 2, &[0.0, 0.0], &[0.0, 0.0], 0.0),
            None
        );
        assert_eq!(
            uplink.assess(t + 2 * PROBE_AFTER, 2, &[0.0, 0.0], &[0.0, 0.0], 0.0),
            None
        );
        // Once the memory fades, it is tried again.
        assert_eq!(
            uplink.assess(t + REMEMBER_FOR, 2, &[0.0, 0.0], &[0.0, 0.0], 0.0),
            Some(Change::Probe(3))
        );
    }

    #[test]
    fn an_announced_uplink_is_a_ceiling_probing_never_passes() {
        let mut uplink = Uplink::announced(3);
        assert!(!uplink.measured());
        assert_eq!(uplink.assess(0, 3, &[0.0; 3], &[0.0; 3], 0.0), None);
        assert_eq!(
            uplink.assess(PROBE_AFTER, 3, &[0.0; 3], &[0.0; 3], 0.0),
            None
        );
        assert_eq!(uplink.capacity(), 3);
    }
}
