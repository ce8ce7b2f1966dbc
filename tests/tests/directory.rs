//! The space list an app shows (`engine::discover::browse`) against a real relay: a live space
//! with its listeners, a NIP-53 room of another client (from the fixtures) that this core
//! cannot play, a space closed by its host, and a crowd.

use std::time::Duration;

use nostr::prelude::{EventBuilder, FinalizeEvent, Kind, Tag, Timestamp};
use spaces_core::engine::Session;
use spaces_core::engine::discover::{Listing, Scope, browse};
use spaces_core::protocol::{SpaceRef, Transport};
use spaces_core::signaling::{PoolOptions, RelayPool};
use spaces_tests::sessions::{config, keys, space_on_embedded_relay, start_listeners};

/// Bound on waiting for the listeners' presence to be listed: a failure bound, not a speed
/// assertion.
const LISTED_BOUND: Duration = Duration::from_secs(20);

/// The fixture's first room (Nests, MoQ era), hosted by `keys(7)`.
fn nests_room() -> nostr::prelude::Event {
    let fixtures: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/nip53-rooms.json")).expect("fixtures");
    let room = &fixtures[0];
    let host = keys(7);
    let tags = room["tags"].as_array().expect("tags").iter().map(|tag| {
        let parts: Vec<String> = tag
            .as_array()
            .expect("tag")
            .iter()
            .map(|v| {
                v.as_str()
                    .expect("text")
                    .replace("$HOST", &host.public_key().to_hex())
                    .replace("$SPEAKER", &keys(8).public_key().to_hex())
            })
            .collect();
        Tag::parse(parts).expect("tag")
    });
    let kind = u16::try_from(room["kind"].as_u64().expect("kind")).expect("kind");
    EventBuilder::new(Kind::from(kind), "")
        .tags(tags)
        .custom_created_at(Timestamp::now())
        .finalize(&host)
        .expect("signs")
}

fn find<'a>(listings: &'a [Listing], space: &SpaceRef) -> Option<&'a Listing> {
    listings.iter().find(|l| l.space == *space)
}

/// The space list of `url`, browsed again until `done` says it shows what the test waits for
/// or [`LISTED_BOUND`] has passed.
async fn browse_until(url: &str, done: impl Fn(&[Listing]) -> bool) -> Vec<Listing> {
    let relays = vec![url.to_owned()];
    let deadline = tokio::time::Instant::now() + LISTED_BOUND;
    loop {
        let listings = browse(
            &relays,
            &Scope::Everywhere,
            Duration::from_secs(3600),
            Duration::from_secs(5),
        )
        .await
        .expect("browsed");
        if done(&listings) || tokio::time::Instant::now() > deadline {
            return listings;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_space_list_shows_live_spaces_with_their_listeners_and_other_clients_rooms_as_not_playable()
 {
    let (_relay, url, space) = space_on_embedded_relay("listed", 1).await;
    let host = Session::start(config(keys(1), &space, &url, true))
        .await
        .expect("host");
    let listeners = start_listeners(2..4, &space, &url).await;

    let closed = SpaceRef::new(
        format!("closed-{}", Timestamp::now().as_secs()),
        keys(5).public_key(),
    )
    .expect("id");
    let gone = Session::start(config(keys(5), &closed, &url, true))
        .await
        .expect("second host");
    gone.stop().await;

    let (pool, _rx) = RelayPool::connect(std::slice::from_ref(&url), PoolOptions::default())
        .await
        .expect("pool");
    let room = nests_room();
    pool.publish(&room).await.expect("room published");
    let nests = SpaceRef::new("nests-room-1", keys(7).public_key()).expect("id");

    let listings = browse_until(&url, |listings| {
        find(listings, &space).is_some_and(|l| l.listeners >= 2)
    })
    .await;

    let ours = find(&listings, &space).expect("the live space is listed");
    assert!(ours.playable());
    assert!(!ours.crowd, "three members are no crowd");
    assert_eq!(ours.transport, Transport::NostrSpaces);
    assert_eq!(ours.name, "host");
    assert_eq!(
        ours.listeners, 2,
        "two listeners' presence, the host not counted"
    );

    let room = find(&listings, &nests).expect("the other client's room is listed");
    assert!(!room.playable());
    assert_eq!(room.name, "Bitcoin chat");
    assert_eq!(room.summary.as_deref(), Some("weekly"));
    assert!(matches!(room.transport, Transport::Moq { .. }));
    assert!(!room.crowd);

    assert!(
        find(&listings, &closed).is_none(),
        "a space its host closed is not listed"
    );
    assert_eq!(listings.len(), 2, "{listings:?}");

    for listener in listeners {
        listener.stop().await;
    }
    host.stop().await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_is_listed_as_one() {
    // The host makes the space a crowd at three members (itself and two listeners) and says
    // so in a new CREATE: the listing must carry it, whichever CREATE relays hand over last,
    // so that auto-join (`engine::roam`) asks no seat of a host long full.
    let (_relay, url, space) = space_on_embedded_relay("crowd-listed", 1).await;
    let mut host_config = config(keys(1), &space, &url, true);
    host_config.crowd_at = 3;
    let host = Session::start(host_config).await.expect("host");
    let listeners = start_listeners(2..4, &space, &url).await;

    let listings = browse_until(&url, |listings| {
        find(listings, &space).is_some_and(|l| l.crowd)
    })
    .await;
    let listing = find(&listings, &space).cloned();
    let listing = listing.expect("the crowd is listed");
    assert!(listing.crowd, "{listing:?}");
    assert!(listing.playable());

    for listener in listeners {
        listener.stop().await;
    }
    host.stop().await;
}
