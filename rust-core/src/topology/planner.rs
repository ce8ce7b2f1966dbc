//! The relay-tree planner: who feeds whom. Incremental: a join, leave or metrics change
//! touches only what it must, and says which links move.
//!
//! The tree lives in a petgraph graph (edge = parent → child). Peers with spare capacity sit in
//! an ordered set by score, so a join finds its parent in O(log n).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use super::score::{Candidate, ScoreWeights, score};
use super::{CapacityPolicy, MetricsError, PeerMetrics};
use crate::protocol::Role;

/// Why a planner operation was refused. The plan is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The peer is already in the tree.
    #[error("peer already planned")]
    AlreadyPlanned,
    /// The peer is not in the tree.
    #[error("unknown peer")]
    UnknownPeer,
    /// The host cannot leave the tree (closing the space ends it).
    #[error("the host is the root of the tree")]
    HostIsRoot,
    /// Metrics out of range.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// A link change for the engine to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move<K> {
    /// The peer whose parent changes.
    pub peer: K,
    /// Its previous parent (drop that link), if any.
    pub from: Option<K>,
    /// Its new parent (reserve that link), or `None`: no capacity anywhere, it waits.
    pub to: Option<K>,
}

/// What an operation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDelta<K> {
    /// Primary links to change.
    pub moves: Vec<Move<K>>,
    /// New warm backup parents (peer, backup).
    pub backups: Vec<(K, Option<K>)>,
}

impl<K> Default for PlanDelta<K> {
    fn default() -> Self {
        Self {
            moves: Vec::new(),
            backups: Vec::new(),
        }
    }
}

impl<K> PlanDelta<K> {
    /// Primary links moved (a new peer's first link counts as one).
    pub fn links_moved(&self) -> usize {
        self.moves.len()
    }
}

/// Planner settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlannerConfig {
    /// Capacity rules.
    pub capacity: CapacityPolicy,
    /// Score weights.
    pub weights: ScoreWeights,
}

#[derive(Debug, Clone)]
struct Peer<K> {
    key: K,
    role: Role,
    metrics: PeerMetrics,
    capacity: u32,
    depth: u32,
    /// Smallest uplink per output on the path from the host.
    path_kbps: f64,
    /// Join order: older peers are preferred as relays (stability).
    seniority: u64,
    parent: Option<NodeIndex>,
    backup: Option<NodeIndex>,
    /// Peers using this one as their backup.
    backing: BTreeSet<NodeIndex>,
}

/// Leaf order: shallowest, then smallest capacity, then newest.
type LeafKey = (u32, u32, Reverse<u64>, NodeIndex);

/// Open-set order: shallowest first (bounded depth), then best score, then seniority.
type OpenKey = (u32, Reverse<i64>, u64, NodeIndex);

/// The relay tree of one space.
pub struct Planner<K: Clone + Eq + Hash> {
    config: PlannerConfig,
    graph: StableDiGraph<Peer<K>, ()>,
    index: HashMap<K, NodeIndex>,
    host: NodeIndex,
    open: BTreeSet<OpenKey>,
    open_key: HashMap<NodeIndex, OpenKey>,
    /// Placed listeners without children, shallowest and weakest first: the seats a stronger
    /// newcomer may take (the displaced leaf then hangs below it).
    leaves: BTreeSet<LeafKey>,
    leaf_key: HashMap<NodeIndex, LeafKey>,
    /// Relays that can back up more peers (a warm backup link is idle: it costs a slot of
    /// backup budget, equal to the capacity, not a child slot). Shallowest first.
    backers: BTreeSet<(u32, u64, NodeIndex)>,
    backer_key: HashMap<NodeIndex, (u32, u64, NodeIndex)>,
    /// Placed peers still without a backup (none existed when they were placed).
    unbacked: BTreeSet<NodeIndex>,
    orphans: BTreeSet<(u64, NodeIndex)>,
    next_seniority: u64,
}

impl<K: Clone + Eq + Hash> Planner<K> {
    /// A tree holding only the host.
    pub fn new(host: K, metrics: PeerMetrics, config: PlannerConfig) -> Result<Self, PlanError> {
        metrics.validate()?;
        let mut graph = StableDiGraph::new();
        let capacity = config.capacity.host_children(&metrics);
        let host_node = graph.add_node(Peer {
            key: host.clone(),
            role: Role::Host,
            metrics,
            capacity,
            depth: 0,
            path_kbps: per_output(&metrics, capacity),
            seniority: 0,
            parent: None,
            backup: None,
            backing: BTreeSet::new(),
        });
        let mut planner = Self {
            config,
            graph,
            index: HashMap::from([(host, host_node)]),
            host: host_node,
            open: BTreeSet::new(),
            open_key: HashMap::new(),
            leaves: BTreeSet::new(),
            leaf_key: HashMap::new(),
            backers: BTreeSet::new(),
            backer_key: HashMap::new(),
            unbacked: BTreeSet::new(),
            orphans: BTreeSet::new(),
            next_seniority: 1,
        };
        planner.refresh_open(host_node);
        Ok(planner)
    }

    /// Plans a whole space at once (a host restart, or a backlog of joins): strongest relays
    /// first, so they take the seats nearest the host and depth stays near log_k(N).
    pub fn plan_all(
        host: K,
        host_metrics: PeerMetrics,
        peers: Vec<(K, Role, PeerMetrics)>,
        config: PlannerConfig,
    ) -> Result<Self, PlanError> {
        let mut planner = Self::new(host, host_metrics, config)?;
        let mut peers = peers;
        peers.sort_by_key(|(_, role, metrics)| {
            (
                Reverse(role.speaks()),
                Reverse(config.capacity.children(metrics, 1)),
            )
        });
        for (key, role, metrics) in peers {
            planner.join(key, role, metrics)?;
        }
        Ok(planner)
    }

    /// Plans a newcomer: a leaf under the best parent with room, plus a backup.
    pub fn join(
        &mut self,
        key: K,
        role: Role,
        metrics: PeerMetrics,
    ) -> Result<PlanDelta<K>, PlanError> {
        metrics.validate()?;
        if self.index.contains_key(&key) {
            return Err(PlanError::AlreadyPlanned);
        }
        let capacity = self.config.capacity.children(&metrics, 1);
        let node = self.graph.add_node(Peer {
            key: key.clone(),
            role,
            metrics,
            capacity,
            depth: 0,
            path_kbps: 0.0,
            seniority: self.next_seniority,
            parent: None,
            backup: None,
            backing: BTreeSet::new(),
        });
        self.next_seniority += 1;
        self.index.insert(key, node);
        let mut delta = PlanDelta::default();
        if !self.displace_weaker_leaf(node, &mut delta) {
            self.place(node, None, None, &mut delta);
        }
        // A new relay opens room for peers that were waiting, and can back up peers that
        // had no backup yet.
        self.place_orphans(&mut delta);
        if self.graph[node].capacity > 0 {
            let waiting: Vec<NodeIndex> = self
                .unbacked
                .iter()
                .copied()
                .take(self.graph[node].capacity as usize)
                .collect();
            for peer in waiting {
                self.assign_backup(peer, &mut delta);
            }
        }
        Ok(delta)
    }

    /// Removes a peer (left or failed) and re-attaches its children: each to its warm backup
    /// when it has room, else to the best parent outside its own subtree.
    pub fn leave(&mut self, key: &K) -> Result<PlanDelta<K>, PlanError> {
        let node = *self.index.get(key).ok_or(PlanError::UnknownPeer)?;
        if node == self.host {
            return Err(PlanError::HostIsRoot);
        }
        let mut delta = PlanDelta::default();
        let children = self.children(node);
        let backed: Vec<NodeIndex> = self.graph[node].backing.iter().copied().collect();
        let parent = self.graph[node].parent;
        if let Some(backup) = self.graph[node].backup {
            self.graph[backup].backing.remove(&node);
        }
        self.detach(node);
        self.open_remove(node);
        self.orphans.retain(|(_, n)| *n != node);
        self.unbacked.remove(&node);
        self.graph.remove_node(node);
        self.index.remove(key);
        if let Some(parent) = parent {
            self.refresh_open(parent);
        }
        // Every orphan first loses its parent, so no walk up the tree meets the removed node.
        for child in &children {
            self.graph[*child].parent = None;
            self.open_remove(*child);
        }
        for child in children {
            self.place(child, None, Some(key.clone()), &mut delta);
        }
        for peer in backed {
            if self.graph.contains_node(peer) && self.graph[peer].backup == Some(node) {
                self.graph[peer].backup = None;
                self.assign_backup(peer, &mut delta);
            }
        }
        self.place_orphans(&mut delta);
        Ok(delta)
    }

    /// Applies new metrics. When capacity drops below the children a peer has (a host moving
    /// from Wi-Fi to cellular), only the excess children move, weakest first; when it rises,
    /// nothing moves and the new room serves later joins and repairs.
    pub fn update_metrics(
        &mut self,
        key: &K,
        metrics: PeerMetrics,
    ) -> Result<PlanDelta<K>, PlanError> {
        metrics.validate()?;
        let node = *self.index.get(key).ok_or(PlanError::UnknownPeer)?;
        let old_capacity = self.graph[node].capacity;
        let capacity = self.config.capacity.outputs(&metrics, node == self.host);
        {
            let peer = &mut self.graph[node];
            peer.metrics = metrics;
            peer.capacity = capacity;
        }
        self.update_subtree(node);
        let mut delta = PlanDelta::default();
        let mut children = self.children(node);
        let excess = children.len().saturating_sub(capacity as usize);
        if excess > 0 {
            // Shed the weakest: listeners before speakers, small relays before big ones,
            // newcomers before old-timers.
            children.sort_by_key(|c| {
                let p = &self.graph[*c];
                (p.role.speaks(), p.capacity, Reverse(p.seniority))
            });
            for child in children.into_iter().take(excess) {
                if self.graph[child].role.speaks() && node == self.host {
                    continue;
                }
                self.detach(child);
                self.place(child, Some(node), Some(key.clone()), &mut delta);
            }
        }
        self.refresh_open(node);
        self.place_orphans(&mut delta);
        if capacity > old_capacity {
            self.pull_up(node, &mut delta);
        }
        Ok(delta)
    }

    /// New room near the host (a host back on Wi-Fi): lift the strongest deep relays into it,
    /// each move shortening a whole subtree by two hops or more.
    fn pull_up(&mut self, node: NodeIndex, delta: &mut PlanDelta<K>) {
        while self.has_room(node) {
            let target = self.graph[node].depth + 1;
            let candidate = self
                .graph
                .node_indices()
                .filter(|n| {
                    let p = &self.graph[*n];
                    *n != self.host
                        && p.parent.is_some()
                        && !p.role.speaks()
                        && p.capacity >= 2
                        && p.depth >= target + 2
                })
                .filter(|n| !self.is_in_subtree(node, *n))
                .max_by_key(|n| {
                    (
                        self.graph[*n].capacity,
                        self.graph[*n].depth,
                        Reverse(self.graph[*n].seniority),
                    )
                });
            let Some(candidate) = candidate else { break };
            let from = self.key_of(self.graph[candidate].parent);
            self.detach(candidate);
            self.attach(candidate, node);
            delta.moves.push(self.move_of(candidate, from));
        }
    }

    /// Changes a peer's role. Speakers and co-hosts move under the host (they mesh with it).
    pub fn set_role(&mut self, key: &K, role: Role) -> Result<PlanDelta<K>, PlanError> {
        let node = *self.index.get(key).ok_or(PlanError::UnknownPeer)?;
        if node == self.host {
            return Err(PlanError::HostIsRoot);
        }
        self.graph[node].role = role;
        let mut delta = PlanDelta::default();
        if role.speaks() && self.graph[node].parent != Some(self.host) {
            let from = self.key_of(self.graph[node].parent);
            self.detach(node);
            self.attach(node, self.host);
            delta.moves.push(self.move_of(node, from));
        }
        Ok(delta)
    }

    /// A reservation to `parent` timed out: give `key` the next best parent.
    pub fn reservation_failed(&mut self, key: &K, parent: &K) -> Result<PlanDelta<K>, PlanError> {
        let node = *self.index.get(key).ok_or(PlanError::UnknownPeer)?;
        let failed = *self.index.get(parent).ok_or(PlanError::UnknownPeer)?;
        let mut delta = PlanDelta::default();
        if self.graph[node].parent == Some(failed) {
            self.detach(node);
            self.place(node, Some(failed), Some(parent.clone()), &mut delta);
        }
        Ok(delta)
    }

    /// The peer's parent.
    pub fn parent_of(&self, key: &K) -> Option<&K> {
        let node = self.index.get(key)?;
        self.graph[*node].parent.map(|p| &self.graph[p].key)
    }

    /// The peer's warm backup parent.
    pub fn backup_of(&self, key: &K) -> Option<&K> {
        let node = self.index.get(key)?;
        self.graph[*node].backup.map(|p| &self.graph[p].key)
    }

    /// The peer's children.
    pub fn children_of(&self, key: &K) -> Vec<&K> {
        self.index
            .get(key)
            .map(|n| {
                self.children(*n)
                    .into_iter()
                    .map(|c| &self.graph[c].key)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Hops from the host, for a placed peer.
    pub fn depth_of(&self, key: &K) -> Option<u32> {
        let node = self.index.get(key)?;
        (*node == self.host || self.graph[*node].parent.is_some())
            .then_some(self.graph[*node].depth)
    }

    /// How many children a peer may have.
    pub fn capacity_of(&self, key: &K) -> Option<u32> {
        self.index.get(key).map(|n| self.graph[*n].capacity)
    }

    /// Peers without a parent (no room anywhere), host excluded.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// Peers in the tree, host included.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Only the host.
    pub fn is_empty(&self) -> bool {
        self.index.len() <= 1
    }

    /// Every placed peer's depth.
    pub fn depths(&self) -> impl Iterator<Item = u32> + '_ {
        self.graph
            .node_indices()
            .filter(|n| *n != self.host && self.graph[*n].parent.is_some())
            .map(|n| self.graph[n].depth)
    }

    /// Every peer's number of children, host first.
    pub fn fan_outs(&self) -> impl Iterator<Item = (bool, usize)> + '_ {
        self.graph.node_indices().map(|n| {
            (
                n == self.host,
                self.graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .count(),
            )
        })
    }

    // ---- internals ----

    fn children(&self, node: NodeIndex) -> Vec<NodeIndex> {
        self.graph
            .neighbors_directed(node, Direction::Outgoing)
            .collect()
    }

    fn key_of(&self, node: Option<NodeIndex>) -> Option<K> {
        node.map(|n| self.graph[n].key.clone())
    }

    fn move_of(&self, node: NodeIndex, from: Option<K>) -> Move<K> {
        Move {
            peer: self.graph[node].key.clone(),
            from,
            to: self.graph[node].parent.map(|p| self.graph[p].key.clone()),
        }
    }

    /// Finds a parent for `node` (whose parent is gone or being replaced; `from` names it and
    /// is avoided when still present) and a backup.
    fn place(
        &mut self,
        node: NodeIndex,
        from: Option<NodeIndex>,
        from_key: Option<K>,
        delta: &mut PlanDelta<K>,
    ) {
        let parent = if self.graph[node].role.speaks() {
            Some(self.host)
        } else {
            let backup = self.graph[node].backup.filter(|b| {
                self.graph.contains_node(*b)
                    && Some(*b) != from
                    && self.has_room(*b)
                    && !self.is_in_subtree(*b, node)
            });
            backup.or_else(|| self.best_parent(node, from))
        };
        match parent {
            Some(parent) => {
                self.attach(node, parent);
                self.orphans.retain(|(_, n)| *n != node);
            }
            None => {
                self.orphans.insert((self.graph[node].seniority, node));
            }
        }
        delta.moves.push(self.move_of(node, from_key));
        if self.graph[node]
            .backup
            .is_none_or(|b| Some(b) == parent || !self.graph.contains_node(b))
        {
            self.assign_backup(node, delta);
        }
    }

    fn place_orphans(&mut self, delta: &mut PlanDelta<K>) {
        while let Some(&(seniority, node)) = self.orphans.iter().next() {
            match self.best_parent(node, None) {
                Some(parent) => {
                    self.orphans.remove(&(seniority, node));
                    self.attach(node, parent);
                    delta.moves.push(self.move_of(node, None));
                    self.assign_backup(node, delta);
                }
                None => break,
            }
        }
    }

    /// The best peer with room that is not `node` itself, not below it, and not `avoid`.
    fn best_parent(&self, node: NodeIndex, avoid: Option<NodeIndex>) -> Option<NodeIndex> {
        self.open
            .iter()
            .map(|(_, _, _, n)| *n)
            .filter(|n| *n != node && Some(*n) != avoid)
            .find(|n| !self.is_in_subtree(*n, node))
    }

    /// A warm backup: a relay with backup budget that would survive the loss of the primary
    /// parent (not below it) and is not below `node` either. Shallowest first.
    fn assign_backup(&mut self, node: NodeIndex, delta: &mut PlanDelta<K>) {
        let parent = self.graph[node].parent;
        let backup = self
            .backers
            .iter()
            .map(|(_, _, n)| *n)
            .filter(|n| *n != node && Some(*n) != parent)
            // Below the host is everyone: for the host's children only their own subtree is out.
            .find(|n| {
                !self.is_in_subtree(*n, node)
                    && parent.is_none_or(|p| p == self.host || !self.is_in_subtree(*n, p))
            });
        if let Some(old) = self.graph[node].backup
            && self.graph.contains_node(old)
        {
            self.graph[old].backing.remove(&node);
            self.refresh_open(old);
        }
        self.graph[node].backup = backup;
        if backup.is_some() {
            self.unbacked.remove(&node);
        } else {
            self.unbacked.insert(node);
        }
        if let Some(b) = backup {
            self.graph[b].backing.insert(node);
            self.refresh_open(b);
        }
        delta.backups.push((
            self.graph[node].key.clone(),
            backup.map(|b| self.graph[b].key.clone()),
        ));
    }

    fn has_room(&self, node: NodeIndex) -> bool {
        self.children(node).len() < self.graph[node].capacity as usize
    }

    /// Is `candidate` in the subtree rooted at `root` (root included)?
    fn is_in_subtree(&self, candidate: NodeIndex, root: NodeIndex) -> bool {
        let mut current = Some(candidate);
        while let Some(n) = current {
            if n == root {
                return true;
            }
            current = self.graph[n].parent;
        }
        false
    }

    fn attach(&mut self, node: NodeIndex, parent: NodeIndex) {
        self.graph.add_edge(parent, node, ());
        self.graph[node].parent = Some(parent);
        self.update_subtree(node);
        self.refresh_open(parent);
    }

    fn detach(&mut self, node: NodeIndex) {
        if let Some(parent) = self.graph[node].parent.take() {
            if let Some(edge) = self.graph.find_edge(parent, node) {
                self.graph.remove_edge(edge);
            }
            self.refresh_open(parent);
        }
    }

    /// Recomputes depth and path quality below `root` (after a move or a metrics change).
    fn update_subtree(&mut self, root: NodeIndex) {
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            let (depth, inherited) = match self.graph[node].parent {
                Some(p) => (self.graph[p].depth + 1, self.graph[p].path_kbps),
                None => (0, f64::INFINITY),
            };
            let own = per_output(&self.graph[node].metrics, self.graph[node].capacity);
            let peer = &mut self.graph[node];
            peer.depth = depth;
            peer.path_kbps = if node == self.host {
                own
            } else {
                inherited.min(own)
            };
            self.refresh_open(node);
            stack.extend(self.children(node));
        }
    }

    fn open_remove(&mut self, node: NodeIndex) {
        if let Some(key) = self.open_key.remove(&node) {
            self.open.remove(&key);
        }
        if let Some(key) = self.leaf_key.remove(&node) {
            self.leaves.remove(&key);
        }
        if let Some(key) = self.backer_key.remove(&node) {
            self.backers.remove(&key);
        }
    }

    /// A newcomer that can relay takes the seat of a weaker leaf shallower than any open slot;
    /// the leaf moves below it. Strong relays rise towards the host, newcomers and weak
    /// peers end up as leaves: depth stays near log_k(N). Two links move.
    fn displace_weaker_leaf(&mut self, node: NodeIndex, delta: &mut PlanDelta<K>) -> bool {
        let capacity = self.graph[node].capacity;
        if capacity == 0 || self.graph[node].role.speaks() {
            return false;
        }
        let open_depth = self.open.iter().next().map_or(u32::MAX, |k| k.0);
        let Some(&(depth, leaf_capacity, _, leaf)) = self.leaves.iter().next() else {
            return false;
        };
        if depth >= open_depth || leaf_capacity >= capacity || self.graph[leaf].role.speaks() {
            return false;
        }
        let Some(seat) = self.graph[leaf].parent else {
            return false;
        };
        let seat_key = self.key_of(Some(seat));
        self.detach(leaf);
        self.attach(node, seat);
        delta.moves.push(self.move_of(node, None));
        self.attach(leaf, node);
        delta.moves.push(self.move_of(leaf, seat_key));
        self.assign_backup(node, delta);
        self.assign_backup(leaf, delta);
        true
    }

    /// Keeps `node`'s entry in the open set in step with its score and room.
    fn refresh_open(&mut self, node: NodeIndex) {
        self.open_remove(node);
        let peer = &self.graph[node];
        let placed = node == self.host || peer.parent.is_some();
        let children = self.children(node).len() as u32;
        if placed && children == 0 && node != self.host && !peer.role.speaks() {
            let key = (peer.depth, peer.capacity, Reverse(peer.seniority), node);
            self.leaves.insert(key);
            self.leaf_key.insert(node, key);
        }
        if placed && peer.capacity > 0 && (peer.backing.len() as u32) < peer.capacity {
            let key = (peer.depth, peer.seniority, node);
            self.backers.insert(key);
            self.backer_key.insert(node, key);
        }
        if !placed || children >= peer.capacity {
            return;
        }
        let candidate = Candidate {
            role: peer.role,
            depth: peer.depth,
            path_kbps_per_output: peer.path_kbps,
            capacity: peer.capacity,
            children,
        };
        let value = score(&self.config.weights, Role::Listener, &candidate);
        let key = (
            peer.depth,
            Reverse((value * 1e9) as i64),
            peer.seniority,
            node,
        );
        self.open.insert(key);
        self.open_key.insert(node, key);
    }
}

/// Uplink per announced output, the draft's "network" figure (whole uplink when unlimited).
fn per_output(metrics: &PeerMetrics, capacity: u32) -> f64 {
    let outputs = if metrics.max_audio_outputs > 0 {
        metrics.max_audio_outputs
    } else {
        capacity.max(1)
    };
    metrics.upload_kbps / f64::from(outputs.max(1))
}
