//! [`PresenceStore`] in one process.

use async_trait::async_trait;
use ecto_core::ports::{Presence, PresenceSnapshot, PresenceStore};
use ecto_core::CoreResult;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct Inner {
    connections: HashMap<(Uuid, Uuid), u64>,
    presences: HashMap<Uuid, HashMap<Uuid, Presence>>,
    /// Each server's presences as last serialized, until one of them changes.
    snapshots: HashMap<Uuid, PresenceSnapshot>,
    /// Counts the changes of presences: a snapshot built while one happened is not kept.
    changes: u64,
}

impl Inner {
    fn changed(&mut self, server_id: Uuid) {
        self.snapshots.remove(&server_id);
        self.changes += 1;
    }
}

/// Presences and connection counts in memory.
#[derive(Default)]
pub struct MemoryPresenceStore(Mutex<Inner>);

impl MemoryPresenceStore {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl PresenceStore for MemoryPresenceStore {
    async fn connect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut inner = self.inner();
        let count = inner.connections.entry((server_id, user_id)).or_insert(0);
        *count += 1;
        Ok(*count)
    }

    async fn disconnect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut inner = self.inner();
        let key = (server_id, user_id);
        let left = inner
            .connections
            .get(&key)
            .copied()
            .unwrap_or(0)
            .saturating_sub(1);
        if left == 0 {
            inner.connections.remove(&key);
        } else {
            inner.connections.insert(key, left);
        }
        Ok(left)
    }

    async fn connections(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        Ok(self
            .inner()
            .connections
            .get(&(server_id, user_id))
            .copied()
            .unwrap_or(0))
    }

    async fn set(&self, server_id: Uuid, presence: Presence) -> CoreResult<()> {
        let mut inner = self.inner();
        inner
            .presences
            .entry(server_id)
            .or_default()
            .insert(presence.user_id, presence);
        inner.changed(server_id);
        Ok(())
    }

    async fn remove(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<bool> {
        let mut inner = self.inner();
        let removed = inner
            .presences
            .get_mut(&server_id)
            .and_then(|m| m.remove(&user_id))
            .is_some();
        if removed {
            inner.changed(server_id);
        }
        if inner
            .presences
            .get(&server_id)
            .is_some_and(HashMap::is_empty)
        {
            inner.presences.remove(&server_id);
        }
        Ok(removed)
    }

    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<Presence>> {
        Ok(self
            .inner()
            .presences
            .get(&server_id)
            .and_then(|m| m.get(&user_id))
            .cloned())
    }

    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<Presence>> {
        Ok(self
            .inner()
            .presences
            .get(&server_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn snapshot(&self, server_id: Uuid) -> CoreResult<PresenceSnapshot> {
        let (presences, changes) = {
            let inner = self.inner();
            if let Some(snapshot) = inner.snapshots.get(&server_id) {
                return Ok(snapshot.clone());
            }
            let presences: Vec<Presence> = inner
                .presences
                .get(&server_id)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            (presences, inner.changes)
        };
        // Serialized without the lock held.
        let snapshot = PresenceSnapshot::of(&presences);
        let mut inner = self.inner();
        if inner.changes == changes && inner.presences.contains_key(&server_id) {
            inner.snapshots.insert(server_id, snapshot.clone());
        }
        Ok(snapshot)
    }
}
