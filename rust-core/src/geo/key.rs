//! GeoKeys: the Nostr key pair of a cell, derived from its labels and a namespace.
//!
//! A GeoKey is a shared rendezvous identity. Anyone who knows the namespace can derive its
//! secret, so a signature by a GeoKey proves nothing: it is never an authority.

use std::fmt;
use std::str::FromStr;

use nostr::prelude::{Keys, SecretKey, ToBech32};
use sha2::{Digest, Sha256};

use super::{Cell, GeoError, Level};

/// The public UPlanet "ORIGIN" namespace: 64 ASCII `0` characters.
pub const ORIGIN_NAMESPACE: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// How a cell's labels become a key. Always chosen explicitly: the two give different keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Bit-exact with the UPlanet ecosystem (`Astroport.ONE tools/keygen -t nostr SALT PEPPER`):
    /// `sha256(scrypt(PEPPER, SALT, N=4096, r=16, p=1, 32))`.
    #[default]
    Uplanet,
    /// The NIP-101 text: `sha256("{NAMESPACE}{LAT}{LON}")`. No deployed client uses it.
    Nip101,
}

impl Scheme {
    /// Lower-case name as used on the CLI and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Uplanet => "uplanet",
            Scheme::Nip101 => "nip101",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a scheme name that is neither `uplanet` nor `nip101`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheme {0:?} (expected uplanet or nip101)")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "uplanet" => Ok(Scheme::Uplanet),
            "nip101" => Ok(Scheme::Nip101),
            _ => Err(UnknownScheme(s.to_owned())),
        }
    }
}

/// The strings a key is derived from, as the ecosystem's tools build them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seed {
    /// scrypt salt and password (`keygen SALT PEPPER`).
    Uplanet {
        /// scrypt salt: `NS+LAT` (UMAP) or `NS_LAT_LON` (SECTOR, REGION).
        salt: String,
        /// scrypt password: `NS+LON` (UMAP) or the same string as the salt.
        pepper: String,
    },
    /// The single string hashed by the NIP-101 text.
    Nip101 {
        /// `NS+LAT+LON`.
        seed: String,
    },
}

impl Seed {
    /// The seed strings of a cell under a scheme and namespace.
    pub fn of(cell: &Cell, scheme: Scheme, namespace: &str) -> Self {
        let (lat, lon) = (cell.lat_label(), cell.lon_label());
        match (scheme, cell.level()) {
            (Scheme::Uplanet, Level::Umap) => Seed::Uplanet {
                salt: format!("{namespace}{lat}"),
                pepper: format!("{namespace}{lon}"),
            },
            (Scheme::Uplanet, Level::Sector | Level::Region) => {
                let both = format!("{namespace}_{lat}_{lon}");
                Seed::Uplanet {
                    salt: both.clone(),
                    pepper: both,
                }
            }
            (Scheme::Nip101, _) => Seed::Nip101 {
                seed: format!("{namespace}{lat}{lon}"),
            },
        }
    }

    /// The strings as (salt, pepper, seed): the first two for `Uplanet`, the last for `Nip101`.
    pub fn parts(&self) -> (Option<String>, Option<String>, Option<String>) {
        match self.clone() {
            Seed::Uplanet { salt, pepper } => (Some(salt), Some(pepper), None),
            Seed::Nip101 { seed } => (None, None, Some(seed)),
        }
    }

    /// Derives the 32-byte secret. Costs one scrypt (8 MiB, tens of ms) for `Uplanet`.
    fn secret(&self) -> Result<SecretKey, GeoError> {
        match self {
            Seed::Uplanet { salt, pepper } => {
                let mut stretched = [0u8; 32];
                // Constant, valid parameters (log2 N = 12, r = 16, p = 1): cannot fail.
                let params = scrypt::Params::new(12, 16, 1).map_err(|_| GeoError::InvalidScalar)?;
                scrypt::scrypt(pepper.as_bytes(), salt.as_bytes(), &params, &mut stretched)
                    .map_err(|_| GeoError::InvalidScalar)?;
                // keygen uses the hash as is and exits on an invalid scalar; so do we.
                SecretKey::from_slice(&Sha256::digest(stretched))
                    .map_err(|_| GeoError::InvalidScalar)
            }
            Seed::Nip101 { seed } => {
                // The NIP asks to "ensure the result is a valid private key" without saying
                // how; our deterministic rule: re-hash until it is (each step fails with
                // probability ~2^-128, so eight steps never all fail in practice).
                let mut digest: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
                for _ in 0..8 {
                    if let Ok(secret) = SecretKey::from_slice(&digest) {
                        return Ok(secret);
                    }
                    digest = Sha256::digest(digest).into();
                }
                Err(GeoError::InvalidScalar)
            }
        }
    }
}

/// A cell's key pair with the inputs that produced it.
#[derive(Clone)]
pub struct GeoKey {
    cell: Cell,
    scheme: Scheme,
    seed: Seed,
    keys: Keys,
}

impl GeoKey {
    /// Derives the key of a cell. `namespace` is [`ORIGIN_NAMESPACE`] on the public network
    /// or a private swarm's key. Slow for [`Scheme::Uplanet`]: use [`super::GeoKeyring`].
    pub fn derive(cell: &Cell, scheme: Scheme, namespace: &str) -> Result<Self, GeoError> {
        let seed = Seed::of(cell, scheme, namespace);
        let keys = Keys::new(seed.secret()?);
        tracing::debug!(%cell, %scheme, "derived GeoKey");
        Ok(Self {
            cell: *cell,
            scheme,
            seed,
            keys,
        })
    }

    /// The cell this key belongs to.
    pub fn cell(&self) -> &Cell {
        &self.cell
    }

    /// The derivation scheme used.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The seed strings used.
    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    /// The key pair, for signing as the cell.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// BIP-340 x-only public key, 64 lower-case hex characters.
    pub fn pubkey_hex(&self) -> String {
        self.keys.public_key().to_hex()
    }

    /// NIP-19 `npub`.
    pub fn npub(&self) -> String {
        // Encoding 32 bytes with a fixed prefix cannot fail.
        self.keys.public_key().to_bech32().unwrap_or_default()
    }

    /// The secret as 64 hex characters. Public knowledge for anyone with the namespace.
    pub fn secret_hex(&self) -> String {
        self.keys.secret_key().to_secret_hex()
    }

    /// NIP-19 `nsec`.
    pub fn nsec(&self) -> String {
        self.keys.secret_key().to_bech32().unwrap_or_default()
    }
}

impl fmt::Debug for GeoKey {
    // The secret stays out of logs even though it is derivable: logs get copied around.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoKey")
            .field("cell", &self.cell)
            .field("scheme", &self.scheme)
            .field("pubkey", &self.pubkey_hex())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Point;

    /// The six UPlanet vectors (`tools/keygen -t nostr`), shared with the CLI and Kotlin tests.
    const VECTORS: &str = include_str!("../../../tests/fixtures/geokey-vectors.json");

    #[test]
    fn uplanet_vectors_match_the_ecosystem_keygen() {
        let vectors: Vec<serde_json::Value> = serde_json::from_str(VECTORS).unwrap();
        assert_eq!(vectors.len(), 6);
        for v in vectors {
            let field = |name: &str| v[name].as_str().unwrap().to_owned();
            let point = Point::parse(&field("lat"), &field("lon")).unwrap();
            let level: Level = field("level").parse().unwrap();
            let cell = Cell::containing(point, level).unwrap();
            let key = GeoKey::derive(&cell, Scheme::Uplanet, ORIGIN_NAMESPACE).unwrap();
            assert_eq!(
                key.seed(),
                &Seed::Uplanet {
                    salt: field("salt"),
                    pepper: field("pepper")
                }
            );
            assert_eq!(key.secret_hex(), field("priv"), "{cell}");
            assert_eq!(key.pubkey_hex(), field("pub"), "{cell}");
            assert_eq!(key.npub(), field("npub"), "{cell}");
            assert!(key.nsec().starts_with("nsec1"));
        }
    }

    #[test]
    fn nip101_scheme_hashes_the_concatenated_seed() {
        let cell = Cell::from_labels(Level::Umap, "48.85", "-2.34").unwrap();
        let key = GeoKey::derive(&cell, Scheme::Nip101, "UPlanetV1").unwrap();
        // The NIP text's own example seed.
        assert_eq!(
            key.seed(),
            &Seed::Nip101 {
                seed: "UPlanetV148.85-2.34".into()
            }
        );
        let expected: [u8; 32] = Sha256::digest(b"UPlanetV148.85-2.34").into();
        assert_eq!(key.secret_hex(), hex(&expected));
        let sector =
            GeoKey::derive(&cell.parent(Level::Sector), Scheme::Nip101, "UPlanetV1").unwrap();
        assert_eq!(
            sector.seed(),
            &Seed::Nip101 {
                seed: "UPlanetV148.8-2.3".into()
            }
        );
        let region =
            GeoKey::derive(&cell.parent(Level::Region), Scheme::Nip101, "UPlanetV1").unwrap();
        assert_eq!(
            region.seed(),
            &Seed::Nip101 {
                seed: "UPlanetV148-2".into()
            }
        );
    }

    #[test]
    fn schemes_namespaces_and_signed_zeros_give_distinct_keys() {
        let plus = Cell::from_labels(Level::Sector, "0.3", "10.0").unwrap();
        let minus = Cell::from_labels(Level::Sector, "-0.3", "10.0").unwrap();
        let zero = Cell::from_labels(Level::Sector, "0.0", "10.0").unwrap();
        let minus_zero = Cell::from_labels(Level::Sector, "-0.0", "10.0").unwrap();
        let mut pubkeys: Vec<String> = [plus, minus, zero, minus_zero]
            .iter()
            .flat_map(|c| {
                [
                    GeoKey::derive(c, Scheme::Uplanet, ORIGIN_NAMESPACE)
                        .unwrap()
                        .pubkey_hex(),
                    GeoKey::derive(c, Scheme::Nip101, ORIGIN_NAMESPACE)
                        .unwrap()
                        .pubkey_hex(),
                    GeoKey::derive(c, Scheme::Uplanet, "swarm")
                        .unwrap()
                        .pubkey_hex(),
                ]
            })
            .collect();
        pubkeys.sort();
        pubkeys.dedup();
        assert_eq!(pubkeys.len(), 12);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let cell = Cell::from_labels(Level::Region, "48", "-2").unwrap();
        let key = GeoKey::derive(&cell, Scheme::Nip101, ORIGIN_NAMESPACE).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.pubkey_hex()));
        assert!(!debug.contains(&key.secret_hex()));
    }

    #[test]
    fn scheme_names_parse() {
        assert_eq!("UPlanet".parse::<Scheme>(), Ok(Scheme::Uplanet));
        assert_eq!("nip101".parse::<Scheme>(), Ok(Scheme::Nip101));
        assert!("sha256".parse::<Scheme>().is_err());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
