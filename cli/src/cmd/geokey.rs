//! `spaces geokey`: the GeoKeys of a position, as the UPlanet tools derive them.
//!
//! The JSON output is a contract other tools rely on; keep its fields stable.

use clap::ValueEnum;
use serde::Serialize;
use spaces_core::geo::{Cell, GeoError, GeoKey, Level, ORIGIN_NAMESPACE, Point, Scheme};

use crate::BadArgument;

/// Which levels to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// 0.01° cell.
    Umap,
    /// 0.1° cell.
    Sector,
    /// 1° cell.
    Region,
    /// All three, finest first (JSON: an array).
    All,
}

/// The derivation scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// UPlanet's deployed keygen: sha256(scrypt(pepper, salt)).
    Uplanet,
    /// The NIP-101 text: sha256(namespace + lat + lon).
    Nip101,
}

/// Arguments of `spaces geokey`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Latitude in decimal degrees, e.g. 48.853 (no '+', no exponent).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    lat: String,
    /// Longitude in decimal degrees, e.g. -2.341.
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    lon: String,
    /// Grid level.
    #[arg(long, value_enum, default_value = "umap")]
    level: LevelArg,
    /// Key derivation scheme.
    #[arg(long, value_enum, default_value = "uplanet")]
    scheme: SchemeArg,
    /// Namespace (UPLANETNAME); default: the public ORIGIN network, 64 '0' characters.
    #[arg(long, value_name = "STR", default_value = ORIGIN_NAMESPACE, hide_default_value = true)]
    namespace: String,
    /// Print JSON: one object, or an array for `--level all`.
    #[arg(long)]
    json: bool,
    /// Also print the secret key (hex and nsec). GeoKey secrets are derivable by anyone
    /// who knows the namespace; they prove nothing.
    #[arg(long)]
    show_secret: bool,
}

/// One key as printed in JSON.
#[derive(Serialize)]
struct KeyReport {
    level: Level,
    scheme: Scheme,
    lat_label: String,
    lon_label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pepper: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    pubkey: String,
    npub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seckey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nsec: Option<String>,
}

impl KeyReport {
    fn new(key: &GeoKey, show_secret: bool) -> Self {
        let (salt, pepper, seed) = key.seed().parts();
        Self {
            level: key.cell().level(),
            scheme: key.scheme(),
            lat_label: key.cell().lat_label(),
            lon_label: key.cell().lon_label(),
            salt,
            pepper,
            seed,
            pubkey: key.pubkey_hex(),
            npub: key.npub(),
            seckey: show_secret.then(|| key.secret_hex()),
            nsec: show_secret.then(|| key.nsec()),
        }
    }

    fn print_text(&self) {
        let line = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                println!("{name:<8}{value}");
            }
        };
        println!("{:<8}{} ({})", "level", self.level, self.scheme);
        println!("{:<8}{},{}", "cell", self.lat_label, self.lon_label);
        line("salt", &self.salt);
        line("pepper", &self.pepper);
        line("seed", &self.seed);
        println!("{:<8}{}", "pubkey", self.pubkey);
        println!("{:<8}{}", "npub", self.npub);
        line("seckey", &self.seckey);
        line("nsec", &self.nsec);
    }
}

/// Runs `spaces geokey`.
pub fn run(args: &Args) -> Result<(), BadArgument> {
    let point = Point::parse(&args.lat, &args.lon).map_err(blame)?;
    let scheme = match args.scheme {
        SchemeArg::Uplanet => Scheme::Uplanet,
        SchemeArg::Nip101 => Scheme::Nip101,
    };
    let levels: &[Level] = match args.level {
        LevelArg::Umap => &[Level::Umap],
        LevelArg::Sector => &[Level::Sector],
        LevelArg::Region => &[Level::Region],
        LevelArg::All => &Level::ALL,
    };
    let reports = levels
        .iter()
        .map(|&level| {
            let cell = Cell::containing(point, level).map_err(blame)?;
            let key = GeoKey::derive(&cell, scheme, &args.namespace).map_err(blame)?;
            Ok(KeyReport::new(&key, args.show_secret))
        })
        .collect::<Result<Vec<_>, BadArgument>>()?;
    if args.json {
        let json = match (args.level, reports.as_slice()) {
            (LevelArg::All, all) => serde_json::to_string_pretty(all),
            (_, [one]) => serde_json::to_string_pretty(one),
            (_, many) => serde_json::to_string_pretty(many),
        };
        // Serialising plain strings cannot fail.
        println!("{}", json.unwrap_or_default());
    } else {
        for (i, report) in reports.iter().enumerate() {
            if i > 0 {
                println!();
            }
            report.print_text();
        }
    }
    Ok(())
}

/// Names the argument a geo error is about.
fn blame(err: GeoError) -> BadArgument {
    use spaces_core::geo::Axis;
    let argument = match &err {
        GeoError::InvalidLatitude(_)
        | GeoError::MalformedCoordinate {
            axis: Axis::Latitude,
            ..
        }
        | GeoError::KeylessStrip {
            axis: Axis::Latitude,
        }
        | GeoError::InvalidLabel {
            axis: Axis::Latitude,
            ..
        } => "--lat",
        GeoError::InvalidLongitude(_)
        | GeoError::MalformedCoordinate {
            axis: Axis::Longitude,
            ..
        }
        | GeoError::KeylessStrip {
            axis: Axis::Longitude,
        }
        | GeoError::InvalidLabel {
            axis: Axis::Longitude,
            ..
        } => "--lon",
        GeoError::InvalidScalar => "--namespace",
    };
    BadArgument {
        argument,
        reason: err.to_string(),
    }
}
