//! [`EventBus`] on Redis, one stream per community server. A server's events have their own
//! position counter, log and channel, all under the server's hash tag (`ev:{<server>}:head`,
//! `ev:{<server>}:log`, channel `ev:{<server>}`), so a server lives on one shard of a cluster
//! and no key orders the whole deployment. One Lua script per publish takes the server's next
//! position (`INCR`), appends the event to the server's log (a list trimmed to its bound and
//! expiring with the resume window once the server goes quiet) and publishes it on the
//! server's channel, atomically, so every follower sees the server's events in position order
//! and the log's entries are exactly the positions `head - len + 1 ..= head`. Entries and
//! messages are `<position>:<ms>|<event JSON>`; the log keeps no entry older than the resume
//! window. A process's feed is one pub/sub connection
//! subscribed to the channels of the servers it joined (`SSUBSCRIBE` on a cluster).
//!
//! An event whose publication finds Redis out of reach is not lost: it waits in this process's
//! backlog, which keeps the process's events in order (later ones queue behind it) and is
//! published by a background task once Redis answers. The change it reports is committed, so
//! the caller is answered as usual. A backlog past [`BACKLOG_MAX`] events is dropped and
//! replaced by one [`RESYNC_EVENT`] per server it held events of: the sessions of those
//! servers are then told they missed events (4000) and none resumes across it. A process
//! killed while holding a backlog loses it.

use crate::{Messages, RedisConn, Subscriber};
use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream, Scope, RESYNC_EVENT};
use ecto_core::{CoreError, CoreResult, ErrorKind};
use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// How far positions jump when Redis lost a server's head counter: more than any process can
/// lag.
const POSITION_JUMP: u64 = 1_000_000;

/// Events one process holds while Redis is out of reach (about 10 minutes of a busy
/// community's traffic) before it gives up on them and publishes resyncs instead.
pub const BACKLOG_MAX: usize = 100_000;

/// KEYS: head counter, log list (one server's). ARGV: event JSON, log bound, the highest
/// position of the server the publishing process has seen, [`POSITION_JUMP`], the resume
/// window in seconds, the channel, the publish command. Returns the position. A head counter
/// that is gone while the process has seen positions means Redis lost its data: positions then
/// go on from far above what anyone saw, never back, so every follower sees a gap the log
/// cannot fill and tells the server's sessions they missed events.
///
/// Entries are `<position>:<ms>|<event JSON>` (`ms` on Redis's clock): the log keeps a
/// server's last `bound` events but none older than the resume window (no checkpoint that old
/// is kept), dropping at most 100 from its head per publish, and expires with the window once
/// the server goes quiet. A busy community's log is then its last few minutes, not its last
/// `bound` events held for good.
const PUBLISH: &str = r"
local n
local seen = tonumber(ARGV[3])
if seen > 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  n = seen + tonumber(ARGV[4])
  redis.call('SET', KEYS[1], n)
else
  n = redis.call('INCR', KEYS[1])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local msg = tostring(n) .. ':' .. tostring(now) .. '|' .. ARGV[1]
redis.call('RPUSH', KEYS[2], msg)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
local cutoff = now - tonumber(ARGV[5]) * 1000
for _ = 1, 100 do
  local first = redis.call('LINDEX', KEYS[2], 0)
  local at = first and tonumber(string.match(first, '^%d+:(%d+)|'))
  if not at or at >= cutoff then break end
  redis.call('LPOP', KEYS[2])
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call(ARGV[7], ARGV[6], msg)
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

/// Cross-process fan-out with a bounded log per server.
pub struct RedisEventBus {
    publisher: Arc<Publisher>,
    feeds: tokio::sync::Mutex<Feeds>,
}

/// The servers joined, and the subscribing halves of the feeds that are still read.
#[derive(Default)]
struct Feeds {
    joined: HashSet<Uuid>,
    open: Vec<(Subscriber, Arc<AtomicBool>)>,
}

/// What publishes: the connection, the log's bound and lifetime, and the backlog.
struct Publisher {
    conn: RedisConn,
    log_events: usize,
    log_ttl: Duration,
    backlog: Mutex<Backlog>,
    /// The highest position of each server this process has published, received or read.
    seen: Mutex<HashMap<Uuid, u64>>,
}

/// Serialized events waiting for Redis, oldest first, with their server; `flushing` while a
/// task publishes them (and so while any new event must queue behind them).
#[derive(Default)]
struct Backlog {
    events: VecDeque<(Uuid, String)>,
    flushing: bool,
}

/// A server's keys: head counter, log, channel.
fn keys(conn: &RedisConn, server: Uuid) -> (String, String, String) {
    let channel = conn.key(&format!("ev:{{{server}}}"));
    (format!("{channel}:head"), format!("{channel}:log"), channel)
}

impl RedisEventBus {
    /// A bus on `conn` keeping the last `log_events` events of each server for
    /// [`EventBus::since`], none older than `log_ttl` (the resume window).
    pub fn new(conn: RedisConn, log_events: usize, log_ttl: Duration) -> Self {
        Self {
            publisher: Arc::new(Publisher {
                conn,
                log_events: log_events.max(1),
                log_ttl: log_ttl.max(Duration::from_secs(1)),
                backlog: Mutex::new(Backlog::default()),
                seen: Mutex::new(HashMap::new()),
            }),
            feeds: tokio::sync::Mutex::new(Feeds::default()),
        }
    }
}

impl Publisher {
    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seen(&self) -> MutexGuard<'_, HashMap<Uuid, u64>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One `<event JSON>` of `server` to Redis: its position, the log, the channel.
    async fn send(&self, server: Uuid, payload: &str) -> CoreResult<u64> {
        let mut conn = self.conn.near();
        let (head, log, channel) = keys(&self.conn, server);
        let seen = self.seen().get(&server).copied().unwrap_or(0);
        let position = PUBLISH_SCRIPT
            .key(head)
            .key(log)
            .arg(payload)
            .arg(self.log_events)
            .arg(seen)
            .arg(POSITION_JUMP)
            .arg(self.log_ttl.as_secs())
            .arg(channel)
            .arg(self.conn.publish_command())
            .invoke_async::<u64>(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        self.saw(server, position);
        Ok(position)
    }

    fn saw(&self, server: Uuid, position: u64) {
        let mut seen = self.seen();
        let known = seen.entry(server).or_insert(0);
        *known = (*known).max(position);
    }

    /// Queues `payload` behind the backlog; returns whether a flushing task must be started.
    fn queue(&self, server: Uuid, payload: String) -> bool {
        let mut backlog = self.backlog();
        if backlog.events.len() >= BACKLOG_MAX {
            tracing::error!(
                held = backlog.events.len(),
                "event backlog full while Redis is out of reach; dropping it for resyncs"
            );
            metrics::counter!("ecto_event_backlog_dropped_total")
                .increment(backlog.events.len() as u64);
            let servers: HashSet<Uuid> = backlog.events.drain(..).map(|(s, _)| s).collect();
            for server in servers {
                let resync = Event::new(server, Scope::Server, RESYNC_EVENT, serde_json::json!({}));
                if let Ok(text) = serde_json::to_string(&resync) {
                    backlog.events.push_back((server, text));
                }
            }
        }
        backlog.events.push_back((server, payload));
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
                    Some(entry) => entry.clone(),
                    None => {
                        backlog.flushing = false;
                        metrics::gauge!("ecto_event_backlog").set(0.0);
                        tracing::info!("event backlog published");
                        return;
                    }
                }
            };
            match self.send(next.0, &next.1).await {
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

/// Reads one `<position>[:<ms>]|<event JSON>` entry.
fn decode(entry: &str) -> Option<Event> {
    let (head, json) = entry.split_once('|')?;
    let position = head.split(':').next()?;
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

/// A feed's messages, marking the feed closed when dropped (the bus stops subscribing it).
struct Feed {
    messages: Messages,
    open: Arc<AtomicBool>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.open.store(false, Ordering::Relaxed);
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, mut event: Event) -> CoreResult<()> {
        event.published_ms = ecto_core::ports::publish_time_ms();
        let payload = serde_json::to_string(&event).map_err(CoreError::internal)?;
        let (publisher, server) = (&self.publisher, event.server_id);
        if publisher.backlog().flushing {
            // Behind the events already waiting, so this process's events stay in order.
            if publisher.queue(server, payload) {
                tokio::spawn(publisher.clone().flush());
            }
            return Ok(());
        }
        match publisher.send(server, &payload).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "Redis out of reach; the event waits in the backlog");
                if publisher.queue(server, payload) {
                    tokio::spawn(publisher.clone().flush());
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn feed(&self) -> CoreResult<EventStream> {
        let mut feeds = self.feeds.lock().await;
        let (mut subscriber, messages) = self.publisher.conn.subscriber().await?;
        for server in &feeds.joined {
            subscriber
                .subscribe(&keys(&self.publisher.conn, *server).2)
                .await?;
        }
        let open = Arc::new(AtomicBool::new(true));
        feeds.open.retain(|(_, open)| open.load(Ordering::Relaxed));
        feeds.open.push((subscriber, open.clone()));
        let publisher = self.publisher.clone();
        let feed = Feed { messages, open };
        let stream = futures_util::stream::unfold(feed, |mut feed| async move {
            let (_, payload) = feed.messages.next().await?;
            Some((decode(&payload), feed))
        })
        .filter_map(move |event| {
            if let Some(e) = &event {
                publisher.saw(e.server_id, e.position);
            }
            async move { event }
        });
        Ok(Box::pin(stream))
    }

    async fn join(&self, server: Uuid) -> CoreResult<()> {
        let mut feeds = self.feeds.lock().await;
        if feeds.joined.contains(&server) {
            return Ok(());
        }
        let channel = keys(&self.publisher.conn, server).2;
        feeds.open.retain(|(_, open)| open.load(Ordering::Relaxed));
        for (subscriber, _) in &mut feeds.open {
            subscriber.subscribe(&channel).await?;
        }
        feeds.joined.insert(server);
        metrics::gauge!("ecto_event_bus_channels").set(feeds.joined.len() as f64);
        Ok(())
    }

    async fn leave(&self, server: Uuid) -> CoreResult<()> {
        let mut feeds = self.feeds.lock().await;
        if !feeds.joined.remove(&server) {
            return Ok(());
        }
        metrics::gauge!("ecto_event_bus_channels").set(feeds.joined.len() as f64);
        let channel = keys(&self.publisher.conn, server).2;
        feeds.open.retain(|(_, open)| open.load(Ordering::Relaxed));
        for (subscriber, _) in &mut feeds.open {
            subscriber.unsubscribe(&channel).await?;
        }
        Ok(())
    }

    fn partial(&self) -> bool {
        true
    }

    async fn since(&self, server: Uuid, after: u64) -> CoreResult<Option<Vec<Event>>> {
        let mut conn = self.publisher.conn.near();
        let (head, log, _) = keys(&self.publisher.conn, server);
        let reply: Vec<redis::Value> = SINCE_SCRIPT
            .key(head)
            .key(log)
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
            self.publisher.saw(server, last.position);
        }
        Ok(Some(events))
    }

    async fn head(&self, server: Uuid) -> CoreResult<u64> {
        let mut conn = self.publisher.conn.near();
        let head: Option<u64> = conn
            .get(keys(&self.publisher.conn, server).0)
            .await
            .map_err(crate::redis_error)?;
        let head = head.unwrap_or(0);
        self.publisher.saw(server, head);
        Ok(head)
    }
}
