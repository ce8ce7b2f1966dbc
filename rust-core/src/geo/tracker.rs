//! Turns a stream of GPS fixes into "current cell changed" events, without flapping.
//!
//! GPS noise of 5–20 m at a cell edge would otherwise move a user between two spaces every
//! few seconds. The tracker leaves the current cell only when a fix is clearly outside it
//! (beyond its accuracy radius plus a margin) or when fixes have stayed in the same other
//! cell for a dwell time. Any fix back inside the current cell cancels a pending move.

use super::{Cell, GeoError, Level, Point};

/// Tuning of a [`CellTracker`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Level of the cells tracked (UMAP to auto-join a UMAP space).
    pub level: Level,
    /// Metres a fix must lie beyond the current cell, after subtracting its accuracy
    /// radius, to move at once.
    pub margin_m: f64,
    /// Milliseconds fixes must stay in one other cell to move without clearing the margin.
    pub dwell_ms: u64,
    /// Fixes whose accuracy radius exceeds this are refused.
    pub max_accuracy_m: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            level: Level::Umap,
            margin_m: 50.0,
            dwell_ms: 20_000,
            max_accuracy_m: 150.0,
        }
    }
}

/// One position report from the platform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Radius of 68 % confidence, in metres (Android `getAccuracy`, iOS `horizontalAccuracy`).
    pub accuracy_m: f64,
    /// When the fix was taken, milliseconds on any monotonic-enough clock.
    pub time_ms: u64,
}

/// Why a fix was refused. A refused fix changes nothing in the tracker.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FixError {
    /// Latitude or longitude is NaN, infinite or out of range.
    #[error(transparent)]
    Coordinate(#[from] GeoError),
    /// The accuracy is NaN, infinite or negative.
    #[error("accuracy {0} m is not a non-negative number")]
    InvalidAccuracy(f64),
    /// The fix is too imprecise to place the user in a cell.
    #[error("accuracy {accuracy_m} m is worse than the {max_m} m allowed")]
    Inaccurate {
        /// The fix's accuracy radius.
        accuracy_m: f64,
        /// The configured bound.
        max_m: f64,
    },
    /// The fix is older than one already accepted.
    #[error("fix time {time_ms} ms is before the last accepted fix at {last_ms} ms")]
    TimeWentBackwards {
        /// The refused fix's time.
        time_ms: u64,
        /// The last accepted fix's time.
        last_ms: u64,
    },
}

/// The tracker moved the user to another cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellChange {
    /// The previous cell; `None` on the first usable fix.
    pub from: Option<Cell>,
    /// The new current cell.
    pub to: Cell,
}

/// Follows the user's current cell with hysteresis. Pure: time comes in with each fix.
#[derive(Debug, Clone)]
pub struct CellTracker {
    config: TrackerConfig,
    current: Option<Cell>,
    /// A cell other than the current one that fixes have stayed in since the given time.
    pending: Option<(Cell, u64)>,
    last_time_ms: Option<u64>,
}

impl CellTracker {
    /// A tracker with no current cell.
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            current: None,
            pending: None,
            last_time_ms: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The cell the user is in, once a fix has placed them.
    pub fn current(&self) -> Option<Cell> {
        self.current
    }

    /// Feeds one fix. Returns the change of cell it causes, if any.
    pub fn update(&mut self, fix: Fix) -> Result<Option<CellChange>, FixError> {
        let point = self.validate(&fix)?;
        self.last_time_ms = Some(fix.time_ms);
        let candidate = match Cell::containing(point, self.config.level) {
            Ok(cell) => cell,
            // The keyless `0.00` strip is no cell: stay where we are until the user leaves it.
            Err(GeoError::KeylessStrip { .. }) => {
                self.pending = None;
                return Ok(None);
            }
            Err(other) => return Err(other.into()),
        };
        let Some(current) = self.current else {
            return Ok(Some(self.move_to(candidate)));
        };
        if candidate == current {
            self.pending = None;
            return Ok(None);
        }
        let beyond = current.distance_outside_m(point) - fix.accuracy_m;
        if beyond >= self.config.margin_m {
            return Ok(Some(self.move_to(candidate)));
        }
        match self.pending {
            Some((cell, since)) if cell == candidate => {
                if fix.time_ms.saturating_sub(since) >= self.config.dwell_ms {
                    return Ok(Some(self.move_to(candidate)));
                }
            }
            _ => self.pending = Some((candidate, fix.time_ms)),
        }
        Ok(None)
    }

    fn validate(&self, fix: &Fix) -> Result<Point, FixError> {
        let point = Point::new(fix.lat, fix.lon)?;
        if !(fix.accuracy_m.is_finite() && fix.accuracy_m >= 0.0) {
            return Err(FixError::InvalidAccuracy(fix.accuracy_m));
        }
        if fix.accuracy_m > self.config.max_accuracy_m {
            return Err(FixError::Inaccurate {
                accuracy_m: fix.accuracy_m,
                max_m: self.config.max_accuracy_m,
            });
        }
        if let Some(last_ms) = self.last_time_ms.filter(|&last| fix.time_ms < last) {
            return Err(FixError::TimeWentBackwards {
                time_ms: fix.time_ms,
                last_ms,
            });
        }
        Ok(point)
    }

    fn move_to(&mut self, cell: Cell) -> CellChange {
        let change = CellChange {
            from: self.current,
            to: cell,
        };
        tracing::info!(from = ?change.from.map(|c| c.to_string()), to = %cell, "cell changed");
        self.current = Some(cell);
        self.pending = None;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const METRES_PER_DEGREE: f64 = 111_320.0;

    fn fix(lat: f64, lon: f64, accuracy_m: f64, time_ms: u64) -> Fix {
        Fix {
            lat,
            lon,
            accuracy_m,
            time_ms,
        }
    }

    fn umap(lat: &str, lon: &str) -> Cell {
        Cell::from_labels(Level::Umap, lat, lon).unwrap()
    }

    #[test]
    fn the_first_fix_places_the_user() {
        let mut tracker = CellTracker::new(TrackerConfig::default());
        let change = tracker.update(fix(48.853, -2.341, 10.0, 0)).unwrap();
        assert_eq!(
            change,
            Some(CellChange {
                from: None,
                to: umap("48.85", "-2.34")
            })
        );
        assert_eq!(tracker.current(), Some(umap("48.85", "-2.34")));
        assert_eq!(
            tracker.update(fix(48.852, -2.342, 10.0, 1_000)).unwrap(),
            None
        );
    }

    #[test]
    fn jitter_on_an_edge_never_flaps() {
        // The edge between 48.85 and 48.86 is at 48.855. Fixes scatter ±15 m around it.
        let edge = 48.855;
        let mut tracker = CellTracker::new(TrackerConfig::default());
        tracker.update(fix(48.853, -2.341, 10.0, 0)).unwrap();
        let mut changes = 0;
        for i in 0..600u64 {
            let offset_m = 15.0 * ((i as f64) * 1.7).sin();
            let lat = edge + offset_m / METRES_PER_DEGREE;
            if tracker
                .update(fix(lat, -2.341, 10.0, 1_000 + i * 1_000))
                .unwrap()
                .is_some()
            {
                changes += 1;
            }
        }
        assert_eq!(changes, 0);
        assert_eq!(tracker.current(), Some(umap("48.85", "-2.34")));
    }

    #[test]
    fn walking_across_moves_once_past_the_margin() {
        let config = TrackerConfig {
            dwell_ms: u64::MAX,
            ..TrackerConfig::default()
        };
        let mut tracker = CellTracker::new(config);
        tracker.update(fix(48.853, -2.341, 10.0, 0)).unwrap();
        let mut moved_at_m = None;
        // Walk north 1 m per second from 100 m inside the old cell to 200 m into the new one.
        for step in 0..300u64 {
            let metres_past_edge = step as f64 - 100.0;
            let lat = 48.855 + metres_past_edge / METRES_PER_DEGREE;
            if let Some(change) = tracker
                .update(fix(lat, -2.341, 10.0, step * 1_000))
                .unwrap()
            {
                assert_eq!(change.to, umap("48.86", "-2.34"));
                assert!(moved_at_m.is_none(), "moved twice");
                moved_at_m = Some(metres_past_edge);
            }
        }
        // margin 50 m + accuracy 10 m
        let moved = moved_at_m.expect("never moved");
        assert!(
            (59.0..=61.0).contains(&moved),
            "moved {moved} m past the edge"
        );
    }

    #[test]
    fn standing_just_past_the_edge_moves_after_the_dwell_time() {
        let mut tracker = CellTracker::new(TrackerConfig::default());
        tracker.update(fix(48.853, -2.341, 10.0, 0)).unwrap();
        let lat = 48.855 + 20.0 / METRES_PER_DEGREE;
        assert_eq!(tracker.update(fix(lat, -2.341, 10.0, 1_000)).unwrap(), None);
        assert_eq!(
            tracker.update(fix(lat, -2.341, 10.0, 20_999)).unwrap(),
            None
        );
        let change = tracker.update(fix(lat, -2.341, 10.0, 21_000)).unwrap();
        assert_eq!(change.map(|c| c.to), Some(umap("48.86", "-2.34")));
    }

    #[test]
    fn a_fix_back_inside_restarts_the_dwell() {
        let mut tracker = CellTracker::new(TrackerConfig::default());
        tracker.update(fix(48.853, -2.341, 10.0, 0)).unwrap();
        let out = 48.855 + 20.0 / METRES_PER_DEGREE;
        tracker.update(fix(out, -2.341, 10.0, 1_000)).unwrap();
        tracker.update(fix(48.854, -2.341, 10.0, 15_000)).unwrap();
        assert_eq!(
            tracker.update(fix(out, -2.341, 10.0, 22_000)).unwrap(),
            None
        );
        assert!(
            tracker
                .update(fix(out, -2.341, 10.0, 42_000))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_far_jump_moves_at_once() {
        let mut tracker = CellTracker::new(TrackerConfig::default());
        tracker.update(fix(48.853, -2.341, 10.0, 0)).unwrap();
        let change = tracker
            .update(fix(43.6047, 1.4442, 30.0, 1_000))
            .unwrap()
            .unwrap();
        assert_eq!(change.from, Some(umap("48.85", "-2.34")));
        assert_eq!(change.to, umap("43.60", "1.44"));
    }

    #[test]
    fn bad_fixes_are_refused_and_change_nothing() {
        let mut tracker = CellTracker::new(TrackerConfig::default());
        tracker.update(fix(48.853, -2.341, 10.0, 10_000)).unwrap();
        let before = tracker.clone();
        let cases = [
            (fix(f64::NAN, 0.0, 10.0, 11_000), "nan"),
            (fix(91.0, 0.0, 10.0, 11_000), "lat"),
            (fix(0.0, -180.5, 10.0, 11_000), "lon"),
            (fix(43.6, 1.44, f64::NAN, 11_000), "accuracy nan"),
            (fix(43.6, 1.44, -1.0, 11_000), "accuracy negative"),
            (fix(43.6, 1.44, 151.0, 11_000), "inaccurate"),
            (fix(43.6, 1.44, 10.0, 9_999), "time backwards"),
        ];
        for (bad, what) in cases {
            let err = tracker.update(bad).expect_err(what);
            match what {
                "nan" | "lat" => assert!(matches!(
                    err,
                    FixError::Coordinate(GeoError::InvalidLatitude(_))
                )),
                "lon" => assert!(matches!(
                    err,
                    FixError::Coordinate(GeoError::InvalidLongitude(_))
                )),
                "inaccurate" => assert!(matches!(err, FixError::Inaccurate { .. })),
                "time backwards" => assert_eq!(
                    err,
                    FixError::TimeWentBackwards {
                        time_ms: 9_999,
                        last_ms: 10_000
                    }
                ),
                _ => assert!(matches!(err, FixError::InvalidAccuracy(_))),
            }
            assert_eq!(tracker.current(), before.current());
            assert_eq!(tracker.pending, before.pending);
            assert_eq!(tracker.last_time_ms, before.last_time_ms);
        }
    }

    #[test]
    fn the_keyless_strip_keeps_the_current_cell() {
        let mut tracker = CellTracker::new(TrackerConfig::default());
        tracker.update(fix(-0.003, 10.001, 5.0, 0)).unwrap();
        assert_eq!(tracker.current(), Some(umap("-0.00", "10.00")));
        assert_eq!(
            tracker.update(fix(0.002, 10.001, 5.0, 1_000)).unwrap(),
            None
        );
        assert_eq!(tracker.current(), Some(umap("-0.00", "10.00")));
        let mut fresh = CellTracker::new(TrackerConfig::default());
        assert_eq!(fresh.update(fix(0.002, 10.001, 5.0, 0)).unwrap(), None);
        assert_eq!(fresh.current(), None);
    }

    proptest! {
        #[test]
        fn noise_smaller_than_margin_plus_accuracy_never_flaps(
            noise in prop::collection::vec(-1.0f64..1.0, 50..300),
            accuracy in 3.0f64..40.0,
        ) {
            // Noise of at most ±(accuracy + margin) around an edge, fixes each second for
            // less than the dwell time of continuous excursions: the cell never changes.
            let config = TrackerConfig::default();
            let mut tracker = CellTracker::new(config);
            tracker.update(fix(48.853, -2.341, accuracy, 0)).unwrap();
            let amplitude = accuracy + config.margin_m - 1.0;
            let mut outside_run = 0u64;
            for (i, n) in noise.iter().enumerate() {
                // Alternate sides at least every 15 fixes so no excursion outlasts the dwell.
                outside_run = if *n > 0.0 { outside_run + 1 } else { 0 };
                let offset = if outside_run > 15 { -amplitude * n } else { amplitude * n };
                let lat = 48.855 + offset / METRES_PER_DEGREE;
                let t = (i as u64 + 1) * 1_000;
                prop_assert_eq!(tracker.update(fix(lat, -2.341, accuracy, t)).unwrap(), None);
                if outside_run > 15 { outside_run = 0; }
            }
        }
    }
}
