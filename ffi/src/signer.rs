//! Sessions signed by the user's key held elsewhere: a signer app on the phone (NIP-55, such as
//! Amber on Android) or a remote signer (NIP-46), implemented by the app as an
//! [`ExternalSigner`]. The core never sees the secret key; it checks every event the signer
//! returns before publishing it.

use std::fmt;
use std::sync::Arc;

use nostr::nips::nip44;
use nostr::prelude::{Event, FinalizeEvent, PublicKey, UnsignedEvent};
use spaces_core::protocol::{RemoteSigner, SignerError};

use super::{Identity, SpacesError};

/// The app's bridge to a signer that holds the user's key. Called on a blocking core thread,
/// one request at a time, in the session's order: a method may wait for the signer (an IPC
/// call, a relay round trip), but every wait delays the session's next event.
#[uniffi::export(with_foreign)]
pub trait ExternalSigner: Send + Sync {
    /// The user's public key (hex or npub).
    fn public_key(&self) -> String;

    /// Signs `unsigned_event` (NIP-01 JSON without `sig`; `pubkey` is the user's) and returns
    /// the signed event's JSON.
    fn sign_event(&self, unsigned_event: String) -> Result<String, SpacesError>;

    /// NIP-44 (v2) encrypts `plaintext` to `peer` (hex).
    fn nip44_encrypt(&self, peer: String, plaintext: String) -> Result<String, SpacesError>;

    /// NIP-44 decrypts `payload` from `peer` (hex).
    fn nip44_decrypt(&self, peer: String, payload: String) -> Result<String, SpacesError>;
}

/// An [`ExternalSigner`] as the core's [`RemoteSigner`].
pub(crate) struct ForeignSigner {
    inner: Arc<dyn ExternalSigner>,
    public_key: PublicKey,
}

impl ForeignSigner {
    /// Asks the signer for its key once.
    pub(crate) fn new(inner: Arc<dyn ExternalSigner>) -> Result<Self, SpacesError> {
        let key = inner.public_key();
        let public_key = PublicKey::parse(&key).map_err(|e| SpacesError::InvalidKey {
            reason: format!("the signer's public key {key:?}: {e}"),
        })?;
        Ok(Self { inner, public_key })
    }

    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn ExternalSigner) -> Result<T, SpacesError> + Send + 'static,
    ) -> Result<T, SignerError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(inner.as_ref()))
            .await
            .map_err(|e| SignerError(format!("signer call failed: {e}")))?
            .map_err(|e| SignerError(e.to_string()))
    }
}

impl fmt::Debug for ForeignSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalSigner({})", self.public_key)
    }
}

#[async_trait::async_trait]
impl RemoteSigner for ForeignSigner {
    fn public_key(&self) -> PublicKey {
        self.public_key
    }

    async fn sign(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        let (json, id, me) = (unsigned.as_json(), unsigned.id, self.public_key);
        let signed = self.call(move |s| s.sign_event(json)).await?;
        let event = Event::from_json(&signed)
            .map_err(|e| SignerError(format!("the signer returned no event: {e}")))?;
        // Never publish what the signer changed or signed badly.
        if event.pubkey != me || id.is_some_and(|id| id != event.id) {
            return Err(SignerError("the signer returned another event".into()));
        }
        event
            .verify()
            .map_err(|e| SignerError(format!("the signer's signature is invalid: {e}")))?;
        Ok(event)
    }

    async fn nip44_encrypt(
        &self,
        peer: PublicKey,
        plaintext: String,
    ) -> Result<String, SignerError> {
        self.call(move |s| s.nip44_encrypt(peer.to_hex(), plaintext))
            .await
    }

    async fn nip44_decrypt(&self, peer: PublicKey, payload: String) -> Result<String, SignerError> {
        self.call(move |s| s.nip44_decrypt(peer.to_hex(), payload))
            .await
    }
}

/// The same contract, served by an identity held by the app: for an app that signs for
/// another (a companion device), and for tests of a signer bridge.
#[uniffi::export]
impl Identity {
    /// Signs an unsigned event (NIP-01 JSON; its `pubkey` must be ours) and returns its JSON.
    pub fn sign_event(&self, unsigned_event: String) -> Result<String, SpacesError> {
        let unsigned = UnsignedEvent::from_json(&unsigned_event).map_err(|e| {
            SpacesError::InvalidSettings {
                reason: format!("not an unsigned event: {e}"),
            }
        })?;
        if unsigned.pubkey != self.keys().public_key() {
            return Err(SpacesError::InvalidKey {
                reason: "the event's author is another key".into(),
            });
        }
        unsigned
            .finalize(self.keys())
            .map(|event| event.as_json())
            .map_err(|e| SpacesError::InvalidKey {
                reason: e.to_string(),
            })
    }

    /// NIP-44 (v2) encrypts `plaintext` to `peer` (hex or npub).
    pub fn nip44_encrypt(&self, peer: String, plaintext: String) -> Result<String, SpacesError> {
        let peer = peer_key(&peer)?;
        nip44::encrypt(
            self.keys().secret_key(),
            &peer,
            plaintext,
            nip44::Version::V2,
        )
        .map_err(|e| SpacesError::InvalidKey {
            reason: e.to_string(),
        })
    }

    /// NIP-44 decrypts `payload` from `peer` (hex or npub).
    pub fn nip44_decrypt(&self, peer: String, payload: String) -> Result<String, SpacesError> {
        let peer = peer_key(&peer)?;
        nip44::decrypt(self.keys().secret_key(), &peer, payload).map_err(|e| {
            SpacesError::InvalidKey {
                reason: e.to_string(),
            }
        })
    }
}

fn peer_key(peer: &str) -> Result<PublicKey, SpacesError> {
    PublicKey::parse(peer).map_err(|e| SpacesError::InvalidKey {
        reason: format!("{peer:?}: {e}"),
    })
}
