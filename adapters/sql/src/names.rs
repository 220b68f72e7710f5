//! Display names of users on a server, shared by the stores that list who did what.

use crate::db::{db_error, Db};
use crate::types::DbId;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::CoreResult;
use std::collections::HashMap;
use uuid::Uuid;

/// Usernames of `users` on `server_id`: the cached central profile, else the local account.
/// Users with neither are missing from the map (callers show `Unknown`).
pub(crate) async fn usernames(
    db: &Db,
    server_id: Uuid,
    users: Vec<Uuid>,
) -> CoreResult<HashMap<Uuid, String>> {
    let ids: Vec<DbId> = users.into_iter().map(DbId).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    db_run!(db, read, |conn| {
        let mut names: HashMap<Uuid, String> = local_users::table
            .filter(local_users::server_id.eq(DbId(server_id)))
            .filter(local_users::id.eq_any(ids.clone()))
            .select((local_users::id, local_users::username))
            .load::<(DbId, String)>(conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|(id, name)| (id.0, name))
            .collect();
        names.extend(
            cached_profiles::table
                .filter(cached_profiles::user_id.eq_any(ids))
                .select((cached_profiles::user_id, cached_profiles::username))
                .load::<(DbId, String)>(conn)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(|(id, name)| (id.0, name)),
        );
        Ok(names)
    })
}
