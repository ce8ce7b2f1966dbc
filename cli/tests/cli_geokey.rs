//! The `spaces geokey` contract: other tools parse this output, so it is tested as they use it.

use std::process::{Command, Output};

use serde_json::Value;

const VECTORS: &str = include_str!("../../tests/fixtures/geokey-vectors.json");

fn spaces(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args(args)
        .output()
        .expect("spaces runs")
}

fn json(args: &[&str]) -> Value {
    let out = spaces(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn all_levels_match_the_six_vectors_in_order() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    for point in vectors.chunks(3) {
        let (lat, lon) = (
            point[0]["lat"].as_str().unwrap(),
            point[0]["lon"].as_str().unwrap(),
        );
        let out = json(&[
            "geokey", "--lat", lat, "--lon", lon, "--level", "all", "--json",
        ]);
        let keys = out.as_array().expect("an array for --level all");
        assert_eq!(keys.len(), 3);
        for (key, vector) in keys.iter().zip(point) {
            assert_eq!(
                key["level"],
                vector["level"].as_str().unwrap().to_lowercase()
            );
            assert_eq!(key["salt"], vector["salt"]);
            assert_eq!(key["pepper"], vector["pepper"]);
            assert_eq!(key["pubkey"], vector["pub"]);
            assert_eq!(key["npub"], vector["npub"]);
            assert!(key.get("seckey").is_none() && key.get("nsec").is_none());
        }
    }
}

#[test]
fn one_level_is_one_object_and_secrets_only_on_request() {
    let out = json(&[
        "geokey",
        "--lat",
        "43.6047",
        "--lon",
        "1.4442",
        "--level",
        "sector",
        "--json",
        "--show-secret",
    ]);
    assert_eq!(out["level"], "sector");
    assert_eq!(out["lat_label"], "43.6");
    assert_eq!(out["lon_label"], "1.4");
    assert_eq!(
        out["seckey"],
        "4d8ce2889f96f22e43195c7b6c250253cd700c31d8414d8e3d5aec9042fecacb"
    );
    assert!(out["nsec"].as_str().unwrap().starts_with("nsec1"));
    let pubkey = out["pubkey"].as_str().unwrap();
    assert_eq!(pubkey.len(), 64);
    assert!(
        pubkey
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
}

#[test]
fn nip101_scheme_reports_a_seed_instead_of_salt_and_pepper() {
    let out = json(&[
        "geokey",
        "--lat",
        "48.853",
        "--lon",
        "-2.341",
        "--scheme",
        "nip101",
        "--namespace",
        "UPlanetV1",
        "--json",
    ]);
    assert_eq!(out["seed"], "UPlanetV148.85-2.34");
    assert!(out.get("salt").is_none() && out.get("pepper").is_none());
    assert_ne!(
        out["pubkey"],
        "bc6be67a360d2fa09d253355b2874e8eb738dc3e539eb840674ee1b45a67b7e7"
    );
}

#[test]
fn a_private_namespace_changes_the_key() {
    let origin = json(&["geokey", "--lat", "48.853", "--lon", "-2.341", "--json"]);
    let private = json(&[
        "geokey",
        "--lat",
        "48.853",
        "--lon",
        "-2.341",
        "--json",
        "--namespace",
        "myswarm",
    ]);
    assert_eq!(private["salt"], "myswarm48.85");
    assert_ne!(origin["pubkey"], private["pubkey"]);
}

#[test]
fn bad_input_exits_non_zero_with_one_line_naming_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["geokey", "--lat", "91", "--lon", "2"], "--lat"),
        (&["geokey", "--lat", "48", "--lon", "-181"], "--lon"),
        (&["geokey", "--lat", "4.8e1", "--lon", "2"], "--lat"),
        (&["geokey", "--lat", "NaN", "--lon", "2"], "--lat"),
        (&["geokey", "--lat", "48", "--lon", "+2"], "--lon"),
        (&["geokey", "--lon", "2"], "--lat"),
        (
            &["geokey", "--lat", "48", "--lon", "2", "--level", "city"],
            "--level",
        ),
        (
            &["geokey", "--lat", "48", "--lon", "2", "--scheme", "sha"],
            "--scheme",
        ),
        (&["geokey", "--lat", "0.001", "--lon", "2"], "--lat"),
        (
            &["geokey", "--lat", "48", "--lon", "0.004", "--level", "all"],
            "--lon",
        ),
    ];
    for (args, argument) in cases {
        let out = spaces(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(argument),
            "{args:?}: {stderr} does not name {argument}"
        );
    }
}

#[test]
fn the_keyless_strip_still_has_sector_and_region_keys() {
    let out = json(&[
        "geokey", "--lat", "0.001", "--lon", "2", "--level", "sector", "--json",
    ]);
    assert_eq!(out["lat_label"], "0.0");
    let out = json(&["geokey", "--lat", "-0.001", "--lon", "2", "--json"]);
    assert_eq!(out["lat_label"], "-0.00");
}
