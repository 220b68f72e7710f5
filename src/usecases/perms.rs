//! Loading a caller's permissions in a server and checking them.

use super::base::identity::Caller;
use super::base::loaders::{membership, permission_data};
use crate::model::{Channel, PermissionData, Server};
use crate::permissions::{self, channel_permissions, server_permissions, Subject};
use crate::{CoreError, CoreResult, Services};
use std::sync::Arc;
use uuid::Uuid;

/// A member's permissions in one server, ready to be checked server-wide or per channel.
pub struct Perms {
    pub subject: Subject,
    pub data: Arc<PermissionData>,
    /// Server-level bits.
    pub server: u64,
    /// The highest position among the member's roles (0 for @everyone only).
    pub top_position: i32,
    pub is_owner: bool,
}

impl Perms {
    /// Loads the caller's roles and the server's overrides. A caller who is not a member gets
    /// FORBIDDEN 2002.
    pub async fn load(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Perms> {
        let member = caller.require_member()?;
        let data = permission_data(svc, server.id).await?;
        let everyone = data
            .everyone()
            .ok_or_else(|| CoreError::internal_msg("server has no @everyone role"))?;
        let own = match membership(svc, server.id, caller.user_id).await? {
            Some(m) if m.member.id == member.id => m.roles.clone(),
            _ => svc.members.role_ids(member.id).await?,
        };
        let roles: Vec<(Uuid, u64)> = data
            .roles
            .iter()
            .filter(|r| !r.is_default && own.contains(&r.id))
            .map(|r| (r.id, r.permissions))
            .collect();
        let top_position = data
            .roles
            .iter()
            .filter(|r| !r.is_default && own.contains(&r.id))
            .map(|r| r.position)
            .max()
            .unwrap_or(0);
        let is_owner = server.admin_user_id == Some(caller.user_id);
        let subject = Subject {
            user_id: caller.user_id,
            is_owner,
            is_member: true,
            everyone_role_id: everyone.id,
            everyone: everyone.permissions,
            roles,
        };
        let server_bits = server_permissions(&subject);
        Ok(Perms {
            subject,
            data,
            server: server_bits,
            top_position,
            is_owner,
        })
    }

    /// Effective bits in `channel`.
    pub fn channel(&self, channel: &Channel) -> u64 {
        let category = channel
            .category_id
            .map(|c| self.data.overrides_of(c))
            .unwrap_or_default();
        channel_permissions(
            &self.subject,
            &category,
            &self.data.overrides_of(channel.id),
        )
    }

    /// Server-level `bit`, or FORBIDDEN 5001.
    pub fn require(&self, bit: u64, name: &str) -> CoreResult<()> {
        if permissions::has(self.server, bit) {
            Ok(())
        } else {
            Err(CoreError::missing_permission(name))
        }
    }

    /// `bit` in `channel`, or FORBIDDEN 5001.
    pub fn require_in(&self, channel: &Channel, bit: u64, name: &str) -> CoreResult<()> {
        if permissions::has(self.channel(channel), bit) {
            Ok(())
        } else {
            Err(CoreError::missing_permission(name))
        }
    }

    /// Bits at the level of `category_id`: the server's bits with the category's overrides
    /// applied (what its channels start from). Losing READ_MESSAGES there loses everything.
    pub fn category(&self, category_id: Uuid) -> u64 {
        channel_permissions(&self.subject, &self.data.overrides_of(category_id), &[])
    }

    /// `bit` at the level of `category_id`, or FORBIDDEN 5001.
    pub fn require_in_category(&self, category_id: Uuid, bit: u64, name: &str) -> CoreResult<()> {
        if permissions::has(self.category(category_id), bit) {
            Ok(())
        } else {
            Err(CoreError::missing_permission(name))
        }
    }

    /// Whether this member may grant `bits` in a role: the owner and administrators may grant
    /// anything, others only bits they hold server-wide (FORBIDDEN 5004 otherwise).
    pub fn may_grant(&self, bits: u64) -> CoreResult<()> {
        self.may_grant_within(bits, self.server)
    }

    /// Whether this member may grant `bits` where they hold `held` (server-wide for roles,
    /// channel- or category-level for an override there): the owner and administrators may
    /// grant anything, others only bits they hold there (FORBIDDEN 5004 otherwise).
    pub fn may_grant_within(&self, bits: u64, held: u64) -> CoreResult<()> {
        if !permissions::is_valid(bits) {
            return Err(CoreError::invalid_permission_bits());
        }
        if self.is_owner || permissions::has(self.server, permissions::bits::ADMINISTRATOR) {
            return Ok(());
        }
        if bits & !held != 0 {
            return Err(CoreError::grant_not_held());
        }
        Ok(())
    }
}
