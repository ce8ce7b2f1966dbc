//! Topology: who feeds whom. Pure logic over a petgraph tree: capacity from real uplink,
//! the draft's scoring, an incremental planner with warm backups and repair, a naive baseline
//! and a seeded simulation.

mod capacity;
mod metrics;
mod score;
mod tree;
pub(crate) use tree::{mix, word};

pub use capacity::CapacityPolicy;
pub use metrics::{MetricsError, PeerMetrics};
pub use score::{Candidate, ScoreWeights, score};
pub use tree::{
    Admission, RESERVATION_FRESH_SECS, SEAT_PROVEN_SECS, SEAT_RENEW_SECS, Seats, TreeRules,
    TreeView, Want, branch_of, climb_reach, lineage_bits,
};

#[cfg(test)]
mod tests;
