//! Sessions and the dispatcher that feeds them from the event bus.
//!
//! Resume works from checkpoints (see [`ecto_core::ports::SessionBuffer`]): every session
//! records `(seq, position, subscriptions)` when it starts, when its subscriptions change,
//! periodically, and when its socket goes away; a resume, on this process or another, replays
//! the event log from the newest usable checkpoint with the same filter the dispatcher uses.
//! For that replay to number events exactly as the live session did, the dispatcher applies
//! each event to every session while holding the registry lock, and a checkpoint is taken under
//! that same lock.

use ecto_core::model::Server;
use ecto_core::ports::{Checkpoint, Event, Scope, SessionBuffer};
use ecto_core::usecases::base::publish::{close, CLOSE_EVENT};
use ecto_core::usecases::gateway::{
    changes_permissions, closes, reaches, readable, TAKEOVER_EVENT,
};
use ecto_core::usecases::Caller;
use ecto_core::Services;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

/// Gateway limits (config/default.toml, `ws_*` keys).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub identify_timeout: Duration,
    pub heartbeat_timeout: Duration,
    /// How often live sessions record a checkpoint when something changed.
    pub checkpoint_interval: Duration,
    /// Frames queued for one socket before it is closed for being too slow.
    pub outbound_queue: usize,
    /// How long a user without sessions stays online before `presence.update` offline.
    pub presence_grace: Duration,
    /// Client events (and pings) one socket may send per 10 s before it is closed with 4008
    /// (0: no limit).
    pub events_per_10s: u32,
    /// `/ws` sessions one user may hold in one server, across the deployment (0: no cap).
    pub sockets_per_user: u32,
    /// Sockets one client address may hold open on this process (0: no cap).
    pub sockets_per_address: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            identify_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(90),
            checkpoint_interval: Duration::from_secs(15),
            outbound_queue: 1024,
            presence_grace: Duration::from_secs(15),
            events_per_10s: 120,
            sockets_per_user: 32,
            sockets_per_address: 512,
        }
    }
}

/// A request to close one socket, out of band of its (possibly full) frame queue.
#[derive(Default)]
pub(crate) struct CloseSignal {
    reason: Mutex<Option<(u16, String)>>,
    notify: Notify,
}

impl CloseSignal {
    /// Asks the socket to close; the first reason wins.
    pub fn close(&self, code: u16, reason: &str) {
        let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some((code, reason.to_owned()));
        }
        self.notify.notify_one();
    }

    /// Waits until [`CloseSignal::close`] is called.
    pub async fn closed(&self) -> (u16, String) {
        loop {
            if let Some(reason) = self
                .reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// The sending half of an attached socket.
pub(crate) struct SocketHandle {
    pub frames: mpsc::Sender<Frame>,
    pub close: Arc<CloseSignal>,
}

impl SocketHandle {
    fn close(&self, code: u16, reason: &str) {
        self.close.close(code, reason);
    }
}

/// An event held for a session that is still replaying the log: (position, name, data).
pub(crate) type Held = (u64, Arc<str>, Arc<str>);

/// A session's state, shared by its socket and the dispatcher.
pub(crate) struct SessionState {
    pub seq: u64,
    /// The last event position `seq` accounts for (see the module docs).
    pub position: u64,
    pub subscriptions: HashSet<Uuid>,
    pub socket: Option<SocketHandle>,
    /// While a resume replays the log: the events dispatched meanwhile, numbered afterwards.
    pub catching_up: Option<Vec<Held>>,
    /// The newest checkpoints taken, newest first (for `system.resume` on this socket).
    pub recent: VecDeque<Checkpoint>,
    /// Whether something changed since the last checkpoint.
    pub dirty: bool,
}

/// One identified session.
pub(crate) struct Session {
    pub id: Uuid,
    /// This attachment of the session (a resume gets a new one).
    pub incarnation: Uuid,
    pub server: Server,
    pub caller: Caller,
    pub state: Mutex<SessionState>,
}

impl Session {
    pub fn new(
        id: Uuid,
        server: Server,
        caller: Caller,
        subscriptions: HashSet<Uuid>,
        socket: SocketHandle,
        catching_up: bool,
    ) -> Self {
        Self {
            id,
            incarnation: ecto_core::new_id(),
            server,
            caller,
            state: Mutex::new(SessionState {
                seq: 0,
                position: 0,
                subscriptions,
                socket: Some(socket),
                catching_up: catching_up.then(Vec::new),
                recent: VecDeque::new(),
                dirty: true,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A checkpoint of the session; `position` is the registry's (see [`Gateway::checkpoint`]).
    fn checkpoint(&self, state: &SessionState, position: u64) -> Checkpoint {
        Checkpoint {
            session_id: self.id,
            incarnation: self.incarnation,
            server_id: self.server.id,
            user_id: self.caller.user_id,
            seq: state.seq,
            position: state.position.max(position),
            subscriptions: state.subscriptions.iter().copied().collect(),
            detached: state.socket.is_none(),
        }
    }
}

/// A `/notify` connection: mention pings for one user of one server, at most one per
/// channel every 2 s.
pub(crate) struct NotifyEntry {
    server_id: Uuid,
    user_id: Uuid,
    tx: mpsc::Sender<Frame>,
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl NotifyEntry {
    pub fn new(server_id: Uuid, user_id: Uuid, tx: mpsc::Sender<Frame>) -> Self {
        Self {
            server_id,
            user_id,
            tx,
            last: Mutex::new(HashMap::new()),
        }
    }
}

/// One open socket of a client address (see [`Gateway::admit_address`]).
pub(crate) struct AddressGuard {
    key: String,
    open: Arc<Mutex<HashMap<String, u32>>>,
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Notify pings per channel are debounced to one per this interval (reference §3.6).
const NOTIFY_DEBOUNCE: Duration = Duration::from_secs(2);
/// Checkpoints a session keeps in memory for `system.resume`.
const RECENT_CHECKPOINTS: usize = 4;
/// A session whose checkpoint lags the log by this many events records a new one even when
/// nothing else changed, so that its resume point stays inside the log.
const CHECKPOINT_LAG: u64 = 2_000;

/// The sessions of this process and the last event position applied to all of them.
struct Registry {
    sessions: HashMap<Uuid, Arc<Session>>,
    position: u64,
}

/// The process's sessions and the dispatcher feeding them.
pub struct Gateway {
    pub(crate) services: Services,
    pub(crate) config: GatewayConfig,
    pub(crate) buffer: Arc<dyn SessionBuffer>,
    registry: Mutex<Registry>,
    notify: Mutex<HashMap<Uuid, NotifyEntry>>,
    /// Checkpoints waiting to be saved, in the order they were taken.
    saver: mpsc::UnboundedSender<Checkpoint>,
    /// Open sockets per client address key on this process.
    addresses: Arc<Mutex<HashMap<String, u32>>>,
    /// Checkpoints queued for the saver, and saved by it (see [`Gateway::flush`]).
    queued: AtomicU64,
    saved: AtomicU64,
    saved_notify: Notify,
}

/// The text of one outbound WebSocket frame. Built once and handed to the socket without
/// another copy (a `ByteString` shares its buffer).
pub(crate) type Frame = bytestring::ByteString;

/// One dispatched frame: `{"event":…,"data":…,"seq":…}`, written into one buffer of the
/// right size (this runs once per delivery).
pub(crate) fn frame(name: &str, data: &str, seq: u64) -> Frame {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len() + data.len() + 48);
    out.push_str("{\"event\":");
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    {
        out.push('"');
        out.push_str(name);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into()));
    }
    out.push_str(",\"data\":");
    out.push_str(data);
    let _ = write!(out, ",\"seq\":{seq}}}");
    Frame::from(out)
}

impl Gateway {
    /// Creates the gateway and starts its dispatcher, checkpoint saver and janitor on the
    /// current runtime.
    pub async fn start(
        services: Services,
        buffer: Arc<dyn SessionBuffer>,
        config: GatewayConfig,
    ) -> ecto_core::CoreResult<Arc<Gateway>> {
        let (saver, mut to_save) = mpsc::unbounded_channel::<Checkpoint>();
        let mut events = services.events.subscribe().await?;
        let head = services.events.head().await?;
        let gateway = Arc::new(Gateway {
            services,
            config,
            buffer,
            registry: Mutex::new(Registry {
                sessions: HashMap::new(),
                position: head,
            }),
            notify: Mutex::new(HashMap::new()),
            saver,
            addresses: Arc::new(Mutex::new(HashMap::new())),
            queued: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            saved_notify: Notify::new(),
        });
        let dispatcher = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let Some(gateway) = dispatcher.upgrade() else {
                    break;
                };
                gateway.on_event(event).await;
            }
        });
        let saving = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            while let Some(checkpoint) = to_save.recv().await {
                let Some(gateway) = saving.upgrade() else {
                    break;
                };
                gateway.save(&checkpoint).await;
                gateway.saved.fetch_add(1, Ordering::SeqCst);
                gateway.saved_notify.notify_waiters();
            }
        });
        let janitor = Arc::downgrade(&gateway);
        let every = gateway
            .config
            .checkpoint_interval
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(gateway) = janitor.upgrade() else {
                    break;
                };
                gateway.checkpoint_all();
            }
        });
        Ok(gateway)
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves one checkpoint; a session that was resumed elsewhere is let go.
    async fn save(&self, checkpoint: &Checkpoint) {
        match self.buffer.save(checkpoint).await {
            Ok(true) => {}
            Ok(false) => self.let_go(checkpoint.session_id, checkpoint.incarnation),
            Err(e) => tracing::warn!(error = %e, "session checkpoint not saved"),
        }
    }

    /// Removes the session if it is still this incarnation, closing its socket.
    fn let_go(&self, session_id: Uuid, incarnation: Uuid) {
        let mut registry = self.registry();
        if registry
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.incarnation == incarnation)
        {
            if let Some(s) = registry.sessions.remove(&session_id) {
                if let Some(socket) = s.lock().socket.take() {
                    socket.close(close::SESSION_EXPIRED, "Resumed elsewhere");
                }
            }
        }
    }

    /// Counts one more socket of the client address `key`; `None` when the address already
    /// holds `sockets_per_address`. The count drops when the guard does.
    pub(crate) fn admit_address(&self, key: String) -> Option<AddressGuard> {
        let cap = self.config.sockets_per_address;
        let mut open = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_insert(0);
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressGuard {
            key,
            open: self.addresses.clone(),
        })
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
            let _ = entry.tx.try_send(text.clone());
        }
    }

    /// Registers a new session (positioned at the last applied event) and records its first
    /// checkpoint. A session of the same id still held here is let go.
    pub(crate) fn insert(&self, session: Arc<Session>) {
        let mut registry = self.registry();
        let position = registry.position;
        {
            let mut state = session.lock();
            if state.catching_up.is_none() {
                state.position = position;
                self.record(&session, &mut state, position);
            }
        }
        if let Some(old) = registry.sessions.insert(session.id, session) {
            if let Some(socket) = old.lock().socket.take() {
                socket.close(close::SESSION_EXPIRED, "Resumed elsewhere");
            }
        }
    }

    /// Takes a checkpoint of `session` and queues it for saving (call with the registry lock
    /// held, `position` being the registry's).
    fn record(&self, session: &Session, state: &mut SessionState, position: u64) {
        let checkpoint = session.checkpoint(state, position);
        state.recent.push_front(checkpoint.clone());
        state.recent.truncate(RECENT_CHECKPOINTS);
        state.dirty = false;
        self.queued.fetch_add(1, Ordering::SeqCst);
        let _ = self.saver.send(checkpoint);
    }

    /// Waits (up to a second) until every checkpoint taken before the call is saved: a resume
    /// looking for a session that was detached a moment ago finds it in the buffer.
    pub(crate) async fn flush(&self) {
        let target = self.queued.load(Ordering::SeqCst);
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                let saved = self.saved_notify.notified();
                if self.saved.load(Ordering::SeqCst) >= target {
                    return;
                }
                saved.await;
            }
        })
        .await;
    }

    /// Subscribes the session to `channel` (or unsubscribes it), recording a checkpoint at
    /// that very position when this changes anything.
    pub(crate) fn subscribe(&self, session: &Session, channel: Uuid, on: bool) {
        let registry = self.registry();
        let mut state = session.lock();
        let changed = if on {
            state.subscriptions.insert(channel)
        } else {
            state.subscriptions.remove(&channel)
        };
        if changed && state.catching_up.is_none() {
            self.record(session, &mut state, registry.position);
        }
    }

    /// Checkpoints of the session known to this process, newest first.
    pub(crate) fn recent(&self, session: &Session) -> Vec<Checkpoint> {
        session.lock().recent.iter().cloned().collect()
    }

    /// The session's `(seq, position)` now.
    pub(crate) fn progress(&self, session: &Session) -> (u64, u64) {
        let registry = self.registry();
        let state = session.lock();
        (state.seq, state.position.max(registry.position))
    }

    /// Removes the session held by this socket (if it is still this one), recording where it
    /// stopped so it can be resumed.
    pub(crate) fn detach(&self, session: &Arc<Session>) {
        let mut registry = self.registry();
        let position = registry.position;
        if registry
            .sessions
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            registry.sessions.remove(&session.id);
            let mut state = session.lock();
            state.socket = None;
            if state.catching_up.is_none() {
                self.record(session, &mut state, position);
            }
        }
    }

    /// Removes a session of this process with that id, returning its checkpoint now, if it
    /// belongs to `user_id` in `server_id` (a resume takes it over).
    pub(crate) fn take_local(
        &self,
        session_id: Uuid,
        server_id: Uuid,
        user_id: Uuid,
    ) -> Option<Checkpoint> {
        let mut registry = self.registry();
        let position = registry.position;
        let session = registry.sessions.get(&session_id)?.clone();
        if session.server.id != server_id || session.caller.user_id != user_id {
            return None;
        }
        registry.sessions.remove(&session_id);
        let mut state = session.lock();
        if let Some(socket) = state.socket.take() {
            socket.close(close::SESSION_EXPIRED, "Resumed elsewhere");
        }
        state
            .catching_up
            .is_none()
            .then(|| session.checkpoint(&state, position))
    }

    /// Removes a session that failed to resume.
    pub(crate) fn abandon(&self, session: &Arc<Session>) {
        let mut registry = self.registry();
        if registry
            .sessions
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            registry.sessions.remove(&session.id);
        }
    }

    /// Ends a resume's replay: the session's sequence and position become those reached by
    /// the replay, and the events dispatched meanwhile that the replay did not cover are
    /// numbered after them and returned, to be sent right after `system.resumed`.
    pub(crate) fn caught_up(&self, session: &Session, seq: u64, position: u64) -> Vec<Frame> {
        let registry = self.registry();
        let mut state = session.lock();
        let held = state.catching_up.take().unwrap_or_default();
        state.seq = seq;
        state.position = position;
        let mut frames = Vec::new();
        for (pos, name, data) in held {
            if pos > state.position {
                state.seq += 1;
                state.position = pos;
                frames.push(frame(&name, &data, state.seq));
            }
        }
        self.record(session, &mut state, registry.position);
        frames
    }

    /// Closes every socket of this process with `code` (graceful shutdown: 4011), saving each
    /// session's checkpoint first so that it can resume on another process; `/notify` sockets
    /// close too.
    pub async fn close_all(&self, code: u16, reason: &str) {
        let checkpoints: Vec<Checkpoint> = {
            let mut registry = self.registry();
            let position = registry.position;
            registry
                .sessions
                .drain()
                .filter_map(|(_, s)| {
                    let mut state = s.lock();
                    if let Some(socket) = state.socket.take() {
                        socket.close(code, reason);
                    }
                    state
                        .catching_up
                        .is_none()
                        .then(|| s.checkpoint(&state, position))
                })
                .collect()
        };
        for checkpoint in &checkpoints {
            self.save(checkpoint).await;
        }
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many sessions the process holds.
    pub fn session_count(&self) -> usize {
        self.registry().sessions.len()
    }

    /// Records a checkpoint of every session that changed (or whose checkpoint lags far behind
    /// the log) since its last one.
    fn checkpoint_all(&self) {
        let registry = self.registry();
        let position = registry.position;
        for session in registry.sessions.values() {
            let mut state = session.lock();
            if state.catching_up.is_some() {
                continue;
            }
            let lagging = state.recent.front().is_none_or(|c| {
                c.seq != state.seq || position.saturating_sub(c.position) > CHECKPOINT_LAG
            });
            if state.dirty || lagging {
                self.record(session, &mut state, position);
            }
        }
    }

    /// Applies one event from the bus, first reading from the log any events the feed skipped.
    async fn on_event(self: &Arc<Self>, event: Event) {
        let last = self.registry().position;
        if event.position <= last {
            return;
        }
        if event.position > last + 1 {
            match self.services.events.since(last).await {
                Ok(Some(missed)) => {
                    for e in missed.into_iter().filter(|e| e.position < event.position) {
                        self.dispatch(e);
                    }
                }
                _ => self.lost(event.position - 1),
            }
        }
        self.dispatch(event);
    }

    /// Events up to `position` are gone before this process saw them: no session can know what
    /// it missed, so every socket closes (4000) and resumes or identifies afresh.
    fn lost(&self, position: u64) {
        tracing::warn!(position, "event log gap; closing every session");
        self.services.memo.clear();
        let mut registry = self.registry();
        registry.position = registry.position.max(position);
        for (_, s) in registry.sessions.drain() {
            if let Some(socket) = s.lock().socket.take() {
                socket.close(close::UNKNOWN_ERROR, "Missed events");
            }
        }
    }

    /// Delivers one event to the sessions it reaches; close and takeover events end sessions.
    fn dispatch(self: &Arc<Self>, event: Event) {
        // Changes made through other processes reach this process's memo here.
        if ecto_core::memo::invalidates(&event.name) {
            self.services.memo.invalidate(event.server_id);
        }
        if let (Scope::User(user), "mention.create") = (event.scope, event.name.as_str()) {
            if let Some(channel) = event.data["channel_id"]
                .as_str()
                .and_then(|c| Uuid::parse_str(c).ok())
            {
                self.notify_mention(event.server_id, user, channel);
            }
        }
        let mut registry = self.registry();
        if event.position <= registry.position {
            return;
        }
        let mut ended: Vec<Arc<Session>> = Vec::new();
        let mut affected: Vec<Arc<Session>> = Vec::new();
        // Serialized once per event, whatever the number of recipients.
        let name: Arc<str> = Arc::from(event.name.as_str());
        let mut data: Option<Arc<str>> = None;
        for s in registry
            .sessions
            .values()
            .filter(|s| s.server.id == event.server_id)
        {
            if event.name == TAKEOVER_EVENT {
                let taken = event.data["session_id"].as_str() == Some(&s.id.to_string())
                    && event.data["incarnation"].as_str() != Some(&s.incarnation.to_string());
                if taken {
                    ended.push(s.clone());
                }
                continue;
            }
            if closes(&event, s.server.id, s.caller.user_id) {
                ended.push(s.clone());
                continue;
            }
            let mut state = s.lock();
            if event.position <= state.position {
                continue;
            }
            if !reaches(&event, s.server.id, s.caller.user_id, &state.subscriptions) {
                continue;
            }
            let data = data
                .get_or_insert_with(|| {
                    Arc::from(serde_json::to_string(&event.data).unwrap_or_else(|_| "null".into()))
                })
                .clone();
            self.deliver(&mut state, event.position, &name, data);
            drop(state);
            if changes_permissions(&event.name) {
                affected.push(s.clone());
            }
        }
        registry.position = event.position;
        let (code, reason) = if event.name == CLOSE_EVENT {
            (
                event.data["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(close::UNKNOWN_ERROR),
                event.data["reason"].as_str().unwrap_or("").to_owned(),
            )
        } else {
            (close::SESSION_EXPIRED, "Resumed elsewhere".to_owned())
        };
        for s in &ended {
            registry.sessions.remove(&s.id);
            if let Some(socket) = s.lock().socket.take() {
                socket.close(code, &reason);
            }
        }
        drop(registry);
        if event.name == CLOSE_EVENT {
            // Closed on purpose: not resumable.
            for s in ended {
                let buffer = self.buffer.clone();
                tokio::spawn(async move {
                    if let Err(e) = buffer.forget(s.id).await {
                        tracing::warn!(error = %e, "session checkpoints not forgotten");
                    }
                });
            }
        }
        for s in affected {
            let gateway = self.clone();
            tokio::spawn(async move { gateway.recheck(&s).await });
        }
    }

    /// Numbers and sends one event to a session (or holds it while the session replays); a
    /// socket whose queue is full is closed (4000) and can resume.
    fn deliver(&self, state: &mut SessionState, position: u64, name: &Arc<str>, data: Arc<str>) {
        if let Some(held) = &mut state.catching_up {
            held.push((position, name.clone(), data));
            return;
        }
        state.seq += 1;
        state.position = position;
        state.dirty = true;
        if let Some(socket) = &state.socket {
            if socket
                .frames
                .try_send(frame(name, &data, state.seq))
                .is_err()
            {
                socket.close(close::UNKNOWN_ERROR, "Outbound queue full");
                state.socket = None;
            }
        }
    }

    /// Drops subscriptions to channels the session can no longer read.
    async fn recheck(&self, session: &Session) {
        let visible = match readable(&self.services, &session.server, &session.caller).await {
            Ok(visible) => Some(visible),
            Err(e) => {
                // Unknown rights: safer to hear nothing than too much.
                tracing::warn!(error = %e, "permission recheck failed; dropping subscriptions");
                None
            }
        };
        let registry = self.registry();
        let mut state = session.lock();
        let before = state.subscriptions.len();
        match visible {
            Some(visible) => state.subscriptions.retain(|c| visible.contains(c)),
            None => state.subscriptions.clear(),
        }
        if state.subscriptions.len() != before && state.catching_up.is_none() {
            self.record(session, &mut state, registry.position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::frame;

    #[test]
    fn frames_are_json_with_the_name_escaped_when_needed() {
        let plain: serde_json::Value =
            serde_json::from_str(&frame("message.create", r#"{"a":1}"#, 42)).expect("json");
        assert_eq!(
            plain,
            serde_json::json!({ "event": "message.create", "data": { "a": 1 }, "seq": 42 })
        );
        let odd: serde_json::Value =
            serde_json::from_str(&frame("we\"ird", "null", u64::MAX)).expect("json");
        assert_eq!(odd["event"], "we\"ird");
        assert_eq!(odd["seq"], u64::MAX);
    }
}
