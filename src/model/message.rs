//! Messages and what hangs off them: attachments, reactions, edits, read states.

use super::time::{iso, iso_opt};
use super::Timestamp;
use serde::Serialize;
use uuid::Uuid;

/// DECISIONS §2 message types.
pub mod kind {
    pub const DEFAULT: i16 = 0;
    pub const MEMBER_JOIN: i16 = 1;
    pub const MEMBER_LEAVE: i16 = 2;
    pub const PIN_ADDED: i16 = 3;
    pub const CHANNEL_NAME_CHANGE: i16 = 4;
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub id: Uuid,
    pub server_id: Uuid,
    pub channel_id: Uuid,
    pub author_id: Uuid,
    pub content: Option<String>,
    pub kind: i16,
    pub reply_to: Option<Uuid>,
    pub pinned: bool,
    pub deleted: bool,
    pub mention_everyone: bool,
    pub mention_roles: Vec<Uuid>,
    pub mention_users: Vec<Uuid>,
    pub webhook_id: Option<Uuid>,
    pub webhook_name: Option<String>,
    pub webhook_avatar_url: Option<String>,
    pub edited_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// The protocol's MessageAuthor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageAuthor {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub nickname: Option<String>,
}

/// The protocol's Attachment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    pub id: Uuid,
    #[serde(skip)]
    pub message_id: Option<Uuid>,
    pub filename: String,
    pub url: String,
    pub content_type: String,
    pub size_bytes: i32,
}

/// The protocol's ReactionGroup, relative to one viewer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReactionGroup {
    pub emoji: String,
    pub count: usize,
    pub users: Vec<Uuid>,
    pub me: bool,
}

/// A stored reaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub message_id: Uuid,
    pub user_id: Uuid,
    pub emoji: String,
}

/// The protocol's Message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub author: MessageAuthor,
    pub content: Option<String>,
    #[serde(rename = "type")]
    pub kind: i16,
    pub reply_to: Option<Uuid>,
    pub pinned: bool,
    pub mention_everyone: bool,
    pub mention_roles: Vec<Uuid>,
    pub mentions: Vec<Uuid>,
    #[serde(serialize_with = "iso_opt")]
    pub edited_at: Option<Timestamp>,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    pub attachments: Vec<Attachment>,
    pub reactions: Vec<ReactionGroup>,
    pub webhook_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// One earlier version of an edited message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageEdit {
    pub content: String,
    #[serde(serialize_with = "iso")]
    pub edited_at: Timestamp,
}

/// The protocol's ReadState.
#[derive(Debug, Clone, Serialize)]
pub struct ReadState {
    pub user_id: Uuid,
    pub channel_id: Uuid,
    pub last_read_message_id: Option<Uuid>,
    pub mention_count: i32,
}

/// Groups `reactions` (of one message) by emoji in first-seen order, relative to `viewer`.
pub fn group_reactions(reactions: &[Reaction], viewer: Uuid) -> Vec<ReactionGroup> {
    let mut groups: Vec<ReactionGroup> = Vec::new();
    for r in reactions {
        match groups.iter_mut().find(|g| g.emoji == r.emoji) {
            Some(g) => {
                g.users.push(r.user_id);
                g.count += 1;
                g.me |= r.user_id == viewer;
            }
            None => groups.push(ReactionGroup {
                emoji: r.emoji.clone(),
                count: 1,
                users: vec![r.user_id],
                me: r.user_id == viewer,
            }),
        }
    }
    groups
}

/// Mentions found in a message's text (reference §7.3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mentions {
    pub users: Vec<Uuid>,
    pub roles: Vec<Uuid>,
    pub channels: Vec<Uuid>,
    /// `@everyone` or `@here`.
    pub everyone: bool,
}

/// Parses `<@id>`, `<@&id>`, `<#id>`, `@everyone` and `@here`; ids are de-duplicated in order.
pub fn parse_mentions(text: &str) -> Mentions {
    let mut m = Mentions {
        everyone: text.contains("@everyone") || text.contains("@here"),
        ..Mentions::default()
    };
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('>') else { break };
        let token = &rest[..end];
        let (list, id) = if let Some(id) = token.strip_prefix("@&") {
            (&mut m.roles, id)
        } else if let Some(id) = token.strip_prefix('@') {
            (&mut m.users, id)
        } else if let Some(id) = token.strip_prefix('#') {
            (&mut m.channels, id)
        } else {
            continue;
        };
        if let Ok(id) = Uuid::parse_str(id) {
            if !list.contains(&id) {
                list.push(id);
            }
            rest = &rest[end + 1..];
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_parsed_and_deduplicated() {
        let (u, r, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let text = format!("hi <@{u}> and <@&{r}> in <#{c}>, again <@{u}> <@not-a-uuid> <b>");
        let m = parse_mentions(&text);
        assert_eq!(m.users, vec![u]);
        assert_eq!(m.roles, vec![r]);
        assert_eq!(m.channels, vec![c]);
        assert!(!m.everyone);
        assert!(parse_mentions("hey @everyone").everyone);
        assert!(parse_mentions("hey @here").everyone);
        assert_eq!(
            parse_mentions("no <mentions> here <@").users,
            Vec::<Uuid>::new()
        );
    }

    #[test]
    fn reactions_group_by_emoji_relative_to_the_viewer() {
        let (a, b, m) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let r = |u, e: &str| Reaction {
            message_id: m,
            user_id: u,
            emoji: e.into(),
        };
        let groups = group_reactions(&[r(a, "👍"), r(b, "👍"), r(b, "🎉")], a);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].count, groups[0].me), (2, true));
        assert_eq!((groups[1].count, groups[1].me), (1, false));
    }
}
