//! [`ServerStore`] on SQL.

use crate::db::{db_error, is_unique_violation, Db};
use crate::rows::{ConfigRow, ServerRow};
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{NewServer, Server, ServerConfig};
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
}
