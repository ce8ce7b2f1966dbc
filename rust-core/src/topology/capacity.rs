//! How many children a peer can feed: usable uplink ÷ wire bitrate of one stream, capped by
//! connection type, announced outputs and platform hints.

use crate::protocol::ConnectionType;

use super::PeerMetrics;

/// Capacity rules. Defaults follow `docs/TOPOLOGY.md` (research: performance anchors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityPolicy {
    /// Opus bitrate, bit/s.
    pub opus_bps: f64,
    /// Bytes of headers per packet: IPv4 20 + UDP 8 + RTP 12 + SRTP tag 10 + extensions 12.
    pub header_bytes: f64,
    /// Packets per second (20 ms frames).
    pub packets_per_second: f64,
    /// Share of a speed-test uplink we dare use on Wi-Fi or wired links.
    pub headroom_fixed: f64,
    /// Share on cellular: bursty, deep buffers turn overshoot into seconds of delay.
    pub headroom_cellular: f64,
    /// Most children on Wi-Fi or wired.
    pub cap_fixed: u32,
    /// Most children on cellular.
    pub cap_cellular: u32,
    /// Most children on a metered plan (each child costs ~22 MB per hour).
    pub cap_metered: u32,
    /// Most children on low battery.
    pub cap_low_battery: u32,
}

impl Default for CapacityPolicy {
    fn default() -> Self {
        Self {
            opus_bps: 32_000.0,
            header_bytes: 62.0,
            packets_per_second: 50.0,
            headroom_fixed: 0.5,
            headroom_cellular: 0.25,
            cap_fixed: 64,
            cap_cellular: 12,
            cap_metered: 4,
            cap_low_battery: 2,
        }
    }
}

impl CapacityPolicy {
    /// Wire bitrate of one forwarded stream, kbit/s.
    pub fn stream_kbps(&self) -> f64 {
        (self.opus_bps + self.header_bytes * 8.0 * self.packets_per_second) / 1_000.0
    }

    /// Children the host can feed: as any peer, but at least one when its whole uplink carries
    /// a stream (a space whose host reaches nobody is silent, whatever the headroom rule says).
    pub fn host_children(&self, m: &PeerMetrics) -> u32 {
        let by_policy = self.children(m, 1);
        if by_policy == 0 && m.upload_kbps >= self.stream_kbps() {
            1
        } else {
            by_policy
        }
    }

    /// The uplink (kbit/s) to announce so that everyone's capacity rule gives `outputs` for a
    /// peer on `connection`: how a measured capacity is published in the draft's terms.
    pub fn uplink_for(&self, outputs: u32, connection: ConnectionType, is_host: bool) -> u32 {
        let headroom = match connection {
            ConnectionType::Cellular | ConnectionType::Unknown => self.headroom_cellular,
            ConnectionType::Wifi | ConnectionType::Ethernet => self.headroom_fixed,
        };
        // The host's rule gives one output from a single stream's worth, without headroom.
        if is_host && outputs == 1 {
            return self.stream_kbps().ceil() as u32;
        }
        (f64::from(outputs) * self.stream_kbps() / headroom).ceil() as u32
    }

    /// Children a member can feed with one stream each: the host by [`Self::host_children`],
    /// anyone else by [`Self::children`].
    pub fn outputs(&self, m: &PeerMetrics, is_host: bool) -> u32 {
        if is_host {
            self.host_children(m)
        } else {
            self.children(m, 1)
        }
    }

    /// Children a peer can feed with `streams` concurrent streams per child.
    pub fn children(&self, m: &PeerMetrics, streams: u32) -> u32 {
        let per_child = self.stream_kbps() * f64::from(streams.max(1));
        let (headroom, type_cap) = match m.connection {
            ConnectionType::Cellular | ConnectionType::Unknown => {
                (self.headroom_cellular, self.cap_cellular)
            }
            ConnectionType::Wifi | ConnectionType::Ethernet => {
                (self.headroom_fixed, self.cap_fixed)
            }
        };
        let by_uplink = match m.achieved_kbps_per_child {
            // Measured: what each child really got. Scale the current uplink estimate by it.
            Some(achieved) if achieved < per_child => {
                (m.upload_kbps * headroom / per_child * (achieved / per_child)).floor()
            }
            _ => (m.upload_kbps * headroom / per_child).floor(),
        };
        let mut cap = (by_uplink.max(0.0) as u32).min(type_cap);
        if m.max_audio_outputs > 0 {
            cap = cap.min(m.max_audio_outputs);
        }
        if m.metered {
            cap = cap.min(self.cap_metered);
        }
        if m.low_battery {
            cap = cap.min(self.cap_low_battery);
        }
        // A relay for a single child adds a hop without widening the tree: leaf instead.
        if cap < 2 { 0 } else { cap }
    }
}
