//! The `messages` router and `read_state`: the send pipeline of reference §7.2 with the
//! fixes of DECISIONS §3 (own attachments only, replies within the channel, exact paging,
//! channel ids of this server only). Sends and reactions also write the activity items they
//! cause (mentions, replies, reactions) in the same transaction.

use super::base::access::{channel_and_perms_memo, member_reads, Perms};
use super::base::identity::Caller;
use super::base::publish::{entry, publish, success};
use super::base::views::{self, MessagePage};
use crate::model::{
    group_reactions, kind, parse_mentions, preview, ActivityRecord, ActivityType, Channel,
    ChannelType, MessageEdit, MessageRecord, MessageView, ReactionGroup, ReadState, Server,
    Timestamp,
};
use crate::permissions::{bits, has};
use crate::ports::{Cursor, Scope, SendRefusal};
use crate::{new_id, CoreError, CoreResult, EctoCode, ErrorKind, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// `messages.list` (READ_MESSAGES): ascending pages; `before` walks back, `after` forward.
pub async fn list(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    cursor: Cursor,
    limit: i64,
    pinned_only: bool,
) -> CoreResult<MessagePage> {
    let (channel, perms) = channel_and_perms_memo(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    views::page(
        svc,
        server.id,
        channel_id,
        cursor,
        limit,
        pinned_only,
        caller.user_id,
    )
    .await
}

/// Input of `messages.send`.
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    pub channel_id: Uuid,
    pub content: Option<String>,
    pub reply_to: Option<Uuid>,
    pub attachment_ids: Vec<Uuid>,
    pub nonce: Option<String>,
}

/// `messages.send`: the pipeline of reference §7.2.
pub async fn send(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    input: SendMessage,
) -> CoreResult<MessageView> {
    let content = check_not_empty(input.content, &input.attachment_ids)?;
    let (channel, perms) = sendable_channel(svc, server, caller, input.channel_id).await?;
    let now = svc.clock.now();
    let attaching = !input.attachment_ids.is_empty();
    let bits_here = check_send_rights(svc, caller, &channel, &perms, now, attaching).await?;
    let replied = replied_to(svc, server, &channel, input.reply_to).await?;
    let mentions = MessageMentions::allowed(content.as_deref(), &perms, bits_here);
    let notified = recipients(svc, server, &perms, &channel, caller.user_id, &mentions).await?;
    // A self-mention bumps the counter but sends no notification.
    let mut bumps = notified.clone();
    if mentions.users.contains(&caller.user_id) {
        bumps.push(caller.user_id);
    }
    let record = new_record(
        server,
        &channel,
        caller,
        content,
        input.reply_to,
        mentions,
        now,
    );
    let activity = activity_for(svc, server, &perms, &channel, &record, &notified, replied).await?;
    if let Err(SendRefusal::Attachment) = svc
        .messages
        .insert_with_activity(
            record.clone(),
            input.attachment_ids,
            bumps,
            activity.clone(),
        )
        .await?
    {
        return Err(CoreError::attachment_not_found());
    }
    let mut message =
        views::fresh_message(svc, server.id, record, caller.user_id, attaching).await?;
    message.nonce = input.nonce;
    announce_sent(svc, server, caller, &channel, &message, notified, activity).await;
    Ok(message)
}

/// The content of a message to send (blank is none): BAD_REQUEST 3001 when there is neither
/// content nor an attachment.
fn check_not_empty(content: Option<String>, attachment_ids: &[Uuid]) -> CoreResult<Option<String>> {
    let content = content.filter(|c| !c.trim().is_empty());
    if content.is_none() && attachment_ids.is_empty() {
        return Err(CoreError::ecto(
            ErrorKind::BadRequest,
            EctoCode::MessageEmpty,
            "Message must have content or attachments",
        ));
    }
    Ok(content)
}

/// The channel to send to (from the memo) and the caller's permissions; page and news
/// channels take no messages (BAD_REQUEST 3002).
async fn sendable_channel(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
) -> CoreResult<(Channel, Perms)> {
    let (channel, perms) = channel_and_perms_memo(svc, server, caller, channel_id).await?;
    if matches!(channel.channel_type, ChannelType::Page | ChannelType::News) {
        return Err(CoreError::ecto(
            ErrorKind::BadRequest,
            EctoCode::ChannelTypeInvalid,
            "Messages cannot be sent to this channel",
        ));
    }
    Ok((channel, perms))
}

/// The caller's bits in `channel`, once they may send there now: SEND_MESSAGES, the
/// channel's slowmode (unless they manage messages or the channel), and ATTACH_FILES when
/// `attaching`.
async fn check_send_rights(
    svc: &Services,
    caller: &Caller,
    channel: &Channel,
    perms: &Perms,
    now: Timestamp,
    attaching: bool,
) -> CoreResult<u64> {
    let bits_here = perms.channel(channel);
    if !has(bits_here, bits::SEND_MESSAGES) {
        return Err(CoreError::missing_permission("SEND_MESSAGES"));
    }
    if channel.slowmode_seconds > 0
        && !has(bits_here, bits::MANAGE_MESSAGES)
        && !has(bits_here, bits::MANAGE_CHANNELS)
    {
        let window = i64::from(channel.slowmode_seconds) * 1000;
        let since = now - chrono::Duration::milliseconds(window);
        if let Some(last) = svc
            .messages
            .last_post(channel.id, caller.user_id, since)
            .await?
        {
            let elapsed = (now - last).num_milliseconds();
            if elapsed < window {
                let wait = ((window - elapsed) as u64).div_ceil(1000);
                let mut err = CoreError::ecto(
                    ErrorKind::TooManyRequests,
                    EctoCode::SlowmodeActive,
                    format!("Slowmode active. Try again in {wait}s"),
                );
                err.retry_after = Some(wait);
                return Err(err);
            }
        }
    }
    if attaching && !has(bits_here, bits::ATTACH_FILES) {
        return Err(CoreError::missing_permission("ATTACH_FILES"));
    }
    Ok(bits_here)
}

/// The message replied to: a non-deleted message of the same channel (NOT_FOUND 4000).
async fn replied_to(
    svc: &Services,
    server: &Server,
    channel: &Channel,
    reply_to: Option<Uuid>,
) -> CoreResult<Option<MessageRecord>> {
    let Some(reply) = reply_to else {
        return Ok(None);
    };
    match svc.messages.get(server.id, reply).await? {
        Some(m) if m.channel_id == channel.id && !m.deleted => Ok(Some(m)),
        _ => Err(CoreError::not_found(
            EctoCode::MessageNotFound,
            "Replied-to message not found in this channel",
        )),
    }
}

/// The mentions a message records: users always; @everyone and roles (of this server, not
/// @everyone) only from a sender with MENTION_EVERYONE in the channel.
struct MessageMentions {
    users: Vec<Uuid>,
    everyone: bool,
    roles: Vec<Uuid>,
}

impl MessageMentions {
    fn allowed(content: Option<&str>, perms: &Perms, bits_here: u64) -> Self {
        let mentions = parse_mentions(content.unwrap_or(""));
        let may_mention_all = has(bits_here, bits::MENTION_EVERYONE);
        let roles = if may_mention_all {
            mentions
                .roles
                .iter()
                .copied()
                .filter(|r| perms.data.roles.iter().any(|x| x.id == *r && !x.is_default))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            users: mentions.users,
            everyone: mentions.everyone && may_mention_all,
            roles,
        }
    }
}

/// The record of a new message by `caller`.
fn new_record(
    server: &Server,
    channel: &Channel,
    caller: &Caller,
    content: Option<String>,
    reply_to: Option<Uuid>,
    mentions: MessageMentions,
    now: Timestamp,
) -> MessageRecord {
    MessageRecord {
        id: new_id(),
        server_id: server.id,
        channel_id: channel.id,
        author_id: caller.user_id,
        content,
        kind: kind::DEFAULT,
        reply_to,
        pinned: false,
        deleted: false,
        mention_everyone: mentions.everyone,
        mention_roles: mentions.roles,
        mention_users: mentions.users,
        webhook_id: None,
        webhook_name: None,
        webhook_avatar_url: None,
        edited_at: None,
        created_at: now,
    }
}

/// Activity (reference §7.2 steps 8–9): a mention for each notified member, and a reply for
/// the replied-to author when not the sender, not already notified, and a reader here.
async fn activity_for(
    svc: &Services,
    server: &Server,
    perms: &Perms,
    channel: &Channel,
    record: &MessageRecord,
    notified: &[Uuid],
    replied: Option<MessageRecord>,
) -> CoreResult<Vec<ActivityRecord>> {
    let mut activity: Vec<ActivityRecord> = notified
        .iter()
        .map(|user| activity_item(record, *user, ActivityType::Mention, None))
        .collect();
    if let Some(target) = &replied {
        if target.author_id != record.author_id
            && target.webhook_id.is_none()
            && !notified.contains(&target.author_id)
            && reads(svc, server, perms, channel, target.author_id).await?
        {
            activity.push(activity_item(
                record,
                target.author_id,
                ActivityType::Reply,
                None,
            ));
        }
    }
    Ok(activity)
}

/// Tells everyone concerned about a sent message: `mention.create` to each notified member,
/// `activity.create` for the activity items, and `message.create` to the channel.
async fn announce_sent(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel: &Channel,
    message: &MessageView,
    notified: Vec<Uuid>,
    activity: Vec<ActivityRecord>,
) {
    let excerpt = preview(message.content.as_deref());
    for user in notified {
        let payload = json!({ "channel_id": channel.id, "message_id": message.id, "author_id": caller.user_id, "content": excerpt });
        publish(
            svc,
            server.id,
            Scope::User(user),
            "mention.create",
            &payload,
        )
        .await;
    }
    super::base::publish::activity_created(svc, server, activity).await;
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "message.create",
        message,
    )
    .await;
}

/// Members to notify: mentioned users, everyone (when allowed) or holders of mentioned roles,
/// who can read the channel; never the author.
async fn recipients(
    svc: &Services,
    server: &Server,
    perms: &Perms,
    channel: &Channel,
    author: Uuid,
    mentions: &MessageMentions,
) -> CoreResult<Vec<Uuid>> {
    let (users, everyone, roles) = (&mentions.users, mentions.everyone, &mentions.roles);
    if users.is_empty() && !everyone && roles.is_empty() {
        return Ok(Vec::new());
    }
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let batch = svc.moderation.list_members(server.id, after, 1000).await?;
        let done = batch.len() < 1000;
        after = batch.last().map(|m| m.id);
        members.extend(svc.moderation.member_views(server.id, &batch).await?);
        if done {
            break;
        }
    }
    Ok(members
        .iter()
        .filter(|m| m.user_id != author)
        .filter(|m| {
            everyone || users.contains(&m.user_id) || m.roles.iter().any(|r| roles.contains(r))
        })
        .filter(|m| member_reads(server, perms, m, channel))
        .map(|m| m.user_id)
        .collect())
}

/// An activity item for `user` about `message` (by its author, in its channel).
pub(crate) fn activity_item(
    message: &MessageRecord,
    user: Uuid,
    kind: ActivityType,
    emoji: Option<&str>,
) -> ActivityRecord {
    ActivityRecord {
        id: new_id(),
        user_id: user,
        server_id: message.server_id,
        kind,
        actor_id: message.author_id,
        message_id: Some(message.id),
        channel_id: Some(message.channel_id),
        conversation_id: None,
        content_preview: Some(preview(message.content.as_deref())),
        emoji: emoji.map(str::to_owned),
        read: false,
        created_at: message.created_at,
    }
}

/// Whether `user` is a member who can read `channel`: activity about a channel goes only to
/// its readers.
async fn reads(
    svc: &Services,
    server: &Server,
    perms: &Perms,
    channel: &Channel,
    user: Uuid,
) -> CoreResult<bool> {
    let Some(member) = svc.members.get(server.id, user).await? else {
        return Ok(false);
    };
    let views = svc.moderation.member_views(server.id, &[member]).await?;
    Ok(views
        .first()
        .is_some_and(|v| member_reads(server, perms, v, channel)))
}

/// A non-deleted message of a channel of this server, with its channel. Anything else,
/// including a server DM's message, is NOT_FOUND 4000 (DECISIONS §3.21).
async fn channel_message(
    svc: &Services,
    server: &Server,
    id: Uuid,
) -> CoreResult<(MessageRecord, Channel)> {
    let message = match svc.messages.get(server.id, id).await? {
        Some(m) if !m.deleted => m,
        _ => return Err(CoreError::message_not_found()),
    };
    let channel = svc
        .structure
        .channel(server.id, message.channel_id)
        .await?
        .ok_or_else(CoreError::message_not_found)?;
    Ok((message, channel))
}

/// `messages.update`: the author edits; the old text goes to the edit history.
pub async fn update(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    content: String,
) -> CoreResult<MessageView> {
    caller.require_member()?;
    let (message, _) = channel_message(svc, server, id).await?;
    if message.author_id != caller.user_id || message.webhook_id.is_some() {
        return Err(CoreError::forbidden(
            EctoCode::InsufficientPermissions,
            "You can only edit your own messages",
        ));
    }
    if !svc
        .messages
        .edit(server.id, id, &content, svc.clock.now())
        .await?
    {
        return Err(CoreError::message_not_found());
    }
    let (updated, _) = channel_message(svc, server, id).await?;
    let view = views::message(svc, server.id, updated, caller.user_id).await?;
    publish(
        svc,
        server.id,
        Scope::Channel(view.channel_id),
        "message.update",
        &view,
    )
    .await;
    Ok(view)
}

/// `messages.delete`: the author, or MANAGE_MESSAGES in the channel (audited).
pub async fn delete(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    let perms = Perms::load(svc, server, caller).await?;
    let (message, channel) = channel_message(svc, server, id).await?;
    let audit = if message.author_id == caller.user_id && message.webhook_id.is_none() {
        None
    } else {
        perms.require_in(&channel, bits::MANAGE_MESSAGES, "MANAGE_MESSAGES")?;
        Some(entry(
            svc,
            server.id,
            caller,
            "message.delete",
            Some(("message", id)),
            Some(json!({ "channel_id": channel.id })),
        ))
    };
    if !svc.messages.delete(server.id, id, audit).await? {
        return Err(CoreError::message_not_found());
    }
    publish(
        svc,
        server.id,
        Scope::Channel(message.channel_id),
        "message.delete",
        &json!({ "id": id, "channel_id": message.channel_id }),
    )
    .await;
    Ok(success())
}

/// `messages.pin` (MANAGE_MESSAGES in the channel); pinning adds a PIN_ADDED system message
/// unless the server turned system messages off.
pub async fn pin(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    pinned: bool,
) -> CoreResult<MessageView> {
    let perms = Perms::load(svc, server, caller).await?;
    let (message, channel) = channel_message(svc, server, id).await?;
    perms.require_in(&channel, bits::MANAGE_MESSAGES, "MANAGE_MESSAGES")?;
    let config = super::base::loaders::config(svc, server.id).await?;
    let system =
        (pinned && !message.pinned && config.show_system_messages).then(|| MessageRecord {
            id: new_id(),
            content: None,
            kind: kind::PIN_ADDED,
            reply_to: Some(id),
            pinned: false,
            author_id: caller.user_id,
            mention_everyone: false,
            mention_roles: Vec::new(),
            mention_users: Vec::new(),
            webhook_id: None,
            webhook_name: None,
            webhook_avatar_url: None,
            edited_at: None,
            created_at: svc.clock.now(),
            ..message.clone()
        });
    let audit = entry(
        svc,
        server.id,
        caller,
        "message.pin",
        Some(("message", id)),
        Some(json!({ "pinned": pinned })),
    );
    if !svc
        .messages
        .set_pinned(server.id, id, pinned, system.clone(), audit)
        .await?
    {
        return Err(CoreError::message_not_found());
    }
    if let Some(sys) = system {
        let sys_view = views::message(svc, server.id, sys, caller.user_id).await?;
        publish(
            svc,
            server.id,
            Scope::Channel(channel.id),
            "message.create",
            &sys_view,
        )
        .await;
    }
    let updated = views::message(
        svc,
        server.id,
        channel_message(svc, server, id).await?.0,
        caller.user_id,
    )
    .await?;
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "message.update",
        &updated,
    )
    .await;
    Ok(updated)
}

/// `messages.react`: adding needs ADD_REACTIONS, removing needs READ_MESSAGES.
pub async fn react(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
    emoji: &str,
    add: bool,
) -> CoreResult<Vec<ReactionGroup>> {
    let perms = Perms::load(svc, server, caller).await?;
    let (message, channel) = channel_message(svc, server, id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    if add {
        perms.require_in(&channel, bits::ADD_REACTIONS, "ADD_REACTIONS")?;
    }
    // A reaction added by someone else tells the author, if they can still read the channel.
    let activity = if add
        && message.author_id != caller.user_id
        && message.webhook_id.is_none()
        && reads(svc, server, &perms, &channel, message.author_id).await?
    {
        Some(ActivityRecord {
            actor_id: caller.user_id,
            created_at: svc.clock.now(),
            ..activity_item(
                &message,
                message.author_id,
                ActivityType::Reaction,
                Some(emoji),
            )
        })
    } else {
        None
    };
    let added = svc
        .messages
        .react(
            id,
            caller.user_id,
            emoji,
            add,
            svc.clock.now(),
            activity.clone(),
        )
        .await?;
    if added {
        super::base::publish::activity_created(svc, server, activity.into_iter().collect()).await;
    }
    let all = svc.messages.reactions(&[id]).await?;
    let groups = group_reactions(&all, caller.user_id);
    let count = groups
        .iter()
        .find(|g| g.emoji == emoji)
        .map_or(0, |g| g.count);
    let payload = json!({ "channel_id": channel.id, "message_id": id, "emoji": emoji, "user_id": caller.user_id,
        "action": if add { "add" } else { "remove" }, "count": count });
    publish(
        svc,
        server.id,
        Scope::Channel(channel.id),
        "message.reaction_update",
        &payload,
    )
    .await;
    Ok(groups)
}

/// What `messages.history` returns.
#[derive(Debug, Clone, Serialize)]
pub struct MessageHistory {
    pub message_id: Uuid,
    pub edits: Vec<MessageEdit>,
}

/// `messages.history` (READ_MESSAGES, DECISIONS §3.20): earlier versions, oldest first.
pub async fn history(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    id: Uuid,
) -> CoreResult<MessageHistory> {
    let perms = Perms::load(svc, server, caller).await?;
    let (_, channel) = channel_message(svc, server, id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    Ok(MessageHistory {
        message_id: id,
        edits: svc.messages.edits(id).await?,
    })
}

/// `read_state.update`: a readable channel of this server and a message in it.
pub async fn mark_read(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    message_id: Uuid,
) -> CoreResult<serde_json::Value> {
    let (channel, perms) = channel_and_perms_memo(svc, server, caller, channel_id).await?;
    perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
    match svc.messages.get(server.id, message_id).await? {
        Some(m) if m.channel_id == channel_id => {}
        _ => return Err(CoreError::message_not_found()),
    }
    svc.messages
        .mark_read(caller.user_id, channel_id, message_id, svc.clock.now())
        .await?;
    Ok(success())
}

/// `read_state.markAllRead`.
pub async fn mark_all_read(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<serde_json::Value> {
    caller.require_member()?;
    svc.messages
        .mark_all_read(server.id, caller.user_id, svc.clock.now())
        .await?;
    Ok(success())
}

/// `read_state.list`: the caller's read states in this server.
pub async fn read_states(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<Vec<ReadState>> {
    caller.require_member()?;
    svc.messages.read_states(server.id, caller.user_id).await
}
