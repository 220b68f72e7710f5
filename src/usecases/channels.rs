//! The `channels` router: list, create, update, delete, getOverrides, reorder.

use super::base::access::Perms;
use super::base::access::{check_overrides, may_move};
use super::base::identity::Caller;
use super::base::lookup;
use super::base::names::normalize_channel_name;
use super::base::publish::{entry, publish, success};
use crate::model::{Category, Channel, ChannelType, OverrideView, Server};
use crate::permissions::{bits, Override};
use crate::ports::{ChannelMove, ChannelPatch, NewChannel, Scope};
use crate::{new_id, CoreError, CoreResult, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// A category with its visible channels, as `channels.list` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryWithChannels {
    #[serde(flatten)]
    pub category: Category,
    pub channels: Vec<Channel>,
}

/// What `channels.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelList {
    pub categories: Vec<CategoryWithChannels>,
    pub uncategorized: Vec<Channel>,
}

/// `channels.list`: channels the caller can read, each with its `my_permissions`; categories
/// with a visible channel, or all of them for a caller with MANAGE_CHANNELS.
pub async fn list(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<ChannelList> {
    let perms = Perms::load(svc, server, caller).await?;
    let visible = perms.readable(svc.structure.channels(server.id).await?);
    let categories = svc
        .structure
        .categories(server.id)
        .await?
        .into_iter()
        .filter(|category| perms.sees_category(category.id, &visible))
        .map(|category| {
            let channels = visible
                .iter()
                .filter(|c| c.category_id == Some(category.id))
                .cloned()
                .collect();
            CategoryWithChannels { category, channels }
        })
        .collect();
    let uncategorized = visible
        .into_iter()
        .filter(|c| c.category_id.is_none())
        .collect();
    Ok(ChannelList {
        categories,
        uncategorized,
    })
}

/// Input of `channels.create`.
#[derive(Debug, Clone)]
pub struct CreateChannel {
    pub name: String,
    pub channel_type: ChannelType,
    pub category_id: Option<Uuid>,
    pub topic: Option<String>,
    pub slowmode_seconds: i32,
    pub nsfw: bool,
    pub overrides: Vec<Override>,
}

async fn require_category(svc: &Services, server: &Server, id: Option<Uuid>) -> CoreResult<()> {
    if let Some(id) = id {
        if svc.structure.category(server.id, id).await?.is_none() {
            return Err(CoreError::category_not_found());
        }
    }
    Ok(())
}

/// The caller's permissions and the channel, when the caller holds MANAGE_CHANNELS in that
/// channel (channel-level bits: whoever cannot see a channel cannot manage it either).
async fn channel_manager(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<(Perms, Channel)> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
    let channel = lookup::channel(svc, server.id, channel_id).await?;
    perms.require_in(&channel, bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
    Ok((perms, channel))
}

/// `channels.create` (MANAGE_CHANNELS).
pub async fn create(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: CreateChannel,
) -> CoreResult<Channel> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
    let name = normalize_channel_name(&input.name)?;
    require_category(svc, server, input.category_id).await?;
    // A new channel starts from its category's overrides: managing and granting there uses
    // the caller's bits at that level.
    let held = match input.category_id {
        Some(category) => {
            perms.require_in_category(category, bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
            perms.category(category)
        }
        None => perms.server,
    };
    check_overrides(svc, server.id, &perms, (held, None), &input.overrides).await?;
    let id = new_id();
    let audit = entry(
        svc,
        server.id,
        caller,
        "channel.create",
        Some(("channel", id)),
        Some(json!({ "name": name, "type": input.channel_type.as_str() })),
    );
    let channel = svc
        .structure
        .create_channel(
            NewChannel {
                id,
                server_id: server.id,
                category_id: input.category_id,
                name,
                channel_type: input.channel_type,
                topic: input.topic,
                slowmode_seconds: input.slowmode_seconds,
                nsfw: input.nsfw,
            },
            input.overrides,
            audit,
        )
        .await?;
    publish(svc, server.id, Scope::Server, "channel.create", &channel).await;
    Ok(channel)
}

/// Input of `channels.update`.
#[derive(Debug, Clone)]
pub struct UpdateChannel {
    pub channel_id: Uuid,
    pub patch: ChannelPatch,
    pub overrides: Option<Vec<Override>>,
}

/// `channels.update` (MANAGE_CHANNELS); overrides, when given, replace the channel's.
pub async fn update(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    mut input: UpdateChannel,
) -> CoreResult<Channel> {
    let (perms, channel) = channel_manager(svc, server, caller, input.channel_id).await?;
    if let Some(name) = &input.patch.name {
        input.patch.name = Some(normalize_channel_name(name)?);
    }
    if let Some(category) = input.patch.category_id {
        require_category(svc, server, category).await?;
        if let Some(category) = category {
            perms.require_in_category(category, bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
        }
        may_move(&perms, &channel, category)?;
    }
    if let Some(overrides) = &input.overrides {
        let held = (perms.channel(&channel), Some(channel.id));
        check_overrides(svc, server.id, &perms, held, overrides).await?;
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "channel.update",
        Some(("channel", input.channel_id)),
        Some(json!({ "name": input.patch.name, "topic": input.patch.topic })),
    );
    let overrides_changed = input.overrides.is_some();
    let channel = svc
        .structure
        .update_channel(
            server.id,
            input.channel_id,
            input.patch,
            input.overrides,
            audit,
        )
        .await?
        .ok_or_else(CoreError::channel_not_found)?;
    publish(svc, server.id, Scope::Server, "channel.update", &channel).await;
    if overrides_changed {
        publish(
            svc,
            server.id,
            Scope::Server,
            "permissions.update",
            &json!({ "type": "channel", "id": channel.id }),
        )
        .await;
    }
    Ok(channel)
}

/// `channels.delete` (MANAGE_CHANNELS).
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let (_, channel) = channel_manager(svc, server, caller, channel_id).await?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "channel.delete",
        Some(("channel", channel_id)),
        Some(json!({ "name": channel.name })),
    );
    if !svc
        .structure
        .delete_channel(server.id, channel_id, audit)
        .await?
    {
        return Err(CoreError::channel_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "channel.delete",
        &json!({ "id": channel_id }),
    )
    .await;
    Ok(success())
}

/// `channels.getOverrides` (MANAGE_CHANNELS).
pub async fn overrides(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<Vec<OverrideView>> {
    channel_manager(svc, server, caller, channel_id).await?;
    let stored = svc
        .structure
        .channel_overrides(server.id, channel_id)
        .await?;
    Ok(stored.iter().map(OverrideView::for_channel).collect())
}

/// `channels.reorder` (MANAGE_CHANNELS): all moves or none.
pub async fn reorder(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    moves: Vec<ChannelMove>,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
    // Moving a channel is managing it: each one moved needs MANAGE_CHANNELS where it is.
    let channels = super::base::loaders::channels(svc, server.id).await?;
    for m in &moves {
        if let Some(channel) = channels.iter().find(|c| c.id == m.channel_id) {
            perms.require_in(channel, bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
            if let Some(to) = m.category_id {
                may_move(&perms, channel, to)?;
            }
        }
        if let Some(Some(category)) = m.category_id {
            perms.require_in_category(category, bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
        }
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "channel.reorder",
        Some(("server", server.id)),
        Some(json!({ "count": moves.len() })),
    );
    if !svc
        .structure
        .reorder_channels(server.id, moves, audit)
        .await?
    {
        return Err(CoreError::channel_not_found());
    }
    // Each receiver sees the list with its own bits only through channels.list; the event
    // carries the channels without my_permissions (DECISIONS §3.1).
    let all = svc.structure.channels(server.id).await?;
    publish(svc, server.id, Scope::Server, "channel.reorder", &all).await;
    Ok(success())
}
