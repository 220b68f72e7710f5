//! Server administration: the `invites` and `serverConfig` routers, and `server.update`,
//! `server.uploadIcon`, `server.transferOwnership`, `server.delete`.

use crate::trpc::{Access, Registry};
use crate::validate::{
    double_option, invalid, length, opt_length, range, url, Id, NoInput, Optional, Validate,
};
use crate::ApiError;
use ecto_core::model::{ConfigPatch, ServerPatch};
use ecto_core::usecases::invites::CreateInvite;
use ecto_core::usecases::{invites, server_admin, server_config};
use serde::Deserialize;
use uuid::Uuid;

/// The longest `expires_in` accepted: ten years, in milliseconds.
const MAX_EXPIRES_IN_MS: i64 = 10 * 365 * 24 * 60 * 60 * 1000;

#[derive(Deserialize, Default)]
struct CreateInviteWire {
    max_uses: Option<i64>,
    expires_in: Option<i64>,
}
impl Validate for CreateInviteWire {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(n) = self.max_uses {
            range("max_uses", n, 1, i64::from(i32::MAX))?;
        }
        if let Some(ms) = self.expires_in {
            range("expires_in", ms, 60_000, MAX_EXPIRES_IN_MS)?;
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
struct ListInvites {
    limit: Option<i64>,
    after: Option<Id>,
}
impl Validate for ListInvites {
    fn validate(&self) -> Result<(), ApiError> {
        match self.limit {
            Some(l) => range("limit", l, 1, 100),
            None => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct InviteId {
    invite_id: Id,
}
impl Validate for InviteId {}

#[derive(Deserialize, Default)]
struct ConfigUpdate {
    max_upload_size_bytes: Option<i64>,
    max_shared_storage_bytes: Option<i64>,
    allow_local_accounts: Option<bool>,
    require_invite: Option<bool>,
    allow_member_dms: Option<bool>,
    show_system_messages: Option<bool>,
    discoverable: Option<bool>,
    tags: Option<Vec<String>>,
}
impl Validate for ConfigUpdate {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(n) = self.max_upload_size_bytes {
            range("max_upload_size_bytes", n, 0, i64::from(i32::MAX))?;
        }
        if let Some(n) = self.max_shared_storage_bytes {
            range("max_shared_storage_bytes", n, 0, i64::MAX)?;
        }
        if let Some(tags) = &self.tags {
            if tags.len() > 10 {
                return Err(invalid(
                    "Invalid input: `tags` must have at most 10 entries",
                ));
            }
            tags.iter().try_for_each(|t| length("tags", t, 0, 30))?;
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
struct ServerUpdate {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    icon_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    banner_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    default_channel_id: Option<Option<Id>>,
}
impl Validate for ServerUpdate {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("name", self.name.as_deref(), 1, 100)?;
        opt_length(
            "description",
            self.description.clone().flatten().as_deref(),
            0,
            1024,
        )?;
        url("icon_url", self.icon_url.clone().flatten().as_deref(), 512)?;
        url(
            "banner_url",
            self.banner_url.clone().flatten().as_deref(),
            512,
        )
    }
}

#[derive(Deserialize)]
struct UploadIcon {
    icon_url: String,
}
impl Validate for UploadIcon {
    fn validate(&self) -> Result<(), ApiError> {
        url("icon_url", Some(&self.icon_url), 512)
    }
}

#[derive(Deserialize)]
struct TransferOwnership {
    new_owner_id: Id,
    confirmation: String,
}
impl Validate for TransferOwnership {}

#[derive(Deserialize)]
struct Confirmation {
    confirmation: String,
}
impl Validate for Confirmation {}

pub fn register(r: &mut Registry) {
    r.mutation(
        "invites.create",
        Access::Protected,
        |ctx, Optional(w): Optional<CreateInviteWire>| async move {
            let input = CreateInvite {
                max_uses: w.max_uses.and_then(|n| i32::try_from(n).ok()),
                expires_in_ms: w.expires_in,
            };
            invites::create(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.query(
        "invites.list",
        Access::Protected,
        |ctx, Optional(w): Optional<ListInvites>| async move {
            let limit = w.limit.unwrap_or(50);
            invites::list(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.after.map(Uuid::from),
                limit,
            )
            .await
        },
    );
    r.mutation(
        "invites.revoke",
        Access::Protected,
        |ctx, w: InviteId| async move {
            invites::revoke(&ctx.svc, &ctx.server, ctx.caller(), w.invite_id.into()).await
        },
    );
    r.query(
        "serverConfig.get",
        Access::Protected,
        |ctx, _: NoInput| async move {
            server_config::get(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
    r.mutation(
        "serverConfig.update",
        Access::Protected,
        |ctx, Optional(w): Optional<ConfigUpdate>| async move {
            let patch = ConfigPatch {
                max_upload_size_bytes: w.max_upload_size_bytes.and_then(|n| i32::try_from(n).ok()),
                max_shared_storage_bytes: w.max_shared_storage_bytes,
                allow_local_accounts: w.allow_local_accounts,
                require_invite: w.require_invite,
                allow_member_dms: w.allow_member_dms,
                show_system_messages: w.show_system_messages,
                discoverable: w.discoverable,
                tags: w.tags,
                setup_completed: None,
            };
            server_config::update(&ctx.svc, &ctx.server, ctx.caller(), patch).await
        },
    );
    r.mutation(
        "serverConfig.completeSetup",
        Access::Protected,
        |ctx, _: NoInput| async move {
            server_config::complete_setup(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
    r.mutation(
        "server.update",
        Access::Protected,
        |ctx, Optional(w): Optional<ServerUpdate>| async move {
            let patch = ServerPatch {
                name: w.name,
                description: w.description,
                icon_url: w.icon_url,
                banner_url: w.banner_url,
                default_channel_id: w.default_channel_id.map(|o| o.map(Uuid::from)),
            };
            server_admin::update(&ctx.svc, &ctx.server, ctx.caller(), patch).await
        },
    );
    r.mutation(
        "server.uploadIcon",
        Access::Protected,
        |ctx, w: UploadIcon| async move {
            server_admin::upload_icon(&ctx.svc, &ctx.server, ctx.caller(), w.icon_url).await
        },
    );
    r.mutation(
        "server.transferOwnership",
        Access::Protected,
        |ctx, w: TransferOwnership| async move {
            server_admin::transfer_ownership(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.new_owner_id.into(),
                &w.confirmation,
            )
            .await
        },
    );
    r.mutation(
        "server.delete",
        Access::Protected,
        |ctx, w: Confirmation| async move {
            server_admin::delete(&ctx.svc, &ctx.server, ctx.caller(), &w.confirmation).await
        },
    );
}
