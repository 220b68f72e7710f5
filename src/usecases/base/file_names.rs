//! File names, content types and storage keys: the display name kept for an upload, the
//! ASCII name used in its key, the content type sniffed from its bytes and whether it may be
//! shown inline.
//!
//! Storage keys are built here only, from ids and [`key_name`] (an ASCII form of the file
//! name), so no key derived from user input can leave the storage root.

use crate::model::Server;
use crate::ports::BlobKey;
use crate::CoreResult;
use uuid::Uuid;

/// Longest display name kept for a file.
pub const MAX_FILENAME_CHARS: usize = 255;
/// Longest ASCII file name used in a storage key. Short enough that a whole key stays well
/// under the file-name limit of object stores that keep each key in one file name (s3s-fs
/// does: `.bucket-{b}.object-{key}.upload-{id}.metadata.json` must fit in 255 bytes); the
/// display name, kept whole in the database, is what people see.
const MAX_KEY_NAME_BYTES: usize = 40;

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
    /// The content type of the format.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }
    /// The file extension used in storage keys.
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

/// The key of an icon or banner URL of this server (`…/files/{server}/{icons|banners}/…`).
pub fn own_image_key(server: &Server, url: &str) -> Option<BlobKey> {
    let rest = &url[url.find("/files/")? + "/files/".len()..];
    let key = BlobKey::new(rest).ok()?;
    let segments: Vec<&str> = key.segments().collect();
    (segments.len() == 3
        && segments[0] == server.id.to_string()
        && PUBLIC_FOLDERS.contains(&segments[1]))
    .then_some(key)
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
