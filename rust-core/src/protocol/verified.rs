//! An event whose signature is known to be good, so that each event's Schnorr signature is
//! checked once per process: the relay pool's client (nostr-sdk) verifies every event it
//! receives before handing it on, and the parser used to verify it a second time (a fifth of
//! the CPU of 96 listeners joining at once).

use std::ops::Deref;

use nostr::prelude::Event;

use super::ProtocolError;

/// A signed event whose id and signature were checked. Only this crate makes one without a
/// check (the relay pool, for what its client verified); anyone else goes through
/// [`VerifiedEvent::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent(Box<Event>);

impl VerifiedEvent {
    /// Checks `event`'s id and signature.
    pub fn check(event: Event) -> Result<Self, ProtocolError> {
        verify(&event)?;
        Ok(Self(Box::new(event)))
    }

    /// An event whose signature was checked already, by a client that refuses bad ones.
    pub(crate) fn checked_by_client(event: Box<Event>) -> Self {
        Self(event)
    }

    /// The same event with its sealed payload replaced by the `plaintext` a signer elsewhere
    /// opened (the signature covers the ciphertext and was checked on arrival; the parser
    /// reads a payload in clear as it reads a draft-literal one).
    pub(crate) fn opened(mut self, plaintext: String) -> Self {
        self.0.content = plaintext;
        self
    }

    /// The event itself.
    pub fn into_inner(self) -> Event {
        *self.0
    }
}

impl Deref for VerifiedEvent {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.0
    }
}

/// Checks an event's id and signature: the one place the protocol pays for BIP-340.
pub(crate) fn verify(event: &Event) -> Result<(), ProtocolError> {
    event.verify().map_err(|_| ProtocolError::BadSignature)
}
