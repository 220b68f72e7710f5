//! Page contents with their revisions, and news posts with their comments.
//!
//! Every method takes the request's server and only touches rows whose channel belongs to it:
//! an id of another server is absent.

use crate::model::{
    NewSync, NewsCommentRecord, NewsPostPatch, NewsPostRecord, PageContent, PageRevision, SyncWith,
    Timestamp,
};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// What a content update did.
#[derive(Debug, Clone, PartialEq)]
pub enum PageUpdate {
    /// Written: the page as it is now.
    Updated(PageContent),
    /// The page is at another version than the one given; nothing written.
    Conflict { current: i32 },
    /// The channel has no page in this server; nothing written.
    Missing,
}

/// A content update of a page.
#[derive(Debug, Clone)]
pub struct PageEdit {
    pub server_id: Uuid,
    pub channel_id: Uuid,
    /// The version the editor read; the update applies only if the page is still at it.
    pub expected_version: i32,
    pub content: String,
    pub editor: Uuid,
    /// Id of the revision row that keeps the replaced content.
    pub revision_id: Uuid,
    pub at: Timestamp,
}

/// Pages and news.
#[async_trait]
pub trait ContentStore: Send + Sync {
    /// The page of a channel of the server, created empty at version 1 when missing (only call
    /// this for a page channel of the server).
    async fn ensure_page(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        at: Timestamp,
    ) -> CoreResult<Option<PageContent>>;
    /// In one transaction: if the page is at `expected_version`, keeps its current content as a
    /// revision (with that version and `edited_by` = the editor), then writes the new content
    /// with version + 1.
    async fn update_page(&self, edit: PageEdit) -> CoreResult<PageUpdate>;
    /// Sets the banner (the version is unchanged); `None` when the page is absent.
    async fn set_page_banner(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        banner_url: Option<String>,
    ) -> CoreResult<Option<PageContent>>;
    /// Revisions of a page, newest (highest id) first, ids below `before`, at most `limit`.
    async fn page_revisions(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<PageRevision>>;

    /// Stores a new post (its channel must be a news channel of the server) and queues `sync`
    /// in the central outbox, in one transaction.
    async fn create_post(
        &self,
        server_id: Uuid,
        post: NewsPostRecord,
        sync: Option<NewSync>,
    ) -> CoreResult<()>;
    /// The post `id` if its channel is in the server.
    async fn post(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<NewsPostRecord>>;
    /// Posts of a channel, newest first (by id, which is also publication order), ids below
    /// `before`, at most `limit`.
    async fn posts(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<NewsPostRecord>>;
    /// Applies the patch and sets `updated_at`, and queues the call `sync` makes from the
    /// updated post, in one transaction; the post as it is now, `None` when absent.
    async fn update_post(
        &self,
        server_id: Uuid,
        id: Uuid,
        patch: NewsPostPatch,
        at: Timestamp,
        sync: SyncWith<'_, NewsPostRecord>,
    ) -> CoreResult<Option<NewsPostRecord>>;
    /// Deletes the post and its comments, and queues the call `sync` makes from the post as
    /// it was, in one transaction; `false` when absent.
    async fn delete_post(
        &self,
        server_id: Uuid,
        id: Uuid,
        at: Timestamp,
        sync: SyncWith<'_, NewsPostRecord>,
    ) -> CoreResult<bool>;

    /// Comments of a post, oldest first, ids above `after`, at most `limit`.
    async fn comments(
        &self,
        server_id: Uuid,
        post_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<NewsCommentRecord>>;
    /// The comment `id` with its post's channel, if that channel is in the server.
    async fn comment(
        &self,
        server_id: Uuid,
        id: Uuid,
    ) -> CoreResult<Option<(NewsCommentRecord, Uuid)>>;
    /// In one transaction: inserts the comment and adds one to its post's `comment_count`;
    /// `false` (nothing written) when the post is not in the server.
    async fn add_comment(&self, server_id: Uuid, comment: NewsCommentRecord) -> CoreResult<bool>;
    /// In one transaction: deletes the comment and takes one from its post's `comment_count`
    /// (never below 0); `false` when absent.
    async fn delete_comment(&self, server_id: Uuid, id: Uuid) -> CoreResult<bool>;
}
