//! Event kinds: the Nostr Spaces draft's and the NIP-53 ones we interoperate with.

use nostr::prelude::Kind;

/// Every event kind the core reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpaceKind {
    /// 1000: a host opens a space.
    CreateSpace,
    /// 1001: the host closes it for good.
    CloseSpace,
    /// 31101: a peer joins (re-published to update its metrics).
    Join,
    /// 31102: a peer leaves.
    Leave,
    /// 31103: ask a peer for a WebRTC link.
    ReserveConnection,
    /// 31104: accept a reservation.
    ConfirmConnection,
    /// 31105: end a link or a pending reservation.
    DropConnection,
    /// 31106: host or co-host removes a peer.
    RemovePeer,
    /// 31107: host or co-host makes a peer a speaker.
    PromoteSpeaker,
    /// 31108: the host makes a peer a co-host.
    PromoteCohost,
    /// 31109: back to listener.
    DemoteToPeer,
    /// 21102: WebRTC offer.
    SdpOffer,
    /// 21103: WebRTC answer.
    SdpAnswer,
    /// 21104: trickled ICE candidate.
    IceCandidate,
    /// 21105: REQUEST_SPEECH or PROPOSE_SPEECH (see `docs/PROTOCOL.md` for how they differ).
    Speech,
    /// NIP-53 30312: interactive room (our space's mirror, or another client's room).
    Nip53Room,
    /// NIP-53 10312: room presence.
    Nip53Presence,
    /// NIP-53 1311: live chat message.
    Nip53Chat,
    /// NIP-25 7: reaction in a room.
    Reaction,
    /// 4312: admin command (kick, mute) used by Nests and Amethyst.
    Nip53Admin,
}

impl SpaceKind {
    /// Every kind, in wire-number order of the draft then NIP-53.
    pub const ALL: [SpaceKind; 20] = [
        SpaceKind::CreateSpace,
        SpaceKind::CloseSpace,
        SpaceKind::Join,
        SpaceKind::Leave,
        SpaceKind::ReserveConnection,
        SpaceKind::ConfirmConnection,
        SpaceKind::DropConnection,
        SpaceKind::RemovePeer,
        SpaceKind::PromoteSpeaker,
        SpaceKind::PromoteCohost,
        SpaceKind::DemoteToPeer,
        SpaceKind::SdpOffer,
        SpaceKind::SdpAnswer,
        SpaceKind::IceCandidate,
        SpaceKind::Speech,
        SpaceKind::Nip53Room,
        SpaceKind::Nip53Presence,
        SpaceKind::Nip53Chat,
        SpaceKind::Reaction,
        SpaceKind::Nip53Admin,
    ];

    /// The wire number.
    pub const fn number(self) -> u16 {
        match self {
            SpaceKind::CreateSpace => 1000,
            SpaceKind::CloseSpace => 1001,
            SpaceKind::Join => 31101,
            SpaceKind::Leave => 31102,
            SpaceKind::ReserveConnection => 31103,
            SpaceKind::ConfirmConnection => 31104,
            SpaceKind::DropConnection => 31105,
            SpaceKind::RemovePeer => 31106,
            SpaceKind::PromoteSpeaker => 31107,
            SpaceKind::PromoteCohost => 31108,
            SpaceKind::DemoteToPeer => 31109,
            SpaceKind::SdpOffer => 21102,
            SpaceKind::SdpAnswer => 21103,
            SpaceKind::IceCandidate => 21104,
            SpaceKind::Speech => 21105,
            SpaceKind::Nip53Room => 30312,
            SpaceKind::Nip53Presence => 10312,
            SpaceKind::Nip53Chat => 1311,
            SpaceKind::Reaction => 7,
            SpaceKind::Nip53Admin => 4312,
        }
    }

    /// The kind with this wire number, if it is one of ours.
    pub fn from_number(number: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.number() == number)
    }

    /// As a nostr [`Kind`].
    pub fn kind(self) -> Kind {
        Kind::from(self.number())
    }

    /// Kinds whose payload is encrypted to its one recipient (NIP-44).
    pub const fn is_private(self) -> bool {
        matches!(
            self,
            SpaceKind::ReserveConnection
                | SpaceKind::ConfirmConnection
                | SpaceKind::SdpOffer
                | SpaceKind::SdpAnswer
                | SpaceKind::IceCandidate
        )
    }

    /// Kinds that only matter for a moment (connection set-up): they get the short age window.
    /// RESERVE, CONFIRM and DROP are not among them: relays keep the latest per pair, and
    /// together they are the tree a late joiner must see (acting on an old request is the
    /// participant's call, not the parser's).
    pub const fn is_signaling(self) -> bool {
        matches!(
            self,
            SpaceKind::SdpOffer
                | SpaceKind::SdpAnswer
                | SpaceKind::IceCandidate
                | SpaceKind::Speech
        )
    }

    /// Kinds of the Nostr Spaces draft (as opposed to NIP-53 interop kinds).
    pub const fn is_draft(self) -> bool {
        !matches!(
            self,
            SpaceKind::Nip53Room
                | SpaceKind::Nip53Presence
                | SpaceKind::Nip53Chat
                | SpaceKind::Reaction
                | SpaceKind::Nip53Admin
        )
    }
}
