//! A small expiring key-value cache (memory in self-hosted, Redis in managed).

use crate::CoreResult;
use async_trait::async_trait;
use std::time::Duration;

/// Expiring string values shared by every process of a deployment.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value under `key`, or `None` when absent or expired.
    async fn get(&self, key: &str) -> CoreResult<Option<String>>;
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()>;
}
