//! [`WebhookStore`] on SQL; a webhook belongs to a server through its channel.

use crate::db::{db_error, Db};
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{NewAudit, Webhook};
use ecto_core::ports::WebhookStore;
use ecto_core::CoreResult;
use uuid::Uuid;

/// Webhooks.
pub struct SqlWebhookStore(pub Db);

type Row = (
    DbId,
    DbId,
    String,
    Option<String>,
    String,
    DbId,
    DateTime<Utc>,
);

fn webhook(r: Row) -> Webhook {
    Webhook {
        id: r.0 .0,
        channel_id: r.1 .0,
        name: r.2,
        avatar_url: r.3,
        token: r.4,
        created_by: r.5 .0,
        created_at: r.6,
    }
}

#[async_trait]
impl WebhookStore for SqlWebhookStore {
    async fn create(&self, w: Webhook, audit: NewAudit) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            let w = w.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                diesel::insert_into(webhooks::table)
                    .values((
                        webhooks::id.eq(DbId(w.id)),
                        webhooks::channel_id.eq(DbId(w.channel_id)),
                        webhooks::name.eq(&w.name),
                        webhooks::avatar_url.eq(w.avatar_url.as_deref()),
                        webhooks::token.eq(&w.token),
                        webhooks::created_by.eq(DbId(w.created_by)),
                        webhooks::created_at.eq(w.created_at),
                    ))
                    .execute(conn)
                    .await?;
                insert_audit!(conn, audit)?;
                Ok::<(), DieselError>(())
            })
            .await
            .map_err(db_error)
        })
    }

    async fn list(&self, server_id: Uuid, channel_id: Uuid) -> CoreResult<Vec<Webhook>> {
        db_run!(self.0, read, |conn| {
            webhooks::table
                .inner_join(channels::table)
                .filter(channels::server_id.eq(DbId(server_id)))
                .filter(webhooks::channel_id.eq(DbId(channel_id)))
                .order(webhooks::id.asc())
                .select(webhooks::all_columns)
                .load::<Row>(conn)
                .await
                .map(|rows| rows.into_iter().map(webhook).collect())
                .map_err(db_error)
        })
    }

    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Webhook>> {
        db_run!(self.0, read, |conn| {
            webhooks::table
                .inner_join(channels::table)
                .filter(channels::server_id.eq(DbId(server_id)))
                .filter(webhooks::id.eq(DbId(id)))
                .select(webhooks::all_columns)
                .first::<Row>(conn)
                .await
                .optional()
                .map(|r| r.map(webhook))
                .map_err(db_error)
        })
    }

    async fn find(&self, id: Uuid) -> CoreResult<Option<(Uuid, Webhook)>> {
        db_run!(self.0, read, |conn| {
            webhooks::table
                .inner_join(channels::table)
                .filter(webhooks::id.eq(DbId(id)))
                .select((channels::server_id, webhooks::all_columns))
                .first::<(DbId, Row)>(conn)
                .await
                .optional()
                .map(|r| r.map(|(server, row)| (server.0, webhook(row))))
                .map_err(db_error)
        })
    }

    async fn delete(&self, server_id: Uuid, id: Uuid, audit: NewAudit) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let own = channels::table
                    .filter(channels::server_id.eq(DbId(server_id)))
                    .select(channels::id);
                let n = diesel::delete(
                    webhooks::table
                        .filter(webhooks::id.eq(DbId(id)))
                        .filter(webhooks::channel_id.eq_any(own)),
                )
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn set_token(
        &self,
        server_id: Uuid,
        id: Uuid,
        token: &str,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        let token = token.to_owned();
        db_run!(self.0, write, |conn| {
            let token = token.clone();
            conn.transaction(async move |conn| {
                let own = channels::table
                    .filter(channels::server_id.eq(DbId(server_id)))
                    .select(channels::id);
                let n = diesel::update(
                    webhooks::table
                        .filter(webhooks::id.eq(DbId(id)))
                        .filter(webhooks::channel_id.eq_any(own)),
                )
                .set(webhooks::token.eq(&token))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }
}
