//! Full-text search over a server's messages.

use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// A search, already narrowed to what the caller may see.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub server_id: Uuid,
    /// The words to find.
    pub text: String,
    /// Channels the caller can read; messages elsewhere are never returned.
    pub readable_channels: Vec<Uuid>,
    /// The caller: their own DM conversations of this server are searched too.
    pub user_id: Uuid,
    pub channel_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
    pub before: Option<Uuid>,
    pub after: Option<Uuid>,
    pub has_attachment: bool,
    pub has_link: bool,
    pub limit: i64,
}

/// Ranked full-text search (PostgreSQL tsvector, SQLite FTS5).
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Ids of non-deleted matching messages, best match first (ties: newest first), at most
    /// `limit`. Every word must match.
    async fn search(&self, query: SearchQuery) -> CoreResult<Vec<Uuid>>;
}
