//! What the WebSocket gateway asks of the core: who a socket is, what `system.ready` carries,
//! which channels a session may hear, and the control events that close sessions.

use super::base::access::{channel_and_perms_memo, readable_channels, Perms};
use super::base::identity::{authenticate, Caller};
use super::base::publish::{close, publish, CLOSE_EVENT};
use super::base::views::{self, MessagePage};
use crate::model::{Category, MemberView, Role, Server, ServerView, Timestamp};
use crate::permissions::bits;
use crate::ports::{Cursor, Scope};
use crate::{permissions, CoreResult, Services};
use serde::Serialize;
use std::collections::HashSet;
use uuid::Uuid;

/// The protocol version this server speaks (DECISIONS §2).
pub const PROTOCOL_VERSION: i64 = 1;
/// Heartbeat interval announced in `system.hello`, in milliseconds.
pub const HEARTBEAT_INTERVAL_MS: u64 = 30_000;
/// Name of the internal event a process publishes when it resumes a session, so that the
/// process still holding an older attachment of it lets go (data: `{session_id, incarnation}`).
pub const TAKEOVER_EVENT: &str = "internal.takeover";

/// Whether a session of `server_id` held by `user_id`, subscribed to `subscriptions`, is sent
/// `event` (and so counts it in its sequence). Internal events are never sent. The live
/// dispatcher (through [`Audience`], decided once per event) and the resume replay both decide
/// with this one rule, which is what makes a rebuilt session's numbering identical to the
/// original's.
pub fn reaches(
    event: &crate::ports::Event,
    server_id: Uuid,
    user_id: Uuid,
    subscriptions: &HashSet<Uuid>,
) -> bool {
    Audience::of(event).reaches(server_id, user_id, subscriptions)
}

/// Who an event is sent to: what [`reaches`] reads of the event, read once for all the
/// sessions it is applied to.
#[derive(Debug, Clone, Copy)]
pub struct Audience {
    server_id: Uuid,
    /// `None` for an internal event: nobody.
    scope: Option<Scope>,
}

impl Audience {
    pub fn of(event: &crate::ports::Event) -> Self {
        Self {
            server_id: event.server_id,
            scope: (!event.name.starts_with("internal.")).then_some(event.scope),
        }
    }

    /// Whether the event is sent to no session at all.
    pub fn is_nobody(&self) -> bool {
        self.scope.is_none()
    }

    /// [`reaches`], for one session.
    pub fn reaches(&self, server_id: Uuid, user_id: Uuid, subscriptions: &HashSet<Uuid>) -> bool {
        self.server_id == server_id
            && match self.scope {
                None => false,
                Some(Scope::Server) => true,
                Some(Scope::User(u)) => u == user_id,
                Some(Scope::Channel(c)) => subscriptions.contains(&c),
            }
    }
}

/// Whether an internal close event ends sessions of `user_id` in `server_id` (a resync event
/// ends every session).
pub fn closes(event: &crate::ports::Event, server_id: Uuid, user_id: Uuid) -> bool {
    if event.name == crate::ports::RESYNC_EVENT {
        return true;
    }
    event.name == CLOSE_EVENT
        && event.server_id == server_id
        && match event.scope {
            Scope::Server => true,
            Scope::User(u) => u == user_id,
            Scope::Channel(_) => false,
        }
}

/// Why identify failed, with the close code to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
}

/// Resolves an identify token to a member of `server`. A token of another server, a revoked
/// one, or a non-member is AUTHENTICATION_FAILED.
pub async fn identify(
    svc: &Services,
    server: &Server,
    token: &str,
) -> CoreResult<Result<Caller, Refusal>> {
    let Some(caller) = authenticate(svc, server, token).await? else {
        return Ok(Err(Refusal {
            code: close::AUTHENTICATION_FAILED,
            reason: "Auth failed",
        }));
    };
    if caller.member.is_none() {
        return Ok(Err(Refusal {
            code: close::AUTHENTICATION_FAILED,
            reason: "Not a member",
        }));
    }
    Ok(Ok(caller))
}

/// The ids of the channels `caller` can read now.
pub async fn readable(
    svc: &Services,
    server: &Server,
    caller: &Caller,
) -> CoreResult<HashSet<Uuid>> {
    Ok(readable_channels(svc, server, caller)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// The `system.ready` payload, scoped to the session's server (DECISIONS §3.3).
#[derive(Debug, Serialize)]
pub struct Ready {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub protocol_version: i64,
    pub server: ServerView,
    pub channels: Vec<crate::model::Channel>,
    pub categories: Vec<Category>,
    pub roles: Vec<Role>,
    pub self_member: Option<MemberView>,
    pub read_states: Vec<crate::model::ReadState>,
    pub presences: crate::ports::PresenceSnapshot,
    pub voice_states: Vec<crate::ports::VoiceState>,
    pub activity_unread_notifications: i64,
    pub activity_unread_server_dms: i64,
    pub initial_messages: Vec<crate::model::MessageView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_messages_channel_id: Option<Uuid>,
    pub initial_messages_has_more: bool,
    pub resume_seq: u64,
}

impl Ready {
    /// About how many bytes its frame takes: the presences as they are (most of it in a busy
    /// server) and a generous share for every other item, so that the frame is serialized
    /// into one buffer without growing it.
    pub fn size_hint(&self) -> usize {
        let items = self.channels.len()
            + self.categories.len()
            + self.roles.len()
            + self.read_states.len()
            + self.voice_states.len();
        4096 + self.presences.json_len() + 512 * items + 2048 * self.initial_messages.len()
    }
}

/// Builds `system.ready`; when `active_channel` is readable its newest 50 messages are
/// included and the caller learns (through the second value) to subscribe to it.
pub async fn ready(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    session_id: Uuid,
    active_channel: Option<Uuid>,
    resume_seq: u64,
) -> CoreResult<(Ready, Option<Uuid>)> {
    let perms = Perms::load(svc, server, caller).await?;
    // (Not `readable_channels`: it would load the same permissions a second time.)
    let channels = perms.readable(
        super::base::loaders::channels(svc, server.id)
            .await?
            .iter()
            .cloned(),
    );
    let categories = super::base::loaders::categories(svc, server.id)
        .await?
        .iter()
        .filter(|c| perms.sees_category(c.id, &channels))
        .cloned()
        .collect();
    let config = super::base::loaders::config(svc, server.id).await?;
    let member = caller.require_member()?;
    let server_bits = perms.server;
    let self_member = super::base::loaders::member_view(svc, member)
        .await?
        .map(|view| (*view).clone());
    let (mut notifications, mut dms) = (0, 0);
    for item in svc
        .activity
        .unread_by_type(server.id, caller.user_id)
        .await?
    {
        if item.0 == "server_dm" {
            dms += item.1;
        } else {
            notifications += item.1;
        }
    }
    let active = active_channel.filter(|id| channels.iter().any(|c| c.id == *id));
    let initial: MessagePage = match active {
        Some(id) => {
            // The checks of `messages.list`, so that ready fails as that call would.
            let (channel, perms) = channel_and_perms_memo(svc, server, caller, id).await?;
            perms.require_in(&channel, bits::READ_MESSAGES, "READ_MESSAGES")?;
            views::page(
                svc,
                server.id,
                id,
                Cursor::Latest,
                50,
                false,
                caller.user_id,
            )
            .await?
        }
        None => MessagePage {
            messages: Vec::new(),
            has_more: false,
        },
    };
    Ok((
        Ready {
            session_id,
            user_id: caller.user_id,
            protocol_version: PROTOCOL_VERSION,
            server: ServerView::new(
                server,
                &config,
                svc.settings.hosting_mode,
                permissions::has(server_bits, bits::MANAGE_SERVER),
            ),
            channels,
            categories,
            roles: perms.data.roles.clone(),
            self_member,
            read_states: svc.messages.read_states(server.id, caller.user_id).await?,
            presences: svc.presence.snapshot(server.id).await?,
            voice_states: svc.voice_states.list(server.id).await?,
            activity_unread_notifications: notifications,
            activity_unread_server_dms: dms,
            initial_messages: initial.messages,
            initial_messages_channel_id: active,
            initial_messages_has_more: initial.has_more,
            resume_seq,
        },
        active,
    ))
}

/// Events after which a session's channel permissions may have changed.
pub fn changes_permissions(event: &str) -> bool {
    matches!(
        event,
        "permissions.update"
            | "role.update"
            | "role.delete"
            | "member.update"
            | "channel.delete"
            | "category.delete"
            | "channel.update"
    )
}

/// How a presence is announced (`presence.update`, server scope).
async fn announce(svc: &Services, server_id: Uuid, presence: &crate::ports::Presence) {
    publish(svc, server_id, Scope::Server, "presence.update", presence).await;
}

/// Counts one more open session of `user_id` and tells whether it is within the user's `cap`
/// of sessions in the server (0: none). The count is taken first and checked after, in one
/// step across processes, so that sessions identifying at the same moment cannot all pass a
/// check made before any of them was counted. A session over the cap stays counted until the
/// caller gives its count back as for any session that closed ([`session_closed`], then
/// [`offline_if_gone`] at zero): a real session may have closed meanwhile.
pub async fn session_counted(
    svc: &Services,
    server_id: Uuid,
    user_id: Uuid,
    cap: u32,
) -> CoreResult<bool> {
    let open = svc.presence.connect(server_id, user_id).await?;
    Ok(cap == 0 || open <= u64::from(cap))
}

/// A counted session of `user_id` opened: the user comes online if they were not.
pub async fn session_opened(svc: &Services, server_id: Uuid, user_id: Uuid) -> CoreResult<()> {
    if svc.presence.get(server_id, user_id).await?.is_none() {
        let presence = crate::ports::Presence {
            user_id,
            status: "online".into(),
            custom_text: None,
            last_active_at: svc.clock.now(),
        };
        svc.presence.set(server_id, presence.clone()).await?;
        announce(svc, server_id, &presence).await;
    }
    Ok(())
}

/// A session of `user_id` closed; returns how many remain (across every process).
pub async fn session_closed(svc: &Services, server_id: Uuid, user_id: Uuid) -> CoreResult<u64> {
    svc.presence.disconnect(server_id, user_id).await
}

/// After the offline grace: when the user has no session left, they go offline.
pub async fn offline_if_gone(svc: &Services, server_id: Uuid, user_id: Uuid) -> CoreResult<()> {
    if svc.presence.connections(server_id, user_id).await? == 0
        && svc.presence.remove(server_id, user_id).await?
    {
        let offline = crate::ports::Presence {
            user_id,
            status: "offline".into(),
            custom_text: None,
            last_active_at: svc.clock.now(),
        };
        announce(svc, server_id, &offline).await;
    }
    Ok(())
}

/// The client's `presence.update {status, custom_text?}`: `online`, `idle`, `dnd` or
/// `offline` (shown as offline to others), custom text up to 128 characters. `false` when the
/// input is invalid (ignored, as the reference does).
pub async fn set_presence(
    svc: &Services,
    server_id: Uuid,
    user_id: Uuid,
    status: &str,
    custom_text: Option<String>,
) -> CoreResult<bool> {
    if !matches!(status, "online" | "idle" | "dnd" | "offline")
        || custom_text
            .as_ref()
            .is_some_and(|t| t.chars().count() > 128)
    {
        return Ok(false);
    }
    let presence = crate::ports::Presence {
        user_id,
        status: status.into(),
        custom_text: custom_text.filter(|t| !t.is_empty()),
        last_active_at: svc.clock.now(),
    };
    svc.presence.set(server_id, presence.clone()).await?;
    announce(svc, server_id, &presence).await;
    Ok(true)
}

/// `server_dm.typing {conversation_id}` from a participant: the peer's sessions in this server
/// get `server_dm.typing {conversation_id, user_id, timestamp}`. Anything else is ignored.
pub async fn dm_typing(
    svc: &Services,
    server_id: Uuid,
    user_id: Uuid,
    conversation_id: Uuid,
) -> CoreResult<()> {
    let Some(conversation) = svc.dms.conversation(server_id, conversation_id).await? else {
        return Ok(());
    };
    let peer = if conversation.user_a == user_id {
        conversation.user_b
    } else if conversation.user_b == user_id {
        conversation.user_a
    } else {
        return Ok(());
    };
    #[derive(Serialize)]
    struct DmTyping {
        conversation_id: Uuid,
        user_id: Uuid,
        #[serde(serialize_with = "crate::model::time::iso")]
        timestamp: Timestamp,
    }
    let payload = DmTyping {
        conversation_id,
        user_id,
        timestamp: svc.clock.now(),
    };
    publish(
        svc,
        server_id,
        Scope::User(peer),
        "server_dm.typing",
        &payload,
    )
    .await;
    Ok(())
}

/// `typing.start` / `typing.stop {channel_id}` from a member who can read the channel (whether
/// or not their session subscribed to it): the channel's subscribers get
/// `{channel_id, user_id, timestamp}` (ISO-8601; no timestamp on stop). Anything else is
/// ignored, as the reference ignores invalid socket events.
pub async fn typing(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    channel_id: Uuid,
    start: bool,
) -> CoreResult<()> {
    let Some(channel) = super::base::loaders::channel(svc, server.id, channel_id).await? else {
        return Ok(());
    };
    let perms = Perms::load(svc, server, caller).await?;
    if !perms.reads(&channel) {
        return Ok(());
    }
    #[derive(Serialize)]
    struct Typing {
        channel_id: Uuid,
        user_id: Uuid,
        #[serde(
            serialize_with = "crate::model::time::iso_opt",
            skip_serializing_if = "Option::is_none"
        )]
        timestamp: Option<Timestamp>,
    }
    let payload = Typing {
        channel_id,
        user_id: caller.user_id,
        timestamp: start.then(|| svc.clock.now()),
    };
    let name = if start { "typing.start" } else { "typing.stop" };
    publish(svc, server.id, Scope::Channel(channel_id), name, &payload).await;
    Ok(())
}
