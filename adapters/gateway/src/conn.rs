//! One WebSocket connection's loop: `system.hello`, then client frames, dispatched frames
//! and the timers until the socket closes, and what follows its close. Identify is
//! `identify.rs`, the other client events `events.rs`, resume `resume.rs`.

use crate::body::Ws;
use crate::inbound::{echoed, Inbound, Incoming};
use crate::registry::Gateway;
use crate::session::{CloseSignal, Session, SocketHandle};
use crate::streams::Joined;
use actix_http::ws::{CloseCode, CloseReason};
use ecto_core::model::Server;
use ecto_core::new_id;
use ecto_core::usecases::base::publish::close;
use ecto_core::usecases::gateway::{
    offline_if_gone, session_closed, session_opened, HEARTBEAT_INTERVAL_MS,
};
use ecto_core::usecases::tenancy::resolve_server;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What a handler of a client event leaves the connection to do.
pub(crate) enum Flow {
    Continue,
    Close(u16, &'static str),
}

/// One connection's state: its socket, its session once identified, and its limits.
pub(crate) struct Conn {
    pub(crate) gateway: Arc<Gateway>,
    addressing: (Option<String>, Option<String>),
    pub(crate) ws: Ws,
    pub(crate) session: Option<Arc<Session>>,
    pub(crate) close: Option<Arc<CloseSignal>>,
    /// The id announced in `system.hello`; a new session takes it.
    pub(crate) hello_id: Uuid,
    pub(crate) last_heartbeat: Instant,
    /// When this socket last sent typing per channel or conversation.
    pub(crate) typing: HashMap<Uuid, Instant>,
    pub(crate) last_presence: Option<Instant>,
    pub(crate) budget: EventBudget,
    /// The socket's hold on its server's events (from identify on).
    joined: Option<Joined>,
    /// The server and user this socket is counted for against the user's cap of sockets,
    /// from identify on; given back when the socket closes.
    pub(crate) counted: Option<(Uuid, Uuid)>,
}

/// The socket's token bucket of client events (pings included): `capacity` per 10 s,
/// refilled evenly, held in the connection itself (no shared store to ask per event).
pub(crate) struct EventBudget {
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
    pub(crate) fn take(&mut self) -> bool {
        if self.capacity == 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.updated).as_secs_f64() / Self::WINDOW_SECS;
        self.tokens = (self.tokens + refill * self.capacity).min(self.capacity);
        self.updated = now;
        if self.tokens < 1.0 {
            metrics::counter!("ecto_rate_limit_refusals_total", "bucket" => "ws_events")
                .increment(1);
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Sends `{"event":…,"data":…}`.
pub(crate) async fn send_json(ws: &mut Ws, event: &str, data: Value) -> bool {
    send_sized(ws, event, &data, 128).await
}

/// The text of `{"event":…,"data":…}` with `data` serialized straight into it, in a buffer
/// of `capacity` bytes to start with.
fn frame_text<T: serde::Serialize>(event: &str, data: &T, capacity: usize) -> Option<String> {
    #[derive(serde::Serialize)]
    struct Out<'a, T> {
        event: &'a str,
        data: &'a T,
    }
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, &Out { event, data })
        .map_err(|e| tracing::error!(error = %e, event, "cannot serialize a frame"))
        .ok()?;
    // serde_json writes UTF-8 only; the check is one pass over bytes just written.
    String::from_utf8(out).ok()
}

/// Sends `{"event":…,"data":…}` with `data` serialized straight into the frame, in a buffer
/// of `capacity` bytes to start with: a large frame
/// (`system.ready`) built in a buffer grown by doubling was copied at each growth (perf, 1,000
/// sessions connecting: the reallocations were 5 % of the server's CPU).
pub(crate) async fn send_sized<T: serde::Serialize>(
    ws: &mut Ws,
    event: &str,
    data: &T,
    capacity: usize,
) -> bool {
    match frame_text(event, data, capacity) {
        Some(text) => ws.text(text).await.is_ok(),
        None => false,
    }
}

/// Queues `system.hello` on a new socket's outbox, before the upgrade is answered: the
/// answer and the hello then leave in one write. Returns the hello's session id, or `None`
/// when the outbox takes nothing.
pub(crate) fn hello(ws: &Ws) -> Option<Uuid> {
    let hello_id = new_id();
    let data = json!({ "heartbeat_interval": HEARTBEAT_INTERVAL_MS, "session_id": hello_id });
    let text = frame_text("system.hello", &data, 128)?;
    ws.outbox().try_send(crate::frame::Frame::from(text)).ok()?;
    Some(hello_id)
}

/// Runs a connection, whose hello ([`hello`]) named `hello_id`, until it closes.
pub(crate) async fn run(
    gateway: Arc<Gateway>,
    addressing: (Option<String>, Option<String>),
    ws: Ws,
    hello_id: Uuid,
    inbound: &mut Inbound,
) {
    let mut conn = Conn {
        gateway: gateway.clone(),
        addressing,
        ws,
        session: None,
        close: None,
        hello_id,
        last_heartbeat: Instant::now(),
        typing: HashMap::new(),
        last_presence: None,
        budget: EventBudget::new(gateway.config.events_per_10s),
        joined: None,
        counted: None,
    };
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
            msg = inbound.next() => match msg {
                // Boxed: the handler's state (identify, ready) lives only while it runs, not in
                // every idle socket's task.
                Some(Ok(Incoming::Text(text))) => match Box::pin(conn.on_text(&text)).await {
                    Flow::Continue => {}
                    Flow::Close(code, reason) => break Some((code, reason.into())),
                },
                Some(Ok(Incoming::Ping(bytes))) => {
                    if !conn.budget.take() {
                        break Some((close::RATE_LIMITED, "Rate limited".into()));
                    }
                    if conn.ws.pong(&bytes).await.is_err() { break None; }
                }
                Some(Ok(Incoming::Close(code))) => break echoed(code).map(|c| (c, String::new())),
                None => break None,
                Some(Ok(Incoming::Binary)) => {
                    break Some((close::INVALID_PAYLOAD, "Invalid JSON".into()));
                }
                Some(Ok(Incoming::Pong)) => {}
                Some(Err(_)) => break Some((close::INVALID_PAYLOAD, "Invalid frame".into())),
            },
        }
    };
    // The steps after the loop are boxed, like the handlers in it: the task's future is as
    // large as its largest state, and every idle socket keeps it (heaptrack, 2,000 idle
    // sessions: 3.2 KiB per task before).
    if let Some(session) = &conn.session {
        Box::pin(after_close(&gateway, session)).await;
    } else if let Some((server_id, user_id)) = conn.counted {
        // Counted at identify, but refused over the cap or no session was set up: given
        // back before the close goes out.
        Box::pin(uncounted(gateway.clone(), server_id, user_id)).await;
    }
    let reason = outcome.map(|(code, description)| CloseReason {
        code: CloseCode::Other(code),
        description: Some(description),
    });
    // A peer that does not read cannot take the close frame either: give it a moment.
    let _ = Box::pin(tokio::time::timeout(
        Duration::from_secs(2),
        conn.ws.close(reason),
    ))
    .await;
}

/// A session's socket went away: the session is detached (its checkpoint stays for a resume
/// unless it was closed on purpose), and when it was the user's last session here they go
/// offline after the grace period.
async fn after_close(gateway: &Arc<Gateway>, session: &Arc<Session>) {
    // The session's checkpoint stays for a resume unless it was closed on purpose.
    gateway.detach(session);
    let (server_id, user_id) = (session.server.id, session.caller.user_id);
    // Its voice ends with it (reference §3.4: only when this session holds it).
    ecto_core::usecases::voice::session_closed(&gateway.services, server_id, user_id, session.id)
        .await;
    uncounted(gateway.clone(), server_id, user_id).await;
}

/// A socket counted for `user_id` closed: when it was the user's last one here they go
/// offline after the grace period.
async fn uncounted(gateway: Arc<Gateway>, server_id: Uuid, user_id: Uuid) {
    let svc = gateway.services.clone();
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

async fn closed(signal: &Option<Arc<CloseSignal>>) -> (u16, String) {
    match signal {
        Some(signal) => signal.closed().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    /// Sends `{"event":…,"data":…}`; a failed send closes the socket.
    pub(crate) async fn reply(&mut self, event: &str, data: Value) -> Flow {
        if send_json(&mut self.ws, event, data).await {
            Flow::Continue
        } else {
            Flow::Close(close::UNKNOWN_ERROR, "Send failed")
        }
    }

    /// The server the socket's addressing names.
    pub(crate) async fn server(&self) -> Option<Server> {
        let (addr, host) = &self.addressing;
        resolve_server(&self.gateway.services, addr.as_deref(), host.as_deref())
            .await
            .ok()
    }

    /// Follows the server's events for as long as this socket lives; `false` when the event
    /// bus cannot follow it now.
    pub(crate) async fn follow(&mut self, server_id: Uuid) -> bool {
        if self.joined.is_some() {
            return true;
        }
        match self.gateway.join(server_id).await {
            Ok(joined) => {
                self.joined = Some(joined);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "server's events not followed");
                false
            }
        }
    }

    /// The dispatcher's handle on this socket and a fresh close signal. Frames it delivers
    /// are held back until the session's first message is queued ([`Conn::live`]).
    pub(crate) fn attach(&mut self) -> SocketHandle {
        let close = Arc::new(CloseSignal::default());
        self.close = Some(close.clone());
        let frames = self.ws.outbox().clone();
        frames.hold();
        SocketHandle { frames, close }
    }

    /// The session is set up (`system.ready` or `system.resumed` queued): the frames
    /// delivered meanwhile follow.
    pub(crate) fn live(&self) {
        self.ws.outbox().release();
    }

    /// The session was not set up after all: the frames delivered meanwhile are dropped.
    pub(crate) fn detach_socket(&mut self) {
        self.ws.outbox().discard();
        self.close = None;
    }

    /// The counted session is set up: the user comes online if they were not.
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
}

/// The `Uuid` at `key` of an event's data, when it is one.
pub(crate) fn uuid_field(data: &Value, key: &str) -> Option<Uuid> {
    data.get(key)
        .and_then(Value::as_str)
        .and_then(ecto_core::parse_id)
}
