//! A relaying listener frozen for 3 s (SIGSTOP, as a phone suspends an app) under a one-seat
//! host: its children keep their link and wait for it, as real processes.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Reaped, spawn_host};
use serde_json::Value;

fn join(space: &str, relay: &str, uplink_kbps: &str, extra: &[&str]) -> Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args(["join", space, "--relay", relay, "--output", "null"])
        .args(["--uplink-kbps", uplink_kbps])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spaces join starts");
    Reaped(child)
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
        let mut output = String::new();
        child
            .0
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut output)
            .expect("the listener finishes and reports");
        let report: Value = serde_json::from_str(output.trim()).expect("one JSON line");
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
