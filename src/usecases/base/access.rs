//! Effective permissions: the one place the use cases compute what a member may do, on top
//! of the pure rules of [`crate::permissions`]. [`Perms`] holds a caller's bits in one
//! server (loaded from the memo); the functions here answer the questions the features ask
//! (may they act in this channel, on this member, grant these bits, read this attachment).
//! The shared file hub's chain of folder overrides is [`hub`].

pub mod hub;

use super::identity::Caller;
use super::loaders::{self, membership, permission_data};
use super::lookup;
use crate::model::{Channel, Member, MemberView, PermissionData, Server};
use crate::permissions::{self, bits, channel_permissions, has, server_permissions, Subject};
use crate::ports::AttachmentRecord;
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

/// `bit` among `have`, or FORBIDDEN 5001 naming it.
pub fn require_bits(have: u64, bit: u64, name: &str) -> CoreResult<()> {
    if has(have, bit) {
        Ok(())
    } else {
        Err(CoreError::missing_permission(name))
    }
}

/// The subject of the rules for the member `user_id` holding the roles `own` of `data`.
fn subject_of(
    server: &Server,
    user_id: Uuid,
    everyone: (Uuid, u64),
    data: &PermissionData,
    own: &[Uuid],
) -> Subject {
    Subject {
        user_id,
        is_owner: server.admin_user_id == Some(user_id),
        is_member: true,
        everyone_role_id: everyone.0,
        everyone: everyone.1,
        roles: data
            .roles
            .iter()
            .filter(|r| !r.is_default && own.contains(&r.id))
            .map(|r| (r.id, r.permissions))
            .collect(),
    }
}

/// The highest position among the roles `own` of `data` (0 for @everyone only).
fn top_position(data: &PermissionData, own: &[Uuid]) -> i32 {
    data.roles
        .iter()
        .filter(|r| !r.is_default && own.contains(&r.id))
        .map(|r| r.position)
        .max()
        .unwrap_or(0)
}

/// Effective bits of `subject` in `channel`: the channel's category overrides, then its own.
fn channel_bits(subject: &Subject, data: &PermissionData, channel: &Channel) -> u64 {
    let category = channel
        .category_id
        .map(|c| data.overrides_of(c))
        .unwrap_or_default();
    channel_permissions(subject, &category, &data.overrides_of(channel.id))
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
        let subject = subject_of(
            server,
            caller.user_id,
            (everyone.id, everyone.permissions),
            &data,
            &own,
        );
        let top_position = top_position(&data, &own);
        let is_owner = subject.is_owner;
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
        channel_bits(&self.subject, &self.data, channel)
    }

    /// Whether this member can read `channel` (READ_MESSAGES there).
    pub fn reads(&self, channel: &Channel) -> bool {
        has(self.channel(channel), bits::READ_MESSAGES)
    }

    /// The channels of `channels` this member can read, each with its `my_permissions`.
    pub fn readable(&self, channels: impl IntoIterator<Item = Channel>) -> Vec<Channel> {
        channels
            .into_iter()
            .filter_map(|mut ch| {
                let bits = self.channel(&ch);
                has(bits, bits::READ_MESSAGES).then(|| {
                    ch.my_permissions = Some(bits);
                    ch
                })
            })
            .collect()
    }

    /// Whether this member is shown the category `category_id`: a manager of channels sees
    /// every category, anyone else those holding a channel of `readable`.
    pub fn sees_category(&self, category_id: Uuid, readable: &[Channel]) -> bool {
        has(self.server, bits::MANAGE_CHANNELS)
            || readable
                .iter()
                .any(|ch| ch.category_id == Some(category_id))
    }

    /// Server-level `bit`, or FORBIDDEN 5001.
    pub fn require(&self, bit: u64, name: &str) -> CoreResult<()> {
        require_bits(self.server, bit, name)
    }

    /// `bit` in `channel`, or FORBIDDEN 5001.
    pub fn require_in(&self, channel: &Channel, bit: u64, name: &str) -> CoreResult<()> {
        require_bits(self.channel(channel), bit, name)
    }

    /// Bits at the level of `category_id`: the server's bits with the category's overrides
    /// applied (what its channels start from). Losing READ_MESSAGES there loses everything.
    pub fn category(&self, category_id: Uuid) -> u64 {
        channel_permissions(&self.subject, &self.data.overrides_of(category_id), &[])
    }

    /// `bit` at the level of `category_id`, or FORBIDDEN 5001.
    pub fn require_in_category(&self, category_id: Uuid, bit: u64, name: &str) -> CoreResult<()> {
        require_bits(self.category(category_id), bit, name)
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
        if self.is_owner || has(self.server, bits::ADMINISTRATOR) {
            return Ok(());
        }
        if bits & !held != 0 {
            return Err(CoreError::grant_not_held());
        }
        Ok(())
    }

    /// Whether a role at `position` is strictly below this member's highest role.
    pub fn outranks_position(&self, position: i32) -> bool {
        self.is_owner || self.top_position > position
    }

    /// The reference's hierarchy rule, made stricter: nobody acts on the owner, and a
    /// non-owner must outrank the target (whose highest role is at `target_top`).
    pub fn check_hierarchy(
        &self,
        server: &Server,
        target_user: Uuid,
        target_top: i32,
    ) -> CoreResult<()> {
        if server.admin_user_id == Some(target_user) {
            return Err(CoreError::role_hierarchy());
        }
        if !self.is_owner && self.top_position <= target_top {
            return Err(CoreError::role_hierarchy());
        }
        Ok(())
    }

    /// The roles that can read `channel`, by a role-level rule of the hub's channel file
    /// stats: the role's own bits, then its category override, then its channel override,
    /// hold ADMINISTRATOR or READ_MESSAGES (@everyone's bits and member overrides are not
    /// counted, unlike for a member).
    pub fn roles_reading(&self, channel: &Channel) -> Vec<Uuid> {
        let role_override = |container: Uuid, role: Uuid| {
            self.data
                .overrides_of(container)
                .into_iter()
                .find(|o| o.target_type == permissions::TargetType::Role && o.target_id == role)
        };
        self.data
            .roles
            .iter()
            .filter(|role| {
                let mut b = role.permissions;
                let layers = [channel.category_id, Some(channel.id)];
                for o in layers
                    .into_iter()
                    .flatten()
                    .filter_map(|x| role_override(x, role.id))
                {
                    b = (b & !o.deny) | o.allow;
                }
                has(b, bits::ADMINISTRATOR) || has(b, bits::READ_MESSAGES)
            })
            .map(|role| role.id)
            .collect()
    }
}

/// Server-level effective bits of `member`, from the store (not the memo): the owner and
/// ADMINISTRATOR get every bit.
pub async fn server_bits(svc: &Services, server: &Server, member: &Member) -> CoreResult<u64> {
    if server.admin_user_id == Some(member.user_id) {
        return Ok(permissions::ALL);
    }
    let base = svc.members.base_permissions(server.id, member.id).await?;
    Ok(if has(base, bits::ADMINISTRATOR) {
        permissions::ALL
    } else {
        base
    })
}

/// Whether the member of `view` (another member than the one `perms` was loaded for) can
/// read `channel`.
pub fn member_reads(server: &Server, perms: &Perms, view: &MemberView, channel: &Channel) -> bool {
    let subject = subject_of(
        server,
        view.user_id,
        (perms.subject.everyone_role_id, perms.subject.everyone),
        &perms.data,
        &view.roles,
    );
    has(
        channel_bits(&subject, &perms.data, channel),
        bits::READ_MESSAGES,
    )
}

/// The member `user_id` of this server a moderation call targets (FORBIDDEN 2002 when not a
/// member), with their highest role position.
pub async fn target(
    svc: &Services,
    server: &Server,
    perms: &Perms,
    user_id: Uuid,
) -> CoreResult<(Member, i32)> {
    let member = svc
        .members
        .get(server.id, user_id)
        .await?
        .ok_or_else(CoreError::target_not_a_member)?;
    let own = svc.members.role_ids(member.id).await?;
    let top = top_position(&perms.data, &own);
    Ok((member, top))
}

/// The caller's permissions and the channel `channel_id` of this server, read from the
/// store (NOT_FOUND 3000 otherwise).
pub async fn channel_and_perms(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<(Channel, Perms)> {
    let perms = Perms::load(svc, server, caller).await?;
    let channel = lookup::channel(svc, server.id, channel_id).await?;
    Ok((channel, perms))
}

/// Like [`channel_and_perms`], the channel read through the memo.
pub async fn channel_and_perms_memo(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<(Channel, Perms)> {
    let perms = Perms::load(svc, server, caller).await?;
    let channel = loaders::channel(svc, server.id, channel_id)
        .await?
        .ok_or_else(CoreError::channel_not_found)?;
    Ok((channel, perms))
}

/// The channels `caller` can read (from the memo), each with its effective bits.
pub async fn readable_channels(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<Vec<Channel>> {
    let perms = Perms::load(svc, server, caller).await?;
    Ok(perms.readable(loaders::channels(svc, server.id).await?.iter().cloned()))
}

/// Checks override targets: roles must be roles of this server (NOT_FOUND 5000), members
/// members of it (NOT_FOUND 2000), and the caller must be allowed to grant what they allow
/// where they hold `held` (their bits at the channel's or category's level). Replacing the
/// overrides of an existing `container` may lift a deny only of bits the caller holds there:
/// a manager denied a bit cannot drop the deny to get it back (FORBIDDEN 5004).
pub async fn check_overrides(
    svc: &Services,
    server_id: Uuid,
    perms: &Perms,
    (held, container): (u64, Option<Uuid>),
    overrides: &[permissions::Override],
) -> CoreResult<()> {
    use permissions::TargetType;
    for (i, o) in overrides.iter().enumerate() {
        if overrides[..i]
            .iter()
            .any(|p| p.target_type == o.target_type && p.target_id == o.target_id)
        {
            return Err(CoreError::bad_request(
                "permission_overrides names the same role or member twice",
            ));
        }
    }
    if let Some(container) = container {
        may_lift(perms, &perms.data.overrides_of(container), overrides, held)?;
    }
    for o in overrides {
        if !permissions::is_valid(o.deny) {
            return Err(CoreError::invalid_permission_bits());
        }
        perms.may_grant_within(o.allow, held)?;
        match o.target_type {
            TargetType::Role => {
                if !perms.data.roles.iter().any(|r| r.id == o.target_id) {
                    return Err(CoreError::role_not_found());
                }
            }
            TargetType::Member => {
                if svc.members.get(server_id, o.target_id).await?.is_none() {
                    return Err(CoreError::member_not_found());
                }
            }
        }
    }
    Ok(())
}

/// Going from overrides `from` to `to` (replacing them, moving a channel to another category
/// or out of one, deleting a category) may lift a deny only of bits the caller holds where it
/// applies (`held`): FORBIDDEN 5004 otherwise.
pub fn may_lift(
    perms: &Perms,
    from: &[permissions::Override],
    to: &[permissions::Override],
    held: u64,
) -> CoreResult<()> {
    for old in from {
        let kept = to
            .iter()
            .filter(|o| o.target_type == old.target_type && o.target_id == old.target_id)
            .fold(0, |deny, o| deny | o.deny);
        perms.may_grant_within(old.deny & !kept, held)?;
    }
    Ok(())
}

/// A channel moved from category `from` to `to` loses the first's overrides and takes the
/// second's: the denies that lifts are checked as [`may_lift`] does.
pub fn may_move(perms: &Perms, channel: &Channel, to: Option<Uuid>) -> CoreResult<()> {
    let Some(from) = channel.category_id else {
        return Ok(());
    };
    if to == Some(from) {
        return Ok(());
    }
    let target = to.map(|c| perms.data.overrides_of(c)).unwrap_or_default();
    may_lift(
        perms,
        &perms.data.overrides_of(from),
        &target,
        perms.channel(channel),
    )
}

/// Whether `caller` may read attachment `a`: its uploader; for a linked attachment, a member
/// with READ_MESSAGES in its channel, or one of the two members of its DM conversation.
pub async fn attachment_readable(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    a: &AttachmentRecord,
) -> CoreResult<bool> {
    if caller.member.is_none() {
        return Ok(false);
    }
    if a.uploader_id == caller.user_id {
        return Ok(true);
    }
    let (Some(_), Some(channel_id)) = (a.message_id, a.channel_id) else {
        return Ok(false);
    };
    if let Some(channel) = svc.structure.channel(server.id, channel_id).await? {
        let perms = Perms::load(svc, server, caller).await?;
        return Ok(perms.reads(&channel));
    }
    if let Some(c) = svc.dms.conversation(server.id, channel_id).await? {
        return Ok(c.user_a == caller.user_id || c.user_b == caller.user_id);
    }
    Ok(false)
}
