//! The driver's subscriptions: what the participant asks to follow ([`Follow`]) turned into
//! relay filters, and the ends of stored events turned back into its inputs.

use std::sync::Arc;

use nostr::prelude::{PublicKey, SubscriptionId, Timestamp};

use crate::participant::{Follow, Input, SEAT_SAMPLE};
use crate::protocol::SpaceRef;
use crate::protocol::filter::{
    crowd_filters, host_ahead_filter, members_filter, seats_filter, session_filters,
};
use crate::signaling::{RelayPool, SignalingError};

/// Every subscription of one session.
pub(super) struct Subscriptions {
    pool: Arc<RelayPool>,
    space: SpaceRef,
    me: PublicKey,
    /// The NIP-53 side and the inbox are asked for from this time on.
    since: Timestamp,
    /// The host's CREATE and CLOSE, asked for first: its end is [`Input::HostRead`].
    host_ahead: SubscriptionId,
    /// The whole space or a crowd's view: its end is [`Input::StoredEnd`].
    view: Option<SubscriptionId>,
    /// In a crowd: the members we follow.
    members: Option<SubscriptionId>,
    /// In a crowd: the fetch of open seats out now; its end is [`Input::SeatsRead`].
    seats: Option<SubscriptionId>,
}

impl Subscriptions {
    /// Asks for the host's CREATE and CLOSE; the rest waits for the participant's word.
    pub(super) async fn start(
        pool: Arc<RelayPool>,
        space: SpaceRef,
        me: PublicKey,
        since: Timestamp,
    ) -> Result<Self, SignalingError> {
        let host_ahead = pool.subscribe(vec![host_ahead_filter(&space)]).await?;
        Ok(Self {
            pool,
            space,
            me,
            since,
            host_ahead,
            view: None,
            members: None,
            seats: None,
        })
    }

    /// Follows what the participant asked for. A subscription that cannot be placed is
    /// logged: the pool places it again when a relay comes back.
    pub(super) async fn follow(&mut self, follow: Follow) {
        let since = Some(self.since);
        let placed = match follow {
            Follow::Space => {
                let filters = session_filters(&self.space, &self.me, since);
                self.replace_view(filters).await
            }
            Follow::Crowd => {
                let filters = crowd_filters(&self.space, &self.me, since);
                self.replace_view(filters).await
            }
            Follow::Members(keys) => {
                if let Some(old) = self.members.take() {
                    self.pool.unsubscribe(&old).await;
                }
                if keys.is_empty() {
                    Ok(())
                } else {
                    let filter = members_filter(&self.space, &keys);
                    self.pool
                        .subscribe(vec![filter])
                        .await
                        .map(|id| self.members = Some(id))
                }
            }
            Follow::Seats {
                since,
                until,
                which,
            } => {
                if let Some(old) = self.seats.take() {
                    self.pool.unsubscribe(&old).await;
                }
                let filter = seats_filter(&self.space, since, until, which, SEAT_SAMPLE);
                // Every match the relays send reaches the participant, also events an earlier
                // sample brought (the client alone would hand each over once per pool).
                self.pool
                    .sample(vec![filter])
                    .await
                    .map(|id| self.seats = Some(id))
            }
        };
        if let Err(e) = placed {
            tracing::warn!(error = %e, "subscription not placed");
        }
    }

    async fn replace_view(
        &mut self,
        filters: Vec<nostr::prelude::Filter>,
    ) -> Result<(), SignalingError> {
        if let Some(old) = self.view.take() {
            self.pool.unsubscribe(&old).await;
        }
        self.view = Some(self.pool.subscribe(filters).await?);
        Ok(())
    }

    /// What a relay's end of stored events on `subscription` means to the participant, if
    /// anything. A fetch of seats is over with it.
    pub(super) async fn ended(&mut self, subscription: &SubscriptionId) -> Option<Input> {
        if *subscription == self.host_ahead {
            Some(Input::HostRead)
        } else if self.view.as_ref() == Some(subscription) {
            Some(Input::StoredEnd)
        } else if self.seats.as_ref() == Some(subscription) {
            self.seats = None;
            self.pool.unsubscribe(subscription).await;
            Some(Input::SeatsRead)
        } else {
            None
        }
    }
}
