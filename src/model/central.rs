//! Calls to ecto-central queued in the central outbox (reference §2.6, "Outbound calls to
//! central").

use uuid::Uuid;

/// A call to ecto-central, queued in the same transaction as the change that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSync {
    /// What the call is about: `metadata`, `discovery`, an invite code or a post id.
    pub subject: String,
    /// Central's path, such as `/api/invite-register`.
    pub path: &'static str,
    /// The JSON body, exactly as it is signed and sent.
    pub body: String,
}

/// A call waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedSync {
    pub server_id: Uuid,
    /// Its place in the server's queue: calls of one server go out in this order.
    pub seq: i64,
    pub subject: String,
    pub path: String,
    pub body: String,
    /// Failed attempts so far.
    pub attempts: i32,
}

/// Makes the call a change queues from what the change wrote (read inside its transaction),
/// or `None` when the change calls for none.
pub type SyncWith<'a, T> = Option<&'a (dyn Fn(&T) -> Option<NewSync> + Send + Sync)>;
