//! ecto-central synchronisation: the durable outbox of calls (written by the stores in the
//! transaction of each change, see [`crate::model::NewSync`]) and the signed HTTP client that
//! delivers them (reference §2.6).

use crate::model::QueuedSync;
use crate::CoreResult;
use async_trait::async_trait;
use std::time::Duration;
use uuid::Uuid;

/// How one call to central went.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    /// A 2xx answer, with its JSON body (`null` when it had none).
    Answered(serde_json::Value),
    /// A 4xx answer other than 408/429: central will not take this call, sending it again
    /// would change nothing.
    Refused(String),
    /// No answer, a timeout, 408, 429 or 5xx: to be tried again later.
    Failed(String),
}

/// Sends signed calls to ecto-central (`X-Timestamp`, `X-Signature` = hex HMAC-SHA256 of
/// `"{timestamp}.{body}"` with `CENTRAL_SYNC_KEY`).
#[async_trait]
pub trait CentralClient: Send + Sync {
    /// POSTs `body` (JSON text, sent as it is) to `{CENTRAL_URL}{path}`.
    async fn call(&self, path: &str, body: &str) -> SyncOutcome;
}

/// The durable queue of calls to ecto-central, per server, in commit order.
#[async_trait]
pub trait CentralOutbox: Send + Sync {
    /// Servers whose first queued call may be tried at `now_ms` (unix milliseconds), at most
    /// `limit` of them.
    async fn due_servers(&self, now_ms: i64, limit: i64) -> CoreResult<Vec<Uuid>>;
    /// Takes (or renews) the right to deliver `server_id`'s calls for `owner` until
    /// `until_ms`: `false` when another owner holds it and it has not run out. Of concurrent
    /// takers across the deployment, one gets it.
    async fn lease(
        &self,
        server_id: Uuid,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> CoreResult<bool>;
    /// Gives the lease back (only when `owner` holds it).
    async fn release(&self, server_id: Uuid, owner: &str) -> CoreResult<()>;
    /// The server's first queued call, if any.
    async fn head(&self, server_id: Uuid) -> CoreResult<Option<QueuedSync>>;
    /// Removes a call that went out (or that central refused for good), provided `owner`
    /// still holds the server's lease; `false` (nothing removed) otherwise.
    async fn remove(&self, server_id: Uuid, seq: i64, owner: &str) -> CoreResult<bool>;
    /// Notes a failed attempt: one more attempt, the next not before `next_ms`.
    async fn retry_later(
        &self,
        server_id: Uuid,
        seq: i64,
        next_ms: i64,
        error: &str,
    ) -> CoreResult<()>;
    /// The subjects of the server's queued calls (each once).
    async fn pending(&self, server_id: Uuid) -> CoreResult<Vec<String>>;
    /// Asks the delivery loop of this process to look at the queue now.
    fn wake(&self);
    /// Waits until [`CentralOutbox::wake`] is called or `max` has passed (the delivery loop's
    /// pause between passes).
    async fn idle(&self, max: Duration);
    /// Wakes the delivery loop, then waits until no call about `subject` of the server is
    /// queued, or a call of the server has failed an attempt (it waits for its backoff, and
    /// the later ones behind it), or `within` has passed: `true` when none is left (it went out, on any instance).
    async fn settle(&self, server_id: Uuid, subject: &str, within: Duration) -> CoreResult<bool>;
}
