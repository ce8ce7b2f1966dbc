//! Direct media sends (a patch of this vendored copy; see the workspace's `vendor/README.md`).
//!
//! Upstream, every RTP packet a track writes is an event on the driver's channel: the driver
//! task wakes, takes the core's lock four times (writes, events, reads, timeout), arms a fresh
//! timer and goes back to its `select!`. That loop turn, once per packet and per connection,
//! is most of the cost of a forwarder feeding many peers (each child its own connection).
//!
//! Here the writer's task does the work itself: it takes the core's lock once, runs the
//! sender's interceptors and SRTP, and puts the resulting datagrams straight on the driver's
//! UDP socket with a non-blocking send. The driver is woken only when something is left for
//! it: a datagram for a path it alone can serve (TURN-relayed, TCP, mDNS, a socket whose
//! buffer is full), or a core timer now due before the one it sleeps on.

use super::{PeerConnectionRef, RTCPeerConnection};
use crate::runtime::{AsyncUdpSocket, Transmit};
use log::error;
use rtc::mdns::MDNS_PORT;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::error::{Error, Result};
use rtc::shared::{TaggedBytesMut, TransportProtocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// What a writer needs from the driver to send without it. Each field is written by the
/// driver and read by writers; all locks are held for a few instructions, never across an
/// await.
#[derive(Default)]
pub(crate) struct DirectSend {
    /// The UDP sockets the driver bound, by local address (replaced on every rebind).
    ///
    /// A TURN-relayed path never matches one of them: its local address is the relay's
    /// allocation on another host (or, on this host, a port these sockets already hold).
    sockets: Mutex<HashMap<SocketAddr, Arc<dyn AsyncUdpSocket>>>,
    /// Datagrams a writer drained from the core but could not send itself, oldest first.
    deferred: Mutex<Vec<TaggedBytesMut>>,
    /// The core deadline the driver last armed its timer for.
    deadline: Mutex<Option<Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DirectSend {
    /// The driver (re)bound its sockets.
    pub(crate) fn set_sockets<'a>(
        &self,
        sockets: impl Iterator<Item = (&'a SocketAddr, &'a Arc<dyn AsyncUdpSocket>)>,
    ) {
        *lock(&self.sockets) = sockets.map(|(a, s)| (*a, Arc::clone(s))).collect();
    }

    /// The driver stopped: writers fall back to its (closed) channel.
    pub(crate) fn clear(&self) {
        lock(&self.sockets).clear();
        lock(&self.deferred).clear();
    }

    /// What writers left for the driver to send, oldest first.
    pub(crate) fn take_deferred(&self) -> Vec<TaggedBytesMut> {
        std::mem::take(&mut *lock(&self.deferred))
    }

    /// The driver armed its timer for `deadline`.
    pub(crate) fn set_deadline(&self, deadline: Instant) {
        *lock(&self.deadline) = Some(deadline);
    }

    /// Sends what can be sent now; returns whether anything was left for the driver.
    fn send_or_defer(&self, writes: impl Iterator<Item = TaggedBytesMut>) -> bool {
        let sockets = lock(&self.sockets);
        let mut left = false;
        for msg in writes {
            if !send_now(&sockets, &msg) {
                lock(&self.deferred).push(msg);
                left = true;
            }
        }
        left
    }

    fn due_before_driver(&self, timeout: Option<Instant>) -> bool {
        match (timeout, *lock(&self.deadline)) {
            (Some(due), Some(armed)) => due < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// One datagram on one of the driver's UDP sockets, if that is its path and the socket takes
/// it now. A send error is logged and the datagram is lost, as in the driver.
fn send_now(sockets: &HashMap<SocketAddr, Arc<dyn AsyncUdpSocket>>, msg: &TaggedBytesMut) -> bool {
    let tp = msg.transport;
    if tp.transport_protocol != TransportProtocol::UDP || tp.peer_addr.port() == MDNS_PORT {
        return false;
    }
    let Some(socket) = sockets.get(&tp.local_addr) else {
        return false;
    };
    let transmit = Transmit {
        destination: tp.peer_addr,
        ecn: None,
        contents: &msg.message,
        segment_size: None,
        src_ip: None,
    };
    let mut cx = Context::from_waker(Waker::noop());
    match socket.poll_send(&mut cx, &transmit) {
        Poll::Ready(Ok(_)) => true,
        Poll::Ready(Err(err)) => {
            error!(
                "Failed to write packet to {:?} from {:?}: {}",
                tp.peer_addr, tp.local_addr, err
            );
            true
        }
        Poll::Pending => false,
    }
}

/// What [`try_write_rtp`] did with a packet.
pub enum TryWrite {
    /// Written and sent (or left for the driver, which was woken).
    Sent,
    /// Someone else holds the connection's lock (its driver, or another writer): the packet,
    /// untouched, for the caller to write later in order.
    Busy(rtp::Packet),
}

/// [`write_rtp`] for a caller that must not wait: a packet that would have to wait for the
/// core's lock comes back as [`TryWrite::Busy`].
pub(crate) fn try_write_rtp(
    pc: &Arc<PeerConnectionRef>,
    sender_id: RTCRtpSenderId,
    packet: rtp::Packet,
) -> Result<TryWrite> {
    if pc.is_closing() {
        return Err(Error::ErrConnectionClosed);
    }
    let Some(mut core) = pc.core.try_lock() else {
        return Ok(TryWrite::Busy(packet));
    };
    let (left, timeout) = write_locked(pc, &mut core, sender_id, packet)?;
    drop(core);
    if left || pc.direct.due_before_driver(timeout) {
        pc.nudge_writes();
    }
    Ok(TryWrite::Sent)
}

/// Runs the packet through the sender and sends what the core has to send, under the core's
/// lock (two writers of one connection must not swap packets). Returns whether anything was
/// left for the driver, and the core's next deadline.
fn write_locked(
    pc: &PeerConnectionRef,
    core: &mut RTCPeerConnection,
    sender_id: RTCRtpSenderId,
    packet: rtp::Packet,
) -> Result<(bool, Option<Instant>)> {
    let now = pc.runtime.now();
    match core.rtp_sender(sender_id) {
        Some(mut sender) => sender.write_rtp(now, packet)?,
        None => {
            return Err(Error::Other(format!(
                "Failed to send RTP due to unknown sender id {sender_id:?}"
            )));
        }
    }
    let left = pc.direct.send_or_defer(std::iter::from_fn(|| core.poll_write()));
    Ok((left, core.poll_timeout()))
}

/// Writes one RTP packet through `sender_id`'s interceptors and SRTP and sends the result from
/// the caller's task (see the module's doc).
pub(crate) async fn write_rtp(
    pc: &Arc<PeerConnectionRef>,
    sender_id: RTCRtpSenderId,
    packet: rtp::Packet,
) -> Result<()> {
    if pc.is_closing() {
        return Err(Error::ErrConnectionClosed);
    }
    let (left, timeout) = {
        let mut core = pc.core.lock().await;
        write_locked(pc, &mut core, sender_id, packet)?
    };
    if left || pc.direct.due_before_driver(timeout) {
        pc.wake_writes().await;
    }
    Ok(())
}
