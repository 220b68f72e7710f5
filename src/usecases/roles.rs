//! The `roles` router, with the hierarchy made stricter than the reference's: unless they own
//! the server, nobody creates, edits, moves, deletes or assigns a role at or above their own
//! highest role, or grants bits they do not hold.

use super::base::access::Perms;
use super::base::identity::Caller;
use super::base::publish::{entry, publish, success};
use crate::model::{Role, Server};
use crate::permissions::bits;
use crate::ports::{NewRole, RolePatch, Scope};
use crate::{new_id, CoreError, CoreResult, EctoCode, Services};
use serde_json::json;
use uuid::Uuid;

async fn manager(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Perms> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_ROLES, "MANAGE_ROLES")?;
    Ok(perms)
}

/// `roles.list` (any member): every role, highest first.
pub async fn list(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Vec<Role>> {
    caller.require_member()?;
    Ok(svc.structure.permission_data(server.id).await?.roles)
}

/// Input of `roles.create`.
#[derive(Debug, Clone)]
pub struct CreateRole {
    pub name: String,
    pub color: Option<String>,
    pub permissions: u64,
    pub position: Option<i32>,
}

/// `roles.create` (MANAGE_ROLES).
pub async fn create(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: CreateRole,
) -> CoreResult<Role> {
    let perms = manager(svc, server, caller).await?;
    perms.may_grant(input.permissions)?;
    // Non-owners place new roles just under their own highest one by default.
    let position = match (input.position, perms.is_owner) {
        (Some(p), _) => Some(p),
        (None, true) => None,
        (None, false) => Some((perms.top_position - 1).max(1)),
    };
    if let Some(p) = position {
        if p < 1 {
            return Err(CoreError::bad_request(
                "Invalid input: `position` must be at least 1 (0 is @everyone)",
            ));
        }
        if !perms.outranks_position(p) {
            return Err(CoreError::role_hierarchy());
        }
    }
    let id = new_id();
    let audit = entry(
        svc,
        server.id,
        caller,
        "role.create",
        Some(("role", id)),
        Some(json!({ "name": input.name })),
    );
    let role = svc
        .roles
        .create_role(
            server.id,
            NewRole {
                id,
                name: input.name,
                color: input.color,
                permissions: input.permissions,
                position,
            },
            audit,
        )
        .await?;
    publish(svc, server.id, Scope::Server, "role.create", &role).await;
    Ok(role)
}

/// `roles.update` (MANAGE_ROLES): only roles below the caller, to positions below the caller,
/// with bits the caller holds. @everyone keeps its name and position 0.
pub async fn update(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    patch: RolePatch,
) -> CoreResult<Role> {
    let perms = manager(svc, server, caller).await?;
    let role = perms
        .data
        .roles
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .ok_or_else(CoreError::role_not_found)?;
    if role.is_default && (patch.name.is_some() || patch.position.is_some()) {
        return Err(CoreError::bad_request(
            "The @everyone role cannot be renamed or moved",
        ));
    }
    if !perms.outranks_position(role.position)
        || patch.position.is_some_and(|p| !perms.outranks_position(p))
    {
        return Err(CoreError::role_hierarchy());
    }
    if patch.position.is_some_and(|p| p < 1) {
        return Err(CoreError::bad_request(
            "Invalid input: `position` must be at least 1 (0 is @everyone)",
        ));
    }
    if let Some(bits) = patch.permissions {
        perms.may_grant(bits & !role.permissions)?;
        if !crate::permissions::is_valid(bits) {
            return Err(CoreError::invalid_permission_bits());
        }
    }
    let details = json!({ "name": patch.name, "color": patch.color, "permissions": patch.permissions, "position": patch.position });
    let audit = entry(
        svc,
        server.id,
        caller,
        "role.update",
        Some(("role", id)),
        Some(details),
    );
    let permissions_changed = patch.permissions.is_some();
    let role = svc
        .roles
        .update_role(server.id, id, patch, audit)
        .await?
        .ok_or_else(CoreError::role_not_found)?;
    publish(svc, server.id, Scope::Server, "role.update", &role).await;
    if permissions_changed {
        publish(
            svc,
            server.id,
            Scope::Server,
            "permissions.update",
            &json!({ "type": "role", "id": id }),
        )
        .await;
    }
    Ok(role)
}

/// `roles.delete` (MANAGE_ROLES); @everyone cannot be deleted (5001).
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    let perms = manager(svc, server, caller).await?;
    let role = perms
        .data
        .roles
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .ok_or_else(CoreError::role_not_found)?;
    if role.is_default {
        return Err(CoreError::forbidden(
            EctoCode::InsufficientPermissions,
            "The @everyone role cannot be deleted",
        ));
    }
    if !perms.outranks_position(role.position) {
        return Err(CoreError::role_hierarchy());
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "role.delete",
        Some(("role", id)),
        Some(json!({ "name": role.name })),
    );
    if !svc.roles.delete_role(server.id, id, audit).await? {
        return Err(CoreError::role_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "role.delete",
        &json!({ "id": id }),
    )
    .await;
    publish(
        svc,
        server.id,
        Scope::Server,
        "permissions.update",
        &json!({ "type": "role", "id": id }),
    )
    .await;
    Ok(success())
}

/// `roles.reorder` (MANAGE_ROLES): every moved role and target position below the caller.
pub async fn reorder(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    moves: Vec<(Uuid, i32)>,
) -> CoreResult<serde_json::Value> {
    let perms = manager(svc, server, caller).await?;
    for (id, position) in &moves {
        let role = perms
            .data
            .roles
            .iter()
            .find(|r| r.id == *id)
            .ok_or_else(CoreError::role_not_found)?;
        if role.is_default {
            return Err(CoreError::bad_request("The @everyone role cannot be moved"));
        }
        if *position < 1 {
            return Err(CoreError::bad_request(
                "Invalid input: `position` must be at least 1 (0 is @everyone)",
            ));
        }
        if !perms.outranks_position(role.position) || !perms.outranks_position(*position) {
            return Err(CoreError::role_hierarchy());
        }
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "role.reorder",
        Some(("server", server.id)),
        Some(json!({ "count": moves.len() })),
    );
    if !svc.roles.reorder_roles(server.id, moves, audit).await? {
        return Err(CoreError::role_not_found());
    }
    let roles = svc.structure.permission_data(server.id).await?.roles;
    publish(svc, server.id, Scope::Server, "role.reorder", &roles).await;
    Ok(success())
}
