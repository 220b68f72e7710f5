//! The per-user activity feed (reference §2.4 `activity`, §2.5 ActivityItem): mentions,
//! replies, reactions and server DMs, each kept within the server it happened in.

use super::time::iso;
use super::{MessageAuthor, Timestamp};
use serde::Serialize;
use uuid::Uuid;

/// How long an activity item's preview of the message text may be, in characters.
pub const PREVIEW_CHARS: usize = 100;

/// What an activity item reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    Mention,
    Reaction,
    Reply,
    ServerDm,
}

impl ActivityType {
    /// The protocol's (and the database's) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mention => "mention",
            Self::Reaction => "reaction",
            Self::Reply => "reply",
            Self::ServerDm => "server_dm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mention" => Some(Self::Mention),
            "reaction" => Some(Self::Reaction),
            "reply" => Some(Self::Reply),
            "server_dm" => Some(Self::ServerDm),
            _ => None,
        }
    }
}

/// A stored activity item: a row of `activity_items`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    pub id: Uuid,
    /// The recipient.
    pub user_id: Uuid,
    pub server_id: Uuid,
    pub kind: ActivityType,
    pub actor_id: Uuid,
    pub message_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub content_preview: Option<String>,
    pub emoji: Option<String>,
    pub read: bool,
    pub created_at: Timestamp,
}

/// The first [`PREVIEW_CHARS`] characters of a message's text (`""` for none).
pub fn preview(content: Option<&str>) -> String {
    content.unwrap_or("").chars().take(PREVIEW_CHARS).collect()
}

/// Where an activity item happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivitySource {
    pub server_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
}

/// The protocol's ActivityItem; absent optional keys are left out of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityItem {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: ActivityType,
    pub actor: MessageAuthor,
    pub content_preview: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    pub source: ActivitySource,
    pub read: bool,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_previews_are_cut_by_characters() {
        for t in [
            ActivityType::Mention,
            ActivityType::Reaction,
            ActivityType::Reply,
            ActivityType::ServerDm,
        ] {
            assert_eq!(ActivityType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).expect("json"),
                serde_json::json!(t.as_str())
            );
        }
        assert_eq!(ActivityType::parse("other"), None);
        assert_eq!(preview(None), "");
        assert_eq!(preview(Some(&"é".repeat(150))).chars().count(), 100);
    }

    #[test]
    fn absent_optional_keys_are_omitted() {
        let item = ActivityItem {
            id: Uuid::now_v7(),
            kind: ActivityType::ServerDm,
            actor: MessageAuthor {
                id: Uuid::now_v7(),
                username: "a".into(),
                display_name: None,
                avatar_url: None,
                nickname: None,
            },
            content_preview: String::new(),
            emoji: None,
            message_id: None,
            source: ActivitySource {
                server_id: Uuid::now_v7(),
                server_name: Some("S".into()),
                channel_id: None,
                channel_name: None,
                conversation_id: Some(Uuid::now_v7()),
            },
            read: false,
            created_at: chrono::Utc::now(),
        };
        let json = serde_json::to_value(&item).expect("json");
        assert!(json.get("emoji").is_none() && json.get("message_id").is_none());
        assert!(json["source"].get("channel_id").is_none());
        assert_eq!(json["type"], "server_dm");
        assert!(json["source"]["conversation_id"].is_string());
    }
}
