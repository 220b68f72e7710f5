//! [`AccountStore`] on SQL.

use crate::db::{db_error, is_unique_violation, Db};
use crate::lower;
use crate::rows::{CachedProfileRow, LocalUserRow};
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::model::{CachedProfile, LocalUser, NewLocalUser, Profile};
use ecto_core::ports::AccountStore;
use ecto_core::{CoreError, CoreResult};
use uuid::Uuid;

/// Local accounts and cached central profiles.
pub struct SqlAccountStore(pub Db);

#[async_trait]
impl AccountStore for SqlAccountStore {
    async fn create_local_user(&self, user: NewLocalUser) -> CoreResult<LocalUser> {
        let inserted = db_run!(self.0, write, |conn| {
            diesel::insert_into(local_users::table)
                .values((
                    local_users::id.eq(DbId(user.id)),
                    local_users::server_id.eq(DbId(user.server_id)),
                    local_users::username.eq(&user.username),
                    local_users::password_hash.eq(&user.password_hash),
                    local_users::created_at.eq(user.now),
                    local_users::updated_at.eq(user.now),
                ))
                .execute(conn)
                .await
        });
        match inserted {
            Ok(_) => Ok(LocalUser {
                id: user.id,
                server_id: user.server_id,
                username: user.username,
                password_hash: user.password_hash,
                display_name: None,
                avatar_url: None,
            }),
            Err(e) if is_unique_violation(&e) => Err(CoreError::username_taken()),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn find_local_user(
        &self,
        server_id: Uuid,
        username: &str,
    ) -> CoreResult<Option<LocalUser>> {
        let wanted = username.to_ascii_lowercase();
        db_run!(self.0, read, |conn| {
            local_users::table
                .filter(local_users::server_id.eq(DbId(server_id)))
                .filter(lower(local_users::username).eq(&wanted))
                .first::<LocalUserRow>(conn)
                .await
                .optional()
                .map(|r| r.map(LocalUser::from))
                .map_err(db_error)
        })
    }

    async fn get_local_user(
        &self,
        server_id: Uuid,
        user_id: Uuid,
    ) -> CoreResult<Option<LocalUser>> {
        db_run!(self.0, read, |conn| {
            local_users::table
                .filter(local_users::server_id.eq(DbId(server_id)))
                .filter(local_users::id.eq(DbId(user_id)))
                .first::<LocalUserRow>(conn)
                .await
                .optional()
                .map(|r| r.map(LocalUser::from))
                .map_err(db_error)
        })
    }

    async fn set_password_hash(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        hash: &str,
    ) -> CoreResult<bool> {
        let now = chrono::Utc::now();
        db_run!(self.0, write, |conn| {
            diesel::update(
                local_users::table
                    .filter(local_users::server_id.eq(DbId(server_id)))
                    .filter(local_users::id.eq(DbId(user_id))),
            )
            .set((
                local_users::password_hash.eq(hash),
                local_users::updated_at.eq(now),
            ))
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(db_error)
        })
    }

    async fn upsert_cached_profile(&self, p: CachedProfile) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            diesel::insert_into(cached_profiles::table)
                .values((
                    cached_profiles::user_id.eq(DbId(p.user_id)),
                    cached_profiles::username.eq(&p.username),
                    cached_profiles::discriminator.eq(&p.discriminator),
                    cached_profiles::display_name.eq(p.display_name.as_deref()),
                    cached_profiles::avatar_url.eq(p.avatar_url.as_deref()),
                    cached_profiles::fetched_at.eq(p.fetched_at),
                ))
                .on_conflict(cached_profiles::user_id)
                .do_update()
                .set((
                    cached_profiles::username.eq(&p.username),
                    cached_profiles::discriminator.eq(&p.discriminator),
                    cached_profiles::display_name.eq(p.display_name.as_deref()),
                    cached_profiles::avatar_url.eq(p.avatar_url.as_deref()),
                    cached_profiles::fetched_at.eq(p.fetched_at),
                ))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(db_error)
        })
    }

    async fn profile(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Profile> {
        db_run!(self.0, read, |conn| {
            let cached = cached_profiles::table
                .filter(cached_profiles::user_id.eq(DbId(user_id)))
                .first::<CachedProfileRow>(conn)
                .await
                .optional()
                .map_err(db_error)?;
            if let Some(row) = cached {
                return Ok(Profile::from(row));
            }
            let local = local_users::table
                .filter(local_users::server_id.eq(DbId(server_id)))
                .filter(local_users::id.eq(DbId(user_id)))
                .first::<LocalUserRow>(conn)
                .await
                .optional()
                .map_err(db_error)?;
            Ok(local.map(Profile::from).unwrap_or_else(Profile::unknown))
        })
    }
}
