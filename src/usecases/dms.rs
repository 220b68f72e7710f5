//! The `serverDms` router: private conversations of two members of one server (reference
//! §2.4). Messages live in `messages` with the conversation's id as their channel; only the
//! two participants ever see a conversation, and only within its server.

use super::base::identity::Caller;
use super::base::lookup;
use super::base::publish::{publish, success};
use super::base::views::{self, unknown_author};
use crate::model::{
    group_reactions, kind, preview, ActivityRecord, ActivityType, Conversation, ConversationView,
    DmPeer, MessageRecord, ReactionGroup, Server, ServerDmMessage,
};
use crate::ports::{Cursor, NewDm, Scope, SendRefusal};
use crate::{new_id, CoreError, CoreResult, EctoCode, ErrorKind, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

fn not_author(action: &str) -> CoreError {
    CoreError::forbidden(
        EctoCode::InsufficientPermissions,
        format!("You can only {action} your own messages"),
    )
}

fn blank() -> CoreError {
    CoreError::ecto(
        ErrorKind::BadRequest,
        EctoCode::MessageEmpty,
        "Message must have content",
    )
}

/// FORBIDDEN 6001 unless the server allows member DMs.
async fn require_enabled(svc: &Services, server: &Server) -> CoreResult<()> {
    if super::base::loaders::config(svc, server.id)
        .await?
        .allow_member_dms
    {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            EctoCode::DmsDisabled,
            "Direct messages are disabled on this server",
        ))
    }
}

/// A conversation of this server that the caller takes part in (NOT_FOUND 6002 otherwise).
async fn own_conversation(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<Conversation> {
    match svc.dms.conversation(server.id, id).await? {
        Some(c) if c.has(caller.user_id) => Ok(c),
        _ => Err(CoreError::conversation_not_found()),
    }
}

/// A non-deleted message of one of the caller's conversations in this server (NOT_FOUND 4000
/// otherwise: another pair's messages are not shown to exist).
async fn own_message(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<(MessageRecord, Conversation)> {
    match svc.dms.message(server.id, id).await? {
        Some((m, c)) if !m.deleted && c.has(caller.user_id) => Ok((m, c)),
        _ => Err(CoreError::message_not_found()),
    }
}

/// ServerDmMessages for `records`, relative to `viewer`.
async fn dm_views(
    svc: &Services,
    server_id: Uuid,
    records: Vec<MessageRecord>,
    viewer: Uuid,
) -> CoreResult<Vec<ServerDmMessage>> {
    Ok(views::messages(svc, server_id, records, viewer)
        .await?
        .into_iter()
        .map(ServerDmMessage::from)
        .collect())
}

async fn dm_view(
    svc: &Services,
    server_id: Uuid,
    record: MessageRecord,
    viewer: Uuid,
) -> CoreResult<ServerDmMessage> {
    dm_views(svc, server_id, vec![record], viewer)
        .await?
        .pop()
        .ok_or_else(CoreError::message_not_found)
}

/// Publishes `name` with `data` to both participants.
async fn to_both<T: Serialize>(
    svc: &Services,
    server_id: Uuid,
    conversation: &Conversation,
    name: &str,
    data: &T,
) {
    for user in [conversation.user_a, conversation.user_b] {
        publish(svc, server_id, Scope::User(user), name, data).await;
    }
}

/// What `serverDms.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationPage {
    pub conversations: Vec<ConversationView>,
    pub has_more: bool,
}

/// `serverDms.list`: the caller's conversations, most recent first.
pub async fn list(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    limit: i64,
) -> CoreResult<ConversationPage> {
    caller.require_member()?;
    require_enabled(svc, server).await?;
    let mut rows = svc
        .dms
        .conversations(server.id, caller.user_id, limit + 1)
        .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let people = rows.iter().flat_map(|r| {
        std::iter::once(r.conversation.peer_of(caller.user_id))
            .chain(r.last_message.as_ref().map(|m| m.author_id))
    });
    let authors = lookup::authors(svc, server.id, people).await?;
    let author = |id: Uuid| {
        authors
            .get(&id)
            .cloned()
            .unwrap_or_else(|| unknown_author(id))
    };
    let conversations = rows
        .into_iter()
        .map(|r| ConversationView {
            id: r.conversation.id,
            peer: DmPeer::from(author(r.conversation.peer_of(caller.user_id))),
            last_message: r.last_message.map(|m| ServerDmMessage {
                id: m.id,
                conversation_id: m.channel_id,
                author: author(m.author_id),
                content: m.content,
                reply_to: m.reply_to,
                attachments: Vec::new(),
                reactions: Vec::new(),
                edited_at: m.edited_at,
                created_at: m.created_at,
            }),
            unread_count: r.unread_count,
        })
        .collect();
    Ok(ConversationPage {
        conversations,
        has_more,
    })
}

/// What `serverDms.history` returns.
#[derive(Debug, Clone, Serialize)]
pub struct DmPage {
    pub messages: Vec<ServerDmMessage>,
    pub has_more: bool,
}

/// `serverDms.history`: ascending pages of a conversation of the caller; `before` walks back.
pub async fn history(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    conversation_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> CoreResult<DmPage> {
    caller.require_member()?;
    require_enabled(svc, server).await?;
    let conversation = own_conversation(svc, server, caller, conversation_id).await?;
    let cursor = before.map_or(Cursor::Latest, Cursor::Before);
    let mut records = svc
        .messages
        .page(conversation.id, cursor, limit + 1, false)
        .await?;
    let has_more = records.len() as i64 > limit;
    if has_more {
        // The extra message read to learn `has_more` is the oldest one.
        records.remove(0);
    }
    Ok(DmPage {
        messages: dm_views(svc, server.id, records, caller.user_id).await?,
        has_more,
    })
}

/// Input of `serverDms.send`.
#[derive(Debug, Clone, Default)]
pub struct SendDm {
    pub recipient_id: Uuid,
    pub content: String,
    pub reply_to: Option<Uuid>,
    pub attachment_ids: Vec<Uuid>,
}

/// `serverDms.send`: checks, then one write that gets or creates the conversation, stores the
/// message and its activity items; events go to both participants.
pub async fn send(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: SendDm,
) -> CoreResult<ServerDmMessage> {
    check_sendable(svc, server, caller, &input).await?;
    let recipient = dm_recipient(svc, server, input.recipient_id).await?;
    let replied = replied_to(svc, server, caller, recipient.user_id, input.reply_to).await?;
    let record = new_record(svc, server, caller, input.content, input.reply_to);
    let activity = activity_for(server, caller, &record, recipient.user_id, replied);
    let sent = match svc
        .dms
        .send(NewDm {
            server_id: server.id,
            sender: caller.user_id,
            recipient: recipient.user_id,
            conversation_id: new_id(),
            message: record,
            attachments: input.attachment_ids,
            activity,
        })
        .await?
    {
        Ok(sent) => sent,
        Err(SendRefusal::Attachment) => return Err(CoreError::attachment_not_found()),
    };
    let message = dm_view(svc, server.id, sent.message, caller.user_id).await?;
    announce_sent(svc, server, &sent.conversation, &message).await?;
    super::base::publish::activity_created(svc, server, sent.activity).await;
    Ok(message)
}

/// What must hold before anything is read: a member, not writing to themselves (checked
/// first, as the reference does), DMs enabled here, and some text.
async fn check_sendable(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: &SendDm,
) -> CoreResult<()> {
    caller.require_member()?;
    if input.recipient_id == caller.user_id {
        return Err(CoreError::ecto(
            ErrorKind::BadRequest,
            EctoCode::CannotDmSelf,
            "You cannot send a direct message to yourself",
        ));
    }
    require_enabled(svc, server).await?;
    if input.content.trim().is_empty() {
        return Err(blank());
    }
    Ok(())
}

/// The recipient: a member of this server (NOT_FOUND 6004) who accepts DMs (FORBIDDEN 6005).
async fn dm_recipient(
    svc: &Services,
    server: &Server,
    recipient_id: Uuid,
) -> CoreResult<crate::model::Member> {
    let recipient = svc
        .members
        .get(server.id, recipient_id)
        .await?
        .ok_or_else(|| {
            CoreError::not_found(
                EctoCode::RecipientNotMember,
                "Recipient is not a member of this server",
            )
        })?;
    if !recipient.allow_dms {
        return Err(CoreError::forbidden(
            EctoCode::RecipientDmsDisabled,
            "This member does not accept direct messages",
        ));
    }
    Ok(recipient)
}

/// The message replied to: a non-deleted message of the pair's conversation (NOT_FOUND 4000).
async fn replied_to(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    recipient: Uuid,
    reply_to: Option<Uuid>,
) -> CoreResult<Option<MessageRecord>> {
    let Some(reply) = reply_to else {
        return Ok(None);
    };
    let existing = svc.dms.find(server.id, caller.user_id, recipient).await?;
    match (existing, svc.dms.message(server.id, reply).await?) {
        (Some(c), Some((m, of))) if of.id == c.id && !m.deleted => Ok(Some(m)),
        _ => Err(CoreError::not_found(
            EctoCode::MessageNotFound,
            "Replied-to message not found in this conversation",
        )),
    }
}

/// The record of a new DM by `caller`; the store sets its channel to the conversation's id.
fn new_record(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    content: String,
    reply_to: Option<Uuid>,
) -> MessageRecord {
    MessageRecord {
        id: new_id(),
        server_id: server.id,
        // Set by the store to the conversation's id.
        channel_id: Uuid::nil(),
        author_id: caller.user_id,
        content: Some(content),
        kind: kind::DEFAULT,
        reply_to,
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
    }
}

/// The activity of a DM: a server DM item for the recipient, and a reply item for the
/// replied-to author when that is not the sender.
fn activity_for(
    server: &Server,
    caller: &Caller,
    record: &MessageRecord,
    recipient: Uuid,
    replied: Option<MessageRecord>,
) -> Vec<ActivityRecord> {
    let item = |user: Uuid, kind: ActivityType| ActivityRecord {
        id: new_id(),
        user_id: user,
        server_id: server.id,
        kind,
        actor_id: caller.user_id,
        message_id: Some(record.id),
        channel_id: None,
        conversation_id: None,
        content_preview: Some(preview(record.content.as_deref())),
        emoji: None,
        read: false,
        created_at: record.created_at,
    };
    let mut activity = vec![item(recipient, ActivityType::ServerDm)];
    if let Some(target) = &replied {
        if target.author_id != caller.user_id {
            activity.push(item(target.author_id, ActivityType::Reply));
        }
    }
    activity
}

/// `server_dm.message` to both participants, each told who their peer is.
async fn announce_sent(
    svc: &Services,
    server: &Server,
    conversation: &Conversation,
    message: &ServerDmMessage,
) -> CoreResult<()> {
    for user in [conversation.user_a, conversation.user_b] {
        let mut payload = serde_json::to_value(message).map_err(CoreError::internal)?;
        payload["_conversation_peer_id"] = json!(conversation.peer_of(user));
        publish(
            svc,
            server.id,
            Scope::User(user),
            "server_dm.message",
            &payload,
        )
        .await;
    }
    Ok(())
}

/// `serverDms.edit`: the author edits; the old text goes to the edit history.
pub async fn edit(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    content: String,
) -> CoreResult<ServerDmMessage> {
    caller.require_member()?;
    let (message, conversation) = own_message(svc, server, caller, id).await?;
    if message.author_id != caller.user_id {
        return Err(not_author("edit"));
    }
    if content.trim().is_empty() {
        return Err(blank());
    }
    if !svc
        .messages
        .edit(server.id, id, &content, svc.clock.now())
        .await?
    {
        return Err(CoreError::message_not_found());
    }
    let (updated, _) = own_message(svc, server, caller, id).await?;
    let view = dm_view(svc, server.id, updated, caller.user_id).await?;
    to_both(svc, server.id, &conversation, "server_dm.update", &view).await;
    Ok(view)
}

/// `serverDms.delete`: the author deletes (soft).
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    let (message, conversation) = own_message(svc, server, caller, id).await?;
    if message.author_id != caller.user_id {
        return Err(not_author("delete"));
    }
    if !svc.messages.delete(server.id, id, None).await? {
        return Err(CoreError::message_not_found());
    }
    to_both(
        svc,
        server.id,
        &conversation,
        "server_dm.delete",
        &json!({ "id": id, "conversation_id": conversation.id }),
    )
    .await;
    Ok(success())
}

/// `serverDms.react`: either participant adds or removes a reaction.
pub async fn react(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    emoji: &str,
    add: bool,
) -> CoreResult<Vec<ReactionGroup>> {
    caller.require_member()?;
    let (_, conversation) = own_message(svc, server, caller, id).await?;
    svc.messages
        .react(id, caller.user_id, emoji, add, svc.clock.now(), None)
        .await?;
    let all = svc.messages.reactions(&[id]).await?;
    let groups = group_reactions(&all, caller.user_id);
    let count = groups
        .iter()
        .find(|g| g.emoji == emoji)
        .map_or(0, |g| g.count);
    let payload = json!({ "conversation_id": conversation.id, "message_id": id, "emoji": emoji,
        "user_id": caller.user_id, "action": if add { "add" } else { "remove" }, "count": count });
    to_both(
        svc,
        server.id,
        &conversation,
        "server_dm.reaction_update",
        &payload,
    )
    .await;
    Ok(groups)
}

/// `serverDms.markRead`: the caller's read marker of one of their conversations, set to a
/// message of that conversation.
pub async fn mark_read(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    conversation_id: Uuid,
    message_id: Uuid,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    let conversation = own_conversation(svc, server, caller, conversation_id).await?;
    match svc.dms.message(server.id, message_id).await? {
        Some((_, c)) if c.id == conversation.id => {}
        _ => return Err(CoreError::message_not_found()),
    }
    svc.dms
        .mark_read(caller.user_id, conversation.id, message_id, svc.clock.now())
        .await?;
    Ok(success())
}
