//! Sessions whose key lives elsewhere (a NIP-46 bunker, a NIP-55 signer app): every event is
//! sealed and signed, and every payload sealed to us opened, through a `RemoteSigner`, a round
//! trip at a time: a signer holding real keys behind a delay, and a NIP-46 bunker on the relay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nostr::nips::nip44;
use nostr::prelude::{
    EventBuilder, Filter, FinalizeEvent, Keys, Kind, PublicKey, Tag, UnsignedEvent,
};
use serde_json::{Value, json};
use spaces_core::engine::{Session, source_id};
use spaces_core::protocol::{RemoteSigner, Signer};
use spaces_core::signaling::{Bunker, BunkerError, Incoming, PoolOptions, RelayPool};
use spaces_tests::sessions::{config, keys, space_on_embedded_relay};
use spaces_tests::signers::DistantSigner;

/// Bound on waiting for audio: a failure bound, not a speed assertion.
const HEARD_BOUND: Duration = Duration::from_secs(20);

/// How long the signer elsewhere takes to answer each request.
const SIGNER_DELAY: Duration = Duration::from_millis(15);

async fn hears(session: &Session, voice: u32) -> bool {
    let deadline = tokio::time::Instant::now() + HEARD_BOUND;
    while tokio::time::Instant::now() < deadline {
        let heard = session
            .stats()
            .audio
            .sources
            .get(&voice)
            .map(|s| (s.frames, s.frequency_hz()));
        if let Some((frames, Some(hz))) = heard
            && frames >= 50
        {
            return (hz - 440.0).abs() < 15.0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_a_listener_whose_keys_are_held_elsewhere_hear_each_other_as_usual() {
    let (_relay, url, space) = space_on_embedded_relay("signer", 1).await;
    let host_signer = DistantSigner::new(keys(1), SIGNER_DELAY);
    let mut host_config = config(keys(1), &space, &url, true);
    host_config.signer = Signer::Remote(host_signer.clone());
    let host = Session::start(host_config).await.expect("host");

    let listener_signer = DistantSigner::new(keys(2), SIGNER_DELAY);
    let mut listener_config = config(keys(2), &space, &url, false);
    listener_config.signer = Signer::Remote(listener_signer.clone());
    let listener = Session::start(listener_config).await.expect("listener");
    // And a listener holding its own keys, beside them.
    let local = Session::start(config(keys(3), &space, &url, false))
        .await
        .expect("local listener");

    let host_voice = source_id(space.host());
    assert!(
        hears(&listener, host_voice).await,
        "the distant-key listener hears the host's tone"
    );
    assert!(
        hears(&local, host_voice).await,
        "a local-key listener hears the distant-key host"
    );
    assert_eq!(listener.stats().tree.parent, Some(keys(1).public_key()));

    for signer in [&host_signer, &listener_signer] {
        let (signed, sealed, opened) = signer.work();
        assert!(signed >= 2, "every event signed elsewhere ({signed})");
        assert!(sealed >= 1, "the link's SDP sealed elsewhere ({sealed})");
        assert!(opened >= 1, "the peer's SDP opened elsewhere ({opened})");
    }
    local.stop().await;
    listener.stop().await;
    host.stop().await;
}

/// A NIP-46 bunker as a signer service runs one: it holds `user` and answers kind 24133
/// requests sealed to `me` on `relay`, after checking the connection's secret. Counts requests.
async fn serve_bunker(
    relay: String,
    me: Keys,
    user: Keys,
    secret: &'static str,
) -> Arc<AtomicUsize> {
    let served = Arc::new(AtomicUsize::new(0));
    let (pool, mut incoming) = RelayPool::connect(&[relay], PoolOptions::default())
        .await
        .expect("bunker relay");
    pool.subscribe(vec![
        Filter::new()
            .kind(Kind::from(24_133u16))
            .pubkey(me.public_key()),
    ])
    .await
    .expect("bunker subscription");
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Some(message) = incoming.recv().await {
            let Incoming::Event { event, .. } = message else {
                continue;
            };
            let client = event.pubkey;
            let Ok(body) = nip44::decrypt(me.secret_key(), &client, &event.content) else {
                continue;
            };
            let request: Value = serde_json::from_str(&body).expect("a JSON-RPC request");
            let param = |n: usize| request["params"][n].as_str().unwrap_or_default().to_owned();
            let peer = || PublicKey::parse(&param(0)).expect("a peer key");
            let answer = match request["method"].as_str().unwrap_or_default() {
                "connect" if param(1) == secret => Ok("ack".to_owned()),
                "connect" => Err("wrong secret".to_owned()),
                "get_public_key" => Ok(user.public_key().to_hex()),
                "sign_event" => Ok(UnsignedEvent::from_json(param(0))
                    .expect("an unsigned event")
                    .finalize(&user)
                    .expect("signs")
                    .as_json()),
                "nip44_encrypt" => {
                    Ok(
                        nip44::encrypt(user.secret_key(), &peer(), param(1), nip44::Version::V2)
                            .expect("seals"),
                    )
                }
                "nip44_decrypt" => {
                    nip44::decrypt(user.secret_key(), &peer(), param(1)).map_err(|e| e.to_string())
                }
                other => Err(format!("unknown method {other}")),
            };
            count.fetch_add(1, Ordering::Relaxed);
            let (result, error) = match answer {
                Ok(result) => (result, String::new()),
                Err(error) => (String::new(), error),
            };
            let body = json!({ "id": request["id"], "result": result, "error": error }).to_string();
            let sealed =
                nip44::encrypt(me.secret_key(), &client, body, nip44::Version::V2).expect("seals");
            let response = EventBuilder::new(Kind::from(24_133u16), sealed)
                .tag(Tag::public_key(client))
                .finalize(&me)
                .expect("signs");
            let _ = pool.publish(&response).await;
        }
    });
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_signing_through_a_nip46_bunker_hears_the_host() {
    let (_relay, url, space) = space_on_embedded_relay("bunker", 1).await;
    let host = Session::start(config(keys(1), &space, &url, true))
        .await
        .expect("host");
    // The bunker's own key differs from the user's, as NIP-46 allows.
    let (bunker_key, user) = (keys(40), keys(2));
    let served = serve_bunker(url.clone(), bunker_key.clone(), user.clone(), "s3cret").await;
    let uri = format!(
        "bunker://{}?relay={url}&secret=s3cret",
        bunker_key.public_key().to_hex()
    );

    let wrong = format!(
        "bunker://{}?relay={url}&secret=guess",
        bunker_key.public_key().to_hex()
    );
    assert!(
        matches!(
            Bunker::connect(&wrong, Duration::from_secs(5)).await,
            Err(BunkerError::Signer(_))
        ),
        "a wrong secret is refused"
    );

    let bunker = Bunker::connect(&uri, Duration::from_secs(10))
        .await
        .expect("bunker");
    assert_eq!(
        bunker.public_key(),
        user.public_key(),
        "the user's key, not the bunker's"
    );
    let mut listener_config = config(keys(2), &space, &url, false);
    listener_config.signer = Signer::Remote(Arc::new(bunker));
    let listener = Session::start(listener_config).await.expect("listener");
    assert!(
        hears(&listener, source_id(space.host())).await,
        "the bunker's user hears the host"
    );
    assert!(
        served.load(Ordering::Relaxed) >= 5,
        "connect, key, signatures, seal, open"
    );
    listener.stop().await;
    host.stop().await;
}
