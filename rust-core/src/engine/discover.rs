//! Finding the spaces of a cell: CREATE_SPACE events tagged with the cell's label (`#g`) or
//! GeoKey (`#p`), minus those already closed.

use std::collections::HashMap;
use std::time::Duration;

use nostr::prelude::{Filter, PublicKey, Timestamp};

use super::EngineError;
use crate::protocol::filter::cell_filters;
use crate::protocol::{Limits, Message, Parser, RoomStatus, SpaceKind, SpaceRef, VerifiedEvent};
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
}

/// Live spaces tagged with `cell_label` ("LAT,LON") or `geokey`, created within `within`,
/// newest first. Waits for every connected relay's stored events, at most `timeout`.
pub async fn spaces_in_cell(
    relays: &[String],
    cell_label: &str,
    geokey: &PublicKey,
    within: Duration,
    timeout: Duration,
) -> Result<Vec<CellSpace>, EngineError> {
    let options = PoolOptions {
        connect_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    };
    let (pool, mut rx) = RelayPool::connect(relays, options).await?;
    let since = Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(within.as_secs()));
    let created = collect(
        &pool,
        &mut rx,
        cell_filters(cell_label, geokey, Some(since)).to_vec(),
        timeout,
    )
    .await?;
    let parser = Parser::new(Limits::default(), None, None);
    let mut found: HashMap<SpaceRef, CellSpace> = HashMap::new();
    let mut ended: Vec<SpaceRef> = Vec::new();
    for event in &created {
        let Ok(parsed) = parser.parse_verified(event, Timestamp::now()) else {
            continue;
        };
        match parsed.message {
            Message::Create(info) => {
                found.insert(
                    parsed.space.clone(),
                    CellSpace {
                        space: parsed.space,
                        name: info.name,
                        created_at: parsed.created_at,
                    },
                );
            }
            Message::Room(room) if room.status == RoomStatus::Ended => ended.push(parsed.space),
            _ => {}
        }
    }
    if !found.is_empty() {
        let ids: Vec<String> = found.keys().map(|s| s.id().to_owned()).collect();
        let closes = Filter::new()
            .kind(SpaceKind::CloseSpace.kind())
            .custom_tags(
                nostr::prelude::SingleLetterTag::lowercase(nostr::prelude::Alphabet::S),
                ids,
            );
        for event in collect(&pool, &mut rx, vec![closes], timeout).await? {
            if let Ok(parsed) = parser.parse_verified(&event, Timestamp::now()) {
                // Only the host's CLOSE counts.
                if parsed.message == Message::Close && parsed.author == *parsed.space.host() {
                    ended.push(parsed.space);
                }
            }
        }
    }
    pool.shutdown().await;
    let mut live: Vec<CellSpace> = found
        .into_values()
        .filter(|s| !ended.contains(&s.space))
        .collect();
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
