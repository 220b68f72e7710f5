//! Server DM conversations: the send pipeline's single write, listings and read markers.

use super::SendRefusal;
use crate::model::{ActivityRecord, Conversation, ConversationSummary, MessageRecord, Timestamp};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// Everything one `serverDms.send` writes.
#[derive(Debug, Clone)]
pub struct NewDm {
    pub server_id: Uuid,
    pub sender: Uuid,
    pub recipient: Uuid,
    /// The id a new conversation gets when the pair has none yet.
    pub conversation_id: Uuid,
    /// The message; the store sets its `channel_id` to the conversation's id.
    pub message: MessageRecord,
    /// Upload ids to link to the message.
    pub attachments: Vec<Uuid>,
    /// Activity items; the store sets each one's `conversation_id` to the conversation's id.
    pub activity: Vec<ActivityRecord>,
}

/// What a successful DM send wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SentDm {
    pub conversation: Conversation,
    pub message: MessageRecord,
    pub activity: Vec<ActivityRecord>,
}

/// Conversations of two members of a server, and their read markers.
#[async_trait]
pub trait DmStore: Send + Sync {
    /// The conversation `id` if it belongs to `server_id`.
    async fn conversation(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Conversation>>;
    /// The conversation of `x` and `y` (in either order) in the server.
    async fn find(&self, server_id: Uuid, x: Uuid, y: Uuid) -> CoreResult<Option<Conversation>>;
    /// One transaction: gets or creates the canonical pair's conversation (when a concurrent
    /// send created it first, that row is used), inserts the message into it, links the
    /// attachments (each must be an unlinked upload of the sender in this server whose channel
    /// is unset or this conversation; otherwise nothing is written and
    /// `Err(SendRefusal::Attachment)` is returned), sets `last_message_at` to the message's
    /// `created_at`, and inserts the activity items.
    async fn send(&self, dm: NewDm) -> CoreResult<Result<SentDm, SendRefusal>>;
    /// The user's conversations in the server, most recent `last_message_at` first (then id
    /// descending), at most `limit`, each with its newest non-deleted message and the number of
    /// non-deleted messages of the peer after the user's read marker.
    async fn conversations(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        limit: i64,
    ) -> CoreResult<Vec<ConversationSummary>>;
    /// The message `id` with its conversation, when it is a message of a conversation of
    /// `server_id` (deleted ones included).
    async fn message(
        &self,
        server_id: Uuid,
        id: Uuid,
    ) -> CoreResult<Option<(MessageRecord, Conversation)>>;
    /// Sets the user's read marker of the conversation.
    async fn mark_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        last_read: Uuid,
        at: Timestamp,
    ) -> CoreResult<()>;
}
