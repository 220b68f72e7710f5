//! The `hubFiles` router: the shared file hub.

use crate::trpc::{Access, Registry};
use crate::validate::{invalid, nullable, range, Id, NoInput, Optional, Validate};
use crate::ApiError;
use ecto_core::model::{check_item_name, ItemType};
use ecto_core::permissions::{Override, TargetType};
use ecto_core::usecases::hub;
use serde::Deserialize;
use uuid::Uuid;

/// Folder names: 1–255 characters, no path separators or control characters.
const NAME_MAX: usize = 255;
/// Page sizes: 1–100, 50 by default.
const DEFAULT_LIMIT: usize = 50;

fn name(field: &str, value: &str) -> Result<(), ApiError> {
    check_item_name(field, value, NAME_MAX).map_err(invalid)
}

fn limit(value: Option<i64>) -> Result<(), ApiError> {
    value.map_or(Ok(()), |l| range("limit", l, 1, 100))
}

fn page(value: Option<i64>) -> usize {
    value.map_or(DEFAULT_LIMIT, |l| l as usize)
}

#[derive(Deserialize)]
struct ListFolders {
    #[serde(deserialize_with = "nullable")]
    parent_id: Option<Id>,
    limit: Option<i64>,
}
impl Validate for ListFolders {
    fn validate(&self) -> Result<(), ApiError> {
        limit(self.limit)
    }
}

#[derive(Deserialize)]
struct CreateFolder {
    name: String,
    #[serde(deserialize_with = "nullable")]
    parent_id: Option<Id>,
}
impl Validate for CreateFolder {
    fn validate(&self) -> Result<(), ApiError> {
        name("name", &self.name)
    }
}

#[derive(Deserialize)]
struct RenameFolder {
    folder_id: Id,
    name: String,
}
impl Validate for RenameFolder {
    fn validate(&self) -> Result<(), ApiError> {
        name("name", &self.name)
    }
}

#[derive(Deserialize)]
struct FolderId {
    folder_id: Id,
}
impl Validate for FolderId {}

#[derive(Deserialize)]
struct ListSharedFiles {
    #[serde(deserialize_with = "nullable")]
    folder_id: Option<Id>,
    cursor: Option<Id>,
    limit: Option<i64>,
}
impl Validate for ListSharedFiles {
    fn validate(&self) -> Result<(), ApiError> {
        limit(self.limit)
    }
}

#[derive(Deserialize)]
struct FileId {
    file_id: Id,
}
impl Validate for FileId {}

#[derive(Deserialize, Default)]
struct ListChannelFiles {
    channel_id: Option<Id>,
    cursor: Option<Id>,
    limit: Option<i64>,
}
impl Validate for ListChannelFiles {
    fn validate(&self) -> Result<(), ApiError> {
        limit(self.limit)
    }
}

#[derive(Deserialize)]
struct AttachmentId {
    attachment_id: Id,
}
impl Validate for AttachmentId {}

#[derive(Deserialize)]
struct Item {
    item_type: ItemType,
    item_id: Id,
}
impl Validate for Item {}

#[derive(Deserialize)]
struct OverrideWire {
    target_type: String,
    target_id: Id,
    allow: u64,
    deny: u64,
}

#[derive(Deserialize)]
struct UpdateItemOverrides {
    item_type: ItemType,
    item_id: Id,
    permission_overrides: Vec<OverrideWire>,
}
impl Validate for UpdateItemOverrides {
    fn validate(&self) -> Result<(), ApiError> {
        if self.permission_overrides.len() > 500 {
            return Err(invalid(
                "Invalid input: `permission_overrides` must have at most 500 entries",
            ));
        }
        if self
            .permission_overrides
            .iter()
            .any(|o| o.target_type != "role")
        {
            return Err(invalid(
                "Invalid input: `permission_overrides.target_type` must be 'role'",
            ));
        }
        Ok(())
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "hubFiles.listFolders",
        Access::Protected,
        |ctx, w: ListFolders| async move {
            hub::folders::list_folders(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.parent_id.map(Uuid::from),
                page(w.limit),
            )
            .await
        },
    );
    r.mutation(
        "hubFiles.createFolder",
        Access::Protected,
        |ctx, w: CreateFolder| async move {
            hub::folders::create_folder(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.name,
                w.parent_id.map(Uuid::from),
            )
            .await
        },
    );
    r.mutation(
        "hubFiles.renameFolder",
        Access::Protected,
        |ctx, w: RenameFolder| async move {
            hub::folders::rename_folder(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.folder_id.into(),
                w.name,
            )
            .await
        },
    );
    r.mutation(
        "hubFiles.deleteFolder",
        Access::Protected,
        |ctx, w: FolderId| async move {
            hub::folders::delete_folder(&ctx.svc, &ctx.server, ctx.caller(), w.folder_id.into())
                .await
        },
    );
    r.query(
        "hubFiles.listSharedFiles",
        Access::Protected,
        |ctx, w: ListSharedFiles| async move {
            hub::shared_files::list_shared_files(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.folder_id.map(Uuid::from),
                w.cursor.map(Uuid::from),
                page(w.limit),
            )
            .await
        },
    );
    r.mutation(
        "hubFiles.deleteSharedFile",
        Access::Protected,
        |ctx, w: FileId| async move {
            hub::shared_files::delete_shared_file(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.file_id.into(),
            )
            .await
        },
    );
    r.query(
        "hubFiles.listChannelFiles",
        Access::Protected,
        |ctx, Optional(w): Optional<ListChannelFiles>| async move {
            hub::channel_files::list_channel_files(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.map(Uuid::from),
                w.cursor.map(Uuid::from),
                page(w.limit),
            )
            .await
        },
    );
    r.mutation(
        "hubFiles.deleteChannelFile",
        Access::Protected,
        |ctx, w: AttachmentId| async move {
            hub::channel_files::delete_channel_file(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.attachment_id.into(),
            )
            .await
        },
    );
    r.query(
        "hubFiles.channelFileStats",
        Access::Protected,
        |ctx, _: NoInput| async move {
            hub::channel_files::channel_file_stats(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
    r.query(
        "hubFiles.getItemOverrides",
        Access::Protected,
        |ctx, w: Item| async move {
            hub::overrides::get_item_overrides(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.item_type,
                w.item_id.into(),
            )
            .await
        },
    );
    r.mutation(
        "hubFiles.updateItemOverrides",
        Access::Protected,
        |ctx, w: UpdateItemOverrides| async move {
            let overrides = w
                .permission_overrides
                .iter()
                .map(|o| Override {
                    target_type: TargetType::Role,
                    target_id: o.target_id.into(),
                    allow: o.allow,
                    deny: o.deny,
                })
                .collect();
            hub::overrides::update_item_overrides(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.item_type,
                w.item_id.into(),
                overrides,
            )
            .await
        },
    );
    r.query(
        "hubFiles.getStorageQuota",
        Access::Protected,
        |ctx, _: NoInput| async move {
            hub::quota::storage_quota(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
}
