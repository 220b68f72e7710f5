//! `hubFiles.getItemOverrides` and `updateItemOverrides`: the overrides of one folder or
//! shared file.

use crate::model::{ItemOverrideView, ItemType, Server};
use crate::permissions::{bits, Override, TargetType};
use crate::ports::Scope;
use crate::usecases::base::access::hub::HubAccess;
use crate::usecases::base::identity::Caller;
use crate::usecases::base::publish::{entry, publish, success};
use crate::{new_id, CoreError, CoreResult, Services};
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

async fn require_item(
    svc: &Services,
    server: &Server,
    access: &HubAccess,
    item_type: ItemType,
    item_id: Uuid,
) -> CoreResult<()> {
    match item_type {
        ItemType::Folder => access.folder(item_id).map(|_| ()),
        ItemType::File => svc
            .hub
            .shared_file(server.id, item_id)
            .await?
            .map(|_| ())
            .ok_or_else(CoreError::shared_file_not_found),
    }
}

/// `hubFiles.getItemOverrides` (MANAGE_FILES): the overrides of a folder or shared file.
pub async fn get_item_overrides(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    item_type: ItemType,
    item_id: Uuid,
) -> CoreResult<Vec<ItemOverrideView>> {
    let access = HubAccess::load(svc, server, caller).await?;
    access.perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    require_item(svc, server, &access, item_type, item_id).await?;
    Ok(access
        .overrides_of(item_type, item_id)
        .map(ItemOverrideView::from)
        .collect())
}

/// `hubFiles.updateItemOverrides` (MANAGE_FILES): replaces the overrides of a folder or
/// shared file. Targets must be roles of this server; entries with no bit are dropped.
/// Audited; event `shared_item.permissions_update`.
pub async fn update_item_overrides(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    item_type: ItemType,
    item_id: Uuid,
    overrides: Vec<Override>,
) -> CoreResult<serde_json::Value> {
    let access = HubAccess::load(svc, server, caller).await?;
    access.perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    require_item(svc, server, &access, item_type, item_id).await?;
    let mut seen = HashSet::new();
    for o in &overrides {
        if !crate::permissions::is_valid(o.allow) || !crate::permissions::is_valid(o.deny) {
            return Err(CoreError::invalid_permission_bits());
        }
        if o.target_type != TargetType::Role {
            return Err(CoreError::bad_request(
                "Invalid input: `permission_overrides.target_type` must be 'role'",
            ));
        }
        if !access.perms.data.roles.iter().any(|r| r.id == o.target_id) {
            return Err(CoreError::role_not_found());
        }
        if !seen.insert(o.target_id) {
            return Err(CoreError::bad_request(
                "Invalid input: `permission_overrides` names a role twice",
            ));
        }
    }
    let kept: Vec<(Uuid, Override)> = overrides
        .into_iter()
        .filter(|o| o.allow != 0 || o.deny != 0)
        .map(|o| (new_id(), o))
        .collect();
    let audit = entry(
        svc,
        server.id,
        caller,
        "shared_item.permissions_update",
        Some((item_type.audit_target(), item_id)),
        Some(json!({ "overrides_count": kept.len() })),
    );
    if !svc
        .hub
        .replace_overrides(server.id, item_type, item_id, kept, audit)
        .await?
    {
        return Err(match item_type {
            ItemType::Folder => CoreError::folder_not_found(),
            ItemType::File => CoreError::shared_file_not_found(),
        });
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "shared_item.permissions_update",
        &json!({ "item_type": item_type, "item_id": item_id }),
    )
    .await;
    Ok(success())
}
