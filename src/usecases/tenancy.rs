//! Which community server a request is for, and creating servers.

use crate::model::{NewServer, Server};
use crate::services::Tenancy;
use crate::{new_id, permissions, CoreError, CoreResult, ErrorKind, Services};

/// The name a self-hosted server gets on first start (reference §1).
pub const DEFAULT_SERVER_NAME: &str = "My Ecto Server";

/// The server a request is for. Self-hosted: the one server. Managed: the server whose address
/// (or custom domain) is `X-Server-Address`, else `Host` (with and then without its port).
pub async fn resolve_server(
    svc: &Services,
    server_address: Option<&str>,
    host: Option<&str>,
) -> CoreResult<Server> {
    let key = match svc.tenancy {
        Tenancy::Single(id) => id.to_string(),
        Tenancy::Multi => {
            let wanted = server_address
                .or(host)
                .map(str::trim)
                .filter(|s| !s.is_empty());
            let Some(wanted) = wanted else {
                return Err(CoreError::server_not_found());
            };
            wanted.to_owned()
        }
    };
    if let Some(server) = svc.memo.server(&key) {
        return Ok(server);
    }
    let _turn = svc.memo.server_turn(&key).await;
    if let Some(server) = svc.memo.server(&key) {
        return Ok(server);
    }
    // Read before the lookup: a change committed meanwhile keeps the result out of the memo.
    let epoch = svc.memo.epoch();
    let server = lookup(svc, &key)
        .await?
        .ok_or_else(CoreError::server_not_found)?;
    svc.memo.keep_server(&key, epoch, server.clone());
    Ok(server)
}

/// The server named by `key`: this process's server in single tenancy, else an address or
/// custom domain (with or without a port).
async fn lookup(svc: &Services, key: &str) -> CoreResult<Option<Server>> {
    if let Tenancy::Single(id) = svc.tenancy {
        return svc.servers.get(id).await;
    }
    if let Some(server) = svc.servers.find_by_address(key).await? {
        return Ok(Some(server));
    }
    match key.rsplit_once(':') {
        Some((bare, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            svc.servers.find_by_address(bare).await
        }
        _ => Ok(None),
    }
}

/// Creates a server with its configuration and @everyone role.
pub async fn create_server(
    svc: &Services,
    name: &str,
    address: Option<&str>,
) -> CoreResult<Server> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CoreError::bad_request("name must be 1 to 100 characters"));
    }
    let address = address.map(str::trim).filter(|a| !a.is_empty());
    if let Some(a) = address {
        if a.len() > 255 || a.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(CoreError::bad_request(
                "address must be a host name (at most 255 characters)",
            ));
        }
    }
    svc.servers
        .create(NewServer {
            id: new_id(),
            name: name.to_string(),
            address: address.map(|a| a.to_ascii_lowercase()),
            everyone_permissions: permissions::EVERYONE_DEFAULT,
            everyone_role_id: new_id(),
            now: svc.clock.now(),
        })
        .await
}

/// Managed provisioning: refuses an address that is already taken.
pub async fn provision_server(svc: &Services, address: &str, name: &str) -> CoreResult<Server> {
    if address.trim().is_empty() {
        return Err(CoreError::bad_request("address is required"));
    }
    if svc.servers.find_by_address(address.trim()).await?.is_some() {
        return Err(CoreError::new(
            ErrorKind::Conflict,
            None,
            "A server already uses this address",
        ));
    }
    create_server(svc, name, Some(address)).await
}

/// Self-hosted start-up: the existing server, or a new one (the first start). Returns the server
/// and whether it was created now.
pub async fn ensure_single_server(svc: &Services) -> CoreResult<(Server, bool)> {
    if let Some(server) = svc.servers.first().await? {
        return Ok((server, false));
    }
    let address = svc.settings.server_address.clone();
    Ok((
        create_server(svc, DEFAULT_SERVER_NAME, address.as_deref()).await?,
        true,
    ))
}
