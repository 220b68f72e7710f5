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
}

impl Event {
    pub fn new(server_id: Uuid, scope: Scope, name: &str, data: serde_json::Value) -> Self {
        Self {
            server_id,
            scope,
            name: name.to_owned(),
            data,
        }
    }
}

/// A live feed of published events.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Fan-out of events to every process of the deployment.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `event` to every current subscriber of every process, in publication order
    /// for one publisher. Succeeds with no subscriber.
    async fn publish(&self, event: Event) -> CoreResult<()>;
    /// A feed of every event published after this call returns.
    async fn subscribe(&self) -> CoreResult<EventStream>;
}
