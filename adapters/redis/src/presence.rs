//! [`PresenceStore`] on Redis: a hash of presences per server and a counter per user.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Presence, PresenceSnapshot, PresenceStore};
use ecto_core::{CoreError, CoreResult};
use redis::AsyncCommands;
use uuid::Uuid;

/// Presences shared by every process.
pub struct RedisPresenceStore(pub RedisConn);

impl RedisPresenceStore {
    fn presences(&self, server_id: Uuid) -> String {
        self.0.key(&format!("presence:{server_id}"))
    }
    fn counter(&self, server_id: Uuid, user_id: Uuid) -> String {
        self.0.key(&format!("conns:{server_id}:{user_id}"))
    }
}

#[async_trait]
impl PresenceStore for RedisPresenceStore {
    async fn connect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut conn = self.0.near();
        let n: i64 = conn
            .incr(self.counter(server_id, user_id), 1)
            .await
            .map_err(crate::redis_error)?;
        Ok(n.max(0) as u64)
    }

    async fn disconnect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut conn = self.0.near();
        // Decrement, but never below zero; drop the key at zero.
        let script = redis::Script::new(
            "local n = redis.call('DECR', KEYS[1]) if n <= 0 then redis.call('DEL', KEYS[1]) return 0 end return n",
        );
        let n: i64 = script
            .key(self.counter(server_id, user_id))
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(n.max(0) as u64)
    }

    async fn connections(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut conn = self.0.near();
        let n: Option<i64> = conn
            .get(self.counter(server_id, user_id))
            .await
            .map_err(crate::redis_error)?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn set(&self, server_id: Uuid, presence: Presence) -> CoreResult<()> {
        let mut conn = self.0.near();
        let json = serde_json::to_string(&presence).map_err(CoreError::internal)?;
        conn.hset::<_, _, _, ()>(
            self.presences(server_id),
            presence.user_id.to_string(),
            json,
        )
        .await
        .map_err(crate::redis_error)
    }

    async fn remove(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<bool> {
        let mut conn = self.0.near();
        let n: i64 = conn
            .hdel(self.presences(server_id), user_id.to_string())
            .await
            .map_err(crate::redis_error)?;
        Ok(n > 0)
    }

    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<Presence>> {
        let mut conn = self.0.near();
        let raw: Option<String> = conn
            .hget(self.presences(server_id), user_id.to_string())
            .await
            .map_err(crate::redis_error)?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<Presence>> {
        let mut conn = self.0.near();
        let all: Vec<String> = conn
            .hvals(self.presences(server_id))
            .await
            .map_err(crate::redis_error)?;
        Ok(all
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// The stored presences are already serialized as `system.ready` carries them: they are
    /// joined, not deserialized and serialized again.
    async fn snapshot(&self, server_id: Uuid) -> CoreResult<PresenceSnapshot> {
        let mut conn = self.0.near();
        let all: Vec<String> = conn
            .hvals(self.presences(server_id))
            .await
            .map_err(crate::redis_error)?;
        Ok(PresenceSnapshot::joined(all.iter().map(String::as_str)))
    }
}
