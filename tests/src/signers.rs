//! A signer elsewhere, for the suites and benchmarks of sessions whose key is not in the
//! process: real keys answering every request after a delay, as a bunker one relay round trip
//! away or a signer app behind IPC would, counting what it did.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nostr::nips::nip44;
use nostr::prelude::{Event, FinalizeEvent, Keys, PublicKey, UnsignedEvent};
use spaces_core::protocol::{RemoteSigner, SignerError};

/// Real keys answering after `delay`, as a signer one round trip away.
#[derive(Debug)]
pub struct DistantSigner {
    keys: Keys,
    delay: Duration,
    signed: AtomicUsize,
    sealed: AtomicUsize,
    opened: AtomicUsize,
}

impl DistantSigner {
    /// `keys` answering each request `delay` later.
    pub fn new(keys: Keys, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            keys,
            delay,
            signed: AtomicUsize::new(0),
            sealed: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
        })
    }

    /// Events signed, payloads sealed, payloads opened so far.
    pub fn work(&self) -> (usize, usize, usize) {
        (
            self.signed.load(Ordering::Relaxed),
            self.sealed.load(Ordering::Relaxed),
            self.opened.load(Ordering::Relaxed),
        )
    }

    async fn wait(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

#[async_trait::async_trait]
impl RemoteSigner for DistantSigner {
    fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    async fn sign(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        self.wait().await;
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
        self.wait().await;
        self.sealed.fetch_add(1, Ordering::Relaxed);
        nip44::encrypt(self.keys.secret_key(), &peer, plaintext, nip44::Version::V2)
            .map_err(|e| SignerError(e.to_string()))
    }

    async fn nip44_decrypt(&self, peer: PublicKey, payload: String) -> Result<String, SignerError> {
        self.wait().await;
        self.opened.fetch_add(1, Ordering::Relaxed);
        nip44::decrypt(self.keys.secret_key(), &peer, payload)
            .map_err(|e| SignerError(e.to_string()))
    }
}
