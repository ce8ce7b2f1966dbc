//! `spaces geo`: the first device in a cell opens its space, the next one (elsewhere in the
//! same cell) finds and joins it; a device in another cell finds nothing.

mod common;

use std::process::{Command, Stdio};

use common::{frames_with_tone, spawn_host};

#[test]
fn the_second_device_in_a_cell_joins_the_first_ones_space() {
    let (mut first, space, relay) = spawn_host(&[
        "geo",
        "--lat",
        "48.853",
        "--lon",
        "-2.341",
        "--host-if-empty",
        "--input",
        "tone",
        "--output",
        "null",
        "--seconds",
        "20",
    ]);

    let dir = std::env::temp_dir().join(format!("spaces-cli-geo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wav = dir.join("second.wav");
    // 300 m away, same UMAP cell 48.85,-2.34.
    let second = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args([
            "geo", "--lat", "48.8549", "--lon", "-2.3449", "--relay", &relay, "--output",
        ])
        .arg(&wav)
        .args(["--seconds", "5"])
        .stderr(Stdio::null())
        .output()
        .expect("second device runs");
    assert!(second.status.success());
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(
        stdout.lines().next(),
        Some(format!("joining {space}").as_str()),
        "{stdout}"
    );

    // Another cell: nothing live there, and no --host-if-empty.
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args([
            "geo", "--lat", "43.6047", "--lon", "1.4442", "--relay", &relay,
        ])
        .stderr(Stdio::piped())
        .output()
        .expect("third device runs");
    assert!(!elsewhere.status.success());
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.contains("--lat") && l.contains("43.60,1.44")),
        "{stderr}"
    );

    let _ = first.kill();
    let _ = first.wait();
    let with_tone = frames_with_tone(&wav, 440.0);
    assert!(with_tone >= 150, "{with_tone} frames carry the host's tone");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
