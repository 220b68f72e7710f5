//! Durable stores. Each multi-step change is one method that the adapter runs in a single
//! transaction; rules that decide *whether* to change stay in the core (see `JoinPlan::admit`).

use crate::model::{
    CachedProfile, JoinOutcome, JoinPlan, LocalUser, Member, NewAudit, NewLocalUser, NewServer,
    NewSync, Profile, RefreshTokenRecord, Server, ServerConfig, SyncWith, Timestamp,
};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// Community servers, their configuration and their addresses.
#[async_trait]
pub trait ServerStore: Send + Sync {
    /// Creates the server, its default configuration row and its @everyone role (position 0,
    /// `is_default`) in one transaction. An address already used by another server (or custom
    /// domain) is a CONFLICT error.
    async fn create(&self, new: NewServer) -> CoreResult<Server>;
    /// The server with this id, or `None`.
    async fn get(&self, id: Uuid) -> CoreResult<Option<Server>>;
    /// The server whose `address` equals `address` (case-insensitively) or that owns the
    /// custom domain `address`; `None` when there is none.
    async fn find_by_address(&self, address: &str) -> CoreResult<Option<Server>>;
    /// The oldest server, or `None` when the database has none (self-hosted start-up).
    async fn first(&self) -> CoreResult<Option<Server>>;
    /// The configuration row of the server. A server without one is an internal error.
    async fn config(&self, server_id: Uuid) -> CoreResult<ServerConfig>;
    /// How many members the server has.
    async fn member_count(&self, server_id: Uuid) -> CoreResult<i64>;
    /// Applies `patch` to the server row (and its `updated_at`) and writes `audit`, in one
    /// transaction, and returns the new row. A `default_channel_id` that names no channel of
    /// this server writes nothing and is NOT_FOUND with ecto code CHANNEL_NOT_FOUND (3000).
    /// `None` (nothing written) when there is no such server. The call `sync` makes from the
    /// updated row is queued in the central outbox in the same transaction.
    async fn update(
        &self,
        server_id: Uuid,
        patch: crate::model::ServerPatch,
        audit: NewAudit,
        sync: SyncWith<'_, Server>,
    ) -> CoreResult<Option<Server>>;
    /// Applies `patch` to the configuration row (and its `updated_at`) and writes `audit`, in
    /// one transaction, and returns the new configuration. A server without a configuration row
    /// is an internal error. The call `sync` makes from the updated configuration is queued in
    /// the central outbox in the same transaction.
    async fn update_config(
        &self,
        server_id: Uuid,
        patch: crate::model::ConfigPatch,
        audit: NewAudit,
        sync: SyncWith<'_, ServerConfig>,
    ) -> CoreResult<ServerConfig>;
    /// Sets the configuration's `discovery_approved` (and its `updated_at` to `at`), as
    /// ecto-central decides it, and returns the new configuration; `None` (nothing written)
    /// when the server has no configuration row.
    async fn set_discovery_approved(
        &self,
        server_id: Uuid,
        approved: bool,
        at: Timestamp,
    ) -> CoreResult<Option<ServerConfig>>;
    /// Makes `new_owner` (a user id) the owner (`admin_user_id`, with the member's identity
    /// type as `admin_identity_type`) and writes `audit`, in one transaction, and returns the
    /// new row. `None` (nothing written) when `new_owner` is not a member of the server, checked
    /// within the transaction.
    async fn transfer_ownership(
        &self,
        server_id: Uuid,
        new_owner: Uuid,
        audit: NewAudit,
    ) -> CoreResult<Option<Server>>;
    /// Deletes the server and, in the same transaction, every row it owns (members, accounts,
    /// roles, channels, messages, invites, bans, audit log, …), and queues `sync` in the central
    /// outbox; `false` (nothing written) when there was none.
    async fn delete(&self, server_id: Uuid, sync: Vec<NewSync>, at: Timestamp) -> CoreResult<bool>;
}

/// Local accounts and cached central profiles.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts a local account. A username already taken on that server, compared
    /// case-insensitively, is a CONFLICT error with ecto code USERNAME_TAKEN (1002).
    async fn create_local_user(&self, user: NewLocalUser) -> CoreResult<LocalUser>;
    /// The local account of this server with that username (case-insensitive), or `None`.
    async fn find_local_user(
        &self,
        server_id: Uuid,
        username: &str,
    ) -> CoreResult<Option<LocalUser>>;
    /// The local account with this id on this server, or `None`.
    async fn get_local_user(&self, server_id: Uuid, user_id: Uuid)
        -> CoreResult<Option<LocalUser>>;
    /// Replaces the password hash of a local account; `false` when there is no such account.
    async fn set_password_hash(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        hash: &str,
    ) -> CoreResult<bool>;
    /// Inserts or replaces the cached central profile of `profile.user_id`.
    async fn upsert_cached_profile(&self, profile: CachedProfile) -> CoreResult<()>;
    /// Display data of `user_id` on `server_id`: the cached central profile when there is one,
    /// else the local account, else [`Profile::unknown`].
    async fn profile(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Profile>;
}

/// Memberships.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// The membership of `user_id` in `server_id`, or `None`.
    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<Member>>;
    /// The role ids of a member, @everyone first.
    async fn role_ids(&self, member_id: Uuid) -> CoreResult<Vec<Uuid>>;
    /// OR of the permission bits of the server's @everyone role and of every role of the
    /// member (no owner or ADMINISTRATOR expansion: that is the core's rule).
    async fn base_permissions(&self, server_id: Uuid, member_id: Uuid) -> CoreResult<u64>;
    /// Applies a join atomically: an existing membership is returned unchanged; otherwise a ban
    /// answers `Banned`; otherwise the invite (looked up by code within the plan's server and
    /// locked) is judged with [`JoinPlan::admit`] and its use counted; then the member row and
    /// its @everyone role are inserted, and the joiner becomes the owner when the server had no
    /// member. A registration (`plan.new_account`) is checked first (`UsernameTaken`) and its
    /// account inserted in the same transaction. Nothing is written unless the outcome is
    /// `Joined`.
    async fn join(&self, plan: JoinPlan) -> CoreResult<JoinOutcome>;
    /// Removes the membership with its roles, refresh tokens and read states for this server's
    /// channels, writing `audit` in the same transaction; `false` (nothing written) when there
    /// was none.
    async fn remove(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        audit: Option<NewAudit>,
    ) -> CoreResult<bool>;
    /// Increments the member's token version and deletes all its refresh tokens in one
    /// transaction, also replacing the local account's password hash when one is given;
    /// returns the new version, or `None` (and changes nothing) when there is no such member.
    async fn bump_token_version(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        new_password_hash: Option<&str>,
    ) -> CoreResult<Option<i32>>;
}

/// Refresh tokens, kept as SHA-256 hashes.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Stores a new refresh token.
    async fn insert(&self, record: RefreshTokenRecord) -> CoreResult<()>;
    /// Deletes the token with this hash and returns it; `None` when it does not exist (never
    /// issued, already rotated, or revoked). Two concurrent calls never both get `Some`.
    async fn take(&self, token_hash: &str) -> CoreResult<Option<RefreshTokenRecord>>;
    /// Deletes tokens that expired before `now`; returns how many.
    async fn delete_expired(&self, now: Timestamp) -> CoreResult<u64>;
}
