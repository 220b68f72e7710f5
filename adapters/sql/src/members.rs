//! [`MemberStore`] on SQL, including the atomic join.

use crate::db::{db_error, is_unique_violation, rollback_is_false, Db};
use crate::lower;
use crate::rows::{InviteRow, MemberRow};
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecto_core::model::{Invite, JoinOutcome, JoinPlan, Member, NewAudit};
use ecto_core::ports::MemberStore;
use ecto_core::{CoreError, CoreResult};
use uuid::Uuid;

/// How often a join is retried after losing a race (same invite or same user at once).
const JOIN_ATTEMPTS: usize = 5;

/// Memberships.
pub struct SqlMemberStore(pub Db);

// The steps of a join, each run on `$conn` inside the join's transaction. They are macros
// because the body expands once per backend (see `db_run!`): the schema of the current arm
// must be in scope.

/// The member row of `$user` in `$server`, if any.
macro_rules! existing_member {
    ($conn:expr, $server:expr, $user:expr) => {
        members::table
            .filter(members::server_id.eq($server))
            .filter(members::user_id.eq($user))
            .first::<MemberRow>($conn)
            .await
            .optional()?
    };
}

/// Whether the new local account's username (case-insensitively) is taken on `$server`.
macro_rules! username_taken {
    ($conn:expr, $server:expr, $account:expr) => {
        local_users::table
            .filter(local_users::server_id.eq($server))
            .filter(lower(local_users::username).eq($account.username.to_ascii_lowercase()))
            .count()
            .get_result::<i64>($conn)
            .await?
            > 0
    };
}

/// Whether `$user` is banned from `$server`.
macro_rules! is_banned {
    ($conn:expr, $server:expr, $user:expr) => {
        bans::table
            .filter(bans::server_id.eq($server))
            .filter(bans::user_id.eq($user))
            .count()
            .get_result::<i64>($conn)
            .await?
            > 0
    };
}

/// The invite the plan names, when the server requires one (`None` otherwise).
macro_rules! find_invite {
    ($conn:expr, $server:expr, $plan:expr) => {
        match (&$plan.invite_code, $plan.require_invite) {
            (Some(code), true) if !code.is_empty() => invites::table
                .filter(invites::server_id.eq($server))
                .filter(invites::code.eq(code))
                .first::<InviteRow>($conn)
                .await
                .optional()?
                .map(Invite::from),
            _ => None,
        }
    };
}

/// Counts one use of `$invite`; `false` when someone used it since it was read.
macro_rules! count_invite_use {
    ($conn:expr, $invite:expr) => {
        diesel::update(
            invites::table
                .filter(invites::id.eq(DbId($invite.id)))
                .filter(invites::use_count.eq($invite.use_count)),
        )
        .set(invites::use_count.eq($invite.use_count + 1))
        .execute($conn)
        .await?
            == 1
    };
}

/// The id of `$server`'s @everyone role.
macro_rules! everyone_role {
    ($conn:expr, $server:expr) => {
        roles::table
            .filter(roles::server_id.eq($server))
            .filter(roles::is_default.eq(true))
            .select(roles::id)
            .first::<DbId>($conn)
            .await?
    };
}

/// Inserts the new local account.
macro_rules! insert_account {
    ($conn:expr, $server:expr, $account:expr) => {
        diesel::insert_into(local_users::table)
            .values((
                local_users::id.eq(DbId($account.id)),
                local_users::server_id.eq($server),
                local_users::username.eq(&$account.username),
                local_users::password_hash.eq(&$account.password_hash),
                local_users::created_at.eq($account.now),
                local_users::updated_at.eq($account.now),
            ))
            .execute($conn)
            .await?;
    };
}

/// Inserts the member row and its @everyone role.
macro_rules! insert_member {
    ($conn:expr, $server:expr, $plan:expr, $everyone:expr) => {
        diesel::insert_into(members::table)
            .values((
                members::id.eq(DbId($plan.member_id)),
                members::server_id.eq($server),
                members::user_id.eq(DbId($plan.user_id)),
                members::identity_type.eq($plan.identity_type.as_str()),
                members::allow_dms.eq(true),
                members::token_version.eq(0),
                members::joined_at.eq($plan.now),
            ))
            .execute($conn)
            .await?;
        diesel::insert_into(member_roles::table)
            .values((
                member_roles::member_id.eq(DbId($plan.member_id)),
                member_roles::role_id.eq($everyone),
            ))
            .execute($conn)
            .await?;
    };
}

/// Makes the joiner the owner when the server has none; whether it did.
macro_rules! claim_ownership {
    ($conn:expr, $server:expr, $plan:expr) => {
        diesel::update(
            servers::table
                .filter(servers::id.eq($server))
                .filter(servers::admin_user_id.is_null()),
        )
        .set((
            servers::admin_user_id.eq(DbId($plan.user_id)),
            servers::admin_identity_type.eq($plan.identity_type.as_str()),
            servers::updated_at.eq($plan.now),
        ))
        .execute($conn)
        .await?
            == 1
    };
}

/// The member a join creates.
fn new_member(plan: &JoinPlan) -> Member {
    Member {
        id: plan.member_id,
        server_id: plan.server_id,
        user_id: plan.user_id,
        identity_type: plan.identity_type,
        nickname: None,
        allow_dms: true,
        token_version: 0,
        joined_at: plan.now,
    }
}

#[async_trait]
impl MemberStore for SqlMemberStore {
    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<Member>> {
        db_run!(self.0, read, |conn| {
            members::table
                .filter(members::server_id.eq(DbId(server_id)))
                .filter(members::user_id.eq(DbId(user_id)))
                .first::<MemberRow>(conn)
                .await
                .optional()
                .map(|r| r.map(Member::from))
                .map_err(db_error)
        })
    }

    async fn role_ids(&self, member_id: Uuid) -> CoreResult<Vec<Uuid>> {
        db_run!(self.0, read, |conn| {
            member_roles::table
                .inner_join(roles::table)
                .filter(member_roles::member_id.eq(DbId(member_id)))
                .order((
                    roles::is_default.desc(),
                    roles::position.desc(),
                    roles::id.asc(),
                ))
                .select(roles::id)
                .load::<DbId>(conn)
                .await
                .map(|ids| ids.into_iter().map(|i| i.0).collect())
                .map_err(db_error)
        })
    }

    async fn base_permissions(&self, server_id: Uuid, member_id: Uuid) -> CoreResult<u64> {
        db_run!(self.0, read, |conn| {
            let own = member_roles::table
                .filter(member_roles::member_id.eq(DbId(member_id)))
                .select(member_roles::role_id);
            roles::table
                .filter(roles::server_id.eq(DbId(server_id)))
                .filter(roles::is_default.eq(true).or(roles::id.eq_any(own)))
                .select(roles::permissions)
                .load::<i64>(conn)
                .await
                .map(|all| all.into_iter().fold(0u64, |acc, p| acc | p as u64))
                .map_err(db_error)
        })
    }

    async fn join(&self, plan: JoinPlan) -> CoreResult<JoinOutcome> {
        for _ in 0..JOIN_ATTEMPTS {
            let attempt: Result<JoinOutcome, DieselError> = db_run!(self.0, write, |conn| {
                let plan = plan.clone();
                conn.transaction(async move |conn| {
                    let server = DbId(plan.server_id);
                    let user = DbId(plan.user_id);
                    if let Some(row) = existing_member!(conn, server, user) {
                        return Ok(JoinOutcome::AlreadyMember(row.into()));
                    }
                    if let Some(account) = &plan.new_account {
                        if username_taken!(conn, server, account) {
                            return Ok(JoinOutcome::UsernameTaken);
                        }
                    }
                    if is_banned!(conn, server, user) {
                        return Ok(JoinOutcome::Banned);
                    }
                    let invite = find_invite!(conn, server, plan);
                    if let Err(outcome) = plan.admit(invite.as_ref()) {
                        return Ok(outcome);
                    }
                    if let Some(inv) = &invite {
                        // Counted only if nobody used it since we read it; else retry.
                        if !count_invite_use!(conn, inv) {
                            return Err(DieselError::RollbackTransaction);
                        }
                    }
                    let everyone = everyone_role!(conn, server);
                    if let Some(account) = &plan.new_account {
                        insert_account!(conn, server, account);
                    }
                    insert_member!(conn, server, plan, everyone);
                    // The first joiner owns the server; the condition makes it race-free.
                    let became_owner = claim_ownership!(conn, server, plan);
                    Ok(JoinOutcome::Joined {
                        member: new_member(&plan),
                        became_owner,
                    })
                })
                .await
            });
            match attempt {
                Ok(outcome) => return Ok(outcome),
                Err(DieselError::RollbackTransaction) => continue,
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(db_error(e)),
            }
        }
        Err(CoreError::internal_msg("join kept losing races; giving up"))
    }

    async fn remove(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        audit: Option<NewAudit>,
    ) -> CoreResult<bool> {
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let n = delete_member!(conn, DbId(server_id), DbId(user_id));
                if n == 0 {
                    return Err(DieselError::RollbackTransaction);
                }
                if let Some(audit) = &audit {
                    insert_audit!(conn, audit)?;
                }
                Ok::<bool, DieselError>(true)
            })
            .await
            .or_else(rollback_is_false)
        })
    }

    async fn bump_token_version(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        new_password_hash: Option<&str>,
    ) -> CoreResult<Option<i32>> {
        let new_password_hash = new_password_hash.map(str::to_owned);
        db_run!(self.0, write, |conn| {
            conn.transaction(async move |conn| {
                let target = members::table
                    .filter(members::server_id.eq(DbId(server_id)))
                    .filter(members::user_id.eq(DbId(user_id)));
                let n = diesel::update(target)
                    .set(members::token_version.eq(members::token_version + 1))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok::<Option<i32>, DieselError>(None);
                }
                if let Some(hash) = &new_password_hash {
                    diesel::update(
                        local_users::table
                            .filter(local_users::server_id.eq(DbId(server_id)))
                            .filter(local_users::id.eq(DbId(user_id))),
                    )
                    .set(local_users::password_hash.eq(hash))
                    .execute(conn)
                    .await?;
                }
                let (member_id, version) = target
                    .select((members::id, members::token_version))
                    .first::<(DbId, i32)>(conn)
                    .await?;
                diesel::delete(
                    server_refresh_tokens::table
                        .filter(server_refresh_tokens::member_id.eq(member_id)),
                )
                .execute(conn)
                .await?;
                Ok(Some(version))
            })
            .await
            .map_err(db_error)
        })
    }
}
