//! [`MessageStore`] on SQL.

use crate::db::{db_error, Backend, Db};
use crate::rows::MessageRow;
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{
    ActivityRecord, Attachment, MessageAuthor, MessageEdit, MessageRecord, NewAudit, Reaction,
    ReadState, Timestamp,
};
use ecto_core::ports::{Cursor, MessageStore, SendRefusal};
use ecto_core::{new_id, CoreError, CoreResult};
use std::collections::HashMap;
use uuid::Uuid;

/// Messages, reactions, attachments links, edits and read states.
pub struct SqlMessageStore(pub Db);

/// A plain message insert (no attachments, mentions or activity) queued for SQLite's one
/// write connection, with where to report its outcome.
pub(crate) struct PendingInsert {
    message: MessageRecord,
    done: tokio::sync::oneshot::Sender<Result<(), CoreError>>,
}

/// Group commit on SQLite: every plain insert queues itself, then waits for the write
/// connection; whoever gets it writes everything queued by then in one transaction (one
/// write-ahead-log commit for the lot instead of one each) and reports to each sender. A
/// failed batch is retried one insert at a time, so one bad row fails only its own send.
async fn insert_grouped(
    write: &Pool<crate::db::SqliteConn>,
    queue: &std::sync::Mutex<Vec<PendingInsert>>,
    message: MessageRecord,
) -> CoreResult<()> {
    let (done, outcome) = tokio::sync::oneshot::channel();
    let id = message.id;
    queue
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(PendingInsert { message, done });
    match write.get().await {
        Err(e) => {
            // Not written and about to be reported as failed: it must not be written later
            // by another holder. If one already took it, its outcome is the answer.
            let mut waiting = queue.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = waiting.iter().position(|p| p.message.id == id) {
                waiting.remove(at);
                return Err(crate::db::pool_error(e));
            }
        }
        Ok(mut pooled) => {
            let batch = std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()));
            write_batch(&mut pooled, batch).await;
        }
    }
    // Written by this call or by the holder that took it from the queue.
    outcome
        .await
        .map_err(|_| CoreError::internal_msg("a grouped message insert was dropped"))?
}

/// Writes `batch` in one transaction, or one insert at a time if that fails, and reports each
/// outcome to its sender.
async fn write_batch(conn: &mut crate::db::SqliteConn, batch: Vec<PendingInsert>) {
    use crate::schema_sqlite::*;
    if batch.is_empty() {
        return;
    }
    // A batch of one goes the one-insert way below: one statement is atomic by itself, and
    // BEGIN and COMMIT are each a trip to the blocking pool.
    let together = batch.len() > 1
        && conn
            .transaction(async |conn| {
                for p in &batch {
                    insert_message!(conn, p.message)?;
                }
                Ok::<(), DieselError>(())
            })
            .await
            .is_ok();
    for p in batch {
        let outcome = if together {
            Ok(())
        } else {
            insert_message!(conn, p.message)
                .map(|_| ())
                .map_err(db_error)
        };
        let _ = p.done.send(outcome);
    }
}

#[async_trait]
impl MessageStore for SqlMessageStore {
    async fn page(
        &self,
        channel_id: Uuid,
        cursor: Cursor,
        limit: i64,
        pinned_only: bool,
    ) -> CoreResult<Vec<MessageRecord>> {
        db_run!(self.0, read, |conn| {
            let mut q = messages::table
                .filter(messages::channel_id.eq(DbId(channel_id)))
                .filter(messages::deleted.eq(false))
                .into_boxed();
            if pinned_only {
                // The bare column (not `= true`): it matches idx_messages_pinned's condition.
                q = q.filter(messages::pinned);
            }
            let ascending = matches!(cursor, Cursor::After(_));
            q = match cursor {
                Cursor::Latest => q.order(messages::id.desc()),
                Cursor::Before(id) => q
                    .filter(messages::id.lt(DbId(id)))
                    .order(messages::id.desc()),
                Cursor::After(id) => q
                    .filter(messages::id.gt(DbId(id)))
                    .order(messages::id.asc()),
            };
            let mut rows: Vec<MessageRecord> = q
                .limit(limit)
                .load::<MessageRow>(conn)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(Into::into)
                .collect();
            if !ascending {
                rows.reverse();
            }
            Ok(rows)
        })
    }

    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<MessageRecord>> {
        db_run!(self.0, read, |conn| {
            messages::table
                .filter(messages::server_id.eq(DbId(server_id)))
                .filter(messages::id.eq(DbId(id)))
                .first::<MessageRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Into::into))
                .map_err(db_error)
        })
    }

    async fn last_post(
        &self,
        channel_id: Uuid,
        author_id: Uuid,
        since: Timestamp,
    ) -> CoreResult<Option<Timestamp>> {
        // The id bound keeps the walk of the channel's index to the window (SQLite has no
        // index by author: see the migration `lean_send_writes`).
        let floor = DbId(ecto_core::id_floor(since));
        db_run!(self.0, read, |conn| {
            messages::table
                .filter(messages::channel_id.eq(DbId(channel_id)))
                .filter(messages::id.ge(floor))
                .filter(messages::created_at.ge(since))
                .filter(messages::author_id.eq(DbId(author_id)))
                .filter(messages::deleted.eq(false))
                .order(messages::id.desc())
                .select(messages::created_at)
                .first::<DateTime<Utc>>(conn)
                .await
                .optional()
                .map_err(db_error)
        })
    }

    async fn insert_with_activity(
        &self,
        message: MessageRecord,
        attachments: Vec<Uuid>,
        mentioned: Vec<Uuid>,
        activity: Vec<ActivityRecord>,
    ) -> CoreResult<Result<(), SendRefusal>> {
        let plain = attachments.is_empty() && mentioned.is_empty() && activity.is_empty();
        if let (true, Backend::Sqlite { write, inserts, .. }) = (plain, &*self.0.backend) {
            return insert_grouped(write, inserts, message).await.map(Ok);
        }
        db_run!(self.0, write, |conn| {
            let message = message.clone();
            let attachments = attachments.clone();
            let mentioned = mentioned.clone();
            let activity = activity.clone();
            if plain {
                // One statement is atomic by itself: no transaction round trips.
                return insert_message!(conn, message)
                    .map(|_| Ok(()))
                    .map_err(db_error);
            }
            conn.transaction(async move |conn| {
                insert_message!(conn, message)?;
                for attachment in &attachments {
                    // Only the sender's own unlinked upload in this channel can be linked.
                    let n = diesel::update(
                        attachments::table
                            .filter(attachments::id.eq(DbId(*attachment)))
                            .filter(attachments::server_id.eq(DbId(message.server_id)))
                            .filter(attachments::channel_id.eq(DbId(message.channel_id)))
                            .filter(attachments::uploader_id.eq(DbId(message.author_id)))
                            .filter(attachments::message_id.is_null()),
                    )
                    .set(attachments::message_id.eq(DbId(message.id)))
                    .execute(conn)
                    .await?;
                    if n != 1 {
                        return Err(DieselError::RollbackTransaction);
                    }
                }
                for user in &mentioned {
                    diesel::insert_into(read_states::table)
                        .values((
                            read_states::user_id.eq(DbId(*user)),
                            read_states::channel_id.eq(DbId(message.channel_id)),
                            read_states::mention_count.eq(1),
                            read_states::updated_at.eq(message.created_at),
                        ))
                        .on_conflict((read_states::user_id, read_states::channel_id))
                        .do_update()
                        .set(read_states::mention_count.eq(read_states::mention_count + 1))
                        .execute(conn)
                        .await?;
                }
                for item in &activity {
                    insert_activity!(conn, item)?;
                }
                Ok(())
            })
            .await
            .map(Ok)
            .or_else(|e| match e {
                DieselError::RollbackTransaction => Ok(Err(SendRefusal::Attachment)),
                e => Err(db_error(e)),
            })
        })
    }

    async fn edit(
        &self,
        server_id: Uuid,
        id: Uuid,
        content: &str,
        at: Timestamp,
    ) -> CoreResult<bool> {
        let content = content.to_owned();
        db_run!(self.0, write, |conn| {
            let content = content.clone();
            conn.transaction(async move |conn| {
                let target = messages::table
                    .filter(messages::server_id.eq(DbId(server_id)))
                    .filter(messages::id.eq(DbId(id)))
                    .filter(messages::deleted.eq(false));
                let Some(previous) = target
                    .select(messages::content)
                    .first::<Option<String>>(conn)
                    .await
                    .optional()?
                else {
                    return Ok::<bool, DieselError>(false);
                };
                diesel::insert_into(message_edits::table)
                    .values((
                        message_edits::id.eq(DbId(new_id())),
                        message_edits::message_id.eq(DbId(id)),
                        message_edits::content.eq(previous.unwrap_or_default()),
                        message_edits::edited_at.eq(at),
                    ))
                    .execute(conn)
                    .await?;
                diesel::update(target)
                    .set((
                        messages::content.eq(Some(content.as_str())),
                        messages::edited_at.eq(Some(at)),
                    ))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn delete(&self, server_id: Uuid, id: Uuid, audit: Option<NewAudit>) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let n = diesel::update(
                    messages::table
                        .filter(messages::server_id.eq(DbId(server_id)))
                        .filter(messages::id.eq(DbId(id)))
                        .filter(messages::deleted.eq(false)),
                )
                .set(messages::deleted.eq(true))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                if let Some(audit) = &audit {
                    insert_audit!(conn, audit)?;
                }
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn set_pinned(
        &self,
        server_id: Uuid,
        id: Uuid,
        pinned: bool,
        system: Option<MessageRecord>,
        audit: NewAudit,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            let system = system.clone();
            let audit = audit.clone();
            conn.transaction(async move |conn| {
                let n = diesel::update(
                    messages::table
                        .filter(messages::server_id.eq(DbId(server_id)))
                        .filter(messages::id.eq(DbId(id)))
                        .filter(messages::deleted.eq(false)),
                )
                .set(messages::pinned.eq(pinned))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok::<bool, DieselError>(false);
                }
                if let Some(sys) = &system {
                    insert_message!(conn, sys)?;
                }
                insert_audit!(conn, audit)?;
                Ok(true)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn react(
        &self,
        message_id: Uuid,
        user_id: Uuid,
        emoji: &str,
        add: bool,
        at: Timestamp,
        activity: Option<ActivityRecord>,
    ) -> CoreResult<bool> {
        let emoji = emoji.to_owned();
        db_run!(self.0, write, |conn| {
            let emoji = emoji.clone();
            let activity = activity.clone();
            conn.transaction(async move |conn| {
                let n = if add {
                    diesel::insert_into(reactions::table)
                        .values((
                            reactions::id.eq(DbId(new_id())),
                            reactions::message_id.eq(DbId(message_id)),
                            reactions::user_id.eq(DbId(user_id)),
                            reactions::emoji.eq(&emoji),
                            reactions::created_at.eq(at),
                        ))
                        .on_conflict((reactions::message_id, reactions::user_id, reactions::emoji))
                        .do_nothing()
                        .execute(conn)
                        .await?
                } else {
                    diesel::delete(
                        reactions::table
                            .filter(reactions::message_id.eq(DbId(message_id)))
                            .filter(reactions::user_id.eq(DbId(user_id)))
                            .filter(reactions::emoji.eq(&emoji)),
                    )
                    .execute(conn)
                    .await?
                };
                if add && n > 0 {
                    if let Some(item) = &activity {
                        insert_activity!(conn, item)?;
                    }
                }
                Ok::<bool, DieselError>(n > 0)
            })
            .await
            .map_err(db_error)
        })
    }

    async fn reactions(&self, message_ids: &[Uuid]) -> CoreResult<Vec<Reaction>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<DbId> = message_ids.iter().copied().map(DbId).collect();
        db_run!(self.0, read, |conn| {
            reactions::table
                .filter(reactions::message_id.eq_any(ids.clone()))
                .order((reactions::created_at.asc(), reactions::id.asc()))
                .select((reactions::message_id, reactions::user_id, reactions::emoji))
                .load::<(DbId, DbId, String)>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|(m, u, emoji)| Reaction {
                            message_id: m.0,
                            user_id: u.0,
                            emoji,
                        })
                        .collect()
                })
                .map_err(db_error)
        })
    }

    async fn attachments(&self, message_ids: &[Uuid]) -> CoreResult<Vec<Attachment>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<DbId> = message_ids.iter().copied().map(DbId).collect();
        db_run!(self.0, read, |conn| {
            attachments::table
                .filter(attachments::message_id.eq_any(ids.clone()))
                .order(attachments::id.asc())
                .select((
                    attachments::id,
                    attachments::message_id,
                    attachments::filename,
                    attachments::url,
                    attachments::content_type,
                    attachments::size_bytes,
                ))
                .load::<(DbId, Option<DbId>, String, String, String, i32)>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(
                            |(id, m, filename, url, content_type, size_bytes)| Attachment {
                                id: id.0,
                                message_id: m.map(|m| m.0),
                                filename,
                                url,
                                content_type,
                                size_bytes,
                            },
                        )
                        .collect()
                })
                .map_err(db_error)
        })
    }

    async fn edits(&self, message_id: Uuid) -> CoreResult<Vec<MessageEdit>> {
        db_run!(self.0, read, |conn| {
            message_edits::table
                .filter(message_edits::message_id.eq(DbId(message_id)))
                .order((message_edits::edited_at.asc(), message_edits::id.asc()))
                .select((message_edits::content, message_edits::edited_at))
                .load::<(String, DateTime<Utc>)>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|(content, edited_at)| MessageEdit { content, edited_at })
                        .collect()
                })
                .map_err(db_error)
        })
    }

    async fn authors(
        &self,
        server_id: Uuid,
        user_ids: &[Uuid],
    ) -> CoreResult<HashMap<Uuid, MessageAuthor>> {
        let ids: Vec<DbId> = user_ids.iter().copied().map(DbId).collect();
        let (locals, cached, nicks) = db_run!(self.0, read, |conn| {
            let locals = local_users::table
                .filter(local_users::server_id.eq(DbId(server_id)))
                .filter(local_users::id.eq_any(ids.clone()))
                .select((
                    local_users::id,
                    local_users::username,
                    local_users::display_name,
                    local_users::avatar_url,
                ))
                .load::<(DbId, String, Option<String>, Option<String>)>(conn)
                .await
                .map_err(db_error)?;
            let cached = cached_profiles::table
                .filter(cached_profiles::user_id.eq_any(ids.clone()))
                .select((
                    cached_profiles::user_id,
                    cached_profiles::username,
                    cached_profiles::display_name,
                    cached_profiles::avatar_url,
                ))
                .load::<(DbId, String, Option<String>, Option<String>)>(conn)
                .await
                .map_err(db_error)?;
            let nicks = members::table
                .filter(members::server_id.eq(DbId(server_id)))
                .filter(members::user_id.eq_any(ids.clone()))
                .select((members::user_id, members::nickname))
                .load::<(DbId, Option<String>)>(conn)
                .await
                .map_err(db_error)?;
            Ok::<_, ecto_core::CoreError>((locals, cached, nicks))
        })?;
        let nicks: HashMap<Uuid, Option<String>> =
            nicks.into_iter().map(|(u, n)| (u.0, n)).collect();
        let mut out = HashMap::new();
        for (id, username, display_name, avatar_url) in locals.into_iter().chain(cached) {
            let nickname = nicks.get(&id.0).cloned().flatten();
            out.insert(
                id.0,
                MessageAuthor {
                    id: id.0,
                    username,
                    display_name,
                    avatar_url,
                    nickname,
                },
            );
        }
        Ok(out)
    }

    async fn mark_read(
        &self,
        user_id: Uuid,
        channel_id: Uuid,
        last_read: Uuid,
        at: Timestamp,
    ) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            diesel::insert_into(read_states::table)
                .values((
                    read_states::user_id.eq(DbId(user_id)),
                    read_states::channel_id.eq(DbId(channel_id)),
                    read_states::last_read_message_id.eq(Some(DbId(last_read))),
                    read_states::mention_count.eq(0),
                    read_states::updated_at.eq(at),
                ))
                .on_conflict((read_states::user_id, read_states::channel_id))
                .do_update()
                .set((
                    read_states::last_read_message_id.eq(Some(DbId(last_read))),
                    read_states::mention_count.eq(0),
                    read_states::updated_at.eq(at),
                ))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(db_error)
        })
    }

    async fn mark_all_read(&self, server_id: Uuid, user_id: Uuid, at: Timestamp) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let channel_ids = channels::table
                    .filter(channels::server_id.eq(DbId(server_id)))
                    .select(channels::id)
                    .load::<DbId>(conn)
                    .await?;
                for channel in channel_ids {
                    let newest = messages::table
                        .filter(messages::channel_id.eq(channel))
                        .filter(messages::deleted.eq(false))
                        .order(messages::id.desc())
                        .select(messages::id)
                        .first::<DbId>(conn)
                        .await
                        .optional()?;
                    let Some(newest) = newest else { continue };
                    diesel::insert_into(read_states::table)
                        .values((
                            read_states::user_id.eq(DbId(user_id)),
                            read_states::channel_id.eq(channel),
                            read_states::last_read_message_id.eq(Some(newest)),
                            read_states::mention_count.eq(0),
                            read_states::updated_at.eq(at),
                        ))
                        .on_conflict((read_states::user_id, read_states::channel_id))
                        .do_update()
                        .set((
                            read_states::last_read_message_id.eq(Some(newest)),
                            read_states::mention_count.eq(0),
                            read_states::updated_at.eq(at),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok::<(), DieselError>(())
            })
            .await
            .map_err(db_error)
        })
    }

    async fn read_states(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Vec<ReadState>> {
        db_run!(self.0, read, |conn| {
            read_states::table
                .inner_join(channels::table)
                .filter(channels::server_id.eq(DbId(server_id)))
                .filter(read_states::user_id.eq(DbId(user_id)))
                .select((
                    read_states::user_id,
                    read_states::channel_id,
                    read_states::last_read_message_id,
                    read_states::mention_count,
                ))
                .load::<(DbId, DbId, Option<DbId>, i32)>(conn)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|(u, c, last, count)| ReadState {
                            user_id: u.0,
                            channel_id: c.0,
                            last_read_message_id: last.map(|l| l.0),
                            mention_count: count,
                        })
                        .collect()
                })
                .map_err(db_error)
        })
    }
}
