//! The `hubFiles` router: the shared file hub (folders, shared files, their permission
//! overrides, the quota) and the server's channel files, plus the shared uploads of
//! `POST /upload/shared`.
//!
//! Base checks use the caller's server-level bits; checks on one folder or file use the chain
//! of [`crate::usecases::base::access::hub`]. Storage is cleaned up only after the rows are
//! gone, and a failure there is logged, never returned: the change is already committed.

pub mod channel_files;
pub mod folders;
pub mod overrides;
pub mod quota;
pub mod shared_files;
pub mod uploads;

use crate::model::{Server, SharedFileView};
use crate::ports::BlobKey;
use crate::usecases::base::signing::sign_file_url;
use crate::{CoreResult, Services};

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

/// The server's `max_shared_storage_bytes`, read from the store.
async fn max_shared_bytes(svc: &Services, server: &Server) -> CoreResult<i64> {
    Ok(svc
        .servers
        .config(server.id)
        .await?
        .max_shared_storage_bytes)
}
