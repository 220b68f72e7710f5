//! Community servers and their configuration.

use super::Timestamp;
use crate::HostingMode;
use serde::Serialize;
use uuid::Uuid;

/// A row of `servers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub icon_url: Option<String>,
    pub banner_url: Option<String>,
    pub address: Option<String>,
    pub admin_user_id: Option<Uuid>,
    pub admin_identity_type: String,
    pub central_connected: bool,
    pub default_channel_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What provisioning needs to create a server.
#[derive(Debug, Clone)]
pub struct NewServer {
    pub id: Uuid,
    pub name: String,
    pub address: Option<String>,
    /// Bits of the @everyone role created with it.
    pub everyone_permissions: u64,
    pub everyone_role_id: Uuid,
    pub now: Timestamp,
}

/// A row of `server_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub server_id: Uuid,
    pub setup_completed: bool,
    pub allow_local_accounts: bool,
    pub require_invite: bool,
    pub allow_member_dms: bool,
    pub show_system_messages: bool,
    pub max_upload_size_bytes: i64,
    pub max_shared_storage_bytes: i64,
    pub discoverable: bool,
    pub discovery_approved: bool,
    pub tags: Vec<String>,
}

/// The protocol's Server object. Its shape depends only on whether the caller may manage the
/// server (DECISIONS §3.2): `discoverable`/`discovery_approved` are present only then.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub icon_url: Option<String>,
    pub banner_url: Option<String>,
    pub address: String,
    pub central_connected: bool,
    pub setup_completed: bool,
    pub admin_user_id: Option<Uuid>,
    pub default_channel_id: Option<Uuid>,
    pub allow_member_dms: bool,
    pub hosting_mode: &'static str,
    pub file_browser_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_approved: Option<bool>,
}

impl ServerView {
    /// Formats `server` with its real configuration; `manager` adds the config-only keys.
    pub fn new(server: &Server, config: &ServerConfig, mode: HostingMode, manager: bool) -> Self {
        Self {
            id: server.id,
            name: server.name.clone(),
            description: server.description.clone(),
            icon_url: server.icon_url.clone(),
            banner_url: server.banner_url.clone(),
            address: server.address.clone().unwrap_or_default(),
            central_connected: server.central_connected,
            setup_completed: config.setup_completed,
            admin_user_id: server.admin_user_id,
            default_channel_id: server.default_channel_id,
            allow_member_dms: config.allow_member_dms,
            hosting_mode: mode.as_str(),
            file_browser_enabled: config.max_shared_storage_bytes > 0,
            discoverable: manager.then_some(config.discoverable),
            discovery_approved: manager.then_some(config.discovery_approved),
        }
    }
}

/// Changes to a server row; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner_url: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_channel_id: Option<Option<Uuid>>,
}

/// Changes to a server's configuration row; `None` leaves a setting as it is. Serializes to
/// the keys that are set (the audit entry's `config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upload_size_bytes: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_shared_storage_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_local_accounts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_invite: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_member_dms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_system_messages: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_completed: Option<bool>,
}
