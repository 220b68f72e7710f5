//! [`RateLimiter`] in a mutex-guarded map of token buckets.
//!
//! A bucket is forgotten once it would be full again (a forgotten bucket and a full one behave
//! the same), so the map only holds keys used within their window. Idle buckets are swept at
//! most once a minute, on a check. A hard cap on the number of keys protects against a flood of
//! distinct keys inside one window: when it is reached, the buckets closest to full go first.

use async_trait::async_trait;
use ecto_core::ports::{RateDecision, RateLimiter};
use ecto_core::CoreResult;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often idle buckets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Longest span computed (absurd periods are clamped instead of overflowing).
const MAX_SPAN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn span(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_SPAN)
        .min(MAX_SPAN)
}

struct Bucket {
    /// Tokens left at `updated` (fractional: refill is continuous).
    tokens: f64,
    updated: Instant,
    /// When the bucket will be full again; from then on it can be forgotten.
    full_at: Instant,
}

struct State {
    buckets: HashMap<String, Bucket>,
    last_sweep: Instant,
}

/// Token buckets of this process.
pub struct MemoryRateLimiter {
    state: Mutex<State>,
    max_keys: usize,
}

impl MemoryRateLimiter {
    /// A limiter holding at most `max_keys` buckets at once.
    pub fn new(max_keys: usize) -> Self {
        Self {
            state: Mutex::new(State {
                buckets: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            max_keys: max_keys.max(1),
        }
    }

    /// The number of buckets held (for tests of the purge).
    pub fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every idle bucket now (the periodic sweep, on demand).
    pub fn purge_idle(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        state.buckets.retain(|_, b| b.full_at > now);
        state.last_sweep = now;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new(100_000)
    }
}

/// Makes room for one more bucket: idle ones first, then the tenth closest to full.
fn make_room(buckets: &mut HashMap<String, Bucket>, max_keys: usize, now: Instant) {
    buckets.retain(|_, b| b.full_at > now);
    if buckets.len() < max_keys {
        return;
    }
    let mut full_ats: Vec<Instant> = buckets.values().map(|b| b.full_at).collect();
    let drop = (full_ats.len() / 10).max(1);
    let (_, cut, _) = full_ats.select_nth_unstable(drop - 1);
    let cut = *cut;
    buckets.retain(|_, b| b.full_at > cut);
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(
        &self,
        key: &str,
        capacity: u32,
        refill_per: Duration,
    ) -> CoreResult<RateDecision> {
        if capacity == 0 || refill_per.is_zero() {
            return Ok(RateDecision::Allowed);
        }
        let now = Instant::now();
        let cap = f64::from(capacity);
        // Seconds per token.
        let per_token = refill_per.as_secs_f64() / cap;
        let mut state = self.lock();
        if now.duration_since(state.last_sweep) >= SWEEP_EVERY {
            state.buckets.retain(|_, b| b.full_at > now);
            state.last_sweep = now;
        }
        let tokens = match state.buckets.get(key) {
            Some(b) => {
                let elapsed = now.duration_since(b.updated).as_secs_f64();
                (b.tokens + elapsed / per_token).min(cap)
            }
            None => {
                if state.buckets.len() >= self.max_keys {
                    make_room(&mut state.buckets, self.max_keys, now);
                }
                cap
            }
        };
        let (tokens, decision) = if tokens >= 1.0 {
            (tokens - 1.0, RateDecision::Allowed)
        } else {
            let wait = span((1.0 - tokens) * per_token);
            // Whole milliseconds, never zero.
            let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
            let retry_after = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
            (tokens, RateDecision::Limited { retry_after })
        };
        let full_at = now + span((cap - tokens) * per_token);
        state.buckets.insert(
            key.to_owned(),
            Bucket {
                tokens,
                updated: now,
                full_at,
            },
        );
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_buckets_are_forgotten_and_the_key_cap_holds() {
        let limiter = MemoryRateLimiter::new(50);
        for i in 0..200 {
            let d = limiter
                .check(&format!("k{i}"), 2, Duration::from_millis(50))
                .await
                .expect("check");
            assert!(d.is_allowed());
            assert!(limiter.len() <= 50, "never more than the cap");
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        limiter.purge_idle();
        assert!(limiter.is_empty(), "every bucket is full again, so gone");
    }

    #[tokio::test]
    async fn a_refused_bucket_is_kept_until_it_refills() {
        let limiter = MemoryRateLimiter::default();
        let per = Duration::from_millis(200);
        assert!(limiter
            .check("k", 1, per)
            .await
            .expect("check")
            .is_allowed());
        assert!(!limiter
            .check("k", 1, per)
            .await
            .expect("check")
            .is_allowed());
        limiter.purge_idle();
        assert_eq!(limiter.len(), 1, "a bucket being refilled stays");
        assert!(
            !limiter
                .check("k", 1, per)
                .await
                .expect("check")
                .is_allowed(),
            "the sweep did not reset the limit"
        );
    }
}
