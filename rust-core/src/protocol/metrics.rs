//! The network metrics peers announce (JOIN and CREATE content), as the draft spells them.

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// Above any real access link (10 Gbit/s), a value is a bug or a lie.
const MAX_KBPS: f64 = 10_000_000.0;
/// More simultaneous outputs than any device can encode for.
const MAX_OUTPUTS: f64 = 10_000.0;

/// How a device reaches the Internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    /// Wi-Fi.
    Wifi,
    /// Wired.
    Ethernet,
    /// Mobile data (2G to 5G).
    Cellular,
    /// Not reported or not recognised.
    #[default]
    Unknown,
}

impl ConnectionType {
    /// Reads the names clients send: the draft's free text and the browser's
    /// `navigator.connection` values (`wifi`, `4g`, `cellular`, …), case-insensitive.
    pub fn from_wire(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "wifi" | "wi-fi" | "wlan" => Self::Wifi,
            "ethernet" | "wired" | "lan" => Self::Ethernet,
            "cellular" | "mobile" | "lte" | "5g" | "4g" | "3g" | "2g" | "slow-2g" => Self::Cellular,
            _ => Self::Unknown,
        }
    }
}

/// What a peer says about its link. Announced by the peer itself, so only a hint: the
/// tree rules also measure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetworkMetrics {
    /// Download capacity, kbit/s.
    pub download_kbps: u32,
    /// Upload capacity, kbit/s.
    pub upload_kbps: u32,
    /// How many audio streams the peer is willing to send.
    pub max_audio_outputs: u32,
    /// Access network.
    pub connection: ConnectionType,
}

/// The draft's JSON shape (`downloadSpeedKbps`, …). Numbers may arrive as floats.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireMetrics {
    #[serde(default)]
    download_speed_kbps: f64,
    #[serde(default)]
    upload_speed_kbps: f64,
    #[serde(default)]
    max_audio_outputs: f64,
    #[serde(default)]
    network_connection_type: String,
}

impl From<&NetworkMetrics> for WireMetrics {
    fn from(m: &NetworkMetrics) -> Self {
        Self {
            download_speed_kbps: f64::from(m.download_kbps),
            upload_speed_kbps: f64::from(m.upload_kbps),
            max_audio_outputs: f64::from(m.max_audio_outputs),
            network_connection_type: serde_json::to_value(m.connection)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<WireMetrics> for NetworkMetrics {
    type Error = ProtocolError;
    fn try_from(w: WireMetrics) -> Result<Self, ProtocolError> {
        let check = |name: &str, v: f64, max: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                // In range, so the rounded value fits u32.
                Ok(v.round() as u32)
            } else {
                Err(ProtocolError::BadMetrics(format!(
                    "{name} = {v} outside [0, {max}]"
                )))
            }
        };
        Ok(Self {
            download_kbps: check("downloadSpeedKbps", w.download_speed_kbps, MAX_KBPS)?,
            upload_kbps: check("uploadSpeedKbps", w.upload_speed_kbps, MAX_KBPS)?,
            max_audio_outputs: check("maxAudioOutputs", w.max_audio_outputs, MAX_OUTPUTS)?,
            connection: ConnectionType::from_wire(&w.network_connection_type),
        })
    }
}
