//! The relay pool: publishes to every relay, delivers each event once, survives relays that
//! come and go.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nostr_sdk::prelude::{
    Client, ClientNotification, Event, Filter, Monitor, MonitorNotification, RelayMessage,
    RelayStatus, RelayUrl, StreamExt, SubscriptionId, Timestamp,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::{Backoff, SignalingError};
use crate::protocol::VerifiedEvent;

/// Tuning of a [`RelayPool`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolOptions {
    /// When to try a lost relay again. The pool runs this schedule itself (the client's own
    /// grows with every failure it ever saw and never resets): short outages cost about a
    /// second, long ones never more than `reconnect.max` between attempts.
    pub reconnect: Backoff,
    /// How long `connect` waits for a first relay.
    pub connect_timeout: Duration,
    /// How long a publish waits for relays' `OK`.
    pub publish_timeout: Duration,
    /// Overlap when resubscribing with `since` after a reconnection (clock skew, in-flight).
    pub resubscribe_overlap: Duration,
    /// Most undelivered events kept for later.
    pub outbox_capacity: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            reconnect: Backoff::default(),
            connect_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(5),
            resubscribe_overlap: Duration::from_secs(30),
            outbox_capacity: 4_096,
        }
    }
}

/// Something a relay told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An event, delivered once whichever relays carry it. Its signature was verified by the
    /// client (nostr-sdk verifies every event before it stores or hands it on), once.
    Event {
        /// The first relay that delivered it.
        relay: RelayUrl,
        /// The event.
        event: VerifiedEvent,
    },
    /// A NOTICE.
    Notice {
        /// From.
        relay: RelayUrl,
        /// Text.
        message: String,
    },
    /// A relay closed one of our subscriptions (`auth-required:`, `restricted:`, …).
    Closed {
        /// From.
        relay: RelayUrl,
        /// Which.
        subscription: SubscriptionId,
        /// Its reason.
        message: String,
    },
    /// A relay sent all its stored events for a subscription; what follows is live.
    EndOfStored {
        /// From.
        relay: RelayUrl,
        /// Which.
        subscription: SubscriptionId,
    },
    /// A relay (re)connected; subscriptions were renewed and the outbox flushed.
    RelayUp(RelayUrl),
    /// A relay dropped; the pool tries it again on [`PoolOptions::reconnect`]'s schedule.
    RelayDown(RelayUrl),
}

/// Where a published event went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// Relays that stored or relayed it.
    pub accepted: Vec<RelayUrl>,
    /// Relays that refused or failed, with the reason.
    pub failed: Vec<(RelayUrl, String)>,
}

#[derive(Default)]
struct Shared {
    subscriptions: HashMap<SubscriptionId, Vec<Filter>>,
    /// Subscriptions placed by [`RelayPool::sample`]: their events are delivered even when
    /// the pool delivered them before.
    samples: HashSet<SubscriptionId>,
    /// Newest `created_at` received: the `since` of a resubscription.
    newest: Option<Timestamp>,
    outbox: VecDeque<Event>,
    ever_connected: HashSet<RelayUrl>,
    /// Relays a reconnection task is working on (one task per relay).
    reconnecting: HashSet<RelayUrl>,
    /// The pool is shutting down: no more reconnections.
    closing: bool,
}

/// A pool of relays for one identity.
pub struct RelayPool {
    client: Client,
    options: PoolOptions,
    shared: Arc<Mutex<Shared>>,
    pump: JoinHandle<()>,
}

impl RelayPool {
    /// Connects to `urls` and returns the pool with the stream of what relays say. Waits
    /// until one relay is connected, up to `options.connect_timeout`. Events arrive signed:
    /// the pool holds no key.
    pub async fn connect(
        urls: &[String],
        options: PoolOptions,
    ) -> Result<(Self, mpsc::Receiver<Incoming>), SignalingError> {
        if urls.is_empty() {
            return Err(SignalingError::NoRelays);
        }
        let monitor = Monitor::new(1_024);
        let mut status = monitor.subscribe();
        let client = Client::builder()
            .monitor(monitor)
            .websocket_transport(super::LowLatencyTransport)
            .build();
        for url in urls {
            let parsed = RelayUrl::parse(url).map_err(|e| SignalingError::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            client
                .add_relay(parsed)
                // Reconnections follow our schedule (see `reconnect`), not the client's.
                .reconnect(false)
                .await
                .map_err(|e| SignalingError::Client(e.to_string()))?;
        }
        let notifications = client.notifications();
        client.connect().await;
        wait_for_first(&mut status, options.connect_timeout, urls).await?;

        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, rx) = mpsc::channel(4_096);
        let pump = tokio::spawn(pump(
            client.clone(),
            options,
            Arc::clone(&shared),
            notifications,
            status,
            tx,
        ));
        // Relays that connected before the pump started count as connected once; those that
        // already failed get their reconnection schedule now (the pump never saw them go).
        for (url, relay) in client.relays().await {
            match relay.status() {
                RelayStatus::Connected => {
                    lock(&shared).ever_connected.insert(url);
                }
                RelayStatus::Terminated | RelayStatus::Disconnected => {
                    start_reconnecting(&client, &options, &shared, url);
                }
                _ => {}
            }
        }
        Ok((
            Self {
                client,
                options,
                shared,
                pump,
            },
            rx,
        ))
    }

    /// Sends an event to every relay. When no relay takes it for lack of a connection, it
    /// waits in the outbox and goes out on the next reconnection; relays that refuse it
    /// (`OK false`) are reported and not retried.
    pub async fn publish(&self, event: &Event) -> Result<PublishReport, SignalingError> {
        let report = match tokio::time::timeout(
            self.options.publish_timeout,
            self.client.send_event(event).broadcast().into_future(),
        )
        .await
        {
            Ok(Ok(output)) => PublishReport {
                accepted: output.success.into_keys().collect(),
                failed: output.failed.into_iter().collect(),
            },
            Ok(Err(e)) => PublishReport {
                accepted: vec![],
                failed: vec![(relay_placeholder(), e.to_string())],
            },
            Err(_) => PublishReport {
                accepted: vec![],
                failed: vec![(relay_placeholder(), "timed out waiting for OK".into())],
            },
        };
        for (relay, reason) in &report.failed {
            tracing::warn!(%relay, event = %event.id, %reason, "relay did not take our event");
        }
        if !report.accepted.is_empty() {
            return Ok(report);
        }
        let rejected: Vec<(String, String)> = report
            .failed
            .iter()
            .filter(|(_, reason)| is_relay_refusal(reason))
            .map(|(relay, reason)| (relay.to_string(), reason.clone()))
            .collect();
        // Refused everywhere: retrying cannot help. Otherwise keep it for a reconnection.
        let queued = rejected.len() < report.failed.len();
        if queued {
            let mut shared = lock(&self.shared);
            if shared.outbox.len() >= self.options.outbox_capacity {
                shared.outbox.pop_front();
            }
            shared.outbox.push_back(event.clone());
        }
        Err(SignalingError::Undelivered {
            event_id: event.id.to_hex(),
            rejected,
            queued,
        })
    }

    /// Subscribes every relay to `filters`; kept across reconnections.
    pub async fn subscribe(&self, filters: Vec<Filter>) -> Result<SubscriptionId, SignalingError> {
        self.subscribe_as(SubscriptionId::generate(), filters).await
    }

    async fn subscribe_as(
        &self,
        id: SubscriptionId,
        filters: Vec<Filter>,
    ) -> Result<SubscriptionId, SignalingError> {
        lock(&self.shared)
            .subscriptions
            .insert(id.clone(), filters.clone());
        let output = self
            .client
            .subscribe(filters)
            .with_id(id.clone())
            .await
            .map_err(|e| SignalingError::Client(e.to_string()))?;
        for (relay, reason) in &output.failed {
            // Renewed when the relay reconnects.
            tracing::warn!(%relay, %reason, subscription = %id, "subscription not placed yet");
        }
        Ok(id)
    }

    /// Subscribes every relay to `filters` as [`RelayPool::subscribe`] does, but every
    /// matching event is delivered, also one the pool delivered before (by another
    /// subscription or an earlier sample), once per relay that sends it. The client delivers
    /// an event only once per pool, so a crowd's sample of open seats, which overlaps the
    /// last one, came back with only the seats never seen before: fewer each time (at
    /// 10,000 JOINs, none by the fourth sample in `relay_seats`).
    pub async fn sample(&self, filters: Vec<Filter>) -> Result<SubscriptionId, SignalingError> {
        let id = SubscriptionId::generate();
        lock(&self.shared).samples.insert(id.clone());
        let placed = self.subscribe_as(id.clone(), filters).await;
        if placed.is_err() {
            lock(&self.shared).samples.remove(&id);
        }
        placed
    }

    /// Ends a subscription.
    pub async fn unsubscribe(&self, id: &SubscriptionId) {
        {
            let mut shared = lock(&self.shared);
            shared.subscriptions.remove(id);
            shared.samples.remove(id);
        }
        if let Err(e) = self.client.unsubscribe(id).await {
            tracing::debug!(subscription = %id, error = %e, "unsubscribe failed");
        }
    }

    /// Events waiting for a relay.
    pub fn outbox_len(&self) -> usize {
        lock(&self.shared).outbox.len()
    }

    /// Relays currently connected.
    pub async fn connected(&self) -> Vec<RelayUrl> {
        self.client
            .relays()
            .await
            .into_iter()
            .filter(|(_, relay)| relay.status() == RelayStatus::Connected)
            .map(|(url, _)| url)
            .collect()
    }

    /// Disconnects from every relay.
    pub async fn shutdown(self) {
        lock(&self.shared).closing = true;
        self.pump.abort();
        self.client.shutdown().await;
    }
}

impl Drop for RelayPool {
    fn drop(&mut self) {
        lock(&self.shared).closing = true;
        self.pump.abort();
    }
}

/// Starts the one reconnection task of `relay`, unless it runs already or the pool closes.
fn start_reconnecting(
    client: &Client,
    options: &PoolOptions,
    shared: &Arc<Mutex<Shared>>,
    relay: RelayUrl,
) {
    {
        let mut s = lock(shared);
        if s.closing || !s.reconnecting.insert(relay.clone()) {
            return;
        }
    }
    tokio::spawn(reconnect(
        client.clone(),
        *options,
        Arc::clone(shared),
        relay,
    ));
}

/// Tries `relay` again on the pool's schedule until it answers or the pool closes.
async fn reconnect(
    client: Client,
    options: PoolOptions,
    shared: Arc<Mutex<Shared>>,
    relay: RelayUrl,
) {
    for attempt in 0u32.. {
        let delay = options.reconnect.delay(attempt, draw(&relay, attempt));
        tokio::time::sleep(delay).await;
        if lock(&shared).closing {
            break;
        }
        match client
            .try_connect_relay(&relay, options.connect_timeout)
            .await
        {
            Ok(()) => break,
            Err(e) => tracing::debug!(%relay, attempt, error = %e, "relay still unreachable"),
        }
    }
    lock(&shared).reconnecting.remove(&relay);
}

/// A draw in [0, 1) for the jitter: different per relay, attempt and moment, so that clients
/// that lost the same relay at once spread their attempts.
fn draw(relay: &RelayUrl, attempt: u32) -> f64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    relay.as_str().hash(&mut hasher);
    attempt.hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // The shared maps stay consistent between statements; a panic elsewhere cannot break them.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A client-level failure names no relay.
fn relay_placeholder() -> RelayUrl {
    RelayUrl::parse("ws://0.0.0.0").unwrap_or_else(|_| unreachable!("constant URL parses"))
}

/// NIP-01 machine-readable prefixes of an `OK false` from a relay.
fn is_relay_refusal(reason: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "blocked:",
        "invalid:",
        "pow:",
        "duplicate:",
        "restricted:",
        "rate-limited:",
        "error:",
        "auth-required:",
    ];
    PREFIXES.iter().any(|p| reason.trim_start().starts_with(p))
}

async fn wait_for_first(
    status: &mut broadcast::Receiver<MonitorNotification>,
    timeout: Duration,
    urls: &[String],
) -> Result<(), SignalingError> {
    let connected = async {
        loop {
            match status.recv().await {
                Ok(MonitorNotification::StatusChanged {
                    status: RelayStatus::Connected,
                    ..
                }) => return true,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    };
    match tokio::time::timeout(timeout, connected).await {
        Ok(true) => Ok(()),
        _ => Err(SignalingError::NoRelayReachable {
            urls: urls.to_vec(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

/// Moves relay traffic into the pool's channel and reacts to reconnections.
async fn pump(
    client: Client,
    options: PoolOptions,
    shared: Arc<Mutex<Shared>>,
    mut notifications: impl StreamExt<Item = ClientNotification> + Unpin,
    mut status: broadcast::Receiver<MonitorNotification>,
    tx: mpsc::Sender<Incoming>,
) {
    loop {
        let incoming = tokio::select! {
            notification = notifications.next() => match notification {
                Some(ClientNotification::Event { relay_url, event, subscription_id }) => {
                    let mut s = lock(&shared);
                    s.newest = s.newest.max(Some(event.created_at));
                    // A sample's events come with the relay's message (below), seen or not.
                    (!s.samples.contains(&subscription_id)).then(|| Incoming::Event {
                        relay: relay_url,
                        event: VerifiedEvent::checked_by_client(event),
                    })
                }
                Some(ClientNotification::Message { relay_url, message }) => match *message {
                    // The client sends every event it accepted (verified, or saved verified
                    // before) as a message too.
                    RelayMessage::Event { subscription_id, event }
                        if lock(&shared).samples.contains(subscription_id.as_ref()) =>
                    {
                        Some(Incoming::Event {
                            relay: relay_url,
                            event: VerifiedEvent::checked_by_client(Box::new(event.into_owned())),
                        })
                    }
                    message => relay_message(relay_url, message),
                },
                Some(ClientNotification::Shutdown) | None => break,
            },
            change = status.recv() => match change {
                Ok(MonitorNotification::StatusChanged { relay_url, status }) => {
                    on_status(&client, &options, &shared, relay_url, status).await
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "relay status notifications lagged");
                    None
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        if let Some(incoming) = incoming
            && tx.send(incoming).await.is_err()
        {
            break;
        }
    }
    tracing::debug!("relay pool pump stopped");
}

fn relay_message(relay: RelayUrl, message: RelayMessage<'static>) -> Option<Incoming> {
    match message {
        RelayMessage::Notice(text) => {
            tracing::warn!(%relay, notice = %text, "relay NOTICE");
            Some(Incoming::Notice {
                relay,
                message: text.into_owned(),
            })
        }
        RelayMessage::Closed {
            subscription_id,
            message,
        } => {
            if message.starts_with("auth-required:") {
                tracing::warn!(%relay, subscription = %subscription_id, %message, "relay requires NIP-42 authentication for this subscription");
            } else {
                tracing::warn!(%relay, subscription = %subscription_id, %message, "relay closed a subscription");
            }
            Some(Incoming::Closed {
                relay,
                subscription: subscription_id.into_owned(),
                message: message.into_owned(),
            })
        }
        RelayMessage::EndOfStoredEvents(subscription) => Some(Incoming::EndOfStored {
            relay,
            subscription: subscription.into_owned(),
        }),
        RelayMessage::Auth { challenge } => {
            tracing::info!(%relay, %challenge, "relay asks for NIP-42 authentication");
            None
        }
        _ => None,
    }
}

async fn on_status(
    client: &Client,
    options: &PoolOptions,
    shared: &Arc<Mutex<Shared>>,
    relay: RelayUrl,
    status: RelayStatus,
) -> Option<Incoming> {
    match status {
        RelayStatus::Connected => {
            let (renew, outbox) = {
                let mut s = lock(shared);
                let returning = !s.ever_connected.insert(relay.clone());
                let since = s.newest.map(|t| {
                    Timestamp::from_secs(
                        t.as_secs()
                            .saturating_sub(options.resubscribe_overlap.as_secs()),
                    )
                });
                let renew: Vec<(SubscriptionId, Vec<Filter>)> = if returning {
                    s.subscriptions
                        .iter()
                        .map(|(id, filters)| {
                            let filters = filters.iter().cloned().map(|f| match since {
                                Some(since) => f.since(since),
                                None => f,
                            });
                            (id.clone(), filters.collect())
                        })
                        .collect()
                } else {
                    vec![]
                };
                (renew, s.outbox.drain(..).collect::<Vec<_>>())
            };
            tracing::info!(%relay, renewed = renew.len(), flushed = outbox.len(), "relay connected");
            for (id, filters) in renew {
                let target = nostr_sdk::prelude::ReqTarget::single(relay.clone(), filters);
                if let Err(e) = client.subscribe(target).with_id(id.clone()).await {
                    tracing::warn!(%relay, subscription = %id, error = %e, "resubscription failed");
                }
            }
            let mut undelivered = Vec::new();
            for event in outbox {
                match client.send_event(&event).broadcast().await {
                    Ok(output) if !output.success.is_empty() => {}
                    _ => undelivered.push(event),
                }
            }
            if !undelivered.is_empty() {
                lock(shared).outbox.extend(undelivered);
            }
            Some(Incoming::RelayUp(relay))
        }
        RelayStatus::Disconnected | RelayStatus::Terminated => {
            let known = lock(shared).reconnecting.contains(&relay);
            if !known {
                tracing::warn!(%relay, %status, "relay connection lost; trying again shortly");
            }
            start_reconnecting(client, options, shared, relay.clone());
            Some(Incoming::RelayDown(relay))
        }
        RelayStatus::Banned => {
            tracing::warn!(%relay, "relay banned this client; not trying again");
            Some(Incoming::RelayDown(relay))
        }
        _ => None,
    }
}
