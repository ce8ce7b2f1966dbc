//! Who feeds whom with audio, as the hearing model reads it: each node's connected upstream
//! and downstream links by node id, and the feeds they make (a link connected at both ends,
//! upstream at one and downstream at the other).
//!
//! The world looks at the audio ten times a simulated second; at 10,000 nodes, reading every
//! participant's links each time cost more than the participants themselves. Here a node's
//! links are read again only when it handled something and they changed
//! ([`crate::participant::Links::changes`]), and each node keeps the feeds it takes, sorted and
//! inline, so that a look walks through them node by node (an ordered set of all feeds was a
//! sixth of the simulator's time at 10,000, its walk a cache miss per feed).

use smallvec::SmallVec;

use super::world::NodeId;

/// The nodes feeding one node: a parent and a warm backup, rarely more, kept inline so that a
/// walk over every node's feeders reads one contiguous vector.
type Feeders = SmallVec<[NodeId; 2]>;

/// One node's links as last read.
#[derive(Debug, Default)]
struct Ends {
    /// Peers on connected upstream links, sorted.
    up: Vec<NodeId>,
    /// Peers on connected downstream links, sorted.
    down: Vec<NodeId>,
    /// The links' count of changes when read ([`crate::participant::Links::changes`]).
    changes: u64,
}

/// The wiring of every node.
#[derive(Debug, Default)]
pub(super) struct Wiring {
    ends: Vec<Ends>,
    /// The participant handled an input or a timeout since its links were read.
    stale: Vec<bool>,
    /// For each node, the nodes feeding it, sorted.
    feeders: Vec<Feeders>,
    /// Counts the reads that changed a node's connected links.
    version: u64,
}

impl Wiring {
    /// A new node, with no links yet.
    pub fn push(&mut self) {
        self.ends.push(Ends::default());
        self.stale.push(false);
        self.feeders.push(Feeders::new());
    }

    /// `node` handled something: its links may have changed.
    pub fn touch(&mut self, node: NodeId) {
        self.stale[node] = true;
    }

    /// The nodes whose links may have changed since they were read; each is read again
    /// with [`Self::read`].
    pub fn take_stale(&mut self) -> Vec<NodeId> {
        let stale: Vec<NodeId> = (0..self.stale.len()).filter(|n| self.stale[*n]).collect();
        for node in &stale {
            self.stale[*node] = false;
        }
        stale
    }

    /// Whether `node`'s links changed at all since read (most inputs, loss reports above
    /// all, change none); notes `changes` as read.
    pub fn changed(&mut self, node: NodeId, changes: u64) -> bool {
        let ends = &mut self.ends[node];
        std::mem::replace(&mut ends.changes, changes) != changes
    }

    /// `node`'s links as read now: their peers upstream and downstream (both sorted).
    pub fn read(&mut self, node: NodeId, up: Vec<NodeId>, down: Vec<NodeId>) {
        if self.ends[node].up == up && self.ends[node].down == down {
            return;
        }
        self.version += 1;
        let changes = self.ends[node].changes;
        let old = std::mem::replace(&mut self.ends[node], Ends { up, down, changes });
        // Our feeds, and the feeds we give, as both ends say now.
        self.feeders[node].clear();
        for fed in &old.down {
            unfeed(&mut self.feeders[*fed], node);
        }
        let ends = &self.ends[node];
        for &feeder in &ends.up {
            if self.ends[feeder].down.binary_search(&node).is_ok() {
                // `up` is sorted: the feeders come in order.
                self.feeders[node].push(feeder);
            }
        }
        for &fed in &ends.down {
            if self.ends[fed].up.binary_search(&node).is_ok() {
                let feeders = &mut self.feeders[fed];
                if let Err(at) = feeders.binary_search(&node) {
                    feeders.insert(at, node);
                }
            }
        }
    }

    /// Changes whenever a node's connected links do (a new node, with none, changes nothing).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many links `node` feeds.
    pub fn fed_by(&self, node: NodeId) -> usize {
        self.ends[node].down.len()
    }

    /// The peers on `node`'s connected downstream links, sorted.
    pub fn down(&self, node: NodeId) -> &[NodeId] {
        &self.ends[node].down
    }

    /// Every feed, as (the node fed, the node feeding it), by node fed.
    #[cfg(test)]
    pub fn feeds(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.feeders
            .iter()
            .enumerate()
            .flat_map(|(fed, feeders)| feeders.iter().map(move |feeder| (fed, *feeder)))
    }

    /// The nodes that feed `node`, in order.
    pub fn feeders(&self, node: NodeId) -> impl ExactSizeIterator<Item = NodeId> + '_ {
        self.feeders[node].iter().copied()
    }
}

/// Takes `feeder` out of a sorted list of feeders, if it is there.
fn unfeed(feeders: &mut Feeders, feeder: NodeId) {
    if let Ok(at) = feeders.binary_search(&feeder) {
        feeders.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::Wiring;

    fn wired(n: usize) -> Wiring {
        let mut wiring = Wiring::default();
        for _ in 0..n {
            wiring.push();
        }
        wiring
    }

    #[test]
    fn a_feed_needs_both_ends_and_goes_when_either_end_lets_go() {
        let mut wiring = wired(3);
        // 0 feeds 1 as far as 0 knows; 1 does not take it yet.
        wiring.read(0, vec![], vec![1]);
        assert_eq!(wiring.feeds().count(), 0);
        wiring.read(1, vec![0], vec![]);
        assert_eq!(wiring.feeds().collect::<Vec<_>>(), vec![(1, 0)]);
        // 2 takes from 1, which feeds it too, and from 0, which does not.
        wiring.read(1, vec![0], vec![2]);
        wiring.read(2, vec![0, 1], vec![]);
        assert_eq!(wiring.feeds().collect::<Vec<_>>(), vec![(1, 0), (2, 1)]);
        assert_eq!(wiring.feeders(2).collect::<Vec<_>>(), vec![1]);
        // 1 stops feeding 2; 0 stops feeding 1 as far as 0 knows.
        wiring.read(1, vec![0], vec![]);
        wiring.read(0, vec![], vec![]);
        assert_eq!(wiring.feeds().count(), 0);
        assert_eq!(wiring.fed_by(1), 0);
    }
}
