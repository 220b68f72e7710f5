//! The `categories` router: create, update, getOverrides, delete, reorder.

use super::base::access::Perms;
use super::base::access::{check_overrides, may_lift};
use super::base::identity::Caller;
use super::base::names::normalize_channel_name;
use super::base::publish::{entry, publish, success};
use crate::model::{Category, OverrideView, Server};
use crate::permissions::{bits, Override};
use crate::ports::Scope;
use crate::{new_id, CoreError, CoreResult, Services};
use serde_json::json;
use uuid::Uuid;

async fn manager(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Perms> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
    Ok(perms)
}

/// [`manager`] who also holds MANAGE_CHANNELS at the level of category `id` (which must be
/// one of this server's): whoever cannot see a category cannot manage it either.
async fn category_manager(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<(Perms, Category)> {
    let perms = manager(svc, server, caller).await?;
    let category = svc
        .structure
        .category(server.id, id)
        .await?
        .ok_or_else(CoreError::category_not_found)?;
    perms.require_in_category(id, bits::MANAGE_CHANNELS, "MANAGE_CHANNELS")?;
    Ok((perms, category))
}

/// `categories.create`.
pub async fn create(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    name: &str,
) -> CoreResult<Category> {
    manager(svc, server, caller).await?;
    let name = normalize_channel_name(name)?;
    let id = new_id();
    let audit = entry(
        svc,
        server.id,
        caller,
        "category.create",
        Some(("category", id)),
        Some(json!({ "name": name })),
    );
    let category = svc
        .structure
        .create_category(server.id, id, &name, audit)
        .await?;
    publish(svc, server.id, Scope::Server, "category.create", &category).await;
    Ok(category)
}

/// `categories.update`: rename and/or replace overrides.
pub async fn update(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    name: Option<String>,
    overrides: Option<Vec<Override>>,
) -> CoreResult<Category> {
    let (perms, _) = category_manager(svc, server, caller, id).await?;
    let name = name.map(|n| normalize_channel_name(&n)).transpose()?;
    if let Some(o) = &overrides {
        check_overrides(svc, server.id, &perms, (perms.category(id), Some(id)), o).await?;
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "category.update",
        Some(("category", id)),
        Some(json!({ "name": name })),
    );
    let changed = overrides.is_some();
    let category = svc
        .structure
        .update_category(server.id, id, name, overrides, audit)
        .await?
        .ok_or_else(CoreError::category_not_found)?;
    publish(svc, server.id, Scope::Server, "category.update", &category).await;
    if changed {
        publish(
            svc,
            server.id,
            Scope::Server,
            "permissions.update",
            &json!({ "type": "category", "id": id }),
        )
        .await;
    }
    Ok(category)
}

/// `categories.getOverrides`.
pub async fn overrides(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<Vec<OverrideView>> {
    category_manager(svc, server, caller, id).await?;
    let stored = svc.structure.category_overrides(server.id, id).await?;
    Ok(stored.iter().map(OverrideView::for_category).collect())
}

/// `categories.delete`: its channels become uncategorized.
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    let (perms, category) = category_manager(svc, server, caller, id).await?;
    // Its channels lose its overrides: the denies that lifts are checked as for a change.
    may_lift(
        &perms,
        &perms.data.overrides_of(id),
        &[],
        perms.category(id),
    )?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "category.delete",
        Some(("category", id)),
        Some(json!({ "name": category.name })),
    );
    if !svc.structure.delete_category(server.id, id, audit).await? {
        return Err(CoreError::category_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "category.delete",
        &json!({ "id": id }),
    )
    .await;
    Ok(success())
}

/// `categories.reorder`: all positions or none.
pub async fn reorder(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    moves: Vec<(Uuid, i32)>,
) -> CoreResult<serde_json::Value> {
    manager(svc, server, caller).await?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "category.reorder",
        Some(("server", server.id)),
        Some(json!({ "count": moves.len() })),
    );
    if !svc
        .structure
        .reorder_categories(server.id, moves, audit)
        .await?
    {
        return Err(CoreError::category_not_found());
    }
    let all = svc.structure.categories(server.id).await?;
    publish(svc, server.id, Scope::Server, "category.reorder", &all).await;
    Ok(success())
}
