//! The `news` router: posts of news channels and their comments.
//!
//! Discovery submission (`submit_to_discovery: true`) needs an ecto-central identity (FORBIDDEN
//! 6100 otherwise), a server synchronised with ecto-central that is discoverable and approved
//! (6101 otherwise); the post is then sent to central (`discovery-post-sync`, through the
//! outbox) and the request answers with central's validation errors, or, when central does not
//! answer in time, with `discovery_pending: true`.

use super::base::access::{channel_and_perms, Perms};
use super::base::central;
use super::base::identity::Caller;
use super::base::lookup;
use super::base::publish::{publish, success};
use super::base::views::unknown_author;
use crate::model::{
    Channel, ChannelType, NewsCommentRecord, NewsCommentView, NewsPostPatch, NewsPostRecord,
    NewsPostView, Server,
};
use crate::permissions::bits;
use crate::ports::Scope;
use crate::{new_id, CoreError, CoreResult, EctoCode, ErrorKind, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// Checks that `caller` may submit posts of `server` to discovery: FORBIDDEN 6100 for an
/// account of this server (discovery needs an ecto-central identity, reference §2.4), 6101
/// when the server is not synchronised with ecto-central or not discoverable and approved.
async fn require_discovery(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<()> {
    if caller.identity_type != crate::model::IdentityType::Global {
        return Err(CoreError::ecto(
            ErrorKind::Forbidden,
            EctoCode::DiscoveryCentralAccountRequired,
            "Submitting to discovery needs an ecto-central account",
        ));
    }
    let refused = |why: &str| {
        Err(CoreError::ecto(
            ErrorKind::Forbidden,
            EctoCode::DiscoveryNotApproved,
            why,
        ))
    };
    if !central::enabled(svc) {
        return refused(
            "Discovery submission needs a server synchronised with ecto-central, which this \
             server is not; submit without `submit_to_discovery`",
        );
    }
    let config = svc.servers.config(server.id).await?;
    if !(config.discoverable && config.discovery_approved) {
        return refused("This server is not approved for discovery");
    }
    Ok(())
}

/// After a change that queued a call about `post` for central: waits for it to go out
/// ([`central::settle`]) and returns the post as it then is (with central's validation
/// errors), marked `discovery_pending` when the call is still queued.
async fn settled_view(
    svc: &Services,
    server: &Server,
    post: NewsPostRecord,
) -> CoreResult<NewsPostView> {
    let settled = central::settle(svc, server.id, &post.id.to_string()).await?;
    let post = svc.content.post(server.id, post.id).await?.unwrap_or(post);
    let mut view = post_view(svc, server.id, post).await?;
    view.discovery_pending = !settled;
    Ok(view)
}

/// A news channel of the server (3000, 3006) the caller can read (5001).
async fn readable_news_channel(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<(Channel, Perms)> {
    let (channel, perms) = channel_and_perms(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    if channel.channel_type != ChannelType::News {
        return Err(CoreError::ecto(
            ErrorKind::BadRequest,
            EctoCode::NewsChannelRequired,
            "Channel is not a news channel",
        ));
    }
    Ok((channel, perms))
}

/// The post (NOT_FOUND 4005 unless in the server), its channel and the caller's permissions,
/// once the caller is known to read that channel (FORBIDDEN 5001 otherwise).
async fn readable_post(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    post_id: Uuid,
) -> CoreResult<(NewsPostRecord, Channel, Perms)> {
    let perms = Perms::load(svc, server, caller).await?;
    let post = svc
        .content
        .post(server.id, post_id)
        .await?
        .ok_or_else(CoreError::post_not_found)?;
    let channel = svc
        .structure
        .channel(server.id, post.channel_id)
        .await?
        .ok_or_else(CoreError::post_not_found)?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    Ok((post, channel, perms))
}

async fn post_views(
    svc: &Services,
    server_id: Uuid,
    posts: Vec<NewsPostRecord>,
) -> CoreResult<Vec<NewsPostView>> {
    let people = lookup::authors(svc, server_id, posts.iter().map(|p| p.author_id)).await?;
    // Posts whose submission still waits to reach central (looked up only when central may
    // have any of them).
    let queued = if posts.iter().any(|p| p.submitted_to_discovery) && central::enabled(svc) {
        svc.outbox.pending(server_id).await?
    } else {
        Vec::new()
    };
    Ok(posts
        .into_iter()
        .map(|p| {
            let author = people
                .get(&p.author_id)
                .cloned()
                .unwrap_or_else(|| unknown_author(p.author_id));
            let pending = queued.contains(&p.id.to_string());
            let mut view = NewsPostView::new(p, author);
            view.discovery_pending = pending;
            view
        })
        .collect())
}

async fn post_view(
    svc: &Services,
    server_id: Uuid,
    post: NewsPostRecord,
) -> CoreResult<NewsPostView> {
    post_views(svc, server_id, vec![post])
        .await?
        .pop()
        .ok_or_else(CoreError::post_not_found)
}

async fn comment_views(
    svc: &Services,
    server_id: Uuid,
    comments: Vec<NewsCommentRecord>,
) -> CoreResult<Vec<NewsCommentView>> {
    let people = lookup::authors(svc, server_id, comments.iter().map(|c| c.author_id)).await?;
    Ok(comments
        .into_iter()
        .map(|c| {
            let author = people
                .get(&c.author_id)
                .cloned()
                .unwrap_or_else(|| unknown_author(c.author_id));
            NewsCommentView::new(c, author)
        })
        .collect())
}

/// Checks that the caller may publish in a news channel (3000, 3006, 5001); for the hero
/// image upload.
pub async fn require_publisher(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<()> {
    let (channel, perms) = readable_news_channel(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::MANAGE_NEWS, "MANAGE_NEWS")
}

/// What `news.listPosts` returns.
#[derive(Debug, Clone, Serialize)]
pub struct PostPage {
    pub posts: Vec<NewsPostView>,
    pub has_more: bool,
}

/// `news.listPosts` (READ_MESSAGES in the channel): newest first, ids below `before`.
pub async fn list_posts(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> CoreResult<PostPage> {
    let (channel, _) = readable_news_channel(svc, server, caller, channel_id).await?;
    let mut posts = svc
        .content
        .posts(server.id, channel.id, before, limit + 1)
        .await?;
    let has_more = posts.len() as i64 > limit;
    posts.truncate(limit as usize);
    Ok(PostPage {
        posts: post_views(svc, server.id, posts).await?,
        has_more,
    })
}

/// `news.getPost` (READ_MESSAGES in the post's channel).
pub async fn get_post(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    post_id: Uuid,
) -> CoreResult<NewsPostView> {
    let (post, _, _) = readable_post(svc, server, caller, post_id).await?;
    post_view(svc, server.id, post).await
}

/// What `news.createPost` takes.
#[derive(Debug, Clone, Default)]
pub struct NewPost {
    pub channel_id: Uuid,
    pub title: String,
    pub subtitle: Option<String>,
    pub hero_image_url: Option<String>,
    pub content: String,
    pub submit_to_discovery: bool,
}

/// `news.createPost` (MANAGE_NEWS in a news channel).
pub async fn create_post(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: NewPost,
) -> CoreResult<NewsPostView> {
    let (channel, perms) = readable_news_channel(svc, server, caller, input.channel_id).await?;
    perms.require_in(&channel, bits::MANAGE_NEWS, "MANAGE_NEWS")?;
    if input.submit_to_discovery {
        require_discovery(svc, server, caller).await?;
    }
    let now = svc.clock.now();
    let post = NewsPostRecord {
        id: new_id(),
        channel_id: channel.id,
        author_id: caller.user_id,
        title: input.title,
        subtitle: input.subtitle,
        hero_image_url: input.hero_image_url,
        content: input.content,
        comment_count: 0,
        submitted_to_discovery: input.submit_to_discovery,
        discovery_validation_errors: None,
        published_at: now,
        created_at: now,
        updated_at: now,
    };
    let sync = central::post(svc, server, &post, false);
    let queued = sync.is_some();
    svc.content
        .create_post(server.id, post.clone(), sync)
        .await?;
    let view = if queued {
        settled_view(svc, server, post).await?
    } else {
        post_view(svc, server.id, post).await?
    };
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "news.post_create",
        &view,
    )
    .await;
    Ok(view)
}

/// `news.updatePost` (MANAGE_NEWS in the post's channel). `submit_to_discovery: true`
/// submits the post (as `news.createPost` does), `false` retracts it (central deletes it); a
/// submitted post's text is not edited unless the same call retracts it (6101).
pub async fn update_post(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    post_id: Uuid,
    mut patch: NewsPostPatch,
    submit_to_discovery: Option<bool>,
) -> CoreResult<NewsPostView> {
    let (before, channel, perms) = readable_post(svc, server, caller, post_id).await?;
    perms.require_in(&channel, bits::MANAGE_NEWS, "MANAGE_NEWS")?;
    let edits = patch.title.is_some()
        || patch.subtitle.is_some()
        || patch.hero_image_url.is_some()
        || patch.content.is_some();
    if before.submitted_to_discovery && edits && submit_to_discovery != Some(false) {
        return Err(CoreError::ecto(
            ErrorKind::Forbidden,
            EctoCode::DiscoveryNotApproved,
            "Retract the post from discovery before editing it",
        ));
    }
    if submit_to_discovery == Some(true) {
        require_discovery(svc, server, caller).await?;
    }
    patch.submitted_to_discovery = submit_to_discovery;
    if submit_to_discovery == Some(false) {
        patch.discovery_validation_errors = Some(None);
    }
    // Central hears of the post when it is (re)submitted or retracted, as the change leaves it.
    let was_submitted = before.submitted_to_discovery;
    let sync = |now: &NewsPostRecord| {
        submit_to_discovery
            .is_some()
            .then(|| central::post(svc, server, now, was_submitted))
            .flatten()
    };
    let post = svc
        .content
        .update_post(server.id, post_id, patch, svc.clock.now(), Some(&sync))
        .await?
        .ok_or_else(CoreError::post_not_found)?;
    let view = if sync(&post).is_some() {
        settled_view(svc, server, post).await?
    } else {
        post_view(svc, server.id, post).await?
    };
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "news.post_update",
        &view,
    )
    .await;
    Ok(view)
}

/// `news.deletePost` (MANAGE_NEWS in the post's channel): the post and its comments.
pub async fn delete_post(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    post_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let (_, channel, perms) = readable_post(svc, server, caller, post_id).await?;
    perms.require_in(&channel, bits::MANAGE_NEWS, "MANAGE_NEWS")?;
    let sync = |was: &NewsPostRecord| central::post_deleted(svc, server, was);
    let deleted = svc
        .content
        .delete_post(server.id, post_id, svc.clock.now(), Some(&sync))
        .await?;
    if !deleted {
        return Err(CoreError::post_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "news.post_delete",
        &json!({ "id": post_id, "channel_id": channel.id }),
    )
    .await;
    Ok(success())
}

/// What `news.listComments` returns.
#[derive(Debug, Clone, Serialize)]
pub struct CommentPage {
    pub comments: Vec<NewsCommentView>,
    pub has_more: bool,
}

/// `news.listComments` (READ_MESSAGES): oldest first, ids above `after`.
pub async fn list_comments(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    post_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> CoreResult<CommentPage> {
    let (post, _, _) = readable_post(svc, server, caller, post_id).await?;
    let mut comments = svc
        .content
        .comments(server.id, post.id, after, limit + 1)
        .await?;
    let has_more = comments.len() as i64 > limit;
    comments.truncate(limit as usize);
    Ok(CommentPage {
        comments: comment_views(svc, server.id, comments).await?,
        has_more,
    })
}

/// `news.addComment` (SEND_MESSAGES in the post's channel).
pub async fn add_comment(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    post_id: Uuid,
    content: String,
) -> CoreResult<NewsCommentView> {
    let (post, channel, perms) = readable_post(svc, server, caller, post_id).await?;
    perms.require_in(&channel, bits::SEND_MESSAGES, "SEND_MESSAGES")?;
    let comment = NewsCommentRecord {
        id: new_id(),
        post_id: post.id,
        author_id: caller.user_id,
        content,
        edited_at: None,
        created_at: svc.clock.now(),
    };
    if !svc.content.add_comment(server.id, comment.clone()).await? {
        return Err(CoreError::post_not_found());
    }
    let view = comment_views(svc, server.id, vec![comment])
        .await?
        .pop()
        .ok_or_else(CoreError::comment_not_found)?;
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "news.comment_create",
        &view,
    )
    .await;
    Ok(view)
}

/// `news.deleteComment`: its author (who can still read the channel) or MANAGE_NEWS.
pub async fn delete_comment(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    comment_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    let (comment, channel_id) = svc
        .content
        .comment(server.id, comment_id)
        .await?
        .ok_or_else(CoreError::comment_not_found)?;
    let channel = svc
        .structure
        .channel(server.id, channel_id)
        .await?
        .ok_or_else(CoreError::comment_not_found)?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    if comment.author_id != caller.user_id {
        perms.require_in(&channel, bits::MANAGE_NEWS, "MANAGE_NEWS")?;
    }
    if !svc.content.delete_comment(server.id, comment_id).await? {
        return Err(CoreError::comment_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "news.comment_delete",
        &json!({ "id": comment_id, "post_id": comment.post_id }),
    )
    .await;
    Ok(success())
}
