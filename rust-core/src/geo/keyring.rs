//! A bounded cache of derived GeoKeys, so the current cell's keys cost nothing to re-derive.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use super::{Cell, GeoError, GeoKey, Level, ORIGIN_NAMESPACE, Point, Scheme};

/// Cells kept by default: the current cell and its 8 neighbours at all three levels, twice.
pub const DEFAULT_CAPACITY: usize = 54;

/// Derives GeoKeys for one scheme and namespace, remembering the most recent ones.
///
/// Thread-safe. A miss runs scrypt outside the lock, so one slow derivation never blocks
/// lookups of keys already cached.
pub struct GeoKeyring {
    scheme: Scheme,
    namespace: String,
    cache: Mutex<LruCache<Cell, Arc<GeoKey>>>,
}

impl GeoKeyring {
    /// A keyring holding up to `capacity` keys (at least one).
    pub fn new(scheme: Scheme, namespace: impl Into<String>, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            scheme,
            namespace: namespace.into(),
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The public ORIGIN network with the UPlanet scheme and the default capacity.
    pub fn origin() -> Self {
        Self::new(Scheme::Uplanet, ORIGIN_NAMESPACE, DEFAULT_CAPACITY)
    }

    /// The scheme keys are derived with.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The namespace keys are derived in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key of a cell, from the cache or freshly derived.
    pub fn key(&self, cell: &Cell) -> Result<Arc<GeoKey>, GeoError> {
        if let Some(hit) = self.lock().get(cell) {
            return Ok(Arc::clone(hit));
        }
        let key = Arc::new(GeoKey::derive(cell, self.scheme, &self.namespace)?);
        self.lock().put(*cell, Arc::clone(&key));
        Ok(key)
    }

    /// The UMAP, SECTOR and REGION keys of a point, in that order.
    pub fn keys_at(&self, point: Point) -> Result<Vec<Arc<GeoKey>>, GeoError> {
        Level::ALL
            .iter()
            .map(|&level| self.key(&Cell::containing(point, level)?))
            .collect()
    }

    /// Number of keys currently cached.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Cell, Arc<GeoKey>>> {
        // The cache holds no invariant a panicking holder could break: keep using it.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lookup_is_served_from_the_cache() {
        let ring = GeoKeyring::new(Scheme::Nip101, ORIGIN_NAMESPACE, 4);
        let cell = Cell::from_labels(Level::Umap, "43.60", "1.44").unwrap();
        let first = ring.key(&cell).unwrap();
        let second = ring.key(&cell).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(ring.cached(), 1);
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recent() {
        let ring = GeoKeyring::new(Scheme::Nip101, ORIGIN_NAMESPACE, 2);
        let cells: Vec<Cell> = ["1.01", "1.02", "1.03"]
            .iter()
            .map(|lat| Cell::from_labels(Level::Umap, lat, "1.00").unwrap())
            .collect();
        let first = ring.key(&cells[0]).unwrap();
        ring.key(&cells[1]).unwrap();
        ring.key(&cells[2]).unwrap();
        assert_eq!(ring.cached(), 2);
        let again = ring.key(&cells[0]).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &again),
            "evicted key must be derived anew"
        );
        assert_eq!(first.pubkey_hex(), again.pubkey_hex());
    }

    #[test]
    fn keys_at_a_point_are_umap_sector_region() {
        let ring = GeoKeyring::origin();
        let keys = ring.keys_at(Point::new(43.6047, 1.4442).unwrap()).unwrap();
        let levels: Vec<Level> = keys.iter().map(|k| k.cell().level()).collect();
        assert_eq!(levels, Level::ALL);
        assert_eq!(
            keys[0].pubkey_hex(),
            "0c8c06d0e47db9b6cc05f28d53440abcca5c3de9b52ec78fe008c1976d392032"
        );
        assert_eq!(
            ring.keys_at(Point::new(0.001, 1.0).unwrap()).unwrap_err(),
            GeoError::KeylessStrip {
                axis: crate::geo::Axis::Latitude
            }
        );
    }
}
