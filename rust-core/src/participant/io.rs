//! What goes into a participant and what comes out of it.

use nostr::prelude::{PublicKey, Timestamp};

use crate::protocol::filter::OpenSeats;
use crate::protocol::{IceCandidate, Message, NetworkMetrics, SpaceEvent};
use crate::space::Command;

/// Time as a participant sees it: milliseconds since the Unix epoch. Events carry Unix
/// seconds, deadlines are in milliseconds; the driver reads the clock, the simulator counts.
pub type Millis = u64;

/// Something that happened to the participant.
#[derive(Debug, Clone)]
pub enum Input {
    /// A verified event of the space from a relay (never one of our own).
    Event(SpaceEvent),
    /// The relays sent every stored event: the space is known, decisions may start.
    StoredEnd,
    /// The relays sent what they stored of the host's CREATE and CLOSE (asked for ahead of
    /// the space): the participant now says which view to follow ([`Output::Follow`]).
    HostRead,
    /// A fetch of open seats ([`Follow::Seats`]) has all it will get.
    SeatsRead,
    /// Something happened on our WebRTC link with `peer`.
    Link {
        /// The other end.
        peer: PublicKey,
        /// What.
        event: LinkInput,
    },
    /// Every link's loss, read at once (receiver reports come for all links in the same
    /// interval): as many [`LinkInput::Loss`] reports, with one decision after them all.
    Losses(Vec<(PublicKey, u16)>),
    /// The user asks for something.
    User(UserCommand),
    /// A reservation that carries proof of work left for the relays only now (the work took
    /// its time): the wait for its CONFIRM starts over.
    WorkedReservationSent {
        /// To whom.
        confirmer: PublicKey,
    },
}

/// What a link reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkInput {
    /// ICE and DTLS completed: media can flow.
    Connected,
    /// ICE lost the path (consent checks fail): it may recover, but not soon enough.
    Disconnected,
    /// Nothing arrived for the stall window (keep-alives included).
    Stalled,
    /// Packets arrive again after a stall.
    Resumed,
    /// The link failed or was closed from the other side.
    Failed,
    /// The other side closed the link and said so on it (RTCP BYE): as its DROP, which may
    /// still be crossing the relays.
    Goodbye,
    /// The share of packets lost lately on this link, in thousandths, in the direction it
    /// carries audio: for a link we feed, what the child's receiver reports say; for a link
    /// that feeds us, what we counted.
    Loss {
        /// Lost packets per thousand.
        permille: u16,
    },
}

/// What the user asks a participant to do.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Publish a message (role changes, hand, speech requests, chat).
    Publish(Message),
    /// The device's network changed: new metrics.
    NetworkChanged(NetworkMetrics),
    /// Mute or unmute our voice.
    Mute(bool),
    /// Leave politely: DROP every link, then LEAVE (or CLOSE for the host).
    Leave,
}

/// An event the participant decided to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// The message.
    pub message: Message,
    /// Its time (addressable events need a strictly newer one to replace the last).
    pub created_at: Timestamp,
    /// NIP-13 proof of work to put in it, bits (0: none): the price a busy confirmer asked
    /// for. CPU-bound; the driver does it off the decision path.
    pub work: u8,
    /// Its private payload in clear JSON rather than NIP-44 (a draft-literal recipient, in
    /// draft-compatibility mode).
    pub plaintext: bool,
}

impl Publication {
    /// Puts a link's SDP into the RESERVE or CONFIRM it rides in (our dialect's
    /// one-round-trip handshake); other messages carry none.
    pub fn carrying(mut self, sdp: String) -> Self {
        if let Message::Reserve(r) | Message::Confirm(r) = &mut self.message {
            r.sdp = Some(sdp);
        }
        self
    }
}

/// What a participant asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Sign and publish this event.
    Publish(Publication),
    /// Do something with a WebRTC link.
    Link(LinkOp),
    /// Who may send us audio, whom we forward to, where our voice goes.
    Routing(Routing),
    /// Capture and send our voice, or not (keep-alives otherwise).
    Speaking(bool),
    /// Something the user's interface shows.
    Ui(Command),
    /// What to ask the relays for (subscriptions).
    Follow(Follow),
}

/// What a participant asks the relays for. A small space is followed whole; in a crowd
/// (`docs/TOPOLOGY.md`, *Crowd views*) each member follows its inbox, the roles, a few
/// members around it and a sample of open seats, so what it receives does not grow with the
/// crowd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// Every public event of the space, our inbox and the NIP-53 side
    /// (`protocol::filter::session_filters`). Its end of stored events is
    /// [`Input::StoredEnd`].
    Space,
    /// A crowd's view: our inbox (every draft kind addressed to us), the role changes and
    /// the host's CREATE and CLOSE (`protocol::filter::crowd_filters`), in place of
    /// [`Follow::Space`]. Its end of stored events is [`Input::StoredEnd`].
    Crowd,
    /// In a crowd: the members whose JOIN and LEAVE we follow (host, links, the peer we ask,
    /// staff), replacing the last such list (`protocol::filter::members_filter`).
    Members(Vec<PublicKey>),
    /// In a crowd: fetch once the newest JOINs that announce a free output made between
    /// `since` and `until`, at most [`SEAT_SAMPLE`] (`protocol::filter::seats_filter`), then
    /// [`Input::SeatsRead`].
    Seats {
        /// The oldest announcement time to fetch: a seat still open was renewed since (a
        /// crashed member's stays stored).
        since: Timestamp,
        /// The newest announcement time to fetch.
        until: Timestamp,
        /// Which seats, by their `#o` tags.
        which: OpenSeats,
    },
}

/// How many open seats a crowd's fetch asks for.
pub const SEAT_SAMPLE: usize = 24;

/// A link operation. SDP and ICE candidates travel over the relays between the driver and the
/// peer; the participant only decides which links exist.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkOp {
    /// Open a link to a peer and send it an offer: in an OFFER of its own once the peer
    /// confirmed us (the draft's flow), or, to a peer of our dialect, inside the RESERVE that
    /// asks for the link, which the driver publishes once the offer is made.
    Open {
        /// The peer.
        peer: PublicKey,
        /// The RESERVE the offer rides in; `None`: an OFFER of its own.
        within: Option<Publication>,
    },
    /// The peer confirmed without taking the offer from our RESERVE (a client of the draft's
    /// flow): send the link's offer again, in an OFFER of its own.
    SendOffer(PublicKey),
    /// Answer an offer from a peer we agreed to link with: on the same link when it
    /// renegotiates (an ICE restart), otherwise on a new one.
    Answer {
        /// The offerer.
        peer: PublicKey,
        /// Its offer.
        sdp: String,
        /// The CONFIRM the answer rides in (the offer came in the RESERVE); `None`: an
        /// ANSWER of its own.
        within: Option<Publication>,
    },
    /// Apply the answer to our offer.
    ApplyAnswer {
        /// The answerer.
        peer: PublicKey,
        /// Its answer.
        sdp: String,
    },
    /// Add a remote ICE candidate.
    AddCandidate {
        /// The sender.
        peer: PublicKey,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// Restart ICE on the link and send the new offer (our network changed).
    Restart(PublicKey),
    /// Close the link.
    Close(PublicKey),
}

/// Audio routing: the participant's links as the audio path needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// Links whose audio we take: parent, warm backup, a former parent until the new one
    /// delivers.
    pub upstream: Vec<PublicKey>,
    /// Links we forward every voice to: tree children, the peers we back up, and leaves
    /// whose seat we handed on until they have moved.
    pub children: Vec<PublicKey>,
    /// At the host: speakers, each allowed to send its own voice up its link.
    pub speakers: Vec<PublicKey>,
    /// A speaker's link to the host, where its own voice goes up.
    pub uplink: Option<PublicKey>,
}
