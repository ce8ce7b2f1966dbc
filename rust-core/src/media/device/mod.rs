//! Where audio comes from and goes to, behind two traits: sound cards (cpal: ALSA, CoreAudio,
//! AAudio), WAV files, a tone generator and null devices.

mod file;
mod resample;
#[cfg(feature = "sound-card")]
mod sound_card;
mod synthetic;

use std::path::PathBuf;

pub use file::{WavSink, WavSource};
pub use resample::Resampler;
#[cfg(feature = "sound-card")]
pub use sound_card::{Microphone, SoundCardSink, SoundCardSource};
pub use synthetic::{NullSink, NullSource, ToneSource};

use super::MediaError;

/// Produces 20 ms mono 48 kHz frames.
pub trait AudioSource: Send {
    /// Fills `frame` ([`super::FRAME_SAMPLES`] samples) with the next 20 ms. `Ok(false)` when
    /// the source has ended (end of a file); the frame is then silence.
    fn read(&mut self, frame: &mut [i16]) -> Result<bool, MediaError>;

    /// Whether its audio is wanted now (we speak and are not muted). A microphone opens the
    /// device only while active, so that a listener's phone never records, and reads
    /// silence otherwise; other sources ignore it.
    fn set_active(&mut self, active: bool) -> Result<(), MediaError> {
        let _ = active;
        Ok(())
    }
}

/// Consumes 20 ms mono 48 kHz frames.
pub trait AudioSink: Send {
    /// Plays or stores one frame.
    fn write(&mut self, frame: &[i16]) -> Result<(), MediaError>;
    /// Flushes what is buffered (finishes a file).
    fn finish(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
}

/// Which input to open.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// The default microphone.
    SoundCard,
    /// A sine tone.
    Tone {
        /// Frequency.
        freq_hz: f32,
        /// Peak amplitude, 0–1 of full scale.
        amplitude: f32,
    },
    /// A WAV file (any rate, mono or stereo, 16-bit or float), played once.
    Wav(PathBuf),
    /// Silence.
    Null,
}

/// Which output to open.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputSpec {
    /// The default speaker.
    SoundCard,
    /// A 48 kHz mono 16-bit WAV file.
    Wav(PathBuf),
    /// Nowhere.
    Null,
}

/// Opens an input. A missing sound card is [`MediaError::NoDevice`]: callers decide whether
/// to fall back to a file or silence.
pub fn open_input(spec: &InputSpec) -> Result<Box<dyn AudioSource>, MediaError> {
    Ok(match spec {
        InputSpec::Tone { freq_hz, amplitude } => Box::new(ToneSource::new(*freq_hz, *amplitude)),
        InputSpec::Wav(path) => Box::new(WavSource::open(path)?),
        InputSpec::Null => Box::new(NullSource),
        #[cfg(feature = "sound-card")]
        InputSpec::SoundCard => Box::new(Microphone::default_device()?),
        #[cfg(not(feature = "sound-card"))]
        InputSpec::SoundCard => {
            return Err(MediaError::NoDevice {
                direction: "input",
                reason: "built without the sound-card feature".into(),
            });
        }
    })
}

/// Opens an output. A missing sound card is [`MediaError::NoDevice`].
pub fn open_output(spec: &OutputSpec) -> Result<Box<dyn AudioSink>, MediaError> {
    Ok(match spec {
        OutputSpec::Wav(path) => Box::new(WavSink::create(path)?),
        OutputSpec::Null => Box::new(NullSink),
        #[cfg(feature = "sound-card")]
        OutputSpec::SoundCard => Box::new(SoundCardSink::open_default()?),
        #[cfg(not(feature = "sound-card"))]
        OutputSpec::SoundCard => {
            return Err(MediaError::NoDevice {
                direction: "output",
                reason: "built without the sound-card feature".into(),
            });
        }
    })
}
