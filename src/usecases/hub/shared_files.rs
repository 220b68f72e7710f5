//! `hubFiles.listSharedFiles` and `deleteSharedFile`.

use super::{delete_blobs, signed};
use crate::model::{ItemType, Server, SharedFileRecord, SharedFileView};
use crate::permissions::{bits, has};
use crate::ports::Scope;
use crate::usecases::base::access::hub::HubAccess;
use crate::usecases::base::access::require_bits as require;
use crate::usecases::base::identity::Caller;
use crate::usecases::base::lookup::{name_of, usernames};
use crate::usecases::base::publish::{entry, publish, success};
use crate::{CoreError, CoreResult, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

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
