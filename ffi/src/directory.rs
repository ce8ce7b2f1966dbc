//! The space list: live spaces and NIP-53 rooms from the app's relays, everywhere or in the
//! user's cell, with whether this core can play them.

use std::time::Duration;

use spaces_core::engine::discover::{self, Listing, Scope};
use spaces_core::engine::roam::cell_label;
use spaces_core::geo::{self, Cell};
use spaces_core::protocol::Transport;

use super::session::on_runtime;
use super::{GeoCell, SpacesError};

/// How a listed space carries its audio.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SpaceTransport {
    /// Ours: WebRTC over Nostr signaling. Playable.
    NostrSpaces,
    /// A Nests/Amethyst Media-over-QUIC server (its `streaming` URL). Not playable here.
    Moq {
        /// The server.
        url: String,
    },
    /// Another service (LiveKit, a web page). Not playable here.
    Service {
        /// Its URL.
        url: String,
    },
    /// Not announced.
    Unknown,
}

impl From<Transport> for SpaceTransport {
    fn from(transport: Transport) -> Self {
        match transport {
            Transport::NostrSpaces => Self::NostrSpaces,
            Transport::Moq { streaming, .. } => Self::Moq { url: streaming },
            Transport::Service(url) => Self::Service { url },
            Transport::Unknown => Self::Unknown,
        }
    }
}

/// One entry of the space list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SpaceListing {
    /// Its address (`30312:<host hex>:<id>`): what `SpaceSession.join` takes.
    pub address: String,
    /// Its name.
    pub name: String,
    /// A NIP-53 room's summary.
    pub summary: Option<String>,
    /// The host (hex key).
    pub host: String,
    /// Listeners whose presence (NIP-53, renewed every 2 minutes) points at it.
    pub listeners: u32,
    /// Whether this app can join it (ours, not a room whose audio is on another service).
    pub playable: bool,
    /// How its audio travels.
    pub transport: SpaceTransport,
    /// Cell labels ("LAT,LON") it is tagged with.
    pub cells: Vec<String>,
    /// When it was created or last updated, Unix seconds.
    pub created_at: u64,
}

impl From<Listing> for SpaceListing {
    fn from(listing: Listing) -> Self {
        Self {
            address: listing.space.room_address(),
            name: listing.name.clone(),
            summary: listing.summary.clone(),
            host: listing.space.host().to_hex(),
            listeners: u32::try_from(listing.listeners).unwrap_or(u32::MAX),
            playable: listing.playable(),
            cells: listing.cells.clone(),
            created_at: listing.created_at.as_secs(),
            transport: listing.transport.into(),
        }
    }
}

/// Live spaces and rooms on `relays`, newest first: all of them, or those tagged with `cell`
/// (an UMAP cell: its label or its GeoKey) when given; created or updated within
/// `within_secs`. Waits up to `timeout_ms` for each relay's stored events.
#[uniffi::export]
pub async fn browse_spaces(
    relays: Vec<String>,
    cell: Option<GeoCell>,
    within_secs: u64,
    timeout_ms: u64,
) -> Result<Vec<SpaceListing>, SpacesError> {
    if relays.is_empty() {
        return Err(SpacesError::InvalidSettings {
            reason: "no relay to browse".into(),
        });
    }
    let scope = match cell {
        None => Scope::Everywhere,
        Some(cell) => {
            let cell = Cell::try_from(&cell)?;
            let key = geo::GeoKeyring::origin().key(&cell)?;
            Scope::Cell {
                label: cell_label(&cell),
                geokey: key.keys().public_key(),
            }
        }
    };
    let (within, timeout) = (
        Duration::from_secs(within_secs),
        Duration::from_millis(timeout_ms),
    );
    let listings =
        on_runtime(async move { discover::browse(&relays, &scope, within, timeout).await })
            .await??;
    Ok(listings.into_iter().map(SpaceListing::from).collect())
}
