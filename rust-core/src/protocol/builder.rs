//! Turns messages into signed events, with the draft's tags and our encrypted payloads.

use std::num::NonZeroU8;

use nostr::nips::nip13::SingleThreadPow;
use nostr::nips::nip44;
use nostr::prelude::{
    Event, EventBuilder, FinalizeEvent, FinalizeUnsignedEvent, Keys, PublicKey, Tag, Timestamp,
    UnsignedEvent,
};
use serde_json::json;

use super::metrics::WireMetrics;
use super::{AdminAction, LinkRole, Message, ProtocolError, RoomStatus, SpaceKind, SpaceRef};

/// The `t` tag value our CREATE_SPACE and room mirror carry, for discovery filters.
pub const DISCOVERY_TAG: &str = "nostr-spaces";
/// The `transport` value marking a NIP-53 room whose audio is Nostr Spaces WebRTC.
pub const TRANSPORT_TAG_VALUE: &str = "nostr-spaces-webrtc";

/// Writes the events of one participant in one space.
pub struct EventWriter<'a> {
    author: PublicKey,
    /// The author's keys, when they are in this process; without them the writer only makes
    /// [`Draft`]s, for a signer elsewhere to finish.
    keys: Option<&'a Keys>,
    space: &'a SpaceRef,
    plaintext: bool,
}

/// An event written but not yet sealed or signed: what a signer that holds the user's key
/// elsewhere (a NIP-46 bunker, a NIP-55 signer app) finishes. A private payload is in clear
/// here until [`Draft::sealed`] puts its NIP-44 ciphertext in.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    author: PublicKey,
    kind: SpaceKind,
    content: String,
    tags: Vec<Tag>,
    created_at: Timestamp,
    seal_to: Option<PublicKey>,
}

impl Draft {
    /// The one recipient its payload must be NIP-44 sealed to, if it still must be.
    pub fn seal_to(&self) -> Option<PublicKey> {
        self.seal_to
    }

    /// Its content: the payload in clear while [`Self::seal_to`] is set.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// The draft with its payload replaced by `ciphertext`, sealed to [`Self::seal_to`].
    pub fn sealed(mut self, ciphertext: String) -> Self {
        self.content = ciphertext;
        self.seal_to = None;
        self
    }

    /// The unsigned event, with `work` bits of NIP-13 proof of work mined into it (0: none;
    /// CPU-bound, each bit doubles the time). Refused while the payload is unsealed.
    pub fn unsigned(self, work: u8) -> Result<UnsignedEvent, ProtocolError> {
        if self.seal_to.is_some() {
            return Err(ProtocolError::Build("private payload not sealed".into()));
        }
        let unsigned = EventBuilder::new(self.kind.kind(), self.content)
            .tags(self.tags)
            .custom_created_at(self.created_at)
            .finalize_unsigned(self.author);
        match NonZeroU8::new(work) {
            // NIP-13: a nonce tag committing to `work`, mined until the id has that many
            // leading zero bits. CPU-bound: callers run it off the audio path.
            Some(bits) => unsigned
                .mine(&SingleThreadPow, bits)
                .map_err(|e| ProtocolError::Build(format!("proof of work: {e:?}"))),
            None => Ok(unsigned),
        }
    }
}

/// The capability tag on CREATE and JOIN: we read NIP-44 private payloads.
pub const ENCRYPTION_TAG: [&str; 2] = ["encryption", "nip44"];

/// The tag on CREATE and JOIN naming the author's DTLS certificate, `["dtls", "sha-256 …"]`:
/// one certificate per session, so a child can write its parent's answer in advance.
pub const DTLS_TAG: &str = "dtls";

/// The tag of a CONFIRM re-published once its link carries audio ([`Message::Delivering`]).
pub const DELIVERING_TAG: [&str; 2] = ["state", "delivering"];
/// Marks a RESERVE sent before its author read the space (our dialect): see
/// [`super::Reservation::before_read`].
pub const ASK_FIRST_TAG: [&str; 2] = ["ask", "first"];

/// A CREATE that makes the space a crowd ([`crate::protocol::SpaceInfo::crowd`]).
pub const CROWD_TAG: [&str; 2] = ["view", "crowd"];

/// A JOIN's announced place in the tree ([`crate::protocol::Seat`]): depth, free outputs,
/// path kbit/s, the outputs of the weakest leaf child it would hand on (`-`: none), its
/// branch and its lineage (16 hex digits each), and its branch head's outputs.
pub const SEAT_TAG: &str = "seat";

/// The single-letter tag a JOIN carries while it has a free output or a leaf's seat to hand
/// on, three times: the space id, the space id with the seat's depth ([`open_seat_at`]), and
/// the space id with the seat's shard ([`open_seat_in`]). Relays index it, so a newcomer in a
/// crowd fetches a few open seats by it (of one shard when it wants the newest), and a relay
/// looking for a place nearer the host only the shallow ones.
pub const OPEN_SEAT_TAG: &str = "o";

/// The value of the [`OPEN_SEAT_TAG`] that names an open seat's depth: `<space id>:<depth>`.
pub fn open_seat_at(space: &SpaceRef, depth: u32) -> String {
    format!("{}:{depth}", space.id())
}

/// How many shards a crowd's open seats fall into ([`seat_shard`]).
pub const SEAT_SHARDS: u8 = 16;

/// The shard of `member`'s open seat: its key's first byte, modulo [`SEAT_SHARDS`]. Relays
/// answer a fetch of the newest seats with the same seats to everyone asking within the same
/// second (timestamps are in seconds, ties broken alike); newcomers arriving by the hundred a
/// second then all ask the same few. A fetch of one shard, drawn per fetch, spreads them.
pub fn seat_shard(member: &PublicKey) -> u8 {
    member.to_bytes()[0] % SEAT_SHARDS
}

/// The value of the [`OPEN_SEAT_TAG`] that names an open seat's shard: `<space id>/<shard>`.
pub fn open_seat_in(space: &SpaceRef, shard: u8) -> String {
    format!("{}/{shard}", space.id())
}

impl<'a> EventWriter<'a> {
    /// A writer signing with `keys` for `space`.
    pub fn new(keys: &'a Keys, space: &'a SpaceRef) -> Self {
        Self {
            author: keys.public_key(),
            keys: Some(keys),
            space,
            plaintext: false,
        }
    }

    /// A writer of [`Draft`]s by `author`, whose key is held by a signer elsewhere.
    pub fn drafts_for(author: PublicKey, space: &'a SpaceRef) -> Self {
        Self {
            author,
            keys: None,
            space,
            plaintext: false,
        }
    }

    /// Private payloads in clear JSON, for a draft-literal peer that cannot read NIP-44 (only
    /// in draft-compatibility mode: relays are public, and SDP and ICE carry IP addresses).
    pub fn plaintext(mut self, plaintext: bool) -> Self {
        self.plaintext = plaintext;
        self
    }

    /// Builds and signs the event carrying `message`. Private payloads (RESERVE, CONFIRM,
    /// SDP, ICE) are NIP-44 encrypted to their one recipient.
    pub fn build(&self, message: &Message, created_at: Timestamp) -> Result<Event, ProtocolError> {
        self.build_with_work(message, created_at, 0)
    }

    /// [`Self::build`], with `work` bits of NIP-13 proof of work (0: none). Each bit doubles
    /// the expected time: see BENCHMARKS.md for this machine's figures.
    pub fn build_with_work(
        &self,
        message: &Message,
        created_at: Timestamp,
        work: u8,
    ) -> Result<Event, ProtocolError> {
        let keys = self.keys.ok_or_else(|| {
            ProtocolError::Build("no keys here: finish the draft elsewhere".into())
        })?;
        let draft = self.draft(message, created_at)?;
        let draft = match draft.seal_to() {
            Some(recipient) => {
                let ciphertext = nip44::encrypt(
                    keys.secret_key(),
                    &recipient,
                    draft.content(),
                    nip44::Version::V2,
                )
                .map_err(|e| ProtocolError::Build(format!("NIP-44: {e}")))?;
                draft.sealed(ciphertext)
            }
            None => draft,
        };
        draft
            .unsigned(work)?
            .finalize(keys)
            .map_err(|e| ProtocolError::Build(e.to_string()))
    }

    /// The event carrying `message`, written but neither sealed nor signed.
    pub fn draft(&self, message: &Message, created_at: Timestamp) -> Result<Draft, ProtocolError> {
        let me = self.author;
        let mut seal_to = None;
        let (kind, content, tags) = match message {
            Message::Create(info) => {
                let content = json!({
                    "id": self.space.id(),
                    "name": info.name,
                    "host": {
                        "publicKey": self.space.host().to_hex(),
                        "networkMetrics": WireMetrics::from(&info.host_metrics),
                    },
                });
                let mut tags = self.draft_tags();
                tags.push(Tag::custom("t", [DISCOVERY_TAG]));
                tags.push(Tag::custom(ENCRYPTION_TAG[0], [ENCRYPTION_TAG[1]]));
                tags.extend(info.cells.iter().map(|c| Tag::custom("g", [c.as_str()])));
                if info.crowd {
                    tags.push(Tag::custom(CROWD_TAG[0], [CROWD_TAG[1]]));
                }
                tags.extend(
                    info.dtls
                        .iter()
                        .map(|f| Tag::custom(DTLS_TAG, [f.as_str()])),
                );
                (SpaceKind::CreateSpace, content.to_string(), tags)
            }
            Message::Close => (SpaceKind::CloseSpace, String::new(), self.draft_tags()),
            Message::Join(member) => {
                let content = json!({
                    "name": member.name,
                    "publicKey": me.to_hex(),
                    "networkMetrics": WireMetrics::from(&member.metrics),
                });
                let mut tags = self.with_d(&[&me]);
                tags.push(Tag::custom(ENCRYPTION_TAG[0], [ENCRYPTION_TAG[1]]));
                if member.price > 0 {
                    tags.push(Tag::custom("pow", [member.price.to_string()]));
                }
                tags.extend(
                    member
                        .dtls
                        .iter()
                        .map(|f| Tag::custom(DTLS_TAG, [f.as_str()])),
                );
                if let Some(seat) = member.seat {
                    let mut values = vec![
                        seat.depth.to_string(),
                        seat.free.to_string(),
                        seat.path_kbps.to_string(),
                    ];
                    values.push(seat.leaf.map_or_else(|| "-".into(), |n| n.to_string()));
                    values.push(format!("{:016x}", seat.branch));
                    values.push(format!("{:016x}", seat.lineage));
                    values.push(seat.head.to_string());
                    tags.push(Tag::custom(SEAT_TAG, values));
                    if seat.open() {
                        tags.push(Tag::custom(OPEN_SEAT_TAG, [self.space.id()]));
                        let at_depth = open_seat_at(self.space, seat.depth);
                        tags.push(Tag::custom(OPEN_SEAT_TAG, [at_depth]));
                        let shard = open_seat_in(self.space, seat_shard(&me));
                        tags.push(Tag::custom(OPEN_SEAT_TAG, [shard]));
                    }
                }
                (SpaceKind::Join, content.to_string(), tags)
            }
            Message::Leave => (SpaceKind::Leave, String::new(), self.with_d(&[&me])),
            Message::Reserve(r) | Message::Confirm(r) | Message::Delivering(r) => {
                let (kind, recipient) = match message {
                    Message::Reserve(_) => (SpaceKind::ReserveConnection, &r.confirmer),
                    _ => (SpaceKind::ConfirmConnection, &r.requester),
                };
                let role = match r.role {
                    Some(LinkRole::Consumer) => "consumer",
                    _ => "provider",
                };
                let mut payload = json!({ "type": role });
                // A re-published CONFIRM (delivering) answers nothing.
                if let Some(sdp) = r
                    .sdp
                    .as_ref()
                    .filter(|_| !matches!(message, Message::Delivering(_)))
                {
                    payload["sdp"] = json!(sdp);
                }
                let content = payload.to_string();
                seal_to = self.seal(recipient);
                let mut tags = self.with_d(&[&r.requester, &r.confirmer]);
                tags.push(Tag::public_key(*recipient));
                if r.standby {
                    tags.push(Tag::custom("link", ["standby"]));
                }
                if r.before_read && !matches!(message, Message::Delivering(_)) {
                    tags.push(Tag::custom(ASK_FIRST_TAG[0], [ASK_FIRST_TAG[1]]));
                }
                if matches!(message, Message::Delivering(_)) {
                    tags.push(Tag::custom(DELIVERING_TAG[0], [DELIVERING_TAG[1]]));
                }
                (kind, content, tags)
            }
            Message::Drop {
                target,
                price,
                first,
            } => {
                let mut tags = self.with_d(&[&me, target]);
                tags.push(Tag::public_key(*target));
                if *price > 0 {
                    tags.push(Tag::custom("pow", [price.to_string()]));
                }
                if *first {
                    tags.push(Tag::custom(ASK_FIRST_TAG[0], [ASK_FIRST_TAG[1]]));
                }
                (SpaceKind::DropConnection, String::new(), tags)
            }
            Message::Remove { target } => self.role_change(SpaceKind::RemovePeer, target),
            Message::PromoteSpeaker { target } => {
                self.role_change(SpaceKind::PromoteSpeaker, target)
            }
            Message::PromoteCohost { target } => self.role_change(SpaceKind::PromoteCohost, target),
            Message::Demote { target } => self.role_change(SpaceKind::DemoteToPeer, target),
            Message::Offer { target, sdp } | Message::Answer { target, sdp } => {
                let kind = match message {
                    Message::Offer { .. } => SpaceKind::SdpOffer,
                    _ => SpaceKind::SdpAnswer,
                };
                let content = json!({ "sdp": sdp }).to_string();
                seal_to = self.seal(target);
                (kind, content, self.addressed(target))
            }
            Message::Ice { target, candidate } => {
                let content = json!({ "ice": candidate }).to_string();
                seal_to = self.seal(target);
                (SpaceKind::IceCandidate, content, self.addressed(target))
            }
            Message::RequestSpeech => {
                let mut tags = self.with_d(&[&me]);
                tags.push(Tag::public_key(me));
                tags.push(Tag::custom("speech", ["request"]));
                (SpaceKind::Speech, String::new(), tags)
            }
            Message::ProposeSpeech { target, note } => {
                let mut tags = self.with_d(&[target]);
                tags.push(Tag::public_key(*target));
                tags.push(Tag::custom("speech", ["propose"]));
                (SpaceKind::Speech, note.clone(), tags)
            }
            Message::Room(room) => {
                let status = match room.status {
                    RoomStatus::Live => "live",
                    RoomStatus::Planned => "planned",
                    RoomStatus::Private => "private",
                    RoomStatus::Ended => "ended",
                };
                let mut tags = vec![
                    Tag::identifier(self.space.id()),
                    // Both vocabularies: `title` (Nests, Amethyst) and `room` (NIP-53 text).
                    Tag::custom("title", [room.title.as_str()]),
                    Tag::custom("room", [room.title.as_str()]),
                    Tag::custom("status", [status]),
                    Tag::custom("transport", [TRANSPORT_TAG_VALUE]),
                    Tag::custom("t", [DISCOVERY_TAG]),
                ];
                if let Some(summary) = &room.summary {
                    tags.push(Tag::custom("summary", [summary.as_str()]));
                }
                for (peer, role) in &room.participants {
                    tags.push(Tag::custom(
                        "p",
                        [peer.to_hex(), String::new(), role.to_nip53().to_owned()],
                    ));
                }
                tags.extend(room.cells.iter().map(|c| Tag::custom("g", [c.as_str()])));
                (SpaceKind::Nip53Room, String::new(), tags)
            }
            Message::Presence(p) => {
                let flag = |b: bool| if b { "1" } else { "0" };
                let mut tags = vec![
                    self.room_root(),
                    Tag::custom("hand", [flag(p.hand_raised)]),
                    Tag::custom("muted", [flag(p.muted)]),
                    Tag::custom("publishing", [flag(p.publishing)]),
                    Tag::custom("onstage", [flag(p.on_stage)]),
                ];
                if p.leaving {
                    tags.push(Tag::custom("leaving", Vec::<String>::new()));
                }
                (SpaceKind::Nip53Presence, String::new(), tags)
            }
            Message::Chat { text } => (SpaceKind::Nip53Chat, text.clone(), vec![self.room_root()]),
            Message::Reaction { content, target } => {
                let mut tags = vec![Tag::custom("a", [self.space.room_address()])];
                tags.extend(target.map(Tag::public_key));
                (SpaceKind::Reaction, content.clone(), tags)
            }
            Message::Admin { action, target } => {
                let action = match action {
                    AdminAction::Kick => "kick",
                    AdminAction::Mute => "mute",
                };
                let tags = vec![
                    Tag::custom("a", [self.space.room_address()]),
                    Tag::public_key(*target),
                    Tag::custom("action", [action]),
                ];
                (SpaceKind::Nip53Admin, String::new(), tags)
            }
        };
        Ok(Draft {
            author: me,
            kind,
            content,
            tags,
            created_at,
            seal_to,
        })
    }

    /// `s`, `h` and `["webrtc","spaces"]`: on every draft event. We write `h` for peers that
    /// follow the draft literally but never filter on it (NIP-29 gives `h` another meaning).
    fn draft_tags(&self) -> Vec<Tag> {
        vec![
            Tag::custom("s", [self.space.id()]),
            Tag::custom("h", [self.space.host().to_hex()]),
            Tag::custom("webrtc", ["spaces"]),
        ]
    }

    fn with_d(&self, keys: &[&PublicKey]) -> Vec<Tag> {
        let mut tags = self.draft_tags();
        tags.push(Tag::identifier(self.space.d_tag(keys)));
        tags
    }

    fn addressed(&self, target: &PublicKey) -> Vec<Tag> {
        let mut tags = self.draft_tags();
        tags.push(Tag::public_key(*target));
        tags
    }

    fn role_change(&self, kind: SpaceKind, target: &PublicKey) -> (SpaceKind, String, Vec<Tag>) {
        let mut tags = self.with_d(&[target]);
        tags.push(Tag::public_key(*target));
        (kind, String::new(), tags)
    }

    fn room_root(&self) -> Tag {
        Tag::custom(
            "a",
            [self.space.room_address(), String::new(), "root".to_owned()],
        )
    }

    /// Whom a private payload is sealed to: its one recipient, or nobody for a draft-literal
    /// peer that reads no NIP-44 (draft-compatibility mode only).
    fn seal(&self, recipient: &PublicKey) -> Option<PublicKey> {
        (!self.plaintext).then_some(*recipient)
    }
}
