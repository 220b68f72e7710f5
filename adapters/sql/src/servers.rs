//! [`ServerStore`] on SQL.

use crate::db::{db_error, is_unique_violation, Db};
use crate::rows::{ConfigRow, ServerRow};
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{
    ConfigPatch, NewAudit, NewServer, NewSync, Server, ServerConfig, ServerPatch, SyncWith,
    Timestamp,
};
use ecto_core::ports::ServerStore;
use ecto_core::{CoreError, CoreResult, ErrorKind};
use uuid::Uuid;

/// Servers, configuration rows and addresses.
pub struct SqlServerStore(pub Db);

#[async_trait]
impl ServerStore for SqlServerStore {
    async fn create(&self, new: NewServer) -> CoreResult<Server> {
        let result: Result<(), diesel::result::Error> = db_run!(self.0, write, |conn| {
            let new = new.clone();
            conn.transaction(async move |conn| {
                diesel::insert_into(servers::table)
                    .values((
                        servers::id.eq(DbId(new.id)),
                        servers::name.eq(&new.name),
                        servers::address.eq(new.address.as_deref()),
                        servers::admin_identity_type.eq("global"),
                        servers::central_connected.eq(false),
                        servers::created_at.eq(new.now),
                        servers::updated_at.eq(new.now),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(server_config::table)
                    .values((
                        server_config::server_id.eq(DbId(new.id)),
                        server_config::tags.eq(serde_json::json!([])),
                        server_config::created_at.eq(new.now),
                        server_config::updated_at.eq(new.now),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(roles::table)
                    .values((
                        roles::id.eq(DbId(new.everyone_role_id)),
                        roles::server_id.eq(DbId(new.id)),
                        roles::name.eq("@everyone"),
                        roles::permissions.eq(new.everyone_permissions as i64),
                        roles::position.eq(0),
                        roles::is_default.eq(true),
                        roles::created_at.eq(new.now),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await
        });
        match result {
            Ok(()) => self
                .get(new.id)
                .await?
                .ok_or_else(|| CoreError::internal_msg("created server vanished")),
            Err(e) if is_unique_violation(&e) => Err(CoreError::new(
                ErrorKind::Conflict,
                None,
                "A server already uses this address",
            )),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn get(&self, id: Uuid) -> CoreResult<Option<Server>> {
        db_run!(self.0, read, |conn| {
            servers::table
                .filter(servers::id.eq(DbId(id)))
                .first::<ServerRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Server::from))
                .map_err(db_error)
        })
    }

    async fn find_by_address(&self, address: &str) -> CoreResult<Option<Server>> {
        let address = address.to_ascii_lowercase();
        db_run!(self.0, read, |conn| {
            let direct = servers::table
                .filter(servers::address.eq(&address))
                .first::<ServerRow>(conn)
                .await
                .optional()
                .map_err(db_error)?;
            if let Some(row) = direct {
                return Ok(Some(row.into()));
            }
            servers::table
                .inner_join(custom_domains::table)
                .filter(custom_domains::domain.eq(&address))
                .select(servers::all_columns)
                .first::<ServerRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Server::from))
                .map_err(db_error)
        })
    }

    async fn first(&self) -> CoreResult<Option<Server>> {
        db_run!(self.0, read, |conn| {
            servers::table
                .order((servers::created_at.asc(), servers::id.asc()))
                .first::<ServerRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Server::from))
                .map_err(db_error)
        })
    }

    async fn config(&self, server_id: Uuid) -> CoreResult<ServerConfig> {
        db_run!(self.0, read, |conn| {
            server_config::table
                .filter(server_config::server_id.eq(DbId(server_id)))
                .first::<ConfigRow>(conn)
                .await
                .optional()
                .map_err(db_error)?
                .map(ServerConfig::from)
                .ok_or_else(|| {
                    CoreError::internal_msg(format!("server {server_id} has no configuration row"))
                })
        })
    }

    async fn member_count(&self, server_id: Uuid) -> CoreResult<i64> {
        db_run!(self.0, read, |conn| {
            members::table
                .filter(members::server_id.eq(DbId(server_id)))
                .count()
                .get_result::<i64>(conn)
                .await
                .map_err(db_error)
        })
    }

    async fn update(
        &self,
        server_id: Uuid,
        patch: ServerPatch,
        audit: NewAudit,
        sync: SyncWith<'_, Server>,
    ) -> CoreResult<Option<Server>> {
        let found: bool = db_run!(self.0, write, |conn| {
            let patch = patch.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let target = servers::table.filter(servers::id.eq(DbId(server_id)));
                let n = diesel::update(target)
                    .set(servers::updated_at.eq(audit.created_at))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                if let Some(Some(channel)) = patch.default_channel_id {
                    let known = channels::table
                        .filter(channels::server_id.eq(DbId(server_id)))
                        .filter(channels::id.eq(DbId(channel)))
                        .count()
                        .get_result::<i64>(conn)
                        .await?;
                    if known == 0 {
                        return Err(DieselError::RollbackTransaction);
                    }
                }
                if let Some(name) = &patch.name {
                    diesel::update(target)
                        .set(servers::name.eq(name))
                        .execute(conn)
                        .await?;
                }
                if let Some(description) = &patch.description {
                    diesel::update(target)
                        .set(servers::description.eq(description.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(icon_url) = &patch.icon_url {
                    diesel::update(target)
                        .set(servers::icon_url.eq(icon_url.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(banner_url) = &patch.banner_url {
                    diesel::update(target)
                        .set(servers::banner_url.eq(banner_url.as_deref()))
                        .execute(conn)
                        .await?;
                }
                if let Some(channel) = patch.default_channel_id {
                    diesel::update(target)
                        .set(servers::default_channel_id.eq(channel.map(DbId)))
                        .execute(conn)
                        .await?;
                }
                insert_audit!(conn, audit)?;
                if let Some(make) = sync {
                    let row: ServerRow = target.first(conn).await?;
                    if let Some(call) = make(&Server::from(row)) {
                        insert_sync!(conn, server_id, call, audit.created_at);
                    }
                }
                Ok(true)
            })
            .await
            .map_err(|e| match e {
                DieselError::RollbackTransaction => CoreError::channel_not_found(),
                e => db_error(e),
            })
        })?;
        if !found {
            return Ok(None);
        }
        self.get(server_id).await
    }

    async fn update_config(
        &self,
        server_id: Uuid,
        patch: ConfigPatch,
        audit: NewAudit,
        sync: SyncWith<'_, ServerConfig>,
    ) -> CoreResult<ServerConfig> {
        let found: bool = db_run!(self.0, write, |conn| {
            let patch = patch.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let target =
                    server_config::table.filter(server_config::server_id.eq(DbId(server_id)));
                let n = diesel::update(target)
                    .set(server_config::updated_at.eq(audit.created_at))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                if let Some(v) = patch.max_upload_size_bytes {
                    diesel::update(target)
                        .set(server_config::max_upload_size_bytes.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.max_shared_storage_bytes {
                    diesel::update(target)
                        .set(server_config::max_shared_storage_bytes.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.allow_local_accounts {
                    diesel::update(target)
                        .set(server_config::allow_local_accounts.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.require_invite {
                    diesel::update(target)
                        .set(server_config::require_invite.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.allow_member_dms {
                    diesel::update(target)
                        .set(server_config::allow_member_dms.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.show_system_messages {
                    diesel::update(target)
                        .set(server_config::show_system_messages.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.discoverable {
                    diesel::update(target)
                        .set(server_config::discoverable.eq(v))
                        .execute(conn)
                        .await?;
                }
                if let Some(tags) = &patch.tags {
                    diesel::update(target)
                        .set(server_config::tags.eq(serde_json::json!(tags)))
                        .execute(conn)
                        .await?;
                }
                if let Some(v) = patch.setup_completed {
                    diesel::update(target)
                        .set(server_config::setup_completed.eq(v))
                        .execute(conn)
                        .await?;
                }
                insert_audit!(conn, audit)?;
                if let Some(make) = sync {
                    let row: ConfigRow = target.first(conn).await?;
                    if let Some(call) = make(&ServerConfig::from(row)) {
                        insert_sync!(conn, server_id, call, audit.created_at);
                    }
                }
                Ok(true)
            })
            .await
            .map_err(db_error)
        })?;
        if !found {
            return Err(CoreError::internal_msg(format!(
                "server {server_id} has no configuration row"
            )));
        }
        self.config(server_id).await
    }

    async fn set_discovery_approved(
        &self,
        server_id: Uuid,
        approved: bool,
        at: Timestamp,
    ) -> CoreResult<Option<ServerConfig>> {
        let n = db_run!(self.0, write, |conn| {
            diesel::update(
                server_config::table.filter(server_config::server_id.eq(DbId(server_id))),
            )
            .set((
                server_config::discovery_approved.eq(approved),
                server_config::updated_at.eq(at),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.config(server_id).await.map(Some)
    }

    async fn transfer_ownership(
        &self,
        server_id: Uuid,
        new_owner: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<Server>> {
        let found: bool = db_run!(self.0, write, |conn| {
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let identity = members::table
                    .filter(members::server_id.eq(DbId(server_id)))
                    .filter(members::user_id.eq(DbId(new_owner)))
                    .select(members::identity_type)
                    .first::<String>(conn)
                    .await
                    .optional()?;
                let Some(identity) = identity else {
                    return Ok::<bool, DieselError>(false);
                };
                let n = diesel::update(servers::table.filter(servers::id.eq(DbId(server_id))))
                    .set((
                        servers::admin_user_id.eq(Some(DbId(new_owner))),
                        servers::admin_identity_type.eq(identity),
                        servers::updated_at.eq(audit.created_at),
                    ))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok(false);
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
        self.get(server_id).await
    }

    async fn delete(&self, server_id: Uuid, sync: Vec<NewSync>, at: Timestamp) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let sync = sync.clone();
            // Cascades over everything it owns: off the calling thread.
            crate::db::offloaded(conn.transaction(async move |conn| {
                // Every foreign key to servers, and between server-owned tables, cascades (see
                // the migrations): this one statement removes everything the server owns.
                let n = diesel::delete(servers::table.filter(servers::id.eq(DbId(server_id))))
                    .execute(conn)
                    .await?;
                if n > 0 {
                    for call in &sync {
                        insert_sync!(conn, server_id, *call, at);
                    }
                }
                Ok::<bool, DieselError>(n > 0)
            }))
            .await
            .map_err(db_error)
        })
    }
}
