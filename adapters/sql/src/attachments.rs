//! [`AttachmentStore`] on SQL: the rows of uploaded files, and the attachments of channel
//! messages as the shared file hub lists and deletes them.

use crate::db::{db_error, Db};
use crate::types::db_ids;
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{ChannelFileDeletion, ChannelFileRecord, ChannelUploads, NewAudit};
use ecto_core::ports::{AttachmentRecord, AttachmentStore};
use ecto_core::{CoreError, CoreResult};
use std::collections::HashMap;
use uuid::Uuid;

/// Attachment rows.
pub struct SqlAttachmentStore(pub Db);

type Row = (
    DbId,
    DbId,
    Option<DbId>,
    Option<DbId>,
    DbId,
    String,
    String,
    String,
    String,
    i32,
    DateTime<Utc>,
);

fn record(r: Row) -> AttachmentRecord {
    AttachmentRecord {
        id: r.0 .0,
        server_id: r.1 .0,
        message_id: r.2.map(|d| d.0),
        channel_id: r.3.map(|d| d.0),
        uploader_id: r.4 .0,
        filename: r.5,
        url: r.6,
        storage_key: r.7,
        content_type: r.8,
        size_bytes: i64::from(r.9),
        created_at: r.10,
    }
}

type ChannelFileRow = (
    DbId,
    String,
    String,
    String,
    i32,
    DbId,
    DbId,
    DbId,
    DateTime<Utc>,
);

fn channel_file(r: ChannelFileRow) -> ChannelFileRecord {
    ChannelFileRecord {
        id: r.0 .0,
        filename: r.1,
        url: r.2,
        content_type: r.3,
        size_bytes: r.4,
        message_id: r.5 .0,
        channel_id: r.6 .0,
        uploaded_by: r.7 .0,
        created_at: r.8,
    }
}

/// The columns of a [`ChannelFileRow`] (attachments joined to their messages); the schema of
/// the current `db_run!` arm must be in scope.
macro_rules! channel_file_columns {
    () => {
        (
            attachments::id,
            attachments::filename,
            attachments::url,
            attachments::content_type,
            attachments::size_bytes,
            messages::id,
            messages::channel_id,
            messages::author_id,
            attachments::created_at,
        )
    };
}

#[async_trait]
impl AttachmentStore for SqlAttachmentStore {
    async fn insert(&self, a: &AttachmentRecord) -> CoreResult<()> {
        let size = i32::try_from(a.size_bytes)
            .map_err(|_| CoreError::bad_request("File is too large to record"))?;
        db_run!(self.0, write, |conn| {
            diesel::insert_into(attachments::table)
                .values((
                    attachments::id.eq(DbId(a.id)),
                    attachments::server_id.eq(DbId(a.server_id)),
                    attachments::message_id.eq(a.message_id.map(DbId)),
                    attachments::channel_id.eq(a.channel_id.map(DbId)),
                    attachments::uploader_id.eq(DbId(a.uploader_id)),
                    attachments::filename.eq(&a.filename),
                    attachments::url.eq(&a.url),
                    attachments::storage_key.eq(&a.storage_key),
                    attachments::content_type.eq(&a.content_type),
                    attachments::size_bytes.eq(size),
                    attachments::created_at.eq(a.created_at),
                ))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(db_error)
        })
    }

    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<AttachmentRecord>> {
        db_run!(self.0, read, |conn| {
            attachments::table
                .filter(attachments::server_id.eq(DbId(server_id)))
                .filter(attachments::id.eq(DbId(id)))
                .select(attachments::all_columns)
                .first::<Row>(conn)
                .await
                .optional()
                .map(|r| r.map(record))
                .map_err(db_error)
        })
    }

    async fn non_image_usage(&self, server_id: Uuid, image_types: &[&str]) -> CoreResult<u64> {
        let images: Vec<String> = image_types.iter().map(|t| (*t).to_owned()).collect();
        db_run!(self.0, read, |conn| {
            let attached: Option<i64> = attachments::table
                .filter(attachments::server_id.eq(DbId(server_id)))
                // Metadata-only rows (`files.upload`) store nothing.
                .filter(attachments::storage_key.ne(""))
                .filter(attachments::content_type.ne_all(images.clone()))
                .select(diesel::dsl::sum(attachments::size_bytes))
                .first(conn)
                .await
                .map_err(db_error)?;
            let shared: Option<i64> = shared_files::table
                .filter(shared_files::server_id.eq(DbId(server_id)))
                .filter(shared_files::content_type.ne_all(images.clone()))
                .select(diesel::dsl::sum(shared_files::size_bytes))
                .first(conn)
                .await
                .map_err(db_error)?;
            Ok((attached.unwrap_or(0).max(0) + shared.unwrap_or(0).max(0)) as u64)
        })
    }

    async fn channel_files(
        &self,
        server_id: Uuid,
        channel_ids: &[Uuid],
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<ChannelFileRecord>> {
        if channel_ids.is_empty() {
            return Ok(Vec::new());
        }
        let channels = db_ids(channel_ids);
        db_run!(self.0, read, |conn| {
            let mut q = attachments::table
                .inner_join(messages::table)
                .filter(attachments::server_id.eq(DbId(server_id)))
                .filter(messages::server_id.eq(DbId(server_id)))
                .filter(messages::deleted.eq(false))
                .filter(messages::channel_id.eq_any(channels.clone()))
                .into_boxed();
            if let Some(b) = before {
                q = q.filter(attachments::id.lt(DbId(b)));
            }
            q.order(attachments::id.desc())
                .limit(limit)
                .select(channel_file_columns!())
                .load::<ChannelFileRow>(conn)
                .await
                .map(|rows| rows.into_iter().map(channel_file).collect())
                .map_err(db_error)
        })
    }

    async fn channel_file(
        &self,
        server_id: Uuid,
        id: Uuid,
    ) -> CoreResult<Option<ChannelFileRecord>> {
        let server = DbId(server_id);
        db_run!(self.0, read, |conn| {
            let own = channels::table
                .filter(channels::server_id.eq(server))
                .select(channels::id);
            attachments::table
                .inner_join(messages::table)
                .filter(attachments::id.eq(DbId(id)))
                .filter(attachments::server_id.eq(server))
                .filter(messages::server_id.eq(server))
                .filter(messages::deleted.eq(false))
                .filter(messages::channel_id.eq_any(own))
                .select(channel_file_columns!())
                .first::<ChannelFileRow>(conn)
                .await
                .optional()
                .map(|r| r.map(channel_file))
                .map_err(db_error)
        })
    }

    async fn channel_uploads(&self, server_id: Uuid) -> CoreResult<Vec<ChannelUploads>> {
        let server = DbId(server_id);
        // Summed here rather than in SQL: SQLite's timestamp type has no MAX in diesel.
        let rows: Vec<(DbId, DateTime<Utc>, i32)> = db_run!(self.0, read, |conn| {
            let own = channels::table
                .filter(channels::server_id.eq(server))
                .select(channels::id);
            attachments::table
                .inner_join(messages::table)
                .filter(attachments::server_id.eq(server))
                .filter(messages::server_id.eq(server))
                .filter(messages::deleted.eq(false))
                .filter(messages::channel_id.eq_any(own))
                .select((
                    messages::channel_id,
                    attachments::created_at,
                    attachments::size_bytes,
                ))
                .load(conn)
                .await
                .map_err(db_error)?
        });
        let mut per_channel: HashMap<Uuid, ChannelUploads> = HashMap::new();
        for (channel, at, size) in rows {
            let c = per_channel
                .entry(channel.0)
                .or_insert_with(|| ChannelUploads {
                    channel_id: channel.0,
                    last_upload_at: None,
                    total_size_bytes: 0,
                });
            c.total_size_bytes += i64::from(size);
            if c.last_upload_at.is_none_or(|last| at > last) {
                c.last_upload_at = Some(at);
            }
        }
        Ok(per_channel.into_values().collect())
    }

    async fn delete_channel_file(
        &self,
        server_id: Uuid,
        attachment_id: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<ChannelFileDeletion>> {
        let server = DbId(server_id);
        db_run!(self.0, write, |conn| {
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let own = channels::table
                    .filter(channels::server_id.eq(server))
                    .select(channels::id);
                let found: Option<(DbId, DbId, Option<String>, String, String)> =
                    attachments::table
                        .inner_join(messages::table)
                        .filter(attachments::id.eq(DbId(attachment_id)))
                        .filter(attachments::server_id.eq(server))
                        .filter(messages::server_id.eq(server))
                        .filter(messages::deleted.eq(false))
                        .filter(messages::channel_id.eq_any(own))
                        .select((
                            messages::id,
                            messages::channel_id,
                            messages::content,
                            attachments::filename,
                            attachments::storage_key,
                        ))
                        .first(conn)
                        .await
                        .optional()?;
                let Some((message_id, channel_id, content, filename, storage_key)) = found else {
                    return Ok::<_, DieselError>(None);
                };
                diesel::delete(attachments::table.filter(attachments::id.eq(DbId(attachment_id))))
                    .execute(conn)
                    .await?;
                let left: i64 = attachments::table
                    .filter(attachments::message_id.eq(message_id))
                    .count()
                    .get_result(conn)
                    .await?;
                let blank = content.as_deref().is_none_or(|c| c.trim().is_empty());
                let message_deleted = left == 0 && blank;
                if message_deleted {
                    diesel::update(messages::table.filter(messages::id.eq(message_id)))
                        .set(messages::deleted.eq(true))
                        .execute(conn)
                        .await?;
                }
                insert_audit!(conn, audit)?;
                Ok(Some(ChannelFileDeletion {
                    message_id: message_id.0,
                    channel_id: channel_id.0,
                    filename,
                    storage_key,
                    message_deleted,
                }))
            })
            .await
            .map_err(db_error)
        })
    }
}
