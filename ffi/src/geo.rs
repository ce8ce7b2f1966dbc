//! GeoKeys, cells and cell tracking for the apps.

use std::sync::{Arc, Mutex, PoisonError};

use super::SpacesError;
use spaces_core::geo::{self, Cell, GeoKey, Level, Point, Scheme};

/// A grid level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GeoLevel {
    /// 0.01° cells.
    Umap,
    /// 0.1° cells.
    Sector,
    /// 1° cells.
    Region,
}

impl From<GeoLevel> for Level {
    fn from(level: GeoLevel) -> Self {
        match level {
            GeoLevel::Umap => Level::Umap,
            GeoLevel::Sector => Level::Sector,
            GeoLevel::Region => Level::Region,
        }
    }
}

impl From<Level> for GeoLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Umap => GeoLevel::Umap,
            Level::Sector => GeoLevel::Sector,
            Level::Region => GeoLevel::Region,
        }
    }
}

/// A GeoKey derivation scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyScheme {
    /// Bit-exact with UPlanet's deployed keygen (the default everywhere).
    Uplanet,
    /// The NIP-101 text's `sha256(namespace + lat + lon)`.
    Nip101,
}

impl From<KeyScheme> for Scheme {
    fn from(scheme: KeyScheme) -> Self {
        match scheme {
            KeyScheme::Uplanet => Scheme::Uplanet,
            KeyScheme::Nip101 => Scheme::Nip101,
        }
    }
}

/// A grid cell by its labels, e.g. UMAP `48.85`, `-2.34`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GeoCell {
    /// The cell's level.
    pub level: GeoLevel,
    /// Latitude label.
    pub lat_label: String,
    /// Longitude label.
    pub lon_label: String,
}

impl From<Cell> for GeoCell {
    fn from(cell: Cell) -> Self {
        Self {
            level: cell.level().into(),
            lat_label: cell.lat_label(),
            lon_label: cell.lon_label(),
        }
    }
}

impl TryFrom<&GeoCell> for Cell {
    type Error = SpacesError;
    fn try_from(cell: &GeoCell) -> Result<Self, SpacesError> {
        Ok(Cell::from_labels(
            cell.level.into(),
            &cell.lat_label,
            &cell.lon_label,
        )?)
    }
}

/// A cell's public key and the strings it was derived from. Secrets are only handed out
/// by [`GeoKeyring::nsec_of`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GeoKeyInfo {
    /// The cell.
    pub cell: GeoCell,
    /// The scheme used.
    pub scheme: KeyScheme,
    /// scrypt salt (UPlanet scheme).
    pub salt: Option<String>,
    /// scrypt password (UPlanet scheme).
    pub pepper: Option<String>,
    /// Hashed seed (NIP-101 scheme).
    pub seed: Option<String>,
    /// x-only public key, 64 lower-case hex characters.
    pub pubkey: String,
    /// NIP-19 npub.
    pub npub: String,
}

impl From<&GeoKey> for GeoKeyInfo {
    fn from(key: &GeoKey) -> Self {
        let (salt, pepper, seed) = key.seed().parts();
        Self {
            cell: (*key.cell()).into(),
            scheme: match key.scheme() {
                Scheme::Uplanet => KeyScheme::Uplanet,
                Scheme::Nip101 => KeyScheme::Nip101,
            },
            salt,
            pepper,
            seed,
            pubkey: key.pubkey_hex(),
            npub: key.npub(),
        }
    }
}

/// The public ORIGIN namespace (64 `0` characters).
#[uniffi::export]
pub fn origin_namespace() -> String {
    geo::ORIGIN_NAMESPACE.to_owned()
}

/// The cell holding a position at a level.
#[uniffi::export]
pub fn cell_at(lat: f64, lon: f64, level: GeoLevel) -> Result<GeoCell, SpacesError> {
    Ok(Cell::containing(Point::new(lat, lon)?, level.into())?.into())
}

/// The up-to-8 cells around a cell (5 at a pole), in the order NW, N, NE, W, E, SW, S, SE.
#[uniffi::export]
pub fn cell_neighbours(cell: &GeoCell) -> Result<Vec<GeoCell>, SpacesError> {
    let cell = Cell::try_from(cell)?;
    Ok(cell.neighbours().into_iter().map(GeoCell::from).collect())
}

/// Tags placing an event in a cell (labels only, never a raw position).
#[uniffi::export]
pub fn cell_location_tags(
    cell: &GeoCell,
    application: String,
) -> Result<Vec<Vec<String>>, SpacesError> {
    let cell = Cell::try_from(cell)?;
    Ok(geo::location_tags(&cell, &application)
        .into_iter()
        .map(|tag| tag.to_vec())
        .collect())
}

/// Derives and caches GeoKeys for one scheme and namespace. Derivation runs scrypt
/// (tens of milliseconds): call it off the UI thread.
#[derive(uniffi::Object)]
pub struct GeoKeyring {
    inner: geo::GeoKeyring,
}

#[uniffi::export]
impl GeoKeyring {
    /// A keyring; `namespace` `null` means the public ORIGIN network. `capacity` bounds
    /// the cache (0 is treated as 1).
    #[uniffi::constructor]
    pub fn new(scheme: KeyScheme, namespace: Option<String>, capacity: u32) -> Arc<Self> {
        let namespace = namespace.unwrap_or_else(origin_namespace);
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Arc::new(Self {
            inner: geo::GeoKeyring::new(scheme.into(), namespace, capacity),
        })
    }

    /// The key of the cell holding a position.
    pub fn key_at(&self, lat: f64, lon: f64, level: GeoLevel) -> Result<GeoKeyInfo, SpacesError> {
        let cell = Cell::containing(Point::new(lat, lon)?, level.into())?;
        Ok(self.inner.key(&cell)?.as_ref().into())
    }

    /// The UMAP, SECTOR and REGION keys of a position, in that order.
    pub fn keys_at(&self, lat: f64, lon: f64) -> Result<Vec<GeoKeyInfo>, SpacesError> {
        let keys = self.inner.keys_at(Point::new(lat, lon)?)?;
        Ok(keys.iter().map(|key| key.as_ref().into()).collect())
    }

    /// The key of a cell given by its labels.
    pub fn key_of(&self, cell: &GeoCell) -> Result<GeoKeyInfo, SpacesError> {
        Ok(self.inner.key(&Cell::try_from(cell)?)?.as_ref().into())
    }

    /// The cell's secret as an nsec, to sign as the cell. Anyone with the namespace can
    /// derive it: a GeoKey signature is a rendezvous, never an authority.
    pub fn nsec_of(&self, cell: &GeoCell) -> Result<String, SpacesError> {
        Ok(self.inner.key(&Cell::try_from(cell)?)?.nsec())
    }

    /// `["p", hex]` tags of the UMAP, SECTOR and REGION keys of a position.
    pub fn p_tags_at(&self, lat: f64, lon: f64) -> Result<Vec<Vec<String>>, SpacesError> {
        let keys = self.inner.keys_at(Point::new(lat, lon)?)?;
        Ok(geo::geokey_p_tags(keys.iter().map(Arc::as_ref))
            .into_iter()
            .map(|tag| tag.to_vec())
            .collect())
    }

    /// Number of keys in the cache.
    pub fn cached(&self) -> u32 {
        u32::try_from(self.inner.cached()).unwrap_or(u32::MAX)
    }
}

/// Tuning of a [`CellTracker`]; start from [`default_tracker_settings`].
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct TrackerSettings {
    /// Level of the cells tracked.
    pub level: GeoLevel,
    /// Metres beyond the cell edge (after the fix's accuracy) that move at once.
    pub margin_m: f64,
    /// Milliseconds of fixes in one other cell that move without the margin.
    pub dwell_ms: u64,
    /// Fixes less accurate than this are refused.
    pub max_accuracy_m: f64,
}

/// The recommended tracker settings: UMAP, 50 m margin, 20 s dwell, 150 m accuracy.
#[uniffi::export]
pub fn default_tracker_settings() -> TrackerSettings {
    let config = geo::TrackerConfig::default();
    TrackerSettings {
        level: config.level.into(),
        margin_m: config.margin_m,
        dwell_ms: config.dwell_ms,
        max_accuracy_m: config.max_accuracy_m,
    }
}

impl TryFrom<TrackerSettings> for geo::TrackerConfig {
    type Error = SpacesError;

    fn try_from(settings: TrackerSettings) -> Result<Self, SpacesError> {
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        if !finite(settings.margin_m) || !finite(settings.max_accuracy_m) {
            return Err(SpacesError::InvalidSettings {
                reason: format!(
                    "margin {} m and max accuracy {} m must be finite and non-negative",
                    settings.margin_m, settings.max_accuracy_m
                ),
            });
        }
        Ok(geo::TrackerConfig {
            level: settings.level.into(),
            margin_m: settings.margin_m,
            dwell_ms: settings.dwell_ms,
            max_accuracy_m: settings.max_accuracy_m,
        })
    }
}

impl From<GpsFix> for geo::Fix {
    fn from(fix: GpsFix) -> Self {
        geo::Fix {
            lat: fix.lat,
            lon: fix.lon,
            accuracy_m: fix.accuracy_m,
            time_ms: fix.time_ms,
        }
    }
}

/// A position report from the platform.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct GpsFix {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Accuracy radius in metres.
    pub accuracy_m: f64,
    /// When the fix was taken, in milliseconds.
    pub time_ms: u64,
}

/// The user moved to another cell.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CellMove {
    /// The previous cell, `null` on the first fix.
    pub from: Option<GeoCell>,
    /// The new cell.
    pub to: GeoCell,
}

/// Follows the user's current cell from GPS fixes, with hysteresis at cell edges.
#[derive(uniffi::Object)]
pub struct CellTracker {
    inner: Mutex<geo::CellTracker>,
}

#[uniffi::export]
impl CellTracker {
    /// A tracker with no current cell. Margin and accuracy bound must be finite and
    /// non-negative.
    #[uniffi::constructor]
    pub fn new(settings: TrackerSettings) -> Result<Arc<Self>, SpacesError> {
        let config = geo::TrackerConfig::try_from(settings)?;
        Ok(Arc::new(Self {
            inner: Mutex::new(geo::CellTracker::new(config)),
        }))
    }

    /// Feeds a fix; returns the move it causes, if any. A refused fix changes nothing.
    pub fn update(&self, fix: GpsFix) -> Result<Option<CellMove>, SpacesError> {
        let change = self.lock().update(fix.into())?;
        Ok(change.map(|c| CellMove {
            from: c.from.map(GeoCell::from),
            to: c.to.into(),
        }))
    }

    /// The current cell, once a fix has placed the user.
    pub fn current(&self) -> Option<GeoCell> {
        self.lock().current().map(GeoCell::from)
    }
}

impl CellTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, geo::CellTracker> {
        // A tracker's state stays consistent between calls; a panic elsewhere cannot break it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
