//! Which space an event belongs to: its id and its host, as every draft event names them.

use std::fmt;

use nostr::prelude::PublicKey;

use super::ProtocolError;

/// A space's identity. Two spaces with the same id but different hosts are different spaces
/// (anyone can pick any id; only the host's key is scarce).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceRef {
    id: String,
    host: PublicKey,
}

impl SpaceRef {
    /// A reference; the id must be 1–128 printable characters without `||`, the separator
    /// of the draft's `d` tags.
    pub fn new(id: impl Into<String>, host: PublicKey) -> Result<Self, ProtocolError> {
        let id = id.into();
        let printable = id.chars().all(|c| !c.is_control());
        if id.is_empty() || id.len() > 128 || id.contains("||") || !printable {
            return Err(ProtocolError::InvalidSpaceId(id));
        }
        Ok(Self { id, host })
    }

    /// The space id (`s` tag).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The host's key (`h` tag).
    pub fn host(&self) -> &PublicKey {
        &self.host
    }

    /// The NIP-53 address of the space's kind 30312 mirror: `30312:<host hex>:<id>`.
    pub fn room_address(&self) -> String {
        format!("30312:{}:{}", self.host.to_hex(), self.id)
    }

    /// Reads a NIP-53 room address (`30312:<pubkey>:<d>`).
    pub fn from_room_address(address: &str) -> Result<Self, ProtocolError> {
        let malformed = |reason: &str| ProtocolError::MalformedTag {
            tag: "a",
            reason: format!("{reason}: {address:?}"),
        };
        let mut parts = address.splitn(3, ':');
        let (Some(kind), Some(pubkey), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("not kind:pubkey:d"));
        };
        if kind != "30312" {
            return Err(malformed("not a 30312 room"));
        }
        let host = PublicKey::from_hex(pubkey).map_err(|_| malformed("bad pubkey"))?;
        Self::new(d, host)
    }

    /// The draft's `d` value: `id||host||keys...`.
    pub(crate) fn d_tag(&self, keys: &[&PublicKey]) -> String {
        let mut d = format!("{}||{}", self.id, self.host.to_hex());
        for key in keys {
            d.push_str("||");
            d.push_str(&key.to_hex());
        }
        d
    }
}

impl fmt::Display for SpaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, &self.host.to_hex()[..12])
    }
}
