//! The `invites` router: create, list, revoke. Invites are used by `server.join`.

use super::base::access::Perms;
use super::base::central;
use super::base::identity::Caller;
use super::base::publish::{entry, publish, success};
use crate::model::{new_invite_code, InviteView, Server};
use crate::permissions::bits;
use crate::ports::{NewInvite, Scope};
use crate::{new_id, CoreError, CoreResult, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// How many fresh codes `invites.create` tries before giving up (a collision among 62^8 codes
/// is already rare).
const CODE_ATTEMPTS: usize = 5;

/// Input of `invites.create`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateInvite {
    /// `None`: unlimited.
    pub max_uses: Option<i32>,
    /// Milliseconds from now; `None`: never expires.
    pub expires_in_ms: Option<i64>,
}

/// What `invites.create` returns.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedInvite {
    pub invite: InviteView,
    pub url: String,
}

/// What `invites.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct InvitePage {
    pub invites: Vec<InviteView>,
    pub has_more: bool,
}

/// The link shared for an invite: the client itself when it runs on localhost, else the
/// public invite page (reference §2.4).
pub fn invite_url(client_url: &str, code: &str) -> String {
    if client_url.contains("localhost") {
        format!("{client_url}?invite={code}")
    } else {
        format!("https://ecto.chat/invite/{code}")
    }
}

/// `invites.create` (CREATE_INVITES).
pub async fn create(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: CreateInvite,
) -> CoreResult<CreatedInvite> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::CREATE_INVITES, "CREATE_INVITES")?;
    let now = svc.clock.now();
    let expires_at = match input.expires_in_ms {
        None => None,
        Some(ms) => Some(
            chrono::Duration::try_milliseconds(ms)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| CoreError::bad_request("`expires_in` is too large"))?,
        ),
    };
    let id = new_id();
    for _ in 0..CODE_ATTEMPTS {
        let code = new_invite_code();
        let audit = entry(
            svc,
            server.id,
            caller,
            "invite.create",
            Some(("invite", id)),
            Some(json!({
                "code": code,
                "max_uses": input.max_uses,
                "expires_in": input.expires_in_ms,
            })),
        );
        let new = NewInvite {
            id,
            server_id: server.id,
            code,
            created_by: caller.user_id,
            max_uses: input.max_uses,
            expires_at,
            created_at: now,
        };
        let sync = central::invite_register(svc, server, &new.code, expires_at);
        if let Some(invite) = svc.invites.create(new, audit, sync).await? {
            publish(svc, server.id, Scope::Server, "invite.create", &invite).await;
            let url = invite_url(&svc.settings.client_url, &invite.code);
            return Ok(CreatedInvite { invite, url });
        }
    }
    Err(CoreError::internal_msg(format!(
        "no free invite code after {CODE_ATTEMPTS} attempts"
    )))
}

/// `invites.list` (any member): newest first, `after` an invite id (DECISIONS §3.15: the
/// cursor pages by the key the list is ordered by).
pub async fn list(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    after: Option<Uuid>,
    limit: i64,
) -> CoreResult<InvitePage> {
    caller.require_member()?;
    let mut invites = svc.invites.list(server.id, after, limit + 1).await?;
    let has_more = invites.len() as i64 > limit;
    invites.truncate(limit as usize);
    Ok(InvitePage { invites, has_more })
}

/// `invites.revoke`: the invite's creator, or a holder of MANAGE_SERVER.
pub async fn revoke(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    invite_id: Uuid,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    let invite = svc
        .invites
        .get(server.id, invite_id)
        .await?
        .ok_or_else(CoreError::invite_not_found)?;
    if invite.created_by != caller.user_id {
        Perms::load(svc, server, caller)
            .await?
            .require(bits::MANAGE_SERVER, "MANAGE_SERVER")?;
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "invite.revoke",
        Some(("invite", invite_id)),
        Some(json!({ "code": invite.code })),
    );
    // Central forgets it once (a second revoke of the same invite changes nothing).
    let sync = if invite.revoked {
        None
    } else {
        central::invite_unregister(svc, server, &invite.code)
    };
    if !svc
        .invites
        .revoke(server.id, invite_id, audit, sync)
        .await?
    {
        return Err(CoreError::invite_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "invite.delete",
        &json!({ "id": invite_id }),
    )
    .await;
    Ok(success())
}

#[cfg(test)]
mod tests {
    use super::invite_url;

    #[test]
    fn urls_point_at_a_local_client_or_the_public_invite_page() {
        assert_eq!(
            invite_url("http://localhost:5173", "AbCd1234"),
            "http://localhost:5173?invite=AbCd1234"
        );
        assert_eq!(
            invite_url("https://app.ecto.chat", "AbCd1234"),
            "https://ecto.chat/invite/AbCd1234"
        );
    }
}
