//! [`Cache`] in a mutex-guarded map, bounded so a flood of distinct keys cannot grow it forever.

use async_trait::async_trait;
use ecto_core::ports::Cache;
use ecto_core::CoreResult;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Expiring in-memory values; when full, expired entries are dropped first, then the map is
/// cleared (a cache miss is always safe).
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
    capacity: usize,
}

impl MemoryCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
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
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((value, until)) if *until > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                map.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CoreResult<()> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(key) {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (value.to_owned(), Instant::now() + ttl));
        Ok(())
    }
}
