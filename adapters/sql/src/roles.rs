//! [`RoleStore`] and [`ModerationStore`] on SQL.

use crate::db::{db_error, rollback_is_false, Db};
use crate::lower;
use crate::rows::{MemberRow, RoleRow};
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{BanView, Member, MemberView, NewAudit, Profile, Role, Timestamp};
use ecto_core::ports::{ModerationStore, NewBan, NewRole, RolePatch, RoleStore};
use ecto_core::CoreResult;
use std::collections::HashMap;
use uuid::Uuid;

/// Roles and their holders.
pub struct SqlRoleStore(pub Db);

/// Member listing and moderation.
pub struct SqlModerationStore(pub Db);

#[async_trait]
impl RoleStore for SqlRoleStore {
    async fn create_role(
        &self,
        server_id: Uuid,
        role: NewRole,
        audit: NewAudit,
    ) -> CoreResult<Role> {
        let position: i32 = db_run!(self.0, write, |conn| {
            let role = role.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let position = match role.position {
                    Some(p) => p,
                    None => {
                        let top = roles::table
                            .filter(roles::server_id.eq(DbId(server_id)))
                            .select(max(roles::position))
                            .first::<Option<i32>>(conn)
                            .await?;
                        top.map_or(1, |p| p + 1)
                    }
                };
                diesel::insert_into(roles::table)
                    .values((
                        roles::id.eq(DbId(role.id)),
                        roles::server_id.eq(DbId(server_id)),
                        roles::name.eq(&role.name),
                        roles::color.eq(role.color.as_deref()),
                        roles::permissions.eq(role.permissions as i64),
                        roles::position.eq(position),
                        roles::is_default.eq(false),
                        roles::created_at.eq(audit.created_at),
                    ))
                    .execute(conn)
                    .await?;
                insert_audit!(conn, audit)?;
                Ok::<i32, DieselError>(position)
            })
            .await
            .map_err(db_error)
        })?;
        Ok(Role {
            id: role.id,
            server_id,
            name: role.name,
            color: role.color,
            permissions: role.permissions,
            position,
            is_default: false,
        })
    }

    async fn update_role(
        &self,
        server_id: Uuid,
        id: Uuid,
        patch: RolePatch,
        audit: NewAudit,
    ) -> CoreResult<Option<Role>> {
        db_run!(self.0, write, |conn| {
            let patch = patch.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let target = roles::table
                    .filter(roles::server_id.eq(DbId(server_id)))
                    .filter(roles::id.eq(DbId(id)));
                if target.count().get_result::<i64>(conn).await? == 0 {
                    return Err(DieselError::RollbackTransaction);
                }
                if let Some(name) = &patch.name {
                    diesel::update(target)
                        .set(roles::name.eq(name))
                        .execute(conn)
                        .await?;
                }
                if let Some(color) = &patch.color {
                    diesel::update(target)
                        .set(roles::color.eq(color.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(bits) = patch.permissions {
                    diesel::update(target)
                        .set(roles::permissions.eq(bits as i64))
                        .execute(conn)
                        .await?;
                }
                if let Some(position) = patch.position {
                    diesel::update(target)
                        .set(roles::position.eq(position))
                        .execute(conn)
                        .await?;
                }
                insert_audit!(conn, audit)?;
                let row = target.first::<RoleRow>(conn).await?;
                Ok(Some(Role::from(row)))
            })
            .await
            .or_else(|e| match e {
                DieselError::RollbackTransaction => Ok(None),
                e => Err(db_error(e)),
            })
        })
    }

    async fn delete_role(&self, server_id: Uuid, id: Uuid, audit: NewAudit) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let n = diesel::delete(
                    roles::table
                        .filter(roles::server_id.eq(DbId(server_id)))
                        .filter(roles::id.eq(DbId(id)))
                        .filter(roles::is_default.eq(false)),
                )
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(DieselError::RollbackTransaction);
                }
                // Overrides naming the role are meaningless now.
                diesel::delete(
                    channel_permission_overrides::table
                        .filter(channel_permission_overrides::target_type.eq("role"))
                        .filter(channel_permission_overrides::target_id.eq(DbId(id))),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    category_permission_overrides::table
                        .filter(category_permission_overrides::target_type.eq("role"))
                        .filter(category_permission_overrides::target_id.eq(DbId(id))),
                )
                .execute(conn)
                .await?;
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }

    async fn reorder_roles(
        &self,
        server_id: Uuid,
        moves: Vec<(Uuid, i32)>,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let moves = moves.clone();
            conn.transaction(async move |conn| {
                for (id, position) in &moves {
                    let n = diesel::update(
                        roles::table
                            .filter(roles::server_id.eq(DbId(server_id)))
                            .filter(roles::id.eq(DbId(*id)))
                            .filter(roles::is_default.eq(false)),
                    )
                    .set(roles::position.eq(*position))
                    .execute(conn)
                    .await?;
                    if n == 0 {
                        return Err(DieselError::RollbackTransaction);
                    }
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }

    async fn set_member_roles(
        &self,
        server_id: Uuid,
        member_id: Uuid,
        role_ids: Vec<Uuid>,
        audit: NewAudit,
    ) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            let role_ids = role_ids.clone();
            conn.transaction(async move |conn| {
                let own = roles::table
                    .filter(roles::server_id.eq(DbId(server_id)))
                    .filter(
                        roles::id.eq_any(role_ids.iter().copied().map(DbId).collect::<Vec<_>>()),
                    )
                    .count()
                    .get_result::<i64>(conn)
                    .await?;
                if own != role_ids.len() as i64 {
                    return Err(DieselError::RollbackTransaction);
                }
                diesel::delete(
                    member_roles::table.filter(member_roles::member_id.eq(DbId(member_id))),
                )
                .execute(conn)
                .await?;
                for role in &role_ids {
                    diesel::insert_into(member_roles::table)
                        .values((
                            member_roles::member_id.eq(DbId(member_id)),
                            member_roles::role_id.eq(DbId(*role)),
                        ))
                        .execute(conn)
                        .await?;
                }
                insert_audit!(conn, audit)?;
                Ok(())
            })
            .await
            .map_err(|e| match e {
                DieselError::RollbackTransaction => ecto_core::CoreError::role_not_found(),
                e => db_error(e),
            })
        })
    }
}

#[async_trait]
impl ModerationStore for SqlModerationStore {
    async fn list_members(
        &self,
        server_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<Member>> {
        db_run!(self.0, read, |conn| {
            let mut query = members::table
                .filter(members::server_id.eq(DbId(server_id)))
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(members::id.lt(DbId(after)));
            }
            query
                .order(members::id.desc())
                .limit(limit)
                .load::<MemberRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(Member::from).collect())
                .map_err(db_error)
        })
    }

    async fn member_views(&self, server_id: Uuid, list: &[Member]) -> CoreResult<Vec<MemberView>> {
        let member_ids: Vec<DbId> = list.iter().map(|m| DbId(m.id)).collect();
        let user_ids: Vec<DbId> = list.iter().map(|m| DbId(m.user_id)).collect();
        let (role_rows, cached, local) = db_run!(self.0, read, |conn| {
            let role_rows = member_roles::table
                .inner_join(roles::table)
                .filter(member_roles::member_id.eq_any(member_ids.clone()))
                .order((
                    roles::is_default.desc(),
                    roles::position.desc(),
                    roles::id.asc(),
                ))
                .select((member_roles::member_id, roles::id))
                .load::<(DbId, DbId)>(conn)
                .await
                .map_err(db_error)?;
            let cached = cached_profiles::table
                .filter(cached_profiles::user_id.eq_any(user_ids.clone()))
                .select((
                    cached_profiles::user_id,
                    cached_profiles::username,
                    cached_profiles::discriminator,
                    cached_profiles::display_name,
                    cached_profiles::avatar_url,
                ))
                .load::<(DbId, String, String, Option<String>, Option<String>)>(conn)
                .await
                .map_err(db_error)?;
            let local = local_users::table
                .filter(local_users::server_id.eq(DbId(server_id)))
                .filter(local_users::id.eq_any(user_ids.clone()))
                .select((
                    local_users::id,
                    local_users::username,
                    local_users::display_name,
                    local_users::avatar_url,
                ))
                .load::<(DbId, String, Option<String>, Option<String>)>(conn)
                .await
                .map_err(db_error)?;
            Ok::<_, ecto_core::CoreError>((role_rows, cached, local))
        })?;
        let mut roles: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (member, role) in role_rows {
            roles.entry(member.0).or_default().push(role.0);
        }
        let mut profiles: HashMap<Uuid, Profile> = local
            .into_iter()
            .map(|(id, username, display_name, avatar_url)| {
                (
                    id.0,
                    Profile {
                        username,
                        display_name,
                        avatar_url,
                        discriminator: None,
                    },
                )
            })
            .collect();
        for (id, username, discriminator, display_name, avatar_url) in cached {
            profiles.insert(
                id.0,
                Profile {
                    username,
                    display_name,
                    avatar_url,
                    discriminator: Some(discriminator),
                },
            );
        }
        Ok(list
            .iter()
            .map(|m| {
                let profile = profiles
                    .get(&m.user_id)
                    .cloned()
                    .unwrap_or_else(Profile::unknown);
                MemberView::new(m, roles.remove(&m.id).unwrap_or_default(), profile)
            })
            .collect())
    }

    async fn ban(
        &self,
        server_id: Uuid,
        ban: NewBan,
        delete_since: Option<Timestamp>,
        audit: NewAudit,
    ) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            let ban = ban.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let server = DbId(server_id);
                let user = DbId(ban.user_id);
                diesel::delete(
                    bans::table
                        .filter(bans::server_id.eq(server))
                        .filter(bans::user_id.eq(user)),
                )
                .execute(conn)
                .await?;
                diesel::insert_into(bans::table)
                    .values((
                        bans::id.eq(DbId(ban.id)),
                        bans::server_id.eq(server),
                        bans::user_id.eq(user),
                        bans::banned_by.eq(DbId(ban.banned_by)),
                        bans::reason.eq(ban.reason.as_deref()),
                        bans::created_at.eq(ban.created_at),
                    ))
                    .execute(conn)
                    .await?;
                if let Some(since) = delete_since {
                    // Only this server's messages (DECISIONS §3.6).
                    diesel::update(
                        messages::table
                            .filter(messages::server_id.eq(server))
                            .filter(messages::author_id.eq(user))
                            // Walks the id index from `since` (SQLite has no index by
                            // author: see the migration `lean_send_writes`).
                            .filter(messages::id.ge(DbId(ecto_core::id_floor(since))))
                            .filter(messages::created_at.ge(since)),
                    )
                    .set(messages::deleted.eq(true))
                    .execute(conn)
                    .await?;
                }
                let _removed = delete_member!(conn, server, user);
                insert_audit!(conn, audit)?;
                Ok::<(), DieselError>(())
            })
            .await
            .map_err(db_error)
        })
    }

    async fn unban(&self, server_id: Uuid, user_id: Uuid, audit: NewAudit) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let n = diesel::delete(
                    bans::table
                        .filter(bans::server_id.eq(DbId(server_id)))
                        .filter(bans::user_id.eq(DbId(user_id))),
                )
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(DieselError::RollbackTransaction);
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }

    async fn bans(&self, server_id: Uuid) -> CoreResult<Vec<BanView>> {
        type BanRow = (DbId, DbId, DbId, DbId, Option<String>, DateTime<Utc>);
        let rows = db_run!(self.0, read, |conn| {
            let rows = bans::table
                .filter(bans::server_id.eq(DbId(server_id)))
                .order(bans::id.desc())
                .load::<BanRow>(conn)
                .await
                .map_err(db_error)?;
            Ok::<_, ecto_core::CoreError>(rows)
        })?;
        let people = rows.iter().flat_map(|r| [r.2 .0, r.3 .0]).collect();
        let names = crate::names::usernames(&self.0, server_id, people).await?;
        let name = |id: Uuid| names.get(&id).cloned().unwrap_or_else(|| "Unknown".into());
        Ok(rows
            .into_iter()
            .map(|(id, server, user, by, reason, created_at)| BanView {
                id: id.0,
                server_id: server.0,
                user_id: user.0,
                banned_by: by.0,
                reason,
                created_at,
                username: name(user.0),
                banned_by_name: name(by.0),
            })
            .collect())
    }

    async fn set_nickname(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        nickname: Option<String>,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            diesel::update(
                members::table
                    .filter(members::server_id.eq(DbId(server_id)))
                    .filter(members::user_id.eq(DbId(user_id))),
            )
            .set(members::nickname.eq(nickname.as_deref()))
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(db_error)
        })
    }

    async fn set_allow_dms(&self, server_id: Uuid, user_id: Uuid, allow: bool) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            diesel::update(
                members::table
                    .filter(members::server_id.eq(DbId(server_id)))
                    .filter(members::user_id.eq(DbId(user_id))),
            )
            .set(members::allow_dms.eq(allow))
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(db_error)
        })
    }

    async fn member_with_username(&self, server_id: Uuid, name: &str) -> CoreResult<Option<Uuid>> {
        let name = name.to_owned();
        db_run!(self.0, read, |conn| {
            let server = DbId(server_id);
            let local = members::table
                .inner_join(local_users::table.on(local_users::id.eq(members::user_id)))
                .filter(members::server_id.eq(server))
                .filter(local_users::server_id.eq(server))
                .filter(lower(local_users::username).eq(&name))
                .select(members::user_id)
                .first::<DbId>(conn)
                .await
                .optional()
                .map_err(db_error)?;
            if let Some(id) = local {
                return Ok(Some(id.0));
            }
            members::table
                .inner_join(
                    cached_profiles::table.on(cached_profiles::user_id.eq(members::user_id)),
                )
                .filter(members::server_id.eq(server))
                .filter(lower(cached_profiles::username).eq(&name))
                .select(members::user_id)
                .first::<DbId>(conn)
                .await
                .optional()
                .map(|id| id.map(|id| id.0))
                .map_err(db_error)
        })
    }

    async fn set_local_profile(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        display_name: Option<String>,
        avatar_url: Option<String>,
    ) -> CoreResult<bool> {
        let now = Utc::now();
        db_run!(self.0, write, |conn| {
            diesel::update(
                local_users::table
                    .filter(local_users::server_id.eq(DbId(server_id)))
                    .filter(local_users::id.eq(DbId(user_id))),
            )
            .set((
                local_users::display_name.eq(display_name.as_deref()),
                local_users::avatar_url.eq(avatar_url.as_deref()),
                local_users::updated_at.eq(now),
            ))
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(db_error)
        })
    }
}
