//! `server.leave`, `server.refreshToken`, `members.changePassword` and
//! `members.revokeSessions`.

use super::base::access::server_bits;
use super::base::identity::Caller;
use super::base::tokens::{hash_token, issue_pair, plausible, TokenPair, REFRESH_TTL_SECS};
use crate::model::{IdentityType, Server};
use crate::{permissions, CoreError, CoreResult, EctoCode, Services};
use serde::Serialize;
use uuid::Uuid;

/// `{success: true}`.
#[derive(Debug, Clone, Serialize)]
pub struct Success {
    pub success: bool,
}

const OK: Success = Success { success: true };

/// `server.leave`: the owner cannot leave; anyone else's membership is removed.
pub async fn leave(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Success> {
    caller.require_member()?;
    if server.admin_user_id == Some(caller.user_id) {
        return Err(CoreError::forbidden(
            EctoCode::InsufficientPermissions,
            "The owner cannot leave the server; transfer ownership first",
        ));
    }
    let audit = super::base::publish::entry(
        svc,
        server.id,
        caller,
        "member.leave",
        Some(("member", caller.user_id)),
        None,
    );
    svc.members
        .remove(server.id, caller.user_id, Some(audit))
        .await?;
    super::base::publish::publish(
        svc,
        server.id,
        crate::ports::Scope::Server,
        "member.leave",
        &serde_json::json!({ "user_id": caller.user_id }),
    )
    .await;
    // Sessions are the member's: one who left hears nothing more of the server.
    super::base::publish::close_sessions(
        svc,
        server.id,
        Some(caller.user_id),
        super::base::publish::close::NOT_AUTHENTICATED,
        "Left the server",
    )
    .await;
    Ok(OK)
}

/// What `members.changePassword` returns: a fresh pair at the new token version.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordChanged {
    pub success: bool,
    pub new_token: String,
    pub new_refresh_token: String,
}

/// `members.changePassword`: local accounts only; revokes every older token of the member.
pub async fn change_password(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    current: &str,
    new: &str,
) -> CoreResult<PasswordChanged> {
    let member = caller.require_member()?;
    let not_local = || {
        CoreError::ecto(
            crate::ErrorKind::BadRequest,
            EctoCode::ServerNotFound,
            "Only local accounts have a password",
        )
    };
    if member.identity_type != IdentityType::Local {
        return Err(not_local());
    }
    let user = svc
        .accounts
        .get_local_user(server.id, caller.user_id)
        .await?
        .ok_or_else(not_local)?;
    if !svc.hasher.verify(current, &user.password_hash).await? {
        return Err(CoreError::auth_failed("Current password is incorrect"));
    }
    crate::passwords::check_not_common(new)?;
    let hash = svc.hasher.hash(new).await?;
    // The new hash and the version bump commit together: old tokens die with the old password.
    let pair = revoke_and_reissue(svc, server.id, caller.user_id, Some(&hash)).await?;
    super::base::publish::close_sessions(
        svc,
        server.id,
        Some(caller.user_id),
        super::base::publish::close::SESSION_EXPIRED,
        "Session expired",
    )
    .await;
    Ok(PasswordChanged {
        success: true,
        new_token: pair.server_token,
        new_refresh_token: pair.server_refresh_token,
    })
}

async fn revoke_and_reissue(
    svc: &Services,
    server_id: Uuid,
    user_id: Uuid,
    new_password_hash: Option<&str>,
) -> CoreResult<TokenPair> {
    svc.members
        .bump_token_version(server_id, user_id, new_password_hash)
        .await?;
    let member = svc
        .members
        .get(server_id, user_id)
        .await?
        .ok_or_else(CoreError::not_a_member)?;
    issue_pair(svc, &member).await
}

/// `members.revokeSessions` (DECISIONS §3.9): ends every session of `target` (default: the
/// caller). Revoking someone else needs MANAGE_SERVER, and only the owner may revoke the owner.
pub async fn revoke_sessions(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    target: Option<Uuid>,
) -> CoreResult<Success> {
    let me = caller.require_member()?;
    let target = target.unwrap_or(caller.user_id);
    if target != caller.user_id {
        let perms = server_bits(svc, server, me).await?;
        if !permissions::has(perms, permissions::bits::MANAGE_SERVER)
            || server.admin_user_id == Some(target)
        {
            return Err(CoreError::missing_permission("MANAGE_SERVER"));
        }
    }
    match svc
        .members
        .bump_token_version(server.id, target, None)
        .await?
    {
        Some(_) => {
            super::base::publish::close_sessions(
                svc,
                server.id,
                Some(target),
                super::base::publish::close::SESSION_EXPIRED,
                "Session expired",
            )
            .await;
            Ok(OK)
        }
        None => Err(CoreError::member_not_found()),
    }
}

/// `server.refreshToken`: a valid, unused refresh token of a current member of `server_id` is
/// exchanged for a new pair; the old one stops working. Every failure is UNAUTHORIZED 1000.
pub async fn refresh(svc: &Services, server_id: uuid::Uuid, token: &str) -> CoreResult<TokenPair> {
    let invalid = || CoreError::auth_failed("Invalid or expired refresh token");
    let claims = svc.tokens.verify_refresh(token).ok_or_else(invalid)?;
    if claims.server_id != server_id
        || !plausible(svc, claims.issued_at, claims.expires_at, REFRESH_TTL_SECS)
    {
        return Err(invalid());
    }
    // Taking the row is the rotation: a second use of the same token finds nothing.
    let record = svc
        .refresh_tokens
        .take(&hash_token(token))
        .await?
        .ok_or_else(invalid)?;
    if record.member_id != claims.member_id || record.expires_at <= svc.clock.now() {
        return Err(invalid());
    }
    let member = svc
        .members
        .get(server_id, claims.user_id)
        .await?
        .ok_or_else(invalid)?;
    if member.id != claims.member_id || member.token_version != claims.token_version {
        return Err(CoreError::auth_failed("Token has been revoked"));
    }
    issue_pair(svc, &member).await
}
