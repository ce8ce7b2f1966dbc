//! Topology: who feeds whom. Pure logic: capacity from real uplink, the draft's scoring, and
//! the tree rules every participant runs (parent and backup choice, admission, displacement,
//! hand-on, pull-up, shedding) over the tree as its view shows it.

mod capacity;
mod metrics;
mod score;
mod tree;
pub(crate) use tree::{mix, word};

pub use capacity::CapacityPolicy;
pub use metrics::{MetricsError, PeerMetrics};
pub use score::{Candidate, ScoreWeights, score};
pub use tree::{
    Admission, NEAR_SEAT_RENEW_SECS, RESERVATION_FRESH_SECS, SEAT_PROVEN_SECS, SEAT_RENEW_SECS,
    Seats, TreeRules, TreeView, Want, branch_of, climb_reach, lineage_bits, renew_secs,
};

#[cfg(test)]
mod tests;
