//! [`EventBus`] on Redis: one Lua script per publish takes the next position (`INCR`), appends
//! the event to the log (a list trimmed to its bound) and publishes it on the deployment's
//! pub/sub channel, all atomically, so every process sees events in position order and the
//! log's entries are exactly the positions `head - len + 1 ..= head`. Entries and messages are
//! `<position>|<event JSON>`.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream};
use ecto_core::{CoreError, CoreResult};
use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;

/// KEYS: head counter, log list, channel. ARGV: event JSON, log bound. Returns the position.
const PUBLISH: &str = r"
local n = redis.call('INCR', KEYS[1])
local msg = tostring(n) .. '|' .. ARGV[1]
redis.call('RPUSH', KEYS[2], msg)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', KEYS[3], msg)
return n
";

/// KEYS: head counter, log list. ARGV: after. Returns `{ok (0|1), entries...}`.
const SINCE: &str = r"
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
local len = redis.call('LLEN', KEYS[2])
local oldest = head - len + 1
if after > head or after + 1 < oldest then return {0} end
local out = redis.call('LRANGE', KEYS[2], after + 1 - oldest, -1)
table.insert(out, 1, 1)
return out
";

static PUBLISH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PUBLISH));
static SINCE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SINCE));

/// Cross-process fan-out with a shared bounded log.
pub struct RedisEventBus {
    conn: RedisConn,
    client: redis::Client,
    log_events: usize,
}

impl RedisEventBus {
    /// A bus on `url` keeping the last `log_events` events for [`EventBus::since`].
    pub fn new(conn: RedisConn, url: &str, log_events: usize) -> CoreResult<Self> {
        Ok(Self {
            conn,
            client: redis::Client::open(url).map_err(crate::redis_error)?,
            log_events: log_events.max(1),
        })
    }

    fn channel(&self) -> String {
        self.conn.key("events")
    }
}

/// Reads one `<position>|<event JSON>` entry.
fn decode(entry: &str) -> Option<Event> {
    let (position, json) = entry.split_once('|')?;
    let mut event: Event = match serde_json::from_str(json) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable event on the bus");
            return None;
        }
    };
    event.position = position.parse().ok()?;
    Some(event)
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, mut event: Event) -> CoreResult<()> {
        event.published_ms = ecto_core::ports::publish_time_ms();
        let payload = serde_json::to_string(&event).map_err(CoreError::internal)?;
        let mut conn = self.conn.manager.clone();
        PUBLISH_SCRIPT
            .key(self.conn.key("events:head"))
            .key(self.conn.key("events:log"))
            .key(self.channel())
            .arg(payload)
            .arg(self.log_events)
            .invoke_async::<u64>(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(())
    }

    async fn subscribe(&self) -> CoreResult<EventStream> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(crate::redis_error)?;
        pubsub
            .subscribe(self.channel())
            .await
            .map_err(crate::redis_error)?;
        let stream = pubsub.into_on_message().filter_map(|msg| async move {
            let payload: String = msg.get_payload().ok()?;
            decode(&payload)
        });
        Ok(Box::pin(stream))
    }

    async fn since(&self, after: u64) -> CoreResult<Option<Vec<Event>>> {
        let mut conn = self.conn.manager.clone();
        let reply: Vec<redis::Value> = SINCE_SCRIPT
            .key(self.conn.key("events:head"))
            .key(self.conn.key("events:log"))
            .arg(after)
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        let mut items = reply.into_iter();
        if !matches!(items.next(), Some(redis::Value::Int(1))) {
            return Ok(None);
        }
        let mut events = Vec::new();
        for item in items {
            let text: String = redis::from_redis_value(item).map_err(crate::redis_error)?;
            match decode(&text) {
                Some(event) => events.push(event),
                // An entry we cannot read is a hole: the caller must not assume completeness.
                None => return Ok(None),
            }
        }
        Ok(Some(events))
    }

    async fn head(&self) -> CoreResult<u64> {
        let mut conn = self.conn.manager.clone();
        let head: Option<u64> = conn
            .get(self.conn.key("events:head"))
            .await
            .map_err(crate::redis_error)?;
        Ok(head.unwrap_or(0))
    }
}
