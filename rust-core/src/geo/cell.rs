//! Grid cells: the UMAP, SECTOR or REGION a point falls in, its neighbours and its extent.

use std::fmt;

use super::{Axis, AxisLabel, GeoError, Level, Point};

/// Metres per degree of latitude (mean; good to 0.5 % for hysteresis distances).
const METRES_PER_DEGREE: f64 = 111_320.0;

/// A cell of the UPlanet grid, identified by its level and its two labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    level: Level,
    lat: AxisLabel,
    lon: AxisLabel,
}

impl Cell {
    /// The cell holding a point, labelled as UPlanet does: the UMAP label is the
    /// two-decimal rounding of each coordinate, coarser labels are cut from it.
    ///
    /// A point whose UMAP label has a `0.00` axis has no UMAP cell
    /// ([`GeoError::KeylessStrip`]); its SECTOR and REGION (`0.0`, `0`) exist.
    pub fn containing(point: Point, level: Level) -> Result<Self, GeoError> {
        let lat = AxisLabel::umap_of(point.lat());
        let lon = AxisLabel::umap_of(point.lon());
        for (axis, label) in [(Axis::Latitude, lat), (Axis::Longitude, lon)] {
            if level == Level::Umap && !label.is_valid(Level::Umap) {
                return Err(GeoError::KeylessStrip { axis });
            }
        }
        Ok(Self {
            level,
            lat: lat.coarsen(Level::Umap, level),
            lon: lon.coarsen(Level::Umap, level),
        })
    }

    /// Reads a cell from its two labels (`"48.85"`, `"-2.34"` at UMAP level).
    pub fn from_labels(level: Level, lat: &str, lon: &str) -> Result<Self, GeoError> {
        Ok(Self {
            level,
            lat: AxisLabel::parse(lat, level, Axis::Latitude)?,
            lon: AxisLabel::parse(lon, level, Axis::Longitude)?,
        })
    }

    /// The cell's level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Latitude label, e.g. `48.85`.
    pub fn lat_label(&self) -> String {
        self.lat.format(self.level)
    }

    /// Longitude label, e.g. `-2.34`.
    pub fn lon_label(&self) -> String {
        self.lon.format(self.level)
    }

    /// The enclosing cell at `level` (the cell itself when `level` is not coarser).
    pub fn parent(&self, level: Level) -> Self {
        if level <= self.level {
            return *self;
        }
        Self {
            level,
            lat: self.lat.coarsen(self.level, level),
            lon: self.lon.coarsen(self.level, level),
        }
    }

    /// The surrounding cells, computed on integer labels, in the order
    /// NW, N, NE, W, E, SW, S, SE. Longitude wraps (`180.00` borders `-180.00`, as one
    /// strip has two UPlanet keys); latitude stops at the poles, so a polar cell has 5.
    pub fn neighbours(&self) -> Vec<Cell> {
        let level = self.level;
        let (lat_min, lat_max) = AxisLabel::ordinal_range(level, Axis::Latitude);
        let (lon_min, lon_max) = AxisLabel::ordinal_range(level, Axis::Longitude);
        let lon_span = lon_max - lon_min + 1;
        let lat0 = self.lat.ordinal(level);
        let lon0 = self.lon.ordinal(level);
        let mut cells = Vec::with_capacity(8);
        for dlat in [1, 0, -1] {
            let lat = lat0 + dlat;
            if !(lat_min..=lat_max).contains(&lat) {
                continue;
            }
            for dlon in [-1, 0, 1] {
                if dlat == 0 && dlon == 0 {
                    continue;
                }
                let lon = (lon0 + dlon - lon_min).rem_euclid(lon_span) + lon_min;
                cells.push(Cell {
                    level,
                    lat: AxisLabel::from_ordinal(lat, level),
                    lon: AxisLabel::from_ordinal(lon, level),
                });
            }
        }
        cells
    }

    /// The raw-coordinate box `([lat_lo, lat_hi), [lon_lo, lon_hi))` of points in this cell.
    pub fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        (
            self.lat.bounds(self.level, Axis::Latitude),
            self.lon.bounds(self.level, Axis::Longitude),
        )
    }

    /// The centre of the cell's box.
    pub fn centre(&self) -> (f64, f64) {
        let ((lat_lo, lat_hi), (lon_lo, lon_hi)) = self.bounds();
        ((lat_lo + lat_hi) / 2.0, (lon_lo + lon_hi) / 2.0)
    }

    /// How far a point lies outside this cell, in metres (0 inside). An equirectangular
    /// approximation: exact enough for the tens of metres hysteresis works with.
    pub fn distance_outside_m(&self, point: Point) -> f64 {
        let ((lat_lo, lat_hi), (lon_lo, lon_hi)) = self.bounds();
        let outside = |v: f64, lo: f64, hi: f64| (lo - v).max(v - hi).max(0.0);
        let dlat = outside(point.lat(), lat_lo, lat_hi);
        let dlon = outside(point.lon(), lon_lo, lon_hi);
        let dy = dlat * METRES_PER_DEGREE;
        let dx = dlon * METRES_PER_DEGREE * point.lat().to_radians().cos();
        dy.hypot(dx)
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {},{}",
            self.level,
            self.lat_label(),
            self.lon_label()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell(level: Level, lat: &str, lon: &str) -> Cell {
        Cell::from_labels(level, lat, lon).expect("valid labels")
    }

    fn labels(cells: &[Cell]) -> Vec<String> {
        cells
            .iter()
            .map(|c| format!("{},{}", c.lat_label(), c.lon_label()))
            .collect()
    }

    #[test]
    fn containing_labels_every_level() {
        let point = Point::new(48.853, -2.341).unwrap();
        let umap = Cell::containing(point, Level::Umap).unwrap();
        assert_eq!(
            (umap.lat_label(), umap.lon_label()),
            ("48.85".into(), "-2.34".into())
        );
        let sector = Cell::containing(point, Level::Sector).unwrap();
        assert_eq!(
            (sector.lat_label(), sector.lon_label()),
            ("48.8".into(), "-2.3".into())
        );
        assert_eq!(
            umap.parent(Level::Region),
            Cell::containing(point, Level::Region).unwrap()
        );
        assert_eq!(umap.parent(Level::Sector), sector);
        assert_eq!(sector.parent(Level::Umap), sector);
    }

    #[test]
    fn keyless_strip_has_no_umap_but_has_sector_and_region() {
        let equator = Point::new(0.003, 10.0).unwrap();
        assert_eq!(
            Cell::containing(equator, Level::Umap),
            Err(GeoError::KeylessStrip {
                axis: Axis::Latitude
            })
        );
        let greenwich = Point::new(51.5, 0.004).unwrap();
        assert_eq!(
            Cell::containing(greenwich, Level::Umap),
            Err(GeoError::KeylessStrip {
                axis: Axis::Longitude
            })
        );
        assert_eq!(
            Cell::containing(equator, Level::Sector)
                .unwrap()
                .lat_label(),
            "0.0"
        );
        let south = Cell::containing(Point::new(-0.003, 10.0).unwrap(), Level::Umap).unwrap();
        assert_eq!(south.lat_label(), "-0.00");
    }

    #[test]
    fn neighbours_in_the_middle_of_nowhere() {
        let n = cell(Level::Umap, "48.85", "-2.34").neighbours();
        assert_eq!(
            labels(&n),
            [
                "48.86,-2.35",
                "48.86,-2.34",
                "48.86,-2.33",
                "48.85,-2.35",
                "48.85,-2.33",
                "48.84,-2.35",
                "48.84,-2.34",
                "48.84,-2.33"
            ]
        );
    }

    #[test]
    fn neighbours_across_zero_skip_the_keyless_label() {
        let n = cell(Level::Umap, "-0.00", "0.01").neighbours();
        assert_eq!(
            labels(&n),
            [
                "0.01,-0.00",
                "0.01,0.01",
                "0.01,0.02",
                "-0.00,-0.00",
                "-0.00,0.02",
                "-0.01,-0.00",
                "-0.01,0.01",
                "-0.01,0.02"
            ]
        );
        // SECTOR and REGION keep both signed zeros as distinct, adjacent cells.
        let s = cell(Level::Sector, "0.0", "-0.0").neighbours();
        assert_eq!(labels(&s)[..3], ["0.1,-0.1", "0.1,-0.0", "0.1,0.0"]);
        assert_eq!(labels(&s)[5..], ["-0.0,-0.1", "-0.0,-0.0", "-0.0,0.0"]);
        let r = cell(Level::Region, "-0", "0").neighbours();
        assert_eq!(labels(&r)[3..5], ["-0,-0", "-0,1"]);
    }

    #[test]
    fn neighbours_wrap_the_antimeridian() {
        let n = cell(Level::Umap, "10.00", "180.00").neighbours();
        assert_eq!(
            labels(&n)[..3],
            ["10.01,179.99", "10.01,180.00", "10.01,-180.00"]
        );
        let n = cell(Level::Region, "10", "-180").neighbours();
        assert_eq!(labels(&n)[3..5], ["10,180", "10,-179"]);
    }

    #[test]
    fn neighbours_stop_at_the_poles() {
        let north = cell(Level::Umap, "90.00", "5.00").neighbours();
        assert_eq!(
            labels(&north),
            [
                "90.00,4.99",
                "90.00,5.01",
                "89.99,4.99",
                "89.99,5.00",
                "89.99,5.01"
            ]
        );
        let south = cell(Level::Sector, "-90.0", "5.0").neighbours();
        assert_eq!(south.len(), 5);
        assert!(south.iter().all(|c| c.lat_label() != "-90.1"));
    }

    #[test]
    fn distance_outside_is_zero_inside_and_grows_outside() {
        let c = cell(Level::Umap, "48.85", "-2.34");
        assert_eq!(c.distance_outside_m(Point::new(48.85, -2.34).unwrap()), 0.0);
        let north = c.distance_outside_m(Point::new(48.856, -2.34).unwrap());
        assert!((north - 111.32).abs() < 0.5, "{north}");
        let east = c.distance_outside_m(Point::new(48.85, -2.334).unwrap());
        let expected = 0.001 * METRES_PER_DEGREE * 48.85f64.to_radians().cos();
        assert!((east - expected).abs() < 0.5, "{east} vs {expected}");
    }

    fn any_cell() -> impl Strategy<Value = Cell> {
        (
            prop::sample::select(Level::ALL.to_vec()),
            -90.0f64..=90.0,
            -180.0f64..=180.0,
        )
            .prop_filter_map("keyless strip", |(level, lat, lon)| {
                Cell::containing(Point::new(lat, lon).ok()?, level).ok()
            })
    }

    proptest! {
        #[test]
        fn a_point_is_inside_its_cell(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0) {
            let point = Point::new(lat, lon).unwrap();
            for level in Level::ALL {
                if let Ok(c) = Cell::containing(point, level) {
                    // Within floating-point noise of the [lo, hi) box.
                    prop_assert!(c.distance_outside_m(point) < 1e-6, "{} {} {}", c, lat, lon);
                }
            }
        }

        #[test]
        fn neighbourhood_is_symmetric_and_distinct(c in any_cell()) {
            let around = c.neighbours();
            prop_assert!(around.len() == 8 || around.len() == 5);
            let mut unique = around.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), around.len());
            for n in &around {
                prop_assert!(n != &c);
                prop_assert!(n.neighbours().contains(&c), "{} not around {}", c, n);
                // Every neighbour is a real, keyed label at its level.
                prop_assert_eq!(Cell::from_labels(n.level(), &n.lat_label(), &n.lon_label()), Ok(*n));
            }
        }

        #[test]
        fn neighbours_touch_the_cell(c in any_cell()) {
            // Each neighbour's box borders this one's (up to the antimeridian wrap), but for
            // the keyless UMAP strip at the equator (`0.00`, [0, 0.005)) that neighbours skip.
            let ((lat_lo, lat_hi), _) = c.bounds();
            for n in c.neighbours() {
                let ((nlo, nhi), _) = n.bounds();
                let across_equator = (nhi <= 0.0) != (lat_hi <= 0.0);
                let gap = if c.level() == Level::Umap && across_equator { 0.005 } else { 0.0 };
                prop_assert!(
                    nhi >= lat_lo - gap - 1e-9 && nlo <= lat_hi + gap + 1e-9,
                    "{} and {}", c, n
                );
            }
        }
    }
}
