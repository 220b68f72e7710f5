//! The `pages` and `news` routers.

use crate::trpc::{Access, Registry};
use crate::validate::{double_option, length, nullable, opt_length, range, url, Id, Validate};
use crate::ApiError;
use ecto_core::model::NewsPostPatch;
use ecto_core::usecases::news::{self, NewPost};
use ecto_core::usecases::pages;
use serde::Deserialize;
use uuid::Uuid;

/// Image URLs (banners, hero images): an http(s) URL, or a path on this server (`/files/…`).
fn image_url(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    opt_length(field, value, 1, 512)?;
    url(field, value, 512)
}

#[derive(Deserialize)]
struct ChannelId {
    channel_id: Id,
}
impl Validate for ChannelId {}

#[derive(Deserialize)]
struct UpdateContent {
    channel_id: Id,
    content: String,
    version: i32,
}
impl Validate for UpdateContent {
    fn validate(&self) -> Result<(), ApiError> {
        length("content", &self.content, 0, 100_000)?;
        range("version", self.version, 1, i32::MAX - 1)
    }
}

#[derive(Deserialize)]
struct UpdateBanner {
    channel_id: Id,
    #[serde(deserialize_with = "nullable")]
    banner_url: Option<String>,
}
impl Validate for UpdateBanner {
    fn validate(&self) -> Result<(), ApiError> {
        image_url("banner_url", self.banner_url.as_deref())
    }
}

#[derive(Deserialize)]
struct History {
    channel_id: Id,
    limit: Option<i64>,
    cursor: Option<Id>,
}
impl Validate for History {
    fn validate(&self) -> Result<(), ApiError> {
        self.limit.map_or(Ok(()), |l| range("limit", l, 1, 50))
    }
}

#[derive(Deserialize)]
struct ListPosts {
    channel_id: Id,
    before: Option<Id>,
    limit: Option<i64>,
}
impl Validate for ListPosts {
    fn validate(&self) -> Result<(), ApiError> {
        self.limit.map_or(Ok(()), |l| range("limit", l, 1, 50))
    }
}

#[derive(Deserialize)]
struct PostId {
    post_id: Id,
}
impl Validate for PostId {}

#[derive(Deserialize)]
struct CreatePost {
    channel_id: Id,
    title: String,
    subtitle: Option<String>,
    hero_image_url: Option<String>,
    content: String,
    submit_to_discovery: Option<bool>,
}
impl Validate for CreatePost {
    fn validate(&self) -> Result<(), ApiError> {
        length("title", &self.title, 1, 200)?;
        opt_length("subtitle", self.subtitle.as_deref(), 0, 500)?;
        image_url("hero_image_url", self.hero_image_url.as_deref())?;
        length("content", &self.content, 1, 100_000)
    }
}

#[derive(Deserialize)]
struct UpdatePost {
    post_id: Id,
    title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    subtitle: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    hero_image_url: Option<Option<String>>,
    content: Option<String>,
    submit_to_discovery: Option<bool>,
}
impl Validate for UpdatePost {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("title", self.title.as_deref(), 1, 200)?;
        opt_length(
            "subtitle",
            self.subtitle.clone().flatten().as_deref(),
            0,
            500,
        )?;
        image_url(
            "hero_image_url",
            self.hero_image_url.clone().flatten().as_deref(),
        )?;
        opt_length("content", self.content.as_deref(), 1, 100_000)
    }
}

#[derive(Deserialize)]
struct ListComments {
    post_id: Id,
    after: Option<Id>,
    limit: Option<i64>,
}
impl Validate for ListComments {
    fn validate(&self) -> Result<(), ApiError> {
        self.limit.map_or(Ok(()), |l| range("limit", l, 1, 100))
    }
}

#[derive(Deserialize)]
struct AddComment {
    post_id: Id,
    content: String,
}
impl Validate for AddComment {
    fn validate(&self) -> Result<(), ApiError> {
        length("content", &self.content, 1, 2000)
    }
}

#[derive(Deserialize)]
struct CommentId {
    comment_id: Id,
}
impl Validate for CommentId {}

pub fn register(r: &mut Registry) {
    r.query(
        "pages.getContent",
        Access::Protected,
        |ctx, w: ChannelId| async move {
            pages::get_content(&ctx.svc, &ctx.server, ctx.caller(), w.channel_id.into()).await
        },
    );
    r.mutation(
        "pages.updateContent",
        Access::Protected,
        |ctx, w: UpdateContent| async move {
            pages::update_content(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                w.content,
                w.version,
            )
            .await
        },
    );
    r.mutation(
        "pages.updateBanner",
        Access::Protected,
        |ctx, w: UpdateBanner| async move {
            pages::update_banner(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                w.banner_url,
            )
            .await
        },
    );
    r.query(
        "pages.getHistory",
        Access::Protected,
        |ctx, w: History| async move {
            pages::history(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                w.cursor.map(Uuid::from),
                w.limit.unwrap_or(20),
            )
            .await
        },
    );

    r.query(
        "news.listPosts",
        Access::Protected,
        |ctx, w: ListPosts| async move {
            news::list_posts(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                w.before.map(Uuid::from),
                w.limit.unwrap_or(20),
            )
            .await
        },
    );
    r.query(
        "news.getPost",
        Access::Protected,
        |ctx, w: PostId| async move {
            news::get_post(&ctx.svc, &ctx.server, ctx.caller(), w.post_id.into()).await
        },
    );
    r.mutation(
        "news.createPost",
        Access::Protected,
        |ctx, w: CreatePost| async move {
            let input = NewPost {
                channel_id: w.channel_id.into(),
                title: w.title,
                subtitle: w.subtitle,
                hero_image_url: w.hero_image_url,
                content: w.content,
                submit_to_discovery: w.submit_to_discovery.unwrap_or(false),
            };
            news::create_post(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.mutation(
        "news.updatePost",
        Access::Protected,
        |ctx, w: UpdatePost| async move {
            let patch = NewsPostPatch {
                title: w.title,
                subtitle: w.subtitle,
                hero_image_url: w.hero_image_url,
                content: w.content,
                ..NewsPostPatch::default()
            };
            news::update_post(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.post_id.into(),
                patch,
                w.submit_to_discovery,
            )
            .await
        },
    );
    r.mutation(
        "news.deletePost",
        Access::Protected,
        |ctx, w: PostId| async move {
            news::delete_post(&ctx.svc, &ctx.server, ctx.caller(), w.post_id.into()).await
        },
    );
    r.query(
        "news.listComments",
        Access::Protected,
        |ctx, w: ListComments| async move {
            news::list_comments(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.post_id.into(),
                w.after.map(Uuid::from),
                w.limit.unwrap_or(50),
            )
            .await
        },
    );
    r.mutation(
        "news.addComment",
        Access::Protected,
        |ctx, w: AddComment| async move {
            news::add_comment(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.post_id.into(),
                w.content,
            )
            .await
        },
    );
    r.mutation(
        "news.deleteComment",
        Access::Protected,
        |ctx, w: CommentId| async move {
            news::delete_comment(&ctx.svc, &ctx.server, ctx.caller(), w.comment_id.into()).await
        },
    );
}
