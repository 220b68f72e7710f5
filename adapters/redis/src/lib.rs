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

/// A failed Redis call, counted in `ecto_redis_errors_total`, as an internal error.
pub(crate) fn redis_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CoreError {
    metrics::counter!("ecto_redis_errors_total").increment(1);
    CoreError::internal(e)
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
        let manager = ConnectionManager::new(client)
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
