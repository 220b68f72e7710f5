//! `server.info` and the server-level permission bits it (and others) need.

use super::base::identity::Caller;
use crate::model::{Member, Server, ServerView};
use crate::{permissions, CoreResult, Services};
use serde::Serialize;

/// What `server.info` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub server: ServerView,
    pub member_count: i64,
    /// Members of this server with a visible presence (DECISIONS §3.3).
    pub online_count: i64,
    pub require_invite: bool,
    pub allow_local_accounts: bool,
    /// Only for members: the channels they can read, each with its real `my_permissions`
    /// (DECISIONS §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<crate::model::Channel>>,
}

/// Server-level effective bits of `member`: the owner and ADMINISTRATOR get every bit.
pub async fn server_permissions(
    svc: &Services,
    server: &Server,
    member: &Member,
) -> CoreResult<u64> {
    if server.admin_user_id == Some(member.user_id) {
        return Ok(permissions::ALL);
    }
    let base = svc.members.base_permissions(server.id, member.id).await?;
    Ok(
        if permissions::has(base, permissions::bits::ADMINISTRATOR) {
            permissions::ALL
        } else {
            base
        },
    )
}

/// `server.info`: public; the config-only keys appear only for a caller who may manage it.
pub async fn info(
    svc: &Services,
    server: &Server,
    caller: Option<&Caller>,
) -> CoreResult<ServerInfo> {
    let config = super::base::loaders::config(svc, server.id).await?;
    let manager = match caller.and_then(|c| c.member.as_ref()) {
        Some(m) => permissions::has(
            server_permissions(svc, server, m).await?,
            permissions::bits::MANAGE_SERVER,
        ),
        None => false,
    };
    Ok(ServerInfo {
        server: ServerView::new(server, &config, svc.settings.hosting_mode, manager),
        member_count: svc.servers.member_count(server.id).await?,
        online_count: super::gateway::visible_presences(svc, server.id)
            .await?
            .len() as i64,
        require_invite: config.require_invite,
        allow_local_accounts: config.allow_local_accounts
            && (svc.settings.hosting_mode == crate::HostingMode::SelfHosted
                || svc.settings.allow_local_accounts),
        channels: match caller.filter(|c| c.member.is_some()) {
            Some(c) => Some(readable_channels(svc, server, c).await?),
            None => None,
        },
    })
}

/// The channels `caller` can read, each with its effective bits.
pub async fn readable_channels(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<Vec<crate::model::Channel>> {
    let perms = super::perms::Perms::load(svc, server, caller).await?;
    Ok(super::base::loaders::channels(svc, server.id)
        .await?
        .iter()
        .filter_map(|ch| {
            let bits = perms.channel(ch);
            permissions::has(bits, permissions::bits::READ_MESSAGES).then(|| {
                let mut ch = ch.clone();
                ch.my_permissions = Some(bits);
                ch
            })
        })
        .collect())
}
