//! Upload rules: the limits, quotas and permissions behind `POST /upload*` and `files.upload`
//! (reference §2.4, §2.6; DECISIONS §3.11, §3.12, §3.17), and the attachment rows uploads
//! become. Names and keys are [`crate::usecases::base::file_names`]; reading files back is
//! [`crate::usecases::serving`].

use super::base::access::{channel_and_perms, Perms};
use super::base::file_names::{channel_key, content_type, display_name, file_path, IMAGE_TYPES};
use super::base::identity::Caller;
use super::base::signing::{attachment_view, UrlKey};
use crate::model::{Attachment, Channel, Server};
use crate::permissions::bits;
use crate::ports::{AttachmentRecord, BlobKey};
use crate::{CoreError, CoreResult, EctoCode, ErrorKind, Services};
use uuid::Uuid;

/// Icon limit (reference: 2 MiB).
pub const ICON_MAX_BYTES: u64 = 2 * 1024 * 1024;
/// Banner limit (reference: 800 KiB).
pub const BANNER_MAX_BYTES: u64 = 800 * 1024;
/// Upload settings of the process.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// `MAX_UPLOAD_SIZE_BYTES`: a cap on every single upload; 0 is no cap.
    pub max_upload_size_bytes: u64,
    /// `STORAGE_QUOTA_BYTES`: the server-wide quota of non-image files; 0 is unlimited.
    pub storage_quota_bytes: u64,
    pub url_key: UrlKey,
}

// ---------------------------------------------------------------------------------------------
// Limits and permissions of the upload routes

/// The per-file limit of `/upload` and `/upload/dm`: the server's `max_upload_size_bytes`,
/// capped by `MAX_UPLOAD_SIZE_BYTES`.
pub async fn upload_limit(svc: &Services, server: &Server) -> CoreResult<u64> {
    let config = super::base::loaders::config(svc, server.id).await?;
    Ok(cap(svc, config.max_upload_size_bytes.max(0) as u64))
}

/// `limit` capped by `MAX_UPLOAD_SIZE_BYTES` (and by what an attachment row can hold).
pub fn cap(svc: &Services, limit: u64) -> u64 {
    let global = svc.settings.files.max_upload_size_bytes;
    let limit = if global > 0 { limit.min(global) } else { limit };
    limit.min(i32::MAX as u64)
}

/// Bytes left under `STORAGE_QUOTA_BYTES` for non-image files; `None` when there is no quota.
pub async fn quota_left(svc: &Services, server: &Server) -> CoreResult<Option<u64>> {
    let quota = svc.settings.files.storage_quota_bytes;
    if quota == 0 {
        return Ok(None);
    }
    let used = svc
        .attachments
        .non_image_usage(server.id, &IMAGE_TYPES)
        .await?;
    Ok(Some(quota.saturating_sub(used)))
}

/// The 413 of a full quota.
pub fn quota_exceeded(svc: &Services) -> CoreError {
    CoreError::storage_quota_exceeded(svc.settings.files.storage_quota_bytes / (1024 * 1024))
}

/// `POST /upload`: the channel must be in this server (NOT_FOUND 3000) and the caller needs
/// ATTACH_FILES there (and READ_MESSAGES, without which nothing is allowed in a channel).
pub async fn authorize_channel_upload(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<Channel> {
    let (channel, perms) = channel_and_perms(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::ATTACH_FILES, "ATTACH_FILES")?;
    Ok(channel)
}

/// `POST /upload/dm`: a member of this server (DECISIONS §3.12).
pub fn authorize_dm_upload(caller: &Caller) -> CoreResult<()> {
    caller.require_member().map(|_| ())
}

/// `POST /upload/icon` and `/upload/banner`: MANAGE_SERVER.
pub async fn authorize_server_image(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<()> {
    Perms::load(svc, server, caller)
        .await?
        .require(bits::MANAGE_SERVER, "MANAGE_SERVER")
}

/// A stored upload on its way into an attachment row.
pub struct StoredUpload {
    pub id: Uuid,
    /// `None` for DM uploads.
    pub channel_id: Option<Uuid>,
    pub filename: String,
    pub key: BlobKey,
    pub content_type: String,
    pub size: u64,
}

/// Inserts the unlinked attachment row of a stored upload; returns it as the protocol's
/// Attachment with a signed URL.
pub async fn record_attachment(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    upload: StoredUpload,
) -> CoreResult<Attachment> {
    let url = file_path(&upload.key);
    let record = AttachmentRecord {
        id: upload.id,
        server_id: server.id,
        message_id: None,
        channel_id: upload.channel_id,
        uploader_id: caller.user_id,
        filename: upload.filename,
        url: url.clone(),
        storage_key: upload.key.as_str().to_owned(),
        content_type: upload.content_type,
        size_bytes: upload.size as i64,
        created_at: svc.clock.now(),
    };
    svc.attachments.insert(&record).await?;
    Ok(attachment_view(svc, record))
}

// ---------------------------------------------------------------------------------------------
// The `files` router

/// Input of `files.upload` (validated by the HTTP adapter).
pub struct MetadataUpload {
    pub channel_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// `files.upload` (ATTACH_FILES): a metadata-only attachment row (no bytes are stored; its URL
/// serves 404). The name is sanitized and the size must be within the upload limit.
pub async fn upload_metadata(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: MetadataUpload,
) -> CoreResult<Attachment> {
    let channel = authorize_channel_upload(svc, server, caller, input.channel_id).await?;
    let limit = upload_limit(svc, server).await?;
    if input.size_bytes as u64 > limit {
        return Err(CoreError::ecto(
            ErrorKind::PayloadTooLarge,
            EctoCode::PayloadTooLarge,
            format!("File exceeds {limit} bytes"),
        ));
    }
    let id = Uuid::now_v7();
    let filename = display_name(&input.filename);
    let path_key = channel_key(server.id, channel.id, id, &filename)?;
    let record = AttachmentRecord {
        id,
        server_id: server.id,
        message_id: None,
        channel_id: Some(channel.id),
        uploader_id: caller.user_id,
        filename,
        url: file_path(&path_key),
        // No blob: the URL resolves to nothing.
        storage_key: String::new(),
        content_type: content_type(Some(&input.content_type)),
        size_bytes: input.size_bytes,
        created_at: svc.clock.now(),
    };
    svc.attachments.insert(&record).await?;
    Ok(attachment_view(svc, record))
}
