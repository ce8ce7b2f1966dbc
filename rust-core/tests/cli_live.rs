//! `spaces host` and `spaces join` as a user runs them: two processes, a relay, WebRTC, and
//! the joiner's recording checked for the host's tone.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use spaces_core::media::FRAME_SAMPLES;
use spaces_core::media::analysis::has_tone;
use spaces_core::media::device::{AudioSource, WavSource};

#[test]
fn a_joiner_records_the_hosts_tone() {
    let mut host = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args([
            "host",
            "--input",
            "tone",
            "--output",
            "null",
            "--seconds",
            "12",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("host starts");
    let mut lines = BufReader::new(host.stdout.take().expect("stdout")).lines();
    let space = lines.next().and_then(Result::ok).expect("a space line");
    let relay = lines.next().and_then(Result::ok).expect("a relay line");
    let space = space
        .strip_prefix("space ")
        .expect("space <address>")
        .to_owned();
    let relay = relay
        .strip_prefix("relay ")
        .expect("relay <url>")
        .to_owned();
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
    let _ = host.kill();
    let _ = host.wait();

    let mut source = WavSource::open(&wav).expect("a WAV was written");
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let (mut frames, mut with_tone) = (0, 0);
    while source.read(&mut frame).expect("reads") {
        frames += 1;
        with_tone += usize::from(has_tone(&frame, 440.0));
    }
    // About 5 s minus set-up: at least 3 s of the tone reached the file.
    assert!(
        with_tone >= 150,
        "{with_tone} of {frames} frames carry 440 Hz"
    );
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
