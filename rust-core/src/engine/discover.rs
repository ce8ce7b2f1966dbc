//! Finding spaces: our CREATE_SPACE events and NIP-53 rooms, everywhere or tagged with a
//! cell's label (`#g`) or GeoKey (`#p`), minus those already closed, with the listeners their
//! presence events count.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use nostr::prelude::{Alphabet, Filter, PublicKey, SingleLetterTag, Timestamp};

use super::EngineError;
use crate::protocol::filter::{cell_filters, discovery_filter};
use crate::protocol::{
    Limits, Message, Parser, RoomStatus, SpaceKind, SpaceRef, Transport, VerifiedEvent,
};
use crate::signaling::{Incoming, PoolOptions, RelayPool};

/// A space found in a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSpace {
    /// Which space.
    pub space: SpaceRef,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its host made it a crowd ([`Listing::crowd`]).
    pub crowd: bool,
}

/// Our spaces tagged with `cell_label` ("LAT,LON") or `geokey`, live and created within
/// `within`, newest first: the spaces auto-join can enter. Waits for every connected relay's
/// stored events, at most `timeout`.
pub async fn spaces_in_cell(
    relays: &[String],
    cell_label: &str,
    geokey: &PublicKey,
    within: Duration,
    timeout: Duration,
) -> Result<Vec<CellSpace>, EngineError> {
    let scope = Scope::Cell {
        label: cell_label.to_owned(),
        geokey: *geokey,
    };
    let listings = browse_with(relays, &scope, within, timeout, false).await?;
    Ok(listings
        .into_iter()
        .filter(Listing::playable)
        .map(|l| CellSpace {
            space: l.space,
            name: l.name,
            created_at: l.created_at,
            crowd: l.crowd,
        })
        .collect())
}

/// Where to look for spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every space the relays hold: ours (by their `t` tag) and every NIP-53 room.
    Everywhere,
    /// The spaces and rooms tagged with a cell: its label ("LAT,LON", `#g`) or its GeoKey
    /// (`#p`).
    Cell {
        /// The cell's label.
        label: String,
        /// The cell's GeoKey.
        geokey: PublicKey,
    },
}

/// A live space or NIP-53 room, as a space list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Which space (a NIP-53 room's host and `d`).
    pub space: SpaceRef,
    /// Its name (a room's title).
    pub name: String,
    /// A room's summary.
    pub summary: Option<String>,
    /// How its audio travels: only [`Transport::NostrSpaces`] can be played by this core.
    pub transport: Transport,
    /// Members whose NIP-53 presence points at it, seen within the last 5 minutes (presence
    /// is renewed every 2), the host not counted.
    pub listeners: usize,
    /// The cell labels it is tagged with.
    pub cells: Vec<String>,
    /// When it was created (a room: its last update).
    pub created_at: Timestamp,
    /// Its host's CREATE says it is a crowd (`["view","crowd"]`): the host's outputs are
    /// long taken, so a newcomer gains nothing by asking the host for a seat before reading
    /// the space ([`crate::engine::SessionConfig::ask_host_first`]).
    pub crowd: bool,
}

impl Listing {
    /// Whether this core can join it: one of ours, not a room whose audio is elsewhere (a
    /// Nests MoQ relay, LiveKit).
    pub fn playable(&self) -> bool {
        self.transport == Transport::NostrSpaces
    }
}

/// How long a presence counts someone as in a space: presence is renewed every 2 minutes.
const PRESENCE_FRESH: Duration = Duration::from_secs(300);

/// Live spaces and rooms in `scope`, created or updated within `within`, newest first, with
/// their listener counts. Waits for every connected relay's stored events, at most `timeout`
/// per query (three: the spaces, their closes, their presence).
pub async fn browse(
    relays: &[String],
    scope: &Scope,
    within: Duration,
    timeout: Duration,
) -> Result<Vec<Listing>, EngineError> {
    browse_with(relays, scope, within, timeout, true).await
}

async fn browse_with(
    relays: &[String],
    scope: &Scope,
    within: Duration,
    timeout: Duration,
    count_listeners: bool,
) -> Result<Vec<Listing>, EngineError> {
    let options = PoolOptions {
        connect_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    };
    let (pool, mut rx) = RelayPool::connect(relays, options).await?;
    let result = gather(&pool, &mut rx, scope, within, timeout, count_listeners).await;
    pool.shutdown().await;
    result
}

fn ago(span: Duration) -> Timestamp {
    Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(span.as_secs()))
}

async fn gather(
    pool: &RelayPool,
    rx: &mut tokio::sync::mpsc::Receiver<Incoming>,
    scope: &Scope,
    within: Duration,
    timeout: Duration,
    count_listeners: bool,
) -> Result<Vec<Listing>, EngineError> {
    let since = Some(ago(within));
    let filters = match scope {
        Scope::Everywhere => discovery_filter(since).to_vec(),
        Scope::Cell { label, geokey } => cell_filters(label, geokey, since).to_vec(),
    };
    let parser = Parser::new(Limits::default(), None, None);
    let mut found: HashMap<SpaceRef, Listing> = HashMap::new();
    let mut ended: Vec<SpaceRef> = Vec::new();
    for event in collect(pool, rx, filters, timeout).await? {
        let Ok(parsed) = parser.parse_verified(&event, Timestamp::now()) else {
            continue;
        };
        match parsed.message {
            Message::Create(info) => {
                // The CREATE names our space; a room mirror of it adds nothing but a summary.
                let listing = found.entry(parsed.space.clone()).or_insert(Listing {
                    space: parsed.space,
                    name: String::new(),
                    summary: None,
                    transport: Transport::NostrSpaces,
                    listeners: 0,
                    cells: Vec::new(),
                    created_at: parsed.created_at,
                    crowd: false,
                });
                // A space becomes a crowd once and stays one; relays may hand its CREATEs
                // over in any order.
                listing.crowd |= info.crowd;
                listing.name = info.name;
                listing.cells = info.cells;
                listing.transport = Transport::NostrSpaces;
                listing.created_at = parsed.created_at;
            }
            Message::Room(room) if room.status == RoomStatus::Ended => ended.push(parsed.space),
            Message::Room(room) => {
                let listing = found.entry(parsed.space.clone()).or_insert(Listing {
                    space: parsed.space,
                    name: room.title.clone(),
                    summary: None,
                    transport: room.transport.clone(),
                    listeners: 0,
                    cells: room.cells.clone(),
                    created_at: parsed.created_at,
                    crowd: false,
                });
                listing.summary = room.summary;
                if room.transport == Transport::NostrSpaces {
                    listing.transport = Transport::NostrSpaces;
                }
            }
            _ => {}
        }
    }
    if !found.is_empty() {
        let ids: Vec<String> = found.keys().map(|s| s.id().to_owned()).collect();
        let closes = Filter::new()
            .kind(SpaceKind::CloseSpace.kind())
            .custom_tags(SingleLetterTag::lowercase(Alphabet::S), ids);
        for event in collect(pool, rx, vec![closes], timeout).await? {
            if let Ok(parsed) = parser.parse_verified(&event, Timestamp::now()) {
                // Only the host's CLOSE counts.
                if parsed.message == Message::Close && parsed.author == *parsed.space.host() {
                    ended.push(parsed.space);
                }
            }
        }
    }
    found.retain(|space, _| !ended.contains(space));
    if count_listeners && !found.is_empty() {
        let addresses: Vec<String> = found.keys().map(SpaceRef::room_address).collect();
        let presence = Filter::new()
            .kind(SpaceKind::Nip53Presence.kind())
            .custom_tags(SingleLetterTag::lowercase(Alphabet::A), addresses)
            .since(ago(PRESENCE_FRESH));
        let mut present: HashMap<SpaceRef, HashSet<PublicKey>> = HashMap::new();
        for event in collect(pool, rx, vec![presence], timeout).await? {
            let Ok(parsed) = parser.parse_verified(&event, Timestamp::now()) else {
                continue;
            };
            if let Message::Presence(p) = parsed.message
                && !p.leaving
                && parsed.author != *parsed.space.host()
            {
                present
                    .entry(parsed.space)
                    .or_default()
                    .insert(parsed.author);
            }
        }
        for (space, listing) in &mut found {
            listing.listeners = present.get(space).map_or(0, HashSet::len);
        }
    }
    let mut live: Vec<Listing> = found.into_values().collect();
    live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.space.cmp(&b.space)));
    Ok(live)
}

/// Subscribes, gathers stored events until every connected relay said EOSE, unsubscribes.
async fn collect(
    pool: &RelayPool,
    rx: &mut tokio::sync::mpsc::Receiver<Incoming>,
    filters: Vec<Filter>,
    timeout: Duration,
) -> Result<Vec<VerifiedEvent>, EngineError> {
    let id = pool.subscribe(filters).await?;
    let mut waiting = pool.connected().await.len().max(1);
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while waiting > 0 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Incoming::Event { event, .. })) => events.push(event),
            Ok(Some(Incoming::EndOfStored { subscription, .. })) if subscription == id => {
                waiting -= 1
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    pool.unsubscribe(&id).await;
    Ok(events)
}
