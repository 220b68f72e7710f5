//! The shared file hub: folders, shared files and hub overrides. The channel files it lists
//! are attachments, read through [`crate::ports::AttachmentStore`].
//!
//! Every id is looked up within `server_id`: a row of another server is "not found". Every
//! mutating method writes its audit entry (when it takes one) in the same transaction.

use crate::model::{
    DeletedTree, FolderStats, ItemOverride, ItemType, NewAudit, SharedFileRecord, SharedFolder,
};
use crate::permissions::Override;
use crate::CoreResult;
use async_trait::async_trait;
use std::collections::HashMap;
use uuid::Uuid;

/// Why a shared file could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedFileRefusal {
    /// Its folder is no longer there.
    FolderGone,
    /// The server's shared files would exceed the quota.
    QuotaExceeded,
}

/// Folders, shared files and overrides of the hub.
#[async_trait]
pub trait HubStore: Send + Sync {
    /// Every folder of the server (for walking ancestors), ordered by name, then id.
    async fn folders(&self, server_id: Uuid) -> CoreResult<Vec<SharedFolder>>;
    /// The folder `id` of the server.
    async fn folder(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<SharedFolder>>;
    /// Counts, sizes and uploaders of the direct files of each of `folder_ids`; folders
    /// without files are absent.
    async fn folder_stats(
        &self,
        server_id: Uuid,
        folder_ids: &[Uuid],
    ) -> CoreResult<HashMap<Uuid, FolderStats>>;
    /// Inserts `folder`; `false` (nothing written) when its parent is not a folder of the
    /// server.
    async fn create_folder(&self, folder: SharedFolder) -> CoreResult<bool>;
    /// Renames the folder; `false` when it is not in the server.
    async fn rename_folder(
        &self,
        server_id: Uuid,
        id: Uuid,
        name: &str,
        audit: NewAudit,
    ) -> CoreResult<bool>;
    /// Deletes the folder, every folder below it, their files and the overrides of all of
    /// them, in one transaction; `None` when the folder is not in the server.
    async fn delete_folder(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<DeletedTree>>;

    /// Up to `limit` files of a folder (`None`: the root), newest id first, ids below `before`.
    async fn shared_files(
        &self,
        server_id: Uuid,
        folder_id: Option<Uuid>,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<SharedFileRecord>>;
    /// The shared file `id` of the server.
    async fn shared_file(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<SharedFileRecord>>;
    /// Records an uploaded file when its folder (if any) is still a folder of the server and
    /// the server's shared files plus this one stay within `max_total_bytes` — checked and
    /// written in one transaction.
    async fn insert_shared_file(
        &self,
        file: SharedFileRecord,
        max_total_bytes: i64,
    ) -> CoreResult<Result<(), SharedFileRefusal>>;
    /// Deletes the file and its overrides; the deleted row, or `None` when not in the server.
    async fn delete_shared_file(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<SharedFileRecord>>;
    /// The sum of the sizes of the server's shared files.
    async fn used_bytes(&self, server_id: Uuid) -> CoreResult<i64>;

    /// Every hub override of the server.
    async fn overrides(&self, server_id: Uuid) -> CoreResult<Vec<ItemOverride>>;
    /// Replaces the overrides of an item (a folder or shared file of the server) with
    /// `overrides`; `false` (nothing written) when the item is not in the server.
    async fn replace_overrides(
        &self,
        server_id: Uuid,
        item_type: ItemType,
        item_id: Uuid,
        overrides: Vec<(Uuid, Override)>,
        audit: NewAudit,
    ) -> CoreResult<bool>;
}
