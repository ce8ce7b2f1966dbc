//! Helpers shared by the CLI suites: a `spaces` process that opens a space, and the tone in a
//! recorded WAV.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use spaces_core::media::FRAME_SAMPLES;
use spaces_core::media::analysis::has_tone;
use spaces_core::media::device::{AudioSource, WavSource};

/// Starts `spaces <args>` and reads the two lines a hosting command prints first:
/// `space <address>` (or `joining …` when it joined instead) and `relay <url>`.
pub fn spawn_host(args: &[&str]) -> (Reaped, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spaces"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spaces starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let space = lines.next().and_then(Result::ok).expect("a space line");
    let relay = lines.next().and_then(Result::ok).expect("a relay line");
    let space = space
        .strip_prefix("space ")
        .expect("it opened a space")
        .to_owned();
    let relay = relay
        .strip_prefix("relay ")
        .expect("relay <url>")
        .to_owned();
    (Reaped(child), space, relay)
}

/// `spaces host` sending its 440 Hz tone, playing nothing, for `seconds`.
#[allow(dead_code)] // not every suite that shares this module hosts a tone
pub fn spawn_tone_host(seconds: &str) -> (Reaped, String, String) {
    spawn_host(&[
        "host",
        "--input",
        "tone",
        "--output",
        "null",
        "--seconds",
        seconds,
    ])
}

/// How many 20 ms frames of a WAV file carry `freq_hz`.
pub fn frames_with_tone(path: &Path, freq_hz: f32) -> usize {
    let mut source = WavSource::open(path).expect("a WAV was written");
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut with_tone = 0;
    while source.read(&mut frame).expect("reads") {
        with_tone += usize::from(has_tone(&frame, freq_hz));
    }
    with_tone
}

/// A child process killed when the test ends, even by a failed assertion: a leftover host
/// would keep its relay port and its live space for the next test.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
