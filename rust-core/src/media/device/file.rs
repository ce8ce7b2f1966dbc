//! WAV files as a source (any rate, mono or stereo) and a sink (48 kHz mono 16-bit).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

use super::{AudioSink, AudioSource, Resampler};
use crate::media::MediaError;
use crate::media::format::SAMPLE_RATE;

fn wav_error(path: &Path, e: impl std::fmt::Display) -> MediaError {
    MediaError::Wav {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// A WAV file, decoded to 48 kHz mono up front (speech files are small), played once.
#[derive(Debug, Clone)]
pub struct WavSource {
    samples: Vec<i16>,
    position: usize,
}

impl WavSource {
    /// Reads a file: 8/16/24/32-bit integer or 32-bit float, any rate, any channel count
    /// (channels are averaged).
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let mut reader = WavReader::open(path).map_err(|e| wav_error(path, e))?;
        let spec = reader.spec();
        if spec.channels == 0 {
            return Err(wav_error(path, "no channels"));
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            SampleFormat::Float => reader
                .samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(|e| wav_error(path, e))?,
            SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(|e| wav_error(path, e))?
            }
        };
        let channels = usize::from(spec.channels);
        let mono: Vec<f32> = interleaved
            .chunks(channels)
            .map(|c| c.iter().sum::<f32>() / channels as f32)
            .collect();
        let mut resampled = Vec::with_capacity(mono.len());
        Resampler::new(spec.sample_rate, SAMPLE_RATE).process(&mono, &mut resampled);
        let samples = resampled
            .into_iter()
            .map(|v| (v.clamp(-1.0, 1.0) * 32_767.0).round() as i16)
            .collect();
        Ok(Self {
            samples,
            position: 0,
        })
    }
}

impl AudioSource for WavSource {
    fn read(&mut self, frame: &mut [i16]) -> Result<bool, MediaError> {
        let available = self.samples.len().saturating_sub(self.position);
        let n = available.min(frame.len());
        frame[..n].copy_from_slice(&self.samples[self.position..self.position + n]);
        frame[n..].fill(0);
        self.position += n;
        Ok(n > 0)
    }
}

/// Writes 48 kHz mono 16-bit PCM.
pub struct WavSink {
    path: String,
    writer: Option<WavWriter<BufWriter<File>>>,
}

impl WavSink {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> Result<Self, MediaError> {
        let spec = WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let writer = WavWriter::create(path, spec).map_err(|e| wav_error(path, e))?;
        Ok(Self {
            path: path.display().to_string(),
            writer: Some(writer),
        })
    }
}

impl AudioSink for WavSink {
    fn write(&mut self, frame: &[i16]) -> Result<(), MediaError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(wav_error(Path::new(&self.path), "already finished"));
        };
        for &sample in frame {
            writer
                .write_sample(sample)
                .map_err(|e| wav_error(Path::new(&self.path), e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        match self.writer.take() {
            Some(writer) => writer
                .finalize()
                .map_err(|e| wav_error(Path::new(&self.path), e)),
            None => Ok(()),
        }
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(error = %e, "WAV file not finalised");
        }
    }
}
