//! Who signs a participant's events and reads what is sealed to it: the user's keys in this
//! process, or a signer elsewhere that holds them (a NIP-46 bunker, a NIP-55 Android signer
//! app such as Amber) and answers each request over a slower channel.

use std::fmt;
use std::sync::Arc;

use nostr::prelude::{Event, EventId, Keys, PublicKey, UnsignedEvent};

/// Why a signer elsewhere did not sign, seal or open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signer: {0}")]
pub struct SignerError(pub String);

/// A signer that holds the user's key outside this process. Every call may take a round trip
/// (a relay for NIP-46, an app switch for NIP-55), so sessions call it off their decision
/// path, in order.
#[async_trait::async_trait]
pub trait RemoteSigner: Send + Sync + fmt::Debug {
    /// The user's public key: the author of every event the session publishes.
    fn public_key(&self) -> PublicKey;

    /// Signs an event whose author is [`Self::public_key`].
    async fn sign(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError>;

    /// NIP-44 (v2) encrypts `plaintext` to `peer`.
    async fn nip44_encrypt(
        &self,
        peer: PublicKey,
        plaintext: String,
    ) -> Result<String, SignerError>;

    /// NIP-44 decrypts a `payload` from (or to) `peer`.
    async fn nip44_decrypt(&self, peer: PublicKey, payload: String) -> Result<String, SignerError>;
}

/// The event a signer elsewhere returned (NIP-01 JSON) when asked to sign event `id` as
/// `author`: taken only if it is that very event, by that author, validly signed. A signer that
/// changed the event, signed with another key or sent garbage is refused.
pub fn accept_signed(json: &str, id: EventId, author: PublicKey) -> Result<Event, SignerError> {
    let event =
        Event::from_json(json).map_err(|e| SignerError(format!("no event returned: {e}")))?;
    if event.pubkey != author || event.id != id {
        return Err(SignerError("another event was returned".into()));
    }
    event
        .verify()
        .map_err(|e| SignerError(format!("invalid signature: {e}")))?;
    Ok(event)
}

/// The user's identity as a session uses it.
#[derive(Clone)]
pub enum Signer {
    /// The keys themselves, in this process: every event is signed and sealed at once.
    Keys(Keys),
    /// A signer elsewhere.
    Remote(Arc<dyn RemoteSigner>),
}

impl Signer {
    /// The user's public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Keys(keys) => keys.public_key(),
            Self::Remote(signer) => signer.public_key(),
        }
    }

    /// The keys, when they are in this process.
    pub fn keys(&self) -> Option<&Keys> {
        match self {
            Self::Keys(keys) => Some(keys),
            Self::Remote(_) => None,
        }
    }
}

impl fmt::Debug for Signer {
    // Never the secret key, even in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keys(keys) => write!(f, "Signer::Keys({})", keys.public_key()),
            Self::Remote(signer) => write!(f, "Signer::Remote({signer:?})"),
        }
    }
}

impl From<Keys> for Signer {
    fn from(keys: Keys) -> Self {
        Self::Keys(keys)
    }
}
