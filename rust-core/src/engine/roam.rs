//! Auto-join by cell: GPS fixes in, the user in the live space of their current UMAP cell out.
//!
//! The cell tracker's hysteresis decides when the user has really moved; a move looks up the
//! new cell's spaces, leaves the old space politely (LEAVE, DROPs) and joins the newest live
//! space of the new cell, or opens one tagged with the cell when the user allows it. Spaces are always signed with the
//! device's own key: a GeoKey's secret is public and gives no authority.

use std::time::Duration;

use nostr::prelude::{Keys, PublicKey, Timestamp};

use super::discover::spaces_in_cell;
use super::{EngineError, Session, SessionConfig};
use crate::geo::{Cell, CellTracker, Fix, FixError, GeoError, GeoKeyring, TrackerConfig};
use crate::protocol::SpaceRef;

/// How roaming behaves.
#[derive(Debug, Clone)]
pub struct RoamConfig {
    /// Relays to discover and run spaces on.
    pub relays: Vec<String>,
    /// Open a space for a cell that has none.
    pub host_if_empty: bool,
    /// Hysteresis of cell changes.
    pub tracker: TrackerConfig,
    /// How old a space's CREATE may be and still count as possibly live.
    pub lookback: Duration,
    /// How long discovery waits for the relays' stored events.
    pub discovery_timeout: Duration,
}

impl Default for RoamConfig {
    fn default() -> Self {
        Self {
            relays: Vec::new(),
            host_if_empty: false,
            tracker: TrackerConfig::default(),
            lookback: Duration::from_secs(24 * 3600),
            discovery_timeout: Duration::from_secs(3),
        }
    }
}

/// Where a cell change put the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Listening in the cell's newest live space.
    Joined {
        /// The cell.
        cell: Cell,
        /// The space.
        space: SpaceRef,
        /// Its host made it a crowd: no seat is asked of the host before the space is read.
        crowd: bool,
    },
    /// Hosting a new space tagged with the cell.
    Hosting {
        /// The cell.
        cell: Cell,
        /// The space.
        space: SpaceRef,
    },
    /// No live space in the cell, and hosting was not allowed.
    Empty {
        /// The cell.
        cell: Cell,
    },
}

impl Placement {
    /// The cell the user is now in.
    pub fn cell(&self) -> &Cell {
        match self {
            Placement::Joined { cell, .. }
            | Placement::Hosting { cell, .. }
            | Placement::Empty { cell } => cell,
        }
    }

    /// The space to run there and the cell labels to tag it with (only when we open it);
    /// `None` in an empty cell.
    pub fn space_to_run(&self) -> Option<(SpaceRef, Vec<String>)> {
        match self {
            Placement::Joined { space, .. } => Some((space.clone(), Vec::new())),
            Placement::Hosting { space, cell } => Some((space.clone(), vec![cell_label(cell)])),
            Placement::Empty { .. } => None,
        }
    }

    /// Whether the session started here asks the host for a seat before reading the space
    /// ([`SessionConfig::ask_host_first`]): not in a space its host made a crowd.
    pub fn ask_host_first(&self) -> bool {
        !matches!(self, Placement::Joined { crowd: true, .. })
    }

    /// We opened the space.
    pub fn hosting(&self) -> bool {
        matches!(self, Placement::Hosting { .. })
    }
}

/// Why a fix could not be followed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoamError {
    /// The fix was refused; nothing changed.
    #[error(transparent)]
    Fix(#[from] FixError),
    /// The cell has no GeoKey (it cannot be looked up).
    #[error(transparent)]
    Geo(#[from] GeoError),
    /// Discovery or the session failed; the user is in no space now.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The `g` label of a cell as spaces are tagged with it: "LAT,LON".
pub fn cell_label(cell: &Cell) -> String {
    format!("{},{}", cell.lat_label(), cell.lon_label())
}

/// Decides where to be in `cell`: its newest live space, else (when allowed) a new space of
/// `host`'s tagged with the cell. Starts nothing.
pub async fn place(
    config: &RoamConfig,
    keyring: &GeoKeyring,
    host: &PublicKey,
    cell: Cell,
) -> Result<Placement, RoamError> {
    let label = cell_label(&cell);
    let geokey = keyring.key(&cell)?.keys().public_key();
    let live = spaces_in_cell(
        &config.relays,
        &label,
        &geokey,
        config.lookback,
        config.discovery_timeout,
    )
    .await?;
    tracing::info!(cell = %label, live = live.len(), "entered a cell");
    Ok(match live.first() {
        Some(found) => Placement::Joined {
            cell,
            space: found.space.clone(),
            crowd: found.crowd,
        },
        None if config.host_if_empty => {
            let id = format!("space-{}", Timestamp::now().as_secs());
            let space = SpaceRef::new(id, *host).map_err(EngineError::from)?;
            Placement::Hosting { cell, space }
        }
        None => Placement::Empty { cell },
    })
}

/// Decides, fix by fix, when the device entered another cell and where to be there. Starts
/// nothing: [`Roamer`] runs the sessions for the CLI, and the apps' roamer for the phones.
pub struct CellFollower {
    config: RoamConfig,
    tracker: CellTracker,
    keyring: GeoKeyring,
    host: PublicKey,
}

impl CellFollower {
    /// A follower in no cell yet; spaces it opens are `host`'s.
    pub fn new(config: RoamConfig, host: PublicKey) -> Self {
        Self {
            tracker: CellTracker::new(config.tracker),
            config,
            keyring: GeoKeyring::origin(),
            host,
        }
    }

    /// Feeds one fix. Returns where to be when the fix moved the device to another cell (or
    /// placed it for the first time); `None` when it stays. A refused fix changes nothing.
    /// The old cell's space may play on while the new cell's spaces are looked up.
    pub async fn fix(&mut self, fix: Fix) -> Result<Option<Placement>, RoamError> {
        let Some(change) = self.tracker.update(fix)? else {
            return Ok(None);
        };
        Ok(Some(
            place(&self.config, &self.keyring, &self.host, change.to).await?,
        ))
    }

    /// The current cell.
    pub fn cell(&self) -> Option<Cell> {
        self.tracker.current()
    }

    /// Forgets the cell: the next fix places the device afresh.
    pub fn reset(&mut self) {
        self.tracker = CellTracker::new(self.config.tracker);
    }
}

/// Follows the user from cell to cell. `make` builds a session's configuration for the
/// device's keys, a space and the cell labels to tag it with (when hosting); it opens the
/// audio devices, so it runs once per space.
pub struct Roamer<F> {
    follower: CellFollower,
    keys: Keys,
    make: F,
    session: Option<Session>,
}

impl<F> Roamer<F>
where
    F: FnMut(Keys, SpaceRef, Vec<String>) -> Result<SessionConfig, EngineError>,
{
    /// A roamer in no cell yet.
    pub fn new(config: RoamConfig, keys: Keys, make: F) -> Self {
        Self {
            follower: CellFollower::new(config, keys.public_key()),
            keys,
            make,
            session: None,
        }
    }

    /// Feeds one fix. Returns where the user is now when the fix moved them to another cell
    /// (or placed them for the first time); `None` when they stay.
    pub async fn fix(&mut self, fix: Fix) -> Result<Option<Placement>, RoamError> {
        let Some(placement) = self.follower.fix(fix).await? else {
            return Ok(None);
        };
        if let Some(session) = self.session.take() {
            session.stop().await;
        }
        let Some((space, cells)) = placement.space_to_run() else {
            return Ok(Some(placement));
        };
        let mut config = (self.make)(self.keys.clone(), space, cells)?;
        config.ask_host_first &= placement.ask_host_first();
        self.session = Some(Session::start(config).await?);
        Ok(Some(placement))
    }

    /// The session of the current cell, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The current cell.
    pub fn cell(&self) -> Option<Cell> {
        self.follower.cell()
    }

    /// Leaves the current space politely.
    pub async fn stop(mut self) {
        if let Some(session) = self.session.take() {
            session.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Level;

    #[test]
    fn a_session_placed_in_a_listed_crowd_asks_no_seat_of_its_host_first() {
        let cell = Cell::from_labels(Level::Umap, "48.85", "2.34").expect("a cell");
        let space = SpaceRef::new("s", Keys::generate().public_key()).expect("a space");
        let joined = |crowd| Placement::Joined {
            cell,
            space: space.clone(),
            crowd,
        };
        assert!(joined(false).ask_host_first());
        assert!(!joined(true).ask_host_first(), "its host is full");
    }
}
