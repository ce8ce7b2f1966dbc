//! The system's microphone and speaker through cpal (ALSA on Linux, CoreAudio on macOS and
//! iOS, AAudio on Android).
//!
//! A cpal stream may not move between threads on every platform, so each device runs its
//! stream on a thread of its own and exchanges samples with the pipeline through a lock-free
//! single-producer ring buffer: the audio callback never blocks on us.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, StreamConfig, SupportedStreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};

use super::{AudioSink, AudioSource, Resampler};
use crate::media::MediaError;
use crate::media::format::SAMPLE_RATE;

/// One second of audio between the callback and the pipeline.
const RING: usize = SAMPLE_RATE as usize;
/// How long `read` waits for the microphone to deliver a frame before padding with silence.
const READ_WAIT: Duration = Duration::from_millis(100);

/// A running device thread; stopping it drops the stream.
struct DeviceThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DeviceThread {
    /// Runs `open` (which builds and starts a stream) on a new thread and keeps the stream
    /// alive there until stopped. Returns once the stream runs, or with its error.
    fn spawn<S: 'static>(
        name: &str,
        open: impl FnOnce() -> Result<S, MediaError> + Send + 'static,
    ) -> Result<Self, MediaError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || match open() {
                Ok(stream) => {
                    let _ = ready_tx.send(Ok(()));
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    drop(stream);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| MediaError::Device(e.to_string()))?;
        let ready = ready_rx.recv_timeout(Duration::from_secs(5)).map_err(|_| {
            MediaError::Device(format!("{name}: the audio system did not start in 5 s"))
        })?;
        ready?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Picks a 48 kHz configuration when the device has one (no resampling), else its default.
fn pick_config(
    supported: impl Iterator<Item = cpal::SupportedStreamConfigRange>,
    default: Result<SupportedStreamConfig, cpal::Error>,
    direction: &'static str,
) -> Result<SupportedStreamConfig, MediaError> {
    let usable = |f: SampleFormat| matches!(f, SampleFormat::F32 | SampleFormat::I16);
    let native = supported
        .filter(|r| usable(r.sample_format()))
        .find(|r| (r.min_sample_rate()..=r.max_sample_rate()).contains(&SAMPLE_RATE))
        .map(|r| r.with_sample_rate(SAMPLE_RATE));
    match native {
        Some(config) => Ok(config),
        None => default.map_err(|e| MediaError::NoDevice {
            direction,
            reason: e.to_string(),
        }),
    }
}

/// The default microphone, as 48 kHz mono frames.
pub struct SoundCardSource {
    consumer: Consumer<i16>,
    _device: DeviceThread,
}

impl SoundCardSource {
    /// Opens the default input device; [`MediaError::NoDevice`] when there is none.
    pub fn open_default() -> Result<Self, MediaError> {
        let (producer, consumer) = RingBuffer::new(RING);
        let device = DeviceThread::spawn("spaces-mic", move || {
            let host = cpal::default_host();
            let device = host.default_input_device().ok_or(MediaError::NoDevice {
                direction: "input",
                reason: "the system reports no default microphone".into(),
            })?;
            let supported = device
                .supported_input_configs()
                .map_err(|e| MediaError::NoDevice {
                    direction: "input",
                    reason: e.to_string(),
                })?;
            let config = pick_config(supported, device.default_input_config(), "input")?;
            let stream = match config.sample_format() {
                SampleFormat::I16 => build_input::<i16>(&device, &config, producer),
                SampleFormat::F32 => build_input::<f32>(&device, &config, producer),
                other => Err(MediaError::NoDevice {
                    direction: "input",
                    reason: format!("unsupported sample format {other}"),
                }),
            }?;
            stream
                .play()
                .map_err(|e| MediaError::Device(e.to_string()))?;
            tracing::info!(
                rate = config.sample_rate(),
                channels = config.channels(),
                "microphone open"
            );
            Ok(stream)
        })?;
        Ok(Self {
            consumer,
            _device: device,
        })
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: &SupportedStreamConfig,
    mut producer: Producer<i16>,
) -> Result<cpal::Stream, MediaError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels()).max(1);
    let mut resampler = Resampler::new(config.sample_rate(), SAMPLE_RATE);
    let (mut mono, mut resampled) = (Vec::new(), Vec::new());
    let stream_config: StreamConfig = config.config();
    device
        .build_input_stream::<T, _, _>(
            stream_config,
            move |data: &[T], _| {
                mono.clear();
                mono.extend(data.chunks(channels).map(|c| {
                    c.iter().map(|s| f32::from_sample(*s)).sum::<f32>() / channels as f32
                }));
                resampled.clear();
                resampler.process(&mono, &mut resampled);
                for &v in &resampled {
                    // A full ring means the pipeline stalled: drop rather than block the card.
                    let _ = producer.push((v.clamp(-1.0, 1.0) * 32_767.0) as i16);
                }
            },
            |e| tracing::warn!(error = %e, "microphone stream error"),
            None,
        )
        .map_err(|e| MediaError::NoDevice {
            direction: "input",
            reason: e.to_string(),
        })
}

impl AudioSource for SoundCardSource {
    fn read(&mut self, frame: &mut [i16]) -> Result<bool, MediaError> {
        let deadline = Instant::now() + READ_WAIT;
        while self.consumer.slots() < frame.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let n = self.consumer.slots().min(frame.len());
        if let Ok(chunk) = self.consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            frame[..a.len()].copy_from_slice(a);
            frame[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
        }
        frame[n..].fill(0);
        Ok(true)
    }
}

/// The default microphone, opened only while its audio is wanted
/// ([`AudioSource::set_active`]): a listener's phone never records, and a muted speaker's
/// microphone is closed (the platform's recording indicator goes off). Silence while closed.
pub struct Microphone {
    open: Option<SoundCardSource>,
}

impl Microphone {
    /// The default input device, closed. [`MediaError::NoDevice`] when the system has none,
    /// so that a session fails at its start rather than at its first promotion.
    pub fn default_device() -> Result<Self, MediaError> {
        if cpal::default_host().default_input_device().is_none() {
            return Err(MediaError::NoDevice {
                direction: "input",
                reason: "the system reports no default microphone".into(),
            });
        }
        Ok(Self { open: None })
    }
}

impl AudioSource for Microphone {
    fn read(&mut self, frame: &mut [i16]) -> Result<bool, MediaError> {
        match &mut self.open {
            Some(source) => source.read(frame),
            None => {
                frame.fill(0);
                Ok(true)
            }
        }
    }

    fn set_active(&mut self, active: bool) -> Result<(), MediaError> {
        match (active, self.open.is_some()) {
            (true, false) => self.open = Some(SoundCardSource::open_default()?),
            (false, true) => {
                self.open = None;
                tracing::info!("microphone closed");
            }
            _ => {}
        }
        Ok(())
    }
}

/// The default speaker, fed 48 kHz mono frames.
pub struct SoundCardSink {
    producer: Producer<i16>,
    _device: DeviceThread,
}

impl SoundCardSink {
    /// Opens the default output device at 48 kHz; [`MediaError::NoDevice`] when there is none
    /// or it cannot run at 48 kHz.
    pub fn open_default() -> Result<Self, MediaError> {
        let (producer, consumer) = RingBuffer::new(RING);
        let device = DeviceThread::spawn("spaces-speaker", move || {
            let host = cpal::default_host();
            let device = host.default_output_device().ok_or(MediaError::NoDevice {
                direction: "output",
                reason: "the system reports no default speaker".into(),
            })?;
            let supported =
                device
                    .supported_output_configs()
                    .map_err(|e| MediaError::NoDevice {
                        direction: "output",
                        reason: e.to_string(),
                    })?;
            let config = pick_config(supported, device.default_output_config(), "output")?;
            if config.sample_rate() != SAMPLE_RATE {
                return Err(MediaError::NoDevice {
                    direction: "output",
                    reason: format!("device runs at {} Hz, not 48000", config.sample_rate()),
                });
            }
            let stream = match config.sample_format() {
                SampleFormat::I16 => build_output::<i16>(&device, &config, consumer),
                SampleFormat::F32 => build_output::<f32>(&device, &config, consumer),
                other => Err(MediaError::NoDevice {
                    direction: "output",
                    reason: format!("unsupported sample format {other}"),
                }),
            }?;
            stream
                .play()
                .map_err(|e| MediaError::Device(e.to_string()))?;
            tracing::info!(channels = config.channels(), "speaker open");
            Ok(stream)
        })?;
        Ok(Self {
            producer,
            _device: device,
        })
    }
}

fn build_output<T>(
    device: &cpal::Device,
    config: &SupportedStreamConfig,
    mut consumer: Consumer<i16>,
) -> Result<cpal::Stream, MediaError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels()).max(1);
    device
        .build_output_stream::<T, _, _>(
            config.config(),
            move |data: &mut [T], _| {
                for frame in data.chunks_mut(channels) {
                    // Underrun: silence (the slice is pre-filled with it).
                    let Ok(sample) = consumer.pop() else { break };
                    let value = T::from_sample(f32::from(sample) / 32_768.0);
                    frame.fill(value);
                }
            },
            |e| tracing::warn!(error = %e, "speaker stream error"),
            None,
        )
        .map_err(|e| MediaError::NoDevice {
            direction: "output",
            reason: e.to_string(),
        })
}

impl AudioSink for SoundCardSink {
    fn write(&mut self, frame: &[i16]) -> Result<(), MediaError> {
        for &sample in frame {
            if self.producer.push(sample).is_err() {
                // The card fell behind by a second: drop the rest of this frame.
                break;
            }
        }
        Ok(())
    }
}
