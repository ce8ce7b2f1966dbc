//! `spaces host` and `spaces join` as a user runs them: processes, a relay, WebRTC, and the
//! joiners' audio checked for the host's tone; one relaying listener frozen for 3 s (SIGSTOP,
//! as a phone suspends an app) under a one-seat host.

mod common;

use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Reaped, frames_with_tone, spawn_host, spawn_tone_host};
use serde_json::Value;

#[test]
fn a_joiner_records_the_hosts_tone() {
    let (host, space, relay) = spawn_tone_host("12");
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

#[test]
fn bad_network_options_are_refused_in_one_line_naming_them() {
    let address = "30312:0000000000000000000000000000000000000000000000000000000000000001:x";
    for (args, named) in [
        (
            &["--ice-server", "turn://nobody@host:3478"][..],
            "--ice-server",
        ),
        (&["--ice-server", "stun:host:99999"][..], "--ice-server"),
        (
            &["--relay-only", "--ice-server", "stun:host:3478"][..],
            "--relay-only",
        ),
        (&["--connection", "carrier-pigeon"][..], "--connection"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_spaces"))
            .args(["join", address])
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[test]
fn a_standalone_relay_carries_a_space() {
    let mut relay = spaces(&["relay", "--listen", "127.0.0.1:0", "--seconds", "30"]);
    let mut line = String::new();
    std::io::BufReader::new(relay.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a relay line");
    let url = line
        .trim()
        .strip_prefix("relay ")
        .expect("relay <url>")
        .to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let (_host, space, _) = spawn_host(&[
        "host",
        "--relay",
        &url,
        "--input",
        "tone",
        "--output",
        "null",
        "--seconds",
        "20",
    ]);
    let mut listener = join(
        &space,
        &url,
        "300",
        &["--expect-tone", "440", "--seconds", "8"],
    );
    let report = heard_report(&mut listener);
    let share = report["tone_pct"].as_f64().expect("share");
    assert!(share >= 90.0, "through the standalone relay: {report}");
}

#[test]
fn a_joiner_without_relay_finds_the_relay_its_host_really_started() {
    // Something else holds the default port: the host's embedded relay takes another one.
    let blocker = std::net::TcpListener::bind("127.0.0.1:7777");
    let (_host, space, relay) = spawn_tone_host("20");
    if blocker.is_ok() {
        assert!(!relay.ends_with(":7777"), "{relay}");
    }
    let mut listener = spaces(&[
        "join",
        &space,
        "--output",
        "null",
        "--expect-tone",
        "440",
        "--seconds",
        "8",
    ]);
    let report = heard_report(&mut listener);
    assert!(
        report["tone_pct"].as_f64().expect("share") >= 90.0,
        "no --relay, host on {relay}: {report}"
    );
}

/// `spaces <args>` in the background, its stdout kept for the test.
fn spaces(args: &[&str]) -> Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spaces starts");
    Reaped(child)
}

fn join(space: &str, relay: &str, uplink_kbps: &str, extra: &[&str]) -> Reaped {
    let mut args = vec!["join", space, "--relay", relay, "--output", "null"];
    args.extend(["--uplink-kbps", uplink_kbps]);
    args.extend(extra);
    spaces(&args)
}

/// The JSON line `join --expect-tone` prints when it is done.
fn heard_report(listener: &mut Reaped) -> Value {
    let mut output = String::new();
    listener
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut output)
        .expect("the listener finishes and reports");
    serde_json::from_str(output.trim()).expect("one JSON line")
}

fn signal(process: &Reaped, name: &str) {
    let status = Command::new("kill")
        .args([name, &process.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {name}");
}

#[test]
fn children_of_a_frozen_relay_under_a_one_seat_host_wait_for_it_and_hear_on() {
    // 120 kbit/s: one seat at the host.
    let (_host, space, relay) = spawn_host(&[
        "host",
        "--input",
        "tone",
        "--output",
        "null",
        "--uplink-kbps",
        "120",
        "--seconds",
        "40",
    ]);
    let frozen = join(&space, &relay, "2000", &["--seconds", "35"]);
    std::thread::sleep(Duration::from_secs(2));
    let children: Vec<Reaped> = (0..2)
        .map(|_| {
            let child = join(
                &space,
                &relay,
                "300",
                &["--expect-tone", "440", "--seconds", "24"],
            );
            std::thread::sleep(Duration::from_millis(500));
            child
        })
        .collect();
    std::thread::sleep(Duration::from_secs(10));
    signal(&frozen, "-STOP");
    std::thread::sleep(Duration::from_secs(3));
    signal(&frozen, "-CONT");
    for mut child in children {
        let report = heard_report(&mut child);
        eprintln!("{report}");
        let gap = report["gap_ms_max"].as_f64().expect("gap");
        assert!(gap <= 3_300.0, "the longest gap was {gap} ms: {report}");
        assert!(
            report["tone_pct"].as_f64().expect("share") >= 80.0,
            "{report}"
        );
        assert_eq!(report["upstream_lost"], 0, "its parent was kept: {report}");
    }
}

#[test]
fn a_metered_host_feeds_at_most_four_listeners_whatever_its_uplink() {
    // The status line (`children N/capacity`) shows the capacity the host admits against.
    let capacity = |extra: &[&str]| {
        let mut args = vec![
            "host",
            "--input",
            "none",
            "--output",
            "null",
            "--uplink-kbps",
            "5000",
            "--seconds",
            "1",
        ];
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_spaces"))
            .args(&args)
            .output()
            .expect("spaces host runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stderr
            .lines()
            .find(|l| l.starts_with("parent "))
            .unwrap_or_else(|| panic!("a status line: {stderr}"))
            .to_owned();
        let fraction = line.split_whitespace().nth(5).expect("children N/cap");
        let cap = fraction.split('/').nth(1).expect("N/cap");
        cap.parse::<u32>().expect("a number")
    };
    assert_eq!(capacity(&["--metered"]), 4);
    assert!(capacity(&[]) > 4);
}

#[test]
fn a_host_stopped_by_sigterm_leaves_politely_and_exits_cleanly() {
    let (mut host, space, relay) = spawn_tone_host("120");
    // The host notes the relay it started for joiners on this machine (`spaces join` without
    // `--relay`), and removes the note when it stops.
    let mut parts = space.splitn(3, ':');
    let (_, host_key, id) = (parts.next(), parts.next(), parts.next());
    let note = std::env::temp_dir().join("spaces-relays").join(format!(
        "{}-{}",
        host_key.expect("host key"),
        id.expect("id")
    ));
    assert!(
        note.exists(),
        "relay note for {relay} at {}",
        note.display()
    );

    let pid = host.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    // Polled, not timed: the stop is bounded (a LEAVE, DROPs and goodbyes, 3 s at most), and
    // a host that ignored SIGTERM would run its full two minutes.
    let status = (0..300)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            host.0.try_wait().expect("waits")
        })
        .expect("the host exits after SIGTERM");
    assert!(status.success(), "stopped politely, not killed: {status:?}");
    assert!(!note.exists(), "the relay note is removed");
}
