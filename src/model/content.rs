//! Page channels' content with its revisions, and news posts with their comments.

use super::time::{iso, iso_opt};
use super::{MessageAuthor, Timestamp};
use serde::Serialize;
use uuid::Uuid;

/// The protocol's PageContent: the current text of a page channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageContent {
    pub channel_id: Uuid,
    pub content: String,
    pub banner_url: Option<String>,
    /// Starts at 1; every content update adds one.
    pub version: i32,
    pub edited_by: Option<Uuid>,
    #[serde(serialize_with = "iso")]
    pub edited_at: Timestamp,
}

/// A page's content as it was before an update (`pages.getHistory`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageRevision {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub content: String,
    /// The version this content had.
    pub version: i32,
    /// Who replaced it.
    pub edited_by: Uuid,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
}

/// A stored news post.
#[derive(Debug, Clone, PartialEq)]
pub struct NewsPostRecord {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub subtitle: Option<String>,
    pub hero_image_url: Option<String>,
    pub content: String,
    pub comment_count: i32,
    pub submitted_to_discovery: bool,
    pub discovery_validation_errors: Option<Vec<String>>,
    pub published_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The protocol's NewsPost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewsPostView {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub author: MessageAuthor,
    pub title: String,
    pub subtitle: Option<String>,
    pub hero_image_url: Option<String>,
    pub content: String,
    #[serde(serialize_with = "iso")]
    pub published_at: Timestamp,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "iso")]
    pub updated_at: Timestamp,
    pub comment_count: i32,
    pub submitted_to_discovery: bool,
    pub discovery_validation_errors: Option<Vec<String>>,
    /// The post's latest submission (or retraction) waits to reach ecto-central: its
    /// validation errors are not known yet. Sent only when true; not in the reference.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub discovery_pending: bool,
}

impl NewsPostView {
    pub fn new(r: NewsPostRecord, author: MessageAuthor) -> Self {
        NewsPostView {
            id: r.id,
            channel_id: r.channel_id,
            author,
            title: r.title,
            subtitle: r.subtitle,
            hero_image_url: r.hero_image_url,
            content: r.content,
            published_at: r.published_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            comment_count: r.comment_count,
            submitted_to_discovery: r.submitted_to_discovery,
            discovery_validation_errors: r.discovery_validation_errors,
            discovery_pending: false,
        }
    }
}

/// What `news.updatePost` changes: `None` keeps a field, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewsPostPatch {
    pub title: Option<String>,
    pub subtitle: Option<Option<String>>,
    pub hero_image_url: Option<Option<String>>,
    pub content: Option<String>,
    /// Submitted to ecto-central's discovery, or retracted.
    pub submitted_to_discovery: Option<bool>,
    /// What ecto-central found wrong with the submitted post (`Some(None)` clears it).
    pub discovery_validation_errors: Option<Option<Vec<String>>>,
}

/// A stored comment of a news post.
#[derive(Debug, Clone, PartialEq)]
pub struct NewsCommentRecord {
    pub id: Uuid,
    pub post_id: Uuid,
    pub author_id: Uuid,
    pub content: String,
    pub edited_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// The protocol's NewsComment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewsCommentView {
    pub id: Uuid,
    pub post_id: Uuid,
    pub author: MessageAuthor,
    pub content: String,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "iso_opt")]
    pub edited_at: Option<Timestamp>,
}

impl NewsCommentView {
    pub fn new(r: NewsCommentRecord, author: MessageAuthor) -> Self {
        NewsCommentView {
            id: r.id,
            post_id: r.post_id,
            author,
            content: r.content,
            created_at: r.created_at,
            edited_at: r.edited_at,
        }
    }
}
