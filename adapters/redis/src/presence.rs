//! [`PresenceStore`] on Redis: a hash of presences per server and a counter per user.
//!
//! The hash also holds a version (field [`VERSION`]): a fresh id (UUIDv7) written by the
//! same script as every change of the server's presences. A process keeps the last snapshot
//! it built per server with the version it read before building it, and builds it again only
//! when the version changed, so a `system.ready` costs one small read instead of reading
//! and joining every presence of the server.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Presence, PresenceSnapshot, PresenceStore};
use ecto_core::{CoreError, CoreResult};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use uuid::Uuid;

/// The field of a server's presence hash that holds its version (not a presence: readers of
/// the presences skip it, as they skip anything that is not one).
const VERSION: &str = "~v";

/// KEYS: the server's presences. ARGV: user id, presence, [`VERSION`], a new version.
static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new("redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) return 1")
});

/// KEYS: the server's presences. ARGV: user id, [`VERSION`], a new version. Returns how many
/// were removed.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local n = redis.call('HDEL', KEYS[1], ARGV[1]) \
         if n > 0 then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end return n",
    )
});

/// KEYS: a user's session counter. Decrements it, never below zero, and drops it at zero;
/// returns what remains.
static DISCONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local n = redis.call('DECR', KEYS[1]) \
         if n <= 0 then redis.call('DEL', KEYS[1]) return 0 end return n",
    )
});

/// Presences shared by every process.
pub struct RedisPresenceStore {
    conn: RedisConn,
    /// Per server, the last snapshot built here and the version read before building it.
    snapshots: Mutex<HashMap<Uuid, (String, PresenceSnapshot)>>,
}

impl RedisPresenceStore {
    pub fn new(conn: RedisConn) -> Self {
        Self {
            conn,
            snapshots: Mutex::new(HashMap::new()),
        }
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (String, PresenceSnapshot)>> {
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn presences(&self, server_id: Uuid) -> String {
        self.conn.key(&format!("presence:{server_id}"))
    }
    fn counter(&self, server_id: Uuid, user_id: Uuid) -> String {
        self.conn.key(&format!("conns:{server_id}:{user_id}"))
    }
}

#[async_trait]
impl PresenceStore for RedisPresenceStore {
    async fn connect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut conn = self.conn.near();
        let n: i64 = conn
            .incr(self.counter(server_id, user_id), 1)
            .await
            .map_err(crate::redis_error)?;
        Ok(n.max(0) as u64)
    }

    async fn disconnect(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut conn = self.conn.near();
        let n: i64 = DISCONNECT
            .key(self.counter(server_id, user_id))
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(n.max(0) as u64)
    }

    async fn connections(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        let mut conn = self.conn.near();
        let n: Option<i64> = conn
            .get(self.counter(server_id, user_id))
            .await
            .map_err(crate::redis_error)?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn set(&self, server_id: Uuid, presence: Presence) -> CoreResult<()> {
        let mut conn = self.conn.near();
        let json = serde_json::to_string(&presence).map_err(CoreError::internal)?;
        SET.key(self.presences(server_id))
            .arg(presence.user_id.to_string())
            .arg(json)
            .arg(VERSION)
            .arg(ecto_core::new_id().to_string())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(())
    }

    async fn remove(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<bool> {
        let mut conn = self.conn.near();
        let n: i64 = REMOVE
            .key(self.presences(server_id))
            .arg(user_id.to_string())
            .arg(VERSION)
            .arg(ecto_core::new_id().to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(n > 0)
    }

    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<Presence>> {
        let mut conn = self.conn.near();
        let raw: Option<String> = conn
            .hget(self.presences(server_id), user_id.to_string())
            .await
            .map_err(crate::redis_error)?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<Presence>> {
        let mut conn = self.conn.near();
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
    /// joined, not deserialized and serialized again, and only when the server's version
    /// changed since this process last joined them.
    async fn snapshot(&self, server_id: Uuid) -> CoreResult<PresenceSnapshot> {
        let key = self.presences(server_id);
        let mut conn = self.conn.near();
        let version: Option<String> = conn.hget(&key, VERSION).await.map_err(crate::redis_error)?;
        if let Some((at, snapshot)) = self.snapshots().get(&server_id) {
            if Some(at) == version.as_ref() {
                return Ok(snapshot.clone());
            }
        }
        let all: Vec<String> = conn.hvals(&key).await.map_err(crate::redis_error)?;
        let snapshot = PresenceSnapshot::joined(all.iter().map(String::as_str));
        if let Some(version) = version {
            self.snapshots()
                .insert(server_id, (version, snapshot.clone()));
        }
        Ok(snapshot)
    }
}
