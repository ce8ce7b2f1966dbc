//! A NIP-46 remote signer ("bunker") as a session's [`RemoteSigner`]: the user's key stays in
//! the bunker (another device, a signer service); each request is a kind 24133 event, NIP-44
//! sealed between a throwaway client key and the bunker, over the bunker's relays. This is how
//! an iPhone, which has no NIP-55 signer apps, signs with a key it does not hold.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nostr::nips::nip44;
use nostr::prelude::{
    Event, EventBuilder, Filter, FinalizeEvent, Keys, Kind, PublicKey, Tag, Timestamp,
    UnsignedEvent,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{Incoming, PoolOptions, RelayPool, SignalingError};
use crate::protocol::{RemoteSigner, SignerError, accept_signed};

/// NIP-46 requests and responses.
const NOSTR_CONNECT: u16 = 24_133;

/// Why a bunker could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BunkerError {
    /// The `bunker://` URI is malformed.
    #[error("bunker URI: {0}")]
    Uri(String),
    /// Its relays could not be reached.
    #[error(transparent)]
    Relays(#[from] SignalingError),
    /// The bunker refused or did not answer.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// `bunker://<remote signer key>?relay=<wss://…>&relay=…&secret=<token>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BunkerUri {
    /// The key the bunker answers with (not necessarily the user's).
    pub signer: PublicKey,
    /// Where it listens.
    pub relays: Vec<String>,
    /// The one-time token of a new connection, if the bunker gave one.
    pub secret: Option<String>,
}

impl FromStr for BunkerUri {
    type Err = BunkerError;

    fn from_str(uri: &str) -> Result<Self, BunkerError> {
        let rest = uri
            .trim()
            .strip_prefix("bunker://")
            .ok_or_else(|| BunkerError::Uri("does not start with bunker://".into()))?;
        let (key, query) = rest.split_once('?').unwrap_or((rest, ""));
        let signer = PublicKey::parse(key).map_err(|e| BunkerError::Uri(format!("key: {e}")))?;
        let (mut relays, mut secret) = (Vec::new(), None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match name {
                "relay" => relays.push(value),
                "secret" => secret = Some(value),
                _ => {}
            }
        }
        if relays.is_empty() {
            return Err(BunkerError::Uri("no relay".into()));
        }
        Ok(Self {
            signer,
            relays,
            secret,
        })
    }
}

/// `%XX` escapes, as URIs carry relay URLs.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<String, String>>>>>;

/// A connected bunker.
pub struct Bunker {
    client: Keys,
    remote: PublicKey,
    user: PublicKey,
    pool: Arc<RelayPool>,
    pending: Pending,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Bunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bunker({} for {})", self.remote, self.user)
    }
}

impl Bunker {
    /// Connects to the bunker of `uri` and asks for the user's key. Each request waits at
    /// most `timeout` (a bunker may wait for its owner's approval).
    pub async fn connect(uri: &str, timeout: Duration) -> Result<Self, BunkerError> {
        let uri: BunkerUri = uri.parse()?;
        let client = Keys::generate();
        let options = PoolOptions {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            ..PoolOptions::default()
        };
        let (pool, incoming) = RelayPool::connect(&uri.relays, options).await?;
        let since = Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(10));
        pool.subscribe(vec![
            Filter::new()
                .kind(Kind::from(NOSTR_CONNECT))
                .pubkey(client.public_key())
                .since(since),
        ])
        .await?;
        let pending: Pending = Arc::default();
        let reader = tokio::spawn(read_responses(
            client.clone(),
            uri.signer,
            incoming,
            Arc::clone(&pending),
        ));
        let mut bunker = Self {
            client,
            remote: uri.signer,
            user: uri.signer,
            pool: Arc::new(pool),
            pending,
            timeout,
            reader,
        };
        let mut params = vec![uri.signer.to_hex()];
        params.extend(uri.secret.clone());
        let ack = bunker.request("connect", params).await?;
        if ack != "ack" && Some(&ack) != uri.secret.as_ref() {
            return Err(SignerError(format!("the bunker answered connect with {ack:?}")).into());
        }
        let user = bunker.request("get_public_key", Vec::new()).await?;
        bunker.user = PublicKey::parse(&user)
            .map_err(|e| SignerError(format!("the bunker's user key {user:?}: {e}")))?;
        tracing::info!(user = %bunker.user, "bunker connected");
        Ok(bunker)
    }

    async fn request(&self, method: &str, params: Vec<String>) -> Result<String, SignerError> {
        let id = Keys::generate().public_key().to_hex()[..16].to_owned();
        let body = json!({ "id": id, "method": method, "params": params }).to_string();
        let sealed = nip44::encrypt(
            self.client.secret_key(),
            &self.remote,
            body,
            nip44::Version::V2,
        )
        .map_err(|e| SignerError(format!("NIP-44: {e}")))?;
        let event = EventBuilder::new(Kind::from(NOSTR_CONNECT), sealed)
            .tag(Tag::public_key(self.remote))
            .finalize(&self.client)
            .map_err(|e| SignerError(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tx);
        if let Err(e) = self.pool.publish(&event).await {
            self.forget(&id);
            return Err(SignerError(format!("the bunker's relays: {e}")));
        }
        let answer = tokio::time::timeout(self.timeout, rx).await;
        self.forget(&id);
        match answer {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(SignerError(format!("the bunker refused {method}: {error}"))),
            Ok(Err(_)) => Err(SignerError("the bunker's relays closed".into())),
            Err(_) => Err(SignerError(format!(
                "the bunker did not answer {method} within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    fn forget(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

impl Drop for Bunker {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Hands each response from the bunker to the request waiting for it. An `auth_url` result
/// asks the user to approve in the bunker: the request keeps waiting for the real answer.
async fn read_responses(
    client: Keys,
    remote: PublicKey,
    mut incoming: mpsc::Receiver<Incoming>,
    pending: Pending,
) {
    while let Some(message) = incoming.recv().await {
        let Incoming::Event { event, .. } = message else {
            continue;
        };
        if event.pubkey != remote {
            continue;
        }
        let Ok(body) = nip44::decrypt(client.secret_key(), &remote, &event.content) else {
            tracing::debug!("an unreadable bunker response");
            continue;
        };
        let Ok(response) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        let Some(id) = response["id"].as_str() else {
            continue;
        };
        let result = response["result"].as_str().unwrap_or_default().to_owned();
        if result == "auth_url" {
            tracing::info!(url = %response["error"], "the bunker asks its owner to approve");
            continue;
        }
        let answer = match response["error"].as_str().filter(|e| !e.is_empty()) {
            Some(error) => Err(error.to_owned()),
            None => Ok(result),
        };
        let waiting = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(waiting) = waiting {
            let _ = waiting.send(answer);
        }
    }
}

#[async_trait::async_trait]
impl RemoteSigner for Bunker {
    fn public_key(&self) -> PublicKey {
        self.user
    }

    async fn sign(&self, mut unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        let id = unsigned.id();
        let signed = self.request("sign_event", vec![unsigned.as_json()]).await?;
        accept_signed(&signed, id, self.user)
    }

    async fn nip44_encrypt(
        &self,
        peer: PublicKey,
        plaintext: String,
    ) -> Result<String, SignerError> {
        self.request("nip44_encrypt", vec![peer.to_hex(), plaintext])
            .await
    }

    async fn nip44_decrypt(&self, peer: PublicKey, payload: String) -> Result<String, SignerError> {
        self.request("nip44_decrypt", vec![peer.to_hex(), payload])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bunker_uris_are_read_and_bad_ones_refused() {
        let key = Keys::generate().public_key();
        let uri: BunkerUri = format!(
            "bunker://{}?relay=wss%3A%2F%2Frelay.example&relay=ws://127.0.0.1:7777&secret=t0k",
            key.to_hex()
        )
        .parse()
        .expect("valid");
        assert_eq!(uri.signer, key);
        assert_eq!(uri.relays, ["wss://relay.example", "ws://127.0.0.1:7777"]);
        assert_eq!(uri.secret.as_deref(), Some("t0k"));
        for bad in [
            "nostrconnect://x".to_owned(),
            "bunker://nothex?relay=wss://r".to_owned(),
            format!("bunker://{}", key.to_hex()),
        ] {
            assert!(
                matches!(bad.parse::<BunkerUri>(), Err(BunkerError::Uri(_))),
                "{bad}"
            );
        }
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
