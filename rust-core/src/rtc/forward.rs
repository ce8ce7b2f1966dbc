//! Forwarding: every packet from the parent goes to each child unchanged.
//!
//! The receive path hands each packet to one forwarding task per node, which writes it to every
//! child in turn. A link's write runs the child's interceptors and SRTP and puts the datagram on
//! the socket without waiting (the `webrtc` patch in `vendor/`), so a slow child never stalls its
//! siblings: a socket that cannot take a datagram now leaves it to that link's own driver. One
//! task for all children, not one each, saves a task wake per packet and child.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ::rtc::rtp;
use tokio::sync::mpsc;

use super::PeerLink;

type Children = BTreeMap<String, Arc<PeerLink>>;

/// A packet to forward, and the child it came from (not sent back there).
type Job = (rtp::Packet, Option<String>);

/// The children of one node and the task that writes to them.
pub struct Forwarder {
    children: Arc<Mutex<Children>>,
    queue: mpsc::Sender<Job>,
    /// The task's end of the queue, until the first child starts it.
    jobs: Mutex<Option<mpsc::Receiver<Job>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    dropped: AtomicU64,
}

impl Forwarder {
    /// A forwarder whose queue holds `capacity` packets.
    pub fn new(capacity: usize) -> Self {
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        Self {
            children: Arc::default(),
            queue,
            jobs: Mutex::new(Some(jobs)),
            task: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts forwarding to `link` (in place of an older link with its label).
    pub fn add(&self, link: Arc<PeerLink>) {
        let label = link.label().to_owned();
        lock(&self.children).insert(label, link);
        if let Some(jobs) = lock(&self.jobs).take() {
            let children = Arc::clone(&self.children);
            *lock(&self.task) = Some(tokio::spawn(run(children, jobs)));
        }
    }

    /// Stops forwarding to a child.
    pub fn remove(&self, label: &str) {
        lock(&self.children).remove(label);
    }

    /// Queues a packet for every child; a full queue drops it.
    pub fn forward(&self, packet: &rtp::Packet) {
        self.forward_except(packet, None);
    }

    /// Queues a packet for every child but `origin` (a speaker does not need its own voice
    /// back).
    pub fn forward_except(&self, packet: &rtp::Packet, origin: Option<&str>) {
        if lock(&self.children).is_empty() {
            return;
        }
        let job = (packet.clone(), origin.map(str::to_owned));
        if self.queue.try_send(job).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Children, by label.
    pub fn children(&self) -> Vec<String> {
        lock(&self.children).keys().cloned().collect()
    }

    /// Whether `label` is one of our children.
    pub fn has(&self, label: &str) -> bool {
        lock(&self.children).contains_key(label)
    }

    /// Packets dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run(children: Arc<Mutex<Children>>, mut jobs: mpsc::Receiver<Job>) {
    let mut targets: Vec<Arc<PeerLink>> = Vec::new();
    while let Some((packet, origin)) = jobs.recv().await {
        targets.clear();
        targets.extend(
            lock(&children)
                .iter()
                .filter(|(label, _)| origin.as_deref() != Some(label.as_str()))
                .map(|(_, link)| Arc::clone(link)),
        );
        for link in &targets {
            if let Err(e) = link.send(packet.clone()).await {
                tracing::debug!(child = %link.label(), error = %e, "forward failed");
            }
        }
    }
}
