//! Reads events into [`SpaceEvent`]s: cheap checks first, then the signature, then content.

use nostr::nips::nip44;
use nostr::prelude::{Event, Keys, PublicKey, Timestamp};
use serde::Deserialize;

use super::builder::TRANSPORT_TAG_VALUE;
use super::metrics::WireMetrics;
use super::{
    AdminAction, IceCandidate, LinkRole, MemberInfo, Message, Presence, ProtocolError, Reservation,
    Role, Room, RoomStatus, Seat, SpaceEvent, SpaceInfo, SpaceKind, SpaceRef, Transport,
    VerifiedEvent,
};

/// Bounds on what the parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest content in bytes (an encrypted SDP is a few kB).
    pub max_content_bytes: usize,
    /// Most tags per event.
    pub max_tags: usize,
    /// How far in the future `created_at` may be (clock skew).
    pub max_skew_secs: u64,
    /// Oldest connection set-up event (RESERVE, SDP, ICE, …) still acted on.
    pub max_signaling_age_secs: u64,
    /// Oldest state event (CREATE, JOIN, roles, NIP-53) still accepted.
    pub max_state_age_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_content_bytes: 64 * 1024,
            max_tags: 256,
            max_skew_secs: 300,
            max_signaling_age_secs: 120,
            max_state_age_secs: 7 * 24 * 3600,
        }
    }
}

/// Reads events for one participant: checks size, time and space, verifies the signature,
/// decrypts payloads addressed to `reader`, and parses tags and content.
pub struct Parser {
    limits: Limits,
    space: Option<SpaceRef>,
    reader: Option<Keys>,
}

impl Parser {
    /// A parser following one space (events of others are [`ProtocolError::ForeignSpace`]),
    /// or any space when `space` is `None` (discovery). `reader` decrypts private payloads.
    pub fn new(limits: Limits, space: Option<SpaceRef>, reader: Option<Keys>) -> Self {
        Self {
            limits,
            space,
            reader,
        }
    }

    /// Reads one event at time `now`. The signature is checked once everything cheaper
    /// passed; the proof of work is read, not required (the participant prices admission).
    pub fn parse(&self, event: &Event, now: Timestamp) -> Result<SpaceEvent, ProtocolError> {
        self.read(event, now, true)
    }

    /// Reads one event whose signature was checked already (what the relay pool delivers):
    /// everything [`Parser::parse`] checks but the signature.
    pub fn parse_verified(
        &self,
        event: &VerifiedEvent,
        now: Timestamp,
    ) -> Result<SpaceEvent, ProtocolError> {
        self.read(event, now, false)
    }

    fn read(
        &self,
        event: &Event,
        now: Timestamp,
        verify: bool,
    ) -> Result<SpaceEvent, ProtocolError> {
        let number = event.kind.as_u16();
        let kind = SpaceKind::from_number(number).ok_or(ProtocolError::UnknownKind(number))?;
        self.check_bounds(event, kind, now)?;
        let tags = Tags(event);
        let space = tags.space(event, kind)?;
        if let Some(expected) = self.space.as_ref().filter(|expected| **expected != space) {
            return Err(ProtocolError::ForeignSpace {
                expected: expected.to_string(),
                found: space.to_string(),
            });
        }
        // Only now pay for the signature: everything cheaper has passed.
        if verify {
            super::verified::verify(event)?;
        }
        let message = self.message(event, kind, &tags, &space)?;
        Ok(SpaceEvent {
            id: event.id,
            author: event.pubkey,
            created_at: event.created_at,
            space,
            message,
            work: work(event),
        })
    }

    fn check_bounds(
        &self,
        event: &Event,
        kind: SpaceKind,
        now: Timestamp,
    ) -> Result<(), ProtocolError> {
        let limits = &self.limits;
        if event.content.len() > limits.max_content_bytes {
            return Err(ProtocolError::ContentTooLarge {
                len: event.content.len(),
                max: limits.max_content_bytes,
            });
        }
        if event.tags.len() > limits.max_tags {
            return Err(ProtocolError::TooManyTags {
                count: event.tags.len(),
                max: limits.max_tags,
            });
        }
        let (created_at, now) = (event.created_at.as_secs(), now.as_secs());
        if created_at > now.saturating_add(limits.max_skew_secs) {
            return Err(ProtocolError::InFuture {
                created_at,
                now,
                max_skew_secs: limits.max_skew_secs,
            });
        }
        let max_age_secs = if kind.is_signaling() {
            limits.max_signaling_age_secs
        } else {
            limits.max_state_age_secs
        };
        if now.saturating_sub(created_at) > max_age_secs {
            return Err(ProtocolError::TooOld {
                created_at,
                now,
                max_age_secs,
            });
        }
        Ok(())
    }

    fn message(
        &self,
        event: &Event,
        kind: SpaceKind,
        tags: &Tags<'_>,
        space: &SpaceRef,
    ) -> Result<Message, ProtocolError> {
        let author = event.pubkey;
        Ok(match kind {
            SpaceKind::CreateSpace => Message::Create(SpaceInfo {
                nip44: tags.reads_nip44(),
                dtls: tags.dtls(),
                crowd: tags.value(super::builder::CROWD_TAG[0])
                    == Some(super::builder::CROWD_TAG[1]),
                ..parse_create(event, space)?
            }),
            SpaceKind::CloseSpace => Message::Close,
            SpaceKind::Join => {
                tags.check_d(space, &[&author])?;
                Message::Join(MemberInfo {
                    price: tags.price(),
                    nip44: tags.reads_nip44(),
                    dtls: tags.dtls(),
                    seat: tags.seat(),
                    ..parse_join(event)?
                })
            }
            SpaceKind::Leave => {
                tags.check_d(space, &[&author])?;
                Message::Leave
            }
            SpaceKind::ReserveConnection | SpaceKind::ConfirmConnection => {
                let other = tags.pubkey("p")?;
                let reserve = kind == SpaceKind::ReserveConnection;
                let (requester, confirmer) = if reserve {
                    (author, other)
                } else {
                    (other, author)
                };
                tags.check_d(space, &[&requester, &confirmer])?;
                // The draft's reference client may send no content at all: a listener.
                let (role, sdp) = if event.content.trim().is_empty() {
                    (Some(LinkRole::Consumer), None)
                } else {
                    match self.open(event, &other)? {
                        Some(plain) => {
                            let (role, sdp) = parse_link_content(&plain)?;
                            (Some(role), sdp)
                        }
                        None => (None, None),
                    }
                };
                let delivering = tags.delivering();
                let reservation = Reservation {
                    requester,
                    confirmer,
                    role,
                    standby: tags
                        .iter("link")
                        .any(|t| t.get(1).is_some_and(|v| v == "standby")),
                    // A re-published CONFIRM only says the link delivers: it answers nothing.
                    sdp: sdp.filter(|_| !delivering),
                    before_read: !delivering && tags.tagged(super::builder::ASK_FIRST_TAG),
                };
                if reserve {
                    Message::Reserve(reservation)
                } else if delivering {
                    Message::Delivering(reservation)
                } else {
                    Message::Confirm(reservation)
                }
            }
            SpaceKind::DropConnection => Message::Drop {
                target: tags.pubkey("p")?,
                price: tags.price(),
                first: tags.tagged(super::builder::ASK_FIRST_TAG),
            },
            SpaceKind::RemovePeer => Message::Remove {
                target: tags.target(space)?,
            },
            SpaceKind::PromoteSpeaker => Message::PromoteSpeaker {
                target: tags.target(space)?,
            },
            SpaceKind::PromoteCohost => Message::PromoteCohost {
                target: tags.target(space)?,
            },
            SpaceKind::DemoteToPeer => Message::Demote {
                target: tags.target(space)?,
            },
            SpaceKind::SdpOffer | SpaceKind::SdpAnswer => {
                let target = tags.pubkey("p")?;
                let plain = self.open(event, &target)?.ok_or(ProtocolError::NotForUs)?;
                let sdp = parse_sdp(&plain)?;
                if kind == SpaceKind::SdpOffer {
                    Message::Offer { target, sdp }
                } else {
                    Message::Answer { target, sdp }
                }
            }
            SpaceKind::IceCandidate => {
                let target = tags.pubkey("p")?;
                let plain = self.open(event, &target)?.ok_or(ProtocolError::NotForUs)?;
                Message::Ice {
                    target,
                    candidate: parse_ice(&plain)?,
                }
            }
            SpaceKind::Speech => {
                let target = tags.target(space)?;
                // An explicit marker wins; a draft-literal event names its author in `p` when
                // it is a request, and someone else when it is a proposal.
                let request = match tags.value("speech") {
                    Some("request") => true,
                    Some("propose") => false,
                    Some(other) => {
                        return Err(ProtocolError::MalformedTag {
                            tag: "speech",
                            reason: format!("{other:?} is neither request nor propose"),
                        });
                    }
                    None => target == author,
                };
                if request {
                    if target != author {
                        return Err(ProtocolError::MalformedTag {
                            tag: "p",
                            reason: "a speech request must name its author".into(),
                        });
                    }
                    Message::RequestSpeech
                } else {
                    Message::ProposeSpeech {
                        target,
                        note: event.content.clone(),
                    }
                }
            }
            SpaceKind::Nip53Room => Message::Room(parse_room(tags)),
            SpaceKind::Nip53Presence => Message::Presence(Presence {
                hand_raised: tags.flag("hand"),
                muted: tags.flag("muted"),
                publishing: tags.flag("publishing"),
                on_stage: tags.flag("onstage"),
                leaving: tags.has("leaving"),
            }),
            SpaceKind::Nip53Chat => Message::Chat {
                text: event.content.clone(),
            },
            SpaceKind::Reaction => Message::Reaction {
                content: event.content.clone(),
                target: tags.optional_pubkey("p")?,
            },
            SpaceKind::Nip53Admin => {
                let action = match tags.value("action") {
                    Some(a) if a.eq_ignore_ascii_case("kick") => AdminAction::Kick,
                    Some(a) if a.eq_ignore_ascii_case("mute") => AdminAction::Mute,
                    Some(a) => {
                        return Err(ProtocolError::MalformedTag {
                            tag: "action",
                            reason: format!("unknown action {a:?}"),
                        });
                    }
                    None => return Err(ProtocolError::MissingTag("action")),
                };
                Message::Admin {
                    action,
                    target: tags.pubkey("p")?,
                }
            }
        })
    }

    /// The plaintext of a private payload: as is from peers following the draft literally
    /// (JSON in clear), decrypted when addressed to our reader, `None` when it is not ours.
    fn open(&self, event: &Event, recipient: &PublicKey) -> Result<Option<String>, ProtocolError> {
        if in_clear(&event.content) {
            return Ok(Some(event.content.clone()));
        }
        let Some(keys) = &self.reader else {
            return Ok(None);
        };
        match other_party(event, recipient, &keys.public_key()) {
            Some(peer) => nip44::decrypt(keys.secret_key(), &peer, &event.content)
                .map(Some)
                .map_err(|e| ProtocolError::Decryption(e.to_string())),
            None => Ok(None),
        }
    }
}

/// A private payload in clear: the draft's JSON, as its literal clients write it.
fn in_clear(content: &str) -> bool {
    content.trim_start().starts_with('{')
}

/// The peer whose key, with `me`'s, opens a payload sealed between `event`'s author and its
/// `recipient`: the author when it is sealed to us, the recipient when we sealed it (the
/// sender can read what it sent); `None` when we are neither.
fn other_party(event: &Event, recipient: &PublicKey, me: &PublicKey) -> Option<PublicKey> {
    if recipient == me {
        Some(event.pubkey)
    } else if event.pubkey == *me {
        Some(*recipient)
    } else {
        None
    }
}

/// The peer a signer holding `me`'s key must open `event`'s payload with, before the parser
/// reads it (a parser without keys reads only payloads in clear): `None` when `event` carries
/// no sealed payload of ours (not a private kind, empty, in clear, between others).
pub fn sealed_peer(event: &Event, me: &PublicKey) -> Option<PublicKey> {
    let private = SpaceKind::from_number(event.kind.as_u16()).is_some_and(SpaceKind::is_private);
    if !private || event.content.trim().is_empty() || in_clear(&event.content) {
        return None;
    }
    other_party(event, &event.tags.public_keys().next()?, me)
}

/// Tag lookups over one event.
struct Tags<'a>(&'a Event);

impl<'a> Tags<'a> {
    fn iter(&self, name: &'a str) -> impl Iterator<Item = &'a [String]> + 'a {
        self.0
            .tags
            .iter()
            .map(|t| t.as_slice())
            .filter(move |t| t.first().is_some_and(|n| n == name))
    }

    fn value(&self, name: &'a str) -> Option<&'a str> {
        self.iter(name)
            .next()
            .and_then(|t| t.get(1))
            .map(String::as_str)
    }

    /// The `pow` price a JOIN or a refusal names; a price beyond what anyone would pay is no
    /// price we follow.
    fn price(&self) -> u8 {
        self.value("pow")
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|bits| *bits <= MAX_PRICE)
            .unwrap_or(0)
    }

    /// The place in the tree a JOIN announces ([`super::builder::SEAT_TAG`]). A malformed or
    /// absurd one (deeper than any tree, more outputs than any uplink) reads as none: the
    /// member is then simply not a seat in a crowd's view.
    fn seat(&self) -> Option<Seat> {
        let tag = self.iter(super::builder::SEAT_TAG).next()?;
        let number = |i: usize| tag.get(i)?.parse::<u32>().ok();
        // A 16-hex-digit value; one not said (an older build) reads as 0.
        let hex = |i: usize| {
            tag.get(i)
                .map_or(Some(0), |v| u64::from_str_radix(v, 16).ok())
        };
        let seat = Seat {
            depth: number(1)?,
            free: number(2)?,
            path_kbps: number(3)?,
            leaf: match tag.get(4).map(String::as_str) {
                None | Some("-") => None,
                Some(_) => Some(number(4)?),
            },
            branch: hex(5)?,
            lineage: hex(6)?,
            head: match tag.get(7) {
                Some(_) => number(7)?,
                None => 0,
            },
        };
        let bounded = |n: u32| n <= MAX_SEAT_FREE;
        (seat.depth <= MAX_SEAT_DEPTH
            && bounded(seat.free)
            && bounded(seat.head)
            && seat.leaf.is_none_or(bounded))
        .then_some(seat)
    }

    /// The DTLS fingerprint a CREATE or JOIN announces ([`super::builder::DTLS_TAG`]). Only
    /// a well-formed SHA-256 one is kept: anything else reads as none (the newcomer then
    /// waits for the answer), never as a reason to refuse the event.
    fn dtls(&self) -> Option<String> {
        let value = self.value(super::builder::DTLS_TAG)?;
        let hex = value.strip_prefix("sha-256 ")?;
        let well_formed = hex.len() == 32 * 3 - 1
            && hex
                .split(':')
                .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        well_formed.then(|| format!("sha-256 {}", hex.to_ascii_uppercase()))
    }

    fn has(&self, name: &'a str) -> bool {
        self.iter(name).next().is_some()
    }

    /// Whether a `[name, value, …]` tag is present.
    fn tagged(&self, [name, value]: [&'a str; 2]) -> bool {
        self.iter(name)
            .any(|t| t.get(1).is_some_and(|v| v == value))
    }

    /// The author announced it reads NIP-44 ([`super::builder::ENCRYPTION_TAG`]).
    fn reads_nip44(&self) -> bool {
        self.tagged(super::builder::ENCRYPTION_TAG)
    }

    /// A CONFIRM that attests its link carries audio ([`super::builder::DELIVERING_TAG`]).
    fn delivering(&self) -> bool {
        self.tagged(super::builder::DELIVERING_TAG)
    }

    fn flag(&self, name: &'a str) -> bool {
        self.value(name) == Some("1")
    }

    fn required(&self, name: &'static str) -> Result<&'a str, ProtocolError> {
        self.value(name).ok_or(ProtocolError::MissingTag(name))
    }

    fn pubkey(&self, name: &'static str) -> Result<PublicKey, ProtocolError> {
        let hex = self.required(name)?;
        PublicKey::from_hex(hex).map_err(|_| ProtocolError::MalformedTag {
            tag: name,
            reason: format!("{hex:?} is not a public key"),
        })
    }

    fn optional_pubkey(&self, name: &'static str) -> Result<Option<PublicKey>, ProtocolError> {
        self.value(name).map(|_| self.pubkey(name)).transpose()
    }

    /// The `p` target of a role or speech event, checked against its `d` tag.
    fn target(&self, space: &SpaceRef) -> Result<PublicKey, ProtocolError> {
        let target = self.pubkey("p")?;
        self.check_d(space, &[&target])?;
        Ok(target)
    }

    /// A `d` tag, when present, must be exactly `id||host||keys…` (the draft's layout).
    fn check_d(&self, space: &SpaceRef, keys: &[&PublicKey]) -> Result<(), ProtocolError> {
        match self.value("d") {
            Some(d) if d != space.d_tag(keys) => Err(ProtocolError::MalformedTag {
                tag: "d",
                reason: format!("{d:?} does not name this space and these peers"),
            }),
            _ => Ok(()),
        }
    }

    fn space(&self, event: &Event, kind: SpaceKind) -> Result<SpaceRef, ProtocolError> {
        match kind {
            SpaceKind::Nip53Room => SpaceRef::new(self.required("d")?, event.pubkey),
            SpaceKind::Nip53Presence
            | SpaceKind::Nip53Chat
            | SpaceKind::Reaction
            | SpaceKind::Nip53Admin => {
                // Other `a` tags may point at non-room events; the first 30312 one is the room.
                let address = self
                    .iter("a")
                    .filter_map(|t| t.get(1))
                    .find(|a| a.starts_with("30312:"))
                    .ok_or(ProtocolError::MissingTag("a"))?;
                SpaceRef::from_room_address(address)
            }
            _ => {
                let host = self.pubkey("h")?;
                let id = match (self.value("s"), kind) {
                    (Some(id), _) => id.to_owned(),
                    // The draft's CREATE_SPACE carries its id only in the content.
                    (None, SpaceKind::CreateSpace) => create_content(event)?.id,
                    (None, _) => return Err(ProtocolError::MissingTag("s")),
                };
                SpaceRef::new(id, host)
            }
        }
    }
}

#[derive(Deserialize)]
struct CreateContent {
    id: String,
    #[serde(default)]
    name: String,
    host: CreateHost,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateHost {
    public_key: String,
    #[serde(default)]
    network_metrics: Option<WireMetrics>,
}

fn bad_json(e: serde_json::Error) -> ProtocolError {
    ProtocolError::BadContent(e.to_string())
}

fn create_content(event: &Event) -> Result<CreateContent, ProtocolError> {
    serde_json::from_str(&event.content).map_err(bad_json)
}

fn parse_create(event: &Event, space: &SpaceRef) -> Result<SpaceInfo, ProtocolError> {
    let content = create_content(event)?;
    if content.id != space.id() {
        return Err(ProtocolError::BadContent(format!(
            "content id {:?} differs from the s tag {:?}",
            content.id,
            space.id()
        )));
    }
    if content.host.public_key != space.host().to_hex() || event.pubkey != *space.host() {
        return Err(ProtocolError::BadContent(
            "the host must sign its own space".into(),
        ));
    }
    let host_metrics = content
        .host
        .network_metrics
        .map(TryInto::try_into)
        .transpose()?;
    let cells = Tags(event)
        .iter("g")
        .filter_map(|t| t.get(1).cloned())
        .collect();
    Ok(SpaceInfo {
        name: content.name,
        host_metrics: host_metrics.unwrap_or_default(),
        cells,
        nip44: false,
        dtls: None,
        crowd: false,
    })
}

fn parse_join(event: &Event) -> Result<MemberInfo, ProtocolError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JoinContent {
        #[serde(default)]
        name: String,
        #[serde(default)]
        public_key: Option<String>,
        #[serde(default)]
        network_metrics: Option<WireMetrics>,
    }
    let content: JoinContent = serde_json::from_str(&event.content).map_err(bad_json)?;
    if content
        .public_key
        .is_some_and(|pk| pk != event.pubkey.to_hex())
    {
        return Err(ProtocolError::BadContent(
            "publicKey differs from the signer".into(),
        ));
    }
    Ok(MemberInfo {
        name: content.name,
        metrics: content
            .network_metrics
            .map(TryInto::try_into)
            .transpose()?
            .unwrap_or_default(),
        price: 0,
        nip44: false,
        dtls: None,
        seat: None,
    })
}

/// A session description as clients write it: the SDP text, or a browser's
/// `RTCSessionDescription` (`{type, sdp}`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Sdp {
    Text(String),
    Description { sdp: String },
}

impl From<Sdp> for String {
    fn from(sdp: Sdp) -> Self {
        match sdp {
            Sdp::Text(sdp) | Sdp::Description { sdp } => sdp,
        }
    }
}

/// A RESERVE's or CONFIRM's payload, `{"type": "provider" | "consumer"}` (without `type`, as
/// draft-literal peers write it, a consumer: a listener asking for audio) and, in our dialect,
/// `"sdp"`: the offer or answer riding with it.
fn parse_link_content(plain: &str) -> Result<(LinkRole, Option<String>), ProtocolError> {
    #[derive(Deserialize)]
    struct LinkContent {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        sdp: Option<Sdp>,
    }
    let content: LinkContent = serde_json::from_str(plain).map_err(bad_json)?;
    let role = match content.kind.map(|k| k.to_ascii_lowercase()).as_deref() {
        None | Some("consumer") => LinkRole::Consumer,
        Some("provider") => LinkRole::Provider,
        Some(other) => {
            return Err(ProtocolError::BadContent(format!(
                "connection type {other:?}"
            )));
        }
    };
    Ok((role, content.sdp.map(String::from)))
}

fn parse_sdp(plain: &str) -> Result<String, ProtocolError> {
    #[derive(Deserialize)]
    struct SdpContent {
        sdp: Sdp,
    }
    let content: SdpContent = serde_json::from_str(plain).map_err(bad_json)?;
    Ok(content.sdp.into())
}

fn parse_ice(plain: &str) -> Result<IceCandidate, ProtocolError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IceContent {
        Wrapped { ice: IceCandidate },
        Bare(IceCandidate),
    }
    match serde_json::from_str(plain).map_err(bad_json)? {
        IceContent::Wrapped { ice } | IceContent::Bare(ice) => Ok(ice),
    }
}

fn parse_room(tags: &Tags<'_>) -> Room {
    let title = tags
        .value("title")
        .or_else(|| tags.value("room"))
        .unwrap_or_default();
    let status = match tags.value("status").map(str::to_ascii_lowercase).as_deref() {
        Some("ended" | "closed") => RoomStatus::Ended,
        Some("planned") => RoomStatus::Planned,
        Some("private") => RoomStatus::Private,
        _ => RoomStatus::Live,
    };
    let transport = if tags.value("transport") == Some(TRANSPORT_TAG_VALUE) {
        Transport::NostrSpaces
    } else if let Some(streaming) = tags.value("streaming") {
        Transport::Moq {
            streaming: streaming.to_owned(),
            auth: tags.value("auth").map(str::to_owned),
        }
    } else if let Some(service) = tags.value("service").or_else(|| tags.value("endpoint")) {
        Transport::Service(service.to_owned())
    } else {
        Transport::Unknown
    };
    let participants = tags
        .iter("p")
        .filter_map(|t| {
            let key = PublicKey::from_hex(t.get(1)?).ok()?;
            let role = t
                .get(3)
                .and_then(|r| Role::from_nip53(r))
                .unwrap_or(Role::Listener);
            Some((key, role))
        })
        .collect();
    Room {
        title: title.to_owned(),
        summary: tags.value("summary").map(str::to_owned),
        status,
        transport,
        participants,
        cells: tags.iter("g").filter_map(|t| t.get(1).cloned()).collect(),
    }
}

/// The highest proof of work (bits) a DROP may ask for: 24 bits take seconds on a phone.
pub const MAX_PRICE: u8 = 24;

/// The deepest seat a JOIN may announce: deeper than any tree the rules build.
const MAX_SEAT_DEPTH: u32 = 64;

/// The most free outputs a JOIN may announce: more than any uplink carries.
const MAX_SEAT_FREE: u32 = 1_000;

/// NIP-13 work of an event: leading zero bits of its id, capped by the committed target.
fn work(event: &Event) -> u8 {
    let committed = event
        .tags
        .iter()
        .map(|t| t.as_slice())
        .filter(|t| t.first().is_some_and(|k| k == "nonce"))
        .filter_map(|t| t.get(2)?.parse::<u8>().ok())
        .max()
        .unwrap_or(0);
    nostr::nips::nip13::get_leading_zero_bits(event.id.as_bytes()).min(committed)
}
