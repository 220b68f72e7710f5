//! `server.info`.

use super::base::access::{readable_channels, server_bits};
use super::base::identity::Caller;
use crate::model::{Server, ServerView};
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

/// `server.info`: public; the config-only keys appear only for a caller who may manage it.
pub async fn info(
    svc: &Services,
    server: &Server,
    caller: Option<&Caller>,
) -> CoreResult<ServerInfo> {
    let config = super::base::loaders::config(svc, server.id).await?;
    let manager = match caller.and_then(|c| c.member.as_ref()) {
        Some(m) => permissions::has(
            server_bits(svc, server, m).await?,
            permissions::bits::MANAGE_SERVER,
        ),
        None => false,
    };
    Ok(ServerInfo {
        server: ServerView::new(server, &config, svc.settings.hosting_mode, manager),
        member_count: svc.servers.member_count(server.id).await?,
        online_count: svc.presence.snapshot(server.id).await?.count() as i64,
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
