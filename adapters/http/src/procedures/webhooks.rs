//! The `webhooks` router.

use crate::trpc::{Access, Registry};
use crate::validate::{length, opt_length, url, Id, Validate};
use crate::ApiError;
use ecto_core::usecases::webhooks;
use serde::Deserialize;

#[derive(Deserialize)]
struct Create {
    channel_id: Id,
    name: String,
    avatar_url: Option<String>,
}
impl Validate for Create {
    fn validate(&self) -> Result<(), ApiError> {
        length("name", &self.name, 1, 80)?;
        opt_length("avatar_url", self.avatar_url.as_deref(), 1, 512)?;
        url("avatar_url", self.avatar_url.as_deref(), 512)
    }
}

#[derive(Deserialize)]
struct ChannelId {
    channel_id: Id,
}
impl Validate for ChannelId {}

#[derive(Deserialize)]
struct WebhookId {
    webhook_id: Id,
}
impl Validate for WebhookId {}

pub fn register(r: &mut Registry) {
    r.mutation(
        "webhooks.create",
        Access::Protected,
        |ctx, w: Create| async move {
            webhooks::create(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                w.name,
                w.avatar_url,
            )
            .await
        },
    );
    r.query(
        "webhooks.list",
        Access::Protected,
        |ctx, w: ChannelId| async move {
            webhooks::list(&ctx.svc, &ctx.server, ctx.caller(), w.channel_id.into()).await
        },
    );
    r.mutation(
        "webhooks.delete",
        Access::Protected,
        |ctx, w: WebhookId| async move {
            webhooks::delete(&ctx.svc, &ctx.server, ctx.caller(), w.webhook_id.into()).await
        },
    );
    r.mutation(
        "webhooks.regenerateToken",
        Access::Protected,
        |ctx, w: WebhookId| async move {
            webhooks::regenerate(&ctx.svc, &ctx.server, ctx.caller(), w.webhook_id.into()).await
        },
    );
}
