//! The registry of this process's sessions and the gateway that owns it.
//!
//! Sessions are grouped by server into streams (`streams.rs`): each server's events are
//! numbered on their own, and the process follows only the servers it holds sockets of.
//!
//! Resume works from checkpoints (see [`ecto_core::ports::SessionBuffer`]): every session
//! records `(seq, position in its server's log, subscriptions)` when it starts, when its subscriptions change,
//! periodically, and when its socket goes away; a resume, on this process or another, replays
//! the event log from the newest usable checkpoint with the same filter the dispatcher uses.
//! For that replay to number events exactly as the live session did, the dispatcher
//! (`dispatch.rs`) applies each event to every session while holding the registry lock, and a
//! checkpoint (`checkpoints.rs`) is taken under that same lock.

use crate::config::GatewayConfig;
use crate::frame::{Dispatched, Frame};
use crate::notify::NotifyEntry;
use crate::session::Session;
use crate::streams::{Command, Stream};
use ecto_core::ports::{Checkpoint, SessionBuffer};
use ecto_core::usecases::base::publish::close;
use ecto_core::Services;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

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

/// The sessions of this process, and the servers it follows (each with the last event
/// position applied to all its sessions here).
#[derive(Default)]
pub(crate) struct Registry {
    sessions: HashMap<Uuid, Arc<Session>>,
    pub streams: HashMap<Uuid, Stream>,
}

impl Registry {
    /// The last position of the server's log applied to its sessions here.
    pub fn position(&self, server_id: Uuid) -> u64 {
        self.streams.get(&server_id).map_or(0, |s| s.position)
    }

    /// The session of that id held here.
    pub fn get(&self, session_id: &Uuid) -> Option<&Arc<Session>> {
        self.sessions.get(session_id)
    }

    /// Every session held here.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.sessions.values()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Holds `session` (its server is followed: see [`Gateway::join`]); returns the session of
    /// the same id it replaces.
    pub fn add(&mut self, session: Arc<Session>) -> Option<Arc<Session>> {
        let old = self.remove(&session.id);
        let stream = self.streams.entry(session.server.id).or_insert_with(|| {
            tracing::error!("a session of a server not followed; its events may be missed");
            Stream::new(0)
        });
        stream.sessions.insert(session.id, session.clone());
        self.sessions.insert(session.id, session);
        old
    }

    /// Lets go of the session of that id.
    pub fn remove(&mut self, session_id: &Uuid) -> Option<Arc<Session>> {
        let session = self.sessions.remove(session_id)?;
        if let Some(stream) = self.streams.get_mut(&session.server.id) {
            stream.sessions.remove(session_id);
        }
        Some(session)
    }

    /// Lets go of every session of the server (every session when `None`).
    pub fn drain(&mut self, server_id: Option<Uuid>) -> Vec<Arc<Session>> {
        let ids: Vec<Uuid> = match server_id {
            Some(server) => self
                .streams
                .get(&server)
                .map(|s| s.sessions.keys().copied().collect())
                .unwrap_or_default(),
            None => self.sessions.keys().copied().collect(),
        };
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }
}

/// The process's sessions and the dispatcher feeding them.
pub struct Gateway {
    pub(crate) services: Services,
    pub(crate) config: GatewayConfig,
    pub(crate) buffer: Arc<dyn SessionBuffer>,
    registry: Mutex<Registry>,
    pub(crate) notify: Mutex<HashMap<Uuid, NotifyEntry>>,
    /// Checkpoints waiting to be saved, in the order they were taken.
    pub(crate) saver: mpsc::UnboundedSender<Checkpoint>,
    /// Open sockets per client address key on this process.
    addresses: Arc<Mutex<HashMap<String, u32>>>,
    /// Checkpoints queued for the saver, and saved by it (see [`Gateway::flush`]).
    pub(crate) queued: AtomicU64,
    pub(crate) saved: AtomicU64,
    pub(crate) saved_notify: Notify,
    /// Requests to the dispatcher: follow a server, or stop following one.
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    /// The event feed ended and is not subscribed again yet (`/ready` says "events").
    pub(crate) feed_down: AtomicBool,
    /// Shutting down: sockets are closed with 4011 and no new one is taken, so that clients
    /// go to another process at once instead of to this one until it exits.
    pub(crate) closing: AtomicBool,
    /// The dispatcher is applying an event or doing a command (set with the registry locked):
    /// no event is applied on a publisher's thread meanwhile (see `dispatch.rs`).
    pub(crate) busy: AtomicBool,
}

impl Gateway {
    /// Whether the process is shutting down (new sockets are refused with 503).
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Whether this process's event feed is subscribed (false from the moment the bus's
    /// subscription ends until it is made again and caught up).
    pub fn feed_up(&self) -> bool {
        !self.feed_down.load(Ordering::Relaxed)
    }

    /// The services this gateway serves.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Creates the gateway and starts its dispatcher (on a thread of its own), checkpoint
    /// saver and janitor (on the current runtime).
    pub async fn start(
        services: Services,
        buffer: Arc<dyn SessionBuffer>,
        config: GatewayConfig,
    ) -> ecto_core::CoreResult<Arc<Gateway>> {
        let (saver, to_save) = mpsc::unbounded_channel::<Checkpoint>();
        let (commands, to_do) = mpsc::unbounded_channel::<Command>();
        if services.events.partial() {
            // A server this process serves requests of is followed too (its memo kept).
            let asks = commands.clone();
            services.memo.follow_only(Box::new(move |server_id| {
                let _ = asks.send(Command::Want(server_id));
            }));
        }
        let gateway = Arc::new(Gateway {
            services,
            config,
            buffer,
            registry: Mutex::new(Registry::default()),
            commands,
            notify: Mutex::new(HashMap::new()),
            saver,
            addresses: Arc::new(Mutex::new(HashMap::new())),
            queued: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            saved_notify: Notify::new(),
            feed_down: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            busy: AtomicBool::new(false),
        });
        Self::spawn_dispatcher(&gateway, to_do).await?;
        let inline = Arc::downgrade(&gateway);
        gateway.services.events.offer_inline(Box::new(move |event| {
            inline.upgrade().is_some_and(|g| g.apply_inline(event))
        }));
        Self::spawn_saver(&gateway, to_save);
        Self::spawn_janitor(&gateway);
        Ok(gateway)
    }

    /// The registry, locked (a poisoned lock is taken over: the state stays consistent).
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes the session if it is still this incarnation, closing its socket.
    pub(crate) fn let_go(&self, session_id: Uuid, incarnation: Uuid) {
        let mut registry = self.registry();
        if registry
            .get(&session_id)
            .is_some_and(|s| s.incarnation == incarnation)
        {
            if let Some(s) = registry.remove(&session_id) {
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

    /// Registers a new session (positioned at the last applied event of its server, which
    /// this process follows: see [`Gateway::join`]) and records its first checkpoint. A
    /// session of the same id still held here is let go.
    pub(crate) fn insert(&self, session: Arc<Session>) {
        let mut registry = self.registry();
        if self.closing.load(Ordering::Relaxed) {
            // Identified while the process shuts down: it goes elsewhere (a resume there
            // starts from the checkpoint it resumed from here).
            if let Some(socket) = session.lock().socket.take() {
                socket.close(close::SERVER_SHUTTING_DOWN, "Server shutting down");
            }
            return;
        }
        let position = registry.position(session.server.id);
        {
            let mut state = session.lock();
            if state.catching_up.is_none() {
                state.position = position;
                self.record(&session, &mut state, position);
            }
        }
        if let Some(old) = registry.add(session) {
            if let Some(socket) = old.lock().socket.take() {
                socket.close(close::SESSION_EXPIRED, "Resumed elsewhere");
            }
        }
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
            self.record(session, &mut state, registry.position(session.server.id));
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
        (
            state.seq,
            state.position.max(registry.position(session.server.id)),
        )
    }

    /// Removes the session held by this socket (if it is still this one), recording where it
    /// stopped so it can be resumed.
    pub(crate) fn detach(&self, session: &Arc<Session>) {
        let mut registry = self.registry();
        let position = registry.position(session.server.id);
        if registry
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            registry.remove(&session.id);
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
        let session = registry.get(&session_id)?.clone();
        if session.server.id != server_id || session.caller.user_id != user_id {
            return None;
        }
        let position = registry.position(server_id);
        registry.remove(&session_id);
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
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            registry.remove(&session.id);
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
                let seq = state.seq;
                frames.push(Dispatched { name, data, seq }.text());
            }
        }
        self.record(session, &mut state, registry.position(session.server.id));
        frames
    }

    /// Closes every socket of this process with `code` (graceful shutdown: 4011), saving each
    /// session's checkpoint first so that it can resume on another process; `/notify` sockets
    /// close too.
    pub async fn close_all(&self, code: u16, reason: &str) {
        let checkpoints: Vec<Checkpoint> = {
            let mut registry = self.registry();
            self.closing.store(true, Ordering::Relaxed);
            let sessions = registry.drain(None);
            sessions
                .iter()
                .filter_map(|s| {
                    let position = registry.position(s.server.id);
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
        self.save_batch(&checkpoints).await;
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The sessions this process holds and their subscriptions in all (read when metrics
    /// are scraped, not kept up to date by the paths that change them).
    pub fn counts(&self) -> (usize, usize) {
        let registry = self.registry();
        let subscriptions = registry.all().map(|s| s.lock().subscriptions.len()).sum();
        (registry.len(), subscriptions)
    }

    /// How many sessions the process holds.
    pub fn session_count(&self) -> usize {
        self.registry().len()
    }

    /// How many servers the process follows (their events reach it).
    pub fn stream_count(&self) -> usize {
        self.registry().streams.len()
    }
}
