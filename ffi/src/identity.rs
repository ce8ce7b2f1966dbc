//! The user's own key: made once, kept by the app (Android Keystore, iOS Keychain), given to
//! every session so that the user is the same person in every space.

use std::sync::Arc;

use nostr::prelude::{Keys, ToBech32};

use super::SpacesError;

/// A Nostr identity held by the app. Create it once with [`Identity::generate`], store
/// [`Identity::export_nsec`] in the platform's secure storage, and restore it with
/// [`Identity::import`]; pass the nsec as `SessionSettings.secret_key`.
#[derive(uniffi::Object)]
pub struct Identity {
    keys: Keys,
}

#[uniffi::export]
impl Identity {
    /// A new key from the system's secure random source.
    #[uniffi::constructor]
    pub fn generate() -> Arc<Self> {
        Arc::new(Self {
            keys: Keys::generate(),
        })
    }

    /// The key the user already has: an `nsec1…` or 64 hex digits. A GeoKey's nsec is
    /// accepted like any key, but GeoKeys are public: never use one as the user's identity.
    #[uniffi::constructor]
    pub fn import(secret: String) -> Result<Arc<Self>, SpacesError> {
        let keys = Keys::parse(secret.trim()).map_err(|e| SpacesError::InvalidKey {
            reason: format!("not an nsec or hex secret key: {e}"),
        })?;
        Ok(Arc::new(Self { keys }))
    }

    /// The public key, hex (how sessions and events name members).
    pub fn public_key(&self) -> String {
        self.keys.public_key().to_hex()
    }

    /// The public key as `npub1…`, to show and share.
    pub fn npub(&self) -> String {
        // Bech32 of 32 bytes cannot fail; hex is the fallback should it ever.
        self.keys
            .public_key()
            .to_bech32()
            .unwrap_or_else(|_| self.keys.public_key().to_hex())
    }

    /// The secret key as `nsec1…`: for the app's secure storage only.
    pub fn export_nsec(&self) -> String {
        self.keys
            .secret_key()
            .to_bech32()
            .unwrap_or_else(|_| self.keys.secret_key().to_secret_hex())
    }
}

impl Identity {
    /// The keys, for signing on the app's behalf.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }
}
