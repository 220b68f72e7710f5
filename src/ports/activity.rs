//! The activity feed: each member's items within one server (DECISIONS §3.3).

use crate::model::{ActivityRecord, ActivityType};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// A page of one user's activity in one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityQuery {
    pub server_id: Uuid,
    pub user_id: Uuid,
    /// Items with an id below this one.
    pub before: Option<Uuid>,
    pub limit: i64,
    pub kind: Option<ActivityType>,
}

/// Activity items. Items are written by the stores whose transactions cause them (a message,
/// a reaction, a DM); this port reads and marks them.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// The query's items, newest (highest id) first, at most `limit`.
    async fn list(&self, query: ActivityQuery) -> CoreResult<Vec<ActivityRecord>>;
    /// Marks those of `ids` that are the user's items in the server as read; returns how many
    /// were unread.
    async fn mark_read(&self, server_id: Uuid, user_id: Uuid, ids: &[Uuid]) -> CoreResult<u64>;
    /// Marks every item of the user in the server as read; returns how many were unread.
    async fn mark_all_read(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64>;
    /// How many of the user's items in the server are unread.
    async fn unread_count(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<i64>;
    /// The user's unread items in the server, counted per item type (`mention`, `reply`,
    /// `reaction`, `server_dm`); types without unread items are absent.
    async fn unread_by_type(
        &self,
        server_id: Uuid,
        user_id: Uuid,
    ) -> CoreResult<Vec<(String, i64)>>;
}
