//! The `channels`, `categories` and `auditlog` routers.

use crate::trpc::{Access, Registry};
use crate::validate::{double_option, invalid, length, opt_length, range, Id, Optional, Validate};
use crate::ApiError;
use ecto_core::model::ChannelType;
use ecto_core::permissions::{Override, TargetType};
use ecto_core::ports::{AuditQuery, ChannelMove, ChannelPatch};
use ecto_core::usecases::{audit, categories, channels};
use ecto_core::CoreError;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize, Clone)]
struct OverrideWire {
    target_type: String,
    target_id: Id,
    allow: u64,
    deny: u64,
}

fn overrides(wire: &Option<Vec<OverrideWire>>) -> Result<Option<Vec<Override>>, CoreError> {
    let Some(list) = wire else { return Ok(None) };
    if list.len() > 500 {
        return Err(CoreError::bad_request(
            "Invalid input: `permission_overrides` must have at most 500 entries",
        ));
    }
    list.iter()
        .map(|o| {
            let target_type = TargetType::parse(&o.target_type).ok_or_else(|| {
                CoreError::bad_request(
                    "Invalid input: `permission_overrides.target_type` must be 'role' or 'member'",
                )
            })?;
            Ok(Override {
                target_type,
                target_id: o.target_id.into(),
                allow: o.allow,
                deny: o.deny,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[derive(Deserialize)]
struct CreateChannel {
    name: String,
    #[serde(rename = "type")]
    channel_type: String,
    category_id: Option<Id>,
    topic: Option<String>,
    slowmode_seconds: Option<i32>,
    nsfw: Option<bool>,
    permission_overrides: Option<Vec<OverrideWire>>,
}

impl Validate for CreateChannel {
    fn validate(&self) -> Result<(), ApiError> {
        length("name", &self.name, 1, 100)?;
        opt_length("topic", self.topic.as_deref(), 0, 1024)?;
        if let Some(s) = self.slowmode_seconds {
            range("slowmode_seconds", s, 0, 3600)?;
        }
        if ChannelType::parse(&self.channel_type).is_none() {
            return Err(invalid(
                "Invalid input: `type` must be 'text', 'voice', 'page' or 'news'",
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct UpdateChannel {
    channel_id: Id,
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    topic: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    category_id: Option<Option<Id>>,
    slowmode_seconds: Option<i32>,
    nsfw: Option<bool>,
    permission_overrides: Option<Vec<OverrideWire>>,
}

impl Validate for UpdateChannel {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("name", self.name.as_deref(), 1, 100)?;
        opt_length("topic", self.topic.clone().flatten().as_deref(), 0, 1024)?;
        if let Some(s) = self.slowmode_seconds {
            range("slowmode_seconds", s, 0, 3600)?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ChannelId {
    channel_id: Id,
}
impl Validate for ChannelId {}

#[derive(Deserialize)]
struct MoveWire {
    channel_id: Id,
    position: i32,
    #[serde(default, deserialize_with = "double_option")]
    category_id: Option<Option<Id>>,
}

#[derive(Deserialize)]
struct ReorderChannels {
    channels: Vec<MoveWire>,
}

impl Validate for ReorderChannels {
    fn validate(&self) -> Result<(), ApiError> {
        range("channels.length", self.channels.len(), 1, 500)?;
        self.channels
            .iter()
            .try_for_each(|m| range("channels.position", m.position, 0, i32::MAX))
    }
}

#[derive(Deserialize)]
struct CategoryName {
    name: String,
}
impl Validate for CategoryName {
    fn validate(&self) -> Result<(), ApiError> {
        length("name", &self.name, 1, 100)
    }
}

#[derive(Deserialize)]
struct UpdateCategory {
    category_id: Id,
    name: Option<String>,
    permission_overrides: Option<Vec<OverrideWire>>,
}
impl Validate for UpdateCategory {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("name", self.name.as_deref(), 1, 100)
    }
}

#[derive(Deserialize)]
struct CategoryId {
    category_id: Id,
}
impl Validate for CategoryId {}

#[derive(Deserialize)]
struct CategoryMove {
    category_id: Id,
    position: i32,
}

#[derive(Deserialize)]
struct ReorderCategories {
    categories: Vec<CategoryMove>,
}
impl Validate for ReorderCategories {
    fn validate(&self) -> Result<(), ApiError> {
        range("categories.length", self.categories.len(), 1, 500)?;
        self.categories
            .iter()
            .try_for_each(|m| range("categories.position", m.position, 0, i32::MAX))
    }
}

#[derive(Deserialize, Default)]
struct AuditList {
    before: Option<Id>,
    limit: Option<i64>,
    action: Option<String>,
    actor_id: Option<Id>,
}
impl Validate for AuditList {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(l) = self.limit {
            range("limit", l, 1, 100)?;
        }
        opt_length("action", self.action.as_deref(), 1, 50)
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "channels.list",
        Access::Protected,
        |ctx, _: crate::validate::NoInput| async move {
            channels::list(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
    r.mutation(
        "channels.create",
        Access::Protected,
        |ctx, w: CreateChannel| async move {
            let input = channels::CreateChannel {
                name: w.name,
                channel_type: ChannelType::parse(&w.channel_type).unwrap_or(ChannelType::Text),
                category_id: w.category_id.map(Uuid::from),
                topic: w.topic,
                slowmode_seconds: w.slowmode_seconds.unwrap_or(0),
                nsfw: w.nsfw.unwrap_or(false),
                overrides: overrides(&w.permission_overrides)?.unwrap_or_default(),
            };
            channels::create(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.mutation(
        "channels.update",
        Access::Protected,
        |ctx, w: UpdateChannel| async move {
            let input = channels::UpdateChannel {
                channel_id: w.channel_id.into(),
                overrides: overrides(&w.permission_overrides)?,
                patch: ChannelPatch {
                    name: w.name,
                    topic: w.topic,
                    category_id: w.category_id.map(|o| o.map(Uuid::from)),
                    slowmode_seconds: w.slowmode_seconds,
                    nsfw: w.nsfw,
                },
            };
            channels::update(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.mutation(
        "channels.delete",
        Access::Protected,
        |ctx, w: ChannelId| async move {
            channels::delete(&ctx.svc, &ctx.server, ctx.caller(), w.channel_id.into()).await
        },
    );
    r.query(
        "channels.getOverrides",
        Access::Protected,
        |ctx, w: ChannelId| async move {
            channels::overrides(&ctx.svc, &ctx.server, ctx.caller(), w.channel_id.into()).await
        },
    );
    r.mutation(
        "channels.reorder",
        Access::Protected,
        |ctx, w: ReorderChannels| async move {
            let moves = w
                .channels
                .into_iter()
                .map(|m| ChannelMove {
                    channel_id: m.channel_id.into(),
                    position: m.position,
                    category_id: m.category_id.map(|o| o.map(Uuid::from)),
                })
                .collect();
            channels::reorder(&ctx.svc, &ctx.server, ctx.caller(), moves).await
        },
    );
    r.mutation(
        "categories.create",
        Access::Protected,
        |ctx, w: CategoryName| async move {
            categories::create(&ctx.svc, &ctx.server, ctx.caller(), &w.name).await
        },
    );
    r.mutation(
        "categories.update",
        Access::Protected,
        |ctx, w: UpdateCategory| async move {
            let o = overrides(&w.permission_overrides)?;
            categories::update(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.category_id.into(),
                w.name,
                o,
            )
            .await
        },
    );
    r.query(
        "categories.getOverrides",
        Access::Protected,
        |ctx, w: CategoryId| async move {
            categories::overrides(&ctx.svc, &ctx.server, ctx.caller(), w.category_id.into()).await
        },
    );
    r.mutation(
        "categories.delete",
        Access::Protected,
        |ctx, w: CategoryId| async move {
            categories::delete(&ctx.svc, &ctx.server, ctx.caller(), w.category_id.into()).await
        },
    );
    r.mutation(
        "categories.reorder",
        Access::Protected,
        |ctx, w: ReorderCategories| async move {
            let moves = w
                .categories
                .into_iter()
                .map(|m| (m.category_id.into(), m.position))
                .collect();
            categories::reorder(&ctx.svc, &ctx.server, ctx.caller(), moves).await
        },
    );
    r.query(
        "auditlog.list",
        Access::Protected,
        |ctx, Optional(w): Optional<AuditList>| async move {
            let query = AuditQuery {
                before: w.before.map(Uuid::from),
                limit: w.limit.unwrap_or(50),
                action: w.action,
                actor_id: w.actor_id.map(Uuid::from),
            };
            audit::list(&ctx.svc, &ctx.server, ctx.caller(), query).await
        },
    );
}
