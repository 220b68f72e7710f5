//! The `activity` router: each member's feed of mentions, replies, reactions and server DMs,
//! kept within the server it happened in (DECISIONS §3.3). Items are written by the use cases
//! that cause them, in the same transaction; this module reads them, marks them, turns them
//! into the protocol's ActivityItem and publishes `activity.create`.

use super::audit::{publish, success};
use super::base::identity::Caller;
use super::messages::unknown_author;
use crate::model::{ActivityItem, ActivityRecord, ActivitySource, ActivityType, Server};
use crate::ports::{ActivityQuery, Scope};
use crate::{CoreResult, Services};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// The protocol's ActivityItems for `records` of `server`, in the same order.
pub async fn views(
    svc: &Services,
    server: &Server,
    records: Vec<ActivityRecord>,
) -> CoreResult<Vec<ActivityItem>> {
    let mut actors: Vec<Uuid> = records.iter().map(|r| r.actor_id).collect();
    actors.sort();
    actors.dedup();
    let authors = svc.messages.authors(server.id, &actors).await?;
    let channel_names: HashMap<Uuid, String> = if records.iter().any(|r| r.channel_id.is_some()) {
        svc.structure
            .channels(server.id)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(records
        .into_iter()
        .map(|r| ActivityItem {
            id: r.id,
            kind: r.kind,
            actor: authors
                .get(&r.actor_id)
                .cloned()
                .unwrap_or_else(|| unknown_author(r.actor_id)),
            content_preview: r.content_preview.unwrap_or_default(),
            emoji: r.emoji,
            message_id: r.message_id,
            source: ActivitySource {
                server_id: r.server_id,
                server_name: Some(server.name.clone()),
                channel_id: r.channel_id,
                channel_name: r.channel_id.and_then(|c| channel_names.get(&c).cloned()),
                conversation_id: r.conversation_id,
            },
            read: r.read,
            created_at: r.created_at,
        })
        .collect())
}

/// Publishes `activity.create` to the recipient of each of `records` (already committed). A
/// failure to build the items is logged, not returned: what they report is already written.
pub async fn publish_created(svc: &Services, server: &Server, records: Vec<ActivityRecord>) {
    if records.is_empty() {
        return;
    }
    let users: Vec<Uuid> = records.iter().map(|r| r.user_id).collect();
    match views(svc, server, records).await {
        Ok(items) => {
            for (user, item) in users.into_iter().zip(items) {
                publish(svc, server.id, Scope::User(user), "activity.create", &item).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot build activity items to publish"),
    }
}

/// What `activity.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityPage {
    pub items: Vec<ActivityItem>,
    pub has_more: bool,
}

/// `activity.list`: the caller's items in this server, newest first; `before` an item id.
pub async fn list(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    before: Option<Uuid>,
    limit: i64,
    kind: Option<ActivityType>,
) -> CoreResult<ActivityPage> {
    caller.require_member()?;
    let mut records = svc
        .activity
        .list(ActivityQuery {
            server_id: server.id,
            user_id: caller.user_id,
            before,
            limit: limit + 1,
            kind,
        })
        .await?;
    let has_more = records.len() as i64 > limit;
    records.truncate(limit as usize);
    Ok(ActivityPage {
        items: views(svc, server, records).await?,
        has_more,
    })
}

/// `activity.markRead`: marks those of `ids` that are the caller's items in this server.
pub async fn mark_read(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    ids: &[Uuid],
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    svc.activity
        .mark_read(server.id, caller.user_id, ids)
        .await?;
    Ok(success())
}

/// `activity.markAllRead`: every item of the caller in this server.
pub async fn mark_all_read(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    svc.activity
        .mark_all_read(server.id, caller.user_id)
        .await?;
    Ok(success())
}

/// What `activity.unreadCount` returns.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UnreadCount {
    pub count: i64,
}

/// `activity.unreadCount`: the caller's unread items in this server.
pub async fn unread_count(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<UnreadCount> {
    caller.require_member()?;
    Ok(UnreadCount {
        count: svc.activity.unread_count(server.id, caller.user_id).await?,
    })
}
