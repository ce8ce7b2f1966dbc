//! The draft's "Peers collaboration rules": how good a parent a peer is for a newcomer.

use crate::protocol::Role;

/// Weights of the composite score (the reference implementation's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// Weight of proximity to the host (fewer hops).
    pub distance: f64,
    /// Weight of network quality (uplink per output along the path).
    pub speed: f64,
    /// Weight of spare capacity.
    pub load: f64,
    /// Uplink per output considered ideal, kbit/s.
    pub optimum_kbps: f64,
    /// Depth at which proximity reaches 0.
    pub horizon: u32,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            distance: 0.4,
            speed: 0.4,
            load: 0.2,
            optimum_kbps: 500.0,
            horizon: 8,
        }
    }
}

/// What the score looks at on the candidate parent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its role.
    pub role: Role,
    /// Hops from the host (host = 0).
    pub depth: u32,
    /// Smallest uplink per output on its path from the host, kbit/s.
    pub path_kbps_per_output: f64,
    /// Its capacity in children.
    pub capacity: u32,
    /// Children it already has.
    pub children: u32,
}

/// Score of `candidate` as parent of a peer with role `child_role`, in [0, 1]. Score 1 when
/// both speak (host, co-hosts and speakers form a mesh); else
/// proximity·w_d + network·w_s + load·w_l.
pub fn score(weights: &ScoreWeights, child_role: Role, candidate: &Candidate) -> f64 {
    if child_role.speaks() && candidate.role.speaks() {
        return 1.0;
    }
    let horizon = f64::from(weights.horizon.max(1));
    let proximity = ((horizon - f64::from(candidate.depth)) / horizon).clamp(0.0, 1.0);
    let network = (candidate.path_kbps_per_output.min(weights.optimum_kbps) / weights.optimum_kbps)
        .clamp(0.0, 1.0);
    let load = if candidate.capacity == 0 {
        0.0
    } else {
        f64::from(candidate.capacity.saturating_sub(candidate.children))
            / f64::from(candidate.capacity)
    };
    let total = weights.distance + weights.speed + weights.load;
    if total <= 0.0 {
        return 0.0;
    }
    (proximity * weights.distance + network * weights.speed + load * weights.load) / total
}
