//! A crowd's sample of open seats from a real relay holding 10,000 members' JOINs.
//!
//! `cargo bench -p spaces-tests --bench relay_seats`
//!
//! Past `crowd_at` members, a newcomer or an orphan chooses its parent from a sample of open
//! seats: the JOINs tagged `#o` with one shard of the space's seats
//! (`protocol::filter::seats_filter`), `since` 75 s ago, `until` a time drawn in the last 60 s,
//! `limit` 24, closed at the relay's end of stored events. The
//! simulator models that query as an index lookup; this bench asks real relays (the embedded
//! nostr-sdk one and the independent Python nostr-relay) with 10,000 members' JOINs stored,
//! two thirds of them with an open seat, and times each sample from REQ to EOSE. Samples go
//! through one pool, as a phone's do (`RelayPool::sample`: overlapping samples come back
//! whole). It also counts the distinct seats that 16 newcomers asking in the same second are
//! offered, with and without shards: the herd the shards break up.

use std::time::{Duration, Instant};

use nostr::prelude::{Event, Keys, SecretKey, Timestamp};
use spaces_core::protocol::filter::{OpenSeats, seats_filter};
use spaces_core::protocol::{
    ConnectionType, EventWriter, MemberInfo, Message, NetworkMetrics, SEAT_SHARDS, Seat, SpaceRef,
    seat_shard,
};
use spaces_core::signaling::{Incoming, PoolOptions, RelayPool};
use spaces_tests::{on_both_relays, percentile, until_stored};

/// Members whose JOIN the relay holds.
const MEMBERS: usize = 10_000;
/// Samples asked per relay.
const SAMPLES: usize = 40;
/// What a crowd's fetch asks for (`engine::follow`'s `SEAT_SAMPLE`).
const LIMIT: usize = 24;
/// How far back a sample looks (`participant::SAMPLE_SINCE`).
const SINCE_SECS: u64 = 75;
/// How far back a sample's end is drawn (`participant::crowd::SAMPLE_WINDOW`).
const WINDOW_SECS: u64 = 60;
/// Publishes in flight while storing the JOINs.
const IN_FLIGHT: usize = 16;

fn member_keys(n: usize) -> Keys {
    let mut bytes = [7u8; 32];
    bytes[24..].copy_from_slice(&(n as u64 + 1).to_be_bytes());
    Keys::new(SecretKey::from_slice(&bytes).expect("valid"))
}

/// Member `n`'s JOIN, made `age` seconds before `now`: a seat at depth 1–6, open for two
/// members in three.
fn join(space: &SpaceRef, n: usize, now: u64, age: u64) -> Event {
    let keys = member_keys(n);
    let seat = Seat {
        depth: 1 + (n % 6) as u32,
        free: if (n / 6).is_multiple_of(3) { 0 } else { 2 },
        path_kbps: 500,
        leaf: None,
        branch: (n % 8) as u64,
        // Any 64 bits: the tag's size is what the relay stores.
        lineage: (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        head: 64,
    };
    let info = MemberInfo {
        name: String::new(),
        metrics: NetworkMetrics {
            download_kbps: 20_000,
            upload_kbps: 2_000,
            max_audio_outputs: 0,
            connection: ConnectionType::Wifi,
        },
        price: 0,
        nip44: true,
        dtls: None,
        seat: Some(seat),
    };
    EventWriter::new(&keys, space)
        .build(&Message::Join(info), Timestamp::from_secs(now - age))
        .expect("builds")
}

/// One sample: REQ to EOSE, and the seats it brought.
async fn sample(
    pool: &RelayPool,
    rx: &mut tokio::sync::mpsc::Receiver<Incoming>,
    space: &SpaceRef,
    until: u64,
    which: OpenSeats,
    now: u64,
) -> (Duration, Vec<Event>) {
    let filter = seats_filter(
        space,
        Timestamp::from_secs(now - SINCE_SECS),
        Timestamp::from_secs(until),
        which,
        LIMIT,
    );
    let started = Instant::now();
    let id = pool.sample(vec![filter]).await.expect("subscribes");
    let seats = until_stored(rx, &id, Duration::from_secs(30)).await;
    let took = started.elapsed();
    pool.unsubscribe(&id).await;
    (took, seats)
}

async fn measure(name: &str, url: String) {
    let now = Timestamp::now().as_secs();
    let space =
        SpaceRef::new(format!("seats-{name}-{now}"), member_keys(0).public_key()).expect("valid");
    let signing = Instant::now();
    // Ages spread over the last SINCE_SECS + 15 s: some JOINs older than any sample looks.
    let joins: Vec<Event> = (0..MEMBERS)
        .map(|n| join(&space, n, now, (n as u64 * 7919) % (SINCE_SECS + 15)))
        .collect();
    let signed_in = signing.elapsed();

    let (pool, _rx) = RelayPool::connect(std::slice::from_ref(&url), PoolOptions::default())
        .await
        .expect("connects");
    let pool = std::sync::Arc::new(pool);
    let storing = Instant::now();
    let mut tasks = Vec::new();
    for chunk in joins.chunks(joins.len().div_ceil(IN_FLIGHT)) {
        let (pool, chunk) = (std::sync::Arc::clone(&pool), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut refused = 0usize;
            for event in &chunk {
                if pool.publish(event).await.is_err() {
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await.unwrap_or(0);
    }
    let stored_in = storing.elapsed();

    // A newcomer's own connection, as a phone's.
    let (reader, mut rx) = RelayPool::connect(&[url], PoolOptions::default())
        .await
        .expect("connects");
    let mut plain = Vec::new();
    let mut counts = Vec::new();
    let mut outside = 0usize;
    for i in 0..SAMPLES {
        let back = (i as u64 * 37) % (WINDOW_SECS + 1);
        let until = now - back;
        let shard = (i % usize::from(SEAT_SHARDS)) as u8;
        let which = OpenSeats::Shard(shard);
        let (took, seats) = sample(&reader, &mut rx, &space, until, which, now).await;
        outside += seats
            .iter()
            .filter(|e| {
                let at = e.created_at.as_secs();
                at < now - SINCE_SECS || at > until || seat_shard(&e.pubkey) != shard
            })
            .count();
        counts.push(seats.len());
        plain.push(took);
    }
    // A climb's sample: the newest open seats at most one hop deep (`#o` = id:0, id:1).
    let mut climbs = Vec::new();
    let mut climb_counts = Vec::new();
    for _ in 0..SAMPLES / 4 {
        let which = OpenSeats::AtMost(1);
        let (took, seats) = sample(&reader, &mut rx, &space, now, which, now).await;
        climb_counts.push(seats.len());
        climbs.push(took);
    }
    // Newcomers asking in the same second: the seats they are offered, all of them.
    let mut offered = [0usize; 2];
    for (n, shards) in [false, true].into_iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        for shard in 0..SEAT_SHARDS {
            let which = if shards {
                OpenSeats::Shard(shard)
            } else {
                OpenSeats::All
            };
            let (_, seats) = sample(&reader, &mut rx, &space, now, which, now).await;
            seen.extend(seats.into_iter().map(|e| e.pubkey));
        }
        offered[n] = seen.len();
    }
    let [herd, spread] = offered;
    plain.sort();
    climbs.sort();
    counts.sort_unstable();
    climb_counts.sort_unstable();
    println!(
        "{name:<22} {MEMBERS} JOINs signed in {:.1} s, stored in {:.1} s ({refused} refused); \
         seat sample (REQ to EOSE) p50 {:.1} ms, p99 {:.1} ms, {}–{} seats each (limit {LIMIT}), \
         {outside} outside the window or shard; climb sample p50 {:.1} ms, {}–{} seats; \
         {SEAT_SHARDS} newcomers in one second offered {herd} distinct seats, {spread} by shard",
        signed_in.as_secs_f64(),
        stored_in.as_secs_f64(),
        percentile(&plain, 0.5).as_secs_f64() * 1e3,
        percentile(&plain, 0.99).as_secs_f64() * 1e3,
        counts.first().copied().unwrap_or(0),
        counts.last().copied().unwrap_or(0),
        percentile(&climbs, 0.5).as_secs_f64() * 1e3,
        climb_counts.first().copied().unwrap_or(0),
        climb_counts.last().copied().unwrap_or(0),
    );
    reader.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    on_both_relays(measure).await;
}
