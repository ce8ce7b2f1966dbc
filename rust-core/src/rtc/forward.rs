//! Forwarding: every packet from the parent goes to each child unchanged.
//!
//! The receive path writes each packet to every child itself: a link's write runs the child's
//! interceptors and SRTP and puts the datagram on the socket without waiting (the `webrtc`
//! patch in `vendor/`), so a slow child never stalls its siblings, and no other task wakes
//! per packet. A child whose link is busy at that instant (its driver holds it) gets the
//! packet from the node's forwarding task instead, and so do its next packets until that task
//! has caught up, so that each child's packets leave in order.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ::rtc::rtp;
use tokio::sync::mpsc;

use super::{Numbered, PeerLink, RtcError};

/// What a forwarder needs of a child's link: [`PeerLink`]'s sends (a trait so that the
/// ordering rules can be tested with a link that is busy on demand).
pub trait Outlet: Send + Sync + 'static {
    /// A packet the link handed back, numbered for it.
    type Numbered: Send + 'static;
    /// The link's name.
    fn label(&self) -> &str;
    /// Sends now, or hands the packet back (see [`PeerLink::try_send`]).
    fn try_send(&self, packet: rtp::Packet) -> Result<Option<Self::Numbered>, RtcError>;
    /// Sends a packet `try_send` handed back.
    fn send_numbered(
        &self,
        packet: Self::Numbered,
    ) -> impl Future<Output = Result<(), RtcError>> + Send;
    /// Sends a packet, waiting for the link if need be.
    fn send(&self, packet: rtp::Packet) -> impl Future<Output = Result<(), RtcError>> + Send;
}

impl Outlet for PeerLink {
    type Numbered = Numbered;

    fn label(&self) -> &str {
        PeerLink::label(self)
    }

    fn try_send(&self, packet: rtp::Packet) -> Result<Option<Numbered>, RtcError> {
        PeerLink::try_send(self, packet)
    }

    fn send_numbered(&self, packet: Numbered) -> impl Future<Output = Result<(), RtcError>> + Send {
        PeerLink::send_numbered(self, packet)
    }

    fn send(&self, packet: rtp::Packet) -> impl Future<Output = Result<(), RtcError>> + Send {
        PeerLink::send(self, packet)
    }
}

/// A child and how many of its packets wait in the forwarding task's queue.
struct Child<L> {
    link: Arc<L>,
    waiting: Arc<AtomicUsize>,
}

/// A packet the receive path could not write at once.
enum Late<N> {
    /// Handed back by a busy link, already numbered for it.
    Numbered(N),
    /// Queued behind such a packet.
    Fresh(rtp::Packet),
}

/// A late packet, its child, and the child's count of waiting packets.
type Job<L> = (Late<<L as Outlet>::Numbered>, Arc<L>, Arc<AtomicUsize>);

/// The children of one node and the task that writes to them.
pub struct Forwarder<L: Outlet = PeerLink> {
    children: Mutex<BTreeMap<String, Child<L>>>,
    queue: mpsc::Sender<Job<L>>,
    /// The task's end of the queue, until the first child starts it.
    jobs: Mutex<Option<mpsc::Receiver<Job<L>>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    dropped: AtomicU64,
}

impl<L: Outlet> Forwarder<L> {
    /// A forwarder whose queue holds `capacity` packets.
    pub fn new(capacity: usize) -> Self {
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        Self {
            children: Mutex::default(),
            queue,
            jobs: Mutex::new(Some(jobs)),
            task: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts forwarding to `link` (in place of an older link with its label).
    pub fn add(&self, link: Arc<L>) {
        let label = link.label().to_owned();
        let child = Child {
            link,
            waiting: Arc::default(),
        };
        lock(&self.children).insert(label, child);
        if let Some(jobs) = lock(&self.jobs).take() {
            *lock(&self.task) = Some(tokio::spawn(run(jobs)));
        }
    }

    /// Stops forwarding to a child.
    pub fn remove(&self, label: &str) {
        lock(&self.children).remove(label);
    }

    /// Sends a packet to every child.
    pub fn forward(&self, packet: &rtp::Packet) {
        self.forward_except(packet, None);
    }

    /// Sends a packet to every child but `origin` (a speaker does not need its own voice
    /// back). A packet a child cannot take now goes to the forwarding task; a full queue
    /// drops it.
    pub fn forward_except(&self, packet: &rtp::Packet, origin: Option<&str>) {
        let children = lock(&self.children);
        for (label, child) in children.iter() {
            if origin == Some(label.as_str()) {
                continue;
            }
            let late = if child.waiting.load(Ordering::Acquire) > 0 {
                Late::Fresh(packet.clone())
            } else {
                match child.link.try_send(packet.clone()) {
                    Ok(None) => continue,
                    Ok(Some(numbered)) => Late::Numbered(numbered),
                    Err(e) => {
                        tracing::debug!(child = %label, error = %e, "forward failed");
                        continue;
                    }
                }
            };
            child.waiting.fetch_add(1, Ordering::AcqRel);
            let job = (late, Arc::clone(&child.link), Arc::clone(&child.waiting));
            if self.queue.try_send(job).is_err() {
                child.waiting.fetch_sub(1, Ordering::AcqRel);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
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

impl<L: Outlet> Drop for Forwarder<L> {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes the packets the receive path could not, each child's in order.
async fn run<L: Outlet>(mut jobs: mpsc::Receiver<Job<L>>) {
    while let Some((late, link, waiting)) = jobs.recv().await {
        let sent = match late {
            Late::Numbered(packet) => link.send_numbered(packet).await,
            Late::Fresh(packet) => link.send(packet).await,
        };
        // Only now: the receive path writes this child's next packet itself once none wait.
        waiting.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = sent {
            tracing::debug!(child = %link.label(), error = %e, "forward failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use tokio::sync::Semaphore;

    use super::*;

    /// A child's link that is busy on demand, and whose waiting sends finish only when the
    /// test hands out permits: it records the timestamps it sent, in order.
    struct Gate {
        label: &'static str,
        busy: AtomicBool,
        permits: Semaphore,
        sent: Mutex<Vec<u32>>,
    }

    impl Gate {
        fn new() -> Arc<Self> {
            Self::named("gate")
        }

        fn named(label: &'static str) -> Arc<Self> {
            Arc::new(Self {
                label,
                busy: AtomicBool::new(false),
                permits: Semaphore::new(0),
                sent: Mutex::default(),
            })
        }

        fn sent(&self) -> Vec<u32> {
            lock(&self.sent).clone()
        }

        async fn send_when_let(&self, packet: rtp::Packet) -> Result<(), RtcError> {
            self.permits
                .acquire()
                .await
                .map_err(|_| RtcError::Closed)?
                .forget();
            lock(&self.sent).push(packet.header.timestamp);
            Ok(())
        }

        /// Waits (a bounded number of scheduler turns) until `n` packets went out.
        async fn until_sent(&self, n: usize) {
            for _ in 0..1_000 {
                if lock(&self.sent).len() >= n {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }
    }

    impl Outlet for Gate {
        type Numbered = rtp::Packet;

        fn label(&self) -> &str {
            self.label
        }

        fn try_send(&self, packet: rtp::Packet) -> Result<Option<rtp::Packet>, RtcError> {
            if self.busy.load(Ordering::Relaxed) {
                return Ok(Some(packet));
            }
            lock(&self.sent).push(packet.header.timestamp);
            Ok(None)
        }

        fn send_numbered(
            &self,
            packet: rtp::Packet,
        ) -> impl Future<Output = Result<(), RtcError>> + Send {
            self.send_when_let(packet)
        }

        fn send(&self, packet: rtp::Packet) -> impl Future<Output = Result<(), RtcError>> + Send {
            self.send_when_let(packet)
        }
    }

    fn packet(timestamp: u32) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                timestamp,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn packets_behind_a_busy_moment_wait_their_turn_then_go_straight_out_again() {
        let gate = Gate::new();
        let forwarder = Forwarder::new(8);
        forwarder.add(Arc::clone(&gate));

        gate.busy.store(true, Ordering::Relaxed);
        forwarder.forward(&packet(0));
        gate.busy.store(false, Ordering::Relaxed);
        // The link is free again, but packet 0 has not left: packet 1 must not overtake it.
        forwarder.forward(&packet(1));
        assert_eq!(gate.sent(), Vec::<u32>::new());

        gate.permits.add_permits(2);
        gate.until_sent(2).await;
        assert_eq!(gate.sent(), vec![0, 1]);
        // Caught up: the next packet goes out from the receive path, with no permit.
        forwarder.forward(&packet(2));
        assert_eq!(gate.sent(), vec![0, 1, 2]);
        assert_eq!(forwarder.dropped(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_holding_the_child_back_for_good() {
        let gate = Gate::new();
        let forwarder = Forwarder::new(1);
        forwarder.add(Arc::clone(&gate));

        gate.busy.store(true, Ordering::Relaxed);
        forwarder.forward(&packet(0));
        gate.busy.store(false, Ordering::Relaxed);
        forwarder.forward(&packet(1));
        assert_eq!(forwarder.dropped(), 1);

        gate.permits.add_permits(1);
        gate.until_sent(1).await;
        // Give the task its turn to count packet 0 as gone before packet 2 comes.
        tokio::task::yield_now().await;
        forwarder.forward(&packet(2));
        assert_eq!(gate.sent(), vec![0, 2]);
    }

    #[tokio::test]
    async fn a_speakers_own_voice_is_not_sent_back_to_it() {
        let (gate, other) = (Gate::new(), Gate::named("other"));
        let forwarder = Forwarder::new(4);
        forwarder.add(Arc::clone(&gate));
        forwarder.add(Arc::clone(&other));
        forwarder.forward_except(&packet(7), Some("gate"));
        assert_eq!(gate.sent(), Vec::<u32>::new());
        assert_eq!(other.sent(), vec![7]);
    }
}
