//! What an event says, once read and checked: the input of the space reducer.

use nostr::prelude::{EventId, PublicKey, Timestamp};

use super::{NetworkMetrics, SpaceRef};

/// A read, verified (and decrypted) event of one space.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceEvent {
    /// The event id: duplicates are recognised by it.
    pub id: EventId,
    /// The signer.
    pub author: PublicKey,
    /// The signer's claimed time; orders conflicting events.
    pub created_at: Timestamp,
    /// The space it belongs to.
    pub space: SpaceRef,
    /// What it says.
    pub message: Message,
    /// The NIP-13 proof of work it carries, in bits: the leading zero bits of its id, up to
    /// the target its `nonce` tag commits to (0 without one: zeros by luck prove nothing).
    pub work: u8,
}

/// The meaning of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// CREATE_SPACE: the host opens the space.
    Create(SpaceInfo),
    /// CLOSE_SPACE: the host closes it.
    Close,
    /// JOIN_SPACE: the author joins (or updates its metrics).
    Join(MemberInfo),
    /// LEAVE_SPACE: the author leaves.
    Leave,
    /// RESERVE_CONNECTION from `requester` (the author) to `confirmer`.
    Reserve(Reservation),
    /// CONFIRM_CONNECTION from `confirmer` (the author) to `requester`.
    Confirm(Reservation),
    /// The confirmer's CONFIRM again, tagged `["state", "delivering"]`, once the link carries
    /// audio: every member may now count `requester` as a proven seat (a relay to pick). It
    /// replaces the CONFIRM on relays and is no new confirmation: nothing is renegotiated.
    Delivering(Reservation),
    /// DROP_CONNECTION: the author ends its link with `target`, or refuses its reservation.
    Drop {
        /// The other end.
        target: PublicKey,
        /// On a refusal under pressure: the proof of work (bits, NIP-13) a new reservation
        /// from `target` must carry to be considered (`["pow", "<bits>"]`); 0 otherwise.
        price: u8,
        /// Refuses a RESERVE made before the requester read the space, with its tag
        /// (`["ask","first"]`): it ends that ask only, not one the requester made since.
        first: bool,
    },
    /// REMOVE_PEER.
    Remove {
        /// The removed peer.
        target: PublicKey,
    },
    /// PROMOTE_SPEAKER.
    PromoteSpeaker {
        /// The new speaker.
        target: PublicKey,
    },
    /// PROMOTE_COHOST.
    PromoteCohost {
        /// The new co-host.
        target: PublicKey,
    },
    /// DEMOTE_TO_PEER.
    Demote {
        /// The peer going back to listening.
        target: PublicKey,
    },
    /// SDP_OFFER to `target`.
    Offer {
        /// Recipient.
        target: PublicKey,
        /// Session description.
        sdp: String,
    },
    /// SDP_ANSWER to `target`.
    Answer {
        /// Recipient.
        target: PublicKey,
        /// Session description.
        sdp: String,
    },
    /// ICE_CANDIDATE to `target`.
    Ice {
        /// Recipient.
        target: PublicKey,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// REQUEST_SPEECH: the author asks to speak.
    RequestSpeech,
    /// PROPOSE_SPEECH: host or co-host invites `target` to ask.
    ProposeSpeech {
        /// The invited peer.
        target: PublicKey,
        /// Optional invitation text.
        note: String,
    },
    /// NIP-53 kind 30312 room record.
    Room(Room),
    /// NIP-53 kind 10312 presence.
    Presence(Presence),
    /// NIP-53 kind 1311 chat line.
    Chat {
        /// The text.
        text: String,
    },
    /// Kind 7 reaction.
    Reaction {
        /// Emoji or `+`.
        content: String,
        /// The speaker reacted to, if any.
        target: Option<PublicKey>,
    },
    /// Kind 4312 admin command.
    Admin {
        /// What to do.
        action: AdminAction,
        /// To whom.
        target: PublicKey,
    },
}

impl Message {
    /// A short stable name, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Create(_) => "create",
            Message::Close => "close",
            Message::Join(_) => "join",
            Message::Leave => "leave",
            Message::Reserve(_) => "reserve",
            Message::Confirm(_) => "confirm",
            Message::Delivering(_) => "delivering",
            Message::Drop { .. } => "drop",
            Message::Remove { .. } => "remove",
            Message::PromoteSpeaker { .. } => "promote_speaker",
            Message::PromoteCohost { .. } => "promote_cohost",
            Message::Demote { .. } => "demote",
            Message::Offer { .. } => "offer",
            Message::Answer { .. } => "answer",
            Message::Ice { .. } => "ice",
            Message::RequestSpeech => "request_speech",
            Message::ProposeSpeech { .. } => "propose_speech",
            Message::Room(_) => "room",
            Message::Presence(_) => "presence",
            Message::Chat { .. } => "chat",
            Message::Reaction { .. } => "reaction",
            Message::Admin { .. } => "admin",
        }
    }

    /// The reservation a RESERVE, CONFIRM or delivering CONFIRM is about.
    pub fn reservation(&self) -> Option<&Reservation> {
        match self {
            Message::Reserve(r) | Message::Confirm(r) | Message::Delivering(r) => Some(r),
            _ => None,
        }
    }
}

/// CREATE_SPACE content.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpaceInfo {
    /// Display name.
    pub name: String,
    /// The host's announced metrics.
    pub host_metrics: NetworkMetrics,
    /// The UMAP/SECTOR/REGION cell labels the space is tagged with (`"LAT,LON"`), if any.
    pub cells: Vec<String>,
    /// The host reads NIP-44 private payloads (`["encryption","nip44"]`; we always write it).
    pub nip44: bool,
    /// The fingerprint of the host's DTLS certificate, `sha-256 AB:CD:…` (`["dtls", …]`):
    /// with it a newcomer writes the host's answer before it arrives (`rtc::prediction`).
    pub dtls: Option<String>,
    /// The host says the space is a crowd (`["view","crowd"]`): members follow their own
    /// neighbourhood and a sample of seats rather than every event of the space
    /// (`docs/TOPOLOGY.md`, *Crowd views*).
    pub crowd: bool,
}

/// JOIN_SPACE content.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberInfo {
    /// Display name.
    pub name: String,
    /// Announced metrics.
    pub metrics: NetworkMetrics,
    /// The NIP-13 proof of work (bits) a RESERVE to this member must carry now: set while
    /// it is under pressure (`["pow", "<bits>"]`), 0 otherwise.
    pub price: u8,
    /// It reads NIP-44 private payloads (`["encryption","nip44"]`; we always write it).
    pub nip44: bool,
    /// The fingerprint of its DTLS certificate, as [`SpaceInfo::dtls`].
    pub dtls: Option<String>,
    /// Its place in the tree, announced in a crowd (`["seat", depth, free, path]`, and
    /// `["o", <space id>]` while it has a free output, which relays index).
    pub seat: Option<Seat>,
}

/// A member's place in the tree as it announces it in a crowd, where nobody sees the whole
/// tree: what a newcomer needs to choose it as a parent without reading its links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    /// Hops from the host through links that deliver.
    pub depth: u32,
    /// Outputs no child, backup or standing ask holds.
    pub free: u32,
    /// The smallest uplink per output along its path from the host, in kbit/s.
    pub path_kbps: u32,
    /// With no free output: the outputs of its weakest leaf child it would hand on to a
    /// clearly stronger newcomer (`topology::TreeRules::outranks`), if it has one.
    pub leaf: Option<u32>,
    /// Its branch of the tree: the first eight bytes of the key of its ancestor at depth 1
    /// (its own at depth 1; 0 for the host). A warm backup from another branch does not go
    /// silent with our parent, and a parent from another branch is never below us.
    pub branch: u64,
    /// Its line from the host as a filter: the `topology::lineage_bits` of every member from
    /// depth 1 down to itself, ORed (0: not said). A member whose bits are not all in it is
    /// not above it; one whose bits are may be (a few in a hundred are not). Within one branch
    /// the depth alone cannot tell, and a crowd whose members nearly all hang below one relay
    /// at depth 1 then found neither a backup nor a new parent in its samples.
    pub lineage: u64,
    /// The outputs of its ancestor at depth 1, the head of its branch (its own at depth 1; 0
    /// for the host, or not said). A strong relay deep in a branch whose head is weak asks the
    /// host for that head's seat (`topology::TreeRules::outranks_branch_head`).
    pub head: u32,
}

impl Seat {
    /// Whether a newcomer may ask for it: a free output, or a leaf's seat to take.
    pub fn open(&self) -> bool {
        self.free > 0 || self.leaf.is_some()
    }
}

/// Which side of a link the requester takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkRole {
    /// The requester sends audio to the confirmer.
    Provider,
    /// The requester receives audio from the confirmer.
    Consumer,
}

/// The two ends of a RESERVE/CONFIRM, and the role when we could read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Who asked.
    pub requester: PublicKey,
    /// Who was asked.
    pub confirmer: PublicKey,
    /// The requester's side; `None` when the payload was encrypted to someone else.
    pub role: Option<LinkRole>,
    /// A warm backup link: the confirmer sends the stream to the requester in parallel with
    /// its parent, so losing the parent costs no audio. Public (tag `["link", "standby"]`) so
    /// every member can tell the tree from its backups.
    pub standby: bool,
    /// Our dialect's one-round-trip handshake: the requester's SDP offer riding in its
    /// RESERVE, the confirmer's answer in its CONFIRM (`"sdp"` in the encrypted payload).
    /// `None` in the draft's flow, where OFFER and ANSWER follow the CONFIRM, and whenever the
    /// payload was not for us.
    pub sdp: Option<String>,
    /// A RESERVE sent before the requester read the space (tag `["ask","first"]`): the
    /// requester decides on its own once it has read the space, so a confirmer with no room
    /// refuses it silently instead of publishing a DROP, and nobody counts it as a seat taken
    /// while it waits. Public, like `standby`, for that count. The CONFIRM of such a RESERVE
    /// carries the tag too: a requester that gave that ask up after reading, and has asked the
    /// same peer again since, knows it for a stale answer (its answer SDP, if any, is for the
    /// link it closed).
    pub before_read: bool,
}

impl Reservation {
    /// The pair of peers it is about, (requester, confirmer): the link's key in every view,
    /// and the address the draft makes reservation events replaceable by.
    pub fn pair(&self) -> (PublicKey, PublicKey) {
        (self.requester, self.confirmer)
    }
}

/// A trickled ICE candidate as browsers exchange it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// `candidate:...` line; empty for end-of-candidates.
    pub candidate: String,
    /// Media stream id.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Media line index.
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_m_line_index: Option<u16>,
}

/// A participant's role in a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Role {
    /// Listens (the draft's "peer").
    #[default]
    Listener,
    /// May send audio.
    Speaker,
    /// Moderates (NIP-53 "admin"/"moderator").
    Cohost,
    /// Created the space.
    Host,
}

impl Role {
    /// Reads a NIP-53 `p`-tag role as any deployed client writes it, case-insensitive.
    pub fn from_nip53(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "host" | "owner" | "room owner" => Some(Role::Host),
            "admin" | "moderator" | "co-host" | "cohost" => Some(Role::Cohost),
            "speaker" => Some(Role::Speaker),
            "participant" | "listener" | "audience" => Some(Role::Listener),
            _ => None,
        }
    }

    /// The role as Nests writes it (lower case).
    pub fn to_nip53(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Cohost => "admin",
            Role::Speaker => "speaker",
            Role::Listener => "participant",
        }
    }

    /// Host, co-hosts and speakers send audio (and mesh with each other).
    pub fn speaks(self) -> bool {
        self >= Role::Speaker
    }
}

/// How a listed room carries its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Ours: WebRTC links negotiated over Nostr.
    NostrSpaces,
    /// Nests/Amethyst Media-over-QUIC relay.
    Moq {
        /// The `streaming` URL.
        streaming: String,
        /// The `auth` URL, if given.
        auth: Option<String>,
    },
    /// Some other service (LiveKit, a web page).
    Service(String),
    /// None announced.
    Unknown,
}

/// Whether a room is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomStatus {
    /// `live` or `open`.
    Live,
    /// `planned`.
    Planned,
    /// `private`.
    Private,
    /// `ended` or `closed`.
    Ended,
}

/// A NIP-53 kind 30312 room, from us or another client.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// `title`, else `room`.
    pub title: String,
    /// `summary`.
    pub summary: Option<String>,
    /// Normalised status.
    pub status: RoomStatus,
    /// How its audio travels.
    pub transport: Transport,
    /// `p` tags with a recognised role.
    pub participants: Vec<(PublicKey, Role)>,
    /// `g` tags (cell labels or geohashes).
    pub cells: Vec<String>,
}

/// A NIP-53 kind 10312 presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Presence {
    /// `hand` = 1.
    pub hand_raised: bool,
    /// `muted` = 1.
    pub muted: bool,
    /// `publishing` = 1.
    pub publishing: bool,
    /// `onstage` = 1.
    pub on_stage: bool,
    /// A `leaving` tag: the final presence.
    pub leaving: bool,
}

/// A kind 4312 admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// Remove from the room.
    Kick,
    /// Ask the target to mute (Amethyst extension).
    Mute,
}
