//! Relay subscriptions. Relays index single-letter tags only (NIP-01), so every filter here
//! uses `#s`, `#p`, `#a`, `#t`, `#g` or `#o`; never the draft's `webrtc` or `h` tags.

use nostr::prelude::{Alphabet, Filter, PublicKey, SingleLetterTag, Timestamp};

use super::builder::{DISCOVERY_TAG, open_seat_at, open_seat_in};
use super::{SpaceKind, SpaceRef};

fn kinds(pred: impl Fn(SpaceKind) -> bool) -> Vec<nostr::prelude::Kind> {
    SpaceKind::ALL
        .into_iter()
        .filter(|k| pred(*k))
        .map(SpaceKind::kind)
        .collect()
}

/// The public events of a space (draft kinds other than private payloads), `#s`-filtered.
/// No `since`: membership, roles and links are state (relays keep the latest per member or
/// pair), and a late joiner who missed an old JOIN or CONFIRM would see a member without
/// metrics or a tree with holes.
pub fn space_filter(space: &SpaceRef) -> Filter {
    Filter::new()
        .kinds(kinds(|k| k.is_draft() && !k.is_private()))
        .custom_tag(SingleLetterTag::lowercase(Alphabet::S), space.id())
}

/// Private payloads addressed to `me` in a space (`#p` and `#s`).
pub fn inbox_filter(space: &SpaceRef, me: &PublicKey, since: Option<Timestamp>) -> Filter {
    let filter = Filter::new()
        .kinds(kinds(SpaceKind::is_private))
        .custom_tag(SingleLetterTag::lowercase(Alphabet::S), space.id())
        .pubkey(*me);
    with_since(filter, since)
}

/// The space's NIP-53 side: its room mirror and the presence, chat, reactions and admin
/// commands that point at it (`#a`).
pub fn room_filter(space: &SpaceRef, since: Option<Timestamp>) -> Filter {
    let filter = Filter::new()
        .kinds(kinds(|k| !k.is_draft() && k != SpaceKind::Nip53Room))
        .custom_tag(
            SingleLetterTag::lowercase(Alphabet::A),
            space.room_address(),
        );
    with_since(filter, since)
}

/// The host's kind 30312 record of the space.
pub fn room_record_filter(space: &SpaceRef) -> Filter {
    Filter::new()
        .kind(SpaceKind::Nip53Room.kind())
        .author(*space.host())
        .identifier(space.id())
}

/// Everyone's CONFIRMs in a space: their `d` tag names the pair in clear (the payload stays
/// encrypted), so every member knows the tree and can pick a parent with room. State, like
/// [`space_filter`]: no `since`.
pub fn links_filter(space: &SpaceRef) -> Filter {
    Filter::new()
        .kind(SpaceKind::ConfirmConnection.kind())
        .custom_tag(SingleLetterTag::lowercase(Alphabet::S), space.id())
}

/// The host's CREATE_SPACE and CLOSE_SPACE by author: the draft's CREATE carries the id only
/// in its content, with no `s` for [`space_filter`] to match (the parser drops the host's other
/// spaces).
pub fn host_filter(space: &SpaceRef) -> Filter {
    Filter::new()
        .kinds([SpaceKind::CreateSpace.kind(), SpaceKind::CloseSpace.kind()])
        .author(*space.host())
}

/// Everything a participant of `space` follows: public events (all of the space's state), its
/// inbox and the NIP-53 side since `since`, the links of the tree, the host's room record and
/// its CREATE even without `s`.
pub fn session_filters(space: &SpaceRef, me: &PublicKey, since: Option<Timestamp>) -> Vec<Filter> {
    vec![
        space_filter(space),
        inbox_filter(space, me, since),
        links_filter(space),
        room_filter(space, since),
        room_record_filter(space),
        host_filter(space),
    ]
}

/// A crowd's view of a space (`docs/TOPOLOGY.md`, *Crowd views*), in place of
/// [`session_filters`]: every draft event addressed to `me` (`#p`: reservations, refusals,
/// SDP, role changes) since `since`, the role changes of the space (few, and everyone's
/// voices follow them), the host's room record and its CREATE and CLOSE. The host also
/// follows the hands raised and speech requests.
pub fn crowd_filters(space: &SpaceRef, me: &PublicKey, since: Option<Timestamp>) -> Vec<Filter> {
    let s_tag = SingleLetterTag::lowercase(Alphabet::S);
    let roles = Filter::new()
        .kinds(kinds(|k| {
            matches!(
                k,
                SpaceKind::RemovePeer
                    | SpaceKind::PromoteSpeaker
                    | SpaceKind::PromoteCohost
                    | SpaceKind::DemoteToPeer
            ) || (k == SpaceKind::Speech && me == space.host())
        }))
        .custom_tag(s_tag, space.id());
    let inbox = Filter::new()
        .kinds(kinds(SpaceKind::is_draft))
        .custom_tag(s_tag, space.id())
        .pubkey(*me);
    vec![
        roles,
        with_since(inbox, since),
        room_record_filter(space),
        host_filter(space),
    ]
}

/// In a crowd: the JOINs and LEAVEs of the members we follow (host, links, staff).
pub fn members_filter(space: &SpaceRef, members: &[PublicKey]) -> Filter {
    Filter::new()
        .kinds([SpaceKind::Join.kind(), SpaceKind::Leave.kind()])
        .authors(members.iter().copied())
        .custom_tag(SingleLetterTag::lowercase(Alphabet::S), space.id())
}

/// Which of a crowd's open seats a fetch asks for, by the `#o` tags of their JOINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenSeats {
    /// Any.
    All,
    /// Those of one shard ([`super::builder::seat_shard`]).
    Shard(u8),
    /// Those at most this many hops deep: a relay looking for a place nearer the host.
    AtMost(u32),
}

/// In a crowd: the newest `limit` JOINs announcing a free output (`#o`) made between
/// `since` and `until` (a crashed member's seat stays stored; its renewals stop), of the
/// `seats` asked for.
pub fn seats_filter(
    space: &SpaceRef,
    since: Timestamp,
    until: Timestamp,
    seats: OpenSeats,
    limit: usize,
) -> Filter {
    let o_tag = SingleLetterTag::lowercase(Alphabet::O);
    let filter = match seats {
        OpenSeats::All => Filter::new().custom_tag(o_tag, space.id()),
        OpenSeats::Shard(shard) => Filter::new().custom_tag(o_tag, open_seat_in(space, shard)),
        OpenSeats::AtMost(deepest) => {
            Filter::new().custom_tags(o_tag, (0..=deepest).map(|d| open_seat_at(space, d)))
        }
    };
    filter
        .kind(SpaceKind::Join.kind())
        .since(since)
        .until(until)
        .limit(limit)
}

/// Spaces to list: our CREATE_SPACE events and every NIP-53 room.
pub fn discovery_filter(since: Option<Timestamp>) -> [Filter; 2] {
    let ours = Filter::new()
        .kinds([SpaceKind::CreateSpace.kind(), SpaceKind::CloseSpace.kind()])
        .hashtag(DISCOVERY_TAG);
    let rooms = Filter::new().kind(SpaceKind::Nip53Room.kind());
    [with_since(ours, since), with_since(rooms, since)]
}

/// Spaces tagged with a cell: its `"LAT,LON"` label (`#g`) or its GeoKey (`#p`).
pub fn cell_filters(cell_label: &str, geokey: &PublicKey, since: Option<Timestamp>) -> [Filter; 2] {
    let kinds = [SpaceKind::CreateSpace.kind(), SpaceKind::Nip53Room.kind()];
    let by_label = Filter::new()
        .kinds(kinds)
        .custom_tag(SingleLetterTag::lowercase(Alphabet::G), cell_label);
    let by_key = Filter::new().kinds(kinds).pubkey(*geokey);
    [with_since(by_label, since), with_since(by_key, since)]
}

fn with_since(filter: Filter, since: Option<Timestamp>) -> Filter {
    match since {
        Some(since) => filter.since(since),
        None => filter,
    }
}

/// The host's CREATE_SPACE and CLOSE_SPACE of this space (by author and `#s`, as ours are
/// tagged), asked for in a subscription of its own ahead of [`session_filters`]: relays send
/// a subscription's stored events newest first, so in one subscription the CREATE comes
/// last, behind tens of kilobytes of a busy space's events and several round trips of TCP
/// slow start. Alone and first, it comes in the relay's first flight, and with it the host's
/// DTLS fingerprint that lets a newcomer write the host's answer in advance.
pub fn host_ahead_filter(space: &SpaceRef) -> Filter {
    Filter::new()
        .kinds([SpaceKind::CreateSpace.kind(), SpaceKind::CloseSpace.kind()])
        .author(*space.host())
        .custom_tag(SingleLetterTag::lowercase(Alphabet::S), space.id())
}
