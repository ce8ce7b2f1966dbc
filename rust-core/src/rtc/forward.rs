//! Forwarding: every packet from the parent goes to each child unchanged, through a bounded
//! queue per child, so a slow child never stalls its siblings or the parent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ::rtc::rtp;
use tokio::sync::mpsc;

use super::PeerLink;

struct Child {
    queue: mpsc::Sender<rtp::Packet>,
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// The children of one node and their send queues.
#[derive(Default)]
pub struct Forwarder {
    children: Mutex<BTreeMap<String, Child>>,
    capacity: usize,
}

impl Forwarder {
    /// A forwarder whose per-child queues hold `capacity` packets.
    pub fn new(capacity: usize) -> Self {
        Self {
            children: Mutex::new(BTreeMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Starts forwarding to `link`.
    pub fn add(&self, link: Arc<PeerLink>) {
        let (queue, mut rx) = mpsc::channel::<rtp::Packet>(self.capacity);
        let label = link.label().to_owned();
        let task = tokio::spawn(async move {
            while let Some(packet) = rx.recv().await {
                if let Err(e) = link.send(packet).await {
                    tracing::debug!(child = %link.label(), error = %e, "forward failed");
                }
            }
        });
        let child = Child {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            task,
        };
        if let Some(old) = self.lock().insert(label, child) {
            old.task.abort();
        }
    }

    /// Stops forwarding to a child.
    pub fn remove(&self, label: &str) {
        if let Some(child) = self.lock().remove(label) {
            child.task.abort();
        }
    }

    /// Queues a packet for every child; a full queue drops the packet for that child only.
    pub fn forward(&self, packet: &rtp::Packet) {
        self.forward_except(packet, None);
    }

    /// Queues a packet for every child but `origin` (a speaker does not need its own voice
    /// back).
    pub fn forward_except(&self, packet: &rtp::Packet, origin: Option<&str>) {
        for (label, child) in self.lock().iter() {
            if origin == Some(label.as_str()) {
                continue;
            }
            if child.queue.try_send(packet.clone()).is_err() {
                child.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Children, by label.
    pub fn children(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Whether `label` is one of our children.
    pub fn has(&self, label: &str) -> bool {
        self.lock().contains_key(label)
    }

    /// Packets dropped for a child because its queue was full.
    pub fn dropped(&self, label: &str) -> u64 {
        self.lock()
            .get(label)
            .map_or(0, |c| c.dropped.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Child>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for child in self.lock().values() {
            child.task.abort();
        }
    }
}
