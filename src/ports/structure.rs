//! Channels, categories, their permission overrides and the audit log.
//!
//! Every mutating method takes the audit entry that records it and writes both in one
//! transaction. Ids are always looked up within `server_id`: a row of another server is
//! "not found".

use crate::model::{
    AuditEntry, Category, Channel, ChannelType, NewAudit, PermissionData, StoredOverride,
};
use crate::permissions::Override;
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// A channel to create; the store gives it position = (highest in the server) + 1.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub id: Uuid,
    pub server_id: Uuid,
    pub category_id: Option<Uuid>,
    pub name: String,
    pub channel_type: ChannelType,
    pub topic: Option<String>,
    pub slowmode_seconds: i32,
    pub nsfw: bool,
}

/// Changes to a channel; `None` leaves a field as it is. `category_id: Some(None)` moves the
/// channel out of its category.
#[derive(Debug, Clone, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub topic: Option<Option<String>>,
    pub category_id: Option<Option<Uuid>>,
    pub slowmode_seconds: Option<i32>,
    pub nsfw: Option<bool>,
}

/// One entry of a channel reorder.
#[derive(Debug, Clone, Copy)]
pub struct ChannelMove {
    pub channel_id: Uuid,
    pub position: i32,
    /// `None`: unchanged; `Some(None)`: uncategorized.
    pub category_id: Option<Option<Uuid>>,
}

/// Filters of `auditlog.list`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub before: Option<Uuid>,
    pub limit: i64,
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
}

/// Channels, categories and overrides of servers.
#[async_trait]
pub trait StructureStore: Send + Sync {
    /// The server's roles (position descending) and every channel and category override.
    async fn permission_data(&self, server_id: Uuid) -> CoreResult<PermissionData>;
    /// The server's channels ordered by position, then id.
    async fn channels(&self, server_id: Uuid) -> CoreResult<Vec<Channel>>;
    /// The channel `id` of `server_id`, or `None` (also when it belongs to another server).
    async fn channel(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Channel>>;
    /// The server's categories ordered by position, then id.
    async fn categories(&self, server_id: Uuid) -> CoreResult<Vec<Category>>;
    /// The category `id` of `server_id`, or `None`.
    async fn category(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Category>>;

    /// Creates a channel with its overrides (and, for a page channel, its empty page at
    /// version 1).
    async fn create_channel(
        &self,
        new: NewChannel,
        overrides: Vec<Override>,
        audit: NewAudit,
    ) -> CoreResult<Channel>;
    /// Applies `patch`; `overrides: Some` replaces all of the channel's overrides. `None` when
    /// the channel is not in the server (nothing written).
    async fn update_channel(
        &self,
        server_id: Uuid,
        id: Uuid,
        patch: ChannelPatch,
        overrides: Option<Vec<Override>>,
        audit: NewAudit,
    ) -> CoreResult<Option<Channel>>;
    /// Deletes the channel (and clears the server's default channel when it was this one);
    /// `false` when it is not in the server.
    async fn delete_channel(&self, server_id: Uuid, id: Uuid, audit: NewAudit) -> CoreResult<bool>;
    /// Applies every move, or none: `false` (nothing written) when a channel or category is not
    /// in the server.
    async fn reorder_channels(
        &self,
        server_id: Uuid,
        moves: Vec<ChannelMove>,
        audit: NewAudit,
    ) -> CoreResult<bool>;
    /// The overrides of a channel of the server (empty for an unknown channel).
    async fn channel_overrides(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
    ) -> CoreResult<Vec<StoredOverride>>;

    /// Creates a category at position = (highest) + 1.
    async fn create_category(
        &self,
        server_id: Uuid,
        id: Uuid,
        name: &str,
        audit: NewAudit,
    ) -> CoreResult<Category>;
    /// Renames (when `name` is given) and replaces overrides (when given); `None` when the
    /// category is not in the server.
    async fn update_category(
        &self,
        server_id: Uuid,
        id: Uuid,
        name: Option<String>,
        overrides: Option<Vec<Override>>,
        audit: NewAudit,
    ) -> CoreResult<Option<Category>>;
    /// Deletes the category; its channels become uncategorized. `false` when not in the server.
    async fn delete_category(&self, server_id: Uuid, id: Uuid, audit: NewAudit)
        -> CoreResult<bool>;
    /// Sets every position, or none (`false` when a category is not in the server).
    async fn reorder_categories(
        &self,
        server_id: Uuid,
        moves: Vec<(Uuid, i32)>,
        audit: NewAudit,
    ) -> CoreResult<bool>;
    /// The overrides of a category of the server.
    async fn category_overrides(
        &self,
        server_id: Uuid,
        category_id: Uuid,
    ) -> CoreResult<Vec<StoredOverride>>;

    /// The server's audit log, newest first, with the actor's display name.
    async fn audit_log(&self, server_id: Uuid, query: AuditQuery) -> CoreResult<Vec<AuditEntry>>;
}
