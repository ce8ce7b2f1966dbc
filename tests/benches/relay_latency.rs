//! Publish-to-delivery latency and sustained throughput through each relay, on loopback.
//!
//! `cargo bench -p spaces-tests --bench relay_latency`
//!
//! One participant publishes signed chat events through its `RelayPool`; another receives
//! them through its own. Latency = publish call to delivery on the receiving side (both in
//! this process, one clock). Throughput = events delivered per second with 16 publishes in
//! flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nostr::prelude::{EventId, Keys, SecretKey, Timestamp};
use spaces_core::protocol::filter::session_filters;
use spaces_core::protocol::{EventWriter, Message, SpaceRef};
use spaces_core::signaling::{Incoming, PoolOptions, RelayPool};
use spaces_tests::{on_both_relays, percentile};
use tokio::sync::Mutex;

const LATENCY_SAMPLES: usize = 400;
const THROUGHPUT_EVENTS: usize = 2_000;
const IN_FLIGHT: usize = 16;

fn keys(n: u8) -> Keys {
    let mut bytes = [5u8; 32];
    bytes[31] = n;
    Keys::new(SecretKey::from_slice(&bytes).expect("valid"))
}

async fn measure(name: &str, url: String) {
    let space = SpaceRef::new(
        format!("bench-{name}-{}", Timestamp::now().as_secs()),
        keys(1).public_key(),
    )
    .expect("valid");
    let (sender, receiver) = (keys(1), keys(2));
    let (pub_pool, _pub_rx) =
        RelayPool::connect(std::slice::from_ref(&url), PoolOptions::default())
            .await
            .expect("connects");
    let (sub_pool, mut rx) = RelayPool::connect(&[url], PoolOptions::default())
        .await
        .expect("connects");
    sub_pool
        .subscribe(session_filters(
            &space,
            &receiver.public_key(),
            Some(Timestamp::now()),
        ))
        .await
        .expect("subscribes");
    while !matches!(rx.recv().await, Some(Incoming::EndOfStored { .. })) {}

    let arrivals: Arc<Mutex<HashMap<EventId, Instant>>> = Arc::default();
    let sink = Arc::clone(&arrivals);
    let collector = tokio::spawn(async move {
        while let Some(incoming) = rx.recv().await {
            if let Incoming::Event { event, .. } = incoming {
                sink.lock().await.insert(event.id, Instant::now());
            }
        }
    });
    let writer_keys = sender.clone();
    let build = move |n: usize| {
        EventWriter::new(&writer_keys, &space)
            .build(
                &Message::Chat {
                    text: format!("message {n}"),
                },
                Timestamp::now(),
            )
            .expect("builds")
    };
    // Pre-sign so signing time is not counted.
    let events: Vec<_> = (0..LATENCY_SAMPLES + THROUGHPUT_EVENTS)
        .map(&build)
        .collect();

    let mut sent_at = HashMap::new();
    for event in &events[..LATENCY_SAMPLES] {
        sent_at.insert(event.id, Instant::now());
        pub_pool.publish(event).await.expect("published");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies: Vec<Duration> = {
        let arrived = arrivals.lock().await;
        sent_at
            .iter()
            .filter_map(|(id, t)| arrived.get(id).map(|a| a.duration_since(*t)))
            .collect()
    };
    latencies.sort();

    let pool = Arc::new(pub_pool);
    let batch: Vec<_> = events[LATENCY_SAMPLES..].to_vec();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in batch.chunks(batch.len().div_ceil(IN_FLIGHT)) {
        let (pool, chunk) = (Arc::clone(&pool), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for event in &chunk {
                let _ = pool.publish(event).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let ids: Vec<EventId> = batch.iter().map(|e| e.id).collect();
    let last_arrival = loop {
        let arrived = arrivals.lock().await;
        let got: Vec<Instant> = ids
            .iter()
            .filter_map(|id| arrived.get(id).copied())
            .collect();
        if got.len() == ids.len() || Instant::now() > deadline {
            break got.into_iter().max().map(|t| (t, arrived.len()));
        }
        drop(arrived);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    collector.abort();
    let delivered = ids
        .iter()
        .filter(|id| {
            arrivals
                .try_lock()
                .map(|a| a.contains_key(*id))
                .unwrap_or(false)
        })
        .count();
    let elapsed = last_arrival
        .map(|(t, _)| t.duration_since(started))
        .unwrap_or_default();
    println!(
        "{name:<22} latency p50 {:>7.2} ms  p99 {:>7.2} ms  ({} samples)   sustained {:>7.0} events/s ({delivered}/{} delivered)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len(),
        delivered as f64 / elapsed.as_secs_f64().max(1e-9),
        ids.len(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    on_both_relays(measure).await;
}
