//! [`ContentStore`] on SQL: `page_contents`, `page_revisions`, `news_posts`, `news_comments`.
//! Each belongs to a server through its channel (a comment through its post's channel).

use crate::db::{db_error, Db};
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{
    NewSync, NewsCommentRecord, NewsPostPatch, NewsPostRecord, PageContent, PageRevision, SyncWith,
    Timestamp,
};
use ecto_core::ports::{ContentStore, PageEdit, PageUpdate};
use ecto_core::CoreResult;
use uuid::Uuid;

/// Pages and news.
pub struct SqlContentStore(pub Db);

type PageRow = (
    DbId,
    String,
    Option<String>,
    i32,
    Option<DbId>,
    DateTime<Utc>,
);

fn page(r: PageRow) -> PageContent {
    PageContent {
        channel_id: r.0 .0,
        content: r.1,
        banner_url: r.2,
        version: r.3,
        edited_by: r.4.map(|d| d.0),
        edited_at: r.5,
    }
}

type RevisionRow = (DbId, DbId, String, i32, DbId, DateTime<Utc>);

fn revision(r: RevisionRow) -> PageRevision {
    PageRevision {
        id: r.0 .0,
        channel_id: r.1 .0,
        content: r.2,
        version: r.3,
        edited_by: r.4 .0,
        created_at: r.5,
    }
}

type PostRow = (
    DbId,
    DbId,
    DbId,
    String,
    Option<String>,
    Option<String>,
    String,
    i32,
    bool,
    Option<serde_json::Value>,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn post(r: PostRow) -> NewsPostRecord {
    NewsPostRecord {
        id: r.0 .0,
        channel_id: r.1 .0,
        author_id: r.2 .0,
        title: r.3,
        subtitle: r.4,
        hero_image_url: r.5,
        content: r.6,
        comment_count: r.7,
        submitted_to_discovery: r.8,
        discovery_validation_errors: r.9.and_then(|v| serde_json::from_value(v).ok()),
        published_at: r.10,
        created_at: r.11,
        updated_at: r.12,
    }
}

type CommentRow = (
    DbId,
    DbId,
    DbId,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

fn comment(r: CommentRow) -> NewsCommentRecord {
    NewsCommentRecord {
        id: r.0 .0,
        post_id: r.1 .0,
        author_id: r.2 .0,
        content: r.3,
        edited_at: r.4,
        created_at: r.5,
    }
}

/// The ids of the server's channels, as a subquery (the schema of the current arm in scope).
macro_rules! own_channels {
    ($server_id:expr) => {
        channels::table
            .filter(channels::server_id.eq(DbId($server_id)))
            .select(channels::id)
    };
}

/// The ids of the posts of the server's channels, as a subquery.
macro_rules! own_posts {
    ($server_id:expr) => {
        news_posts::table
            .filter(news_posts::channel_id.eq_any(own_channels!($server_id)))
            .select(news_posts::id)
    };
}

#[async_trait]
impl ContentStore for SqlContentStore {
    async fn ensure_page(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        at: Timestamp,
    ) -> CoreResult<Option<PageContent>> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let exists = channels::table
                    .filter(channels::server_id.eq(DbId(server_id)))
                    .filter(channels::id.eq(DbId(channel_id)))
                    .count()
                    .get_result::<i64>(conn)
                    .await?;
                if exists == 0 {
                    return Ok::<_, DieselError>(None);
                }
                diesel::insert_into(page_contents::table)
                    .values((
                        page_contents::channel_id.eq(DbId(channel_id)),
                        page_contents::content.eq(""),
                        page_contents::version.eq(1),
                        page_contents::edited_at.eq(at),
                    ))
                    .on_conflict(page_contents::channel_id)
                    .do_nothing()
                    .execute(conn)
                    .await?;
                page_contents::table
                    .filter(page_contents::channel_id.eq(DbId(channel_id)))
                    .first::<PageRow>(conn)
                    .await
                    .optional()
                    .map(|r| r.map(page))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn update_page(&self, edit: PageEdit) -> CoreResult<PageUpdate> {
        db_run!(self.0, write, |conn| {
            let edit = edit.clone();
            conn.transaction(async move |conn| {
                let current = page_contents::table
                    .filter(page_contents::channel_id.eq(DbId(edit.channel_id)))
                    .filter(page_contents::channel_id.eq_any(own_channels!(edit.server_id)))
                    .select((page_contents::content, page_contents::version))
                    .first::<(String, i32)>(conn)
                    .await
                    .optional()?;
                let Some((old_content, version)) = current else {
                    return Ok::<_, DieselError>(PageUpdate::Missing);
                };
                if version != edit.expected_version {
                    return Ok(PageUpdate::Conflict { current: version });
                }
                // Compare-and-set on the version: a concurrent update of the same version
                // leaves this one with nothing to update.
                let n = diesel::update(
                    page_contents::table
                        .filter(page_contents::channel_id.eq(DbId(edit.channel_id)))
                        .filter(page_contents::version.eq(edit.expected_version)),
                )
                .set((
                    page_contents::content.eq(&edit.content),
                    page_contents::version.eq(edit.expected_version + 1),
                    page_contents::edited_by.eq(Some(DbId(edit.editor))),
                    page_contents::edited_at.eq(edit.at),
                ))
                .execute(conn)
                .await?;
                if n == 0 {
                    let current = page_contents::table
                        .filter(page_contents::channel_id.eq(DbId(edit.channel_id)))
                        .select(page_contents::version)
                        .first::<i32>(conn)
                        .await?;
                    return Ok(PageUpdate::Conflict { current });
                }
                diesel::insert_into(page_revisions::table)
                    .values((
                        page_revisions::id.eq(DbId(edit.revision_id)),
                        page_revisions::channel_id.eq(DbId(edit.channel_id)),
                        page_revisions::content.eq(&old_content),
                        page_revisions::version.eq(version),
                        page_revisions::edited_by.eq(DbId(edit.editor)),
                        page_revisions::created_at.eq(edit.at),
                    ))
                    .execute(conn)
                    .await?;
                page_contents::table
                    .filter(page_contents::channel_id.eq(DbId(edit.channel_id)))
                    .first::<PageRow>(conn)
                    .await
                    .map(|r| PageUpdate::Updated(page(r)))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn set_page_banner(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        banner_url: Option<String>,
    ) -> CoreResult<Option<PageContent>> {
        db_run!(self.0, write, |conn| {
            let banner_url = banner_url.clone();
            conn.transaction(async move |conn| {
                let n = diesel::update(
                    page_contents::table
                        .filter(page_contents::channel_id.eq(DbId(channel_id)))
                        .filter(page_contents::channel_id.eq_any(own_channels!(server_id))),
                )
                .set(page_contents::banner_url.eq(banner_url.as_deref()))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<_, DieselError>(None);
                }
                page_contents::table
                    .filter(page_contents::channel_id.eq(DbId(channel_id)))
                    .first::<PageRow>(conn)
                    .await
                    .map(|r| Some(page(r)))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn page_revisions(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<PageRevision>> {
        db_run!(self.0, read, |conn| {
            let mut q = page_revisions::table
                .filter(page_revisions::channel_id.eq(DbId(channel_id)))
                .filter(page_revisions::channel_id.eq_any(own_channels!(server_id)))
                .into_boxed();
            if let Some(before) = before {
                q = q.filter(page_revisions::id.lt(DbId(before)));
            }
            q.order(page_revisions::id.desc())
                .limit(limit)
                .load::<RevisionRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(revision).collect())
                .map_err(db_error)
        })
    }

    async fn create_post(
        &self,
        server_id: Uuid,
        p: NewsPostRecord,
        sync: Option<NewSync>,
    ) -> CoreResult<()> {
        let errors = p
            .discovery_validation_errors
            .as_ref()
            .map(|e| serde_json::json!(e));
        db_run!(self.0, write, |conn| {
            let p = p.clone();
            let errors = errors.clone();
            let sync = sync.clone();
            conn.transaction(async move |conn| {
                diesel::insert_into(news_posts::table)
                    .values((
                        news_posts::id.eq(DbId(p.id)),
                        news_posts::channel_id.eq(DbId(p.channel_id)),
                        news_posts::author_id.eq(DbId(p.author_id)),
                        news_posts::title.eq(&p.title),
                        news_posts::subtitle.eq(p.subtitle.as_deref()),
                        news_posts::hero_image_url.eq(p.hero_image_url.as_deref()),
                        news_posts::content.eq(&p.content),
                        news_posts::comment_count.eq(p.comment_count),
                        news_posts::submitted_to_discovery.eq(p.submitted_to_discovery),
                        news_posts::discovery_validation_errors.eq(errors),
                        news_posts::published_at.eq(p.published_at),
                        news_posts::created_at.eq(p.created_at),
                        news_posts::updated_at.eq(p.updated_at),
                    ))
                    .execute(conn)
                    .await?;
                if let Some(call) = sync {
                    insert_sync!(conn, server_id, call, p.created_at);
                }
                Ok::<(), DieselError>(())
            })
            .await
            .map_err(db_error)
        })
    }

    async fn post(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<NewsPostRecord>> {
        db_run!(self.0, read, |conn| {
            news_posts::table
                .filter(news_posts::id.eq(DbId(id)))
                .filter(news_posts::channel_id.eq_any(own_channels!(server_id)))
                .first::<PostRow>(conn)
                .await
                .optional()
                .map(|r| r.map(post))
                .map_err(db_error)
        })
    }

    async fn posts(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<NewsPostRecord>> {
        db_run!(self.0, read, |conn| {
            let mut q = news_posts::table
                .filter(news_posts::channel_id.eq(DbId(channel_id)))
                .filter(news_posts::channel_id.eq_any(own_channels!(server_id)))
                .into_boxed();
            if let Some(before) = before {
                q = q.filter(news_posts::id.lt(DbId(before)));
            }
            q.order(news_posts::id.desc())
                .limit(limit)
                .load::<PostRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(post).collect())
                .map_err(db_error)
        })
    }

    async fn update_post(
        &self,
        server_id: Uuid,
        id: Uuid,
        patch: NewsPostPatch,
        at: Timestamp,
        sync: SyncWith<'_, NewsPostRecord>,
    ) -> CoreResult<Option<NewsPostRecord>> {
        db_run!(self.0, write, |conn| {
            let patch = patch.clone();
            conn.transaction(async move |conn| {
                // Each statement sets one column, so concurrent patches of different fields
                // both take effect.
                let n = diesel::update(
                    news_posts::table
                        .filter(news_posts::id.eq(DbId(id)))
                        .filter(news_posts::channel_id.eq_any(own_channels!(server_id))),
                )
                .set(news_posts::updated_at.eq(at))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<_, DieselError>(None);
                }
                let target = || news_posts::table.filter(news_posts::id.eq(DbId(id)));
                if let Some(title) = &patch.title {
                    diesel::update(target())
                        .set(news_posts::title.eq(title))
                        .execute(conn)
                        .await?;
                }
                if let Some(subtitle) = &patch.subtitle {
                    diesel::update(target())
                        .set(news_posts::subtitle.eq(subtitle.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(hero) = &patch.hero_image_url {
                    diesel::update(target())
                        .set(news_posts::hero_image_url.eq(hero.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(content) = &patch.content {
                    diesel::update(target())
                        .set(news_posts::content.eq(content))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.submitted_to_discovery {
                    diesel::update(target())
                        .set(news_posts::submitted_to_discovery.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(errors) = &patch.discovery_validation_errors {
                    diesel::update(target())
                        .set(
                            news_posts::discovery_validation_errors
                                .eq(errors.as_ref().map(|e| serde_json::json!(e))),
                        )
                        .execute(conn)
                        .await?;
                }
                let now = post(target().first::<PostRow>(conn).await?);
                if let Some(call) = sync.and_then(|make| make(&now)) {
                    insert_sync!(conn, server_id, call, at);
                }
                Ok(Some(now))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn delete_post(
        &self,
        server_id: Uuid,
        id: Uuid,
        at: Timestamp,
        sync: SyncWith<'_, NewsPostRecord>,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let mine = news_posts::table
                    .filter(news_posts::id.eq(DbId(id)))
                    .filter(news_posts::channel_id.eq_any(own_channels!(server_id)))
                    .first::<PostRow>(conn)
                    .await
                    .optional()?;
                let Some(was) = mine else {
                    return Ok::<bool, DieselError>(false);
                };
                if let Some(call) = sync.and_then(|make| make(&post(was))) {
                    insert_sync!(conn, server_id, call, at);
                }
                diesel::delete(news_comments::table.filter(news_comments::post_id.eq(DbId(id))))
                    .execute(conn)
                    .await?;
                diesel::delete(news_posts::table.filter(news_posts::id.eq(DbId(id))))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn comments(
        &self,
        server_id: Uuid,
        post_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<NewsCommentRecord>> {
        db_run!(self.0, read, |conn| {
            let mut q = news_comments::table
                .filter(news_comments::post_id.eq(DbId(post_id)))
                .filter(news_comments::post_id.eq_any(own_posts!(server_id)))
                .into_boxed();
            if let Some(after) = after {
                q = q.filter(news_comments::id.gt(DbId(after)));
            }
            q.order(news_comments::id.asc())
                .limit(limit)
                .load::<CommentRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(comment).collect())
                .map_err(db_error)
        })
    }

    async fn comment(
        &self,
        server_id: Uuid,
        id: Uuid,
    ) -> CoreResult<Option<(NewsCommentRecord, Uuid)>> {
        db_run!(self.0, read, |conn| {
            news_comments::table
                .inner_join(news_posts::table)
                .filter(news_comments::id.eq(DbId(id)))
                .filter(news_posts::channel_id.eq_any(own_channels!(server_id)))
                .select((news_comments::all_columns, news_posts::channel_id))
                .first::<(CommentRow, DbId)>(conn)
                .await
                .optional()
                .map(|r| r.map(|(c, channel)| (comment(c), channel.0)))
                .map_err(db_error)
        })
    }

    async fn add_comment(&self, server_id: Uuid, c: NewsCommentRecord) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let c = c.clone();
            conn.transaction(async move |conn| {
                let n = diesel::update(
                    news_posts::table
                        .filter(news_posts::id.eq(DbId(c.post_id)))
                        .filter(news_posts::channel_id.eq_any(own_channels!(server_id))),
                )
                .set(news_posts::comment_count.eq(news_posts::comment_count + 1))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                diesel::insert_into(news_comments::table)
                    .values((
                        news_comments::id.eq(DbId(c.id)),
                        news_comments::post_id.eq(DbId(c.post_id)),
                        news_comments::author_id.eq(DbId(c.author_id)),
                        news_comments::content.eq(&c.content),
                        news_comments::edited_at.eq(c.edited_at),
                        news_comments::created_at.eq(c.created_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn delete_comment(&self, server_id: Uuid, id: Uuid) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let post_id = news_comments::table
                    .filter(news_comments::id.eq(DbId(id)))
                    .filter(news_comments::post_id.eq_any(own_posts!(server_id)))
                    .select(news_comments::post_id)
                    .first::<DbId>(conn)
                    .await
                    .optional()?;
                let Some(post_id) = post_id else {
                    return Ok::<bool, DieselError>(false);
                };
                diesel::delete(news_comments::table.filter(news_comments::id.eq(DbId(id))))
                    .execute(conn)
                    .await?;
                diesel::update(
                    news_posts::table
                        .filter(news_posts::id.eq(post_id))
                        .filter(news_posts::comment_count.gt(0)),
                )
                .set(news_posts::comment_count.eq(news_posts::comment_count - 1))
                .execute(conn)
                .await?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }
}
