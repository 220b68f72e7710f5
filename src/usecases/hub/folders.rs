//! `hubFiles.listFolders`, `createFolder`, `renameFolder` and `deleteFolder`.

use super::delete_blobs;
use crate::model::{shared_prefix, Contributor, ItemType, Server, SharedFolder, SharedFolderView};
use crate::permissions::{bits, has};
use crate::ports::Scope;
use crate::usecases::base::access::hub::HubAccess;
use crate::usecases::base::access::require_bits as require;
use crate::usecases::base::identity::Caller;
use crate::usecases::base::lookup::{name_of, usernames};
use crate::usecases::base::publish::{entry, publish, success};
use crate::{new_id, CoreError, CoreResult, Services};
use serde_json::json;
use uuid::Uuid;

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
