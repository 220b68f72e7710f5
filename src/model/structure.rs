//! A server's structure: channels, categories, roles and permission overrides.

use super::time::iso;
use super::Timestamp;
use crate::permissions::{Override, TargetType};
use serde::Serialize;
use uuid::Uuid;

/// The four kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Text,
    Voice,
    Page,
    News,
}

impl ChannelType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Voice => "voice",
            Self::Page => "page",
            Self::News => "news",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "voice" => Some(Self::Voice),
            "page" => Some(Self::Page),
            "news" => Some(Self::News),
            _ => None,
        }
    }
}

/// A channel, as the protocol sends it; `my_permissions` is filled per caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    pub id: Uuid,
    pub server_id: Uuid,
    pub category_id: Option<Uuid>,
    pub name: String,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    pub topic: Option<String>,
    pub position: i32,
    pub slowmode_seconds: i32,
    pub nsfw: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_permissions: Option<u64>,
}

/// A category, as the protocol sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    pub id: Uuid,
    pub server_id: Uuid,
    pub name: String,
    pub position: i32,
}

/// A role, as the protocol sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    pub id: Uuid,
    pub server_id: Uuid,
    pub name: String,
    pub color: Option<String>,
    pub permissions: u64,
    pub position: i32,
    pub is_default: bool,
}

/// A stored override on a channel or category (`container_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOverride {
    pub id: Uuid,
    pub container_id: Uuid,
    pub rule: Override,
}

/// The protocol's override object; the container key is `channel_id` or `category_id`.
#[derive(Debug, Clone, Serialize)]
pub struct OverrideView {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_id: Option<Uuid>,
    pub target_type: &'static str,
    pub target_id: Uuid,
    pub allow: u64,
    pub deny: u64,
}

impl OverrideView {
    pub fn for_channel(o: &StoredOverride) -> Self {
        Self::new(o, Some(o.container_id), None)
    }
    pub fn for_category(o: &StoredOverride) -> Self {
        Self::new(o, None, Some(o.container_id))
    }
    fn new(o: &StoredOverride, channel_id: Option<Uuid>, category_id: Option<Uuid>) -> Self {
        Self {
            id: o.id,
            channel_id,
            category_id,
            target_type: o.rule.target_type.as_str(),
            target_id: o.rule.target_id,
            allow: o.rule.allow,
            deny: o.rule.deny,
        }
    }
}

/// Everything the permission engine needs about one server: roles and every override.
#[derive(Debug, Clone, Default)]
pub struct PermissionData {
    pub roles: Vec<Role>,
    pub overrides: Vec<StoredOverride>,
}

impl PermissionData {
    /// The overrides of one channel or category.
    pub fn overrides_of(&self, container: Uuid) -> Vec<Override> {
        self.overrides
            .iter()
            .filter(|o| o.container_id == container)
            .map(|o| o.rule)
            .collect()
    }

    /// The @everyone role.
    pub fn everyone(&self) -> Option<&Role> {
        self.roles.iter().find(|r| r.is_default)
    }
}

/// An audit log entry to write with the change it records.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub id: Uuid,
    pub server_id: Uuid,
    pub actor_id: Uuid,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<Uuid>,
    pub details: Option<serde_json::Value>,
    pub created_at: Timestamp,
}

/// An audit log entry as `auditlog.list` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub server_id: Uuid,
    pub actor_id: Uuid,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub details: Option<serde_json::Value>,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    pub actor_name: String,
}

/// Shorthand used by tests and stores.
pub fn role_override(target_id: Uuid, allow: u64, deny: u64) -> Override {
    Override {
        target_type: TargetType::Role,
        target_id,
        allow,
        deny,
    }
}

/// A ban as `bans.list` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct BanView {
    pub id: Uuid,
    pub server_id: Uuid,
    pub user_id: Uuid,
    pub banned_by: Uuid,
    pub reason: Option<String>,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    pub username: String,
    pub banned_by_name: String,
}

/// The protocol's Webhook (tokens are shown to those who manage webhooks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub name: String,
    pub avatar_url: Option<String>,
    pub token: String,
    pub created_by: Uuid,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
}
