//! [`VoiceStateStore`] on Redis: one hash per server, `voice:<server>`, of `<session>|<state
//! JSON>` by user; removing a state held by one session is one Lua script, so a session that
//! lost its state to a transfer cannot remove its successor's. The set `voiceservers` names the
//! servers with someone in voice (the relay's sweep of ghost states reads it). On a cluster
//! the set and a server's hash live in different slots, so the set is written after the hash:
//! a server is added after its state is set, and removed once its hash is empty and still
//! empty after the removal (a state set meanwhile puts it back).

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{VoiceState, VoiceStateStore};
use ecto_core::{CoreError, CoreResult};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use uuid::Uuid;

/// KEYS: the server's hash. ARGV: user, session (empty: any). Returns the entry removed.
const REMOVE: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
if ARGV[2] ~= '' and string.sub(v, 1, 36) ~= ARGV[2] then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
return v
";

static REMOVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REMOVE));

/// Voice states shared by every process.
pub struct RedisVoiceStateStore(pub RedisConn);

impl RedisVoiceStateStore {
    fn key(&self, server_id: Uuid) -> String {
        self.0.key(&format!("voice:{server_id}"))
    }

    fn servers_key(&self) -> String {
        self.0.key("voiceservers")
    }

    /// Takes the server out of `voiceservers` when nobody is in voice there, and puts it back
    /// when a state was set meanwhile.
    async fn forget_if_empty(&self, server_id: Uuid) -> CoreResult<()> {
        let mut conn = self.0.near();
        let len: u64 = conn
            .hlen(self.key(server_id))
            .await
            .map_err(crate::redis_error)?;
        if len > 0 {
            return Ok(());
        }
        conn.srem::<_, _, ()>(self.servers_key(), server_id.to_string())
            .await
            .map_err(crate::redis_error)?;
        let len: u64 = conn
            .hlen(self.key(server_id))
            .await
            .map_err(crate::redis_error)?;
        if len > 0 {
            conn.sadd::<_, _, ()>(self.servers_key(), server_id.to_string())
                .await
                .map_err(crate::redis_error)?;
        }
        Ok(())
    }

    /// The servers with someone in voice.
    pub async fn servers(&self) -> CoreResult<Vec<Uuid>> {
        let mut conn = self.0.near();
        let ids: Vec<String> = conn
            .smembers(self.servers_key())
            .await
            .map_err(crate::redis_error)?;
        Ok(ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).collect())
    }
}

fn encode(state: &VoiceState) -> CoreResult<String> {
    let json = serde_json::to_string(state).map_err(CoreError::internal)?;
    Ok(format!("{}|{json}", state.session_id))
}

fn decode(entry: &str) -> Option<VoiceState> {
    let (session, json) = entry.split_once('|')?;
    let mut state: VoiceState = serde_json::from_str(json).ok()?;
    state.session_id = Uuid::parse_str(session).ok()?;
    Some(state)
}

#[async_trait]
impl VoiceStateStore for RedisVoiceStateStore {
    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<VoiceState>> {
        let mut conn = self.0.near();
        let entry: Option<String> = conn
            .hget(self.key(server_id), user_id.to_string())
            .await
            .map_err(crate::redis_error)?;
        Ok(entry.as_deref().and_then(decode))
    }

    async fn set(&self, server_id: Uuid, state: VoiceState) -> CoreResult<()> {
        let mut conn = self.0.near();
        conn.hset::<_, _, _, ()>(
            self.key(server_id),
            state.user_id.to_string(),
            encode(&state)?,
        )
        .await
        .map_err(crate::redis_error)?;
        conn.sadd::<_, _, ()>(self.servers_key(), server_id.to_string())
            .await
            .map_err(crate::redis_error)
    }

    async fn remove(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> CoreResult<Option<VoiceState>> {
        let mut conn = self.0.near();
        let removed: Option<String> = REMOVE_SCRIPT
            .key(self.key(server_id))
            .arg(user_id.to_string())
            .arg(session_id.map(|s| s.to_string()).unwrap_or_default())
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        if removed.is_some() {
            self.forget_if_empty(server_id).await?;
        }
        Ok(removed.as_deref().and_then(decode))
    }

    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<VoiceState>> {
        let mut conn = self.0.near();
        let entries: Vec<String> = conn
            .hvals(self.key(server_id))
            .await
            .map_err(crate::redis_error)?;
        let mut states: Vec<VoiceState> = entries.iter().filter_map(|e| decode(e)).collect();
        states.sort_by_key(|s| (s.connected_at, s.user_id));
        Ok(states)
    }
}
