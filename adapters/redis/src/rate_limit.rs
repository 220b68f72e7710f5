//! [`RateLimiter`] on Redis: one hash per bucket (`tokens`, `ts`), read, refilled and taken
//! from by one Lua script, so concurrent checks from every process are atomic. The time is
//! Redis's own (`TIME`), so the processes' clocks do not matter. Each bucket expires when it
//! would be full again, which is the same as being absent.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{RateDecision, RateLimiter};
use ecto_core::CoreResult;
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

/// KEYS[1]: the bucket; ARGV[1]: capacity; ARGV[2]: refill period in milliseconds.
/// Returns `{allowed (0|1), retry_after_ms}`.
const SCRIPT: &str = r"
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * capacity / window)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.max(1, math.ceil((1 - tokens) * window / capacity))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) * window / capacity)))
return {allowed, retry}
";

static BUCKET: LazyLock<Script> = LazyLock::new(|| Script::new(SCRIPT));

/// Token buckets shared by every process, under `<prefix><key>`.
pub struct RedisRateLimiter(pub RedisConn);

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        key: &str,
        capacity: u32,
        refill_per: Duration,
    ) -> CoreResult<RateDecision> {
        if capacity == 0 || refill_per.is_zero() {
            return Ok(RateDecision::Allowed);
        }
        let window_ms = u64::try_from(refill_per.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut conn = self.0.near();
        let (allowed, retry_ms): (i64, i64) = BUCKET
            .key(self.0.key(key))
            .arg(capacity)
            .arg(window_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis_error)?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: Duration::from_millis(u64::try_from(retry_ms).unwrap_or(1).max(1)),
            }
        })
    }
}
