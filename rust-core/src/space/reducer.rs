//! The reducer: `(state, verified event, now) -> (state, commands)`.
//!
//! Authority: only the host closes the space and names co-hosts; host and co-hosts promote,
//! demote and remove, but only the host acts on a co-host; nobody acts on the host. Conflicts
//! resolve by `created_at`, then event id. Duplicates are recognised by id.

use nostr::prelude::{PublicKey, Timestamp};

use super::state::{Clock, LinkState, Space};
use super::{Command, Rejection};
use crate::protocol::{
    AdminAction, MemberInfo, Message, Presence, Reservation, Role, RoomStatus, SpaceEvent,
};

/// How long a kind 4312 admin command stays valid (as Nests enforces).
pub const ADMIN_COMMAND_TTL_SECS: u64 = 60;

type Outcome = Result<Vec<Command>, Rejection>;

impl Space {
    /// Applies one verified event at time `now`. On rejection the state is unchanged.
    pub fn apply(&mut self, event: &SpaceEvent, now: Timestamp) -> Outcome {
        if event.space != self.space {
            return Err(Rejection::ForeignSpace);
        }
        if self.seen.contains(&event.id) {
            return Err(Rejection::Duplicate);
        }
        if self.closed {
            return Err(Rejection::SpaceClosed);
        }
        if self.is_removed(&event.author) {
            return Err(Rejection::RemovedPeer(event.author));
        }
        let clock = Clock {
            created_at: event.created_at,
            id: event.id,
        };
        let outcome = self.dispatch(event, clock, now);
        match &outcome {
            Ok(_) => self.seen.insert(event.id),
            Err(rejection) => {
                tracing::debug!(space = %self.space, event = %event.id, kind = event.message.name(), %rejection, "event rejected");
            }
        }
        outcome
    }

    /// Applies a backlog (e.g. a relay's stored events, which arrive newest first) in
    /// causal order: by `created_at`, then id.
    pub fn apply_all<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a SpaceEvent>,
        now: Timestamp,
    ) -> Vec<(&'a SpaceEvent, Outcome)> {
        let mut events: Vec<&SpaceEvent> = events.into_iter().collect();
        events.sort_by_key(|e| (e.created_at, e.id));
        events
            .into_iter()
            .map(|e| (e, self.apply(e, now)))
            .collect()
    }

    fn dispatch(&mut self, event: &SpaceEvent, clock: Clock, now: Timestamp) -> Outcome {
        let author = event.author;
        match &event.message {
            Message::Create(info) => {
                self.require_host(author, "create the space")?;
                self.info = Some(info.clone());
                let host = MemberInfo {
                    name: String::new(),
                    metrics: info.host_metrics,
                    // The price lives in the host's JOINs; a CREATE says nothing of it.
                    price: self.members.get(&author).map_or(0, |m| m.price),
                    nip44: info.nip44,
                    dtls: info.dtls.clone(),
                    // The host's seat lives in its JOINs, as its price does.
                    seat: self.members.get(&author).and_then(|m| m.seat),
                };
                self.membership.entry(author).or_insert(clock);
                self.admit(author, host, event.created_at);
                Ok(vec![Command::SpaceOpened])
            }
            Message::Close => {
                self.require_host(author, "close the space")?;
                Ok(self.close())
            }
            Message::Room(room) => {
                // A 30312 address embeds its author: this is the host's own record.
                if room.status == RoomStatus::Ended {
                    return Ok(self.close());
                }
                if let Some(info) = self.info.as_mut() {
                    info.name.clone_from(&room.title);
                }
                Ok(vec![])
            }
            Message::Join(info) => self.join(author, info.clone(), clock),
            Message::Leave => self.leave(author, clock, "leave"),
            Message::Presence(presence) => self.presence(author, *presence, clock),
            Message::Reserve(r) => self.reserve(author, r, clock, event.work),
            Message::Confirm(r) => self.confirm(author, r, event.created_at),
            Message::Delivering(r) => self.delivering(author, r, event.created_at),
            Message::Drop { target, first, .. } => {
                self.require_member(author, "drop a connection")?;
                // A refusal of an ask made before the read ends that ask alone: the
                // requester may have asked again since, and that reservation stands.
                if *first
                    && !matches!(
                        self.links.get(&(*target, author)),
                        Some(LinkState::Reserved { first: true, .. })
                    )
                {
                    return Err(Rejection::UnknownReservation);
                }
                self.links.remove(&(author, *target));
                self.links.remove(&(*target, author));
                Ok(self.for_me(*target, Command::ConnectionDropped(author)))
            }
            Message::Remove { target } => self.remove(author, *target, "remove"),
            Message::PromoteSpeaker { target } => {
                self.set_role(author, *target, Role::Speaker, clock)
            }
            Message::PromoteCohost { target } => {
                self.set_role(author, *target, Role::Cohost, clock)
            }
            Message::Demote { target } => self.set_role(author, *target, Role::Listener, clock),
            Message::Offer { target, sdp } => {
                self.private(author, *target, "send an offer")?;
                Ok(vec![Command::RemoteOffer {
                    from: author,
                    sdp: sdp.clone(),
                }])
            }
            Message::Answer { target, sdp } => {
                self.private(author, *target, "send an answer")?;
                Ok(vec![Command::RemoteAnswer {
                    from: author,
                    sdp: sdp.clone(),
                }])
            }
            Message::Ice { target, candidate } => {
                self.private(author, *target, "send ICE")?;
                Ok(vec![Command::RemoteCandidate {
                    from: author,
                    candidate: candidate.clone(),
                }])
            }
            Message::RequestSpeech => {
                self.require_member(author, "request speech")?;
                Ok(self.raise_hand(author, true))
            }
            Message::ProposeSpeech { target, .. } => {
                self.require_moderator(author, "propose speech")?;
                Ok(self.for_me(*target, Command::SpeechProposed { by: author }))
            }
            Message::Chat { text } => {
                self.require_member(author, "chat")?;
                Ok(vec![Command::Chat {
                    from: author,
                    text: text.clone(),
                }])
            }
            Message::Reaction { content, .. } => {
                self.require_member(author, "react")?;
                Ok(vec![Command::Reaction {
                    from: author,
                    content: content.clone(),
                }])
            }
            Message::Admin { action, target } => {
                let age_secs = now.as_secs().saturating_sub(event.created_at.as_secs());
                if age_secs > ADMIN_COMMAND_TTL_SECS {
                    return Err(Rejection::AdminCommandExpired { age_secs });
                }
                match action {
                    AdminAction::Kick => self.remove(author, *target, "kick"),
                    AdminAction::Mute => {
                        self.check_moderation(author, *target, "mute")?;
                        Ok(self.for_me(*target, Command::MuteRequested { by: author }))
                    }
                }
            }
        }
    }

    fn close(&mut self) -> Vec<Command> {
        self.closed = true;
        self.links.clear();
        vec![Command::SpaceClosed]
    }

    fn join(&mut self, author: PublicKey, info: MemberInfo, clock: Clock) -> Outcome {
        self.advance_membership(author, clock, "join")?;
        let at = clock.created_at;
        Ok(vec![if self.admit(author, info, at) {
            Command::MemberJoined(author)
        } else {
            Command::MemberUpdated(author)
        }])
    }

    /// A leave always advances the peer's membership clock, so a JOIN that was sent earlier
    /// but arrives later stays stale; only a member's leave has effects.
    fn leave(&mut self, author: PublicKey, clock: Clock, action: &'static str) -> Outcome {
        self.advance_membership(author, clock, action)?;
        Ok(if self.evict(&author) {
            vec![Command::MemberLeft(author)]
        } else {
            vec![]
        })
    }

    /// NIP-53 presence: joins a NIP-53 client on its first heartbeat, tracks hand and mute,
    /// and a `leaving` presence is a leave.
    fn presence(&mut self, author: PublicKey, presence: Presence, clock: Clock) -> Outcome {
        if presence.leaving {
            return self.leave(author, clock, "leave");
        }
        let mut commands = Vec::new();
        if !self.members.contains_key(&author) {
            // A leave after this heartbeat keeps it out; a JOIN of any time still brings its
            // metrics (a heartbeat has none).
            if self.stale_membership(&author, clock) {
                return Err(Rejection::Stale("join"));
            }
            self.admit(author, MemberInfo::default(), clock.created_at);
            commands.push(Command::MemberJoined(author));
        }
        let heard = self.heard.entry(author).or_insert(clock.created_at);
        *heard = (*heard).max(clock.created_at);
        if let Some(member) = self.members.get_mut(&author) {
            member.muted = presence.muted;
        }
        commands.extend(self.raise_hand(author, presence.hand_raised));
        Ok(commands)
    }

    fn reserve(&mut self, author: PublicKey, r: &Reservation, clock: Clock, work: u8) -> Outcome {
        let mut commands = Vec::new();
        let to_host = r.confirmer == *self.space.host();
        let to_us_in_a_crowd = r.confirmer == self.me && self.is_crowd();
        if !self.members.contains_key(&author) && (to_host || to_us_in_a_crowd) {
            // A draft-literal client asks the host for audio without a JOIN first: that is
            // its join, as a NIP-53 presence is (a removed key stays out). In a crowd nobody
            // follows every JOIN: a RESERVE to us is how we meet the requester, and its JOIN
            // (fetched once we follow it) brings its metrics.
            if self.removed.contains(&author) {
                return Err(Rejection::NotAMember {
                    action: "reserve a connection",
                    author,
                });
            }
            // Its membership clock stays unset: a JOIN of ours that a relay delivers after the
            // RESERVE (relays reorder authors) still brings the member's metrics.
            self.admit(author, MemberInfo::default(), clock.created_at);
            commands.push(Command::MemberJoined(author));
        }
        self.require_member(author, "reserve a connection")?;
        if !self.members.contains_key(&r.confirmer) {
            return Err(Rejection::TargetNotMember("reserve a connection with"));
        }
        self.links.insert(
            r.pair(),
            LinkState::Reserved {
                at: clock.created_at,
                standby: r.standby,
                first: r.before_read,
            },
        );
        commands.extend(self.for_me(
            r.confirmer,
            Command::ConnectionRequested {
                from: author,
                role: r.role,
                standby: r.standby,
                work,
                offer: r.sdp.clone(),
                first: r.before_read,
            },
        ));
        Ok(commands)
    }

    fn confirm(&mut self, author: PublicKey, r: &Reservation, at: Timestamp) -> Outcome {
        self.require_member(author, "confirm a connection")?;
        let key = r.pair();
        // Ours only if it confirms the reservation we hold: not one we hold no more, nor the
        // ask we sent before reading the space and replaced by another since (its CONFIRM
        // says `first`; a draft client's never does, and confirms whatever we asked last).
        let reserved = matches!(
            self.links.get(&key),
            Some(LinkState::Reserved { first, .. }) if *first || !r.before_read
        );
        if r.requester == self.me && !reserved {
            return Err(Rejection::UnknownReservation);
        }
        self.links.insert(
            key,
            LinkState::Confirmed {
                at,
                standby: r.standby,
                delivering: false,
            },
        );
        Ok(self.for_me(
            r.requester,
            Command::ConnectionConfirmed {
                by: author,
                answer: r.sdp.clone(),
            },
        ))
    }

    /// The confirmer attests its link to `r.requester` carries audio. Seen before the CONFIRM
    /// (relays may deliver them in either order), it stands for both; to the requester it is
    /// never a new confirmation.
    fn delivering(&mut self, author: PublicKey, r: &Reservation, at: Timestamp) -> Outcome {
        self.require_member(author, "confirm a connection")?;
        let key = r.pair();
        let confirmed_at = match self.links.get(&key) {
            Some(LinkState::Confirmed { at, .. }) => *at,
            _ if r.requester == self.me => return Err(Rejection::UnknownReservation),
            _ => at,
        };
        self.links.insert(
            key,
            LinkState::Confirmed {
                at: confirmed_at,
                standby: r.standby,
                delivering: true,
            },
        );
        Ok(vec![])
    }

    fn remove(&mut self, author: PublicKey, target: PublicKey, action: &'static str) -> Outcome {
        self.check_moderation(author, target, action)?;
        self.removed.insert(target);
        self.evict(&target);
        Ok(vec![Command::PeerRemoved(target)])
    }

    fn set_role(
        &mut self,
        author: PublicKey,
        target: PublicKey,
        role: Role,
        clock: Clock,
    ) -> Outcome {
        let action = match role {
            Role::Cohost => "promote to co-host",
            Role::Speaker => "promote to speaker",
            _ => "demote",
        };
        if role == Role::Cohost {
            self.require_host(author, action)?;
        }
        self.check_moderation(author, target, action)?;
        if self
            .roles
            .get(&target)
            .is_some_and(|(_, last)| clock <= *last)
        {
            return Err(Rejection::Stale(action));
        }
        self.roles.insert(target, (role, clock));
        let mut commands = vec![Command::RoleChanged { peer: target, role }];
        if role.speaks() {
            commands.extend(self.raise_hand(target, false));
        }
        Ok(commands)
    }

    /// Who may act on `target`: host and co-hosts; only the host on a co-host; nobody on
    /// the host or a removed peer.
    fn check_moderation(
        &self,
        author: PublicKey,
        target: PublicKey,
        action: &'static str,
    ) -> Result<(), Rejection> {
        self.require_moderator(author, action)?;
        if target == *self.space.host() {
            return Err(Rejection::TargetIsHost(action));
        }
        if self.is_removed(&target) {
            return Err(Rejection::TargetRemoved(action));
        }
        if self.role_of(&target) == Role::Cohost && author != *self.space.host() {
            return Err(Rejection::Unauthorized { action, author });
        }
        Ok(())
    }

    fn require_host(&self, author: PublicKey, action: &'static str) -> Result<(), Rejection> {
        if author == *self.space.host() {
            Ok(())
        } else {
            Err(Rejection::Unauthorized { action, author })
        }
    }

    fn require_moderator(&self, author: PublicKey, action: &'static str) -> Result<(), Rejection> {
        if self.role_of(&author) >= Role::Cohost {
            Ok(())
        } else {
            Err(Rejection::Unauthorized { action, author })
        }
    }

    fn require_member(&self, author: PublicKey, action: &'static str) -> Result<(), Rejection> {
        if self.members.contains_key(&author) {
            Ok(())
        } else {
            Err(Rejection::NotAMember { action, author })
        }
    }

    fn private(
        &self,
        author: PublicKey,
        target: PublicKey,
        action: &'static str,
    ) -> Result<(), Rejection> {
        self.require_member(author, action)?;
        if target == self.me {
            Ok(())
        } else {
            Err(Rejection::NotForUs)
        }
    }

    /// JOIN, LEAVE and presence of one peer replace each other by clock.
    fn advance_membership(
        &mut self,
        peer: PublicKey,
        clock: Clock,
        action: &'static str,
    ) -> Result<(), Rejection> {
        if self.stale_membership(&peer, clock) {
            return Err(Rejection::Stale(action));
        }
        self.membership.insert(peer, clock);
        Ok(())
    }

    /// Whether a membership event at `clock` is older than `peer`'s last JOIN or LEAVE.
    fn stale_membership(&self, peer: &PublicKey, clock: Clock) -> bool {
        self.membership.get(peer).is_some_and(|last| clock <= *last)
    }

    fn raise_hand(&mut self, peer: PublicKey, raised: bool) -> Vec<Command> {
        match self.members.get_mut(&peer) {
            Some(member) if member.hand_raised != raised => {
                member.hand_raised = raised;
                vec![Command::HandRaised { peer, raised }]
            }
            _ => vec![],
        }
    }

    fn for_me(&self, target: PublicKey, command: Command) -> Vec<Command> {
        if target == self.me {
            vec![command]
        } else {
            vec![]
        }
    }
}
