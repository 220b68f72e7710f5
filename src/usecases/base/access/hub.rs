//! Effective permissions in the shared file hub: the caller's server-level bits, then the
//! overrides of each folder from the root down to an item, then the item's own (the chain of
//! [`crate::permissions::hub`]).

use super::super::identity::Caller;
use super::Perms;
use crate::model::{ItemOverride, ItemType, Server, SharedFileRecord, SharedFolder};
use crate::permissions::hub::{folder_path, shared_item_permissions};
use crate::permissions::{bits, has, Override};
use crate::{CoreError, CoreResult, Services};
use std::collections::HashMap;
use uuid::Uuid;

/// The caller's permissions with everything the chain needs: the server's folders and hub
/// overrides, loaded once per request.
pub struct HubAccess {
    pub perms: Perms,
    folders: HashMap<Uuid, SharedFolder>,
    parents: HashMap<Uuid, Option<Uuid>>,
    overrides: Vec<ItemOverride>,
}

impl HubAccess {
    /// Loads the caller's permissions (FORBIDDEN 2002 for a non-member) and the hub's tree.
    pub async fn load(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Self> {
        let perms = Perms::load(svc, server, caller).await?;
        let folders = svc.hub.folders(server.id).await?;
        let overrides = svc.hub.overrides(server.id).await?;
        Ok(Self {
            perms,
            parents: folders.iter().map(|f| (f.id, f.parent_id)).collect(),
            folders: folders.into_iter().map(|f| (f.id, f)).collect(),
            overrides,
        })
    }

    /// The folder `id` of this server.
    pub fn folder(&self, id: Uuid) -> CoreResult<&SharedFolder> {
        self.folders
            .get(&id)
            .ok_or_else(CoreError::folder_not_found)
    }

    /// Every folder of this server, in no particular order.
    pub fn folders(&self) -> impl Iterator<Item = &SharedFolder> {
        self.folders.values()
    }

    /// The overrides of one folder or shared file.
    pub fn overrides_of(
        &self,
        item_type: ItemType,
        id: Uuid,
    ) -> impl Iterator<Item = &ItemOverride> {
        self.overrides
            .iter()
            .filter(move |o| o.item_type == item_type && o.item_id == id)
    }

    fn layer(&self, item_type: ItemType, id: Uuid) -> Vec<Override> {
        self.overrides_of(item_type, id).map(|o| o.rule).collect()
    }

    /// Whether the folder or shared file has overrides of its own.
    pub fn has_overrides(&self, item_type: ItemType, id: Uuid) -> bool {
        self.overrides_of(item_type, id).next().is_some()
    }

    fn chain(&self, folder: Option<Uuid>, file: Option<Uuid>) -> u64 {
        let mut layers: Vec<Vec<Override>> = folder_path(&self.parents, folder)
            .into_iter()
            .map(|f| self.layer(ItemType::Folder, f))
            .collect();
        if let Some(file) = file {
            layers.push(self.layer(ItemType::File, file));
        }
        let layers: Vec<&[Override]> = layers.iter().map(Vec::as_slice).collect();
        shared_item_permissions(&self.perms.subject, &layers)
    }

    /// Effective bits on a folder: its ancestors' overrides from the root, then its own.
    pub fn folder_bits(&self, folder_id: Uuid) -> u64 {
        self.chain(Some(folder_id), None)
    }

    /// Effective bits on a shared file in `folder_id` (`None`: the root).
    pub fn file_bits(&self, folder_id: Option<Uuid>, file_id: Uuid) -> u64 {
        self.chain(folder_id, Some(file_id))
    }

    /// Effective bits for adding to `folder_id`: the chain on the folder, or the server-level
    /// bits at the root.
    pub fn container_bits(&self, folder_id: Option<Uuid>) -> u64 {
        match folder_id {
            Some(f) => self.folder_bits(f),
            None => self.perms.server,
        }
    }

    /// Whether the caller may download `file`: BROWSE_FILES server-wide and through the
    /// file's chain.
    pub fn may_download(&self, file: &SharedFileRecord) -> bool {
        has(self.perms.server, bits::BROWSE_FILES)
            && has(self.file_bits(file.folder_id, file.id), bits::BROWSE_FILES)
    }
}

/// Whether `caller` may download the shared `file`: a member who [`HubAccess::may_download`]
/// it.
pub async fn shared_file_readable(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    file: &SharedFileRecord,
) -> CoreResult<bool> {
    if caller.member.is_none() {
        return Ok(false);
    }
    let access = HubAccess::load(svc, server, caller).await?;
    Ok(access.may_download(file))
}
