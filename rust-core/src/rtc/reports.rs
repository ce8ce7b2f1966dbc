//! The RTCP a peer sends that a link acts on: receiver reports about our stream (the share of
//! our packets it lost) and its goodbye (RTCP BYE: it closed the link). webrtc-rs 0.21 parses
//! reports but never records them in its statistics (`RemoteInboundRtp` stays empty), and
//! says nothing of a BYE, so a link reads both itself, in an interceptor that passes
//! everything on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use ::rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use ::rtc::rtcp::goodbye::Goodbye;
use ::rtc::rtcp::receiver_report::ReceiverReport;
use ::rtc::rtcp::reception_report::ReceptionReport;
use ::rtc::rtcp::sender_report::SenderReport;
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;
use tokio::sync::mpsc;

use super::link::LinkEvent;

/// The latest loss a peer reported on what we send (a share, 0 to 1), shared between a link
/// and its [`ReportReader`].
#[derive(Debug, Default)]
pub struct ReportedLoss(Mutex<Option<f64>>);

impl ReportedLoss {
    /// The latest report's fraction lost, if a report came.
    pub fn latest(&self) -> Option<f64> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, blocks: &[ReceptionReport]) {
        // One stream per link: any block describes it (the worst, should there be more).
        let Some(lost) = blocks.iter().map(|b| b.fraction_lost).max() else {
            return;
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(f64::from(lost) / 256.0);
    }
}

/// Reads reception reports out of inbound RTCP (receiver reports, and the report blocks of a
/// peer that also sends) into a [`ReportedLoss`], and the peer's first BYE into a
/// [`LinkEvent::Goodbye`]; every packet goes on unchanged.
pub struct ReportReader {
    loss: Arc<ReportedLoss>,
    /// Where the goodbye goes; taken by the first (a peer sends it more than once, as one may
    /// be lost).
    goodbye: Option<mpsc::UnboundedSender<LinkEvent>>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl ReportReader {
    /// A reader recording into `loss` and telling `events` of the peer's goodbye.
    pub fn new(loss: Arc<ReportedLoss>, events: mpsc::UnboundedSender<LinkEvent>) -> Self {
        Self {
            loss,
            goodbye: Some(events),
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for ReportReader {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let any = packet.as_any();
                if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    self.loss.record(&rr.reports);
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    self.loss.record(&sr.reports);
                } else if any.is::<Goodbye>()
                    && let Some(events) = self.goodbye.take()
                {
                    // Nobody listening: the link is being dropped anyway.
                    let _ = events.send(LinkEvent::Goodbye);
                }
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for ReportReader {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
