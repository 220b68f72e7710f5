//! [`RefreshTokenStore`] on SQL.

use crate::db::{db_error, Db};
use crate::rows::RefreshRow;
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{RefreshTokenRecord, Timestamp};
use ecto_core::ports::RefreshTokenStore;
use ecto_core::CoreResult;

/// Refresh tokens by SHA-256 hash.
pub struct SqlRefreshTokenStore(pub Db);

#[async_trait]
impl RefreshTokenStore for SqlRefreshTokenStore {
    async fn insert(&self, r: RefreshTokenRecord) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            diesel::insert_into(server_refresh_tokens::table)
                .values((
                    server_refresh_tokens::id.eq(DbId(r.id)),
                    server_refresh_tokens::member_id.eq(DbId(r.member_id)),
                    server_refresh_tokens::jti.eq(&r.jti),
                    server_refresh_tokens::token_hash.eq(&r.token_hash),
                    server_refresh_tokens::expires_at.eq(r.expires_at),
                    server_refresh_tokens::created_at.eq(r.created_at),
                ))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(db_error)
        })
    }

    async fn take(&self, token_hash: &str) -> CoreResult<Option<RefreshTokenRecord>> {
        let token_hash = token_hash.to_owned();
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let Some(row) = server_refresh_tokens::table
                    .filter(server_refresh_tokens::token_hash.eq(&token_hash))
                    .first::<RefreshRow>(conn)
                    .await
                    .optional()?
                else {
                    return Ok::<_, DieselError>(None);
                };
                // Whoever deletes the row owns the rotation; a concurrent taker deletes 0.
                let deleted = diesel::delete(
                    server_refresh_tokens::table
                        .filter(server_refresh_tokens::token_hash.eq(&token_hash)),
                )
                .execute(conn)
                .await?;
                Ok((deleted == 1).then(|| RefreshTokenRecord::from(row)))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn delete_expired(&self, now: Timestamp) -> CoreResult<u64> {
        db_run!(self.0, write, |conn| {
            diesel::delete(
                server_refresh_tokens::table.filter(server_refresh_tokens::expires_at.lt(now)),
            )
            .execute(conn)
            .await
            .map(|n| n as u64)
            .map_err(db_error)
        })
    }
}
