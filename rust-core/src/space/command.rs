//! What the reducer asks the engine to do, or to show, after an event.

use nostr::prelude::PublicKey;

use crate::protocol::{IceCandidate, LinkRole, Role};

/// An effect of an accepted event. The engine executes them (links, audio, UI).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The host's CREATE_SPACE arrived: the space exists.
    SpaceOpened,
    /// The space is closed: tear everything down.
    SpaceClosed,
    /// A peer joined: plan where it attaches.
    MemberJoined(PublicKey),
    /// A member re-announced its metrics or name: re-plan if they matter.
    MemberUpdated(PublicKey),
    /// A member left: drop its links, re-attach its children.
    MemberLeft(PublicKey),
    /// A peer was removed by a moderator (it may be us).
    PeerRemoved(PublicKey),
    /// A peer's role changed (it may be us).
    RoleChanged {
        /// Whose.
        peer: PublicKey,
        /// The new role.
        role: Role,
    },
    /// A hand went up or down.
    HandRaised {
        /// Whose.
        peer: PublicKey,
        /// Up?
        raised: bool,
    },
    /// A moderator invites us to ask to speak.
    SpeechProposed {
        /// The moderator.
        by: PublicKey,
    },
    /// A moderator asks us to mute.
    MuteRequested {
        /// The moderator.
        by: PublicKey,
    },
    /// A peer asks us for a link.
    ConnectionRequested {
        /// The requester.
        from: PublicKey,
        /// Its side of the link.
        role: Option<LinkRole>,
        /// A warm backup link rather than a tree link.
        standby: bool,
        /// The proof of work its RESERVE carries, bits (NIP-13).
        work: u8,
        /// Its SDP offer, when it rode in the RESERVE (our dialect).
        offer: Option<String>,
        /// Asked before the requester read the space: refused silently when there is no room.
        first: bool,
    },
    /// A peer accepted our reservation: start the WebRTC handshake, or finish it when the
    /// answer to the offer in our RESERVE rode in the CONFIRM.
    ConnectionConfirmed {
        /// The confirmer.
        by: PublicKey,
        /// Its SDP answer to the offer our RESERVE carried.
        answer: Option<String>,
    },
    /// A peer ended its link with us.
    ConnectionDropped(PublicKey),
    /// Apply a remote offer.
    RemoteOffer {
        /// The offerer.
        from: PublicKey,
        /// Session description.
        sdp: String,
    },
    /// Apply a remote answer.
    RemoteAnswer {
        /// The answerer.
        from: PublicKey,
        /// Session description.
        sdp: String,
    },
    /// Add a remote ICE candidate.
    RemoteCandidate {
        /// The sender.
        from: PublicKey,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// Show a chat line.
    Chat {
        /// The author.
        from: PublicKey,
        /// The text.
        text: String,
    },
    /// Show a reaction.
    Reaction {
        /// The author.
        from: PublicKey,
        /// Emoji.
        content: String,
    },
}
