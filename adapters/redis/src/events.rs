//! [`EventBus`] on Redis: one Lua script per publish takes the next position (`INCR`), appends
//! the event to the log (a list trimmed to its bound) and publishes it on the deployment's
//! pub/sub channel, all atomically, so every process sees events in position order and the
//! log's entries are exactly the positions `head - len + 1 ..= head`. Entries and messages are
//! `<position>|<event JSON>`.
//!
//! An event whose publication finds Redis out of reach is not lost: it waits in this process's
//! backlog, which keeps the process's events in order (later ones queue behind it) and is
//! published by a background task once Redis answers. The change it reports is committed, so
//! the caller is answered as usual. A backlog past [`BACKLOG_MAX`] events is dropped and
//! replaced by one [`RESYNC_EVENT`]: every session is then told it missed events (4000) and
//! none resumes across it. A process killed while holding a backlog loses it.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream, Scope, RESYNC_EVENT};
use ecto_core::{CoreError, CoreResult, ErrorKind};
use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// How far positions jump when Redis lost the head counter: more than any process can lag.
const POSITION_JUMP: u64 = 1_000_000;

/// Events one process holds while Redis is out of reach (about 10 minutes of a busy
/// community's traffic) before it gives up on them and publishes a resync instead.
pub const BACKLOG_MAX: usize = 100_000;

/// KEYS: head counter, log list, channel. ARGV: event JSON, log bound, the highest position
/// the publishing process has seen. Returns the position. A head counter that is gone while
/// the process has seen positions means Redis lost its data: positions then go on from far
/// above what anyone saw ([`POSITION_JUMP`]), never back, so every dispatcher sees a gap the
/// log cannot fill and tells its sessions they missed events.
const PUBLISH: &str = r"
local n
local seen = tonumber(ARGV[3])
if seen > 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  n = seen + tonumber(ARGV[4])
  redis.call('SET', KEYS[1], n)
else
  n = redis.call('INCR', KEYS[1])
end
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
    publisher: Arc<Publisher>,
    client: redis::Client,
}

/// What publishes: the connection, the log's bound and the backlog.
struct Publisher {
    conn: RedisConn,
    log_events: usize,
    backlog: Mutex<Backlog>,
    /// The highest position this process has published, received or read.
    seen: AtomicU64,
}

/// Serialized events waiting for Redis, oldest first; `flushing` while a task publishes them
/// (and so while any new event must queue behind them).
#[derive(Default)]
struct Backlog {
    events: VecDeque<String>,
    flushing: bool,
}

impl RedisEventBus {
    /// A bus on `url` keeping the last `log_events` events for [`EventBus::since`].
    pub fn new(conn: RedisConn, url: &str, log_events: usize) -> CoreResult<Self> {
        Ok(Self {
            client: redis::Client::open(url).map_err(crate::redis_error)?,
            publisher: Arc::new(Publisher {
                conn,
                log_events: log_events.max(1),
                backlog: Mutex::new(Backlog::default()),
                seen: AtomicU64::new(0),
            }),
        })
    }

    fn channel(&self) -> String {
        self.publisher.conn.key("events")
    }
}

impl Publisher {
    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One `<event JSON>` to Redis: its position, the log, the channel.
    async fn send(&self, payload: &str) -> CoreResult<u64> {
        let mut conn = self.conn.manager.clone();
        let position = PUBLISH_SCRIPT
            .key(self.conn.key("events:head"))
            .key(self.conn.key("events:log"))
            .key(self.conn.key("events"))
            .arg(payload)
            .arg(self.log_events)
            .arg(self.seen.load(Ordering::Relaxed))
            .arg(POSITION_JUMP)
            .invoke_async::<u64>(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        self.saw(position);
        Ok(position)
    }

    fn saw(&self, position: u64) {
        self.seen.fetch_max(position, Ordering::Relaxed);
    }

    /// Queues `payload` behind the backlog; returns whether a flushing task must be started.
    fn queue(&self, payload: String) -> bool {
        let mut backlog = self.backlog();
        if backlog.events.len() >= BACKLOG_MAX {
            tracing::error!(
                held = backlog.events.len(),
                "event backlog full while Redis is out of reach; dropping it for a resync"
            );
            metrics::counter!("ecto_event_backlog_dropped_total")
                .increment(backlog.events.len() as u64);
            backlog.events.clear();
            let resync = Event::new(
                uuid::Uuid::nil(),
                Scope::Server,
                RESYNC_EVENT,
                serde_json::json!({}),
            );
            if let Ok(text) = serde_json::to_string(&resync) {
                backlog.events.push_back(text);
            }
        }
        backlog.events.push_back(payload);
        metrics::gauge!("ecto_event_backlog").set(backlog.events.len() as f64);
        !std::mem::replace(&mut backlog.flushing, true)
    }

    /// Publishes the backlog in order, retrying every 100 ms doubling to 2 s, until it is
    /// empty.
    async fn flush(self: Arc<Self>) {
        let mut wait = Duration::from_millis(100);
        loop {
            let next = {
                let mut backlog = self.backlog();
                match backlog.events.front() {
                    Some(payload) => payload.clone(),
                    None => {
                        backlog.flushing = false;
                        metrics::gauge!("ecto_event_backlog").set(0.0);
                        tracing::info!("event backlog published");
                        return;
                    }
                }
            };
            match self.send(&next).await {
                Ok(_) => {
                    let mut backlog = self.backlog();
                    // A full backlog may have been replaced meanwhile: pop only what was sent.
                    if backlog.events.front() == Some(&next) {
                        backlog.events.pop_front();
                    }
                    metrics::gauge!("ecto_event_backlog").set(backlog.events.len() as f64);
                    wait = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "event backlog waits for Redis");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
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
        let publisher = &self.publisher;
        if publisher.backlog().flushing {
            // Behind the events already waiting, so this process's events stay in order.
            if publisher.queue(payload) {
                tokio::spawn(publisher.clone().flush());
            }
            return Ok(());
        }
        match publisher.send(&payload).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "Redis out of reach; the event waits in the backlog");
                if publisher.queue(payload) {
                    tokio::spawn(publisher.clone().flush());
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn subscribe(&self) -> CoreResult<EventStream> {
        let pubsub = crate::subscribe(&self.client, &[self.channel()]).await?;
        let publisher = self.publisher.clone();
        let stream = pubsub.into_on_message().filter_map(move |msg| {
            let event = msg
                .get_payload::<String>()
                .ok()
                .and_then(|payload| decode(&payload));
            if let Some(e) = &event {
                publisher.saw(e.position);
            }
            async move { event }
        });
        Ok(Box::pin(stream))
    }

    async fn since(&self, after: u64) -> CoreResult<Option<Vec<Event>>> {
        let mut conn = self.publisher.conn.manager.clone();
        let reply: Vec<redis::Value> = SINCE_SCRIPT
            .key(self.publisher.conn.key("events:head"))
            .key(self.publisher.conn.key("events:log"))
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
        if let Some(last) = events.last() {
            self.publisher.saw(last.position);
        }
        Ok(Some(events))
    }

    async fn head(&self) -> CoreResult<u64> {
        let mut conn = self.publisher.conn.manager.clone();
        let head: Option<u64> = conn
            .get(self.publisher.conn.key("events:head"))
            .await
            .map_err(crate::redis_error)?;
        let head = head.unwrap_or(0);
        self.publisher.saw(head);
        Ok(head)
    }
}
