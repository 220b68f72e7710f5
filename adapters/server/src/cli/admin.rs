//! `ecto-server admin …`: the operator's commands on the configured database, in either
//! profile, without the HTTP listener or the voice SFU.
//!
//! The changes go through the same store methods as the protocol's procedures and publish the
//! same events. With Redis configured (always in managed mode) the events reach the running
//! instances, which drop what they remember of the server and close the sessions at once.
//! Self-hosted without Redis the running server does not hear them: it keeps the memberships
//! it has read in memory, so restart it after `reset-password`, `revoke-sessions` or
//! `transfer-ownership` (or stop it before) for them to take effect on sessions already open.

use super::{CliError, CliResult};
use crate::config::AppConfig;
use ecto_core::model::{IdentityType, MemberView, NewAudit, Server};
use ecto_core::ports::Scope;
use ecto_core::services::Tenancy;
use ecto_core::usecases::base::publish::{self, close};
use ecto_core::{HostingMode, Services};
use rand::RngCore;
use serde_json::json;
use uuid::Uuid;

/// The services of the configuration, for one command: no voice plane, no listener. Opening
/// them applies pending migrations, as `serve` does. Without Redis the events a command
/// publishes are also left in the database, where a running server takes them within a second.
pub async fn open(config: &AppConfig) -> CliResult<Services> {
    let mut config = config.clone();
    config.voice_enabled = false;
    config.mediasoup_min_port = 0;
    let (mut svc, db) = crate::compose::build(&config).await?;
    if config.redis_url.is_none() {
        // No bus the running server hears: the events go through the database.
        svc.events = std::sync::Arc::new(crate::command_events::RelayingBus {
            inner: svc.events,
            db,
        });
    }
    Ok(svc)
}

/// A community server as `list-servers` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerRow {
    pub id: Uuid,
    pub name: String,
    pub address: Option<String>,
    pub owner: Option<Uuid>,
    pub members: i64,
    pub created_at: String,
}

/// Every community server of the database, oldest first.
pub async fn list_servers(svc: &Services, db: &ecto_sql::Db) -> CliResult<Vec<ServerRow>> {
    let mut rows = Vec::new();
    for id in db.server_ids().await? {
        let Some(server) = svc.servers.get(id).await? else {
            continue;
        };
        rows.push(ServerRow {
            id: server.id,
            members: svc.servers.member_count(server.id).await?,
            name: server.name,
            address: server.address,
            owner: server.admin_user_id,
            created_at: server.created_at.to_rfc3339(),
        });
    }
    Ok(rows)
}

/// The server `given` names (an id or an address); without one, the self-hosted profile's
/// server. Managed, a server must be named.
pub async fn server(svc: &Services, given: Option<&str>) -> CliResult<Server> {
    let found = match (given, &svc.tenancy) {
        (Some(text), _) => match Uuid::parse_str(text) {
            Ok(id) => svc.servers.get(id).await?,
            Err(_) => svc.servers.find_by_address(text).await?,
        },
        (None, Tenancy::Single(id)) => svc.servers.get(*id).await?,
        (None, Tenancy::Multi) => {
            return Err(CliError::new(
                "name the community server with --server <id|address> (see `ecto-server admin \
                 list-servers`)",
            ))
        }
    };
    found.ok_or_else(|| {
        CliError::new(format!(
            "no community server {} (see `ecto-server admin list-servers`)",
            given.unwrap_or("")
        ))
    })
}

/// Every member of `server`, newest first, with usernames and roles.
pub async fn list_members(svc: &Services, server: &Server) -> CliResult<Vec<MemberView>> {
    let mut views = Vec::new();
    let mut after = None;
    loop {
        let page = svc.moderation.list_members(server.id, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        views.extend(svc.moderation.member_views(server.id, &page).await?);
        if page.len() < 500 {
            break;
        }
    }
    Ok(views)
}

/// The user id of the member `who` names in `server`: a user id, a member id, or a username
/// (case-insensitive).
pub async fn member(svc: &Services, server: &Server, who: &str) -> CliResult<Uuid> {
    let not_found = || {
        CliError::new(format!(
            "no member '{who}' in server {} (see `ecto-server admin list-members`)",
            server.id
        ))
    };
    if let Ok(id) = Uuid::parse_str(who) {
        if svc.members.get(server.id, id).await?.is_some() {
            return Ok(id);
        }
        // A member id rather than a user id.
        let views = list_members(svc, server).await?;
        return views
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.user_id)
            .ok_or_else(not_found);
    }
    svc.moderation
        .member_with_username(server.id, &who.to_lowercase())
        .await?
        .ok_or_else(not_found)
}

/// A new random password: 24 characters from an alphabet without look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Sets the password of the local account `username` of `server` and ends every session of
/// it (the token version goes up with the new hash, in one transaction).
pub async fn reset_password(
    svc: &Services,
    server: &Server,
    username: &str,
    password: &str,
) -> CliResult<Uuid> {
    if !(8..=128).contains(&password.chars().count()) {
        return Err(CliError::new(
            "the new password must be 8 to 128 characters long",
        ));
    }
    ecto_core::passwords::check_not_common(password).map_err(|e| CliError::new(e.message))?;
    let user = svc
        .accounts
        .find_local_user(server.id, username)
        .await?
        .ok_or_else(|| {
            CliError::new(format!(
                "no local account '{username}' in server {} (only local accounts have a \
                 password; central accounts reset theirs at ecto-central)",
                server.id
            ))
        })?;
    let member = svc.members.get(server.id, user.id).await?;
    if member.is_none_or(|m| m.identity_type != IdentityType::Local) {
        return Err(CliError::new(format!(
            "'{username}' is not a member of server {} any more",
            server.id
        )));
    }
    let hash = svc.hasher.hash(password).await?;
    svc.members
        .bump_token_version(server.id, user.id, Some(&hash))
        .await?
        .ok_or_else(|| CliError::new(format!("'{username}' left server {}", server.id)))?;
    end_sessions(svc, server.id, user.id).await;
    Ok(user.id)
}

/// Ends every session of the member `user_id`: access and refresh tokens stop working.
pub async fn revoke_sessions(svc: &Services, server: &Server, user_id: Uuid) -> CliResult<i32> {
    let version = svc
        .members
        .bump_token_version(server.id, user_id, None)
        .await?
        .ok_or_else(|| {
            CliError::new(format!("{user_id} is not a member of server {}", server.id))
        })?;
    end_sessions(svc, server.id, user_id).await;
    Ok(version)
}

/// Closes the user's sockets on every instance that hears the event bus.
async fn end_sessions(svc: &Services, server_id: Uuid, user_id: Uuid) {
    publish::close_sessions(
        svc,
        server_id,
        Some(user_id),
        close::SESSION_EXPIRED,
        "Session expired",
    )
    .await;
}

/// Makes the member `new_owner` (a user id) the owner of `server`, for when the owner is gone.
/// The audit entry's actor is the new owner (nobody signed in made the change), with
/// `details.by = "ecto-server admin"` and the previous owner.
pub async fn transfer_ownership(
    svc: &Services,
    server: &Server,
    new_owner: Uuid,
) -> CliResult<Server> {
    let audit = NewAudit {
        id: ecto_core::new_id(),
        server_id: server.id,
        actor_id: new_owner,
        action: "server.transfer_ownership",
        target_type: Some("member"),
        target_id: Some(new_owner),
        details: Some(json!({
            "previous_owner": server.admin_user_id,
            "by": "ecto-server admin",
        })),
        created_at: svc.clock.now(),
    };
    let updated = svc
        .servers
        .transfer_ownership(server.id, new_owner, audit)
        .await?
        .ok_or_else(|| {
            CliError::new(format!(
                "{new_owner} is not a member of server {}",
                server.id
            ))
        })?;
    let config = svc.servers.config(server.id).await?;
    let view =
        ecto_core::model::ServerView::new(&updated, &config, svc.settings.hosting_mode, false);
    publish::publish(svc, server.id, Scope::Server, "server.update", &view).await;
    Ok(updated)
}

/// `admin create-server` is for the managed profile: a self-hosted process serves only its
/// first server, so another one would be served by nobody.
pub fn refuse_create_in_self_hosted(config: &AppConfig) -> CliResult<()> {
    if config.hosting_mode == HostingMode::SelfHosted {
        return Err(CliError::new(
            "`admin create-server` provisions servers of the managed profile; a self-hosted \
             server serves its one community server only (rename it in the client's server \
             settings instead). Set HOSTING_MODE=managed to provision servers",
        ));
    }
    Ok(())
}
