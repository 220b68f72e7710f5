//! The client events of a socket (`system.identify`, `system.heartbeat`, `subscribe`,
//! `typing.*`, `presence.update`, `server_dm.typing`, …) and their per-socket limits; the
//! rules are the core's.

use crate::conn::{uuid_field, Conn, Flow};
use ecto_core::usecases::base::publish::close;
use ecto_core::usecases::gateway::{dm_typing, readable, set_presence, typing};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Typing indicators: one per channel per 3 s (reference §7.1).
const TYPING_INTERVAL: Duration = Duration::from_secs(3);
/// Presence changes: one per 5 s (reference §7.1).
const PRESENCE_INTERVAL: Duration = Duration::from_secs(5);

impl Conn {
    /// Handles one text frame of the client.
    pub(crate) async fn on_text(&mut self, text: &str) -> Flow {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return Flow::Close(close::INVALID_PAYLOAD, "Invalid JSON");
        };
        let Some(event) = frame.get("event").and_then(Value::as_str) else {
            return Flow::Close(close::INVALID_PAYLOAD, "Invalid JSON");
        };
        if frame
            .get("seq")
            .is_some_and(|s| !s.is_number() && !s.is_null())
        {
            return Flow::Close(close::INVALID_PAYLOAD, "Invalid JSON");
        }
        let data = frame.get("data").cloned().unwrap_or(Value::Null);
        if !self.budget.take() {
            return Flow::Close(close::RATE_LIMITED, "Rate limited");
        }
        match (event, self.session.is_some()) {
            ("system.identify", false) => self.on_identify(data).await,
            ("system.identify", true) => {
                Flow::Close(close::ALREADY_AUTHENTICATED, "Already authenticated")
            }
            (_, false) => Flow::Close(close::NOT_AUTHENTICATED, "Not authenticated"),
            ("system.heartbeat", true) => {
                self.last_heartbeat = Instant::now();
                self.reply("system.heartbeat_ack", json!({})).await
            }
            ("subscribe", true) => self.on_subscribe(&data).await,
            ("unsubscribe", true) => {
                let Some(channel) = uuid_field(&data, "channel_id") else {
                    return Flow::Continue;
                };
                if let Some(s) = &self.session {
                    self.gateway.subscribe(s, channel, false);
                }
                self.reply("unsubscribed", json!({ "channel_id": channel }))
                    .await
            }
            ("typing.start", true) | ("typing.stop", true) => self.on_typing(event, &data).await,
            ("system.resume", true) => self.on_resume(&data).await,
            ("presence.update", true) => self.on_presence(&data).await,
            ("server_dm.typing", true) => self.on_dm_typing(&data).await,
            (voice, true) if voice.starts_with("voice.") => self.on_voice(voice, &data).await,
            // Unknown events are ignored.
            _ => Flow::Continue,
        }
    }

    /// `server_dm.typing {conversation_id}`: one per conversation per 3 s, to the peer only.
    async fn on_dm_typing(&mut self, data: &Value) -> Flow {
        let (Some(conversation), Some(session)) =
            (uuid_field(data, "conversation_id"), self.session.clone())
        else {
            return Flow::Continue;
        };
        let now = Instant::now();
        if self
            .typing
            .get(&conversation)
            .is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL)
        {
            return Flow::Continue;
        }
        self.typing.insert(conversation, now);
        let svc = &self.gateway.services;
        if let Err(e) =
            dm_typing(svc, session.server.id, session.caller.user_id, conversation).await
        {
            tracing::warn!(error = %e, "dm typing failed");
        }
        Flow::Continue
    }

    /// `presence.update {status, custom_text?}`: one per 5 s; invalid input is ignored.
    async fn on_presence(&mut self, data: &Value) -> Flow {
        let Some(session) = self.session.clone() else {
            return Flow::Continue;
        };
        if self
            .last_presence
            .is_some_and(|at| at.elapsed() < PRESENCE_INTERVAL)
        {
            return Flow::Continue;
        }
        let Some(status) = data.get("status").and_then(Value::as_str) else {
            return Flow::Continue;
        };
        let text = data
            .get("custom_text")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match set_presence(
            &self.gateway.services,
            session.server.id,
            session.caller.user_id,
            status,
            text,
        )
        .await
        {
            Ok(true) => self.last_presence = Some(Instant::now()),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence update failed"),
        }
        Flow::Continue
    }

    /// `subscribe {channel_id}`: only to a channel the session can read now.
    async fn on_subscribe(&mut self, data: &Value) -> Flow {
        let (Some(channel), Some(session)) = (uuid_field(data, "channel_id"), self.session.clone())
        else {
            return Flow::Continue;
        };
        let readable = readable(&self.gateway.services, &session.server, &session.caller).await;
        match readable {
            Ok(visible) if visible.contains(&channel) => {
                self.gateway.subscribe(&session, channel, true);
                self.reply("subscribed", json!({ "channel_id": channel }))
                    .await
            }
            // Not readable: silently nothing (reference §3.3).
            _ => Flow::Continue,
        }
    }

    /// `typing.start` (one per channel per 3 s) and `typing.stop`; who may type where is the
    /// core's rule.
    async fn on_typing(&mut self, event: &str, data: &Value) -> Flow {
        let (Some(channel), Some(session)) = (uuid_field(data, "channel_id"), self.session.clone())
        else {
            return Flow::Continue;
        };
        let start = event == "typing.start";
        let now = Instant::now();
        if start {
            if self
                .typing
                .get(&channel)
                .is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL)
            {
                return Flow::Continue;
            }
            self.typing.insert(channel, now);
        } else {
            self.typing.remove(&channel);
        }
        let svc = &self.gateway.services;
        if let Err(e) = typing(svc, &session.server, &session.caller, channel, start).await {
            tracing::warn!(error = %e, "typing event not published");
        }
        Flow::Continue
    }
}
