//! [`VoiceStateStore`] in one process: a map of states per server.

use async_trait::async_trait;
use ecto_core::ports::{VoiceState, VoiceStateStore};
use ecto_core::CoreResult;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Voice states of this process.
#[derive(Default)]
pub struct MemoryVoiceStateStore {
    servers: Mutex<HashMap<Uuid, HashMap<Uuid, VoiceState>>>,
}

impl MemoryVoiceStateStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, HashMap<Uuid, VoiceState>>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl VoiceStateStore for MemoryVoiceStateStore {
    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<VoiceState>> {
        Ok(self
            .lock()
            .get(&server_id)
            .and_then(|s| s.get(&user_id))
            .cloned())
    }

    async fn set(&self, server_id: Uuid, state: VoiceState) -> CoreResult<()> {
        self.lock()
            .entry(server_id)
            .or_default()
            .insert(state.user_id, state);
        Ok(())
    }

    async fn remove(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> CoreResult<Option<VoiceState>> {
        let mut servers = self.lock();
        let Some(states) = servers.get_mut(&server_id) else {
            return Ok(None);
        };
        let held = states
            .get(&user_id)
            .is_some_and(|s| session_id.is_none_or(|id| s.session_id == id));
        let removed = if held { states.remove(&user_id) } else { None };
        if states.is_empty() {
            servers.remove(&server_id);
        }
        Ok(removed)
    }

    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<VoiceState>> {
        let mut states: Vec<VoiceState> = self
            .lock()
            .get(&server_id)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        states.sort_by_key(|s| (s.connected_at, s.user_id));
        Ok(states)
    }
}
