//! `search.search`: full-text search limited to channels the caller can read and the caller's
//! own DMs, never another server's (DECISIONS §3.5).

use super::base::access::Perms;
use super::base::identity::Caller;
use super::base::views::{self, MessagePage};
use crate::model::Server;
use crate::permissions::bits;
use crate::ports::SearchQuery;
use crate::{CoreError, CoreResult, Services};
use uuid::Uuid;

/// Input of `search.search`.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: String,
    pub channel_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
    pub before: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: i64,
    pub has_attachment: bool,
    pub has_link: bool,
}

/// Runs a search; a named channel must exist here (3000) and be readable (5001).
pub async fn search(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: Search,
) -> CoreResult<MessagePage> {
    let perms = Perms::load(svc, server, caller).await?;
    let channels = svc.structure.channels(server.id).await?;
    if let Some(id) = input.channel_id {
        let channel = channels
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(CoreError::channel_not_found)?;
        perms.require_in(channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    }
    let readable = channels
        .iter()
        .filter(|c| perms.reads(c))
        .map(|c| c.id)
        .collect();
    let ids = svc
        .search
        .search(SearchQuery {
            server_id: server.id,
            text: input.query,
            readable_channels: readable,
            user_id: caller.user_id,
            channel_id: input.channel_id,
            author_id: input.author_id,
            before: input.before,
            after: input.after,
            has_attachment: input.has_attachment,
            has_link: input.has_link,
            limit: input.limit + 1,
        })
        .await?;
    let has_more = ids.len() as i64 > input.limit;
    let mut records = Vec::new();
    for id in ids.into_iter().take(input.limit as usize) {
        if let Some(m) = svc.messages.get(server.id, id).await? {
            records.push(m);
        }
    }
    Ok(MessagePage {
        messages: views::messages(svc, server.id, records, caller.user_id).await?,
        has_more,
    })
}
