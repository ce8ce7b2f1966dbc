//! Sessions whose key lives elsewhere (a NIP-46 bunker, a NIP-55 signer app): every event is
//! sealed and signed, and every payload sealed to us opened, through a `RemoteSigner`, a round
//! trip at a time. Here that signer holds real keys behind a channel with a delay, as a bunker
//! over a relay would, and counts its work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nostr::nips::nip44;
use nostr::prelude::{Event, FinalizeEvent, Keys, PublicKey, UnsignedEvent};
use spaces_core::engine::{Session, source_id};
use spaces_core::protocol::{RemoteSigner, Signer, SignerError};
use spaces_tests::sessions::{config, keys, space_on_embedded_relay};

/// Bound on waiting for audio: a failure bound, not a speed assertion.
const HEARD_BOUND: Duration = Duration::from_secs(20);

/// Real keys answering after `delay`, as a signer one round trip away.
#[derive(Debug)]
struct DistantSigner {
    keys: Keys,
    delay: Duration,
    signed: AtomicUsize,
    sealed: AtomicUsize,
    opened: AtomicUsize,
}

impl DistantSigner {
    fn new(keys: Keys) -> Arc<Self> {
        Arc::new(Self {
            keys,
            delay: Duration::from_millis(15),
            signed: AtomicUsize::new(0),
            sealed: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl RemoteSigner for DistantSigner {
    fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    async fn sign(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        tokio::time::sleep(self.delay).await;
        self.signed.fetch_add(1, Ordering::Relaxed);
        unsigned
            .finalize(&self.keys)
            .map_err(|e| SignerError(e.to_string()))
    }

    async fn nip44_encrypt(
        &self,
        peer: PublicKey,
        plaintext: String,
    ) -> Result<String, SignerError> {
        tokio::time::sleep(self.delay).await;
        self.sealed.fetch_add(1, Ordering::Relaxed);
        nip44::encrypt(self.keys.secret_key(), &peer, plaintext, nip44::Version::V2)
            .map_err(|e| SignerError(e.to_string()))
    }

    async fn nip44_decrypt(&self, peer: PublicKey, payload: String) -> Result<String, SignerError> {
        tokio::time::sleep(self.delay).await;
        self.opened.fetch_add(1, Ordering::Relaxed);
        nip44::decrypt(self.keys.secret_key(), &peer, payload)
            .map_err(|e| SignerError(e.to_string()))
    }
}

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
    let host_signer = DistantSigner::new(keys(1));
    let mut host_config = config(keys(1), &space, &url, true);
    host_config.signer = Signer::Remote(host_signer.clone());
    let host = Session::start(host_config).await.expect("host");

    let listener_signer = DistantSigner::new(keys(2));
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
        let (signed, sealed, opened) = (
            signer.signed.load(Ordering::Relaxed),
            signer.sealed.load(Ordering::Relaxed),
            signer.opened.load(Ordering::Relaxed),
        );
        assert!(signed >= 2, "every event signed elsewhere ({signed})");
        assert!(sealed >= 1, "the link's SDP sealed elsewhere ({sealed})");
        assert!(opened >= 1, "the peer's SDP opened elsewhere ({opened})");
    }
    local.stop().await;
    listener.stop().await;
    host.stop().await;
}
