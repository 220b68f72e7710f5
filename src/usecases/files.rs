//! Uploads and file access: the rules behind `POST /upload*`, `/files/...`, `files.upload` and
//! `files.getUrl` (reference §2.4, §2.6; DECISIONS §3.11, §3.12, §3.17, §3.23).
//!
//! Storage keys are built here only, from ids and [`key_name`] (an ASCII form of the file
//! name), so no key derived from user input can leave the storage root. Attachment URLs
//! handed out by the API carry an expiring signature ([`signed_url`]).

use super::base::access::{attachment_readable, channel_and_perms, Perms};
use super::base::identity::Caller;
use crate::model::{Attachment, Channel, Server, ServerPatch};
use crate::permissions::bits;
use crate::ports::{AttachmentRecord, BlobKey};
use crate::{CoreError, CoreResult, EctoCode, ErrorKind, Services};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Icon limit (reference: 2 MiB).
pub const ICON_MAX_BYTES: u64 = 2 * 1024 * 1024;
/// Banner limit (reference: 800 KiB).
pub const BANNER_MAX_BYTES: u64 = 800 * 1024;
/// Longest display name kept for a file.
pub const MAX_FILENAME_CHARS: usize = 255;
/// Longest ASCII file name used in a storage key. Short enough that a whole key stays well
/// under the file-name limit of object stores that keep each key in one file name (s3s-fs
/// does: `.bucket-{b}.object-{key}.upload-{id}.metadata.json` must fit in 255 bytes); the
/// display name, kept whole in the database, is what people see.
const MAX_KEY_NAME_BYTES: usize = 40;
/// How long a signed URL stays valid: at least this long, at most one hour more (expiry is
/// rounded up to the hour so the same URL is handed out for an hour and can be cached).
const SIGNED_URL_SECS: i64 = 24 * 3600;

/// The key of file URL signatures; derived from the token secret. Never printed.
#[derive(Clone)]
pub struct UrlKey([u8; 32]);

impl std::fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKey(..)")
    }
}

fn mac(key: &[u8]) -> Option<HmacSha256> {
    <HmacSha256 as Mac>::new_from_slice(key).ok()
}

impl UrlKey {
    /// Derives the key from the server's token secret (HMAC-SHA256 of a fixed label), so the
    /// token secret itself never signs a URL.
    pub fn derive(secret: &[u8]) -> Self {
        let mut out = [0u8; 32];
        if let Some(mut m) = mac(secret) {
            m.update(b"ecto file url signatures v1");
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        Self(out)
    }
}

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
// Names, types and keys

/// The display name of an uploaded file: the last path component of `raw` (after `/` or `\`),
/// without control characters (NUL included), trimmed, at most 255 characters; `file` when
/// nothing is left.
pub fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    let trimmed: String = cleaned.trim().chars().take(MAX_FILENAME_CHARS).collect();
    let trimmed = trimmed.trim().to_owned();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        "file".to_owned()
    } else {
        trimmed
    }
}

/// The ASCII form of a display name used in storage keys: letters, digits, `.`, `_` and `-`
/// kept, anything else `_`, no leading dot, at most 40 bytes (the extension kept when it is
/// short); `file` when nothing is left. The result is always a valid [`BlobKey`] segment.
pub fn key_name(display: &str) -> String {
    let mapped: String = display
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mapped = mapped.trim_start_matches('.');
    let name = if mapped.len() <= MAX_KEY_NAME_BYTES {
        mapped.to_owned()
    } else {
        match mapped.rfind('.') {
            Some(dot) if mapped.len() - dot <= 16 => {
                let ext = &mapped[dot..];
                format!("{}{ext}", &mapped[..MAX_KEY_NAME_BYTES - ext.len()])
            }
            _ => mapped[..MAX_KEY_NAME_BYTES].to_owned(),
        }
    };
    if name.is_empty() || name.chars().all(|c| c == '.') {
        "file".to_owned()
    } else {
        name
    }
}

/// A declared content type reduced to `type/subtype` in lower case (parameters dropped), or
/// `application/octet-stream` when it is missing or not a valid media type.
pub fn content_type(raw: Option<&str>) -> String {
    let fallback = || "application/octet-stream".to_owned();
    let Some(raw) = raw else {
        return fallback();
    };
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                    )
            })
    };
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) && essence.len() <= 100 => essence,
        _ => fallback(),
    }
}

/// A raster image format recognised by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageKind {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }
}

/// Bytes [`sniff_image`] needs to decide.
pub const SNIFF_BYTES: usize = 12;

/// The image format of a file starting with `head`, by magic number only (PNG, JPEG, GIF,
/// WebP). SVG is never an image here: it is active content.
pub fn sniff_image(head: &[u8]) -> Option<ImageKind> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(ImageKind::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(ImageKind::Webp)
    } else {
        None
    }
}

/// Content types that count as images for the quota; the upload pipeline stores them only
/// for files whose bytes are such an image.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The content type to store for an upload declared as `declared` whose first bytes are
/// `head`: the sniffed type for a real image; a declared raster image type whose bytes are
/// not that image becomes `application/octet-stream` (so that a stored image type always
/// means image bytes).
pub fn stored_content_type(declared: &str, head: &[u8]) -> String {
    match sniff_image(head) {
        Some(kind) => kind.mime().to_owned(),
        None if IMAGE_TYPES.contains(&declared) => "application/octet-stream".to_owned(),
        None => declared.to_owned(),
    }
}

/// Content types a browser may show inline; everything else is served as a download.
pub const INLINE_TYPES: [&str; 11] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "text/plain",
];

/// Whether a file of `content_type` may be served inline.
pub fn inline_allowed(content_type: &str) -> bool {
    INLINE_TYPES.contains(&content_type)
}

fn key(parts: &[&str]) -> CoreResult<BlobKey> {
    BlobKey::new(&parts.join("/"))
}

/// `{serverId}/{channelId}/{attachmentId}/{name}`.
pub fn channel_key(server: Uuid, channel: Uuid, id: Uuid, display: &str) -> CoreResult<BlobKey> {
    key(&[
        &server.to_string(),
        &channel.to_string(),
        &id.to_string(),
        &key_name(display),
    ])
}

/// `{serverId}/dm/{attachmentId}/{name}`.
pub fn dm_key(server: Uuid, id: Uuid, display: &str) -> CoreResult<BlobKey> {
    key(&[
        &server.to_string(),
        "dm",
        &id.to_string(),
        &key_name(display),
    ])
}

/// Folders whose files anyone may fetch (server icons and banners appear on landing pages).
/// Page banners and news hero images are public like icons: their names are random, and only
/// readers of the channel are shown them.
pub const PUBLIC_FOLDERS: [&str; 4] = ["icons", "banners", "page-banners", "news-heroes"];

/// `{serverId}/{folder}/{prefix}-{uuid}.{ext}` for the images of the server (icon, banner).
pub fn image_key(server: Uuid, folder: &str, prefix: &str, kind: ImageKind) -> CoreResult<BlobKey> {
    key(&[
        &server.to_string(),
        folder,
        &format!("{prefix}-{}.{}", Uuid::now_v7(), kind.ext()),
    ])
}

/// The URL path of a blob: `/files/{key}`.
pub fn file_path(key: &BlobKey) -> String {
    format!("/files/{}", key.as_str())
}

// ---------------------------------------------------------------------------------------------
// Signed URLs

fn signature(svc: &Services, path: &str, exp: i64) -> Option<HmacSha256> {
    let mut m = mac(&svc.settings.files.url_key.0)?;
    m.update(path.as_bytes());
    m.update(b"\n");
    m.update(exp.to_string().as_bytes());
    Some(m)
}

/// `path` (a `/files/...` URL path) with `?exp=<unix seconds>&sig=<hex HMAC-SHA256>`; valid
/// for 24 to 25 hours.
pub fn signed_url(svc: &Services, path: &str) -> String {
    let now = svc.clock.now().timestamp();
    let exp = (now + SIGNED_URL_SECS).div_euclid(3600) * 3600 + 3600;
    match signature(svc, path, exp) {
        Some(m) => format!(
            "{path}?exp={exp}&sig={}",
            hex::encode(m.finalize().into_bytes())
        ),
        None => path.to_owned(),
    }
}

/// Whether `sig` is our signature of `path` with expiry `exp`, and `exp` has not passed.
pub fn signature_valid(svc: &Services, path: &str, exp: &str, sig: &str) -> bool {
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    if exp < svc.clock.now().timestamp() {
        return false;
    }
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    signature(svc, path, exp).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// Signs the URLs of attachments on their way to a client.
pub fn sign_attachments(svc: &Services, attachments: &mut [Attachment]) {
    for a in attachments {
        if a.url.starts_with("/files/") && !a.url.contains('?') {
            a.url = signed_url(svc, &a.url);
        }
    }
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
    Ok(view(svc, record))
}

fn view(svc: &Services, a: AttachmentRecord) -> Attachment {
    let mut out = [Attachment {
        id: a.id,
        message_id: a.message_id,
        filename: a.filename,
        url: a.url,
        content_type: a.content_type,
        size_bytes: i32::try_from(a.size_bytes).unwrap_or(i32::MAX),
    }];
    sign_attachments(svc, &mut out);
    let [a] = out;
    a
}

/// Which server image an upload replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerImage {
    Icon,
    Banner,
}

/// Sets the server's icon or banner URL, with its audit entry, and publishes
/// `server.update` (as `server.update` and `server.uploadIcon` do).
pub async fn set_server_image(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    which: ServerImage,
    url: String,
) -> CoreResult<()> {
    let previous = match which {
        ServerImage::Icon => server.icon_url.clone(),
        ServerImage::Banner => server.banner_url.clone(),
    };
    let patch = match which {
        ServerImage::Icon => ServerPatch {
            icon_url: Some(Some(url)),
            ..ServerPatch::default()
        },
        ServerImage::Banner => ServerPatch {
            banner_url: Some(Some(url)),
            ..ServerPatch::default()
        },
    };
    super::server_admin::apply(svc, server, caller, patch).await?;
    // The replaced image, when it was one of this server's uploads, is no longer needed.
    if let Some(old) = previous.as_deref().and_then(|u| own_image_key(server, u)) {
        if let Err(e) = svc.blobs.delete(&old).await {
            tracing::warn!(error = %e, key = old.as_str(), "could not delete a replaced image");
        }
    }
    Ok(())
}

/// The key of an icon or banner URL of this server (`…/files/{server}/{icons|banners}/…`).
fn own_image_key(server: &Server, url: &str) -> Option<BlobKey> {
    let rest = &url[url.find("/files/")? + "/files/".len()..];
    let key = BlobKey::new(rest).ok()?;
    let segments: Vec<&str> = key.segments().collect();
    (segments.len() == 3
        && segments[0] == server.id.to_string()
        && PUBLIC_FOLDERS.contains(&segments[1]))
    .then_some(key)
}

// ---------------------------------------------------------------------------------------------
// Reading files

/// What a `/files/{key}` path names.
pub enum FileTarget {
    /// A server icon or banner: served to anyone, type by extension.
    Public { content_type: &'static str },
    /// An uploaded attachment.
    Attachment(AttachmentRecord),
    /// A file of the shared hub (`{server}/shared/{folder|root}/{id}`).
    Shared(crate::model::SharedFileRecord),
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
        return super::hub::resolve_shared(svc, server, key).await;
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
    Ok(view(svc, record))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_paths_and_control_characters() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\Windows\\evil.exe"), "evil.exe");
        assert_eq!(display_name("a\0b\nc.txt"), "abc.txt");
        assert_eq!(display_name(".."), "file");
        assert_eq!(display_name("dir/"), "file");
        assert_eq!(display_name(&"é".repeat(300)).chars().count(), 255);
        assert_eq!(display_name("résumé final.pdf"), "résumé final.pdf");
    }

    #[test]
    fn key_names_are_valid_key_segments() {
        for raw in [
            "..",
            ".hidden",
            "a b/c",
            "résumé.pdf",
            "%2e%2e",
            "x\0y",
            "",
            "....",
        ] {
            let name = key_name(&display_name(raw));
            assert!(BlobKey::new(&name).is_ok(), "{raw:?} -> {name:?}");
            assert!(!name.starts_with('.'), "{name}");
        }
        assert_eq!(key_name("résumé.pdf"), "r_sum_.pdf");
        let long = format!("{}.tar.gz", "a".repeat(300));
        let name = key_name(&long);
        assert_eq!(name.len(), MAX_KEY_NAME_BYTES);
        assert!(name.ends_with(".gz"));
    }

    #[test]
    fn content_types_are_reduced_to_their_essence() {
        assert_eq!(
            content_type(Some("Text/Plain; charset=utf-8")),
            "text/plain"
        );
        assert_eq!(content_type(None), "application/octet-stream");
        assert_eq!(content_type(Some("nonsense")), "application/octet-stream");
        assert_eq!(
            content_type(Some("a/b\r\nX: y")),
            "application/octet-stream"
        );
    }

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some(ImageKind::Png));
        assert_eq!(
            sniff_image(&[0xff, 0xd8, 0xff, 0xe0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(sniff_image(b"GIF89a......"), Some(ImageKind::Gif));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(sniff_image(b"<svg xmlns="), None);
        assert_eq!(sniff_image(b"<html>"), None);
        assert_eq!(
            stored_content_type("image/png", b"<html>"),
            "application/octet-stream"
        );
        assert_eq!(stored_content_type("text/html", b"<html>"), "text/html");
        assert_eq!(stored_content_type("application/x", b"GIF89a"), "image/gif");
    }
}
