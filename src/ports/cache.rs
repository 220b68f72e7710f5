//! A small expiring key-value cache (memory in self-hosted, Redis in managed).

use crate::CoreResult;
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What [`Cache::get_or_fetch`] runs on a miss: makes the value to keep.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = CoreResult<String>> + Send + 'a>>;

/// Expiring string values shared by every process of a deployment.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value under `key`, or `None` when absent or expired.
    async fn get(&self, key: &str) -> CoreResult<Option<String>>;
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()>;
    /// Stores `value` under `key` for `ttl` only when the key is absent (or expired), as one
    /// atomic step across the deployment: `true` when this call stored it, `false` when a
    /// value was there (it is left as it was). Of concurrent calls for one key, one wins.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<bool>;
    /// Removes `key` (nothing happens when it is absent): the next [`Cache::set_if_absent`]
    /// of it stores.
    async fn remove(&self, key: &str) -> CoreResult<()>;
    /// The value under `key`; on a miss, the one `fetch` makes, kept for `ttl` (an error is
    /// returned and nothing kept). Concurrent misses of one key in a process share one
    /// `fetch`: a burst of requests for the same link or token makes one outbound call.
    async fn get_or_fetch(&self, key: &str, ttl: Duration, fetch: Fetch<'_>) -> CoreResult<String>;
}
