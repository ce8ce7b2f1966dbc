//! `spaces host` and `spaces join` as a user runs them: two processes, a relay, WebRTC, and
//! the joiner's recording checked for the host's tone.

mod common;

use std::process::{Command, Stdio};

use common::{frames_with_tone, spawn_host};

#[test]
fn a_joiner_records_the_hosts_tone() {
    let (host, space, relay) = spawn_host(&[
        "host",
        "--input",
        "tone",
        "--output",
        "null",
        "--seconds",
        "12",
    ]);
    assert!(space.starts_with("30312:"), "{space}");

    let dir = std::env::temp_dir().join(format!("spaces-cli-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wav = dir.join("joined.wav");
    let status = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args(["join", &space, "--relay", &relay, "--output"])
        .arg(&wav)
        .args(["--seconds", "5"])
        .stderr(Stdio::null())
        .status()
        .expect("join runs");
    assert!(status.success());
    drop(host);

    // About 5 s minus set-up: at least 3 s of the tone reached the file.
    let with_tone = frames_with_tone(&wav, 440.0);
    assert!(with_tone >= 150, "{with_tone} frames carry 440 Hz");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn join_refuses_a_malformed_space_address_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args(["join", "not-an-address"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("space"), "{stderr}");
}
