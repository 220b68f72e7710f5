//! [`HubStore`] on SQL: `shared_folders`, `shared_files` and
//! `shared_item_permission_overrides`.

use crate::db::{db_error, rollback_is_false, Db};
use crate::types::{db_ids, DbId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{
    DeletedTree, FolderStats, ItemOverride, ItemType, NewAudit, SharedFileRecord, SharedFolder,
};
use ecto_core::permissions::{Override, TargetType};
use ecto_core::ports::{HubStore, SharedFileRefusal};
use ecto_core::CoreResult;
use std::collections::HashMap;
use uuid::Uuid;

/// The shared file hub.
pub struct SqlHubStore(pub Db);

type FolderRow = (DbId, DbId, Option<DbId>, String, DbId, DateTime<Utc>);

fn folder(r: FolderRow) -> SharedFolder {
    SharedFolder {
        id: r.0 .0,
        server_id: r.1 .0,
        parent_id: r.2.map(|p| p.0),
        name: r.3,
        created_by: r.4 .0,
        created_at: r.5,
    }
}

type FileRow = (
    DbId,
    DbId,
    Option<DbId>,
    String,
    String,
    String,
    String,
    i32,
    DbId,
    DateTime<Utc>,
);

fn file(r: FileRow) -> SharedFileRecord {
    SharedFileRecord {
        id: r.0 .0,
        server_id: r.1 .0,
        folder_id: r.2.map(|f| f.0),
        filename: r.3,
        url: r.4,
        storage_key: r.5,
        content_type: r.6,
        size_bytes: r.7,
        uploaded_by: r.8 .0,
        created_at: r.9,
    }
}

type OverrideRow = (DbId, DbId, String, DbId, String, DbId, i64, i64);

fn item_override(r: OverrideRow) -> Option<ItemOverride> {
    Some(ItemOverride {
        id: r.0 .0,
        item_type: ItemType::parse(&r.2)?,
        item_id: r.3 .0,
        rule: Override {
            target_type: TargetType::parse(&r.4)?,
            target_id: r.5 .0,
            allow: r.6 as u64,
            deny: r.7 as u64,
        },
    })
}

#[async_trait]
impl HubStore for SqlHubStore {
    async fn folders(&self, server_id: Uuid) -> CoreResult<Vec<SharedFolder>> {
        db_run!(self.0, read, |conn| {
            shared_folders::table
                .filter(shared_folders::server_id.eq(DbId(server_id)))
                .order((shared_folders::name.asc(), shared_folders::id.asc()))
                .select(shared_folders::all_columns)
                .load::<FolderRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(folder).collect())
                .map_err(db_error)
        })
    }

    async fn folder(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<SharedFolder>> {
        db_run!(self.0, read, |conn| {
            shared_folders::table
                .filter(shared_folders::server_id.eq(DbId(server_id)))
                .filter(shared_folders::id.eq(DbId(id)))
                .select(shared_folders::all_columns)
                .first::<FolderRow>(conn)
                .await
                .optional()
                .map(|r| r.map(folder))
                .map_err(db_error)
        })
    }

    async fn folder_stats(
        &self,
        server_id: Uuid,
        folder_ids: &[Uuid],
    ) -> CoreResult<HashMap<Uuid, FolderStats>> {
        if folder_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let wanted = db_ids(folder_ids);
        let rows: Vec<(Option<DbId>, i32, DbId)> = db_run!(self.0, read, |conn| {
            shared_files::table
                .filter(shared_files::server_id.eq(DbId(server_id)))
                .filter(shared_files::folder_id.eq_any(wanted.clone()))
                .order(shared_files::id.asc())
                .select((
                    shared_files::folder_id,
                    shared_files::size_bytes,
                    shared_files::uploaded_by,
                ))
                .load(conn)
                .await
                .map_err(db_error)?
        });
        let mut stats: HashMap<Uuid, FolderStats> = HashMap::new();
        for (folder_id, size, uploader) in rows {
            let Some(folder_id) = folder_id else { continue };
            let s = stats.entry(folder_id.0).or_default();
            s.file_count += 1;
            s.total_size_bytes += i64::from(size);
            if !s.contributors.contains(&uploader.0) {
                s.contributors.push(uploader.0);
            }
        }
        Ok(stats)
    }

    async fn create_folder(&self, f: SharedFolder) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let f = f.clone();
            conn.transaction(async move |conn| {
                if let Some(parent) = f.parent_id {
                    let found = shared_folders::table
                        .filter(shared_folders::server_id.eq(DbId(f.server_id)))
                        .filter(shared_folders::id.eq(DbId(parent)))
                        .select(shared_folders::id)
                        .first::<DbId>(conn)
                        .await
                        .optional()?;
                    if found.is_none() {
                        return Err(DieselError::RollbackTransaction);
                    }
                }
                diesel::insert_into(shared_folders::table)
                    .values((
                        shared_folders::id.eq(DbId(f.id)),
                        shared_folders::server_id.eq(DbId(f.server_id)),
                        shared_folders::parent_id.eq(f.parent_id.map(DbId)),
                        shared_folders::name.eq(&f.name),
                        shared_folders::created_by.eq(DbId(f.created_by)),
                        shared_folders::created_at.eq(f.created_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<bool, DieselError>(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }

    async fn rename_folder(
        &self,
        server_id: Uuid,
        id: Uuid,
        name: &str,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        let name = name.to_owned();
        db_run!(self.0, write, |conn| {
            let name = name.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let n = diesel::update(
                    shared_folders::table
                        .filter(shared_folders::server_id.eq(DbId(server_id)))
                        .filter(shared_folders::id.eq(DbId(id))),
                )
                .set(shared_folders::name.eq(&name))
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

    async fn delete_folder(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<DeletedTree>> {
        let server = DbId(server_id);
        db_run!(self.0, write, |conn| {
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let found = shared_folders::table
                    .filter(shared_folders::server_id.eq(server))
                    .filter(shared_folders::id.eq(DbId(id)))
                    .select(shared_folders::id)
                    .first::<DbId>(conn)
                    .await
                    .optional()?;
                if found.is_none() {
                    return Ok::<Option<DeletedTree>, DieselError>(None);
                }
                // Walk down one level at a time; the set of seen ids keeps a corrupt cycle
                // from looping.
                let mut all = vec![DbId(id)];
                let mut frontier = vec![DbId(id)];
                while !frontier.is_empty() {
                    let children: Vec<DbId> = shared_folders::table
                        .filter(shared_folders::server_id.eq(server))
                        .filter(shared_folders::parent_id.eq_any(frontier.clone()))
                        .select(shared_folders::id)
                        .load(conn)
                        .await?;
                    frontier = children.into_iter().filter(|c| !all.contains(c)).collect();
                    all.extend(frontier.iter().copied());
                }
                let files: Vec<(DbId, String)> = shared_files::table
                    .filter(shared_files::server_id.eq(server))
                    .filter(shared_files::folder_id.eq_any(all.clone()))
                    .select((shared_files::id, shared_files::storage_key))
                    .load(conn)
                    .await?;
                let file_ids: Vec<DbId> = files.iter().map(|f| f.0).collect();
                diesel::delete(
                    shared_item_permission_overrides::table
                        .filter(shared_item_permission_overrides::server_id.eq(server))
                        .filter(shared_item_permission_overrides::item_type.eq("folder"))
                        .filter(shared_item_permission_overrides::item_id.eq_any(all.clone())),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    shared_item_permission_overrides::table
                        .filter(shared_item_permission_overrides::server_id.eq(server))
                        .filter(shared_item_permission_overrides::item_type.eq("file"))
                        .filter(shared_item_permission_overrides::item_id.eq_any(file_ids.clone())),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    shared_files::table
                        .filter(shared_files::server_id.eq(server))
                        .filter(shared_files::id.eq_any(file_ids)),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    shared_folders::table
                        .filter(shared_folders::server_id.eq(server))
                        .filter(shared_folders::id.eq_any(all.clone())),
                )
                .execute(conn)
                .await?;
                insert_audit!(conn, audit)?;
                Ok(Some(DeletedTree {
                    folder_ids: all.into_iter().map(|f| f.0).collect(),
                    storage_keys: files.into_iter().map(|f| f.1).collect(),
                }))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn shared_files(
        &self,
        server_id: Uuid,
        folder_id: Option<Uuid>,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<SharedFileRecord>> {
        db_run!(self.0, read, |conn| {
            let mut q = shared_files::table
                .filter(shared_files::server_id.eq(DbId(server_id)))
                .into_boxed();
            q = match folder_id {
                Some(f) => q.filter(shared_files::folder_id.eq(DbId(f))),
                None => q.filter(shared_files::folder_id.is_null()),
            };
            if let Some(b) = before {
                q = q.filter(shared_files::id.lt(DbId(b)));
            }
            q.order(shared_files::id.desc())
                .limit(limit)
                .select(shared_files::all_columns)
                .load::<FileRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(file).collect())
                .map_err(db_error)
        })
    }

    async fn shared_file(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<SharedFileRecord>> {
        db_run!(self.0, read, |conn| {
            shared_files::table
                .filter(shared_files::server_id.eq(DbId(server_id)))
                .filter(shared_files::id.eq(DbId(id)))
                .select(shared_files::all_columns)
                .first::<FileRow>(conn)
                .await
                .optional()
                .map(|r| r.map(file))
                .map_err(db_error)
        })
    }

    async fn insert_shared_file(
        &self,
        f: SharedFileRecord,
        max_total_bytes: i64,
    ) -> CoreResult<Result<(), SharedFileRefusal>> {
        db_run!(self.0, write, |conn| {
            let f = f.clone();
            conn.transaction(async move |conn| {
                let server = DbId(f.server_id);
                // Touching the config row locks it until commit, so two uploads to the same
                // server check the quota one after the other.
                diesel::update(server_config::table.filter(server_config::server_id.eq(server)))
                    .set(server_config::updated_at.eq(server_config::updated_at))
                    .execute(conn)
                    .await?;
                if let Some(folder) = f.folder_id {
                    let found = shared_folders::table
                        .filter(shared_folders::server_id.eq(server))
                        .filter(shared_folders::id.eq(DbId(folder)))
                        .select(shared_folders::id)
                        .first::<DbId>(conn)
                        .await
                        .optional()?;
                    if found.is_none() {
                        return Ok(Err(SharedFileRefusal::FolderGone));
                    }
                }
                let used: Option<i64> = shared_files::table
                    .filter(shared_files::server_id.eq(server))
                    .select(diesel::dsl::sum(shared_files::size_bytes))
                    .first(conn)
                    .await?;
                if used.unwrap_or(0) + i64::from(f.size_bytes) > max_total_bytes {
                    return Ok(Err(SharedFileRefusal::QuotaExceeded));
                }
                diesel::insert_into(shared_files::table)
                    .values((
                        shared_files::id.eq(DbId(f.id)),
                        shared_files::server_id.eq(server),
                        shared_files::folder_id.eq(f.folder_id.map(DbId)),
                        shared_files::filename.eq(&f.filename),
                        shared_files::url.eq(&f.url),
                        shared_files::storage_key.eq(&f.storage_key),
                        shared_files::content_type.eq(&f.content_type),
                        shared_files::size_bytes.eq(f.size_bytes),
                        shared_files::uploaded_by.eq(DbId(f.uploaded_by)),
                        shared_files::created_at.eq(f.created_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, DieselError>(Ok(()))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn delete_shared_file(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<SharedFileRecord>> {
        let server = DbId(server_id);
        db_run!(self.0, write, |conn| {
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let Some(row) = shared_files::table
                    .filter(shared_files::server_id.eq(server))
                    .filter(shared_files::id.eq(DbId(id)))
                    .select(shared_files::all_columns)
                    .first::<FileRow>(conn)
                    .await
                    .optional()?
                else {
                    return Ok::<_, DieselError>(None);
                };
                diesel::delete(
                    shared_item_permission_overrides::table
                        .filter(shared_item_permission_overrides::server_id.eq(server))
                        .filter(shared_item_permission_overrides::item_type.eq("file"))
                        .filter(shared_item_permission_overrides::item_id.eq(DbId(id))),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    shared_files::table
                        .filter(shared_files::server_id.eq(server))
                        .filter(shared_files::id.eq(DbId(id))),
                )
                .execute(conn)
                .await?;
                insert_audit!(conn, audit)?;
                Ok(Some(file(row)))
            })
            .await
            .map_err(db_error)
        })
    }

    async fn used_bytes(&self, server_id: Uuid) -> CoreResult<i64> {
        db_run!(self.0, read, |conn| {
            shared_files::table
                .filter(shared_files::server_id.eq(DbId(server_id)))
                .select(diesel::dsl::sum(shared_files::size_bytes))
                .first::<Option<i64>>(conn)
                .await
                .map(|n| n.unwrap_or(0))
                .map_err(db_error)
        })
    }

    async fn overrides(&self, server_id: Uuid) -> CoreResult<Vec<ItemOverride>> {
        db_run!(self.0, read, |conn| {
            shared_item_permission_overrides::table
                .filter(shared_item_permission_overrides::server_id.eq(DbId(server_id)))
                .order(shared_item_permission_overrides::id.asc())
                .select(shared_item_permission_overrides::all_columns)
                .load::<OverrideRow>(conn)
                .await
                .map(|rows| rows.into_iter().filter_map(item_override).collect())
                .map_err(db_error)
        })
    }

    async fn replace_overrides(
        &self,
        server_id: Uuid,
        item_type: ItemType,
        item_id: Uuid,
        overrides: Vec<(Uuid, Override)>,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        let server = DbId(server_id);
        db_run!(self.0, write, |conn| {
            let overrides = overrides.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let found = match item_type {
                    ItemType::Folder => shared_folders::table
                        .filter(shared_folders::server_id.eq(server))
                        .filter(shared_folders::id.eq(DbId(item_id)))
                        .select(shared_folders::id)
                        .first::<DbId>(conn)
                        .await
                        .optional()?,
                    ItemType::File => shared_files::table
                        .filter(shared_files::server_id.eq(server))
                        .filter(shared_files::id.eq(DbId(item_id)))
                        .select(shared_files::id)
                        .first::<DbId>(conn)
                        .await
                        .optional()?,
                };
                if found.is_none() {
                    return Ok::<bool, DieselError>(false);
                }
                diesel::delete(
                    shared_item_permission_overrides::table
                        .filter(shared_item_permission_overrides::server_id.eq(server))
                        .filter(shared_item_permission_overrides::item_type.eq(item_type.as_str()))
                        .filter(shared_item_permission_overrides::item_id.eq(DbId(item_id))),
                )
                .execute(conn)
                .await?;
                for (id, o) in &overrides {
                    diesel::insert_into(shared_item_permission_overrides::table)
                        .values((
                            shared_item_permission_overrides::id.eq(DbId(*id)),
                            shared_item_permission_overrides::server_id.eq(server),
                            shared_item_permission_overrides::item_type.eq(item_type.as_str()),
                            shared_item_permission_overrides::item_id.eq(DbId(item_id)),
                            shared_item_permission_overrides::target_type
                                .eq(o.target_type.as_str()),
                            shared_item_permission_overrides::target_id.eq(DbId(o.target_id)),
                            shared_item_permission_overrides::allow.eq(o.allow as i64),
                            shared_item_permission_overrides::deny.eq(o.deny as i64),
                        ))
                        .execute(conn)
                        .await?;
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }
}
