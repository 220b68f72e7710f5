//! Token-bucket rate limiting (DECISIONS §3.19), in process memory (self-hosted) or in Redis
//! (shared by every process of a managed deployment).

use crate::CoreResult;
use async_trait::async_trait;
use std::time::Duration;

/// The answer of one [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// A token was taken; go ahead.
    Allowed,
    /// The bucket is empty; nothing was taken. The next token is due in `retry_after`
    /// (greater than zero, at most the time one token takes to refill).
    Limited { retry_after: Duration },
}

impl RateDecision {
    pub fn is_allowed(self) -> bool {
        self == Self::Allowed
    }
}

/// Token buckets by key.
///
/// A bucket holds up to `capacity` tokens and refills continuously at `capacity` tokens per
/// `refill_per` (one token every `refill_per / capacity`). An unknown key is a full bucket.
/// Each check that is allowed takes one token.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one token from the bucket `key`, refilled as described above.
    ///
    /// The contract every adapter keeps:
    /// - a full bucket allows exactly `capacity` checks in a burst; the next one is `Limited`;
    /// - `retry_after` is the time until the next token, so it is greater than zero and at most
    ///   `refill_per / capacity` (rounded up to the millisecond);
    /// - a refused check takes nothing, and after waiting `retry_after` the next check is
    ///   allowed; after `refill_per` without checks the bucket is full again;
    /// - keys are independent, and the same key must always be checked with the same
    ///   `capacity` and `refill_per`;
    /// - check-and-take is atomic: concurrent checks (from any process sharing the adapter's
    ///   storage) never take more than the bucket holds;
    /// - `capacity == 0` or a zero `refill_per` means "no limit": always `Allowed`, nothing is
    ///   stored;
    /// - an idle bucket (one that would be full by now) may be forgotten, so storage stays
    ///   bounded by the keys active within their window.
    async fn check(
        &self,
        key: &str,
        capacity: u32,
        refill_per: Duration,
    ) -> CoreResult<RateDecision>;
}

/// One limit: `capacity` calls, refilled evenly over `per`. A capacity of 0 disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub capacity: u32,
    pub per: Duration,
}

impl Limit {
    pub const fn new(capacity: u32, per: Duration) -> Self {
        Self { capacity, per }
    }

    /// A limit that never refuses.
    pub const OFF: Limit = Limit::new(0, Duration::ZERO);

    pub fn is_off(self) -> bool {
        self.capacity == 0 || self.per.is_zero()
    }
}

/// The configured limits (`rate_limit_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Every tRPC call of an authenticated caller, per user and server.
    pub user: Limit,
    /// Every tRPC call without an authenticated caller, per client IP.
    pub ip: Limit,
    /// `server.join` and `server.refreshToken`, per client IP, on top of the above.
    pub join: Limit,
    /// `POST /webhooks/{id}/{token}` with the right token, per webhook id.
    pub webhook: Limit,
    /// Webhook calls with an unknown id or a wrong token, per client address (so guessing
    /// cannot starve the real integration's bucket).
    pub webhook_failures: Limit,
    /// Failed logins of one account from one client address.
    pub login_address: Limit,
    /// Failed logins of one account from addresses that already failed on it.
    pub login_account: Limit,
    /// Whether the client IP is taken from `X-Forwarded-For` (only behind proxies that append
    /// to it) instead of the connection's peer address.
    pub trust_forwarded_for: bool,
    /// How many proxies append to `X-Forwarded-For`: the client is the address this many
    /// entries from the right (1: the rightmost, written by the closest proxy).
    pub forwarded_for_hops: u8,
}

impl RateLimits {
    /// No limit at all.
    pub const OFF: RateLimits = RateLimits {
        user: Limit::OFF,
        ip: Limit::OFF,
        join: Limit::OFF,
        webhook: Limit::OFF,
        webhook_failures: Limit::OFF,
        login_address: Limit::OFF,
        login_account: Limit::OFF,
        trust_forwarded_for: false,
        forwarded_for_hops: 1,
    };
}
