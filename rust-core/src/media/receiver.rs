//! One incoming stream from jitter buffer to PCM: what playout pulls every 20 ms.

use super::MediaError;
use super::codec::Decoder;
use super::format::FRAME_SAMPLES;
use super::jitter::{Arrival, JitterBuffer, JitterConfig, JitterStats, Packet, Playout};

/// Jitter buffer plus decoder for one speaker.
pub struct AudioReceiver {
    jitter: JitterBuffer,
    decoder: Decoder,
}

impl AudioReceiver {
    /// A receiver with its own decoder state.
    pub fn new(config: JitterConfig) -> Result<Self, MediaError> {
        Ok(Self {
            jitter: JitterBuffer::new(config),
            decoder: Decoder::new()?,
        })
    }

    /// Queues a received packet.
    pub fn push(&mut self, packet: Packet, arrival_ms: u64) -> Arrival {
        self.jitter.insert(packet, arrival_ms)
    }

    /// The next 20 ms of audio; `None` while buffering. A corrupt packet is concealed rather
    /// than played (and counted by libopus' error).
    pub fn pull(&mut self) -> Option<Vec<i16>> {
        let playout = self.jitter.pop()?;
        let mut frame = vec![0i16; FRAME_SAMPLES];
        let decoded = match &playout {
            Playout::Packet(payload) => self.decoder.decode(payload, &mut frame),
            Playout::Recover(next) => self.decoder.recover(next, &mut frame),
            Playout::Conceal => self.decoder.conceal(&mut frame),
        };
        if let Err(e) = decoded {
            tracing::debug!(error = %e, "undecodable packet concealed");
            if self.decoder.conceal(&mut frame).is_err() {
                frame.fill(0);
            }
        }
        Some(frame)
    }

    /// RTP timestamp of the frame the last `pull` produced.
    pub fn last_played_timestamp(&self) -> Option<u32> {
        self.jitter.last_played_timestamp()
    }

    /// Jitter-buffer counters.
    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }
}
