//! Why the reducer ignored an event: typed, loggable and countable, never a panic.

use nostr::prelude::PublicKey;

/// An event the space state did not take. State is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The event belongs to another space.
    #[error("event of another space")]
    ForeignSpace,
    /// Already applied (relays deliver the same event several times).
    #[error("duplicate event")]
    Duplicate,
    /// The space is closed; nothing changes any more.
    #[error("space closed")]
    SpaceClosed,
    /// The author was removed from the space.
    #[error("author {0} was removed from the space")]
    RemovedPeer(PublicKey),
    /// The author lacks the role this action needs.
    #[error("{author} may not {action}")]
    Unauthorized {
        /// The action refused.
        action: &'static str,
        /// Who tried.
        author: PublicKey,
    },
    /// A member-only action from someone who is not a member.
    #[error("{author} is not a member and may not {action}")]
    NotAMember {
        /// The action refused.
        action: &'static str,
        /// Who tried.
        author: PublicKey,
    },
    /// The host's role cannot be changed and the host cannot be removed.
    #[error("cannot {0} the host")]
    TargetIsHost(&'static str),
    /// The target was removed from the space.
    #[error("cannot {0} a removed peer")]
    TargetRemoved(&'static str),
    /// The target is not in the space.
    #[error("cannot {0} a peer who is not a member")]
    TargetNotMember(&'static str),
    /// An older event than one already applied for the same peer.
    #[error("stale {0}: a newer event already decided it")]
    Stale(&'static str),
    /// A confirmation of a reservation we never made.
    #[error("confirmation of an unknown reservation")]
    UnknownReservation,
    /// A private message addressed to another peer.
    #[error("addressed to another peer")]
    NotForUs,
    /// A kind 4312 admin command older than its freshness window.
    #[error("admin command is {age_secs} s old")]
    AdminCommandExpired {
        /// Its age.
        age_secs: u64,
    },
}

impl Rejection {
    /// A stable label for counters and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::ForeignSpace => "foreign_space",
            Rejection::Duplicate => "duplicate",
            Rejection::SpaceClosed => "space_closed",
            Rejection::RemovedPeer(_) => "removed_peer",
            Rejection::Unauthorized { .. } => "unauthorized",
            Rejection::NotAMember { .. } => "not_a_member",
            Rejection::TargetIsHost(_) => "target_is_host",
            Rejection::TargetRemoved(_) => "target_removed",
            Rejection::TargetNotMember(_) => "target_not_member",
            Rejection::Stale(_) => "stale",
            Rejection::UnknownReservation => "unknown_reservation",
            Rejection::NotForUs => "not_for_us",
            Rejection::AdminCommandExpired { .. } => "admin_expired",
        }
    }
}
