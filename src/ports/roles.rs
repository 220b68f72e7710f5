//! Roles and who holds them, and the moderation records (bans) of a server.
//!
//! Every mutating method writes its audit entry in the same transaction. Ids are looked up
//! within `server_id`.

use crate::model::{BanView, Member, MemberView, NewAudit, Role, Timestamp};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// A role to create.
#[derive(Debug, Clone)]
pub struct NewRole {
    pub id: Uuid,
    pub name: String,
    pub color: Option<String>,
    pub permissions: u64,
    /// `None`: (highest position in the server) + 1.
    pub position: Option<i32>,
}

/// Changes to a role; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub color: Option<Option<String>>,
    pub permissions: Option<u64>,
    pub position: Option<i32>,
}

/// A ban to record.
#[derive(Debug, Clone)]
pub struct NewBan {
    pub id: Uuid,
    pub user_id: Uuid,
    pub banned_by: Uuid,
    pub reason: Option<String>,
    pub created_at: Timestamp,
}

/// Roles of a server.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Creates a role (not @everyone).
    async fn create_role(
        &self,
        server_id: Uuid,
        role: NewRole,
        audit: NewAudit,
    ) -> CoreResult<Role>;
    /// Applies `patch`; `None` when the role is not in the server.
    async fn update_role(
        &self,
        server_id: Uuid,
        id: Uuid,
        patch: RolePatch,
        audit: NewAudit,
    ) -> CoreResult<Option<Role>>;
    /// Deletes a role (members lose it); `false` when it is not in the server.
    async fn delete_role(&self, server_id: Uuid, id: Uuid, audit: NewAudit) -> CoreResult<bool>;
    /// Sets every position or none (`false` when a role is not in the server).
    async fn reorder_roles(
        &self,
        server_id: Uuid,
        moves: Vec<(Uuid, i32)>,
        audit: NewAudit,
    ) -> CoreResult<bool>;
    /// Replaces the member's roles by `role_ids` (which must all be roles of the server, the
    /// @everyone role among them).
    async fn set_member_roles(
        &self,
        server_id: Uuid,
        member_id: Uuid,
        role_ids: Vec<Uuid>,
        audit: NewAudit,
    ) -> CoreResult<()>;
}

/// Member listing and moderation.
#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Members of the server ordered by member id descending, those with id < `after` when given.
    async fn list_members(
        &self,
        server_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<Member>>;
    /// The protocol's Member objects (roles, profile) of `members`, in the same order.
    async fn member_views(
        &self,
        server_id: Uuid,
        members: &[Member],
    ) -> CoreResult<Vec<MemberView>>;
    /// Records the ban (replacing an earlier one of the same user), soft-deletes the user's
    /// messages in this server's channels created at or after `delete_since`, and removes the
    /// membership — all in one transaction with `audit`.
    async fn ban(
        &self,
        server_id: Uuid,
        ban: NewBan,
        delete_since: Option<Timestamp>,
        audit: NewAudit,
    ) -> CoreResult<()>;
    /// Lifts a ban; `false` (nothing written) when the user was not banned.
    async fn unban(&self, server_id: Uuid, user_id: Uuid, audit: NewAudit) -> CoreResult<bool>;
    /// The server's bans, newest first, with display names.
    async fn bans(&self, server_id: Uuid) -> CoreResult<Vec<BanView>>;
    /// Sets or clears a member's nickname; `false` when not a member.
    async fn set_nickname(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        nickname: Option<String>,
    ) -> CoreResult<bool>;
    /// Sets whether a member accepts server DMs; `false` when not a member.
    async fn set_allow_dms(&self, server_id: Uuid, user_id: Uuid, allow: bool) -> CoreResult<bool>;
    /// A member of the server (other than nobody) whose username (their local account's, or
    /// the cached ecto-central profile's) is `name`, compared case-insensitively (`name` is
    /// given in lower case); `None` when no member has it.
    async fn member_with_username(&self, server_id: Uuid, name: &str) -> CoreResult<Option<Uuid>>;
    /// Sets a local account's display name and avatar; `false` when there is no such account.
    async fn set_local_profile(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        display_name: Option<String>,
        avatar_url: Option<String>,
    ) -> CoreResult<bool>;
}
