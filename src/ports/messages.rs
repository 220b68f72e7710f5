//! Messages of channels: pages, the send pipeline's single write, edits, deletes, pins,
//! reactions, authors and read states.

use crate::model::{
    ActivityRecord, Attachment, MessageAuthor, MessageEdit, MessageRecord, NewAudit, Reaction,
    ReadState, Timestamp,
};
use crate::CoreResult;
use async_trait::async_trait;
use std::collections::HashMap;
use uuid::Uuid;

/// Where a page of messages starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest messages.
    Latest,
    /// Messages older than this id.
    Before(Uuid),
    /// Messages right after this id (DECISIONS §3.15).
    After(Uuid),
}

/// Why a send could not link its attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// An attachment id is not an unlinked upload of the sender in this channel.
    Attachment,
}

/// Messages and their satellites.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Up to `limit` non-deleted messages of the channel from `cursor`, in ascending id order.
    async fn page(
        &self,
        channel_id: Uuid,
        cursor: Cursor,
        limit: i64,
        pinned_only: bool,
    ) -> CoreResult<Vec<MessageRecord>>;
    /// The message `id` if it is in a channel of `server_id` (deleted ones included).
    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<MessageRecord>>;
    /// When `author_id` last posted (non-deleted) in the channel, if at or after `since`.
    async fn last_post(
        &self,
        channel_id: Uuid,
        author_id: Uuid,
        since: Timestamp,
    ) -> CoreResult<Option<Timestamp>>;
    /// Inserts `message`, links `attachments` (each must be an unlinked upload of the author
    /// in the message's channel, else nothing is written and `Err(SendRefusal)` is returned),
    /// and adds one to the read-state mention count of each of `mentioned` — one transaction.
    async fn insert(
        &self,
        message: MessageRecord,
        attachments: Vec<Uuid>,
        mentioned: Vec<Uuid>,
    ) -> CoreResult<Result<(), SendRefusal>> {
        self.insert_with_activity(message, attachments, mentioned, Vec::new())
            .await
    }
    /// [`MessageStore::insert`], also inserting the `activity` items the message causes, in
    /// the same transaction.
    async fn insert_with_activity(
        &self,
        message: MessageRecord,
        attachments: Vec<Uuid>,
        mentioned: Vec<Uuid>,
        activity: Vec<ActivityRecord>,
    ) -> CoreResult<Result<(), SendRefusal>>;
    /// Replaces the content, keeping the previous one in the edit history; `false` when the
    /// message is not in the server or deleted.
    async fn edit(
        &self,
        server_id: Uuid,
        id: Uuid,
        content: &str,
        at: Timestamp,
    ) -> CoreResult<bool>;
    /// Soft-deletes; writes `audit` in the same transaction when given. `false` when absent.
    async fn delete(&self, server_id: Uuid, id: Uuid, audit: Option<NewAudit>) -> CoreResult<bool>;
    /// Sets `pinned`, inserting `system` (a PIN_ADDED message) and `audit` in the same
    /// transaction. `false` when absent.
    async fn set_pinned(
        &self,
        server_id: Uuid,
        id: Uuid,
        pinned: bool,
        system: Option<MessageRecord>,
        audit: NewAudit,
    ) -> CoreResult<bool>;
    /// Adds (idempotently) or removes a reaction; `true` when a row was added or removed.
    /// `activity` is inserted in the same transaction, only when an add inserted a row.
    async fn react(
        &self,
        message_id: Uuid,
        user_id: Uuid,
        emoji: &str,
        add: bool,
        at: Timestamp,
        activity: Option<ActivityRecord>,
    ) -> CoreResult<bool>;
    /// Reactions of these messages, oldest first.
    async fn reactions(&self, message_ids: &[Uuid]) -> CoreResult<Vec<Reaction>>;
    /// Attachments linked to these messages.
    async fn attachments(&self, message_ids: &[Uuid]) -> CoreResult<Vec<Attachment>>;
    /// Earlier versions of a message, oldest first.
    async fn edits(&self, message_id: Uuid) -> CoreResult<Vec<MessageEdit>>;
    /// Display data of these users on the server (nickname when a member).
    async fn authors(
        &self,
        server_id: Uuid,
        user_ids: &[Uuid],
    ) -> CoreResult<HashMap<Uuid, MessageAuthor>>;

    /// Sets the user's read marker of a channel and clears its mention count.
    async fn mark_read(
        &self,
        user_id: Uuid,
        channel_id: Uuid,
        last_read: Uuid,
        at: Timestamp,
    ) -> CoreResult<()>;
    /// Sets every channel of the server with messages to its newest message (DECISIONS §3.24).
    async fn mark_all_read(&self, server_id: Uuid, user_id: Uuid, at: Timestamp) -> CoreResult<()>;
    /// The user's read states for the server's channels.
    async fn read_states(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Vec<ReadState>>;
}
