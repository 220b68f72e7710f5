//! The notify socket `/notify` (reference §3.6, DECISIONS §3.12): for servers a client is not
//! looking at, a light socket that only says "you were mentioned in this channel": its
//! connection loop, and the entries the dispatcher pings.

use crate::body::Ws;
use crate::frame::Frame;
use crate::inbound::{echoed, Inbound, Incoming};
use crate::registry::Gateway;
use actix_http::ws::{CloseCode, CloseReason};
use ecto_core::new_id;
use ecto_core::usecases::base::publish::close;
use ecto_core::usecases::gateway::{identify, HEARTBEAT_INTERVAL_MS};
use ecto_core::usecases::tenancy::resolve_server;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Runs one notify connection until it closes.
pub(crate) async fn run(
    gateway: Arc<Gateway>,
    addressing: (Option<String>, Option<String>),
    mut ws: Ws,
    inbound: &mut Inbound,
) {
    let id = new_id();
    let hello = json!({ "event": "system.hello", "data": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS, "session_id": id } });
    if ws.text(hello.to_string()).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(gateway.config.identify_timeout);
    tokio::pin!(deadline);
    let mut watchdog = tokio::time::interval(Duration::from_millis(
        (gateway.config.heartbeat_timeout.as_millis() as u64 / 3).clamp(50, 30_000),
    ));
    let mut last_heartbeat = Instant::now();
    let mut outbound: Option<mpsc::Receiver<Out>> = None;
    // A close the server asked for (kick, ban, leave, revocation, deletion), with its reason.
    let mut asked: Option<String> = None;
    // The socket's hold on its server's events (mentions and closes arrive through them).
    let mut joined = None;
    let outcome: Option<(u16, &'static str)> = loop {
        tokio::select! {
            _ = &mut deadline, if outbound.is_none() => break Some((close::NOT_AUTHENTICATED, "Identify timeout")),
            _ = watchdog.tick() => {
                if last_heartbeat.elapsed() > gateway.config.heartbeat_timeout {
                    break Some((close::SESSION_TIMEOUT, "Heartbeat timeout"));
                }
            }
            frame = async { match &mut outbound { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                match frame {
                    Some(Out::Text(text)) => if ws.text(text).await.is_err() { break None },
                    Some(Out::Close(code, reason)) => {
                        asked = Some(reason);
                        break Some((code, ""));
                    }
                    // Only shutdown drops the sender of a live notify socket.
                    None => break Some((close::SERVER_SHUTTING_DOWN, "Server shutting down")),
                }
            }
            msg = inbound.next() => match msg {
                Some(Ok(Incoming::Text(text))) => {
                    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(&text) else {
                        break Some((close::INVALID_PAYLOAD, "Invalid JSON"));
                    };
                    let Some(event) = frame.get("event").and_then(Value::as_str) else {
                        break Some((close::INVALID_PAYLOAD, "Invalid JSON"));
                    };
                    match (event, outbound.is_some()) {
                        ("system.identify", true) => break Some((close::ALREADY_AUTHENTICATED, "Already authenticated")),
                        ("system.identify", false) => {
                            let token = frame.get("data").and_then(|d| d.get("token")).and_then(Value::as_str).unwrap_or("");
                            let svc = &gateway.services;
                            let Ok(server) = resolve_server(svc, addressing.0.as_deref(), addressing.1.as_deref()).await else {
                                break Some((close::UNKNOWN_ERROR, "Unknown server"));
                            };
                            let caller = match identify(svc, &server, token).await {
                                Ok(Ok(caller)) => caller,
                                Ok(Err(refusal)) => break Some((refusal.code, refusal.reason)),
                                Err(_) => break Some((close::UNKNOWN_ERROR, "Identify failed")),
                            };
                            let Ok(hold) = gateway.join(server.id).await else {
                                break Some((close::UNKNOWN_ERROR, "Identify failed"));
                            };
                            joined = Some(hold);
                            let (tx, rx) = mpsc::channel(64);
                            gateway.add_notify(id, NotifyEntry::new(server.id, caller.user_id, tx));
                            outbound = Some(rx);
                            let ready = json!({ "event": "system.ready", "data": { "session_id": id } });
                            if ws.text(ready.to_string()).await.is_err() { break None; }
                        }
                        (_, false) => break Some((close::NOT_AUTHENTICATED, "Not authenticated")),
                        ("system.heartbeat", true) => {
                            last_heartbeat = Instant::now();
                            let ack = json!({ "event": "system.heartbeat_ack", "data": {} });
                            if ws.text(ack.to_string()).await.is_err() { break None; }
                        }
                        _ => {}
                    }
                }
                Some(Ok(Incoming::Ping(bytes))) => { if ws.pong(&bytes).await.is_err() { break None; } }
                Some(Ok(Incoming::Close(code))) => break echoed(code).map(|c| (c, "")),
                None => break None,
                Some(Ok(_)) => {}
                Some(Err(_)) => break Some((close::INVALID_PAYLOAD, "Invalid frame")),
            },
        }
    };
    gateway.remove_notify(id);
    drop(joined);
    let reason = outcome.map(|(code, text)| CloseReason {
        code: CloseCode::Other(code),
        description: Some(asked.unwrap_or_else(|| text.into())),
    });
    let _ = ws.close(reason).await;
}

/// What the gateway sends a notify connection.
pub(crate) enum Out {
    Text(Frame),
    /// Close with this code and reason.
    Close(u16, String),
}

/// A `/notify` connection: mention pings for one user of one server, at most one per
/// channel every 2 s.
pub(crate) struct NotifyEntry {
    server_id: Uuid,
    user_id: Uuid,
    tx: mpsc::Sender<Out>,
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl NotifyEntry {
    /// An entry sending its pings to `tx`.
    pub fn new(server_id: Uuid, user_id: Uuid, tx: mpsc::Sender<Out>) -> Self {
        Self {
            server_id,
            user_id,
            tx,
            last: Mutex::new(HashMap::new()),
        }
    }
}

/// Notify pings per channel are debounced to one per this interval (reference §3.6).
const NOTIFY_DEBOUNCE: Duration = Duration::from_secs(2);

impl Gateway {
    /// Registers an identified notify socket.
    pub(crate) fn add_notify(&self, id: Uuid, entry: NotifyEntry) {
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry);
    }

    /// Forgets a notify socket that closed.
    pub(crate) fn remove_notify(&self, id: Uuid) {
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Pings the user's notify sockets of the server about a mention in `channel_id`.
    pub(crate) fn notify_mention(&self, server_id: Uuid, user_id: Uuid, channel_id: Uuid) {
        let now = Instant::now();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let text = Frame::from(
            serde_json::json!({ "event": "notify", "data": { "channel_id": channel_id, "ts": ts, "type": "mention" } }).to_string(),
        );
        let notify = self.notify.lock().unwrap_or_else(|p| p.into_inner());
        for entry in notify
            .values()
            .filter(|e| e.server_id == server_id && e.user_id == user_id)
        {
            let mut last = entry.last.lock().unwrap_or_else(|p| p.into_inner());
            if last
                .get(&channel_id)
                .is_some_and(|at| now.duration_since(*at) < NOTIFY_DEBOUNCE)
            {
                continue;
            }
            last.insert(channel_id, now);
            let _ = entry.tx.try_send(Out::Text(text.clone()));
        }
    }

    /// Closes the server's notify sockets of `user_id` (all of them when `None`): the same
    /// closes as `/ws` sessions get on a kick, ban, leave, revocation or deletion.
    pub(crate) fn close_notify(
        &self,
        server_id: Uuid,
        user_id: Option<Uuid>,
        code: u16,
        reason: &str,
    ) {
        let notify = self.notify.lock().unwrap_or_else(|p| p.into_inner());
        for entry in notify
            .values()
            .filter(|e| e.server_id == server_id && user_id.is_none_or(|u| e.user_id == u))
        {
            let _ = entry.tx.try_send(Out::Close(code, reason.to_owned()));
        }
    }
}
