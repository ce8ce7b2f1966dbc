//! `spaces geo`: the first device in a cell opens its space, the next one (elsewhere in the
//! same cell) finds and joins it; a device in another cell finds nothing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{frames_with_tone, spawn_host};

/// A device at (lat, lon) that opens its cell's space, sending `input`, for `seconds`.
fn geo_host(
    lat: &str,
    lon: &str,
    input: &str,
    seconds: &str,
    extra: &[&str],
) -> (common::Reaped, String, String) {
    let mut args = vec![
        "geo",
        "--lat",
        lat,
        "--lon",
        lon,
        "--host-if-empty",
        "--input",
        input,
        "--output",
        "null",
        "--seconds",
        seconds,
    ];
    args.extend_from_slice(extra);
    spawn_host(&args)
}

#[test]
fn the_second_device_in_a_cell_joins_the_first_ones_space() {
    let (first, space, relay) = geo_host("48.853", "-2.341", "tone", "20", &[]);

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
            "geo",
            "--lat",
            "43.6047",
            "--lon",
            "1.4442",
            "--relay",
            &relay,
            "--seconds",
            "5",
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

    drop(first);
    let with_tone = frames_with_tone(&wav, 440.0);
    assert!(with_tone >= 150, "{with_tone} frames carry the host's tone");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_device_that_walks_into_another_cell_moves_to_that_cells_space() {
    // Two cells with a space each: Lyon 45.76,4.83 (440 Hz) and Marseille 43.30,5.37 (660 Hz)
    // (cells no other test of this suite uses: they may share the default relay port).
    let (lyon, lyon_space, relay) = geo_host("45.7612", "4.8321", "tone", "40", &[]);
    let (marseille, marseille_space, _) =
        geo_host("43.2961", "5.3722", "tone:660", "40", &["--relay", &relay]);
    assert_ne!(lyon_space, marseille_space);

    let dir = std::env::temp_dir().join(format!("spaces-cli-walk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wav = dir.join("walker.wav");
    let mut walker = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args([
            "geo",
            "--lat",
            "45.7588",
            "--lon",
            "4.8338",
            "--relay",
            &relay,
            "--fixes",
            "-",
            "--seconds",
            "14",
            "--output",
        ])
        .arg(&wav)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("walker runs");
    let mut stdin = walker.stdin.take().expect("stdin");
    let mut lines = BufReader::new(walker.stdout.take().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok),
        Some(format!("joining {lyon_space}"))
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    // Noise first: a malformed line and an impossible fix change nothing.
    writeln!(stdin, "forty-eight two").expect("writes");
    writeln!(stdin, "95.0 2.34 10").expect("writes");
    // Then a clear fix in Marseille: the device moves at once (far beyond the margin).
    writeln!(stdin, "43.2978 5.3689 8").expect("writes");
    stdin.flush().expect("flushes");
    assert_eq!(
        lines.next().and_then(Result::ok),
        Some(format!("joining {marseille_space}"))
    );
    let output = walker.wait_with_output().expect("walker ends");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("moved to cell 43.30,5.37"), "{stderr}");
    assert!(stderr.contains("--fixes line 1"), "{stderr}");
    assert!(stderr.contains("fix not followed"), "{stderr}");

    drop((lyon, marseille));
    // The recording is the last space's: Marseille's tone, not Lyon's.
    let marseille_frames = frames_with_tone(&wav, 660.0);
    let lyon_frames = frames_with_tone(&wav, 440.0);
    assert!(
        marseille_frames >= 150,
        "{marseille_frames} frames at 660 Hz"
    );
    assert_eq!(lyon_frames, 0, "Lyon's tone after the move");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
