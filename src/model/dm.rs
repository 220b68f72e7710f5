//! Direct messages between two members of one server (reference §2.4 `serverDms`). Their
//! messages are rows of `messages` whose `channel_id` is the conversation's id.

use super::time::{iso, iso_opt};
use super::{Attachment, MessageAuthor, MessageRecord, MessageView, ReactionGroup, Timestamp};
use serde::Serialize;
use uuid::Uuid;

/// A conversation of two members of a server, stored with `user_a < user_b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: Uuid,
    pub server_id: Uuid,
    pub user_a: Uuid,
    pub user_b: Uuid,
    pub last_message_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Conversation {
    /// The canonical order of a pair: the smaller by string comparison of the UUID text first.
    pub fn pair(x: Uuid, y: Uuid) -> (Uuid, Uuid) {
        if x.hyphenated().to_string() <= y.hyphenated().to_string() {
            (x, y)
        } else {
            (y, x)
        }
    }

    /// Whether `user` takes part in the conversation.
    pub fn has(&self, user: Uuid) -> bool {
        self.user_a == user || self.user_b == user
    }

    /// The other participant, seen from `user`.
    pub fn peer_of(&self, user: Uuid) -> Uuid {
        if self.user_a == user {
            self.user_b
        } else {
            self.user_a
        }
    }
}

/// A conversation of `serverDms.list` as the store reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    /// The newest non-deleted message.
    pub last_message: Option<MessageRecord>,
    /// Non-deleted messages of the peer after the viewer's read marker.
    pub unread_count: i64,
}

/// The protocol's ServerDmMessage.
#[derive(Debug, Clone, Serialize)]
pub struct ServerDmMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub author: MessageAuthor,
    pub content: Option<String>,
    pub reply_to: Option<Uuid>,
    pub attachments: Vec<Attachment>,
    pub reactions: Vec<ReactionGroup>,
    #[serde(serialize_with = "iso_opt")]
    pub edited_at: Option<Timestamp>,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
}

impl From<MessageView> for ServerDmMessage {
    fn from(m: MessageView) -> Self {
        ServerDmMessage {
            id: m.id,
            conversation_id: m.channel_id,
            author: m.author,
            content: m.content,
            reply_to: m.reply_to,
            attachments: m.attachments,
            reactions: m.reactions,
            edited_at: m.edited_at,
            created_at: m.created_at,
        }
    }
}

/// The other participant of a conversation in `serverDms.list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmPeer {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub nickname: Option<String>,
}

impl From<MessageAuthor> for DmPeer {
    fn from(a: MessageAuthor) -> Self {
        DmPeer {
            user_id: a.id,
            username: a.username,
            display_name: a.display_name,
            avatar_url: a.avatar_url,
            nickname: a.nickname,
        }
    }
}

/// One conversation of `serverDms.list`.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: Uuid,
    pub peer: DmPeer,
    /// Without attachments and reactions (empty lists).
    pub last_message: Option<ServerDmMessage>,
    pub unread_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_ordered_by_their_text() {
        let x: Uuid = "0190a000-0000-7000-8000-00000000000f"
            .parse()
            .expect("uuid");
        let y: Uuid = "0190a000-0000-7000-8000-0000000000a0"
            .parse()
            .expect("uuid");
        assert_eq!(Conversation::pair(x, y), (x, y));
        assert_eq!(Conversation::pair(y, x), (x, y));
        let c = Conversation {
            id: Uuid::now_v7(),
            server_id: Uuid::now_v7(),
            user_a: x,
            user_b: y,
            last_message_at: None,
            created_at: chrono::Utc::now(),
        };
        assert!(c.has(x) && c.has(y) && !c.has(Uuid::now_v7()));
        assert_eq!((c.peer_of(x), c.peer_of(y)), (y, x));
    }
}
