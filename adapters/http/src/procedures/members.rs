//! The `members` router (identity part: changePassword, revokeSessions).

use crate::trpc::{Access, Registry};
use crate::validate::{
    double_option, ids, invalid, length, opt_length, range, url, Id, Optional, Validate,
};
use crate::ApiError;
use ecto_core::usecases::account;
use ecto_core::usecases::members_admin::{self, DeleteWindow, MemberQuery, ProfileSync};
use ecto_core::usecases::voice;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

impl Validate for ChangePassword {
    fn validate(&self) -> Result<(), ApiError> {
        length("current_password", &self.current_password, 1, 128)?;
        length("new_password", &self.new_password, 8, 128)
    }
}

#[derive(Deserialize)]
struct VoiceMute {
    user_id: Id,
    server_mute: Option<bool>,
    server_deaf: Option<bool>,
}
impl Validate for VoiceMute {}

#[derive(Deserialize, Default)]
struct RevokeSessions {
    user_id: Option<Id>,
}
impl Validate for RevokeSessions {}

#[derive(Deserialize, Default)]
struct ListMembers {
    limit: Option<i64>,
    after: Option<Id>,
    role_id: Option<Id>,
    search: Option<String>,
    channel_id: Option<Id>,
}
impl Validate for ListMembers {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(l) = self.limit {
            range("limit", l, 1, 100)?;
        }
        opt_length("search", self.search.as_deref(), 0, 100)
    }
}

#[derive(Deserialize)]
struct Kick {
    user_id: Id,
    reason: Option<String>,
}
impl Validate for Kick {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("reason", self.reason.as_deref(), 0, 500)
    }
}

#[derive(Deserialize)]
struct Ban {
    user_id: Id,
    reason: Option<String>,
    delete_messages: Option<String>,
}
impl Validate for Ban {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("reason", self.reason.as_deref(), 0, 500)?;
        match self.delete_messages.as_deref() {
            None | Some("1h") | Some("24h") | Some("7d") => Ok(()),
            Some(_) => Err(invalid(
                "Invalid input: `delete_messages` must be '1h', '24h' or '7d'",
            )),
        }
    }
}

#[derive(Deserialize)]
struct UserId {
    user_id: Id,
}
impl Validate for UserId {}

#[derive(Deserialize)]
struct UpdateRoles {
    user_id: Id,
    role_ids: Vec<Id>,
}
impl Validate for UpdateRoles {
    fn validate(&self) -> Result<(), ApiError> {
        range("role_ids.length", self.role_ids.len(), 0, 250)
    }
}

#[derive(Deserialize)]
struct UpdateNickname {
    user_id: Id,
    #[serde(default, deserialize_with = "double_option")]
    nickname: Option<Option<String>>,
}
impl Validate for UpdateNickname {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length(
            "nickname",
            self.nickname.clone().flatten().as_deref(),
            0,
            64,
        )
    }
}

#[derive(Deserialize)]
struct DmPreference {
    allow_dms: bool,
}
impl Validate for DmPreference {}

#[derive(Deserialize, Default)]
struct SyncProfile {
    display_name: Option<String>,
    avatar_url: Option<String>,
    username: Option<String>,
    discriminator: Option<String>,
}
impl Validate for SyncProfile {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("display_name", self.display_name.as_deref(), 0, 64)?;
        url("avatar_url", self.avatar_url.as_deref(), 512)?;
        opt_length("username", self.username.as_deref(), 1, 32)?;
        opt_length("discriminator", self.discriminator.as_deref(), 1, 4)
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "members.list",
        Access::Protected,
        |ctx, Optional(w): Optional<ListMembers>| async move {
            let q = MemberQuery {
                limit: w.limit.unwrap_or(50),
                after: w.after.map(Uuid::from),
                role_id: w.role_id.map(Uuid::from),
                search: w.search.filter(|s| !s.is_empty()),
                channel_id: w.channel_id.map(Uuid::from),
            };
            members_admin::list(&ctx.svc, &ctx.server, ctx.caller(), q).await
        },
    );
    r.mutation(
        "members.kick",
        Access::Protected,
        |ctx, w: Kick| async move {
            members_admin::kick(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.user_id.into(),
                w.reason,
            )
            .await
        },
    );
    r.mutation("members.ban", Access::Protected, |ctx, w: Ban| async move {
        let window = match w.delete_messages.as_deref() {
            Some("1h") => Some(DeleteWindow::Hour),
            Some("24h") => Some(DeleteWindow::Day),
            Some("7d") => Some(DeleteWindow::Week),
            _ => None,
        };
        members_admin::ban(
            &ctx.svc,
            &ctx.server,
            ctx.caller(),
            w.user_id.into(),
            w.reason,
            window,
        )
        .await
    });
    r.mutation(
        "members.unban",
        Access::Protected,
        |ctx, w: UserId| async move {
            members_admin::unban(&ctx.svc, &ctx.server, ctx.caller(), w.user_id.into()).await
        },
    );
    r.mutation(
        "members.updateRoles",
        Access::Protected,
        |ctx, w: UpdateRoles| async move {
            members_admin::update_roles(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.user_id.into(),
                ids(w.role_ids),
            )
            .await
        },
    );
    r.mutation(
        "members.updateNickname",
        Access::Protected,
        |ctx, w: UpdateNickname| async move {
            members_admin::update_nickname(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.user_id.into(),
                w.nickname.flatten(),
            )
            .await
        },
    );
    r.mutation(
        "members.voiceMute",
        Access::Protected,
        |ctx, w: VoiceMute| async move {
            voice::server_mute(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.user_id.into(),
                w.server_mute,
                w.server_deaf,
            )
            .await
        },
    );
    r.mutation(
        "members.updateDmPreference",
        Access::Protected,
        |ctx, w: DmPreference| async move {
            members_admin::update_dm_preference(&ctx.svc, &ctx.server, ctx.caller(), w.allow_dms)
                .await
        },
    );
    r.mutation(
        "members.syncProfile",
        Access::Protected,
        |ctx, Optional(w): Optional<SyncProfile>| async move {
            let p = ProfileSync {
                display_name: w.display_name,
                avatar_url: w.avatar_url,
                username: w.username,
                discriminator: w.discriminator,
            };
            members_admin::sync_profile(&ctx.svc, &ctx.server, ctx.caller(), p).await
        },
    );
    r.mutation(
        "members.changePassword",
        Access::Protected,
        |ctx, w: ChangePassword| async move {
            account::change_password(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                &w.current_password,
                &w.new_password,
            )
            .await
        },
    );
    r.mutation(
        "members.revokeSessions",
        Access::Protected,
        |ctx, Optional(w): Optional<RevokeSessions>| async move {
            account::revoke_sessions(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.user_id.map(Uuid::from),
            )
            .await
        },
    );
}
