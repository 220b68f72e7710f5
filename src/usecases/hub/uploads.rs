//! Shared uploads (`POST /upload/shared`): who may upload where, and recording a stored
//! upload as a shared file.

use super::{max_shared_bytes, signed};
use crate::model::{Server, SharedFileRecord, SharedFileView};
use crate::permissions::bits;
use crate::ports::{BlobKey, Scope};
use crate::usecases::base::access::hub::HubAccess;
use crate::usecases::base::access::require_bits as require;
use crate::usecases::base::identity::Caller;
use crate::usecases::base::lookup::{name_of, usernames};
use crate::usecases::base::publish::publish;
use crate::{CoreError, CoreResult, Services};
use uuid::Uuid;

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
    let max = max_shared_bytes(svc, server).await?;
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
    // The row is committed: from here nothing may fail the call, or the caller would delete
    // the file the row points at. Without the name, the view says "Unknown".
    let names = usernames(svc, server.id, [caller.user_id])
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "uploader's name unavailable for shared_file.create");
            Default::default()
        });
    let view = SharedFileView::new(record, name_of(&names, caller.user_id), false);
    // The event reaches every session of the server, so its URL is not signed.
    publish(svc, server.id, Scope::Server, "shared_file.create", &view).await;
    Ok(signed(svc, view))
}
