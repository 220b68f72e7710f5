//! Identity ports: password hashing, token signing, and ecto-central verification.

use crate::model::{AccessClaims, RefreshClaims};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// Hashes and verifies local account passwords (argon2id in production).
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A PHC-format hash of `password` with a fresh salt.
    async fn hash(&self, password: &str) -> CoreResult<String>;
    /// Whether `password` matches `hash`. A malformed hash is `Ok(false)`, not an error.
    async fn verify(&self, password: &str, hash: &str) -> CoreResult<bool>;
}

/// Signs and checks the server's own tokens.
pub trait TokenIssuer: Send + Sync {
    /// A signed access token carrying `claims`.
    fn issue_access(&self, claims: &AccessClaims) -> CoreResult<String>;
    /// The claims of a valid, unexpired access token signed by this server's secret; `None`
    /// for anything else (bad signature, wrong audience, expired, malformed).
    fn verify_access(&self, token: &str) -> Option<AccessClaims>;
    /// A signed refresh token carrying `claims`.
    fn issue_refresh(&self, claims: &RefreshClaims) -> CoreResult<String>;
    /// The claims of a valid, unexpired refresh token; `None` otherwise.
    fn verify_refresh(&self, token: &str) -> Option<RefreshClaims>;
}

/// What ecto-central says about a global token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CentralIdentity {
    pub user_id: Uuid,
    pub username: String,
    pub discriminator: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

/// Verifies ecto-central tokens (`POST {CENTRAL_URL}/api/verify-token`).
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    /// `Ok(Some)` for a valid token, `Ok(None)` when central says it is not valid (or answers
    /// something unusable), `Err` only when central cannot be reached.
    async fn verify(&self, token: &str) -> CoreResult<Option<CentralIdentity>>;
}
