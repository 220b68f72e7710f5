//! The protocol's views of what the stores hold, for whoever is allowed to see it: Message
//! objects (authors from the memo, attachment URLs signed, reactions relative to the viewer),
//! pages of a channel's messages, and ActivityItems. Nothing here checks permissions.

use super::lookup;
use super::signing::sign_attachments;
use crate::model::{
    group_reactions, ActivityItem, ActivityRecord, ActivitySource, MessageAuthor, MessageRecord,
    MessageView, Server,
};
use crate::ports::Cursor;
use crate::{CoreError, CoreResult, Services};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// The author shown for a user without any known profile.
pub fn unknown_author(id: Uuid) -> MessageAuthor {
    MessageAuthor {
        id,
        username: "Unknown".into(),
        display_name: None,
        avatar_url: None,
        nickname: None,
    }
}

/// Builds the protocol's Message objects for `records`, relative to `viewer`.
pub async fn messages(
    svc: &Services,
    server_id: Uuid,
    records: Vec<MessageRecord>,
    viewer: Uuid,
) -> CoreResult<Vec<MessageView>> {
    build(svc, server_id, records, viewer, true).await
}

/// Like [`messages`]; a message just created has no reactions yet, and attachments only when it
/// linked some (`attachments: false` skips both lookups).
async fn build(
    svc: &Services,
    server_id: Uuid,
    records: Vec<MessageRecord>,
    viewer: Uuid,
    existing: bool,
) -> CoreResult<Vec<MessageView>> {
    let ids: Vec<Uuid> = records.iter().map(|m| m.id).collect();
    let mut people: Vec<Uuid> = records.iter().map(|m| m.author_id).collect();
    people.sort();
    people.dedup();
    let mut authors = svc.memo.authors(server_id, &mut people);
    if !people.is_empty() {
        let generation = svc.memo.generation(server_id);
        let loaded = svc.messages.authors(server_id, &people).await?;
        svc.memo
            .keep_authors(server_id, generation, loaded.values());
        authors.extend(loaded);
    }
    let mut attachments: HashMap<Uuid, Vec<_>> = HashMap::new();
    let mut reactions: HashMap<Uuid, Vec<_>> = HashMap::new();
    if existing {
        let mut linked = svc.messages.attachments(&ids).await?;
        sign_attachments(svc, &mut linked);
        for a in linked {
            if let Some(m) = a.message_id {
                attachments.entry(m).or_default().push(a);
            }
        }
        for r in svc.messages.reactions(&ids).await? {
            reactions.entry(r.message_id).or_default().push(r);
        }
    }
    Ok(records
        .into_iter()
        .map(|m| {
            let mut author = authors
                .get(&m.author_id)
                .cloned()
                .unwrap_or_else(|| unknown_author(m.author_id));
            // Webhook messages keep the webhook's name and avatar (DECISIONS §3.14).
            if let Some(name) = &m.webhook_name {
                author.username = name.clone();
                author.display_name = Some(name.clone());
                author.avatar_url = m.webhook_avatar_url.clone();
                author.nickname = None;
            }
            MessageView {
                id: m.id,
                channel_id: m.channel_id,
                author,
                content: m.content,
                kind: m.kind,
                reply_to: m.reply_to,
                pinned: m.pinned,
                mention_everyone: m.mention_everyone,
                mention_roles: m.mention_roles,
                mentions: m.mention_users,
                edited_at: m.edited_at,
                created_at: m.created_at,
                attachments: attachments.remove(&m.id).unwrap_or_default(),
                reactions: group_reactions(
                    reactions.get(&m.id).map(Vec::as_slice).unwrap_or(&[]),
                    viewer,
                ),
                webhook_id: m.webhook_id,
                nonce: None,
            }
        })
        .collect())
}

/// The Message object of one record, relative to `viewer`.
pub async fn message(
    svc: &Services,
    server_id: Uuid,
    record: MessageRecord,
    viewer: Uuid,
) -> CoreResult<MessageView> {
    messages(svc, server_id, vec![record], viewer)
        .await?
        .pop()
        .ok_or_else(CoreError::message_not_found)
}

/// The view of a message this request just inserted: it has no reactions yet, and
/// attachments only when it linked some (`linked_attachments: false` skips both lookups).
pub async fn fresh_message(
    svc: &Services,
    server_id: Uuid,
    record: MessageRecord,
    viewer: Uuid,
    linked_attachments: bool,
) -> CoreResult<MessageView> {
    build(svc, server_id, vec![record], viewer, linked_attachments)
        .await?
        .pop()
        .ok_or_else(CoreError::message_not_found)
}

/// What `messages.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    pub has_more: bool,
}

/// A page of `channel_id`'s messages as `messages.list` returns it (ascending; `before` walks
/// back, `after` forward), viewed by `viewer`. Whoever calls checks that `viewer` may read
/// the channel.
pub async fn page(
    svc: &Services,
    server_id: Uuid,
    channel_id: Uuid,
    cursor: Cursor,
    limit: i64,
    pinned_only: bool,
    viewer: Uuid,
) -> CoreResult<MessagePage> {
    let mut records = svc
        .messages
        .page(channel_id, cursor, limit + 1, pinned_only)
        .await?;
    let has_more = records.len() as i64 > limit;
    if has_more {
        // One extra was read to learn `has_more`: drop it from the far end of the walk.
        match cursor {
            Cursor::After(_) => {
                records.pop();
            }
            _ => {
                records.remove(0);
            }
        }
    }
    Ok(MessagePage {
        messages: messages(svc, server_id, records, viewer).await?,
        has_more,
    })
}

/// The protocol's ActivityItems for `records` of `server`, in the same order.
pub async fn activity_items(
    svc: &Services,
    server: &Server,
    records: Vec<ActivityRecord>,
) -> CoreResult<Vec<ActivityItem>> {
    let authors = lookup::authors(svc, server.id, records.iter().map(|r| r.actor_id)).await?;
    let channel_names: HashMap<Uuid, String> = if records.iter().any(|r| r.channel_id.is_some()) {
        svc.structure
            .channels(server.id)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(records
        .into_iter()
        .map(|r| ActivityItem {
            id: r.id,
            kind: r.kind,
            actor: authors
                .get(&r.actor_id)
                .cloned()
                .unwrap_or_else(|| unknown_author(r.actor_id)),
            content_preview: r.content_preview.unwrap_or_default(),
            emoji: r.emoji,
            message_id: r.message_id,
            source: ActivitySource {
                server_id: r.server_id,
                server_name: Some(server.name.clone()),
                channel_id: r.channel_id,
                channel_name: r.channel_id.and_then(|c| channel_names.get(&c).cloned()),
                conversation_id: r.conversation_id,
            },
            read: r.read,
            created_at: r.created_at,
        })
        .collect())
}
