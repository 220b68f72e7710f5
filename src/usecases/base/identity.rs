//! Who is calling: a server token of this server whose version is current, or an ecto-central
//! token (reference §4.4, DECISIONS §3.9).

use crate::model::{CachedProfile, IdentityType, Member, Server};
use crate::ports::CentralIdentity;
use crate::{CoreError, CoreResult, ErrorKind, HostingMode, Services};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// How long a central verification is trusted (reference: 60 s).
pub const CENTRAL_CACHE_TTL: Duration = Duration::from_secs(60);

/// An authenticated caller of one server.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub identity_type: IdentityType,
    /// The caller's membership, when they are a member.
    pub member: Option<Member>,
}

impl Caller {
    /// The membership, or FORBIDDEN 2002.
    pub fn require_member(&self) -> CoreResult<&Member> {
        self.member.as_ref().ok_or_else(CoreError::not_a_member)
    }
}

fn local_accounts_allowed(svc: &Services) -> bool {
    svc.settings.hosting_mode == HostingMode::SelfHosted || svc.settings.allow_local_accounts
}

/// Resolves a bearer token to a caller of `server`; `Ok(None)` when the token proves nothing
/// (invalid, expired, another server's, revoked by a version bump, or unknown to central). A
/// valid token of someone who is not a member gives a caller without membership.
pub async fn authenticate(
    svc: &Services,
    server: &Server,
    token: &str,
) -> CoreResult<Option<Caller>> {
    if let Some(claims) = svc.tokens.verify_access(token) {
        if claims.server_id != server.id
            || !super::tokens::plausible(
                svc,
                claims.issued_at,
                claims.expires_at,
                super::tokens::ACCESS_TTL_SECS,
            )
        {
            return Ok(None);
        }
        if claims.identity_type == IdentityType::Local && !local_accounts_allowed(svc) {
            return Ok(None);
        }
        let member = super::loaders::membership(svc, server.id, claims.user_id)
            .await?
            .map(|m| m.member.clone());
        // A member's token is only as good as the version it was issued for. The token of
        // someone who is no longer a member (left, kicked, banned) still proves who they are:
        // membership-requiring calls then answer 403 2002, not 401, so a client can tell "my
        // token is bad" from "I am no longer a member here".
        return Ok(match member {
            // Revoked (version bumped), or not the kind of account it claims to be.
            Some(m)
                if m.token_version != claims.token_version
                    || m.identity_type != claims.identity_type =>
            {
                None
            }
            member => Some(Caller {
                user_id: claims.user_id,
                identity_type: claims.identity_type,
                member,
            }),
        });
    }
    let Some(identity) = verify_central(svc, token).await? else {
        return Ok(None);
    };
    let member = super::loaders::membership(svc, server.id, identity.user_id)
        .await?
        .map(|m| m.member.clone());
    Ok(Some(Caller {
        user_id: identity.user_id,
        identity_type: IdentityType::Global,
        member,
    }))
}

/// Verifies a central token through the cache; a fresh answer refreshes `cached_profiles`.
pub async fn verify_central(svc: &Services, token: &str) -> CoreResult<Option<CentralIdentity>> {
    let Some(central) = &svc.central else {
        return Ok(None);
    };
    let key = format!("central:{}", hex::encode(Sha256::digest(token.as_bytes())));
    // "-" keeps a negative answer; concurrent requests with one token ask central once, and
    // only a fresh answer refreshes the cached profile.
    let fetch = Box::pin(async {
        // A failed verification is kept nowhere and counts as no identity.
        let answer = central.verify(token).await.map_err(|e| {
            tracing::warn!(error = %e, "ecto-central verification failed");
            CoreError::unauthorized("ecto-central unavailable")
        })?;
        let Some(identity) = answer else {
            return Ok("-".to_owned());
        };
        svc.accounts
            .upsert_cached_profile(CachedProfile {
                user_id: identity.user_id,
                username: identity.username.clone(),
                discriminator: identity.discriminator.clone(),
                display_name: identity.display_name.clone(),
                avatar_url: identity.avatar_url.clone(),
                fetched_at: svc.clock.now(),
            })
            .await?;
        serde_json::to_string(&identity).map_err(CoreError::internal)
    });
    let cached = match svc.cache.get_or_fetch(&key, CENTRAL_CACHE_TTL, fetch).await {
        Ok(cached) => cached,
        Err(e) if e.kind == ErrorKind::Unauthorized => return Ok(None),
        Err(e) => return Err(e),
    };
    if cached == "-" {
        return Ok(None);
    }
    // Anything unparsable is treated as no identity.
    Ok(serde_json::from_str::<CentralIdentity>(&cached).ok())
}

/// Whether local accounts may register or log in on `server` under the process settings.
pub(crate) fn local_login_allowed(svc: &Services, config_allows: bool) -> bool {
    config_allows && local_accounts_allowed(svc)
}
