//! [`AttachmentStore`] on SQL: the rows of uploaded files.

use crate::db::{db_error, Db};
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::ports::{AttachmentRecord, AttachmentStore};
use ecto_core::{CoreError, CoreResult};
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
}
