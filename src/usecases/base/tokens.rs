//! Issuing the server's token pairs (reference §4.1, §4.3; DECISIONS §3.9, §3.22): signed
//! access tokens and stored refresh tokens, and what makes a presented token plausible.
//! Rotating them (`server.refreshToken`) is [`crate::usecases::account::refresh`].

use crate::model::{AccessClaims, Member, RefreshClaims, RefreshTokenRecord};
use crate::{new_id, CoreResult, Services};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Access tokens live 2 hours.
pub const ACCESS_TTL_SECS: i64 = 2 * 60 * 60;
/// Refresh tokens live 30 days.
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 60 * 60;

/// How far in the future a token's issue time may lie (clocks of several instances differ).
const CLOCK_SKEW_SECS: i64 = 60;

/// Whether a token issued at `issued_at` and expiring at `expires_at` is one this server
/// could have issued: not issued in the future, and living no longer than `ttl`.
pub fn plausible(svc: &Services, issued_at: i64, expires_at: i64, ttl: i64) -> bool {
    let now = svc.clock.now().timestamp();
    issued_at <= now + CLOCK_SKEW_SECS && expires_at.saturating_sub(issued_at) <= ttl
}

/// A fresh access + refresh token pair, as `server.refreshToken` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub server_token: String,
    pub server_refresh_token: String,
}

/// SHA-256 hex of a refresh token: only this is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A signed access token for `member` at its current version.
pub fn access_token(svc: &Services, member: &Member) -> CoreResult<String> {
    let now = svc.clock.now().timestamp();
    svc.tokens.issue_access(&AccessClaims {
        user_id: member.user_id,
        identity_type: member.identity_type,
        token_version: member.token_version,
        server_id: member.server_id,
        issued_at: now,
        expires_at: now + ACCESS_TTL_SECS,
    })
}

/// Issues an access token and a stored refresh token for `member`.
pub async fn issue_pair(svc: &Services, member: &Member) -> CoreResult<TokenPair> {
    let now = svc.clock.now();
    let jti = new_id();
    let refresh = svc.tokens.issue_refresh(&RefreshClaims {
        member_id: member.id,
        user_id: member.user_id,
        token_version: member.token_version,
        server_id: member.server_id,
        jti,
        issued_at: now.timestamp(),
        expires_at: now.timestamp() + REFRESH_TTL_SECS,
    })?;
    svc.refresh_tokens
        .insert(RefreshTokenRecord {
            id: new_id(),
            member_id: member.id,
            jti: jti.to_string(),
            token_hash: hash_token(&refresh),
            expires_at: now + chrono::Duration::seconds(REFRESH_TTL_SECS),
            created_at: now,
        })
        .await?;
    Ok(TokenPair {
        server_token: access_token(svc, member)?,
        server_refresh_token: refresh,
    })
}
