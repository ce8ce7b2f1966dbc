//! Topology: who feeds whom. Pure logic over a petgraph tree: capacity from real uplink,
//! the draft's scoring, an incremental planner with warm backups and repair, a naive baseline
//! and a seeded simulation.

mod capacity;
mod metrics;
mod naive;
mod planner;
mod score;
pub mod sim;
mod tree;

pub use capacity::CapacityPolicy;
pub use metrics::{MetricsError, PeerMetrics};
pub use naive::naive_plan;
pub use planner::{Move, PlanDelta, PlanError, Planner, PlannerConfig};
pub use score::{Candidate, ScoreWeights, score};
pub use tree::{Admission, Seats, TreeRules, TreeView, Want};

#[cfg(test)]
mod tests;
