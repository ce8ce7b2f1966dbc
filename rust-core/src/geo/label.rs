//! Coordinates and their cell labels, formatted exactly as UPlanet's `makecoord` does.
//!
//! A label is kept as a sign and an integer magnitude in the level's unit (hundredths,
//! tenths, degrees). Labels are never re-parsed through `f64`: that would lose `-0.00`
//! and turn `48.80` into `48.8`.

use super::{Axis, GeoError, Level};

/// A validated position: latitude in [-90, 90], longitude in [-180, 180], both finite.
///
/// Raw coordinates stay on the device; only labels of a chosen level are published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    lat: f64,
    lon: f64,
}

impl Point {
    /// Validates a position.
    pub fn new(lat: f64, lon: f64) -> Result<Self, GeoError> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(GeoError::InvalidLatitude(lat));
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(GeoError::InvalidLongitude(lon));
        }
        Ok(Self { lat, lon })
    }

    /// Parses a position from text with UPlanet's rules: `-?(digits[.digits]|.digits)`,
    /// no `+`, exponent or spaces (`makecoord` rejects those, so accepting them would
    /// produce keys no other UPlanet tool produces).
    pub fn parse(lat: &str, lon: &str) -> Result<Self, GeoError> {
        Self::new(
            parse_decimal(lat, Axis::Latitude)?,
            parse_decimal(lon, Axis::Longitude)?,
        )
    }

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        self.lon
    }
}

fn parse_decimal(text: &str, axis: Axis) -> Result<f64, GeoError> {
    let malformed = || GeoError::MalformedCoordinate {
        axis,
        text: text.to_owned(),
    };
    let body = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(int) && digits(frac)) || (int.is_empty() && frac.is_empty()) {
        return Err(malformed());
    }
    text.parse::<f64>().map_err(|_| malformed())
}

/// One axis of a cell label: its sign and its magnitude in the level's unit.
///
/// `-0.00`, `-0.0` and `-0` are labels of their own, distinct from their positive twins,
/// because UPlanet derives distinct keys for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AxisLabel {
    negative: bool,
    magnitude: u32,
}

impl AxisLabel {
    /// The UMAP label of a coordinate: C `printf("%.2f")` on the binary double
    /// (round half to even on the exact binary value, sign of zero kept). Rust's `{:.2}`
    /// is bit-for-bit the same, which the property tests check against libc.
    pub fn umap_of(value: f64) -> Self {
        let text = format!("{value:.2}");
        let negative = text.starts_with('-');
        // `{:.2}` of a finite |value| <= 180 is `-?\d+\.\d\d`: the digits fit in u32.
        let magnitude = text
            .bytes()
            .filter(u8::is_ascii_digit)
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
        Self {
            negative,
            magnitude,
        }
    }

    /// Builds a label from its parts.
    pub const fn new(negative: bool, magnitude: u32) -> Self {
        Self {
            negative,
            magnitude,
        }
    }

    /// True for labels written with a leading `-` (including `-0.00`).
    pub const fn is_negative(self) -> bool {
        self.negative
    }

    /// Magnitude in units of the label's level.
    pub const fn magnitude(self) -> u32 {
        self.magnitude
    }

    /// The label of the enclosing cell at a coarser level: the same as cutting characters
    /// off the two-decimal string (`48.85` → `48.8` → `48`), sign kept.
    pub fn coarsen(self, from: Level, to: Level) -> Self {
        let shift = from.decimals().saturating_sub(to.decimals());
        Self {
            negative: self.negative,
            magnitude: self.magnitude / 10u32.pow(shift),
        }
    }

    /// Formats the label at a level: `-2.34`, `-2.3`, `-2`.
    pub fn format(self, level: Level) -> String {
        let sign = if self.negative { "-" } else { "" };
        let m = self.magnitude;
        match level {
            Level::Umap => format!("{sign}{}.{:02}", m / 100, m % 100),
            Level::Sector => format!("{sign}{}.{}", m / 10, m % 10),
            Level::Region => format!("{sign}{m}"),
        }
    }

    /// Reads a canonical label (`-?(0|[1-9]\d*)` then exactly the level's decimals).
    pub fn parse(text: &str, level: Level, axis: Axis) -> Result<Self, GeoError> {
        let invalid = || GeoError::InvalidLabel {
            axis,
            level,
            label: text.to_owned(),
        };
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) if level.decimals() > 0 => (i, f),
            None if level.decimals() == 0 => (body, ""),
            _ => return Err(invalid()),
        };
        let canonical_int = !int.is_empty() && (int == "0" || !int.starts_with('0'));
        let all_digits = int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
        if !canonical_int || !all_digits || frac.len() != level.decimals() as usize || int.len() > 3
        {
            return Err(invalid());
        }
        let magnitude = int
            .bytes()
            .chain(frac.bytes())
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
        let label = Self {
            negative,
            magnitude,
        };
        if magnitude > Self::max_magnitude(level, axis) || !label.is_valid(level) {
            return Err(invalid());
        }
        Ok(label)
    }

    /// Largest magnitude on an axis at a level (`90.00` → 9000).
    pub fn max_magnitude(level: Level, axis: Axis) -> u32 {
        axis.max_degrees() * 10u32.pow(level.decimals())
    }

    /// `0.00` is the one label `makecoord` refuses; every other in-range label has a key.
    pub fn is_valid(self, level: Level) -> bool {
        !(level == Level::Umap && !self.negative && self.magnitude == 0)
    }

    /// Position of the label along its axis, with no gaps: consecutive cells differ by one.
    ///
    /// Negative labels `-m` sit at `-(m + 1)`, so `-0.0` and `0.0` are neighbours; at UMAP
    /// level the keyless `0.00` is skipped, so the row runs `0.01`, `-0.00`, `-0.01`.
    pub(crate) fn ordinal(self, level: Level) -> i64 {
        let m = i64::from(self.magnitude);
        if self.negative {
            -m - 1
        } else {
            m - Self::min_positive(level)
        }
    }

    /// Inverse of [`AxisLabel::ordinal`].
    pub(crate) fn from_ordinal(ordinal: i64, level: Level) -> Self {
        if ordinal < 0 {
            Self::new(true, u32::try_from(-ordinal - 1).unwrap_or(u32::MAX))
        } else {
            Self::new(
                false,
                u32::try_from(ordinal + Self::min_positive(level)).unwrap_or(u32::MAX),
            )
        }
    }

    /// Ordinals of the first and last cells on an axis at a level.
    pub(crate) fn ordinal_range(level: Level, axis: Axis) -> (i64, i64) {
        let max = Self::new(false, Self::max_magnitude(level, axis)).ordinal(level);
        let min = Self::new(true, Self::max_magnitude(level, axis)).ordinal(level);
        (min, max)
    }

    fn min_positive(level: Level) -> i64 {
        i64::from(level == Level::Umap)
    }

    /// The raw coordinates whose UMAP label falls in this cell, as `[low, high)`
    /// clipped to the axis. A UMAP label is the centre of its cell.
    pub fn bounds(self, level: Level, axis: Axis) -> (f64, f64) {
        const HALF_UMAP: f64 = 0.005;
        let unit = level.unit_degrees();
        let start = f64::from(self.magnitude) * unit;
        let max = f64::from(axis.max_degrees());
        if self.negative {
            (
                (-(start + unit - HALF_UMAP)).max(-max),
                (-start + HALF_UMAP).min(0.0),
            )
        } else {
            (
                (start - HALF_UMAP).max(0.0),
                (start + unit - HALF_UMAP).min(max),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// C `snprintf("%.2f")`, the reference UPlanet's `makecoord` relies on.
    fn c_format_2dp(value: f64) -> String {
        let mut buf = [0u8; 64];
        // SAFETY: the buffer is large enough for any `%.2f` of |value| <= 180 plus NUL,
        // and the format string is NUL-terminated and takes exactly one double.
        let n =
            unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.2f".as_ptr(), value) };
        String::from_utf8_lossy(&buf[..usize::try_from(n).unwrap_or(0)]).into_owned()
    }

    #[test]
    fn formatting_quirks_match_c_printf() {
        for (value, expected) in [
            (0.125, "0.12"),
            (48.125, "48.12"),
            (0.015, "0.01"),
            (1.005, "1.00"),
            (48.855, "48.85"),
            (-0.001, "-0.00"),
            (-0.0, "-0.00"),
            (48.796, "48.80"),
            (-180.0, "-180.00"),
        ] {
            assert_eq!(AxisLabel::umap_of(value).format(Level::Umap), expected);
            assert_eq!(c_format_2dp(value), expected);
        }
    }

    #[test]
    fn coarser_labels_are_cut_from_the_umap_string() {
        let cases = [
            (48.853, "48.8", "48"),
            (-2.341, "-2.3", "-2"),
            (-0.05, "-0.0", "-0"),
            (-0.34, "-0.3", "-0"),
            (0.34, "0.3", "0"),
            // Raw truncation would give 48.7; the label is cut from the rounded "48.80".
            (48.796, "48.8", "48"),
        ];
        for (value, sector, region) in cases {
            let umap = AxisLabel::umap_of(value);
            assert_eq!(
                umap.coarsen(Level::Umap, Level::Sector)
                    .format(Level::Sector),
                sector
            );
            assert_eq!(
                umap.coarsen(Level::Umap, Level::Region)
                    .format(Level::Region),
                region
            );
        }
    }

    #[test]
    fn parse_accepts_canonical_labels_only() {
        let ok = [
            ("48.85", Level::Umap),
            ("-0.00", Level::Umap),
            ("-0.0", Level::Sector),
            ("0.0", Level::Sector),
            ("-0", Level::Region),
            ("180", Level::Region),
        ];
        for (text, level) in ok {
            let label = AxisLabel::parse(text, level, Axis::Longitude).expect(text);
            assert_eq!(label.format(level), text);
        }
        let bad = [
            ("0.00", Level::Umap, Axis::Latitude),
            ("48.8", Level::Umap, Axis::Latitude),
            ("48.850", Level::Umap, Axis::Latitude),
            ("048.85", Level::Umap, Axis::Latitude),
            ("+48.85", Level::Umap, Axis::Latitude),
            ("90.01", Level::Umap, Axis::Latitude),
            ("181", Level::Region, Axis::Longitude),
            ("48.", Level::Region, Axis::Latitude),
            ("4a.85", Level::Umap, Axis::Latitude),
            ("", Level::Region, Axis::Latitude),
            ("-", Level::Region, Axis::Latitude),
            ("99999999999", Level::Region, Axis::Latitude),
        ];
        for (text, level, axis) in bad {
            assert!(
                matches!(
                    AxisLabel::parse(text, level, axis),
                    Err(GeoError::InvalidLabel { .. })
                ),
                "{text} should be refused at {level}"
            );
        }
    }

    #[test]
    fn points_are_validated() {
        assert!(matches!(
            Point::new(f64::NAN, 0.0),
            Err(GeoError::InvalidLatitude(_))
        ));
        assert!(matches!(
            Point::new(90.5, 0.0),
            Err(GeoError::InvalidLatitude(_))
        ));
        assert!(matches!(
            Point::new(0.0, -180.01),
            Err(GeoError::InvalidLongitude(_))
        ));
        assert!(matches!(
            Point::new(0.0, f64::INFINITY),
            Err(GeoError::InvalidLongitude(_))
        ));
        assert!(Point::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn text_coordinates_follow_makecoord_syntax() {
        assert!(Point::parse("48.853", "-2.341").is_ok());
        assert!(Point::parse(".5", "-.5").is_ok());
        assert!(Point::parse("48.", "2").is_ok());
        for (lat, lon) in [
            ("+48.8", "2"),
            ("4.88e1", "2"),
            ("1e-05", "2"),
            (" 48", "2"),
            ("48", "NaN"),
            ("48", "-"),
            ("48", "."),
        ] {
            assert!(
                matches!(
                    Point::parse(lat, lon),
                    Err(GeoError::MalformedCoordinate { .. })
                ),
                "{lat} {lon} should be refused"
            );
        }
        assert!(matches!(
            Point::parse("91", "0"),
            Err(GeoError::InvalidLatitude(_))
        ));
    }

    proptest! {
        #[test]
        fn umap_label_equals_libc_snprintf(value in -180.0f64..=180.0) {
            prop_assert_eq!(AxisLabel::umap_of(value).format(Level::Umap), c_format_2dp(value));
        }

        #[test]
        fn umap_label_equals_libc_on_binary_ties(k in -36_000i64..=36_000) {
            // x*100 = k + 1/2 exactly is where JS toFixed and naive rounding disagree.
            let value = (k as f64 + 0.5) / 200.0;
            prop_assert_eq!(AxisLabel::umap_of(value).format(Level::Umap), c_format_2dp(value));
        }

        #[test]
        fn coarsening_equals_string_cutting(value in -180.0f64..=180.0) {
            let umap = AxisLabel::umap_of(value).format(Level::Umap);
            let sector = AxisLabel::umap_of(value).coarsen(Level::Umap, Level::Sector);
            let region = AxisLabel::umap_of(value).coarsen(Level::Umap, Level::Region);
            prop_assert_eq!(sector.format(Level::Sector), &umap[..umap.len() - 1]);
            prop_assert_eq!(region.format(Level::Region), umap.split('.').next().unwrap_or(""));
        }

        #[test]
        fn labels_round_trip_through_text(negative: bool, magnitude in 0u32..=18_000) {
            let label = AxisLabel::new(negative, magnitude);
            prop_assume!(label.is_valid(Level::Umap));
            let text = label.format(Level::Umap);
            prop_assert_eq!(AxisLabel::parse(&text, Level::Umap, Axis::Longitude), Ok(label));
        }

        #[test]
        fn ordinals_round_trip(negative: bool, magnitude in 0u32..=1_800) {
            for level in Level::ALL {
                let label = AxisLabel::new(negative, magnitude);
                if label.is_valid(level) {
                    prop_assert_eq!(AxisLabel::from_ordinal(label.ordinal(level), level), label);
                }
            }
        }
    }
}
