//! The shared file hub: folders, shared files, their permission overrides, and the files
//! attached to channel messages as the hub lists them.

use super::time::{iso, iso_opt};
use super::Timestamp;
use crate::permissions::Override;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a hub permission override is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Folder,
    File,
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::File => "file",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "folder" => Some(Self::Folder),
            "file" => Some(Self::File),
            _ => None,
        }
    }
    /// The audit log's target type for an item of this kind.
    pub fn audit_target(self) -> &'static str {
        match self {
            Self::Folder => "shared_folder",
            Self::File => "shared_file",
        }
    }
}

/// A stored folder of the hub; `parent_id: None` is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedFolder {
    pub id: Uuid,
    pub server_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: Timestamp,
}

/// A stored shared file; `folder_id: None` is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedFileRecord {
    pub id: Uuid,
    pub server_id: Uuid,
    pub folder_id: Option<Uuid>,
    pub filename: String,
    pub url: String,
    pub storage_key: String,
    pub content_type: String,
    pub size_bytes: i32,
    pub uploaded_by: Uuid,
    pub created_at: Timestamp,
}

/// A stored hub override (role targets only).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemOverride {
    pub id: Uuid,
    pub item_type: ItemType,
    pub item_id: Uuid,
    pub rule: Override,
}

/// The direct files of a folder, summed up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FolderStats {
    pub file_count: i64,
    pub total_size_bytes: i64,
    /// Distinct uploaders, in order of first upload.
    pub contributors: Vec<Uuid>,
}

/// `{user_id, username}` of a folder's contributor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contributor {
    pub user_id: Uuid,
    pub username: String,
}

/// The protocol's SharedFolder.
#[derive(Debug, Clone, Serialize)]
pub struct SharedFolderView {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub created_by: Uuid,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    pub file_count: i64,
    pub total_size_bytes: i64,
    pub contributors: Vec<Contributor>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub has_overrides: bool,
}

/// The protocol's SharedFile.
#[derive(Debug, Clone, Serialize)]
pub struct SharedFileView {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    pub filename: String,
    pub url: String,
    pub content_type: String,
    pub size_bytes: i32,
    pub uploaded_by: Uuid,
    pub uploaded_by_name: String,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub has_overrides: bool,
}

impl SharedFileView {
    pub fn new(f: SharedFileRecord, uploaded_by_name: String, has_overrides: bool) -> Self {
        Self {
            id: f.id,
            folder_id: f.folder_id,
            filename: f.filename,
            url: f.url,
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            uploaded_by: f.uploaded_by,
            uploaded_by_name,
            created_at: f.created_at,
            has_overrides,
        }
    }
}

/// A file attached to a (non-deleted) message of a channel, as the hub lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelFileRecord {
    pub id: Uuid,
    pub filename: String,
    pub url: String,
    pub content_type: String,
    pub size_bytes: i32,
    pub message_id: Uuid,
    pub channel_id: Uuid,
    /// The message's author.
    pub uploaded_by: Uuid,
    pub created_at: Timestamp,
}

/// The protocol's ChannelFile.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelFileView {
    pub id: Uuid,
    pub filename: String,
    pub url: String,
    pub content_type: String,
    pub size_bytes: i32,
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub channel_name: String,
    pub category_name: Option<String>,
    pub uploaded_by: Uuid,
    pub uploaded_by_name: String,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
}

impl ChannelFileView {
    pub fn new(
        f: ChannelFileRecord,
        channel_name: String,
        category_name: Option<String>,
        uploaded_by_name: String,
    ) -> Self {
        Self {
            id: f.id,
            filename: f.filename,
            url: f.url,
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            message_id: f.message_id,
            channel_id: f.channel_id,
            channel_name,
            category_name,
            uploaded_by: f.uploaded_by,
            uploaded_by_name,
            created_at: f.created_at,
        }
    }
}

/// Attachments of one channel's non-deleted messages, summed up.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelUploads {
    pub channel_id: Uuid,
    pub last_upload_at: Option<Timestamp>,
    pub total_size_bytes: i64,
}

/// One entry of `hubFiles.channelFileStats`.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelFileStat {
    pub channel_id: Uuid,
    #[serde(serialize_with = "iso_opt")]
    pub last_upload_at: Option<Timestamp>,
    pub total_size_bytes: i64,
    pub access_role_ids: Vec<Uuid>,
}

/// The protocol's hub override object.
#[derive(Debug, Clone, Serialize)]
pub struct ItemOverrideView {
    pub id: Uuid,
    pub item_type: ItemType,
    pub item_id: Uuid,
    pub target_type: &'static str,
    pub target_id: Uuid,
    pub allow: u64,
    pub deny: u64,
}

impl From<&ItemOverride> for ItemOverrideView {
    fn from(o: &ItemOverride) -> Self {
        Self {
            id: o.id,
            item_type: o.item_type,
            item_id: o.item_id,
            target_type: o.rule.target_type.as_str(),
            target_id: o.rule.target_id,
            allow: o.rule.allow,
            deny: o.rule.deny,
        }
    }
}

/// What a recursive folder delete removed, for cleaning up storage after it commits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeletedTree {
    /// The folder and every folder below it.
    pub folder_ids: Vec<Uuid>,
    /// Storage keys of every file that was in them.
    pub storage_keys: Vec<String>,
}

/// What deleting one attachment of a channel message did.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelFileDeletion {
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub filename: String,
    pub storage_key: String,
    /// The message had no text and no other attachment left, so it was soft-deleted.
    pub message_deleted: bool,
}

/// The storage key prefix of a folder's shared files (`None`: the root).
pub fn shared_prefix(server_id: Uuid, folder_id: Option<Uuid>) -> String {
    match folder_id {
        Some(f) => format!("{server_id}/shared/{f}"),
        None => format!("{server_id}/shared/root"),
    }
}

/// The storage key of a shared file: ids only, never a name from the client.
pub fn shared_file_key(server_id: Uuid, folder_id: Option<Uuid>, file_id: Uuid) -> String {
    format!("{}/{file_id}", shared_prefix(server_id, folder_id))
}

/// A folder or file name: at most `max` characters, not blank, no `/` or `\`, no control
/// characters, not `.` or `..`. The message names `field`.
pub fn check_item_name(field: &str, name: &str, max: usize) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || name.trim().is_empty() {
        return Err(format!("Invalid input: `{field}` must not be blank"));
    }
    if n > max {
        return Err(format!(
            "Invalid input: `{field}` must be at most {max} characters"
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(format!(
            "Invalid input: `{field}` must not contain `/`, `\\` or control characters"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("Invalid input: `{field}` must not be `.` or `..`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_names_keep_out_separators_and_controls() {
        for bad in [
            "",
            "   ",
            "a/b",
            "a\\b",
            "nul\0",
            "tab\there",
            "line\nbreak",
            ".",
            "..",
            "\u{7f}",
        ] {
            assert!(check_item_name("name", bad, 255).is_err(), "{bad:?}");
        }
        assert!(check_item_name("name", &"x".repeat(256), 255).is_err());
        for good in [
            "Reports",
            "é 2026 (final).pdf",
            "..hidden",
            &"x".repeat(255),
        ] {
            assert!(check_item_name("name", good, 255).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn shared_keys_are_built_from_ids() {
        let (s, f, x) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(
            shared_file_key(s, Some(f), x),
            format!("{s}/shared/{f}/{x}")
        );
        assert_eq!(shared_file_key(s, None, x), format!("{s}/shared/root/{x}"));
        assert!(crate::ports::BlobKey::new(&shared_file_key(s, Some(f), x)).is_ok());
    }
}
