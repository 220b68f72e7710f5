//! Who is online in a server, shared by every process of a deployment.

use crate::model::Timestamp;
use crate::CoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use uuid::Uuid;

/// The status of a user who chose to appear offline: stored, shown to nobody.
const OFFLINE: &str = "offline";

/// A user's presence, as `presence.update` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: Uuid,
    /// `online`, `idle`, `dnd`, or `offline` for a user who chose to appear offline (stored,
    /// shown to nobody; a user without a session has no presence at all).
    pub status: String,
    pub custom_text: Option<String>,
    #[serde(serialize_with = "crate::model::time::iso")]
    pub last_active_at: Timestamp,
}

impl Presence {
    /// Whether others see it (not a user appearing offline).
    pub fn shown(&self) -> bool {
        self.status != OFFLINE
    }
}

/// A server's presences serialized once, as `system.ready` carries them (a JSON array): every
/// ready of the server sends the same bytes until a presence changes, instead of serializing
/// each presence again (perf, 3,000 sessions connecting: a third of the connect CPU was spent
/// serializing presences).
#[derive(Debug, Clone)]
pub struct PresenceSnapshot {
    json: Arc<RawValue>,
    count: usize,
}

impl PresenceSnapshot {
    /// The snapshot of `presences`, leaving out those shown as offline (a user who chose to
    /// appear offline).
    pub fn of<'a>(presences: impl IntoIterator<Item = &'a Presence>) -> Self {
        let visible: Vec<&Presence> = presences.into_iter().filter(|p| p.shown()).collect();
        let json =
            serde_json::value::to_raw_value(&visible).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Self {
            json: Arc::from(json),
            count: visible.len(),
        }
    }

    /// The snapshot of presences already serialized one by one (as a store keeps them),
    /// joined as they are: those shown as offline, and any that is not a presence, are left
    /// out.
    pub fn joined<'a>(presences: impl IntoIterator<Item = &'a str>) -> Self {
        #[derive(Deserialize)]
        struct Status<'a> {
            #[serde(borrow)]
            status: &'a str,
        }
        let mut json = String::from("[");
        let mut count = 0;
        for presence in presences {
            let shown = serde_json::from_str::<Status>(presence).is_ok_and(|p| p.status != OFFLINE);
            if shown {
                if count > 0 {
                    json.push(',');
                }
                json.push_str(presence);
                count += 1;
            }
        }
        json.push(']');
        let json = RawValue::from_string(json).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Self {
            json: Arc::from(json),
            count,
        }
    }

    /// How many presences it holds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The length of its JSON text in bytes.
    pub fn json_len(&self) -> usize {
        self.json.get().len()
    }
}

impl Serialize for PresenceSnapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
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
    /// The presences of the server others see, serialized: a store may keep it until a
    /// presence of the server changes.
    async fn snapshot(&self, server_id: Uuid) -> CoreResult<PresenceSnapshot> {
        Ok(PresenceSnapshot::of(&self.list(server_id).await?))
    }
}
