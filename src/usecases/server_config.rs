//! The `serverConfig` router: get, update, completeSetup.

use super::base::access::Perms;
use super::base::central;
use super::base::identity::Caller;
use super::base::publish::{entry, publish, success};
use crate::model::{ConfigPatch, Server, ServerConfig, ServerView};
use crate::permissions::bits;
use crate::ports::Scope;
use crate::{CoreError, CoreResult, EctoCode, Services};
use serde::Serialize;
use serde_json::json;

/// The version `serverConfig.get` reports.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `serverConfig.get` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    pub max_upload_size_bytes: i64,
    pub max_shared_storage_bytes: i64,
    pub allow_local_accounts: bool,
    pub require_invite: bool,
    pub allow_member_dms: bool,
    pub show_system_messages: bool,
    pub discoverable: bool,
    pub discovery_approved: bool,
    pub tags: Vec<String>,
    pub version: &'static str,
    /// A discovery registration (or withdrawal) waits to reach ecto-central (it is down, or
    /// slow): `discovery_approved` is the last answer central gave. Not in the reference.
    pub discovery_pending: bool,
}

impl From<ServerConfig> for ConfigView {
    fn from(c: ServerConfig) -> Self {
        Self {
            discovery_pending: false,
            max_upload_size_bytes: c.max_upload_size_bytes,
            max_shared_storage_bytes: c.max_shared_storage_bytes,
            allow_local_accounts: c.allow_local_accounts,
            require_invite: c.require_invite,
            allow_member_dms: c.allow_member_dms,
            show_system_messages: c.show_system_messages,
            discoverable: c.discoverable,
            discovery_approved: c.discovery_approved,
            tags: c.tags,
            version: SERVER_VERSION,
        }
    }
}

/// A tag as it is stored: trimmed and lower-cased.
pub fn normalize_tag(tag: &str) -> String {
    tag.trim().to_lowercase()
}

async fn manager(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<()> {
    Perms::load(svc, server, caller)
        .await?
        .require(bits::MANAGE_SERVER, "MANAGE_SERVER")
}

/// `serverConfig.get` (MANAGE_SERVER).
pub async fn get(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<ConfigView> {
    manager(svc, server, caller).await?;
    let mut view = ConfigView::from(svc.servers.config(server.id).await?);
    view.discovery_pending = central::pending(svc, server.id, central::DISCOVERY).await?;
    Ok(view)
}

/// Writes `patch` with its audit entry and tells the server's sessions (the Server object with
/// its config keys, as the reference sends it for configuration changes).
async fn apply(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    patch: ConfigPatch,
    details: serde_json::Value,
) -> CoreResult<()> {
    // Discovery is registered again whenever what it shows of the configuration changes, and
    // withdrawn when the server stops being discoverable (if central had it).
    let touched = patch.discoverable.is_some() || patch.tags.is_some();
    let before = svc.servers.config(server.id).await?;
    let had_it = before.discoverable || before.discovery_approved;
    let sync = |after: &ServerConfig| {
        (touched && (after.discoverable || had_it))
            .then(|| central::discovery(svc, server, after))
            .flatten()
    };
    let audit = entry(
        svc,
        server.id,
        caller,
        "server.update",
        Some(("server", server.id)),
        Some(details),
    );
    let config = svc
        .servers
        .update_config(server.id, patch, audit, Some(&sync))
        .await?;
    let view = ServerView::new(server, &config, svc.settings.hosting_mode, true);
    publish(svc, server.id, Scope::Server, "server.update", &view).await;
    if sync(&config).is_some() {
        // The request answers once central has (its approval is then in `serverConfig.get`
        // and in a second `server.update`), or, when central is down, at once with the call
        // still queued (`discovery_pending`).
        central::settle(svc, server.id, central::DISCOVERY).await?;
    }
    Ok(())
}

/// `serverConfig.update` (MANAGE_SERVER). `discoverable` is stored as given;
/// `discovery_approved` changes only by ecto-central's word: its answer to the discovery
/// registration this queues, or its push (see [`super::central`]).
pub async fn update(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    mut patch: ConfigPatch,
) -> CoreResult<serde_json::Value> {
    manager(svc, server, caller).await?;
    // completeSetup is the only way to set setup_completed.
    patch.setup_completed = None;
    if let Some(tags) = &mut patch.tags {
        *tags = tags.iter().map(|t| normalize_tag(t)).collect();
    }
    let details = json!({ "config": patch });
    apply(svc, server, caller, patch, details).await?;
    Ok(success())
}

/// `serverConfig.completeSetup`: the owner only (FORBIDDEN 1006, as the reference answers).
pub async fn complete_setup(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    if server.admin_user_id != Some(caller.user_id) {
        return Err(CoreError::forbidden(
            EctoCode::LocalAccountsDisabled,
            "Only the owner can complete the setup",
        ));
    }
    let patch = ConfigPatch {
        setup_completed: Some(true),
        ..ConfigPatch::default()
    };
    apply(
        svc,
        server,
        caller,
        patch,
        json!({ "setup_completed": true }),
    )
    .await?;
    Ok(success())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_trimmed_and_lower_cased() {
        assert_eq!(super::normalize_tag("  Rust Lang "), "rust lang");
    }
}
