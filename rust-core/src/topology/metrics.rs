//! What the planner knows of a peer's network: announced by the platform, refined by
//! measurement. Absurd values are refused, never clamped silently.

use crate::protocol::{ConnectionType, NetworkMetrics};

/// Above any real access link (10 Gbit/s).
const MAX_KBPS: f64 = 10_000_000.0;
/// Longer than a round trip to the Moon and back, twice.
const MAX_RTT_MS: f64 = 10_000.0;

/// Why metrics were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// A value is NaN, infinite, negative or beyond physical limits.
    #[error("{field} = {value} is outside [0, {max}]")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value.
        value: f64,
        /// The largest accepted.
        max: f64,
    },
}

/// A peer's network as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerMetrics {
    /// Download capacity, kbit/s.
    pub download_kbps: f64,
    /// Upload capacity, kbit/s (speed-test style: a burst figure, used with headroom).
    pub upload_kbps: f64,
    /// Streams the peer is willing to send (0 = no limit announced).
    pub max_audio_outputs: u32,
    /// Access network.
    pub connection: ConnectionType,
    /// The platform says data is metered (cellular plans).
    pub metered: bool,
    /// The platform says the battery is low.
    pub low_battery: bool,
    /// Measured round trip to its parent, ms.
    pub rtt_parent_ms: Option<f64>,
    /// Measured send rate actually achieved per child, kbit/s (overrides the uplink figure).
    pub achieved_kbps_per_child: Option<f64>,
}

impl Default for PeerMetrics {
    fn default() -> Self {
        Self {
            download_kbps: 0.0,
            upload_kbps: 0.0,
            max_audio_outputs: 0,
            connection: ConnectionType::Unknown,
            metered: false,
            low_battery: false,
            rtt_parent_ms: None,
            achieved_kbps_per_child: None,
        }
    }
}

impl PeerMetrics {
    /// Checks every value against physical limits.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let check = |field, value: f64, max: f64| {
            if value.is_finite() && (0.0..=max).contains(&value) {
                Ok(())
            } else {
                Err(MetricsError::OutOfRange { field, value, max })
            }
        };
        check("download_kbps", self.download_kbps, MAX_KBPS)?;
        check("upload_kbps", self.upload_kbps, MAX_KBPS)?;
        if let Some(rtt) = self.rtt_parent_ms {
            check("rtt_parent_ms", rtt, MAX_RTT_MS)?;
        }
        if let Some(rate) = self.achieved_kbps_per_child {
            check("achieved_kbps_per_child", rate, MAX_KBPS)?;
        }
        Ok(())
    }
}

impl From<&NetworkMetrics> for PeerMetrics {
    fn from(m: &NetworkMetrics) -> Self {
        Self {
            download_kbps: f64::from(m.download_kbps),
            upload_kbps: f64::from(m.upload_kbps),
            max_audio_outputs: m.max_audio_outputs,
            connection: m.connection,
            metered: m.connection == ConnectionType::Cellular,
            ..Self::default()
        }
    }
}
