//! [`ActivityStore`] on SQL: reading and marking `activity_items`, always within one server.
//! Items are inserted by the stores whose writes cause them (`insert_activity!`).

use crate::db::{db_error, Db};
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::model::{ActivityRecord, ActivityType};
use ecto_core::ports::{ActivityQuery, ActivityStore};
use ecto_core::CoreResult;
use uuid::Uuid;

/// Activity items.
pub struct SqlActivityStore(pub Db);

/// A row of `activity_items`, in column order.
#[derive(Queryable)]
struct ActivityRow {
    id: DbId,
    user_id: DbId,
    server_id: DbId,
    kind: String,
    actor_id: DbId,
    message_id: Option<DbId>,
    channel_id: Option<DbId>,
    conversation_id: Option<DbId>,
    content_preview: Option<String>,
    emoji: Option<String>,
    read: bool,
    created_at: DateTime<Utc>,
}

impl ActivityRow {
    /// The record, or `None` for a type this server does not write.
    fn into_record(self) -> Option<ActivityRecord> {
        Some(ActivityRecord {
            id: self.id.0,
            user_id: self.user_id.0,
            server_id: self.server_id.0,
            kind: ActivityType::parse(&self.kind)?,
            actor_id: self.actor_id.0,
            message_id: self.message_id.map(|i| i.0),
            channel_id: self.channel_id.map(|i| i.0),
            conversation_id: self.conversation_id.map(|i| i.0),
            content_preview: self.content_preview,
            emoji: self.emoji,
            read: self.read,
            created_at: self.created_at,
        })
    }
}

#[async_trait]
impl ActivityStore for SqlActivityStore {
    async fn list(&self, query: ActivityQuery) -> CoreResult<Vec<ActivityRecord>> {
        db_run!(self.0, read, |conn| {
            let mut q = activity_items::table
                .filter(activity_items::server_id.eq(DbId(query.server_id)))
                .filter(activity_items::user_id.eq(DbId(query.user_id)))
                .into_boxed();
            if let Some(before) = query.before {
                q = q.filter(activity_items::id.lt(DbId(before)));
            }
            if let Some(kind) = query.kind {
                q = q.filter(activity_items::type_.eq(kind.as_str()));
            }
            q.order(activity_items::id.desc())
                .limit(query.limit)
                .load::<ActivityRow>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .filter_map(ActivityRow::into_record)
                        .collect()
                })
                .map_err(db_error)
        })
    }

    async fn mark_read(&self, server_id: Uuid, user_id: Uuid, ids: &[Uuid]) -> CoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<DbId> = ids.iter().copied().map(DbId).collect();
        db_run!(self.0, write, |conn| {
            diesel::update(
                activity_items::table
                    .filter(activity_items::server_id.eq(DbId(server_id)))
                    .filter(activity_items::user_id.eq(DbId(user_id)))
                    .filter(activity_items::id.eq_any(ids.clone()))
                    .filter(diesel::dsl::not(activity_items::read)),
            )
            .set(activity_items::read.eq(true))
            .execute(conn)
            .await
            .map(|n| n as u64)
            .map_err(db_error)
        })
    }

    async fn mark_all_read(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
        db_run!(self.0, write, |conn| {
            diesel::update(
                activity_items::table
                    .filter(activity_items::server_id.eq(DbId(server_id)))
                    .filter(activity_items::user_id.eq(DbId(user_id)))
                    .filter(diesel::dsl::not(activity_items::read)),
            )
            .set(activity_items::read.eq(true))
            .execute(conn)
            .await
            .map(|n| n as u64)
            .map_err(db_error)
        })
    }

    async fn unread_count(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<i64> {
        db_run!(self.0, read, |conn| {
            activity_items::table
                .filter(activity_items::server_id.eq(DbId(server_id)))
                .filter(activity_items::user_id.eq(DbId(user_id)))
                .filter(diesel::dsl::not(activity_items::read))
                .count()
                .get_result::<i64>(conn)
                .await
                .map_err(db_error)
        })
    }

    async fn unread_by_type(
        &self,
        server_id: Uuid,
        user_id: Uuid,
    ) -> CoreResult<Vec<(String, i64)>> {
        db_run!(self.0, read, |conn| {
            activity_items::table
                .filter(activity_items::server_id.eq(DbId(server_id)))
                .filter(activity_items::user_id.eq(DbId(user_id)))
                .filter(diesel::dsl::not(activity_items::read))
                .group_by(activity_items::type_)
                .select((activity_items::type_, diesel::dsl::count_star()))
                .load::<(String, i64)>(conn)
                .await
                .map_err(db_error)
        })
    }
}
