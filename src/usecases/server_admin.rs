//! The owner's and managers' part of the `server` router: update, uploadIcon,
//! transferOwnership, delete; and the server images (icon, banner) the uploads replace.

use super::base::access::Perms;
use super::base::central;
use super::base::file_names::own_image_key;
use super::base::identity::Caller;
use super::base::publish::{entry, publish, success};
use crate::model::{Server, ServerPatch, ServerView};
use crate::permissions::bits;
use crate::ports::Scope;
use crate::{CoreError, CoreResult, EctoCode, ErrorKind, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// What `server.uploadIcon` returns.
#[derive(Debug, Clone, Serialize)]
pub struct IconUrl {
    pub icon_url: String,
}

/// The caller must own the server: FORBIDDEN 5001 otherwise (2002 for a non-member).
fn require_owner(server: &Server, caller: &Caller, what: &str) -> CoreResult<()> {
    caller.require_member()?;
    if server.admin_user_id == Some(caller.user_id) {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            EctoCode::InsufficientPermissions,
            format!("Only the owner can {what}"),
        ))
    }
}

/// BAD_REQUEST 2000 unless `confirmation` is exactly the server's name.
fn require_confirmation(server: &Server, confirmation: &str) -> CoreResult<()> {
    if confirmation == server.name {
        Ok(())
    } else {
        Err(CoreError::ecto(
            ErrorKind::BadRequest,
            EctoCode::ServerNotFound,
            "The confirmation does not match the server name",
        ))
    }
}

/// Writes `patch` with a `server.update` audit entry and publishes `server.update`; returns
/// the new row.
async fn apply(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    patch: ServerPatch,
) -> CoreResult<Server> {
    let details = serde_json::to_value(&patch).map_err(CoreError::internal)?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "server.update",
        Some(("server", server.id)),
        Some(details),
    );
    // ecto-central learns the server as this change leaves it.
    let sync = |now: &Server| central::metadata(svc, now);
    let updated = svc
        .servers
        .update(server.id, patch, audit, Some(&sync))
        .await?
        .ok_or_else(CoreError::server_not_found)?;
    // The change is committed: failing the call now would have an upload route delete the
    // image the row points at. Sessions learn it at their next ready.
    if let Err(e) = publish_update(svc, &updated).await {
        tracing::warn!(error = %e, "server.update not published");
    }
    Ok(updated)
}

/// `server.update` to every session of the server, in the shape every member may see (without
/// the config-only keys).
async fn publish_update(svc: &Services, server: &Server) -> CoreResult<()> {
    let config = svc.servers.config(server.id).await?;
    let view = ServerView::new(server, &config, svc.settings.hosting_mode, false);
    publish(svc, server.id, Scope::Server, "server.update", &view).await;
    Ok(())
}

/// `server.update` (MANAGE_SERVER). Returns the Server in the caller's shape, which includes
/// the config-only keys since the caller holds MANAGE_SERVER (DECISIONS §3.2).
pub async fn update(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    mut patch: ServerPatch,
) -> CoreResult<ServerView> {
    Perms::load(svc, server, caller)
        .await?
        .require(bits::MANAGE_SERVER, "MANAGE_SERVER")?;
    if let Some(name) = &patch.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::bad_request(
                "Invalid input: `name` must be 1 to 100 characters",
            ));
        }
        patch.name = Some(name.to_owned());
    }
    let updated = apply(svc, server, caller, patch).await?;
    let config = svc.servers.config(server.id).await?;
    Ok(ServerView::new(
        &updated,
        &config,
        svc.settings.hosting_mode,
        true,
    ))
}

/// `server.uploadIcon` (MANAGE_SERVER): sets the icon URL.
pub async fn upload_icon(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    icon_url: String,
) -> CoreResult<IconUrl> {
    Perms::load(svc, server, caller)
        .await?
        .require(bits::MANAGE_SERVER, "MANAGE_SERVER")?;
    let patch = ServerPatch {
        icon_url: Some(Some(icon_url.clone())),
        ..ServerPatch::default()
    };
    apply(svc, server, caller, patch).await?;
    Ok(IconUrl { icon_url })
}

/// `server.transferOwnership`: the owner only; `confirmation` must be the server's name and
/// the new owner a member (NOT_FOUND 2000 otherwise).
pub async fn transfer_ownership(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    new_owner_id: Uuid,
    confirmation: &str,
) -> CoreResult<serde_json::Value> {
    require_owner(server, caller, "transfer ownership")?;
    require_confirmation(server, confirmation)?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "server.transfer_ownership",
        Some(("member", new_owner_id)),
        Some(json!({ "previous_owner": caller.user_id })),
    );
    let updated = svc
        .servers
        .transfer_ownership(server.id, new_owner_id, audit)
        .await?
        .ok_or_else(CoreError::member_not_found)?;
    publish_update(svc, &updated).await?;
    Ok(success())
}

/// `server.delete`: the owner only; `confirmation` must be the server's name. Everything the
/// server owns is deleted in one transaction (DECISIONS §3.8), then `server.delete` is
/// published. No audit entry is written: the audit log goes with the server.
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    confirmation: &str,
) -> CoreResult<serde_json::Value> {
    require_owner(server, caller, "delete the server")?;
    require_confirmation(server, confirmation)?;
    let config = svc.servers.config(server.id).await?;
    let sync = central::server_deleted(svc, server, &config);
    if !svc.servers.delete(server.id, sync, svc.clock.now()).await? {
        return Err(CoreError::server_not_found());
    }
    tracing::info!(server_id = %server.id, user_id = %caller.user_id, "server deleted");
    publish(
        svc,
        server.id,
        Scope::Server,
        "server.delete",
        &json!({ "id": server.id }),
    )
    .await;
    super::base::publish::close_sessions(
        svc,
        server.id,
        None,
        super::base::publish::close::SERVER_SHUTTING_DOWN,
        "Server deleted",
    )
    .await;
    Ok(success())
}

/// Which server image an upload replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerImage {
    Icon,
    Banner,
}

/// Sets the server's icon or banner URL, with its audit entry, and publishes
/// `server.update` (as `server.update` and `server.uploadIcon` do).
pub async fn set_server_image(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    which: ServerImage,
    url: String,
) -> CoreResult<()> {
    let previous = match which {
        ServerImage::Icon => server.icon_url.clone(),
        ServerImage::Banner => server.banner_url.clone(),
    };
    let patch = match which {
        ServerImage::Icon => ServerPatch {
            icon_url: Some(Some(url)),
            ..ServerPatch::default()
        },
        ServerImage::Banner => ServerPatch {
            banner_url: Some(Some(url)),
            ..ServerPatch::default()
        },
    };
    apply(svc, server, caller, patch).await?;
    // The replaced image, when it was one of this server's uploads, is no longer needed.
    if let Some(old) = previous.as_deref().and_then(|u| own_image_key(server, u)) {
        if let Err(e) = svc.blobs.delete(&old).await {
            tracing::warn!(error = %e, key = old.as_str(), "could not delete a replaced image");
        }
    }
    Ok(())
}
