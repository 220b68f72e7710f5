//! [`InviteStore`] on SQL.

use crate::db::{db_error, is_unique_violation, rollback_is_false, Db};
use crate::rows::InviteRow;
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{Invite, InviteView, NewAudit, NewSync};
use ecto_core::ports::{InviteStore, NewInvite};
use ecto_core::CoreResult;
use std::collections::HashMap;
use uuid::Uuid;

/// Invites of servers.
pub struct SqlInviteStore(pub Db);

impl SqlInviteStore {
    /// Display names of `users` on `server_id`: the cached central profile, else the local
    /// account. Users without either are missing from the map.
    async fn names(&self, server_id: Uuid, users: Vec<Uuid>) -> CoreResult<HashMap<Uuid, String>> {
        crate::names::usernames(&self.0, server_id, users).await
    }

    async fn views(&self, server_id: Uuid, invites: Vec<Invite>) -> CoreResult<Vec<InviteView>> {
        let creators = invites.iter().map(|i| i.created_by).collect();
        let names = self.names(server_id, creators).await?;
        Ok(invites
            .into_iter()
            .map(|i| {
                let name = names
                    .get(&i.created_by)
                    .cloned()
                    .unwrap_or_else(|| "Unknown".into());
                InviteView::new(i, name)
            })
            .collect())
    }
}

#[async_trait]
impl InviteStore for SqlInviteStore {
    async fn create(
        &self,
        new: NewInvite,
        audit: NewAudit,
        sync: Option<NewSync>,
    ) -> CoreResult<Option<InviteView>> {
        let inserted: Result<(), DieselError> = db_run!(self.0, write, |conn| {
            let new = new.clone();
            let audit = audit.clone();
            let sync = sync.clone();
            conn.transaction(async move |conn| {
                diesel::insert_into(invites::table)
                    .values((
                        invites::id.eq(DbId(new.id)),
                        invites::server_id.eq(DbId(new.server_id)),
                        invites::code.eq(&new.code),
                        invites::created_by.eq(DbId(new.created_by)),
                        invites::max_uses.eq(new.max_uses),
                        invites::use_count.eq(0),
                        invites::expires_at.eq(new.expires_at),
                        invites::revoked.eq(false),
                        invites::created_at.eq(new.created_at),
                    ))
                    .execute(conn)
                    .await?;
                insert_audit!(conn, audit)?;
                if let Some(call) = sync {
                    insert_sync!(conn, new.server_id, call, new.created_at);
                }
                Ok(())
            })
            .await
        });
        match inserted {
            Ok(()) => {}
            // The only unique key a fresh UUIDv7 can hit is the code.
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(db_error(e)),
        }
        let invite = Invite {
            id: new.id,
            server_id: new.server_id,
            code: new.code,
            created_by: new.created_by,
            max_uses: new.max_uses,
            use_count: 0,
            expires_at: new.expires_at,
            revoked: false,
            created_at: new.created_at,
        };
        Ok(self.views(new.server_id, vec![invite]).await?.pop())
    }

    async fn list(
        &self,
        server_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<InviteView>> {
        let invites: Vec<Invite> = db_run!(self.0, read, |conn| {
            let mut query = invites::table
                .filter(invites::server_id.eq(DbId(server_id)))
                .into_boxed();
            if let Some(before) = before {
                query = query.filter(invites::id.lt(DbId(before)));
            }
            query
                .order(invites::id.desc())
                .limit(limit)
                .load::<InviteRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(Invite::from).collect())
                .map_err(db_error)
        })?;
        self.views(server_id, invites).await
    }

    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Invite>> {
        db_run!(self.0, read, |conn| {
            invites::table
                .filter(invites::server_id.eq(DbId(server_id)))
                .filter(invites::id.eq(DbId(id)))
                .first::<InviteRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Invite::from))
                .map_err(db_error)
        })
    }

    async fn revoke(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
        sync: Option<NewSync>,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let audit = audit.clone();
            let sync = sync.clone();
            conn.transaction(async move |conn| {
                let n = diesel::update(
                    invites::table
                        .filter(invites::server_id.eq(DbId(server_id)))
                        .filter(invites::id.eq(DbId(id))),
                )
                .set(invites::revoked.eq(true))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(DieselError::RollbackTransaction);
                }
                insert_audit!(conn, audit)?;
                if let Some(call) = sync {
                    insert_sync!(conn, server_id, call, audit.created_at);
                }
                Ok(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }
}
