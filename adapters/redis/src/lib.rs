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

/// A pub/sub connection subscribed to `channels`.
pub(crate) async fn subscribe(
    client: &redis::Client,
    channels: &[String],
) -> CoreResult<redis::aio::PubSub> {
    let subscribed = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channels).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, subscribed).await {
        Ok(result) => result.map_err(redis_error),
        Err(_) => Err(redis_error(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        )))),
    }
}

/// [`subscribe`] again after a pub/sub connection ended, every 100 ms doubling to 2 s until
/// Redis answers; `None` once `wanted` says nobody listens any more.
pub(crate) async fn resubscribe(
    client: &redis::Client,
    channels: &[String],
    wanted: impl Fn() -> bool,
) -> Option<redis::aio::PubSub> {
    tracing::warn!(?channels, "Redis subscription lost; subscribing again");
    metrics::counter!("ecto_redis_resubscribes_total").increment(1);
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        if !wanted() {
            return None;
        }
        match subscribe(client, channels).await {
            Ok(pubsub) => {
                tracing::info!(?channels, "Redis subscription restored");
                return Some(pubsub);
            }
            Err(e) => tracing::debug!(error = %e, "Redis still unreachable"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(2));
    }
}

/// One multiplexed, reconnecting connection plus the key prefix of this deployment (tests give
/// each run its own prefix).
#[derive(Clone)]
pub struct RedisConn {
    pub(crate) manager: ConnectionManager,
    pub(crate) prefix: String,
}

impl RedisConn {
    /// Connects to `url` (fails when Redis cannot be reached).
    pub async fn connect(url: &str, prefix: &str) -> CoreResult<Self> {
        let client = redis::Client::open(url).map_err(crate::redis_error)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(crate::redis_error)?;
        Ok(Self {
            manager,
            prefix: prefix.to_owned(),
        })
    }

    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

/// `/ready`'s check of Redis: one PING.
pub struct RedisHealth(pub RedisConn);

#[async_trait]
impl HealthCheck for RedisHealth {
    fn name(&self) -> &'static str {
        "redis"
    }
    async fn check(&self) -> CoreResult<()> {
        let mut conn = self.0.manager.clone();
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
