//! Uploaded files' rows: attachments (channel and DM uploads), including the channel files
//! the shared file hub lists and deletes.

use crate::model::{ChannelFileDeletion, ChannelFileRecord, ChannelUploads, NewAudit, Timestamp};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// One `attachments` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRecord {
    pub id: Uuid,
    pub server_id: Uuid,
    /// `None` until `messages.send` (or a DM send) links the upload.
    pub message_id: Option<Uuid>,
    /// The channel it was uploaded to; for DM uploads `None` until linked, then the
    /// conversation's id.
    pub channel_id: Option<Uuid>,
    pub uploader_id: Uuid,
    /// The display name (sanitized, at most 255 characters).
    pub filename: String,
    /// The unsigned URL, `/files/{storage_key}`.
    pub url: String,
    /// The blob's key; empty for the metadata-only rows of `files.upload`.
    pub storage_key: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: Timestamp,
}

/// Attachment rows of uploads, and those of channel messages as the hub sees them.
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// Inserts `a` (unlinked: `message_id` is `None`).
    async fn insert(&self, a: &AttachmentRecord) -> CoreResult<()>;
    /// The attachment `id` if it belongs to `server_id`.
    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<AttachmentRecord>>;
    /// Bytes the server's non-image files take, for `STORAGE_QUOTA_BYTES`: every attachment
    /// (linked or not) and every shared file whose content type is not one of
    /// `image_types`.
    async fn non_image_usage(&self, server_id: Uuid, image_types: &[&str]) -> CoreResult<u64>;

    /// Up to `limit` attachments of non-deleted messages in `channel_ids` (channels of the
    /// server), newest id first, ids below `before`.
    async fn channel_files(
        &self,
        server_id: Uuid,
        channel_ids: &[Uuid],
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<ChannelFileRecord>>;
    /// The attachment `id` if it belongs to a non-deleted message in a channel of the server.
    async fn channel_file(
        &self,
        server_id: Uuid,
        id: Uuid,
    ) -> CoreResult<Option<ChannelFileRecord>>;
    /// Per channel of the server with attachments on non-deleted messages: the newest
    /// upload and the total size.
    async fn channel_uploads(&self, server_id: Uuid) -> CoreResult<Vec<ChannelUploads>>;
    /// Deletes an attachment of a non-deleted message in a channel of the server; when the
    /// message is left with no text and no attachment it is soft-deleted too. One
    /// transaction with `audit`. `None` when there is no such attachment.
    async fn delete_channel_file(
        &self,
        server_id: Uuid,
        attachment_id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<ChannelFileDeletion>>;
}
