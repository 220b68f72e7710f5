//! The `pages` router: the content of page channels, versioned, with its revisions.

use super::base::access::channel_and_perms;
use super::base::identity::Caller;
use super::base::publish::publish;
use crate::model::{Channel, ChannelType, PageContent, PageRevision, Server};
use crate::permissions::bits;
use crate::ports::{PageEdit, PageUpdate, Scope};
use crate::{new_id, CoreError, CoreResult, EctoCode, ErrorKind, Services};
use serde::Serialize;
use uuid::Uuid;

/// BAD_REQUEST 3002 for a channel that is not a page channel.
fn not_a_page() -> CoreError {
    CoreError::ecto(
        ErrorKind::BadRequest,
        EctoCode::ChannelTypeInvalid,
        "Channel is not a page channel",
    )
}

/// A page channel of the server the caller may edit (3000, 3002, 5001).
async fn editable(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<Channel> {
    let (channel, perms) = channel_and_perms(svc, server, caller, channel_id).await?;
    if channel.channel_type != ChannelType::Page {
        return Err(not_a_page());
    }
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    perms.require_in(&channel, bits::EDIT_PAGES, "EDIT_PAGES")?;
    Ok(channel)
}

/// `pages.getContent` (READ_MESSAGES in the channel): a page channel's content, created empty
/// when it has none yet; any other channel type is NOT_FOUND 3000.
pub async fn get_content(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<PageContent> {
    let (channel, perms) = channel_and_perms(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    if channel.channel_type != ChannelType::Page {
        return Err(CoreError::page_content_not_found());
    }
    svc.content
        .ensure_page(server.id, channel.id, svc.clock.now())
        .await?
        .ok_or_else(CoreError::page_content_not_found)
}

/// `pages.updateContent` (EDIT_PAGES in the channel): applies only to the version the editor
/// read (CONFLICT 3003 otherwise); the replaced content becomes a revision.
pub async fn update_content(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    content: String,
    version: i32,
) -> CoreResult<PageContent> {
    let channel = editable(svc, server, caller, channel_id).await?;
    let now = svc.clock.now();
    // A page channel created before pages existed gets its empty page first.
    svc.content.ensure_page(server.id, channel.id, now).await?;
    let edit = PageEdit {
        server_id: server.id,
        channel_id: channel.id,
        expected_version: version,
        content,
        editor: caller.user_id,
        revision_id: new_id(),
        at: now,
    };
    let page = match svc.content.update_page(edit).await? {
        PageUpdate::Updated(page) => page,
        PageUpdate::Conflict { current } => {
            return Err(CoreError::ecto(
                ErrorKind::Conflict,
                EctoCode::PageVersionConflict,
                format!(
                    "Page was edited by someone else: it is at version {current}, not {version}"
                ),
            ))
        }
        PageUpdate::Missing => return Err(CoreError::page_content_not_found()),
    };
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "page.update",
        &page,
    )
    .await;
    Ok(page)
}

/// What `pages.updateBanner` returns.
#[derive(Debug, Clone, Serialize)]
pub struct BannerView {
    pub banner_url: Option<String>,
}

/// Sets a page's banner and publishes `page.update`; shared by `pages.updateBanner` and the
/// page-banner upload, which check the caller first.
pub async fn set_banner(
    svc: &Services,
    server: &Server,
    channel_id: Uuid,
    banner_url: Option<String>,
) -> CoreResult<PageContent> {
    svc.content
        .ensure_page(server.id, channel_id, svc.clock.now())
        .await?;
    let page = svc
        .content
        .set_page_banner(server.id, channel_id, banner_url)
        .await?
        .ok_or_else(CoreError::page_content_not_found)?;
    publish(
        svc,
        server.id,
        Scope::Channel(channel_id),
        "page.update",
        &page,
    )
    .await;
    Ok(page)
}

/// `pages.updateBanner` (EDIT_PAGES in the channel).
pub async fn update_banner(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    banner_url: Option<String>,
) -> CoreResult<BannerView> {
    let channel = editable(svc, server, caller, channel_id).await?;
    let page = set_banner(svc, server, channel.id, banner_url).await?;
    Ok(BannerView {
        banner_url: page.banner_url,
    })
}

/// Checks that the caller may change the banner of a page channel (for the banner upload).
pub async fn require_editor(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<()> {
    editable(svc, server, caller, channel_id).await.map(|_| ())
}

/// What `pages.getHistory` returns.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPage {
    pub revisions: Vec<PageRevision>,
    pub has_more: bool,
}

/// `pages.getHistory` (READ_MESSAGES in the channel): revisions newest first, ids below
/// `cursor`.
pub async fn history(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    cursor: Option<Uuid>,
    limit: i64,
) -> CoreResult<HistoryPage> {
    let (channel, perms) = channel_and_perms(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    if channel.channel_type != ChannelType::Page {
        return Err(not_a_page());
    }
    let mut revisions = svc
        .content
        .page_revisions(server.id, channel.id, cursor, limit + 1)
        .await?;
    let has_more = revisions.len() as i64 > limit;
    revisions.truncate(limit as usize);
    Ok(HistoryPage {
        revisions,
        has_more,
    })
}
