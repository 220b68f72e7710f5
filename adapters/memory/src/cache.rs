//! [`Cache`] in process memory: moka's concurrent cache, bounded by entry count and evicting
//! by frequency (TinyLFU), so a flood of distinct keys pushes out the rarely used ones and
//! never the whole cache; each value expires after its own ttl.

use async_trait::async_trait;
use ecto_core::ports::{Cache, Fetch};
use ecto_core::CoreResult;
use moka::future::Cache as Moka;
use moka::Expiry;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A value and how long it is kept.
#[derive(Clone)]
struct Entry {
    value: Arc<str>,
    ttl: Duration,
}

/// Each entry expires after its own ttl, counted from its last write.
struct OwnTtl;

impl Expiry<String, Entry> for OwnTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// Expiring in-memory values, at most `capacity` of them.
pub struct MemoryCache {
    entries: Moka<String, Entry>,
}

impl MemoryCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Moka::builder()
                .max_capacity(capacity.max(1) as u64)
                .expire_after(OwnTtl)
                .build(),
        }
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> CoreResult<Option<String>> {
        Ok(self.entries.get(key).await.map(|e| e.value.to_string()))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()> {
        let entry = Entry {
            value: value.into(),
            ttl,
        };
        self.entries.insert(key.to_owned(), entry).await;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<bool> {
        let entry = Entry {
            value: value.into(),
            ttl,
        };
        let stored = self
            .entries
            .entry(key.to_owned())
            .or_insert_with(async move { entry })
            .await;
        Ok(stored.is_fresh())
    }

    async fn remove(&self, key: &str) -> CoreResult<()> {
        self.entries.invalidate(key).await;
        Ok(())
    }

    async fn get_or_fetch(&self, key: &str, ttl: Duration, fetch: Fetch<'_>) -> CoreResult<String> {
        let made = async move {
            let value = fetch.await?;
            Ok::<_, ecto_core::CoreError>(Entry {
                value: value.into(),
                ttl,
            })
        };
        let entry = self.entries.try_get_with(key.to_owned(), made).await?;
        Ok(entry.value.to_string())
    }
}
