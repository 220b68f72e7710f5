//! The `activity` router: each member's feed of mentions, replies, reactions and server DMs,
//! kept within the server it happened in (DECISIONS §3.3). Items are written by the use cases
//! that cause them, in the same transaction; this module reads them, marks them, turns them
//! into the protocol's ActivityItem and publishes `activity.create`.

use super::base::identity::Caller;
use super::base::publish::success;
use super::base::views::activity_items;
use crate::model::{ActivityItem, ActivityType, Server};
use crate::ports::ActivityQuery;
use crate::{CoreResult, Services};
use serde::Serialize;
use uuid::Uuid;

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
        items: activity_items(svc, server, records).await?,
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
