//! The `members` router's listing and moderation, and `bans.list`.

use super::base::access::{member_reads, target, Perms};
use super::base::identity::Caller;
use super::base::lookup;
use super::base::publish::{entry, publish, success};
use crate::model::{BanView, CachedProfile, IdentityType, MemberView, Server};
use crate::permissions::bits;
use crate::ports::{NewBan, Scope};
use crate::{new_id, CoreError, CoreResult, EctoCode, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// Filters of `members.list`.
#[derive(Debug, Clone, Default)]
pub struct MemberQuery {
    pub limit: i64,
    pub after: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub search: Option<String>,
    pub channel_id: Option<Uuid>,
}

/// What `members.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct MemberPage {
    pub members: Vec<MemberView>,
    pub total: i64,
    pub has_more: bool,
}

/// `members.list` (any member): pages by member id, newest first; `role_id`, `search`
/// (username or nickname, case-insensitive) and `channel_id` (who can read it) filter.
pub async fn list(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    q: MemberQuery,
) -> CoreResult<MemberPage> {
    let perms = Perms::load(svc, server, caller).await?;
    let channel = match q.channel_id {
        Some(id) => Some(lookup::channel(svc, server.id, id).await?),
        None => None,
    };
    let filtering = q.role_id.is_some() || q.search.is_some() || channel.is_some();
    let needle = q.search.as_ref().map(|s| s.to_lowercase());
    let mut out: Vec<MemberView> = Vec::new();
    let mut readers = 0i64;
    let mut after = q.after;
    let mut has_more = false;
    // Filters apply before paging, so a page is full whenever enough members match. With a
    // channel filter the whole list is read, because `total` counts the channel's readers.
    loop {
        let batch_size = if filtering { 500 } else { q.limit + 1 };
        let batch = svc
            .moderation
            .list_members(server.id, after, batch_size)
            .await?;
        let exhausted = (batch.len() as i64) < batch_size;
        after = batch.last().map(|m| m.id);
        for view in svc.moderation.member_views(server.id, &batch).await? {
            if let Some(ch) = &channel {
                if !member_reads(server, &perms, &view, ch) {
                    continue;
                }
                readers += 1;
            }
            if !matches(&view, q.role_id, needle.as_deref()) {
                continue;
            }
            if out.len() as i64 == q.limit {
                has_more = true;
                if channel.is_none() {
                    break;
                }
                continue;
            }
            out.push(view);
        }
        if exhausted || (has_more && channel.is_none()) {
            break;
        }
    }
    let total = match channel {
        Some(_) => readers,
        None => svc.servers.member_count(server.id).await?,
    };
    Ok(MemberPage {
        members: out,
        total,
        has_more,
    })
}

fn matches(view: &MemberView, role: Option<Uuid>, needle: Option<&str>) -> bool {
    if role.is_some_and(|r| !view.roles.contains(&r)) {
        return false;
    }
    match needle {
        Some(n) => {
            view.username.to_lowercase().contains(n)
                || view
                    .nickname
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(n)
        }
        None => true,
    }
}

async fn announce_departure(svc: &Services, server: &Server, user_id: Uuid) {
    publish(
        svc,
        server.id,
        Scope::Server,
        "member.leave",
        &json!({ "user_id": user_id }),
    )
    .await;
    let offline = json!({ "user_id": user_id, "status": "offline", "custom_text": null, "last_active_at": svc.clock.now() });
    publish(svc, server.id, Scope::Server, "presence.update", &offline).await;
}

/// `members.kick` (KICK_MEMBERS + hierarchy).
pub async fn kick(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    user_id: Uuid,
    reason: Option<String>,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::KICK_MEMBERS, "KICK_MEMBERS")?;
    let (_, top) = target(svc, server, &perms, user_id).await?;
    perms.check_hierarchy(server, user_id, top)?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "member.kick",
        Some(("member", user_id)),
        Some(json!({ "reason": reason })),
    );
    if !svc.members.remove(server.id, user_id, Some(audit)).await? {
        return Err(CoreError::target_not_a_member());
    }
    announce_departure(svc, server, user_id).await;
    super::base::publish::close_sessions(
        svc,
        server.id,
        Some(user_id),
        super::base::publish::close::NOT_AUTHENTICATED,
        "Kicked",
    )
    .await;
    Ok(success())
}

/// How far back `members.ban` deletes the user's messages.
#[derive(Debug, Clone, Copy)]
pub enum DeleteWindow {
    Hour,
    Day,
    Week,
}

/// `members.ban` (BAN_MEMBERS + hierarchy when the target is a member). Works for non-members
/// too, so someone can be banned before they join.
pub async fn ban(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    user_id: Uuid,
    reason: Option<String>,
    window: Option<DeleteWindow>,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BAN_MEMBERS, "BAN_MEMBERS")?;
    if user_id == caller.user_id {
        return Err(CoreError::bad_request("You cannot ban yourself"));
    }
    let was_member = match target(svc, server, &perms, user_id).await {
        Ok((_, top)) => {
            perms.check_hierarchy(server, user_id, top)?;
            true
        }
        Err(_) if server.admin_user_id != Some(user_id) => false,
        Err(e) => return Err(e),
    };
    let now = svc.clock.now();
    let since = window.map(|w| {
        now - match w {
            DeleteWindow::Hour => chrono::Duration::hours(1),
            DeleteWindow::Day => chrono::Duration::hours(24),
            DeleteWindow::Week => chrono::Duration::days(7),
        }
    });
    let audit = entry(
        svc,
        server.id,
        caller,
        "member.ban",
        Some(("member", user_id)),
        Some(json!({ "reason": reason })),
    );
    let record = NewBan {
        id: new_id(),
        user_id,
        banned_by: caller.user_id,
        reason,
        created_at: now,
    };
    svc.moderation.ban(server.id, record, since, audit).await?;
    if was_member {
        announce_departure(svc, server, user_id).await;
        super::base::publish::close_sessions(
            svc,
            server.id,
            Some(user_id),
            super::base::publish::close::NOT_AUTHENTICATED,
            "Banned",
        )
        .await;
    }
    Ok(success())
}

/// `members.unban` (BAN_MEMBERS).
pub async fn unban(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    user_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BAN_MEMBERS, "BAN_MEMBERS")?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "member.unban",
        Some(("member", user_id)),
        None,
    );
    if !svc.moderation.unban(server.id, user_id, audit).await? {
        return Err(CoreError::ban_not_found());
    }
    Ok(success())
}

/// `bans.list` (BAN_MEMBERS).
pub async fn bans(svc: &Services, server: &Server, caller: &Caller) -> CoreResult<Vec<BanView>> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BAN_MEMBERS, "BAN_MEMBERS")?;
    svc.moderation.bans(server.id).await
}

async fn view(svc: &Services, server: &Server, user_id: Uuid) -> CoreResult<MemberView> {
    let member = svc
        .members
        .get(server.id, user_id)
        .await?
        .ok_or_else(CoreError::target_not_a_member)?;
    let mut views = svc.moderation.member_views(server.id, &[member]).await?;
    views.pop().ok_or_else(CoreError::target_not_a_member)
}

/// `members.updateRoles` (MANAGE_ROLES + hierarchy on the target and on every role added or
/// removed, whose bits must be ones the caller holds). @everyone is always kept.
pub async fn update_roles(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    user_id: Uuid,
    role_ids: Vec<Uuid>,
) -> CoreResult<MemberView> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_ROLES, "MANAGE_ROLES")?;
    let (member, top) = target(svc, server, &perms, user_id).await?;
    if user_id != caller.user_id {
        perms.check_hierarchy(server, user_id, top)?;
    }
    let everyone = perms
        .data
        .everyone()
        .map(|r| r.id)
        .ok_or_else(|| CoreError::internal_msg("no @everyone role"))?;
    let current = svc.members.role_ids(member.id).await?;
    let mut wanted = vec![everyone];
    for id in role_ids {
        if !wanted.contains(&id) {
            wanted.push(id);
        }
    }
    for id in wanted.iter().chain(current.iter()) {
        let role = perms
            .data
            .roles
            .iter()
            .find(|r| r.id == *id)
            .ok_or_else(CoreError::role_not_found)?;
        let changed = wanted.contains(id) != current.contains(id);
        if changed && !perms.outranks_position(role.position) {
            return Err(CoreError::role_hierarchy());
        }
        // Assigning a role grants its bits: only bits the caller holds (owner and
        // administrators excepted), as for roles.create/update.
        if changed {
            perms.may_grant(role.permissions)?;
        }
    }
    let audit = entry(
        svc,
        server.id,
        caller,
        "member.roles_update",
        Some(("member", user_id)),
        Some(json!({ "role_ids": wanted })),
    );
    svc.roles
        .set_member_roles(server.id, member.id, wanted, audit)
        .await?;
    let view = view(svc, server, user_id).await?;
    publish(svc, server.id, Scope::Server, "member.update", &view).await;
    Ok(view)
}

/// `members.updateNickname`: one's own, or anyone's below you with MANAGE_ROLES.
pub async fn update_nickname(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    user_id: Uuid,
    nickname: Option<String>,
) -> CoreResult<MemberView> {
    let perms = Perms::load(svc, server, caller).await?;
    if user_id != caller.user_id {
        perms.require(bits::MANAGE_ROLES, "MANAGE_ROLES")?;
        let (_, top) = target(svc, server, &perms, user_id).await?;
        perms.check_hierarchy(server, user_id, top)?;
    }
    let nickname = shown_name(svc, server, user_id, nickname).await?;
    if !svc
        .moderation
        .set_nickname(server.id, user_id, nickname)
        .await?
    {
        return Err(CoreError::target_not_a_member());
    }
    let view = view(svc, server, user_id).await?;
    publish(svc, server.id, Scope::Server, "member.update", &view).await;
    Ok(view)
}

/// A nickname or display name as it may be shown: hidden and reordering characters removed
/// (`None` when nothing is left), and never another member's username (case-insensitively):
/// CONFLICT 1002 for a name that would pose as someone else.
async fn shown_name(
    svc: &Services,
    server: &Server,
    user_id: Uuid,
    name: Option<String>,
) -> CoreResult<Option<String>> {
    let Some(name) = name
        .map(|n| crate::display_name::clean(&n))
        .filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    let holder = svc
        .moderation
        .member_with_username(server.id, &name.to_lowercase())
        .await?;
    if holder.is_some_and(|holder| holder != user_id) {
        return Err(CoreError::ecto(
            crate::ErrorKind::Conflict,
            EctoCode::UsernameTaken,
            "That name is another member's username",
        ));
    }
    Ok(Some(name))
}

/// `members.updateDmPreference`.
pub async fn update_dm_preference(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    allow: bool,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    svc.moderation
        .set_allow_dms(server.id, caller.user_id, allow)
        .await?;
    Ok(success())
}

/// Input of `members.syncProfile`.
#[derive(Debug, Clone, Default)]
pub struct ProfileSync {
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub username: Option<String>,
    pub discriminator: Option<String>,
}

/// `members.syncProfile`: a global user refreshes their cached central profile; a local user
/// sets their display name and avatar (a local username is not changed this way).
pub async fn sync_profile(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    mut p: ProfileSync,
) -> CoreResult<serde_json::Value> {
    p.display_name = shown_name(svc, server, caller.user_id, p.display_name).await?;
    match caller.identity_type {
        IdentityType::Global => {
            svc.accounts
                .upsert_cached_profile(CachedProfile {
                    user_id: caller.user_id,
                    username: p.username.unwrap_or_else(|| "Unknown".into()),
                    discriminator: p.discriminator.unwrap_or_else(|| "0000".into()),
                    display_name: p.display_name,
                    avatar_url: p.avatar_url,
                    fetched_at: svc.clock.now(),
                })
                .await?;
        }
        IdentityType::Local => {
            svc.moderation
                .set_local_profile(server.id, caller.user_id, p.display_name, p.avatar_url)
                .await?;
        }
    }
    if caller.member.is_some() {
        let view = view(svc, server, caller.user_id).await?;
        publish(svc, server.id, Scope::Server, "member.update", &view).await;
    }
    Ok(success())
}
