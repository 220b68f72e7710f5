//! Token claims: the access JWT and the refresh JWT of reference §4.1 and §4.3.

use super::{IdentityType, Timestamp};
use uuid::Uuid;

/// Claims of a server access token (HS256, 2 hours).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessClaims {
    pub user_id: Uuid,
    pub identity_type: IdentityType,
    pub token_version: i32,
    pub server_id: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Claims of a refresh token (30 days). `jti` makes every token unique (DECISIONS §3.22).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshClaims {
    pub member_id: Uuid,
    pub user_id: Uuid,
    pub token_version: i32,
    pub server_id: Uuid,
    pub jti: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A row of `server_refresh_tokens`: only the token's SHA-256 is kept.
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub id: Uuid,
    pub member_id: Uuid,
    pub jti: String,
    pub token_hash: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}
