//! The event bus: use cases publish what changed; the gateway delivers it to sessions.

use crate::CoreResult;
use async_trait::async_trait;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use uuid::Uuid;

/// Who may receive an event (reference §3.3, DECISIONS §3.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// Every session of the event's server.
    Server,
    /// Sessions of the server subscribed to this channel that can still read it.
    Channel(Uuid),
    /// Every session of this user in the event's server.
    User(Uuid),
}

/// One event: its protocol name and payload, scoped to a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub server_id: Uuid,
    pub scope: Scope,
    pub name: String,
    pub data: serde_json::Value,
    /// The event's place in its server's log: consecutive from 1 within the server, assigned
    /// by [`EventBus::publish`] (0 on an event not yet published). Servers are ordered
    /// independently: nothing orders two servers' events.
    #[serde(default)]
    pub position: u64,
    /// When [`EventBus::publish`] took it, in milliseconds since the Unix epoch (0 before):
    /// the gateway measures the bus's lag from it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub published_ms: u64,
}

/// The event a bus publishes, in each server whose events it had to drop unpublished (its
/// backing service was away longer than it could hold them): every session of that server
/// missed something it cannot be told, so each is closed (4000 "Missed events") and no resume
/// may replay across it; the client starts a new session.
pub const RESYNC_EVENT: &str = "internal.resync";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The time to stamp on an event being published ([`Event::published_ms`]).
pub fn publish_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Event {
    pub fn new(server_id: Uuid, scope: Scope, name: &str, data: serde_json::Value) -> Self {
        Self {
            server_id,
            scope,
            name: name.to_owned(),
            data,
            position: 0,
            published_ms: 0,
        }
    }
}

/// A live feed of published events.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Fan-out of events to the processes that follow their server, and a bounded log of each
/// server's latest events so that a gateway session can be rebuilt from a checkpoint (resume)
/// on any process.
///
/// Every server is a stream of its own: its events are numbered from 1, logged and published
/// apart from every other server's, so no single counter orders the deployment. A process
/// reads one feed, which carries the events of the servers it [`EventBus::join`]ed (a bus may
/// carry more: the in-process bus carries every server's, see [`EventBus::partial`]).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Gives `event` the next position of its server (one more than the server's previous
    /// event), appends it to the server's log and publishes it to every process that joined
    /// the server. Succeeds when nobody listens.
    async fn publish(&self, event: Event) -> CoreResult<()>;
    /// This process's feed: the events of every server joined (before or after this call),
    /// each server's in position order, published after the server was joined. When a feed
    /// ends (the backing service was lost) a new one may be asked for; it carries the servers
    /// joined so far.
    async fn feed(&self) -> CoreResult<EventStream>;
    /// Makes the feed carry `server`'s events: every event of the server published after this
    /// returns arrives on the feed. Joining twice is joining once.
    async fn join(&self, server: Uuid) -> CoreResult<()>;
    /// Stops carrying `server`'s events (some may still arrive).
    async fn leave(&self, server: Uuid) -> CoreResult<()>;
    /// Whether the feed carries only the servers joined (`false`: it carries every server's
    /// events, as one process's bus does).
    fn partial(&self) -> bool;
    /// The server's logged events after position `after`, oldest first, up to the newest;
    /// `None` when the log no longer holds position `after + 1` (or `after` is beyond the
    /// newest).
    async fn since(&self, server: Uuid, after: u64) -> CoreResult<Option<Vec<Event>>>;
    /// The position of the server's newest published event (0 before the first).
    async fn head(&self, server: Uuid) -> CoreResult<u64>;
    /// Offers each event published in this process to `sink` first, on the publisher's thread
    /// and in position order (with the event positioned and logged): an event `sink` takes
    /// (`true`) is not sent on the feed. Only a bus whose one feed hears exactly what this
    /// process publishes can do it (the in-process bus, while one feed is open and one sink
    /// set); any other keeps every event on the feed, as this default does.
    fn offer_inline(&self, _sink: InlineSink) {}
}

/// What [`EventBus::offer_inline`] offers events to.
pub type InlineSink = Box<dyn Fn(&Event) -> bool + Send + Sync>;
