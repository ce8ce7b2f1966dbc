//! Nostr tags that place an event in a cell without revealing the raw position.
//!
//! Only labels of the level the caller chose are written: the NIP suggests precise
//! `latitude`/`longitude` values, but a space's tags are public and long-lived.

use nostr::prelude::Tag;

use super::{Cell, GeoKey, Level};

/// The `application` tag value of UPlanet events.
pub const UPLANET_APPLICATION: &str = "UPlanet";

/// Geohash precision no finer than each level's cells (5: 0.044°, 4: 0.35°, 3: 1.4°).
fn geohash_precision(level: Level) -> usize {
    match level {
        Level::Umap => 5,
        Level::Sector => 4,
        Level::Region => 3,
    }
}

/// Tags that put an event in `cell`:
/// - NIP-101 `["latitude", label]`, `["longitude", label]`, `["application", app]`;
/// - `["g", "LAT,LON"]`, the form UPlanet clients filter `#g` on;
/// - `["g", geohash]` of the cell's centre at a precision no finer than the cell, the form
///   NIP-52 and geohash clients (Bitchat, Amethyst) use.
pub fn location_tags(cell: &Cell, application: &str) -> Vec<Tag> {
    let (lat, lon) = cell.centre();
    vec![
        Tag::custom("latitude", [cell.lat_label()]),
        Tag::custom("longitude", [cell.lon_label()]),
        Tag::custom("application", [application]),
        Tag::custom("g", [format!("{},{}", cell.lat_label(), cell.lon_label())]),
        Tag::custom("g", [geohash(lat, lon, geohash_precision(cell.level()))]),
    ]
}

/// `["p", hex]` tags naming GeoKeys, e.g. a point's UMAP, SECTOR and REGION keys.
pub fn geokey_p_tags<'a>(keys: impl IntoIterator<Item = &'a GeoKey>) -> Vec<Tag> {
    keys.into_iter()
        .map(|key| Tag::public_key(key.keys().public_key()))
        .collect()
}

/// Standard geohash (base32, longitude bit first; a point on a boundary goes north/east).
pub fn geohash(lat: f64, lon: f64, precision: usize) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (mut lat_lo, mut lat_hi) = (-90.0_f64, 90.0_f64);
    let (mut lon_lo, mut lon_hi) = (-180.0_f64, 180.0_f64);
    let lat = lat.clamp(lat_lo, lat_hi);
    let lon = lon.clamp(lon_lo, lon_hi);
    let mut out = String::with_capacity(precision);
    let mut even = true;
    for _ in 0..precision {
        let mut index = 0usize;
        for _ in 0..5 {
            let (value, lo, hi) = if even {
                (lon, &mut lon_lo, &mut lon_hi)
            } else {
                (lat, &mut lat_lo, &mut lat_hi)
            };
            let mid = (*lo + *hi) / 2.0;
            index <<= 1;
            if value >= mid {
                index |= 1;
                *lo = mid;
            } else {
                *hi = mid;
            }
            even = !even;
        }
        out.push(char::from(ALPHABET[index]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{ORIGIN_NAMESPACE, Point, Scheme};

    #[test]
    fn geohash_matches_the_reference_examples() {
        // The canonical example (Wikipedia / geohash.org): 42.6, -5.6 → ezs42.
        assert_eq!(geohash(42.6, -5.6, 5), "ezs42");
        assert_eq!(geohash(57.64911, 10.40744, 11), "u4pruydqqvj");
        assert_eq!(geohash(-90.0, -180.0, 3), "000");
        assert_eq!(geohash(90.0, 180.0, 3), "zzz");
    }

    #[test]
    fn location_tags_carry_labels_and_never_the_raw_point() {
        let point = Point::new(48.853_412, -2.341_198).unwrap();
        let cell = Cell::containing(point, Level::Sector).unwrap();
        let tags: Vec<Vec<String>> = location_tags(&cell, UPLANET_APPLICATION)
            .into_iter()
            .map(Tag::to_vec)
            .collect();
        assert_eq!(tags[0], ["latitude", "48.8"]);
        assert_eq!(tags[1], ["longitude", "-2.3"]);
        assert_eq!(tags[2], ["application", "UPlanet"]);
        assert_eq!(tags[3], ["g", "48.8,-2.3"]);
        assert_eq!(tags[4][0], "g");
        assert_eq!(tags[4][1].len(), 4);
        let all = format!("{tags:?}");
        for raw in ["48.853", "2.341", "48.85", "2.34"] {
            assert!(!all.contains(raw), "raw coordinate {raw} leaked: {all}");
        }
    }

    #[test]
    fn p_tags_name_each_geokey() {
        let point = Point::new(48.853, -2.341).unwrap();
        let keys: Vec<GeoKey> = Level::ALL
            .iter()
            .map(|&l| {
                GeoKey::derive(
                    &Cell::containing(point, l).unwrap(),
                    Scheme::Uplanet,
                    ORIGIN_NAMESPACE,
                )
                .unwrap()
            })
            .collect();
        let tags: Vec<Vec<String>> = geokey_p_tags(&keys).into_iter().map(Tag::to_vec).collect();
        assert_eq!(
            tags,
            keys.iter()
                .map(|k| vec!["p".to_owned(), k.pubkey_hex()])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            tags[0][1],
            "bc6be67a360d2fa09d253355b2874e8eb738dc3e539eb840674ee1b45a67b7e7"
        );
    }
}
