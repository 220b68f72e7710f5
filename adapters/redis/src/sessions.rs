//! [`SessionBuffer`] on Redis: per session, `sess:{<id>}:inc` holds the incarnation allowed
//! to write and `sess:{<id>}:cp` the checkpoints (newest first, `<seq>|<JSON>`); one Lua
//! script checks the incarnation and saves, so a stale writer on another process cannot
//! overwrite a session that was resumed elsewhere. Both keys share the session's hash tag (one
//! slot of a cluster) and expire a fixed time after the last save. `sessu:<server>:<user>`
//! ranks that user's sessions whose newest checkpoint is detached by when they detached
//! (Redis's clock, microseconds), for a resume that names no session. That index lives in
//! another slot, so it is written after the save, as a hint: [`SessionBuffer::detached`]
//! reads each listed session's own checkpoints and keeps only those detached.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Checkpoint, SessionBuffer, CHECKPOINTS_KEPT};
use ecto_core::{CoreError, CoreResult};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

/// KEYS: incarnation, checkpoints. ARGV: incarnation, entry, seq, ttl ms, kept.
const SAVE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
local top = redis.call('LINDEX', KEYS[2], 0)
if top and string.match(top, '^(%d+)|') == ARGV[3] then
  redis.call('LSET', KEYS[2], 0, ARGV[2])
else
  redis.call('LPUSH', KEYS[2], ARGV[2])
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
";

/// KEYS: the user's detached sessions. ARGV: ttl ms, detached (1/0), session id.
const INDEX: &str = r"
if ARGV[2] == '1' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -33)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[3])
end
return 1
";

static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE));
static INDEX_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(INDEX));

/// Session checkpoints shared by every process.
pub struct RedisSessionBuffer {
    conn: RedisConn,
    ttl: Duration,
}

impl RedisSessionBuffer {
    /// Checkpoints of a session expire `ttl` after its last save or claim.
    pub fn new(conn: RedisConn, ttl: Duration) -> Self {
        Self { conn, ttl }
    }

    fn keys(&self, session_id: Uuid) -> (String, String) {
        (
            self.conn.key(&format!("sess:{{{session_id}}}:inc")),
            self.conn.key(&format!("sess:{{{session_id}}}:cp")),
        )
    }

    fn user_key(&self, server_id: Uuid, user_id: Uuid) -> String {
        self.conn.key(&format!("sessu:{server_id}:{user_id}"))
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

#[async_trait]
impl SessionBuffer for RedisSessionBuffer {
    async fn claim(&self, session_id: Uuid, incarnation: Uuid) -> CoreResult<()> {
        let (inc, _) = self.keys(session_id);
        let mut conn = self.conn.near();
        conn.pset_ex::<_, _, ()>(inc, incarnation.to_string(), self.ttl_ms())
            .await
            .map_err(crate::redis_error)
    }

    async fn save(&self, checkpoint: &Checkpoint) -> CoreResult<bool> {
        let (inc, list) = self.keys(checkpoint.session_id);
        let json = serde_json::to_string(checkpoint).map_err(CoreError::internal)?;
        let mut conn = self.conn.near();
        let saved: i64 = SAVE_SCRIPT
            .key(inc)
            .key(list)
            .arg(checkpoint.incarnation.to_string())
            .arg(format!("{}|{json}", checkpoint.seq))
            .arg(checkpoint.seq)
            .arg(self.ttl_ms())
            .arg(CHECKPOINTS_KEPT)
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        if saved != 1 {
            return Ok(false);
        }
        INDEX_SCRIPT
            .key(self.user_key(checkpoint.server_id, checkpoint.user_id))
            .arg(self.ttl_ms())
            .arg(if checkpoint.detached { "1" } else { "0" })
            .arg(checkpoint.session_id.to_string())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(true)
    }

    async fn load(&self, session_id: Uuid) -> CoreResult<Vec<Checkpoint>> {
        let (_, list) = self.keys(session_id);
        let mut conn = self.conn.near();
        let entries: Vec<String> = conn.lrange(list, 0, -1).await.map_err(crate::redis_error)?;
        Ok(parse(&entries))
    }

    async fn detached(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Vec<Vec<Checkpoint>>> {
        let mut conn = self.conn.near();
        let ids: Vec<String> = conn
            .zrevrange(self.user_key(server_id, user_id), 0, -1)
            .await
            .map_err(crate::redis_error)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One read per session (each in its own slot), sent together.
        let reads = ids.iter().map(|id| {
            let mut conn = self.conn.near();
            let list = self.conn.key(&format!("sess:{{{id}}}:cp"));
            async move { conn.lrange::<_, Vec<String>>(list, 0, -1).await }
        });
        let lists: Vec<Vec<String>> = futures_util::future::try_join_all(reads)
            .await
            .map_err(crate::redis_error)?;
        Ok(lists
            .iter()
            .map(|entries| parse(entries))
            .filter(|cps| {
                cps.first()
                    .is_some_and(|c| c.detached && c.server_id == server_id && c.user_id == user_id)
            })
            .collect())
    }

    async fn forget(&self, session_id: Uuid) -> CoreResult<()> {
        let (inc, list) = self.keys(session_id);
        let mut conn = self.conn.near();
        conn.del::<_, ()>(&[inc, list])
            .await
            .map_err(crate::redis_error)
    }
}

/// Checkpoints stored as `<seq>|<JSON>` entries; unreadable entries are skipped.
fn parse(entries: &[String]) -> Vec<Checkpoint> {
    entries
        .iter()
        .filter_map(|e| e.split_once('|'))
        .filter_map(|(_, json)| serde_json::from_str(json).ok())
        .collect()
}
