//! The `hubFiles` router: the shared file hub (folders, shared files, their permission
//! overrides, the quota) and the server's channel files.
//!
//! Base checks use the caller's server-level bits; checks on one folder or file use the chain
//! of [`crate::permissions::hub`]. Storage is cleaned up only after the rows are gone, and a
//! failure there is logged, never returned: the change is already committed.

use super::base::access::hub::HubAccess;
use super::base::access::{require_bits as require, Perms};
use super::base::identity::Caller;
use super::base::lookup::{name_of, usernames};
use super::base::publish::{entry, publish, success};
use super::base::signing::sign_file_url;
use crate::model::{
    shared_prefix, ChannelFileStat, ChannelFileView, ChannelType, Contributor, ItemOverrideView,
    ItemType, Server, SharedFileRecord, SharedFileView, SharedFolder, SharedFolderView,
};
use crate::permissions::{bits, has, Override, TargetType};
use crate::ports::{BlobKey, Scope};
use crate::{new_id, CoreError, CoreResult, Services};
use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Deletes blobs after a commit; failures are logged only.
async fn delete_blobs(svc: &Services, keys: &[String], prefixes: &[String]) {
    for prefix in prefixes {
        match BlobKey::new(prefix) {
            Ok(key) => {
                if let Err(e) = svc.blobs.delete_prefix(&key).await {
                    tracing::warn!(error = %e, prefix, "cannot delete stored files");
                }
            }
            Err(_) => tracing::warn!(prefix, "not a storage prefix"),
        }
    }
    for raw in keys {
        // Keys under a prefix just deleted are gone already.
        if prefixes.iter().any(|p| raw.starts_with(&format!("{p}/"))) {
            continue;
        }
        match BlobKey::new(raw) {
            Ok(key) => {
                if let Err(e) = svc.blobs.delete(&key).await {
                    tracing::warn!(error = %e, key = raw, "cannot delete a stored file");
                }
            }
            Err(_) => tracing::warn!(key = raw, "not a storage key"),
        }
    }
}

/// A SharedFile whose URL carries an expiring signature, for someone allowed to browse it.
fn signed(svc: &Services, mut view: SharedFileView) -> SharedFileView {
    sign_file_url(svc, &mut view.url);
    view
}

/// `hubFiles.listFolders` (BROWSE_FILES): the subfolders of `parent_id` (`None`: the root)
/// the caller may browse, ordered by name.
pub async fn list_folders(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    parent_id: Option<Uuid>,
    limit: usize,
) -> CoreResult<Vec<SharedFolderView>> {
    let access = HubAccess::load(svc, server, caller).await?;
    access.perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    if let Some(p) = parent_id {
        access.folder(p)?;
    }
    let mut visible: Vec<&SharedFolder> = access
        .folders()
        .filter(|f| f.parent_id == parent_id)
        .filter(|f| has(access.folder_bits(f.id), bits::BROWSE_FILES))
        .collect();
    visible.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    visible.truncate(limit);
    let ids: Vec<Uuid> = visible.iter().map(|f| f.id).collect();
    let mut stats = svc.hub.folder_stats(server.id, &ids).await?;
    let names = usernames(
        svc,
        server.id,
        stats.values().flat_map(|s| s.contributors.iter().copied()),
    )
    .await?;
    Ok(visible
        .into_iter()
        .map(|f| {
            let s = stats.remove(&f.id).unwrap_or_default();
            SharedFolderView {
                id: f.id,
                name: f.name.clone(),
                parent_id: f.parent_id,
                created_by: f.created_by,
                created_at: f.created_at,
                file_count: s.file_count,
                total_size_bytes: s.total_size_bytes,
                contributors: s
                    .contributors
                    .into_iter()
                    .map(|user_id| Contributor {
                        user_id,
                        username: name_of(&names, user_id),
                    })
                    .collect(),
                has_overrides: access.has_overrides(ItemType::Folder, f.id),
            }
        })
        .collect())
}

/// `hubFiles.createFolder`: UPLOAD_SHARED_FILES through the parent's chain, or server-wide
/// at the root. Event `shared_folder.create`.
pub async fn create_folder(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    name: String,
    parent_id: Option<Uuid>,
) -> CoreResult<SharedFolderView> {
    let access = HubAccess::load(svc, server, caller).await?;
    if let Some(p) = parent_id {
        access
            .folder(p)
            .map_err(|_| CoreError::parent_folder_not_found())?;
    }
    require(
        access.container_bits(parent_id),
        bits::UPLOAD_SHARED_FILES,
        "UPLOAD_SHARED_FILES",
    )?;
    let folder = SharedFolder {
        id: new_id(),
        server_id: server.id,
        parent_id,
        name,
        created_by: caller.user_id,
        created_at: svc.clock.now(),
    };
    if !svc.hub.create_folder(folder.clone()).await? {
        return Err(CoreError::parent_folder_not_found());
    }
    let view = SharedFolderView {
        id: folder.id,
        name: folder.name,
        parent_id: folder.parent_id,
        created_by: folder.created_by,
        created_at: folder.created_at,
        file_count: 0,
        total_size_bytes: 0,
        contributors: Vec::new(),
        has_overrides: false,
    };
    publish(svc, server.id, Scope::Server, "shared_folder.create", &view).await;
    Ok(view)
}

/// `hubFiles.renameFolder`: its creator with UPLOAD_SHARED_FILES, anyone else with
/// MANAGE_FILES (server-wide). Audited; event `shared_folder.update`.
pub async fn rename_folder(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    folder_id: Uuid,
    name: String,
) -> CoreResult<serde_json::Value> {
    let access = HubAccess::load(svc, server, caller).await?;
    let folder = access.folder(folder_id)?;
    if folder.created_by == caller.user_id {
        access
            .perms
            .require(bits::UPLOAD_SHARED_FILES, "UPLOAD_SHARED_FILES")?;
    } else {
        access.perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "shared_folder.update",
        Some(("shared_folder", folder_id)),
        Some(json!({ "name": name, "previous_name": folder.name })),
    );
    if !svc
        .hub
        .rename_folder(server.id, folder_id, &name, audit)
        .await?
    {
        return Err(CoreError::folder_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "shared_folder.update",
        &json!({ "id": folder_id, "name": name, "parent_id": folder.parent_id }),
    )
    .await;
    Ok(success())
}

/// `hubFiles.deleteFolder`: its creator with UPLOAD_SHARED_FILES, anyone else with
/// MANAGE_FILES, both through the folder's chain. Deletes the folder and everything below it
/// in one transaction, then their stored files. Audited; event `shared_folder.delete`.
pub async fn delete_folder(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    folder_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let access = HubAccess::load(svc, server, caller).await?;
    let folder = access.folder(folder_id)?;
    let chain = access.folder_bits(folder_id);
    if folder.created_by == caller.user_id {
        require(chain, bits::UPLOAD_SHARED_FILES, "UPLOAD_SHARED_FILES")?;
    } else {
        require(chain, bits::MANAGE_FILES, "MANAGE_FILES")?;
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "shared_folder.delete",
        Some(("shared_folder", folder_id)),
        Some(json!({ "name": folder.name })),
    );
    let tree = svc
        .hub
        .delete_folder(server.id, folder_id, audit)
        .await?
        .ok_or_else(CoreError::folder_not_found)?;
    let prefixes: Vec<String> = tree
        .folder_ids
        .iter()
        .map(|f| shared_prefix(server.id, Some(*f)))
        .collect();
    delete_blobs(svc, &tree.storage_keys, &prefixes).await;
    publish(
        svc,
        server.id,
        Scope::Server,
        "shared_folder.delete",
        &json!({ "id": folder_id }),
    )
    .await;
    Ok(success())
}

/// What `hubFiles.listSharedFiles` returns.
#[derive(Debug, Clone, Serialize)]
pub struct SharedFilePage {
    pub files: Vec<SharedFileView>,
    pub has_more: bool,
}

/// `hubFiles.listSharedFiles` (BROWSE_FILES): the files of a folder the caller may browse,
/// newest first; `cursor` is the last file id of the previous page.
pub async fn list_shared_files(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    folder_id: Option<Uuid>,
    cursor: Option<Uuid>,
    limit: usize,
) -> CoreResult<SharedFilePage> {
    let access = HubAccess::load(svc, server, caller).await?;
    access.perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    if let Some(f) = folder_id {
        access.folder(f)?;
    }
    // Hidden files are skipped, so read on until a full page (plus one) is visible.
    let batch = limit as i64 + 1;
    let mut visible: Vec<SharedFileRecord> = Vec::new();
    let mut before = cursor;
    loop {
        let rows = svc
            .hub
            .shared_files(server.id, folder_id, before, batch)
            .await?;
        let exhausted = (rows.len() as i64) < batch;
        before = rows.last().map(|r| r.id);
        visible.extend(
            rows.into_iter()
                .filter(|r| has(access.file_bits(r.folder_id, r.id), bits::BROWSE_FILES)),
        );
        if exhausted || visible.len() > limit {
            break;
        }
    }
    let has_more = visible.len() > limit;
    visible.truncate(limit);
    let names = usernames(svc, server.id, visible.iter().map(|f| f.uploaded_by)).await?;
    let files = visible
        .into_iter()
        .map(|f| {
            let overrides = access.has_overrides(ItemType::File, f.id);
            let name = name_of(&names, f.uploaded_by);
            signed(svc, SharedFileView::new(f, name, overrides))
        })
        .collect();
    Ok(SharedFilePage { files, has_more })
}

/// `hubFiles.deleteSharedFile`: its uploader with BROWSE_FILES, anyone else with
/// MANAGE_FILES, through the file's chain. Audited; event `shared_file.delete`.
pub async fn delete_shared_file(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    file_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let access = HubAccess::load(svc, server, caller).await?;
    let file = svc
        .hub
        .shared_file(server.id, file_id)
        .await?
        .ok_or_else(CoreError::shared_file_not_found)?;
    let chain = access.file_bits(file.folder_id, file.id);
    if file.uploaded_by == caller.user_id {
        require(chain, bits::BROWSE_FILES, "BROWSE_FILES")?;
    } else {
        require(chain, bits::MANAGE_FILES, "MANAGE_FILES")?;
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "shared_file.delete",
        Some(("shared_file", file_id)),
        Some(json!({ "filename": file.filename })),
    );
    let deleted = svc
        .hub
        .delete_shared_file(server.id, file_id, audit)
        .await?
        .ok_or_else(CoreError::shared_file_not_found)?;
    delete_blobs(svc, std::slice::from_ref(&deleted.storage_key), &[]).await;
    publish(
        svc,
        server.id,
        Scope::Server,
        "shared_file.delete",
        &json!({ "id": file_id, "folder_id": deleted.folder_id }),
    )
    .await;
    Ok(success())
}

/// What `hubFiles.listChannelFiles` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelFilePage {
    pub files: Vec<ChannelFileView>,
    pub has_more: bool,
}

/// `hubFiles.listChannelFiles` (BROWSE_FILES): attachments of non-deleted messages in the
/// channels the caller can read (or in `channel_id` alone), newest first.
pub async fn list_channel_files(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Option<Uuid>,
    cursor: Option<Uuid>,
    limit: usize,
) -> CoreResult<ChannelFilePage> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    let channels = svc.structure.channels(server.id).await?;
    if let Some(id) = channel_id {
        if !channels.iter().any(|c| c.id == id) {
            return Err(CoreError::channel_not_found());
        }
    }
    let readable: Vec<Uuid> = channels
        .iter()
        .filter(|c| channel_id.is_none_or(|id| c.id == id))
        .filter(|c| perms.reads(c))
        .map(|c| c.id)
        .collect();
    let mut rows = svc
        .hub
        .channel_files(server.id, &readable, cursor, limit as i64 + 1)
        .await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let categories: HashMap<Uuid, String> = svc
        .structure
        .categories(server.id)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let by_id: HashMap<Uuid, _> = channels.iter().map(|c| (c.id, c)).collect();
    let names = usernames(svc, server.id, rows.iter().map(|r| r.uploaded_by)).await?;
    let files = rows
        .into_iter()
        .map(|r| {
            let channel = by_id.get(&r.channel_id);
            let channel_name = channel.map(|c| c.name.clone()).unwrap_or_default();
            let category_name = channel
                .and_then(|c| c.category_id)
                .and_then(|id| categories.get(&id).cloned());
            let uploader = name_of(&names, r.uploaded_by);
            ChannelFileView::new(r, channel_name, category_name, uploader)
        })
        .collect();
    Ok(ChannelFilePage { files, has_more })
}

/// `hubFiles.deleteChannelFile` (MANAGE_FILES, server-wide and in the file's channel): removes one attachment of a
/// channel message. A message left with no text and no attachment is deleted
/// (`message.delete`); otherwise its channel gets `message.update {id, channel_id,
/// attachments}`. Audited; event `channel_file.delete`.
pub async fn delete_channel_file(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    attachment_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    let file = svc
        .hub
        .channel_file(server.id, attachment_id)
        .await?
        .ok_or_else(CoreError::channel_file_not_found)?;
    // A file of a channel the caller cannot see is managed with channel-level bits too.
    let channel = super::base::loaders::channel(svc, server.id, file.channel_id)
        .await?
        .ok_or_else(CoreError::channel_file_not_found)?;
    perms.require_in(&channel, bits::MANAGE_FILES, "MANAGE_FILES")?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "channel_file.delete",
        Some(("attachment", attachment_id)),
        Some(json!({ "filename": file.filename, "message_id": file.message_id })),
    );
    let done = svc
        .hub
        .delete_channel_file(server.id, attachment_id, audit)
        .await?
        .ok_or_else(CoreError::channel_file_not_found)?;
    delete_blobs(svc, std::slice::from_ref(&done.storage_key), &[]).await;
    if done.message_deleted {
        publish(
            svc,
            server.id,
            Scope::Channel(done.channel_id),
            "message.delete",
            &json!({ "id": done.message_id, "channel_id": done.channel_id }),
        )
        .await;
    } else {
        let attachments = svc.messages.attachments(&[done.message_id]).await?;
        publish(
            svc,
            server.id,
            Scope::Channel(done.channel_id),
            "message.update",
            &json!({
                "id": done.message_id,
                "channel_id": done.channel_id,
                "attachments": attachments,
            }),
        )
        .await;
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "channel_file.delete",
        &json!({ "id": attachment_id }),
    )
    .await;
    Ok(success())
}

/// `hubFiles.channelFileStats` (BROWSE_FILES): for each text channel the caller can read, its
/// newest upload, the total size, and the roles that can read it (a role's own bits after its
/// category override, then its channel override, hold ADMINISTRATOR or READ_MESSAGES).
pub async fn channel_file_stats(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<Vec<ChannelFileStat>> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    let channels = svc.structure.channels(server.id).await?;
    let uploads: HashMap<Uuid, _> = svc
        .hub
        .channel_uploads(server.id)
        .await?
        .into_iter()
        .map(|u| (u.channel_id, u))
        .collect();
    Ok(channels
        .iter()
        .filter(|c| c.channel_type == ChannelType::Text)
        .filter(|c| perms.reads(c))
        .map(|c| {
            let access_role_ids = perms.roles_reading(c);
            let u = uploads.get(&c.id);
            ChannelFileStat {
                channel_id: c.id,
                last_upload_at: u.and_then(|u| u.last_upload_at),
                total_size_bytes: u.map_or(0, |u| u.total_size_bytes),
                access_role_ids,
            }
        })
        .collect())
}

async fn require_item(
    svc: &Services,
    server: &Server,
    access: &HubAccess,
    item_type: ItemType,
    item_id: Uuid,
) -> CoreResult<()> {
    match item_type {
        ItemType::Folder => access.folder(item_id).map(|_| ()),
        ItemType::File => svc
            .hub
            .shared_file(server.id, item_id)
            .await?
            .map(|_| ())
            .ok_or_else(CoreError::shared_file_not_found),
    }
}

/// `hubFiles.getItemOverrides` (MANAGE_FILES): the overrides of a folder or shared file.
pub async fn get_item_overrides(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    item_type: ItemType,
    item_id: Uuid,
) -> CoreResult<Vec<ItemOverrideView>> {
    let access = HubAccess::load(svc, server, caller).await?;
    access.perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    require_item(svc, server, &access, item_type, item_id).await?;
    Ok(access
        .overrides_of(item_type, item_id)
        .map(ItemOverrideView::from)
        .collect())
}

/// `hubFiles.updateItemOverrides` (MANAGE_FILES): replaces the overrides of a folder or
/// shared file. Targets must be roles of this server; entries with no bit are dropped.
/// Audited; event `shared_item.permissions_update`.
pub async fn update_item_overrides(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    item_type: ItemType,
    item_id: Uuid,
    overrides: Vec<Override>,
) -> CoreResult<serde_json::Value> {
    let access = HubAccess::load(svc, server, caller).await?;
    access.perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    require_item(svc, server, &access, item_type, item_id).await?;
    let mut seen = HashSet::new();
    for o in &overrides {
        if !crate::permissions::is_valid(o.allow) || !crate::permissions::is_valid(o.deny) {
            return Err(CoreError::invalid_permission_bits());
        }
        if o.target_type != TargetType::Role {
            return Err(CoreError::bad_request(
                "Invalid input: `permission_overrides.target_type` must be 'role'",
            ));
        }
        if !access.perms.data.roles.iter().any(|r| r.id == o.target_id) {
            return Err(CoreError::role_not_found());
        }
        if !seen.insert(o.target_id) {
            return Err(CoreError::bad_request(
                "Invalid input: `permission_overrides` names a role twice",
            ));
        }
    }
    let kept: Vec<(Uuid, Override)> = overrides
        .into_iter()
        .filter(|o| o.allow != 0 || o.deny != 0)
        .map(|o| (new_id(), o))
        .collect();
    let audit = entry(
        svc,
        server.id,
        caller,
        "shared_item.permissions_update",
        Some((item_type.audit_target(), item_id)),
        Some(json!({ "overrides_count": kept.len() })),
    );
    if !svc
        .hub
        .replace_overrides(server.id, item_type, item_id, kept, audit)
        .await?
    {
        return Err(match item_type {
            ItemType::Folder => CoreError::folder_not_found(),
            ItemType::File => CoreError::shared_file_not_found(),
        });
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "shared_item.permissions_update",
        &json!({ "item_type": item_type, "item_id": item_id }),
    )
    .await;
    Ok(success())
}

/// What `hubFiles.getStorageQuota` returns.
#[derive(Debug, Clone, Serialize)]
pub struct StorageQuota {
    pub used_bytes: i64,
    pub max_bytes: i64,
}

/// `hubFiles.getStorageQuota` (BROWSE_FILES): the shared files' total against the server's
/// `max_shared_storage_bytes`.
pub async fn storage_quota(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<StorageQuota> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    Ok(StorageQuota {
        used_bytes: svc.hub.used_bytes(server.id).await?,
        max_bytes: svc
            .servers
            .config(server.id)
            .await?
            .max_shared_storage_bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// `POST /upload/shared`

/// `POST /upload/shared` before the body: UPLOAD_SHARED_FILES through the folder's chain
/// (NOT_FOUND `Folder not found` for a folder not of this server), or server-wide at the root.
pub async fn authorize_shared_upload(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    folder_id: Option<Uuid>,
) -> CoreResult<()> {
    let access = HubAccess::load(svc, server, caller).await?;
    if let Some(f) = folder_id {
        access.folder(f)?;
    }
    require(
        access.container_bits(folder_id),
        bits::UPLOAD_SHARED_FILES,
        "UPLOAD_SHARED_FILES",
    )
}

/// Bytes left in the server's shared storage (`max_shared_storage_bytes` minus the shared
/// files' total); 0 when full.
pub async fn shared_space_left(svc: &Services, server: &Server) -> CoreResult<u64> {
    let max = svc
        .servers
        .config(server.id)
        .await?
        .max_shared_storage_bytes;
    let used = svc.hub.used_bytes(server.id).await?;
    Ok(max.saturating_sub(used).max(0) as u64)
}

/// A stored upload on its way into a shared file row.
pub struct StoredSharedFile {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    pub filename: String,
    pub key: BlobKey,
    pub content_type: String,
    pub size: u64,
}

/// Records a stored upload as a shared file: its folder must still be there (NOT_FOUND) and the
/// shared storage must hold it (413 `Shared storage quota exceeded`), both checked in the
/// transaction that writes. Publishes `shared_file.create` to the server's sessions
/// (DECISIONS §3.13).
pub async fn record_shared_file(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    upload: StoredSharedFile,
) -> CoreResult<SharedFileView> {
    let max = svc
        .servers
        .config(server.id)
        .await?
        .max_shared_storage_bytes;
    let record = SharedFileRecord {
        id: upload.id,
        server_id: server.id,
        folder_id: upload.folder_id,
        filename: upload.filename,
        url: format!("/files/{}", upload.key.as_str()),
        storage_key: upload.key.as_str().to_owned(),
        content_type: upload.content_type,
        size_bytes: i32::try_from(upload.size).map_err(|_| CoreError::shared_quota_exceeded())?,
        uploaded_by: caller.user_id,
        created_at: svc.clock.now(),
    };
    match svc.hub.insert_shared_file(record.clone(), max).await? {
        Ok(()) => {}
        Err(crate::ports::SharedFileRefusal::FolderGone) => {
            return Err(CoreError::folder_not_found())
        }
        Err(crate::ports::SharedFileRefusal::QuotaExceeded) => {
            return Err(CoreError::shared_quota_exceeded())
        }
    }
    let names = usernames(svc, server.id, [caller.user_id]).await?;
    let view = SharedFileView::new(record, name_of(&names, caller.user_id), false);
    // The event reaches every session of the server, so its URL is not signed.
    publish(svc, server.id, Scope::Server, "shared_file.create", &view).await;
    Ok(signed(svc, view))
}
