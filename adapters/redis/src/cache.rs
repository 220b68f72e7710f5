//! [`Cache`] on Redis strings with `SET ... PX` (`NX` for [`Cache::set_if_absent`]), with a
//! one-second near cache in each process that coalesces concurrent misses of one key into one
//! Redis read and one fetch.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Cache, Fetch};
use ecto_core::{CoreError, CoreResult};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;

/// How long a value read through [`Cache::get_or_fetch`] is kept in the process: long enough
/// to share one fetch among a burst, short enough that a change made elsewhere is seen.
const NEAR_TTL: Duration = Duration::from_secs(1);
/// Keys kept in the near cache at most.
const NEAR_CAPACITY: u64 = 10_000;

/// Expiring values shared by every process.
pub struct RedisCache {
    conn: RedisConn,
    near: moka::future::Cache<String, Arc<str>>,
}

impl RedisCache {
    pub fn new(conn: RedisConn) -> Self {
        Self {
            conn,
            near: moka::future::Cache::builder()
                .max_capacity(NEAR_CAPACITY)
                .time_to_live(NEAR_TTL)
                .build(),
        }
    }

    /// Writes `value` under `key` in Redis for `ttl`.
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()> {
        let mut conn = self.conn.near();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        conn.pset_ex::<_, _, ()>(self.conn.key(key), value, ms)
            .await
            .map_err(crate::redis_error)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> CoreResult<Option<String>> {
        let mut conn = self.conn.near();
        conn.get(self.conn.key(key))
            .await
            .map_err(crate::redis_error)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()> {
        self.put(key, value, ttl).await?;
        self.near.invalidate(key).await;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<bool> {
        let mut conn = self.conn.near();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let stored: Option<String> = redis::cmd("SET")
            .arg(self.conn.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        if stored.is_some() {
            self.near.invalidate(key).await;
        }
        Ok(stored.is_some())
    }

    async fn remove(&self, key: &str) -> CoreResult<()> {
        let mut conn = self.conn.near();
        conn.del::<_, ()>(self.conn.key(key))
            .await
            .map_err(crate::redis_error)?;
        self.near.invalidate(key).await;
        Ok(())
    }

    async fn get_or_fetch(&self, key: &str, ttl: Duration, fetch: Fetch<'_>) -> CoreResult<String> {
        let made = async move {
            if let Some(hit) = self.get(key).await? {
                return Ok::<_, CoreError>(Arc::from(hit));
            }
            let value = fetch.await?;
            self.put(key, &value, ttl).await?;
            Ok(Arc::from(value))
        };
        let value = self.near.try_get_with(key.to_owned(), made).await?;
        Ok(value.to_string())
    }
}
