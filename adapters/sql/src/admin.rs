//! Reads for the operator's command line that no port needs.

use crate::db::{db_error, Db};
use crate::types::DbId;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::CoreResult;
use uuid::Uuid;

impl Db {
    /// The id of every community server in the database, oldest first
    /// (`ecto-server admin list-servers`).
    pub async fn server_ids(&self) -> CoreResult<Vec<Uuid>> {
        db_run!(self, read, |conn| {
            servers::table
                .order((servers::created_at.asc(), servers::id.asc()))
                .select(servers::id)
                .load::<DbId>(conn)
                .await
                .map(|ids| ids.into_iter().map(|id| id.0).collect())
                .map_err(db_error)
        })
    }
}
