//! Redis adapters for the managed profile: state every process of a deployment must share.

mod cache;
mod events;
mod presence;
mod rate_limit;
mod sessions;
mod voice;
mod voice_relay;

pub use cache::RedisCache;
pub use events::RedisEventBus;
pub use presence::RedisPresenceStore;
pub use rate_limit::RedisRateLimiter;
pub use sessions::RedisSessionBuffer;
pub use voice::RedisVoiceStateStore;
pub use voice_relay::RoutedMediaPlane;

use async_trait::async_trait;
use ecto_core::ports::HealthCheck;
use ecto_core::{CoreError, CoreResult};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

/// A failed Redis call, counted in `ecto_redis_errors_total`: Redis out of reach (refused,
/// dropped, timed out) is `Unavailable` ("Redis unavailable", 503), anything else internal.
pub(crate) fn redis_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CoreError {
    metrics::counter!("ecto_redis_errors_total").increment(1);
    let e = e.into();
    let unreachable = e.downcast_ref::<redis::RedisError>().is_some_and(|r| {
        r.is_io_error() || r.is_timeout() || r.is_connection_dropped() || r.is_connection_refusal()
    });
    if unreachable {
        CoreError::unavailable("Redis unavailable", e)
    } else {
        CoreError::internal(e)
    }
}

/// How long a Redis call may wait: to connect, for an answer, and how often a lost connection
/// is retried before the call fails. An outage fails calls within about two seconds (503)
/// instead of holding them through the library's twelve seconds of retries; the connection
/// is made again by the next call once Redis is back.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);
const RECONNECT_RETRIES: usize = 1;

/// Runs `call` within a connection's and an answer's timeout.
async fn within<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> CoreResult<T> {
    match tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, call).await {
        Ok(result) => result.map_err(redis_error),
        Err(_) => Err(redis_error(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        )))),
    }
}

/// Messages `(channel, payload)` of a [`Subscriber`]'s connection; the stream ends when the
/// connection is lost (what was published meanwhile was not received).
pub(crate) type Messages =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = (String, String)> + Send>>;

/// The subscribing half of a pub/sub connection: channels are added and removed while its
/// [`Messages`] are read. On one Redis it is a RESP2 pub/sub connection (`SUBSCRIBE`); on a
/// cluster, a RESP3 cluster connection with sharded channels (`SSUBSCRIBE`, each channel on
/// the shard of its slot, published with `SPUBLISH`).
#[derive(Clone)]
pub(crate) enum Subscriber {
    Single(redis::aio::PubSubSink),
    Cluster(ClusterConnection),
}

impl Subscriber {
    pub async fn subscribe(&mut self, channel: &str) -> CoreResult<()> {
        match self {
            Subscriber::Single(sink) => within(sink.subscribe(channel)).await,
            Subscriber::Cluster(conn) => within(conn.ssubscribe(channel)).await,
        }
    }

    pub async fn unsubscribe(&mut self, channel: &str) -> CoreResult<()> {
        match self {
            Subscriber::Single(sink) => within(sink.unsubscribe(channel)).await,
            Subscriber::Cluster(conn) => within(conn.sunsubscribe(channel)).await,
        }
    }
}

/// A pub/sub connection subscribed to `channels`.
pub(crate) async fn subscribe(
    conn: &RedisConn,
    channels: &[String],
) -> CoreResult<(Subscriber, Messages)> {
    let (mut subscriber, messages) = conn.subscriber().await?;
    for channel in channels {
        subscriber.subscribe(channel).await?;
    }
    Ok((subscriber, messages))
}

/// [`subscribe`] again after a pub/sub connection ended, every 100 ms doubling to 2 s until
/// Redis answers; `None` once `wanted` says nobody listens any more.
pub(crate) async fn resubscribe(
    conn: &RedisConn,
    channels: &[String],
    wanted: impl Fn() -> bool,
) -> Option<(Subscriber, Messages)> {
    tracing::warn!(?channels, "Redis subscription lost; subscribing again");
    metrics::counter!("ecto_redis_resubscribes_total").increment(1);
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        if !wanted() {
            return None;
        }
        match subscribe(conn, channels).await {
            Ok(subscribed) => {
                tracing::info!(?channels, "Redis subscription restored");
                return Some(subscribed);
            }
            Err(e) => tracing::debug!(error = %e, "Redis still unreachable"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(2));
    }
}

/// Where Redis is: one server, or the nodes of a cluster to discover it from.
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    Cluster(Vec<String>),
}

/// A connection to one Redis (reconnecting) or to a cluster (routing each command to the
/// shard of its keys): the adapters send commands through either alike. Commands of several
/// keys keep them in one slot with a hash tag (`{…}`).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// One multiplexed, reconnecting connection plus the key prefix of this deployment (tests give
/// each run its own prefix).
#[derive(Clone)]
pub struct RedisConn {
    /// The shared connection.
    manager: Conn,
    pub(crate) prefix: String,
    target: Target,
    near: Arc<Near>,
}

/// The connections of threads with a runtime of their own (see [`RedisConn::spread`]); `None`
/// while one is being opened.
#[derive(Default)]
struct Near {
    /// How many threads may have one (0 until [`RedisConn::spread`]).
    threads_max: AtomicUsize,
    threads: Mutex<Vec<(ThreadId, Option<Conn>)>>,
}

impl Near {
    fn lock(&self) -> MutexGuard<'_, Vec<(ThreadId, Option<Conn>)>> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new connection to `target`.
async fn open(target: &Target) -> CoreResult<Conn> {
    Ok(match target {
        Target::Cluster(nodes) => {
            Conn::Cluster(within(cluster_client(nodes, None)?.get_async_connection()).await?)
        }
        Target::Single(client) => {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(RECONNECT_RETRIES);
            Conn::Single(
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map_err(crate::redis_error)?,
            )
        }
    })
}

impl RedisConn {
    /// Connects to `url` (fails when Redis cannot be reached). With `cluster`, `url` is one or
    /// more nodes of a Redis Cluster, separated by commas, and the cluster is discovered from
    /// them.
    pub async fn connect(url: &str, prefix: &str, cluster: bool) -> CoreResult<Self> {
        let target = if cluster {
            let nodes: Vec<String> = url
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect();
            Target::Cluster(nodes)
        } else {
            Target::Single(redis::Client::open(url).map_err(crate::redis_error)?)
        };
        Ok(Self {
            manager: open(&target).await?,
            prefix: prefix.to_owned(),
            target,
            near: Default::default(),
        })
    }

    /// Gives each thread with a runtime of its own (an HTTP worker, the dispatcher) a
    /// connection of its own, which that thread drives: a command sent on the shared
    /// connection is handed to the thread that drives it, and its answer handed back, two
    /// cross-thread wakes per command. Threads of the shared runtime keep the shared one.
    /// At most `threads` threads get one; any further thread uses the shared connection.
    pub fn spread(&self, threads: usize) {
        self.near.threads_max.store(threads, Ordering::Relaxed);
    }

    /// The connection to send a command on (see [`RedisConn::spread`]): this thread's own,
    /// opened in the background on first use (the shared one meanwhile, or if it cannot be
    /// opened), or the shared one.
    pub(crate) fn near(&self) -> Conn {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let own_runtime =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread);
        let threads_max = self.near.threads_max.load(Ordering::Relaxed);
        if !own_runtime || threads_max == 0 {
            return self.manager.clone();
        }
        let me = std::thread::current().id();
        let mut threads = self.near.lock();
        match threads.iter().find(|(id, _)| *id == me) {
            Some((_, Some(conn))) => return conn.clone(),
            Some((_, None)) => return self.manager.clone(),
            None if threads.len() >= threads_max => return self.manager.clone(),
            None => threads.push((me, None)),
        }
        drop(threads);
        let (near, target) = (self.near.clone(), self.target.clone());
        // Spawned on this thread's runtime: the connection's driver is too.
        tokio::spawn(async move {
            let opened = open(&target).await;
            let mut threads = near.lock();
            let at = threads.iter().position(|(id, _)| *id == me);
            match (opened, at) {
                (Ok(conn), Some(at)) => threads[at].1 = Some(conn),
                (Err(e), Some(at)) => {
                    // Tried again on a later command.
                    threads.swap_remove(at);
                    tracing::warn!(error = %e, "cannot open this thread's Redis connection");
                }
                (_, None) => {}
            }
        });
        self.manager.clone()
    }

    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Whether this is a Redis Cluster (channels are sharded: `SPUBLISH`).
    pub(crate) fn cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The command that publishes on a channel a [`Subscriber`] of this Redis hears.
    pub(crate) fn publish_command(&self) -> &'static str {
        if self.cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Publishes `payload` on `channel` for this Redis's subscribers; the number that heard it.
    pub(crate) async fn publish(&self, channel: &str, payload: &str) -> CoreResult<i64> {
        let mut conn = self.near();
        redis::cmd(self.publish_command())
            .arg(channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)
    }

    /// A new pub/sub connection, subscribed to nothing yet.
    pub(crate) async fn subscriber(&self) -> CoreResult<(Subscriber, Messages)> {
        use futures_util::StreamExt;
        match &self.target {
            Target::Single(client) => {
                let (sink, stream) = within(client.get_async_pubsub()).await?.split();
                let messages = stream.filter_map(|msg| async move {
                    let payload = msg.get_payload::<String>().ok()?;
                    Some((msg.get_channel_name().to_owned(), payload))
                });
                Ok((Subscriber::Single(sink), Box::pin(messages)))
            }
            Target::Cluster(nodes) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
                let conn = within(cluster_client(nodes, Some(tx))?.get_async_connection()).await?;
                let messages = futures_util::stream::unfold(rx, |mut rx| async move {
                    loop {
                        let push = rx.recv().await?;
                        match push.kind {
                            redis::PushKind::SMessage | redis::PushKind::Message => {
                                let mut data = push.data.into_iter();
                                let (Some(channel), Some(payload)) = (data.next(), data.next())
                                else {
                                    continue;
                                };
                                let (Ok(channel), Ok(payload)) = (
                                    redis::from_redis_value::<String>(channel),
                                    redis::from_redis_value::<String>(payload),
                                ) else {
                                    continue;
                                };
                                return Some(((channel, payload), rx));
                            }
                            // A node's connection dropped: what it carried meanwhile is lost
                            // to this subscriber, so its messages end here.
                            redis::PushKind::Disconnection => return None,
                            _ => {}
                        }
                    }
                });
                Ok((Subscriber::Cluster(conn), Box::pin(messages)))
            }
        }
    }
}

/// A cluster client on `nodes` with the timeouts of [`RedisConn`]; with a push sender it
/// speaks RESP3 (pub/sub messages arrive there).
fn cluster_client(
    nodes: &[String],
    pushes: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> CoreResult<redis::cluster::ClusterClient> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(RECONNECT_RETRIES as u32);
    if let Some(pushes) = pushes {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes);
    }
    builder.build().map_err(crate::redis_error)
}

/// `/ready`'s check of Redis: one PING.
pub struct RedisHealth(pub RedisConn);

#[async_trait]
impl HealthCheck for RedisHealth {
    fn name(&self) -> &'static str {
        "redis"
    }
    async fn check(&self) -> CoreResult<()> {
        let mut conn = self.0.near();
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(CoreError::internal_msg(format!(
                "unexpected PING answer {pong}"
            )))
        }
    }
}
