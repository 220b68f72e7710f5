//! The shared storage quota: `hubFiles.getStorageQuota` and the space left for uploads.

use super::max_shared_bytes;
use crate::model::Server;
use crate::permissions::bits;
use crate::usecases::base::access::Perms;
use crate::usecases::base::identity::Caller;
use crate::{CoreResult, Services};
use serde::Serialize;

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
        max_bytes: max_shared_bytes(svc, server).await?,
    })
}

/// Bytes left in the server's shared storage (`max_shared_storage_bytes` minus the shared
/// files' total); 0 when full.
pub async fn shared_space_left(svc: &Services, server: &Server) -> CoreResult<u64> {
    let max = max_shared_bytes(svc, server).await?;
    let used = svc.hub.used_bytes(server.id).await?;
    Ok(max.saturating_sub(used).max(0) as u64)
}
