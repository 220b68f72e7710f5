//! Who is online in a server, shared by every process of a deployment.

use crate::model::Timestamp;
use crate::CoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user's presence, as `presence.update` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: Uuid,
    /// `online`, `idle`, `dnd` (an `offline` presence is removed instead of stored).
    pub status: String,
    pub custom_text: Option<String>,
    #[serde(serialize_with = "crate::model::time::iso")]
    pub last_active_at: Timestamp,
}

/// Presences and open-connection counts per server.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Counts one more open session of the user in the server; returns the new count.
    async fn connect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64>;
    /// Counts one session less (never below zero); returns the remaining count.
    async fn disconnect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64>;
    /// Open sessions of the user in the server.
    async fn connections(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64>;
    /// Stores (replaces) the user's presence.
    async fn set(&self, server_id: Uuid, presence: Presence) -> CoreResult<()>;
    /// Removes the user's presence (they are offline); `false` when there was none.
    async fn remove(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<bool>;
    /// The user's presence, or `None` when offline.
    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<Presence>>;
    /// Every presence of the server.
    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<Presence>>;
}
