//! Invites of a server (`invites.create`, `invites.list`, `invites.revoke`). Their use by
//! `server.join` is part of [`crate::ports::MemberStore::join`].
//!
//! Every mutating method writes its audit entry in the same transaction. Ids are looked up
//! within `server_id`: an invite of another server is "not found".

use crate::model::{Invite, InviteView, NewAudit, NewSync, Timestamp};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// An invite to create.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub id: Uuid,
    pub server_id: Uuid,
    /// Unique across every server of the database.
    pub code: String,
    pub created_by: Uuid,
    pub max_uses: Option<i32>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Invites of servers.
#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Inserts the invite (with `use_count` 0, not revoked) and `audit` in one transaction and
    /// returns it with its creator's name. `None` when `new.code` is already used by any
    /// invite of any server: nothing is written, and the caller may retry with another code.
    /// `sync` is queued in the central outbox in the same transaction.
    async fn create(
        &self,
        new: NewInvite,
        audit: NewAudit,
        sync: Option<NewSync>,
    ) -> CoreResult<Option<InviteView>>;
    /// The server's invites ordered by id descending (newest first), only those with
    /// id < `before` when it is given, at most `limit` of them, each with its creator's name
    /// (the cached central profile, else the local account, else `Unknown`).
    async fn list(
        &self,
        server_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> CoreResult<Vec<InviteView>>;
    /// The invite `id` of `server_id`, or `None` (also when it belongs to another server).
    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Invite>>;
    /// Marks the invite revoked and writes `audit`, in one transaction; `false` (nothing
    /// written) when the invite is not in the server. Revoking a revoked invite succeeds.
    /// `sync` is queued in the central outbox in the same transaction.
    async fn revoke(
        &self,
        server_id: Uuid,
        id: Uuid,
        audit: NewAudit,
        sync: Option<NewSync>,
    ) -> CoreResult<bool>;
}
