//! [`Cache`] on Redis strings with `SET ... PX`.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::Cache;
use ecto_core::{CoreError, CoreResult};
use redis::AsyncCommands;
use std::time::Duration;

/// Expiring values shared by every process.
pub struct RedisCache(pub RedisConn);

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> CoreResult<Option<String>> {
        let mut conn = self.0.manager.clone();
        conn.get(self.0.key(key)).await.map_err(CoreError::internal)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()> {
        let mut conn = self.0.manager.clone();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        conn.pset_ex::<_, _, ()>(self.0.key(key), value, ms)
            .await
            .map_err(CoreError::internal)
    }
}
