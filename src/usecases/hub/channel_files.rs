//! The server's channel files as the hub shows them: `hubFiles.listChannelFiles`,
//! `deleteChannelFile` and `channelFileStats`.

use super::delete_blobs;
use crate::model::{ChannelFileStat, ChannelFileView, ChannelType, Server};
use crate::permissions::bits;
use crate::ports::Scope;
use crate::usecases::base::access::Perms;
use crate::usecases::base::identity::Caller;
use crate::usecases::base::loaders;
use crate::usecases::base::lookup::{name_of, usernames};
use crate::usecases::base::publish::{entry, publish, success};
use crate::usecases::base::signing::{sign_attachments, sign_file_url};
use crate::{CoreError, CoreResult, Services};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// What `hubFiles.listChannelFiles` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelFilePage {
    pub files: Vec<ChannelFileView>,
    pub has_more: bool,
}

/// `hubFiles.listChannelFiles` (BROWSE_FILES): attachments of non-deleted messages in the
/// channels the caller can read (or in `channel_id` alone), newest first.
pub async fn list_channel_files(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Option<Uuid>,
    cursor: Option<Uuid>,
    limit: usize,
) -> CoreResult<ChannelFilePage> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    let channels = svc.structure.channels(server.id).await?;
    if let Some(id) = channel_id {
        if !channels.iter().any(|c| c.id == id) {
            return Err(CoreError::channel_not_found());
        }
    }
    let readable: Vec<Uuid> = channels
        .iter()
        .filter(|c| channel_id.is_none_or(|id| c.id == id))
        .filter(|c| perms.reads(c))
        .map(|c| c.id)
        .collect();
    let mut rows = svc
        .attachments
        .channel_files(server.id, &readable, cursor, limit as i64 + 1)
        .await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let categories: HashMap<Uuid, String> = svc
        .structure
        .categories(server.id)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let by_id: HashMap<Uuid, _> = channels.iter().map(|c| (c.id, c)).collect();
    let names = usernames(svc, server.id, rows.iter().map(|r| r.uploaded_by)).await?;
    let files = rows
        .into_iter()
        .map(|r| {
            let channel = by_id.get(&r.channel_id);
            let channel_name = channel.map(|c| c.name.clone()).unwrap_or_default();
            let category_name = channel
                .and_then(|c| c.category_id)
                .and_then(|id| categories.get(&id).cloned());
            let uploader = name_of(&names, r.uploaded_by);
            let mut view = ChannelFileView::new(r, channel_name, category_name, uploader);
            // Only those who can read the channel get here: the URL opens the file for them.
            sign_file_url(svc, &mut view.url);
            view
        })
        .collect();
    Ok(ChannelFilePage { files, has_more })
}

/// `hubFiles.deleteChannelFile` (MANAGE_FILES, server-wide and in the file's channel): removes one attachment of a
/// channel message. A message left with no text and no attachment is deleted
/// (`message.delete`); otherwise its channel gets `message.update {id, channel_id,
/// attachments}`. Audited; event `channel_file.delete`.
pub async fn delete_channel_file(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    attachment_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::MANAGE_FILES, "MANAGE_FILES")?;
    let file = svc
        .attachments
        .channel_file(server.id, attachment_id)
        .await?
        .ok_or_else(CoreError::channel_file_not_found)?;
    // A file of a channel the caller cannot see is managed with channel-level bits too.
    let channel = loaders::channel(svc, server.id, file.channel_id)
        .await?
        .ok_or_else(CoreError::channel_file_not_found)?;
    perms.require_in(&channel, bits::MANAGE_FILES, "MANAGE_FILES")?;
    let audit = entry(
        svc,
        server.id,
        caller,
        "channel_file.delete",
        Some(("attachment", attachment_id)),
        Some(json!({ "filename": file.filename, "message_id": file.message_id })),
    );
    let done = svc
        .attachments
        .delete_channel_file(server.id, attachment_id, audit)
        .await?
        .ok_or_else(CoreError::channel_file_not_found)?;
    delete_blobs(svc, std::slice::from_ref(&done.storage_key), &[]).await;
    if done.message_deleted {
        publish(
            svc,
            server.id,
            Scope::Channel(done.channel_id),
            "message.delete",
            &json!({ "id": done.message_id, "channel_id": done.channel_id }),
        )
        .await;
    } else {
        let mut attachments = svc.messages.attachments(&[done.message_id]).await?;
        // As in every message event: the channel's readers open the files by these URLs.
        sign_attachments(svc, &mut attachments);
        publish(
            svc,
            server.id,
            Scope::Channel(done.channel_id),
            "message.update",
            &json!({
                "id": done.message_id,
                "channel_id": done.channel_id,
                "attachments": attachments,
            }),
        )
        .await;
    }
    publish(
        svc,
        server.id,
        Scope::Server,
        "channel_file.delete",
        &json!({ "id": attachment_id }),
    )
    .await;
    Ok(success())
}

/// `hubFiles.channelFileStats` (BROWSE_FILES): for each text channel the caller can read, its
/// newest upload, the total size, and the roles that can read it (a role's own bits after its
/// category override, then its channel override, hold ADMINISTRATOR or READ_MESSAGES).
pub async fn channel_file_stats(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<Vec<ChannelFileStat>> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(bits::BROWSE_FILES, "BROWSE_FILES")?;
    let channels = svc.structure.channels(server.id).await?;
    let uploads: HashMap<Uuid, _> = svc
        .attachments
        .channel_uploads(server.id)
        .await?
        .into_iter()
        .map(|u| (u.channel_id, u))
        .collect();
    Ok(channels
        .iter()
        .filter(|c| c.channel_type == ChannelType::Text)
        .filter(|c| perms.reads(c))
        .map(|c| {
            let access_role_ids = perms.roles_reading(c);
            let u = uploads.get(&c.id);
            ChannelFileStat {
                channel_id: c.id,
                last_upload_at: u.and_then(|u| u.last_upload_at),
                total_size_bytes: u.map_or(0, |u| u.total_size_bytes),
                access_role_ids,
            }
        })
        .collect())
}
