//! [`StructureStore`] on SQL: channels, categories, overrides and the audit log.

use crate::db::{db_error, rollback_is_false, Db};
use crate::rows::{AuditRow, CategoryRow, ChannelRow, OverrideRow, RoleRow};
use crate::types::DbId;
use async_trait::async_trait;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{
    AuditEntry, Category, Channel, ChannelType, NewAudit, PermissionData, StoredOverride,
};
use ecto_core::permissions::Override;
use ecto_core::ports::{AuditQuery, ChannelMove, ChannelPatch, NewChannel, StructureStore};
use ecto_core::{new_id, CoreResult};
use uuid::Uuid;

/// Deletes a container's overrides and inserts `$overrides` instead (inside a transaction).
macro_rules! replace_overrides {
    ($conn:expr, $table:ident, $container:ident, $id:expr, $overrides:expr) => {{
        diesel::delete($table::table.filter($table::$container.eq($id)))
            .execute($conn)
            .await?;
        for o in $overrides {
            diesel::insert_into($table::table)
                .values((
                    $table::id.eq(DbId(new_id())),
                    $table::$container.eq($id),
                    $table::target_type.eq(o.target_type.as_str()),
                    $table::target_id.eq(DbId(o.target_id)),
                    $table::allow.eq(o.allow as i64),
                    $table::deny.eq(o.deny as i64),
                ))
                .execute($conn)
                .await?;
        }
    }};
}

/// Channels, categories, overrides, audit log.
pub struct SqlStructureStore(pub Db);

#[async_trait]
impl StructureStore for SqlStructureStore {
    async fn permission_data(&self, server_id: Uuid) -> CoreResult<PermissionData> {
        let server = DbId(server_id);
        db_run!(self.0, read, |conn| {
            let roles = roles::table
                .filter(roles::server_id.eq(server))
                .order((roles::position.desc(), roles::id.asc()))
                .load::<RoleRow>(conn)
                .await
                .map_err(db_error)?;
            let channel_ids = channels::table
                .filter(channels::server_id.eq(server))
                .select(channels::id);
            let mut overrides = channel_permission_overrides::table
                .filter(channel_permission_overrides::channel_id.eq_any(channel_ids))
                .load::<OverrideRow>(conn)
                .await
                .map_err(db_error)?;
            let category_ids = categories::table
                .filter(categories::server_id.eq(server))
                .select(categories::id);
            overrides.extend(
                category_permission_overrides::table
                    .filter(category_permission_overrides::category_id.eq_any(category_ids))
                    .load::<OverrideRow>(conn)
                    .await
                    .map_err(db_error)?,
            );
            Ok(PermissionData {
                roles: roles.into_iter().map(Into::into).collect(),
                overrides: overrides
                    .into_iter()
                    .filter_map(OverrideRow::into_stored)
                    .collect(),
            })
        })
    }

    async fn channels(&self, server_id: Uuid) -> CoreResult<Vec<Channel>> {
        db_run!(self.0, read, |conn| {
            channels::table
                .filter(channels::server_id.eq(DbId(server_id)))
                .order((channels::position.asc(), channels::id.asc()))
                .load::<ChannelRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err(db_error)
        })
    }

    async fn channel(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Channel>> {
        db_run!(self.0, read, |conn| {
            channels::table
                .filter(channels::server_id.eq(DbId(server_id)))
                .filter(channels::id.eq(DbId(id)))
                .first::<ChannelRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Into::into))
                .map_err(db_error)
        })
    }

    async fn categories(&self, server_id: Uuid) -> CoreResult<Vec<Category>> {
        db_run!(self.0, read, |conn| {
            categories::table
                .filter(categories::server_id.eq(DbId(server_id)))
                .order((categories::position.asc(), categories::id.asc()))
                .load::<CategoryRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err(db_error)
        })
    }

    async fn category(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Category>> {
        db_run!(self.0, read, |conn| {
            categories::table
                .filter(categories::server_id.eq(DbId(server_id)))
                .filter(categories::id.eq(DbId(id)))
                .first::<CategoryRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Into::into))
                .map_err(db_error)
        })
    }

    async fn create_channel(
        &self,
        new: NewChannel,
        overrides: Vec<Override>,
        audit: NewAudit,
    ) -> CoreResult<Channel> {
        let now = audit.created_at;
        let position: i32 = db_run!(self.0, write, |conn| {
            let new = new.clone();
            let overrides = overrides.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let server = DbId(new.server_id);
                let top = channels::table
                    .filter(channels::server_id.eq(server))
                    .select(max(channels::position))
                    .first::<Option<i32>>(conn)
                    .await?;
                let position = top.map_or(0, |p| p + 1);
                diesel::insert_into(channels::table)
                    .values((
                        channels::id.eq(DbId(new.id)),
                        channels::server_id.eq(server),
                        channels::category_id.eq(new.category_id.map(DbId)),
                        channels::name.eq(&new.name),
                        channels::type_.eq(new.channel_type.as_str()),
                        channels::topic.eq(new.topic.as_deref()),
                        channels::position.eq(position),
                        channels::slowmode_seconds.eq(new.slowmode_seconds),
                        channels::nsfw.eq(new.nsfw),
                        channels::created_at.eq(now),
                        channels::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                if new.channel_type == ChannelType::Page {
                    diesel::insert_into(page_contents::table)
                        .values((
                            page_contents::channel_id.eq(DbId(new.id)),
                            page_contents::content.eq(""),
                            page_contents::version.eq(1),
                            page_contents::edited_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                }
                replace_overrides!(
                    conn,
                    channel_permission_overrides,
                    channel_id,
                    DbId(new.id),
                    &overrides
                );
                insert_audit!(conn, audit)?;
                Ok::<i32, DieselError>(position)
            })
            .await
            .map_err(db_error)
        })?;
        Ok(Channel {
            id: new.id,
            server_id: new.server_id,
            category_id: new.category_id,
            name: new.name,
            channel_type: new.channel_type,
            topic: new.topic,
            position,
            slowmode_seconds: new.slowmode_seconds,
            nsfw: new.nsfw,
            my_permissions: None,
        })
    }

    async fn update_channel(
        &self,
        server_id: Uuid,
        id: Uuid,
        patch: ChannelPatch,
        overrides: Option<Vec<Override>>,
        audit: NewAudit,
    ) -> CoreResult<Option<Channel>> {
        let found: bool = db_run!(self.0, write, |conn| {
            let patch = patch.clone();
            let overrides = overrides.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let target = channels::table
                    .filter(channels::server_id.eq(DbId(server_id)))
                    .filter(channels::id.eq(DbId(id)));
                let n = diesel::update(target)
                    .set(channels::updated_at.eq(audit.created_at))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                if let Some(name) = &patch.name {
                    diesel::update(target)
                        .set(channels::name.eq(name))
                        .execute(conn)
                        .await?;
                }
                if let Some(topic) = &patch.topic {
                    diesel::update(target)
                        .set(channels::topic.eq(topic.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(category) = patch.category_id {
                    diesel::update(target)
                        .set(channels::category_id.eq(category.map(DbId)))
                        .execute(conn)
                        .await?;
                }
                if let Some(slowmode) = patch.slowmode_seconds {
                    diesel::update(target)
                        .set(channels::slowmode_seconds.eq(slowmode))
                        .execute(conn)
                        .await?;
                }
                if let Some(nsfw) = patch.nsfw {
                    diesel::update(target)
                        .set(channels::nsfw.eq(nsfw))
                        .execute(conn)
                        .await?;
                }
                if let Some(overrides) = &overrides {
                    replace_overrides!(
                        conn,
                        channel_permission_overrides,
                        channel_id,
                        DbId(id),
                        overrides
                    );
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })?;
        if !found {
            return Ok(None);
        }
        self.channel(server_id, id).await
    }

    async fn delete_channel(&self, server_id: Uuid, id: Uuid, audit: NewAudit) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            // Cascades over everything it owns: off the calling thread.
            crate::db::offloaded(conn.transaction(async move |conn| {
                let n = diesel::delete(
                    channels::table
                        .filter(channels::server_id.eq(DbId(server_id)))
                        .filter(channels::id.eq(DbId(id))),
                )
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                // default_channel_id has no foreign key: clear it by hand.
                diesel::update(
                    servers::table
                        .filter(servers::id.eq(DbId(server_id)))
                        .filter(servers::default_channel_id.eq(DbId(id))),
                )
                .set(servers::default_channel_id.eq(None::<DbId>))
                .execute(conn)
                .await?;
                insert_audit!(conn, audit)?;
                Ok(true)
            }))
            .await
            .map_err(db_error)
        })
    }

    async fn reorder_channels(
        &self,
        server_id: Uuid,
        moves: Vec<ChannelMove>,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let moves = moves.clone();
            conn.transaction(async move |conn| {
                let server = DbId(server_id);
                for m in &moves {
                    if let Some(Some(category)) = m.category_id {
                        let known = categories::table
                            .filter(categories::server_id.eq(server))
                            .filter(categories::id.eq(DbId(category)))
                            .count()
                            .get_result::<i64>(conn)
                            .await?;
                        if known == 0 {
                            return Err(DieselError::RollbackTransaction);
                        }
                    }
                    let target = channels::table
                        .filter(channels::server_id.eq(server))
                        .filter(channels::id.eq(DbId(m.channel_id)));
                    let n = diesel::update(target)
                        .set(channels::position.eq(m.position))
                        .execute(conn)
                        .await?;
                    if n == 0 {
                        return Err(DieselError::RollbackTransaction);
                    }
                    if let Some(category) = m.category_id {
                        diesel::update(target)
                            .set(channels::category_id.eq(category.map(DbId)))
                            .execute(conn)
                            .await?;
                    }
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }

    async fn channel_overrides(
        &self,
        server_id: Uuid,
        channel_id: Uuid,
    ) -> CoreResult<Vec<StoredOverride>> {
        db_run!(self.0, read, |conn| {
            let own = channels::table
                .filter(channels::server_id.eq(DbId(server_id)))
                .filter(channels::id.eq(DbId(channel_id)))
                .select(channels::id);
            channel_permission_overrides::table
                .filter(channel_permission_overrides::channel_id.eq_any(own))
                .order(channel_permission_overrides::id.asc())
                .load::<OverrideRow>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .filter_map(OverrideRow::into_stored)
                        .collect()
                })
                .map_err(db_error)
        })
    }

    async fn create_category(
        &self,
        server_id: Uuid,
        id: Uuid,
        name: &str,
        audit: NewAudit,
    ) -> CoreResult<Category> {
        let name = name.to_owned();
        let position: i32 = db_run!(self.0, write, |conn| {
            let name = name.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let server = DbId(server_id);
                let top = categories::table
                    .filter(categories::server_id.eq(server))
                    .select(max(categories::position))
                    .first::<Option<i32>>(conn)
                    .await?;
                let position = top.map_or(0, |p| p + 1);
                diesel::insert_into(categories::table)
                    .values((
                        categories::id.eq(DbId(id)),
                        categories::server_id.eq(server),
                        categories::name.eq(&name),
                        categories::position.eq(position),
                        categories::created_at.eq(audit.created_at),
                    ))
                    .execute(conn)
                    .await?;
                insert_audit!(conn, audit)?;
                Ok::<i32, DieselError>(position)
            })
            .await
            .map_err(db_error)
        })?;
        Ok(Category {
            id,
            server_id,
            name,
            position,
        })
    }

    async fn update_category(
        &self,
        server_id: Uuid,
        id: Uuid,
        name: Option<String>,
        overrides: Option<Vec<Override>>,
        audit: NewAudit,
    ) -> CoreResult<Option<Category>> {
        let found: bool = db_run!(self.0, write, |conn| {
            let name = name.clone();
            let overrides = overrides.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let target = categories::table
                    .filter(categories::server_id.eq(DbId(server_id)))
                    .filter(categories::id.eq(DbId(id)));
                let exists = target.count().get_result::<i64>(conn).await? > 0;
                if !exists {
                    return Ok::<bool, DieselError>(false);
                }
                if let Some(name) = &name {
                    diesel::update(target)
                        .set(categories::name.eq(name))
                        .execute(conn)
                        .await?;
                }
                if let Some(overrides) = &overrides {
                    replace_overrides!(
                        conn,
                        category_permission_overrides,
                        category_id,
                        DbId(id),
                        overrides
                    );
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })?;
        if !found {
            return Ok(None);
        }
        self.category(server_id, id).await
    }

    async fn delete_category(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                // Channels go uncategorized explicitly (the FK's SET NULL does the same).
                diesel::update(
                    channels::table
                        .filter(channels::server_id.eq(DbId(server_id)))
                        .filter(channels::category_id.eq(DbId(id))),
                )
                .set(channels::category_id.eq(None::<DbId>))
                .execute(conn)
                .await?;
                let n = diesel::delete(
                    categories::table
                        .filter(categories::server_id.eq(DbId(server_id)))
                        .filter(categories::id.eq(DbId(id))),
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

    async fn reorder_categories(
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
                        categories::table
                            .filter(categories::server_id.eq(DbId(server_id)))
                            .filter(categories::id.eq(DbId(*id))),
                    )
                    .set(categories::position.eq(*position))
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

    async fn category_overrides(
        &self,
        server_id: Uuid,
        category_id: Uuid,
    ) -> CoreResult<Vec<StoredOverride>> {
        db_run!(self.0, read, |conn| {
            let own = categories::table
                .filter(categories::server_id.eq(DbId(server_id)))
                .filter(categories::id.eq(DbId(category_id)))
                .select(categories::id);
            category_permission_overrides::table
                .filter(category_permission_overrides::category_id.eq_any(own))
                .order(category_permission_overrides::id.asc())
                .load::<OverrideRow>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .filter_map(OverrideRow::into_stored)
                        .collect()
                })
                .map_err(db_error)
        })
    }

    async fn audit_log(&self, server_id: Uuid, q: AuditQuery) -> CoreResult<Vec<AuditEntry>> {
        let rows = db_run!(self.0, read, |conn| {
            let mut query = audit_log::table
                .filter(audit_log::server_id.eq(DbId(server_id)))
                .into_boxed();
            if let Some(before) = q.before {
                query = query.filter(audit_log::id.lt(DbId(before)));
            }
            if let Some(action) = &q.action {
                query = query.filter(audit_log::action.eq(action.clone()));
            }
            if let Some(actor) = q.actor_id {
                query = query.filter(audit_log::actor_id.eq(DbId(actor)));
            }
            let rows = query
                .order(audit_log::id.desc())
                .limit(q.limit)
                .load::<AuditRow>(conn)
                .await
                .map_err(db_error)?;
            Ok::<_, ecto_core::CoreError>(rows)
        })?;
        let names = crate::names::usernames(
            &self.0,
            server_id,
            rows.iter().map(|r| r.actor_id.0).collect(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id.0,
                server_id: r.server_id.0,
                actor_id: r.actor_id.0,
                actor_name: names
                    .get(&r.actor_id.0)
                    .cloned()
                    .unwrap_or_else(|| "Unknown".into()),
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id.map(|t| t.0),
                details: r.details,
                created_at: r.created_at,
            })
            .collect())
    }
}
