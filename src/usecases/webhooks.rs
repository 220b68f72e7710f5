//! The `webhooks` router and webhook execution (`POST /webhooks/{id}/{token}`).

use super::audit::{channel_not_found, entry, publish, success};
use super::identity::Caller;
use super::messages::views;
use super::perms::Perms;
use crate::model::{kind, parse_mentions, MessageRecord, MessageView, Server, Webhook};
use crate::permissions::bits;
use crate::ports::Scope;
use crate::{new_id, CoreError, CoreResult, EctoCode, Services};
use rand::RngCore;
use serde_json::json;
use uuid::Uuid;

fn webhook_not_found() -> CoreError {
    CoreError::not_found(EctoCode::MessageNotFound, "Webhook not found")
}

/// 32 random bytes, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

async fn manager(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<()> {
    Perms::load(svc, server, caller)
        .await?
        .require(bits::MANAGE_WEBHOOKS, "MANAGE_WEBHOOKS")
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
    manager(svc, server, caller).await?;
    svc.structure
        .channel(server.id, channel_id)
        .await?
        .ok_or_else(channel_not_found)?;
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
    manager(svc, server, caller).await?;
    svc.structure
        .channel(server.id, channel_id)
        .await?
        .ok_or_else(channel_not_found)?;
    svc.webhooks.list(server.id, channel_id).await
}

/// `webhooks.delete` (MANAGE_WEBHOOKS).
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    manager(svc, server, caller).await?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "webhook.delete",
        Some(("webhook", id)),
        None,
    );
    if !svc.webhooks.delete(server.id, id, audit).await? {
        return Err(webhook_not_found());
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
    manager(svc, server, caller).await?;
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
        return Err(webhook_not_found());
    }
    svc.webhooks
        .get(server.id, id)
        .await?
        .ok_or_else(webhook_not_found)
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

/// Executes a webhook: posts a message in its channel as the webhook (its name and avatar,
/// or the ones given), with mentions recorded but nobody notified.
pub async fn execute(
    svc: &Services,
    id: Uuid,
    token: &str,
    post: WebhookPost,
) -> CoreResult<MessageView> {
    let invalid = || {
        CoreError::not_found(
            EctoCode::MessageNotFound,
            "Webhook not found or invalid token",
        )
    };
    let (server_id, webhook) = svc.webhooks.find(id).await?.ok_or_else(invalid)?;
    if !same(&webhook.token, token) {
        return Err(invalid());
    }
    svc.structure
        .channel(server_id, webhook.channel_id)
        .await?
        .ok_or_else(channel_not_found)?;
    let mentions = parse_mentions(&post.content);
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
        mention_everyone: mentions.everyone,
        mention_roles: mentions.roles,
        mention_users: mentions.users,
        webhook_id: Some(webhook.id),
        webhook_name: Some(post.username.unwrap_or(webhook.name)),
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
    let view = views(svc, server_id, vec![record], webhook.created_by)
        .await?
        .pop()
        .ok_or_else(invalid)?;
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
