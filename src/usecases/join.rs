//! `server.join` (reference §4.2 with DECISIONS §3.10): find or create the identity, then apply
//! the membership atomically, then hand out a token pair.

use super::base::access::server_bits;
use super::base::identity::{authenticate, local_login_allowed, Caller};
use super::base::signing::same_secret;
use super::base::tokens::issue_pair;
use crate::model::{
    IdentityType, InviteProblem, JoinOutcome, JoinPlan, MemberView, NewLocalUser, Server,
    ServerView,
};
use crate::username::Username;
use crate::{new_id, permissions, CoreError, CoreResult, EctoCode, Services};
use serde::Serialize;

/// Whether a username/password pair registers a new account or logs into an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinAction {
    #[default]
    Register,
    Login,
}

/// The validated input of `server.join`.
#[derive(Debug, Clone, Default)]
pub struct JoinInput {
    pub invite_code: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub action: JoinAction,
    /// The client's address, for the failed-login limits.
    pub client: Option<std::net::IpAddr>,
    /// The one-time setup token of a self-hosted server without an owner (the client's
    /// `setup_token` field).
    pub setup_token: Option<String>,
}

/// What `server.join` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    pub server_token: String,
    pub server_refresh_token: String,
    pub server: ServerView,
    pub member: MemberView,
}

/// While a self-hosted server has no owner (and `REQUIRE_SETUP_TOKEN` is on), whoever joins
/// would become its owner: they must prove they run the box with the setup token kept in its
/// data directory, or else bring a valid invite code (then `true`: the join requires and uses
/// the invite, checked atomically as `require_invite` is). FORBIDDEN 2004 without either. A
/// member already there (the owner left the server ownerless) is not asked; `user_id` is
/// `None` for an account about to be registered (checked before its password is hashed).
async fn first_owner_check(
    svc: &Services,
    server: &Server,
    user_id: Option<uuid::Uuid>,
    input: &JoinInput,
) -> CoreResult<bool> {
    let Some(expected) = &svc.settings.setup_token else {
        return Ok(false);
    };
    // The memo may predate the first owner: an ownerless answer is read again.
    if server.admin_user_id.is_some() {
        return Ok(false);
    }
    let now = svc.servers.get(server.id).await?;
    if now.is_none_or(|s| s.admin_user_id.is_some()) {
        return Ok(false);
    }
    if let Some(user_id) = user_id {
        if svc.members.get(server.id, user_id).await?.is_some() {
            return Ok(false);
        }
    }
    let given = input.setup_token.as_deref().unwrap_or("").trim();
    if !given.is_empty() && same_secret(given.as_bytes(), expected.as_bytes()) {
        return Ok(false);
    }
    if input
        .invite_code
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
    {
        return Ok(true);
    }
    Err(CoreError::forbidden(
        EctoCode::InviteInvalid,
        "This server has no owner yet: the first account needs the setup token printed when \
         the server started (also in the file setup_token of its data directory), or an invite",
    ))
}

/// Joins `server` as the bearer of `bearer` (when it proves an identity) or with local
/// credentials.
pub async fn join(
    svc: &Services,
    server: &Server,
    bearer: Option<&str>,
    input: JoinInput,
) -> CoreResult<Joined> {
    let config = super::base::loaders::config(svc, server.id).await?;
    let caller = match bearer {
        Some(token) => authenticate(svc, server, token).await?,
        None => None,
    };
    let mut new_local = None;
    // Whether the first-owner rule asks this join for an invite, when already decided.
    let mut owner_invite = None;
    let (user_id, identity_type) = match (caller, &input.username, &input.password) {
        (
            Some(Caller {
                user_id,
                identity_type,
                ..
            }),
            _,
            _,
        ) => (user_id, identity_type),
        (None, Some(username), Some(password)) => {
            if !local_login_allowed(svc, config.allow_local_accounts) {
                return Err(CoreError::forbidden(
                    EctoCode::LocalAccountsDisabled,
                    "Local accounts are disabled on this server",
                ));
            }
            match input.action {
                JoinAction::Login => (
                    login(svc, server, username, password, input.client).await?,
                    IdentityType::Local,
                ),
                JoinAction::Register => {
                    owner_invite = Some(first_owner_check(svc, server, None, &input).await?);
                    let account = new_account(svc, server, username, password).await?;
                    let id = account.id;
                    new_local = Some(account);
                    (id, IdentityType::Local)
                }
            }
        }
        _ => return Err(CoreError::auth_failed("Authentication required")),
    };

    let owner_invite = match owner_invite {
        Some(decided) => decided,
        None => first_owner_check(svc, server, Some(user_id), &input).await?,
    };
    let require_invite = config.require_invite || owner_invite;
    let plan = JoinPlan {
        server_id: server.id,
        user_id,
        identity_type,
        member_id: new_id(),
        invite_code: input.invite_code.map(|c| c.trim().to_string()),
        require_invite,
        new_account: new_local,
        now: svc.clock.now(),
    };
    let mut joined = false;
    let member = match svc.members.join(plan).await? {
        JoinOutcome::AlreadyMember(m) => m,
        JoinOutcome::Joined {
            member,
            became_owner,
        } => {
            tracing::info!(server_id = %server.id, user_id = %user_id, became_owner, "member joined");
            joined = true;
            member
        }
        JoinOutcome::Banned => {
            return Err(CoreError::forbidden(
                EctoCode::Banned,
                "You are banned from this server",
            ))
        }
        JoinOutcome::InviteRequired => {
            return Err(CoreError::forbidden(
                EctoCode::InviteInvalid,
                "An invite is required to join",
            ))
        }
        JoinOutcome::InviteNotFound => return Err(CoreError::invite_not_found()),
        JoinOutcome::InviteUnusable(problem) => return Err(invite_error(problem)),
        JoinOutcome::UsernameTaken => return Err(CoreError::username_taken()),
    };

    let tokens = issue_pair(svc, &member).await?;
    // The server row may have changed (first joiner became owner): read it again.
    let server = svc
        .servers
        .get(server.id)
        .await?
        .unwrap_or_else(|| server.clone());
    let perms = server_bits(svc, &server, &member).await?;
    let roles = svc.members.role_ids(member.id).await?;
    let profile = svc.accounts.profile(server.id, member.user_id).await?;
    let member_view = MemberView::new(&member, roles, profile);
    if joined {
        super::base::publish::publish(
            svc,
            server.id,
            crate::ports::Scope::Server,
            "member.join",
            &member_view,
        )
        .await;
        announce_join(svc, &server, &config, member.user_id).await?;
    }
    Ok(Joined {
        server_token: tokens.server_token,
        server_refresh_token: tokens.server_refresh_token,
        server: ServerView::new(
            &server,
            &config,
            svc.settings.hosting_mode,
            permissions::has(perms, permissions::bits::MANAGE_SERVER),
        ),
        member: member_view,
    })
}

fn invite_error(problem: InviteProblem) -> CoreError {
    match problem {
        InviteProblem::Revoked => {
            CoreError::forbidden(EctoCode::InviteInvalid, "Invite has been revoked")
        }
        InviteProblem::Expired => {
            CoreError::forbidden(EctoCode::InviteExpired, "Invite has expired")
        }
        InviteProblem::Exhausted => CoreError::forbidden(
            EctoCode::InviteMaxUses,
            "Invite has reached its maximum uses",
        ),
    }
}

async fn login(
    svc: &Services,
    server: &Server,
    username: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
) -> CoreResult<uuid::Uuid> {
    let throttle = LoginThrottle::new(server, username, client);
    throttle.admit(svc).await?;
    let invalid = || CoreError::auth_failed("Invalid username or password");
    let user = svc.accounts.find_local_user(server.id, username).await?;
    let verified = match user {
        Some(user) if svc.hasher.verify(password, &user.password_hash).await? => Some(user.id),
        Some(_) => None,
        None => {
            // Hash anyway so an unknown name takes as long as a wrong password.
            let _ = svc.hasher.hash(password).await?;
            None
        }
    };
    match verified {
        Some(id) => Ok(id),
        None => {
            throttle.failed(svc).await;
            Err(invalid())
        }
    }
}

/// Failed logins slow down per account, without letting anyone lock its owner out:
/// - an address that failed `login_address.capacity` times on an account within the window
///   is refused (429) on that account until the window passes;
/// - attempts from an address that already failed on the account also take from the
///   account's own bucket (`login_account`), which spreads guessing from many addresses
///   thin. An address with no failure on the account (its owner, typing it right) is never
///   held back by what others did.
struct LoginThrottle {
    /// Failures of this address on this account (a counter in the cache).
    address_key: String,
    /// The account's bucket in the rate limiter.
    account_key: String,
}

impl LoginThrottle {
    fn new(server: &Server, username: &str, client: Option<std::net::IpAddr>) -> Self {
        let account = format!("{}:{}", server.id, username.trim().to_lowercase());
        Self {
            address_key: format!(
                "loginfail:{account}:{}",
                super::base::rate_limit::client_key(client)
            ),
            account_key: format!("rl:login:{account}"),
        }
    }

    async fn failures(&self, svc: &Services) -> u32 {
        match svc.cache.get(&self.address_key).await {
            Ok(hit) => hit.and_then(|v| v.parse().ok()).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "login failures unavailable");
                0
            }
        }
    }

    /// TOO_MANY_REQUESTS when this attempt must wait.
    async fn admit(&self, svc: &Services) -> CoreResult<()> {
        let limits = svc.settings.rate_limits;
        let failures = self.failures(svc).await;
        if failures == 0 {
            return Ok(());
        }
        if !limits.login_address.is_off() && failures >= limits.login_address.capacity {
            return Err(CoreError::rate_limited(limits.login_address.per));
        }
        if limits.login_account.is_off() {
            return Ok(());
        }
        match svc
            .rate_limiter
            .check(
                &self.account_key,
                limits.login_account.capacity,
                limits.login_account.per,
            )
            .await
        {
            Ok(crate::ports::RateDecision::Limited { retry_after }) => {
                Err(CoreError::rate_limited(retry_after))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "login limiter unavailable; attempt allowed");
                Ok(())
            }
        }
    }

    /// Counts a failed attempt of this address on this account.
    async fn failed(&self, svc: &Services) {
        let window = svc.settings.rate_limits.login_address.per;
        if window.is_zero() {
            return;
        }
        let count = self.failures(svc).await.saturating_add(1);
        if let Err(e) = svc
            .cache
            .set(&self.address_key, &count.to_string(), window)
            .await
        {
            tracing::warn!(error = %e, "login failure not counted");
        }
    }
}

/// Validates and hashes a new local account; the join's transaction stores it.
async fn new_account(
    svc: &Services,
    server: &Server,
    username: &str,
    password: &str,
) -> CoreResult<NewLocalUser> {
    let username = Username::parse(username)?;
    crate::passwords::check_not_common(password)?;
    if svc
        .accounts
        .find_local_user(server.id, username.as_str())
        .await?
        .is_some()
    {
        // Checked again inside the transaction; this only spares a hash.
        return Err(CoreError::username_taken());
    }
    Ok(NewLocalUser {
        id: new_id(),
        server_id: server.id,
        username: username.as_str().to_string(),
        password_hash: svc.hasher.hash(password).await?,
        now: svc.clock.now(),
    })
}

/// The MEMBER_JOIN system message in the default channel, when the server shows system
/// messages and has a default channel.
async fn announce_join(
    svc: &Services,
    server: &Server,
    config: &crate::model::ServerConfig,
    user_id: uuid::Uuid,
) -> CoreResult<()> {
    let Some(channel_id) = server
        .default_channel_id
        .filter(|_| config.show_system_messages)
    else {
        return Ok(());
    };
    if svc
        .structure
        .channel(server.id, channel_id)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let record = crate::model::MessageRecord {
        id: new_id(),
        server_id: server.id,
        channel_id,
        author_id: user_id,
        content: None,
        kind: crate::model::kind::MEMBER_JOIN,
        reply_to: None,
        pinned: false,
        deleted: false,
        mention_everyone: false,
        mention_roles: Vec::new(),
        mention_users: Vec::new(),
        webhook_id: None,
        webhook_name: None,
        webhook_avatar_url: None,
        edited_at: None,
        created_at: svc.clock.now(),
    };
    if svc
        .messages
        .insert(record.clone(), Vec::new(), Vec::new())
        .await?
        .is_ok()
    {
        let view = super::base::views::messages(svc, server.id, vec![record], user_id).await?;
        if let Some(view) = view.first() {
            super::base::publish::publish(
                svc,
                server.id,
                crate::ports::Scope::Channel(channel_id),
                "message.create",
                view,
            )
            .await;
        }
    }
    Ok(())
}
