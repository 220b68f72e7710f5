//! Where a gateway session can be resumed from, shared by every process of a deployment.
//!
//! A session's resume buffer is two things: the deployment's event log (see
//! [`crate::ports::EventBus::since`]) and the session's checkpoints kept here. A checkpoint
//! says "after the event at `position`, this session had received `seq` events and was
//! subscribed to these channels"; replaying the log from there with the session's filter
//! gives back exactly the events it was sent after that point, with their sequence numbers.

use crate::CoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How many checkpoints a session keeps (newest first).
pub const CHECKPOINTS_KEPT: usize = 16;

/// [`Checkpoint::log`] of a position in the server's own log.
pub const PER_SERVER_LOG: u8 = 1;

/// One resume point of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub session_id: Uuid,
    /// Which attachment of the session wrote it: a resume on another socket or process claims
    /// the session with a new incarnation, and older incarnations may no longer write.
    pub incarnation: Uuid,
    pub server_id: Uuid,
    pub user_id: Uuid,
    /// Events the session had been sent.
    pub seq: u64,
    /// The last event position (in the server's log) those `seq` events account for.
    pub position: u64,
    /// Which numbering `position` is in: [`PER_SERVER_LOG`] for the server's own log. A
    /// checkpoint written when one log numbered every server's events (0) is not replayed.
    #[serde(default)]
    pub log: u8,
    pub subscriptions: Vec<Uuid>,
    /// Taken when the session's socket went away (or its process shut down): the session is
    /// waiting to be resumed. A client that resumes with only `resume_seq` finds it by this.
    #[serde(default)]
    pub detached: bool,
}

/// Checkpoints of gateway sessions; each session's expire a fixed time after its last save.
#[async_trait]
pub trait SessionBuffer: Send + Sync {
    /// Makes `incarnation` the only one allowed to save checkpoints of the session.
    async fn claim(&self, session_id: Uuid, incarnation: Uuid) -> CoreResult<()>;
    /// Saves `checkpoint` as the session's newest, unless another incarnation claimed the
    /// session (then `false`, and nothing is written). A checkpoint with the same `seq` as the
    /// newest one replaces it; at most [`CHECKPOINTS_KEPT`] are kept. The session's first save
    /// claims it.
    async fn save(&self, checkpoint: &Checkpoint) -> CoreResult<bool>;
    /// The session's checkpoints, newest first (empty when unknown or expired).
    async fn load(&self, session_id: Uuid) -> CoreResult<Vec<Checkpoint>>;
    /// The sessions of `user_id` in `server_id` whose newest saved checkpoint is `detached`
    /// (their socket went away and nobody resumed them since), most recently detached first,
    /// each with its checkpoints newest first. Expired and forgotten sessions are left out.
    async fn detached(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Vec<Vec<Checkpoint>>>;
    /// Forgets the session (it was closed on purpose and may not be resumed).
    async fn forget(&self, session_id: Uuid) -> CoreResult<()>;
}
