//! The `webhooks` router and webhook execution (`POST /webhooks/{id}/{token}`).

use super::base::access::Perms;
use super::base::identity::Caller;
use super::base::publish::{entry, publish, success};
use super::base::views;
use crate::model::{kind, parse_mentions, MessageRecord, MessageView, Server, Webhook};
use crate::permissions::bits;
use crate::ports::Scope;
use crate::{new_id, CoreError, CoreResult, Services};
use rand::RngCore;
use serde_json::json;
use uuid::Uuid;

/// 32 random bytes, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The caller must hold MANAGE_WEBHOOKS server-wide and in channel `channel_id` of this
/// server (channel-level bits: whoever cannot see a channel cannot see or post through its
/// webhooks, whose tokens are shown only to them).
async fn manager(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<()> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_WEBHOOKS, "MANAGE_WEBHOOKS")?;
    let channel = super::base::loaders::channel(svc, server.id, channel_id)
        .await?
        .ok_or_else(CoreError::channel_not_found)?;
    perms.require_in(&channel, bits::MANAGE_WEBHOOKS, "MANAGE_WEBHOOKS")
}

/// The webhook `id` of this server, when the caller may manage webhooks in its channel.
async fn managed(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<Webhook> {
    Perms::load(svc, server, caller)
        .await?
        .require(bits::MANAGE_WEBHOOKS, "MANAGE_WEBHOOKS")?;
    let webhook = svc
        .webhooks
        .get(server.id, id)
        .await?
        .ok_or_else(CoreError::webhook_not_found)?;
    manager(svc, server, caller, webhook.channel_id).await?;
    Ok(webhook)
}

/// `webhooks.create` (MANAGE_WEBHOOKS).
pub async fn create(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    name: String,
    avatar_url: Option<String>,
) -> CoreResult<Webhook> {
    manager(svc, server, caller, channel_id).await?;
    let name = crate::display_name::clean(&name);
    if name.is_empty() {
        return Err(CoreError::bad_request(
            "The webhook's name has no visible character",
        ));
    }
    let webhook = Webhook {
        id: new_id(),
        channel_id,
        name,
        avatar_url,
        token: new_token(),
        created_by: caller.user_id,
        created_at: svc.clock.now(),
    };
    let audit = entry(
        svc,
        server.id,
        caller,
        "webhook.create",
        Some(("webhook", webhook.id)),
        Some(json!({ "name": webhook.name, "channel_id": channel_id })),
    );
    svc.webhooks.create(webhook.clone(), audit).await?;
    Ok(webhook)
}

/// `webhooks.list` (MANAGE_WEBHOOKS).
pub async fn list(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<Vec<Webhook>> {
    manager(svc, server, caller, channel_id).await?;
    svc.webhooks.list(server.id, channel_id).await
}

/// `webhooks.delete` (MANAGE_WEBHOOKS).
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    managed(svc, server, caller, id).await?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "webhook.delete",
        Some(("webhook", id)),
        None,
    );
    if !svc.webhooks.delete(server.id, id, audit).await? {
        return Err(CoreError::webhook_not_found());
    }
    Ok(success())
}

/// `webhooks.regenerateToken` (MANAGE_WEBHOOKS): the old token stops working.
pub async fn regenerate(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<Webhook> {
    managed(svc, server, caller, id).await?;
    let token = new_token();
    let audit = entry(
        svc,
        server.id,
        caller,
        "webhook.update",
        Some(("webhook", id)),
        Some(json!({ "token": "regenerated" })),
    );
    if !svc.webhooks.set_token(server.id, id, &token, audit).await? {
        return Err(CoreError::webhook_not_found());
    }
    svc.webhooks
        .get(server.id, id)
        .await?
        .ok_or_else(CoreError::webhook_not_found)
}

/// What a webhook call posts.
#[derive(Debug, Clone, Default)]
pub struct WebhookPost {
    pub content: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether the webhook's creator, as a member now, holds MENTION_EVERYONE in `channel`.
async fn creator_may_mention_all(
    svc: &Services,
    server_id: Uuid,
    webhook: &Webhook,
    channel: &crate::model::Channel,
) -> CoreResult<bool> {
    let Some(server) = svc.servers.get(server_id).await? else {
        return Ok(false);
    };
    let Some(membership) =
        super::base::loaders::membership(svc, server_id, webhook.created_by).await?
    else {
        return Ok(false);
    };
    let creator = Caller {
        user_id: webhook.created_by,
        identity_type: membership.member.identity_type,
        member: Some(membership.member.clone()),
    };
    let perms = Perms::load(svc, &server, &creator).await?;
    Ok(crate::permissions::has(
        perms.channel(channel),
        bits::MENTION_EVERYONE,
    ))
}

/// Checks a webhook call's id and token, before its body is read. An unknown id or a wrong
/// token answers NOT_FOUND and counts against the client address (TOO_MANY_REQUESTS once
/// its bucket is empty), so someone who knows a webhook id cannot use up the webhook's own
/// bucket by guessing; the right token takes from the webhook's bucket. Gives the webhook's
/// server and the webhook.
pub async fn authorize(
    svc: &Services,
    id: Option<Uuid>,
    token: &str,
    client: Option<std::net::IpAddr>,
) -> CoreResult<(Uuid, Webhook)> {
    let found = match id {
        Some(id) => svc.webhooks.find(id).await?,
        None => None,
    };
    match found {
        Some((server_id, webhook)) if same(&webhook.token, token) => {
            super::base::rate_limit::check_webhook(svc, webhook.id).await?;
            Ok((server_id, webhook))
        }
        _ => {
            super::base::rate_limit::check_webhook_failure(svc, client).await?;
            Err(CoreError::webhook_not_found_or_bad_token())
        }
    }
}

/// Executes an [`authorize`]d webhook: posts a message in its channel as the webhook (its
/// name and avatar, or the ones given), with mentions recorded but nobody notified.
pub async fn execute(
    svc: &Services,
    (server_id, webhook): (Uuid, Webhook),
    post: WebhookPost,
) -> CoreResult<MessageView> {
    let channel = svc
        .structure
        .channel(server_id, webhook.channel_id)
        .await?
        .ok_or_else(CoreError::channel_not_found)?;
    let mentions = parse_mentions(&post.content);
    // A webhook pings no more than its creator may: @everyone, @here and role mentions count
    // only while the creator (still a member) holds MENTION_EVERYONE in the channel.
    let may_mention_all = creator_may_mention_all(svc, server_id, &webhook, &channel).await?;
    let record = MessageRecord {
        id: new_id(),
        server_id,
        channel_id: webhook.channel_id,
        author_id: webhook.created_by,
        content: Some(post.content),
        kind: kind::DEFAULT,
        reply_to: None,
        pinned: false,
        deleted: false,
        mention_everyone: mentions.everyone && may_mention_all,
        mention_roles: if may_mention_all {
            mentions.roles
        } else {
            Vec::new()
        },
        mention_users: mentions.users,
        webhook_id: Some(webhook.id),
        webhook_name: Some(
            post.username
                .map(|u| crate::display_name::clean(&u))
                .filter(|u| !u.is_empty())
                .unwrap_or(webhook.name),
        ),
        webhook_avatar_url: post.avatar_url.or(webhook.avatar_url),
        edited_at: None,
        created_at: svc.clock.now(),
    };
    if svc
        .messages
        .insert(record.clone(), Vec::new(), Vec::new())
        .await?
        .is_err()
    {
        return Err(CoreError::internal_msg(
            "webhook message refused its (empty) attachments",
        ));
    }
    let view = views::messages(svc, server_id, vec![record], webhook.created_by)
        .await?
        .pop()
        .ok_or_else(|| CoreError::internal_msg("the webhook's message has no view"))?;
    publish(
        svc,
        server_id,
        Scope::Channel(webhook.channel_id),
        "message.create",
        &view,
    )
    .await;
    Ok(view)
}
