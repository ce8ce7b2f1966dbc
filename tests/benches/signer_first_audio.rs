//! What a key held elsewhere costs a listener's first audio: the same join with the user's
//! keys in the process and through a signer that answers each request (sign, seal, open) a
//! delay later, as a NIP-46 bunker one relay round trip away or a NIP-55 signer app would.
//!
//! `cargo bench -p spaces-tests --bench signer_first_audio`
//!
//! Everything real on loopback (embedded relay, WebRTC, Opus); rounds interleave the
//! configurations; first audio = the listener's session start to its first decoded frame of
//! the host's voice. Ratios are to local keys in the same run.

use std::time::Duration;

use spaces_core::engine::Session;
use spaces_core::protocol::Signer;
use spaces_tests::sessions::{config, keys, space_on_embedded_relay};
use spaces_tests::signers::DistantSigner;

const ROUNDS: usize = 12;
/// Per-request delays of the signer elsewhere; `None`: the user's keys in the process.
const SIGNERS: [Option<u64>; 4] = [None, Some(0), Some(25), Some(100)];
/// Bound on waiting for first audio in one round.
const FIRST_AUDIO_BOUND: Duration = Duration::from_secs(20);

async fn first_audio(signer: Option<u64>, round: usize) -> Option<Duration> {
    let (_relay, url, space) = space_on_embedded_relay(&format!("signer-bench-{round}"), 1).await;
    let host = Session::start(config(keys(1), &space, &url, true))
        .await
        .expect("host");
    let mut listener = config(keys(2), &space, &url, false);
    if let Some(ms) = signer {
        listener.signer = Signer::Remote(DistantSigner::new(keys(2), Duration::from_millis(ms)));
    }
    let listener = Session::start(listener).await.expect("listener");
    let deadline = tokio::time::Instant::now() + FIRST_AUDIO_BOUND;
    let heard = loop {
        if let Some(at) = listener.stats().audio.first_audio {
            break Some(at);
        }
        if tokio::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    listener.stop().await;
    host.stop().await;
    heard
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); SIGNERS.len()];
    let mut missed = vec![0usize; SIGNERS.len()];
    for round in 0..ROUNDS {
        for (i, signer) in SIGNERS.iter().enumerate() {
            match first_audio(*signer, round * SIGNERS.len() + i).await {
                Some(at) => samples[i].push(at),
                None => missed[i] += 1,
            }
        }
    }
    let local = median(samples[0].clone());
    println!("signer                     first audio p50   ratio to local keys   missed");
    for (i, signer) in SIGNERS.iter().enumerate() {
        let p50 = median(samples[i].clone());
        let name = match signer {
            None => "keys in the process".to_owned(),
            Some(ms) => format!("elsewhere, {ms} ms a request"),
        };
        println!(
            "{name:<26} {:>9.1} ms {:>16.2} {:>12}",
            p50.as_secs_f64() * 1e3,
            p50.as_secs_f64() / local.as_secs_f64().max(1e-9),
            missed[i]
        );
    }
}
