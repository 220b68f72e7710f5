//! [`DmStore`] on SQL: conversations, their messages (rows of `messages` whose channel is the
//! conversation) and DM read markers.

use crate::db::{db_error, Db};
use crate::rows::MessageRow;
use crate::types::DbId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{Conversation, ConversationSummary, MessageRecord, Timestamp};
use ecto_core::ports::{DmStore, NewDm, SendRefusal, SentDm};
use ecto_core::CoreResult;
use uuid::Uuid;

/// Server DM conversations.
pub struct SqlDmStore(pub Db);

/// A row of `dm_conversations`, in column order.
#[derive(Queryable)]
struct ConversationRow {
    id: DbId,
    server_id: DbId,
    user_a: DbId,
    user_b: DbId,
    last_message_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<ConversationRow> for Conversation {
    fn from(r: ConversationRow) -> Self {
        Conversation {
            id: r.id.0,
            server_id: r.server_id.0,
            user_a: r.user_a.0,
            user_b: r.user_b.0,
            last_message_at: r.last_message_at,
            created_at: r.created_at,
        }
    }
}

#[async_trait]
impl DmStore for SqlDmStore {
    async fn conversation(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Conversation>> {
        db_run!(self.0, read, |conn| {
            dm_conversations::table
                .filter(dm_conversations::server_id.eq(DbId(server_id)))
                .filter(dm_conversations::id.eq(DbId(id)))
                .first::<ConversationRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Into::into))
                .map_err(db_error)
        })
    }

    async fn find(&self, server_id: Uuid, x: Uuid, y: Uuid) -> CoreResult<Option<Conversation>> {
        let (a, b) = Conversation::pair(x, y);
        db_run!(self.0, read, |conn| {
            dm_conversations::table
                .filter(dm_conversations::server_id.eq(DbId(server_id)))
                .filter(dm_conversations::user_a.eq(DbId(a)))
                .filter(dm_conversations::user_b.eq(DbId(b)))
                .first::<ConversationRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Into::into))
                .map_err(db_error)
        })
    }

    async fn send(&self, dm: NewDm) -> CoreResult<Result<SentDm, SendRefusal>> {
        let (a, b) = Conversation::pair(dm.sender, dm.recipient);
        db_run!(self.0, write, |conn| {
            let dm = dm.clone();
            conn.transaction(async move |conn| {
                let at = dm.message.created_at;
                // A concurrent first send of the same pair may insert the row first: the
                // unique (server_id, user_a, user_b) makes this insert a no-op, and the select
                // below reads the row that won.
                diesel::insert_into(dm_conversations::table)
                    .values((
                        dm_conversations::id.eq(DbId(dm.conversation_id)),
                        dm_conversations::server_id.eq(DbId(dm.server_id)),
                        dm_conversations::user_a.eq(DbId(a)),
                        dm_conversations::user_b.eq(DbId(b)),
                        dm_conversations::created_at.eq(at),
                    ))
                    .on_conflict((
                        dm_conversations::server_id,
                        dm_conversations::user_a,
                        dm_conversations::user_b,
                    ))
                    .do_nothing()
                    .execute(conn)
                    .await?;
                let target = dm_conversations::table
                    .filter(dm_conversations::server_id.eq(DbId(dm.server_id)))
                    .filter(dm_conversations::user_a.eq(DbId(a)))
                    .filter(dm_conversations::user_b.eq(DbId(b)));
                let id = target
                    .select(dm_conversations::id)
                    .first::<DbId>(conn)
                    .await?;
                let message = MessageRecord {
                    channel_id: id.0,
                    ..dm.message.clone()
                };
                insert_message!(conn, message)?;
                for attachment in &dm.attachments {
                    // Only the sender's own unlinked upload of this server, made for no
                    // channel or for this conversation, can be linked.
                    let n = diesel::update(
                        attachments::table
                            .filter(attachments::id.eq(DbId(*attachment)))
                            .filter(attachments::server_id.eq(DbId(dm.server_id)))
                            .filter(
                                attachments::channel_id
                                    .is_null()
                                    .or(attachments::channel_id.eq(id)),
                            )
                            .filter(attachments::uploader_id.eq(DbId(dm.sender)))
                            .filter(attachments::message_id.is_null()),
                    )
                    .set((
                        attachments::message_id.eq(DbId(message.id)),
                        attachments::channel_id.eq(id),
                    ))
                    .execute(conn)
                    .await?;
                    if n != 1 {
                        return Err(DieselError::RollbackTransaction);
                    }
                }
                diesel::update(dm_conversations::table.filter(dm_conversations::id.eq(id)))
                    .set(dm_conversations::last_message_at.eq(Some(at)))
                    .execute(conn)
                    .await?;
                let mut activity = dm.activity.clone();
                for item in &mut activity {
                    item.conversation_id = Some(id.0);
                    insert_activity!(conn, item)?;
                }
                let conversation: Conversation = dm_conversations::table
                    .filter(dm_conversations::id.eq(id))
                    .first::<ConversationRow>(conn)
                    .await?
                    .into();
                Ok(SentDm {
                    conversation,
                    message,
                    activity,
                })
            })
            .await
            .map(Ok)
            .or_else(|e| match e {
                DieselError::RollbackTransaction => Ok(Err(SendRefusal::Attachment)),
                e => Err(db_error(e)),
            })
        })
    }

    async fn conversations(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        limit: i64,
    ) -> CoreResult<Vec<ConversationSummary>> {
        db_run!(self.0, read, |conn| {
            let rows = dm_conversations::table
                .filter(dm_conversations::server_id.eq(DbId(server_id)))
                .filter(
                    dm_conversations::user_a
                        .eq(DbId(user_id))
                        .or(dm_conversations::user_b.eq(DbId(user_id))),
                )
                .order((
                    dm_conversations::last_message_at.desc(),
                    dm_conversations::id.desc(),
                ))
                .limit(limit)
                .load::<ConversationRow>(conn)
                .await
                .map_err(db_error)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let conversation: Conversation = row.into();
                let id = DbId(conversation.id);
                let peer = DbId(conversation.peer_of(user_id));
                let last_message = messages::table
                    .filter(messages::channel_id.eq(id))
                    .filter(messages::deleted.eq(false))
                    .order(messages::id.desc())
                    .first::<MessageRow>(conn)
                    .await
                    .optional()
                    .map_err(db_error)?
                    .map(MessageRecord::from);
                let read_marker = dm_read_states::table
                    .filter(dm_read_states::user_id.eq(DbId(user_id)))
                    .filter(dm_read_states::conversation_id.eq(id))
                    .select(dm_read_states::last_read_message_id)
                    .first::<Option<DbId>>(conn)
                    .await
                    .optional()
                    .map_err(db_error)?
                    .flatten();
                let mut unread = messages::table
                    .filter(messages::channel_id.eq(id))
                    .filter(messages::author_id.eq(peer))
                    .filter(messages::deleted.eq(false))
                    .into_boxed();
                if let Some(marker) = read_marker {
                    unread = unread.filter(messages::id.gt(marker));
                }
                let unread_count = unread
                    .count()
                    .get_result::<i64>(conn)
                    .await
                    .map_err(db_error)?;
                out.push(ConversationSummary {
                    conversation,
                    last_message,
                    unread_count,
                });
            }
            Ok(out)
        })
    }

    async fn message(
        &self,
        server_id: Uuid,
        id: Uuid,
    ) -> CoreResult<Option<(MessageRecord, Conversation)>> {
        db_run!(self.0, read, |conn| {
            let Some(message) = messages::table
                .filter(messages::server_id.eq(DbId(server_id)))
                .filter(messages::id.eq(DbId(id)))
                .first::<MessageRow>(conn)
                .await
                .optional()
                .map_err(db_error)?
                .map(MessageRecord::from)
            else {
                return Ok(None);
            };
            let conversation = dm_conversations::table
                .filter(dm_conversations::server_id.eq(DbId(server_id)))
                .filter(dm_conversations::id.eq(DbId(message.channel_id)))
                .first::<ConversationRow>(conn)
                .await
                .optional()
                .map_err(db_error)?;
            Ok(conversation.map(|c| (message, c.into())))
        })
    }

    async fn mark_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        last_read: Uuid,
        at: Timestamp,
    ) -> CoreResult<()> {
        db_run!(self.0, write, |conn| {
            diesel::insert_into(dm_read_states::table)
                .values((
                    dm_read_states::user_id.eq(DbId(user_id)),
                    dm_read_states::conversation_id.eq(DbId(conversation_id)),
                    dm_read_states::last_read_message_id.eq(Some(DbId(last_read))),
                    dm_read_states::updated_at.eq(at),
                ))
                .on_conflict((dm_read_states::user_id, dm_read_states::conversation_id))
                .do_update()
                .set((
                    dm_read_states::last_read_message_id.eq(Some(DbId(last_read))),
                    dm_read_states::updated_at.eq(at),
                ))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(db_error)
        })
    }
}
