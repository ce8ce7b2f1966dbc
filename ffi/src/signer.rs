//! Sessions signed by the user's key held elsewhere: a signer app on the phone (NIP-55, such as
//! Amber on Android) or a remote signer (NIP-46), implemented by the app as an
//! [`ExternalSigner`]. The core never sees the secret key; it checks every event the signer
//! returns before publishing it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use nostr::nips::nip44;
use nostr::prelude::{Event, FinalizeEvent, PublicKey, UnsignedEvent};
use spaces_core::protocol::{RemoteSigner, Signer, SignerError, accept_signed};
use spaces_core::signaling::{Bunker, BunkerError};

use super::session::on_runtime;
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

    async fn sign(&self, mut unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        // With its id: a signer that answers with the signature alone (NIP-55's `result`)
        // lets the app put the event together.
        let id = unsigned.id();
        let (json, me) = (unsigned.as_json(), self.public_key);
        let signed = self.call(move |s| s.sign_event(json)).await?;
        // Never publish what the signer changed or signed badly.
        accept_signed(&signed, id, me)
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

/// Who signs a session: a signer app through the app's [`ExternalSigner`], a NIP-46 bunker,
/// or an [`Identity`] the app holds. Given to `SpaceSession.host_signed_by` and
/// `join_signed_by`.
#[derive(uniffi::Object)]
pub struct UserSigner {
    signer: Signer,
}

#[uniffi::export]
impl UserSigner {
    /// A signer the app reaches itself (NIP-55 on Android: a signer app's content provider).
    #[uniffi::constructor]
    pub fn external(signer: Arc<dyn ExternalSigner>) -> Result<Arc<Self>, SpacesError> {
        Ok(Arc::new(Self {
            signer: Signer::Remote(Arc::new(ForeignSigner::new(signer)?)),
        }))
    }

    /// A NIP-46 remote signer: `bunker://<key>?relay=<wss://…>&secret=<token>`. Connects and
    /// asks for the user's key; each later request waits at most `timeout_ms` (the bunker may
    /// wait for its owner's approval).
    #[uniffi::constructor]
    pub async fn bunker(uri: String, timeout_ms: u64) -> Result<Arc<Self>, SpacesError> {
        let timeout = Duration::from_millis(timeout_ms);
        let bunker = on_runtime(async move { Bunker::connect(&uri, timeout).await })
            .await?
            .map_err(|e| match e {
                BunkerError::Uri(reason) => SpacesError::InvalidSettings {
                    reason: format!("bunker URI: {reason}"),
                },
                other => SpacesError::Signer {
                    reason: other.to_string(),
                },
            })?;
        Ok(Arc::new(Self {
            signer: Signer::Remote(Arc::new(bunker)),
        }))
    }

    /// The app's own identity.
    #[uniffi::constructor]
    pub fn identity(identity: Arc<Identity>) -> Arc<Self> {
        Arc::new(Self {
            signer: Signer::Keys(identity.keys().clone()),
        })
    }

    /// The user's public key (hex).
    pub fn public_key(&self) -> String {
        self.signer.public_key().to_hex()
    }
}

impl UserSigner {
    /// The core's signer.
    pub(crate) fn signer(&self) -> Signer {
        self.signer.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use nostr::prelude::{EventBuilder, FinalizeUnsignedEvent, Keys, Kind};

    /// A signer app that answers with `answer(unsigned JSON, its keys)`.
    struct App {
        keys: Keys,
        answer: fn(&str, &Keys) -> String,
    }

    impl ExternalSigner for App {
        fn public_key(&self) -> String {
            self.keys.public_key().to_hex()
        }
        fn sign_event(&self, unsigned: String) -> Result<String, SpacesError> {
            Ok((self.answer)(&unsigned, &self.keys))
        }
        fn nip44_encrypt(&self, _: String, _: String) -> Result<String, SpacesError> {
            Err(SpacesError::Signer {
                reason: "rejected".into(),
            })
        }
        fn nip44_decrypt(&self, _: String, _: String) -> Result<String, SpacesError> {
            Err(SpacesError::Signer {
                reason: "rejected".into(),
            })
        }
    }

    fn honest(unsigned: &str, keys: &Keys) -> String {
        UnsignedEvent::from_json(unsigned)
            .expect("json")
            .finalize(keys)
            .expect("signs")
            .as_json()
    }

    fn tampered(unsigned: &str, keys: &Keys) -> String {
        let mut event = UnsignedEvent::from_json(unsigned).expect("json");
        event.content = "something else".into();
        event.id = None;
        event.finalize(keys).expect("signs").as_json()
    }

    fn other_key(unsigned: &str, _: &Keys) -> String {
        let event = UnsignedEvent::from_json(unsigned).expect("json");
        EventBuilder::new(event.kind, event.content)
            .finalize(&Keys::generate())
            .expect("signs")
            .as_json()
    }

    fn forged(unsigned: &str, keys: &Keys) -> String {
        let mut json: serde_json::Value =
            serde_json::from_str(&honest(unsigned, keys)).expect("json");
        json["sig"] = serde_json::Value::String("00".repeat(64));
        json.to_string()
    }

    fn unsigned(keys: &Keys) -> UnsignedEvent {
        EventBuilder::new(Kind::from(1311u16), "hello").finalize_unsigned(keys.public_key())
    }

    #[tokio::test]
    async fn only_the_event_asked_for_signed_by_the_users_key_is_taken() {
        for (answer, ok) in [
            (honest as fn(&str, &Keys) -> String, true),
            (tampered, false),
            (other_key, false),
            (forged, false),
        ] {
            let keys = Keys::generate();
            let signer = ForeignSigner::new(Arc::new(App {
                keys: keys.clone(),
                answer,
            }))
            .expect("a key");
            let signed = signer.sign(unsigned(&keys)).await;
            assert_eq!(signed.is_ok(), ok, "{signed:?}");
            if let Ok(event) = signed {
                assert_eq!(event.content, "hello");
                assert_eq!(event.pubkey, keys.public_key());
            }
        }
    }

    #[tokio::test]
    async fn a_refusal_is_a_signer_error_and_a_bad_key_is_refused_at_once() {
        let keys = Keys::generate();
        let signer = ForeignSigner::new(Arc::new(App {
            keys,
            answer: honest,
        }))
        .expect("a key");
        let refused = signer
            .nip44_encrypt(Keys::generate().public_key(), "x".into())
            .await;
        assert!(refused.is_err_and(|e| e.0.contains("rejected")));

        struct NoKey;
        impl ExternalSigner for NoKey {
            fn public_key(&self) -> String {
                "not a key".into()
            }
            fn sign_event(&self, _: String) -> Result<String, SpacesError> {
                unreachable!()
            }
            fn nip44_encrypt(&self, _: String, _: String) -> Result<String, SpacesError> {
                unreachable!()
            }
            fn nip44_decrypt(&self, _: String, _: String) -> Result<String, SpacesError> {
                unreachable!()
            }
        }
        assert!(matches!(
            ForeignSigner::new(Arc::new(NoKey)),
            Err(SpacesError::InvalidKey { .. })
        ));
    }
}
