//! Reading stored files back: what a `/files/...` path names (a public server image, an
//! attachment or a shared hub file) and `files.getUrl` (reference §2.6; DECISIONS §3.12,
//! §3.23). Who may read each is [`crate::usecases::base::access`]'s to say.

use super::base::access::attachment_readable;
use super::base::file_names::PUBLIC_FOLDERS;
use super::base::identity::Caller;
use super::base::signing::signed_url;
use crate::model::{Server, SharedFileRecord};
use crate::ports::{AttachmentRecord, BlobKey};
use crate::{CoreError, CoreResult, EctoCode, Services};
use serde::Serialize;
use uuid::Uuid;

/// What a `/files/{key}` path names.
pub enum FileTarget {
    /// A server icon or banner: served to anyone, type by extension.
    Public { content_type: &'static str },
    /// An uploaded attachment.
    Attachment(AttachmentRecord),
    /// A file of the shared hub (`{server}/shared/{folder|root}/{id}`).
    Shared(SharedFileRecord),
}

impl FileTarget {
    /// The stored size recorded in the file's row (none for icons and banners).
    pub fn known_size(&self) -> Option<u64> {
        match self {
            FileTarget::Public { .. } => None,
            FileTarget::Attachment(a) => u64::try_from(a.size_bytes).ok(),
            FileTarget::Shared(f) => u64::try_from(f.size_bytes).ok(),
        }
    }
}

/// The file at `key` in `server`, or `None` (404) when the key names nothing of this server.
pub async fn resolve(
    svc: &Services,
    server: &Server,
    key: &BlobKey,
) -> CoreResult<Option<FileTarget>> {
    let segments: Vec<&str> = key.segments().collect();
    if segments.first() != Some(&server.id.to_string().as_str()) {
        return Ok(None);
    }
    if segments.len() == 3 && PUBLIC_FOLDERS.contains(&segments[1]) {
        let ext = segments[2].rsplit('.').next().unwrap_or("");
        let content_type = match ext {
            "png" => "image/png",
            "jpg" => "image/jpeg",
            "gif" => "image/gif",
            "webp" => "image/webp",
            _ => return Ok(None),
        };
        return Ok(Some(FileTarget::Public { content_type }));
    }
    if segments.len() == 4 && segments[1] == "shared" {
        return resolve_shared(svc, server, key).await;
    }
    // Attachment keys: {server}/{channel}/{id}/{name} and {server}/dm/{id}/{name}.
    if segments.len() != 4 {
        return Ok(None);
    }
    let Ok(id) = Uuid::parse_str(segments[2]) else {
        return Ok(None);
    };
    Ok(svc
        .attachments
        .get(server.id, id)
        .await?
        .filter(|a| a.storage_key == key.as_str())
        .map(FileTarget::Attachment))
}

/// `/files/{attachment_id}/{filename}`, the form the reference's `files.upload` hands out:
/// the attachment of this server with that id and the key its bytes are stored under (the
/// file name is not checked: the id names the file). `None` for an unknown id or a
/// metadata-only row, which has no bytes.
pub async fn resolve_by_id(
    svc: &Services,
    server: &Server,
    id: Uuid,
) -> CoreResult<Option<(BlobKey, FileTarget)>> {
    let Some(a) = svc.attachments.get(server.id, id).await? else {
        return Ok(None);
    };
    let Ok(key) = BlobKey::new(&a.storage_key) else {
        return Ok(None);
    };
    Ok(Some((key, FileTarget::Attachment(a))))
}

/// The shared file stored at `key` in this server, as a file to serve.
pub async fn resolve_shared(
    svc: &Services,
    server: &Server,
    key: &BlobKey,
) -> CoreResult<Option<FileTarget>> {
    let Some(id) = key.segments().nth(3).and_then(|s| Uuid::parse_str(s).ok()) else {
        return Ok(None);
    };
    Ok(svc
        .hub
        .shared_file(server.id, id)
        .await?
        .filter(|f| f.storage_key == key.as_str())
        .map(FileTarget::Shared))
}

/// What `files.getUrl` returns.
#[derive(Debug, Clone, Serialize)]
pub struct FileUrl {
    pub url: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// `files.getUrl`: the attachment must be in this server (NOT_FOUND 4002) and readable by the
/// caller (the same rule as `/files/...`; FORBIDDEN 5001 otherwise); returns a signed URL.
pub async fn get_url(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    attachment_id: Uuid,
) -> CoreResult<FileUrl> {
    caller.require_member()?;
    let a = svc
        .attachments
        .get(server.id, attachment_id)
        .await?
        .ok_or_else(CoreError::attachment_not_found)?;
    if !attachment_readable(svc, server, caller, &a).await? {
        return Err(CoreError::forbidden(
            EctoCode::InsufficientPermissions,
            "You cannot read this attachment",
        ));
    }
    Ok(FileUrl {
        url: signed_url(svc, &a.url),
        filename: a.filename,
        content_type: a.content_type,
        size_bytes: a.size_bytes,
    })
}
