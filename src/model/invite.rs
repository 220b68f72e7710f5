//! Invites and the rules that decide whether one can still be used.

use super::time::{iso, iso_opt};
use super::Timestamp;
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use uuid::Uuid;

/// How many characters an invite code has.
pub const INVITE_CODE_LEN: usize = 8;

/// A row of `invites`.
#[derive(Debug, Clone)]
pub struct Invite {
    pub id: Uuid,
    pub server_id: Uuid,
    pub code: String,
    pub created_by: Uuid,
    pub max_uses: Option<i32>,
    pub use_count: i32,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
    pub created_at: Timestamp,
}

/// Why an invite cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteProblem {
    Revoked,
    Expired,
    Exhausted,
}

impl Invite {
    /// Whether one more person may join with this invite at `now`.
    pub fn check_usable(&self, now: Timestamp) -> Result<(), InviteProblem> {
        if self.revoked {
            return Err(InviteProblem::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(InviteProblem::Expired);
        }
        if self.max_uses.is_some_and(|max| self.use_count >= max) {
            return Err(InviteProblem::Exhausted);
        }
        Ok(())
    }
}

/// A fresh invite code: [`INVITE_CODE_LEN`] characters drawn uniformly from `[A-Za-z0-9]`.
pub fn new_invite_code() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), INVITE_CODE_LEN)
}

/// The protocol's Invite object: the row plus the creator's display name.
#[derive(Debug, Clone, Serialize)]
pub struct InviteView {
    pub id: Uuid,
    pub server_id: Uuid,
    pub code: String,
    pub created_by: Uuid,
    pub max_uses: Option<i32>,
    pub use_count: i32,
    #[serde(serialize_with = "iso_opt")]
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    /// The creator's name; `Unknown` when no profile is known.
    pub creator_name: String,
}

impl InviteView {
    pub fn new(invite: Invite, creator_name: String) -> Self {
        Self {
            id: invite.id,
            server_id: invite.server_id,
            code: invite.code,
            created_by: invite.created_by,
            max_uses: invite.max_uses,
            use_count: invite.use_count,
            expires_at: invite.expires_at,
            revoked: invite.revoked,
            created_at: invite.created_at,
            creator_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn invite() -> Invite {
        let now = Utc::now();
        Invite {
            id: Uuid::now_v7(),
            server_id: Uuid::now_v7(),
            code: "abcdEFGH".into(),
            created_by: Uuid::now_v7(),
            max_uses: Some(2),
            use_count: 1,
            expires_at: Some(now + Duration::minutes(5)),
            revoked: false,
            created_at: now,
        }
    }

    #[test]
    fn usable_until_revoked_expired_or_used_up() {
        let now = Utc::now();
        assert_eq!(invite().check_usable(now), Ok(()));
        assert_eq!(
            Invite {
                revoked: true,
                ..invite()
            }
            .check_usable(now),
            Err(InviteProblem::Revoked)
        );
        assert_eq!(
            invite().check_usable(now + Duration::minutes(6)),
            Err(InviteProblem::Expired)
        );
        assert_eq!(
            Invite {
                use_count: 2,
                ..invite()
            }
            .check_usable(now),
            Err(InviteProblem::Exhausted)
        );
        assert_eq!(
            Invite {
                max_uses: None,
                use_count: 99,
                ..invite()
            }
            .check_usable(now),
            Ok(())
        );
    }

    #[test]
    fn codes_are_eight_ascii_alphanumerics() {
        for _ in 0..200 {
            let code = new_invite_code();
            assert_eq!(code.len(), INVITE_CODE_LEN);
            assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
        }
        assert_ne!(new_invite_code(), new_invite_code());
    }
}
