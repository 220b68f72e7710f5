//! Sessions and the dispatcher that feeds them from the event bus.

use ecto_core::model::Server;
use ecto_core::ports::{Event, Scope};
use ecto_core::usecases::gateway::{changes_permissions, readable, CLOSE_EVENT};
use ecto_core::usecases::Caller;
use ecto_core::Services;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Gateway limits (config/default.toml, `ws_*` keys).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub identify_timeout: Duration,
    pub heartbeat_timeout: Duration,
    /// A session keeps at least this many of its last events for resume...
    pub buffer_events: usize,
    /// ...and every event younger than this.
    pub buffer_age: Duration,
    /// Frames queued for one socket before it is closed for being too slow.
    pub outbound_queue: usize,
    /// How long a user without sessions stays online before `presence.update` offline.
    pub presence_grace: Duration,
    /// Client events one socket may send per 10 s before it is closed with 4008 (0: no limit).
    pub events_per_10s: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            identify_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(90),
            buffer_events: 500,
            buffer_age: Duration::from_secs(300),
            outbound_queue: 1024,
            presence_grace: Duration::from_secs(15),
            events_per_10s: 120,
        }
    }
}

/// What the dispatcher hands a socket.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame(Arc<str>),
    Close(u16, String),
}

/// A session's state, shared by its socket and the dispatcher.
pub(crate) struct SessionState {
    pub seq: u64,
    pub buffer: VecDeque<(u64, Instant, Arc<str>)>,
    pub subscriptions: HashSet<Uuid>,
    pub socket: Option<mpsc::Sender<Outbound>>,
    pub detached_at: Option<Instant>,
}

/// One identified session.
pub(crate) struct Session {
    pub id: Uuid,
    pub server: Server,
    pub caller: Caller,
    pub state: Mutex<SessionState>,
}

impl Session {
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A `/notify` connection: mention pings for one user of one server, at most one per
/// channel every 2 s.
pub(crate) struct NotifyEntry {
    server_id: Uuid,
    user_id: Uuid,
    tx: mpsc::Sender<Arc<str>>,
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl NotifyEntry {
    pub fn new(server_id: Uuid, user_id: Uuid, tx: mpsc::Sender<Arc<str>>) -> Self {
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

/// The process's sessions and the dispatcher feeding them.
pub struct Gateway {
    pub(crate) services: Services,
    pub(crate) config: GatewayConfig,
    sessions: Mutex<HashMap<Uuid, Arc<Session>>>,
    notify: Mutex<HashMap<Uuid, NotifyEntry>>,
}

fn frame(name: &str, data: &str, seq: u64) -> Arc<str> {
    let name = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into());
    Arc::from(format!(
        "{{\"event\":{name},\"data\":{data},\"seq\":{seq}}}"
    ))
}

impl Gateway {
    /// Creates the gateway and starts its dispatcher and janitor on the current runtime.
    pub async fn start(
        services: Services,
        config: GatewayConfig,
    ) -> ecto_core::CoreResult<Arc<Gateway>> {
        let gateway = Arc::new(Gateway {
            services,
            config,
            sessions: Mutex::new(HashMap::new()),
            notify: Mutex::new(HashMap::new()),
        });
        let mut events = gateway.services.events.subscribe().await?;
        let dispatcher = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let Some(gateway) = dispatcher.upgrade() else {
                    break;
                };
                gateway.dispatch(event);
            }
        });
        let janitor = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                let Some(gateway) = janitor.upgrade() else {
                    break;
                };
                gateway.expire_detached();
            }
        });
        Ok(gateway)
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add_notify(&self, id: Uuid, entry: NotifyEntry) {
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry);
    }

    pub(crate) fn remove_notify(&self, id: Uuid) {
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Pings the user's notify sockets of the server about a mention in `channel_id`.
    fn notify_mention(&self, server_id: Uuid, user_id: Uuid, channel_id: Uuid) {
        let now = Instant::now();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let text: Arc<str> = Arc::from(
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
            let _ = entry.tx.try_send(text.clone());
        }
    }

    pub(crate) fn insert(&self, session: Arc<Session>) {
        self.sessions().insert(session.id, session);
    }

    pub(crate) fn get(&self, id: Uuid) -> Option<Arc<Session>> {
        self.sessions().get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: Uuid) {
        self.sessions().remove(&id);
    }

    /// Closes every socket of this process with `code` (graceful shutdown: 4011) and forgets
    /// the sessions; `/notify` sockets close too.
    pub fn close_all(&self, code: u16, reason: &str) {
        let sessions: Vec<Arc<Session>> = self.sessions().drain().map(|(_, s)| s).collect();
        for s in sessions {
            if let Some(socket) = s.lock().socket.take() {
                let _ = socket.try_send(Outbound::Close(code, reason.to_owned()));
            }
        }
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many sessions (attached or waiting for a resume) the process holds.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    fn expire_detached(&self) {
        let age = self.config.buffer_age;
        self.sessions()
            .retain(|_, s| s.lock().detached_at.is_none_or(|at| at.elapsed() < age));
    }

    /// Appends a frame to a session's buffer (trimmed to the configured count/age) and sends
    /// it to its socket; a socket whose queue is full is told to close, and can resume.
    pub(crate) fn deliver(&self, session: &Session, name: &str, data: &str) {
        let mut state = session.lock();
        state.seq += 1;
        let seq = state.seq;
        let text = frame(name, data, seq);
        let now = Instant::now();
        state.buffer.push_back((seq, now, text.clone()));
        while state.buffer.len() > self.config.buffer_events
            && state
                .buffer
                .front()
                .is_some_and(|(_, at, _)| now.duration_since(*at) > self.config.buffer_age)
        {
            state.buffer.pop_front();
        }
        if let Some(socket) = &state.socket {
            if socket.try_send(Outbound::Frame(text)).is_err() {
                let _ = socket.try_send(Outbound::Close(4000, "Outbound queue full".into()));
                state.socket = None;
                state.detached_at = Some(now);
            }
        }
    }

    fn dispatch(self: &Arc<Self>, event: Event) {
        if let (Scope::User(user), "mention.create") = (event.scope, event.name.as_str()) {
            if let Some(channel) = event.data["channel_id"]
                .as_str()
                .and_then(|c| Uuid::parse_str(c).ok())
            {
                self.notify_mention(event.server_id, user, channel);
            }
        }
        let targets: Vec<Arc<Session>> = self
            .sessions()
            .values()
            .filter(|s| s.server.id == event.server_id)
            .filter(|s| match event.scope {
                Scope::Server => true,
                Scope::User(u) => s.caller.user_id == u,
                Scope::Channel(_) => true,
            })
            .cloned()
            .collect();
        if event.name == CLOSE_EVENT {
            let code = event.data["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(4000);
            let reason = event.data["reason"].as_str().unwrap_or("").to_owned();
            for s in targets {
                self.remove(s.id);
                if let Some(socket) = s.lock().socket.take() {
                    let _ = socket.try_send(Outbound::Close(code, reason.clone()));
                }
            }
            return;
        }
        // Serialized once per event, whatever the number of recipients.
        let data = serde_json::to_string(&event.data).unwrap_or_else(|_| "null".into());
        for s in &targets {
            if let Scope::Channel(channel) = event.scope {
                if !s.lock().subscriptions.contains(&channel) {
                    continue;
                }
            }
            self.deliver(s, &event.name, &data);
        }
        if changes_permissions(&event.name) {
            for s in targets {
                let gateway = self.clone();
                tokio::spawn(async move { gateway.recheck(&s).await });
            }
        }
    }

    /// Drops subscriptions to channels the session can no longer read.
    async fn recheck(&self, session: &Session) {
        match readable(&self.services, &session.server, &session.caller).await {
            Ok(visible) => session.lock().subscriptions.retain(|c| visible.contains(c)),
            Err(e) => {
                // Unknown rights: safer to hear nothing than too much.
                tracing::warn!(error = %e, "permission recheck failed; dropping subscriptions");
                session.lock().subscriptions.clear();
            }
        }
    }
}
