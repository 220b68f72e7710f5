//! [`SessionBuffer`] on Redis: per session, `sess:<id>:inc` holds the incarnation allowed to
//! write and `sess:<id>:cp` the checkpoints (newest first, `<seq>|<JSON>`); one Lua script
//! checks the incarnation and saves, so a stale writer on another process cannot overwrite a
//! session that was resumed elsewhere. Both keys expire a fixed time after the last save.

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

static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE));

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
            self.conn.key(&format!("sess:{session_id}:inc")),
            self.conn.key(&format!("sess:{session_id}:cp")),
        )
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
        let mut conn = self.conn.manager.clone();
        conn.pset_ex::<_, _, ()>(inc, incarnation.to_string(), self.ttl_ms())
            .await
            .map_err(CoreError::internal)
    }

    async fn save(&self, checkpoint: &Checkpoint) -> CoreResult<bool> {
        let (inc, list) = self.keys(checkpoint.session_id);
        let json = serde_json::to_string(checkpoint).map_err(CoreError::internal)?;
        let mut conn = self.conn.manager.clone();
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
            .map_err(CoreError::internal)?;
        Ok(saved == 1)
    }

    async fn load(&self, session_id: Uuid) -> CoreResult<Vec<Checkpoint>> {
        let (_, list) = self.keys(session_id);
        let mut conn = self.conn.manager.clone();
        let entries: Vec<String> = conn
            .lrange(list, 0, -1)
            .await
            .map_err(CoreError::internal)?;
        Ok(entries
            .iter()
            .filter_map(|e| e.split_once('|'))
            .filter_map(|(_, json)| serde_json::from_str(json).ok())
            .collect())
    }

    async fn forget(&self, session_id: Uuid) -> CoreResult<()> {
        let (inc, list) = self.keys(session_id);
        let mut conn = self.conn.manager.clone();
        conn.del::<_, ()>(&[inc, list])
            .await
            .map_err(CoreError::internal)
    }
}
