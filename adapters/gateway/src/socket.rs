//! One WebSocket connection: handshake, client events, and forwarding of dispatched frames.

use crate::registry::{CloseSignal, Frame, Gateway, Session, SocketHandle};
use crate::resume::find_detached;
use actix_ws::{CloseCode, CloseReason};
use ecto_core::model::Server;
use ecto_core::new_id;
use ecto_core::usecases::base::publish::close;
use ecto_core::usecases::gateway::{
    dm_typing, identify, offline_if_gone, ready, session_closed, session_opened, set_presence,
    typing, HEARTBEAT_INTERVAL_MS, PROTOCOL_VERSION,
};
use ecto_core::usecases::tenancy::resolve_server;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Typing indicators: one per channel per 3 s (reference §7.1).
const TYPING_INTERVAL: Duration = Duration::from_secs(3);
/// Presence changes: one per 5 s (reference §7.1).
const PRESENCE_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) enum Flow {
    Continue,
    Close(u16, &'static str),
}

pub(crate) struct Conn {
    pub(crate) gateway: Arc<Gateway>,
    addressing: (Option<String>, Option<String>),
    pub(crate) ws: actix_ws::Session,
    pub(crate) session: Option<Arc<Session>>,
    pub(crate) outbound: Option<mpsc::Receiver<Frame>>,
    pub(crate) close: Option<Arc<CloseSignal>>,
    hello_id: Uuid,
    last_heartbeat: Instant,
    typing: HashMap<Uuid, Instant>,
    last_presence: Option<Instant>,
    budget: EventBudget,
}

/// The socket's token bucket of client events (pings included): `capacity` per 10 s,
/// refilled evenly, held in the connection itself (no shared store to ask per event).
struct EventBudget {
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl EventBudget {
    const WINDOW_SECS: f64 = 10.0;

    fn new(per_10s: u32) -> Self {
        Self {
            capacity: f64::from(per_10s),
            tokens: f64::from(per_10s),
            updated: Instant::now(),
        }
    }

    /// Takes one token; `false` when the socket is over its budget (0 means no budget).
    fn take(&mut self) -> bool {
        if self.capacity == 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.updated).as_secs_f64() / Self::WINDOW_SECS;
        self.tokens = (self.tokens + refill * self.capacity).min(self.capacity);
        self.updated = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

async fn send_json(ws: &mut actix_ws::Session, event: &str, data: Value) -> bool {
    send_serialized(ws, event, &data).await
}

/// Sends `{"event":…,"data":…}` with `data` serialized straight into the frame.
async fn send_serialized<T: serde::Serialize>(
    ws: &mut actix_ws::Session,
    event: &str,
    data: &T,
) -> bool {
    #[derive(serde::Serialize)]
    struct Out<'a, T> {
        event: &'a str,
        data: &'a T,
    }
    match serde_json::to_string(&Out { event, data }) {
        Ok(text) => ws.text(text).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, event, "cannot serialize a frame");
            false
        }
    }
}

/// Runs a connection until it closes.
pub(crate) async fn run(
    gateway: Arc<Gateway>,
    addressing: (Option<String>, Option<String>),
    ws: actix_ws::Session,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    let hello_id = new_id();
    let mut conn = Conn {
        gateway: gateway.clone(),
        addressing,
        ws,
        session: None,
        outbound: None,
        close: None,
        hello_id,
        last_heartbeat: Instant::now(),
        typing: HashMap::new(),
        last_presence: None,
        budget: EventBudget::new(gateway.config.events_per_10s),
    };
    let hello = json!({ "heartbeat_interval": HEARTBEAT_INTERVAL_MS, "session_id": hello_id });
    if !send_json(&mut conn.ws, "system.hello", hello).await {
        return;
    }
    let identify_deadline = tokio::time::sleep(gateway.config.identify_timeout);
    tokio::pin!(identify_deadline);
    let mut watchdog = tokio::time::interval(Duration::from_millis(
        (gateway.config.heartbeat_timeout.as_millis() as u64 / 3).clamp(50, 30_000),
    ));
    let outcome: Option<(u16, String)> = loop {
        tokio::select! {
            _ = &mut identify_deadline, if conn.session.is_none() => {
                break Some((close::NOT_AUTHENTICATED, "Identify timeout".into()));
            }
            _ = watchdog.tick() => {
                if conn.last_heartbeat.elapsed() > gateway.config.heartbeat_timeout {
                    break Some((close::SESSION_TIMEOUT, "Heartbeat timeout".into()));
                }
            }
            reason = closed(&conn.close) => break Some(reason),
            out = next_outbound(&mut conn.outbound) => match out {
                // A peer that stops reading blocks the write; the dispatcher's close (queue
                // full) must still get through.
                Some(text) => tokio::select! {
                    sent = conn.ws.text(text) => if sent.is_err() { break None; },
                    reason = closed(&conn.close) => break Some(reason),
                },
                None => conn.outbound = None,
            },
            msg = stream.next() => match msg {
                // Boxed: the handler's state (identify, ready) lives only while it runs, not in
                // every idle socket's task.
                Some(Ok(actix_ws::AggregatedMessage::Text(text))) => match Box::pin(conn.on_text(&text)).await {
                    Flow::Continue => {}
                    Flow::Close(code, reason) => break Some((code, reason.into())),
                },
                Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => {
                    if !conn.budget.take() {
                        break Some((close::RATE_LIMITED, "Rate limited".into()));
                    }
                    if conn.ws.pong(&bytes).await.is_err() { break None; }
                }
                Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None => break None,
                Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                    break Some((close::INVALID_PAYLOAD, "Invalid JSON".into()));
                }
                Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => {}
                Some(Err(_)) => break Some((close::INVALID_PAYLOAD, "Invalid frame".into())),
            },
        }
    };
    // The session's checkpoint stays for a resume unless it was closed on purpose.
    if let Some(session) = &conn.session {
        gateway.detach(session);
        let (svc, server_id, user_id) = (
            gateway.services.clone(),
            session.server.id,
            session.caller.user_id,
        );
        let grace = gateway.config.presence_grace;
        match session_closed(&svc, server_id, user_id).await {
            Ok(0) => {
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    if let Err(e) = offline_if_gone(&svc, server_id, user_id).await {
                        tracing::warn!(error = %e, "presence cleanup failed");
                    }
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "presence disconnect failed"),
        }
    }
    let reason = outcome.map(|(code, description)| CloseReason {
        code: CloseCode::Other(code),
        description: Some(description),
    });
    // A peer that does not read cannot take the close frame either: give it a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.ws.close(reason)).await;
}

async fn next_outbound(rx: &mut Option<mpsc::Receiver<Frame>>) -> Option<Frame> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn closed(signal: &Option<Arc<CloseSignal>>) -> (u16, String) {
    match signal {
        Some(signal) => signal.closed().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    async fn on_text(&mut self, text: &str) -> Flow {
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
            // No media plane yet: a join is told so instead of being met with silence.
            ("voice.join", true) => {
                self.reply(
                    "voice.error",
                    json!({ "code": 8002, "message": "Voice server unavailable" }),
                )
                .await
            }
            // Unknown events are ignored.
            _ => Flow::Continue,
        }
    }

    pub(crate) async fn reply(&mut self, event: &str, data: Value) -> Flow {
        if send_json(&mut self.ws, event, data).await {
            Flow::Continue
        } else {
            Flow::Close(close::UNKNOWN_ERROR, "Send failed")
        }
    }

    async fn server(&self) -> Option<Server> {
        let (addr, host) = &self.addressing;
        resolve_server(&self.gateway.services, addr.as_deref(), host.as_deref())
            .await
            .ok()
    }

    async fn on_identify(&mut self, data: Value) -> Flow {
        let Some(token) = data.get("token").and_then(Value::as_str) else {
            return Flow::Close(close::AUTHENTICATION_FAILED, "Auth failed");
        };
        match data.get("protocol_version") {
            None | Some(Value::Null) => {}
            Some(v) if v.as_i64() == Some(PROTOCOL_VERSION) => {}
            Some(_) => {
                return Flow::Close(
                    close::PROTOCOL_VERSION_MISMATCH,
                    "Unsupported protocol version",
                )
            }
        }
        let active = match data.get("active_channel_id") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_str().and_then(ecto_core::parse_id) {
                Some(id) => Some(id),
                None => {
                    return Flow::Close(close::AUTHENTICATION_FAILED, "Invalid identify payload")
                }
            },
        };
        let Some(server) = self.server().await else {
            return Flow::Close(close::UNKNOWN_ERROR, "Unknown server");
        };
        let gateway = self.gateway.clone();
        let svc = &gateway.services;
        let caller = match identify(svc, &server, token).await {
            Ok(Ok(caller)) => caller,
            Ok(Err(refusal)) => return Flow::Close(refusal.code, refusal.reason),
            Err(e) => {
                tracing::warn!(error = %e, "identify failed");
                return Flow::Close(close::UNKNOWN_ERROR, "Identify failed");
            }
        };
        let cap = gateway.config.sockets_per_user;
        if cap > 0 {
            match svc.presence.connections(server.id, caller.user_id).await {
                Ok(open) if open >= u64::from(cap) => {
                    return Flow::Close(close::RATE_LIMITED, "Too many sockets");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session count unavailable"),
            }
        }
        // Resume: the same user's earlier session of this server, if its gap can be served;
        // named by `session_id`, or found by `resume_seq` alone as the Ecto client sends it.
        if let Some(resume_seq) = data.get("resume_seq").and_then(Value::as_u64) {
            let old = match uuid_field(&data, "session_id") {
                Some(id) => Some(id),
                None => find_detached(&gateway, server.id, caller.user_id, resume_seq).await,
            };
            if let Some(old_id) = old {
                if let Some(flow) = self.try_resume(&server, &caller, old_id, resume_seq).await {
                    return flow;
                }
            }
        }
        let session_id = self.hello_id;
        let (payload, active) = match ready(svc, &server, &caller, session_id, active, 0).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "ready failed");
                return Flow::Close(close::UNKNOWN_ERROR, "Ready failed");
            }
        };
        let socket = self.attach();
        let session = Arc::new(Session::new(
            session_id,
            server,
            caller,
            active.into_iter().collect(),
            socket,
            false,
        ));
        self.gateway.insert(session.clone());
        self.session = Some(session.clone());
        let flow = if send_serialized(&mut self.ws, "system.ready", &payload).await {
            Flow::Continue
        } else {
            Flow::Close(close::UNKNOWN_ERROR, "Ready failed")
        };
        self.opened(&session).await;
        flow
    }

    /// A fresh outbound queue and close signal for this socket.
    pub(crate) fn attach(&mut self) -> SocketHandle {
        let (tx, rx) = mpsc::channel(self.gateway.config.outbound_queue.max(16));
        let close = Arc::new(CloseSignal::default());
        self.outbound = Some(rx);
        self.close = Some(close.clone());
        SocketHandle { frames: tx, close }
    }

    /// Counts the session as open for presence (the user comes online if they were not).
    pub(crate) async fn opened(&self, session: &Session) {
        if let Err(e) = session_opened(
            &self.gateway.services,
            session.server.id,
            session.caller.user_id,
        )
        .await
        {
            tracing::warn!(error = %e, "presence connect failed");
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

    async fn on_subscribe(&mut self, data: &Value) -> Flow {
        let (Some(channel), Some(session)) = (uuid_field(data, "channel_id"), self.session.clone())
        else {
            return Flow::Continue;
        };
        let readable = ecto_core::usecases::gateway::readable(
            &self.gateway.services,
            &session.server,
            &session.caller,
        )
        .await;
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

pub(crate) fn uuid_field(data: &Value, key: &str) -> Option<Uuid> {
    data.get(key)
        .and_then(Value::as_str)
        .and_then(ecto_core::parse_id)
}
