//! Identities' display data: local accounts (this server's) and cached ecto-central profiles.

use super::Timestamp;
use uuid::Uuid;

/// A row of `local_users`: an account that lives on one community server.
#[derive(Debug, Clone)]
pub struct LocalUser {
    pub id: Uuid,
    pub server_id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

/// What registering a local account stores.
#[derive(Debug, Clone)]
pub struct NewLocalUser {
    pub id: Uuid,
    pub server_id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub now: Timestamp,
}

/// A row of `cached_profiles`: the last profile ecto-central told us about a global user.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedProfile {
    pub user_id: Uuid,
    pub username: String,
    pub discriminator: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub fetched_at: Timestamp,
}

/// Display data of a user, whichever kind of identity it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    /// Only global users with a cached profile have one.
    pub discriminator: Option<String>,
}

impl Profile {
    /// The profile of a user we know nothing about (reference §2.5: username `Unknown`).
    pub fn unknown() -> Self {
        Self {
            username: "Unknown".into(),
            display_name: None,
            avatar_url: None,
            discriminator: None,
        }
    }
}
