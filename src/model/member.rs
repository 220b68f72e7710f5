//! Memberships, and the atomic join that creates them.

use super::{Invite, InviteProblem, NewLocalUser, Profile, Timestamp};
use serde::Serialize;
use uuid::Uuid;

/// How a user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityType {
    /// An ecto-central account, valid on every server.
    Global,
    /// An account of this community server.
    Local,
}

impl IdentityType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Local => "local",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "global" => Some(Self::Global),
            "local" => Some(Self::Local),
            _ => None,
        }
    }
}

/// A row of `members`.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: Uuid,
    pub server_id: Uuid,
    pub user_id: Uuid,
    pub identity_type: IdentityType,
    pub nickname: Option<String>,
    pub allow_dms: bool,
    /// Bumped to revoke every token and socket of this membership (DECISIONS §3.9).
    pub token_version: i32,
    pub joined_at: Timestamp,
}

/// The protocol's Member object.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub id: Uuid,
    pub server_id: Uuid,
    pub user_id: Uuid,
    pub identity_type: IdentityType,
    pub nickname: Option<String>,
    pub allow_dms: bool,
    #[serde(serialize_with = "super::time::iso")]
    pub joined_at: Timestamp,
    pub roles: Vec<Uuid>,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<String>,
}

impl MemberView {
    pub fn new(member: &Member, roles: Vec<Uuid>, profile: Profile) -> Self {
        Self {
            id: member.id,
            server_id: member.server_id,
            user_id: member.user_id,
            identity_type: member.identity_type,
            nickname: member.nickname.clone(),
            allow_dms: member.allow_dms,
            joined_at: member.joined_at,
            roles,
            username: profile.username,
            display_name: profile.display_name,
            avatar_url: profile.avatar_url,
            discriminator: profile.discriminator,
        }
    }
}

/// Everything `server.join` decided before asking the store to apply it atomically.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub server_id: Uuid,
    pub user_id: Uuid,
    pub identity_type: IdentityType,
    /// The id the new member row gets, if one is created.
    pub member_id: Uuid,
    /// `Some` when the server requires an invite: the code the caller gave (maybe empty).
    pub invite_code: Option<String>,
    pub require_invite: bool,
    /// A local account registered by this join, created in the same transaction (so a refused
    /// join leaves no account behind).
    pub new_account: Option<NewLocalUser>,
    pub now: Timestamp,
}

/// What applying a [`JoinPlan`] did.
#[derive(Debug, Clone)]
pub enum JoinOutcome {
    /// The user already was a member; nothing changed.
    AlreadyMember(Member),
    /// A new member row (with @everyone) was created; `became_owner` when it was the first.
    Joined {
        member: Member,
        became_owner: bool,
    },
    Banned,
    /// An invite is required and none was given.
    InviteRequired,
    /// The code names no invite of this server.
    InviteNotFound,
    /// The invite exists but cannot be used.
    InviteUnusable(InviteProblem),
    /// The account to register has a name already taken on the server (case-insensitive).
    UsernameTaken,
}

impl JoinPlan {
    /// Decides, inside the store's transaction, whether `invite` admits one more member.
    /// The store calls this so the rule stays here while the check stays atomic.
    pub fn admit(&self, invite: Option<&Invite>) -> Result<(), JoinOutcome> {
        if !self.require_invite {
            return Ok(());
        }
        match (&self.invite_code, invite) {
            (None, _) => Err(JoinOutcome::InviteRequired),
            (Some(code), _) if code.is_empty() => Err(JoinOutcome::InviteRequired),
            (Some(_), None) => Err(JoinOutcome::InviteNotFound),
            (Some(_), Some(inv)) => inv
                .check_usable(self.now)
                .map_err(JoinOutcome::InviteUnusable),
        }
    }
}
