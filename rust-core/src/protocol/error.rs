//! Why an event could not be read.

/// A typed reason for refusing an event. Nothing refused reaches the space state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not a kind this protocol uses.
    #[error("unknown kind {0}")]
    UnknownKind(u16),
    /// The content exceeds the configured cap.
    #[error("content of {len} bytes exceeds the {max}-byte cap")]
    ContentTooLarge {
        /// Content length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// More tags than the configured cap.
    #[error("{count} tags exceed the cap of {max}")]
    TooManyTags {
        /// Number of tags.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A required tag is absent.
    #[error("missing {0:?} tag")]
    MissingTag(&'static str),
    /// A tag is present but unusable.
    #[error("malformed {tag:?} tag: {reason}")]
    MalformedTag {
        /// The tag name.
        tag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The content is not the JSON this kind needs.
    #[error("bad content: {0}")]
    BadContent(String),
    /// The event belongs to another space.
    #[error("event of space {found} while following {expected}")]
    ForeignSpace {
        /// The followed space.
        expected: String,
        /// The event's space.
        found: String,
    },
    /// `created_at` is older than the window allows for this kind.
    #[error("created_at {created_at} is more than {max_age_secs} s before now ({now})")]
    TooOld {
        /// The event's time.
        created_at: u64,
        /// The current time.
        now: u64,
        /// The allowed age.
        max_age_secs: u64,
    },
    /// `created_at` is further in the future than clock skew explains.
    #[error("created_at {created_at} is more than {max_skew_secs} s after now ({now})")]
    InFuture {
        /// The event's time.
        created_at: u64,
        /// The current time.
        now: u64,
        /// The allowed skew.
        max_skew_secs: u64,
    },
    /// The id does not hash the event or the signature does not verify.
    #[error("invalid id or signature")]
    BadSignature,
    /// A private payload addressed to another peer: nothing here for us.
    #[error("private payload addressed to another peer")]
    NotForUs,
    /// The encrypted payload could not be decrypted.
    #[error("cannot decrypt: {0}")]
    Decryption(String),
    /// A space id that cannot be used on the wire.
    #[error("invalid space id {0:?} (1–128 printable characters, no '||')")]
    InvalidSpaceId(String),
    /// Network metrics out of their physical range.
    #[error("invalid network metrics: {0}")]
    BadMetrics(String),
    /// An event could not be built (signing or encryption failed).
    #[error("cannot build event: {0}")]
    Build(String),
}
