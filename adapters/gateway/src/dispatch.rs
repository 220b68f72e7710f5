//! The dispatcher: one task per process reads the event bus and applies each event to the
//! sessions it reaches, numbering it per session; close and takeover events end sessions,
//! and a permission change makes the sessions it reached drop the channels they can no longer
//! read before the next event is applied.

use crate::frame::{quoted, Dispatched};
use crate::registry::{Gateway, Registry};
use crate::session::{Session, SessionState};
use crate::streams::{Command, Stream};
use ecto_core::ports::{Event, EventStream, Scope, RESYNC_EVENT};
use ecto_core::usecases::base::publish::{close, CLOSE_EVENT};
use ecto_core::usecases::gateway::{
    changes_permissions, closes, readable, Audience, TAKEOVER_EVENT,
};
use ecto_core::usecases::voice::TRANSFER_EVENT;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long the dispatcher waits for a permission recheck before dropping subscriptions.
const RECHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The most sessions of a server an event is applied to on its publisher's thread
/// ([`Gateway::apply_inline`]); a larger server's events go through the dispatcher.
const INLINE_SESSIONS: usize = 64;

impl Gateway {
    /// Starts the task that applies every event of the feed to the sessions, and follows or
    /// leaves servers when asked (`streams.rs`). When the feed ends (the bus's connection was
    /// lost), it asks for a new one, every 100 ms doubling to 2 s, then reads from each
    /// followed server's log what it missed meanwhile; where the log cannot say, the server's
    /// sessions are told (4000 "Missed events") rather than left to miss events silently.
    ///
    /// The task has a thread of its own (`ecto-dispatch`, a single-threaded runtime): on the
    /// shared multi-threaded runtime every publish woke one of its parked workers, and that
    /// worker, finding the task, woke a second to look for more (two cross-thread wakes and
    /// four context switches per event; 14 % of a sequential send's CPU). It ends with the
    /// gateway; the tasks it spawns run on it.
    ///
    /// The feed is opened on that thread too, so a bus with a connection of its own (Redis's
    /// pub/sub) is read there: an event wakes the dispatcher's thread alone, not first a
    /// worker of the multi-threaded runtime that then wakes the dispatcher's (strace of a
    /// managed send: one eventfd write per event). Returns once the feed is open, or with the
    /// reason it could not be.
    pub(crate) async fn spawn_dispatcher(
        gateway: &Arc<Gateway>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> ecto_core::CoreResult<()> {
        let dispatcher = Arc::downgrade(gateway);
        let (opened, open) = tokio::sync::oneshot::channel::<ecto_core::CoreResult<()>>();
        let work = async move {
            let feed = match dispatcher.upgrade() {
                Some(gateway) => gateway.services.events.feed().await,
                None => return,
            };
            let mut events: EventStream = match feed {
                Ok(feed) => {
                    let _ = opened.send(Ok(()));
                    feed
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                    return;
                }
            };
            loop {
                loop {
                    tokio::select! {
                        biased;
                        command = commands.recv() => {
                            let (Some(command), Some(gateway)) = (command, dispatcher.upgrade()) else {
                                return;
                            };
                            let _busy = gateway.busy();
                            gateway.command(command).await;
                        }
                        event = events.next() => {
                            let Some(event) = event else { break };
                            let Some(gateway) = dispatcher.upgrade() else {
                                return;
                            };
                            let _busy = gateway.busy();
                            gateway.on_event(event).await;
                        }
                    }
                }
                let Some(gateway) = dispatcher.upgrade() else {
                    return;
                };
                let busy = gateway.busy();
                gateway.feed_down.store(true, Ordering::Relaxed);
                tracing::warn!("event feed ended; subscribing again");
                metrics::counter!("ecto_event_bus_resubscribes_total").increment(1);
                let mut wait = Duration::from_millis(100);
                events = loop {
                    match gateway.services.events.feed().await {
                        Ok(feed) => break feed,
                        Err(e) => tracing::debug!(error = %e, "event bus still unreachable"),
                    }
                    // Meanwhile a server cannot be followed: its sockets are refused at once.
                    while let Ok(command) = commands.try_recv() {
                        if let Command::Join(_, answer) = command {
                            let _ = answer.send(Err(ecto_core::CoreError::unavailable(
                                "event bus unavailable",
                                std::io::Error::other("the event feed is down"),
                            )));
                        }
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                    if Arc::strong_count(&gateway) == 1 {
                        return;
                    }
                };
                gateway.catch_up().await;
                gateway.feed_down.store(false, Ordering::Relaxed);
                drop(busy);
                tracing::info!("event feed restored");
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ecto_core::CoreError::internal)?;
        std::thread::Builder::new()
            .name("ecto-dispatch".into())
            .spawn(move || runtime.block_on(work))
            .map_err(ecto_core::CoreError::internal)?;
        open.await
            .map_err(|_| ecto_core::CoreError::internal_msg("the dispatcher ended at its start"))?
    }

    /// Marks the dispatcher busy until the mark is dropped; set with the registry locked, so an
    /// event applied on a publisher's thread ([`Gateway::apply_inline`]) is either done by now
    /// or sees the mark.
    fn busy(&self) -> Busy<'_> {
        let _registry = self.registry();
        self.busy.store(true, Ordering::SeqCst);
        Busy(self)
    }

    /// Applies an event on the thread that published it, when that is what the dispatcher
    /// would do with it next and nothing else is needed: the dispatcher is idle, the event is
    /// the next of its server (or its server is not followed), it needs no re-reading of
    /// rights (the one step the dispatcher awaits), and its server has few sessions here.
    /// `false` leaves it to the feed.
    ///
    /// Waking the dispatcher's thread for an event cost more than most events' work (perf
    /// of a sequential self-hosted send: 9 % of the server's CPU in the eventfd write that
    /// wakes it and 6 % in its thread going to sleep and waking). A fan-out to many sessions
    /// still goes to the dispatcher, on its own thread, so the publisher's request is not held
    /// up by it (and the wake is shared by every delivery).
    pub(crate) fn apply_inline(&self, event: &Event) -> bool {
        if event.name == RESYNC_EVENT || changes_permissions(&event.name) {
            return false;
        }
        let started = std::time::Instant::now();
        let mut registry = self.registry();
        if self.busy.load(Ordering::SeqCst) {
            return false;
        }
        let followed = match registry.streams.get(&event.server_id) {
            None => false,
            Some(s) if event.position == s.position + 1 && s.sessions.len() <= INLINE_SESSIONS => {
                true
            }
            Some(_) => return false,
        };
        self.notice(event);
        if followed {
            let affected = self.apply_next(&mut registry, event);
            debug_assert!(affected.is_empty(), "no rights changed, no re-reading");
            drop(registry);
            applied(event.published_ms, started);
        }
        true
    }

    /// After a new feed: applies the logged events of every server followed that this process
    /// did not see. Where the log no longer holds them (or the bus lost its data), no session
    /// of that server can know what it missed: its sockets close (4000).
    async fn catch_up(self: &Arc<Self>) {
        let followed: Vec<(Uuid, u64)> = self
            .registry()
            .streams
            .iter()
            .map(|(id, s)| (*id, s.position))
            .collect();
        for (server_id, last) in followed {
            self.read_back(server_id, last, u64::MAX).await;
        }
    }

    /// Applies the server's logged events after `last` and before `before`; when the log
    /// cannot say, the server's sessions are told they missed events.
    async fn read_back(self: &Arc<Self>, server_id: Uuid, last: u64, before: u64) {
        match self.services.events.since(server_id, last).await {
            Ok(Some(missed)) => {
                for e in missed.into_iter().filter(|e| e.position < before) {
                    let affected = self.dispatch(e);
                    self.recheck_all(affected).await;
                }
            }
            // (A bus that lost its data goes on from positions far above any seen: the
            // first of them is a gap too, so sessions made meanwhile are told again.)
            _ => {
                let upto = if before == u64::MAX { last } else { before - 1 };
                self.lost(server_id, upto);
            }
        }
    }

    /// Applies one event from the feed, first reading from its server's log any events the
    /// feed skipped. Events of a server not followed (any more) only reach what is not a
    /// session (the memo, voice, `/notify`).
    async fn on_event(self: &Arc<Self>, event: Event) {
        let Some(last) = self
            .registry()
            .streams
            .get(&event.server_id)
            .map(|s| s.position)
        else {
            if event.name != RESYNC_EVENT {
                self.notice(&event);
            }
            return;
        };
        if event.position <= last {
            return;
        }
        let started = std::time::Instant::now();
        if event.position > last + 1 {
            metrics::counter!("ecto_event_bus_gaps_total").increment(1);
            self.read_back(event.server_id, last, event.position).await;
        }
        let published_ms = event.published_ms;
        let affected = self.dispatch(event);
        self.recheck_all(affected).await;
        applied(published_ms, started);
    }

    /// Re-reads the rights of the sessions a permission change reached before the next event
    /// is applied, so no event after the change reaches a channel the change hid. Sessions of
    /// one member share one reading; a reading that takes too long drops the subscriptions.
    async fn recheck_all(&self, affected: Vec<Arc<Session>>) {
        if affected.is_empty() {
            return;
        }
        let mut by_caller: HashMap<(Uuid, Uuid), Vec<Arc<Session>>> = HashMap::new();
        for s in affected {
            by_caller
                .entry((s.server.id, s.caller.user_id))
                .or_default()
                .push(s);
        }
        let readings = by_caller.into_values().map(|sessions| async move {
            let first = &sessions[0];
            let reading = readable(&self.services, &first.server, &first.caller);
            let visible = match tokio::time::timeout(RECHECK_TIMEOUT, reading).await {
                Ok(Ok(visible)) => Some(visible),
                Ok(Err(e)) => {
                    // Unknown rights: safer to hear nothing than too much.
                    tracing::warn!(error = %e, "permission recheck failed; dropping subscriptions");
                    None
                }
                Err(_) => {
                    tracing::warn!("permission recheck timed out; dropping subscriptions");
                    None
                }
            };
            (sessions, visible)
        });
        let readings = futures_util::future::join_all(readings).await;
        let registry = self.registry();
        for (sessions, visible) in readings {
            for session in sessions {
                let mut state = session.lock();
                let before = state.subscriptions.len();
                match &visible {
                    Some(visible) => state.subscriptions.retain(|c| visible.contains(c)),
                    None => state.subscriptions.clear(),
                }
                if state.subscriptions.len() != before && state.catching_up.is_none() {
                    self.record(&session, &mut state, registry.position(session.server.id));
                }
            }
        }
    }

    /// The server's events up to `position` are gone before this process saw them: none of
    /// its sessions can know what it missed, so their sockets close (4000) and resume or
    /// identify afresh.
    fn lost(&self, server_id: Uuid, position: u64) {
        tracing::warn!(%server_id, position, "event log gap; closing the server's sessions");
        metrics::counter!("ecto_event_bus_lost_total").increment(1);
        self.services.memo.invalidate(server_id);
        let mut registry = self.registry();
        if let Some(stream) = registry.streams.get_mut(&server_id) {
            stream.position = stream.position.max(position);
        }
        for s in registry.drain(Some(server_id)) {
            if let Some(socket) = s.lock().socket.take() {
                socket.close(close::UNKNOWN_ERROR, "Missed events");
            }
        }
    }

    /// Delivers one event to the sessions it reaches; close and takeover events end sessions.
    /// Returns the sessions whose rights the event may have changed.
    #[must_use]
    fn dispatch(self: &Arc<Self>, event: Event) -> Vec<Arc<Session>> {
        if event.name == RESYNC_EVENT {
            // Events of the server were dropped unpublished somewhere: nobody can know what
            // they missed.
            if event.position > self.registry().position(event.server_id) {
                self.lost(event.server_id, event.position);
            }
            return Vec::new();
        }
        self.notice(&event);
        self.apply_next(&mut self.registry(), &event)
    }

    /// Applies `event` to its server's sessions here (`registry` locked) unless its server is
    /// not followed or its position already applied; close and takeover events end sessions.
    /// Returns the sessions whose rights the event may have changed.
    fn apply_next(&self, registry: &mut Registry, event: &Event) -> Vec<Arc<Session>> {
        let Some(stream) = registry.streams.get(&event.server_id) else {
            return Vec::new();
        };
        if event.position <= stream.position {
            return Vec::new();
        }
        let (ended, affected) = self.apply(stream, event);
        if let Some(stream) = registry.streams.get_mut(&event.server_id) {
            stream.position = event.position;
        }
        end_sessions(registry, event, &ended);
        if event.name == CLOSE_EVENT {
            // Closed on purpose: not resumable.
            self.forget(ended);
        }
        affected
    }

    /// What an event means to this process besides its sessions: changes made through other
    /// processes reach this process's memo here, and mentions ping `/notify` sockets.
    fn notice(&self, event: &Event) {
        self.services
            .memo
            .notice(event.server_id, &event.name, &event.data);
        self.voice_follows(event);
        if event.name == CLOSE_EVENT {
            let user = match event.scope {
                Scope::User(u) => Some(u),
                _ => None,
            };
            let code = event.data["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok());
            let reason = event.data["reason"].as_str().unwrap_or("");
            if let Some(code) = code {
                self.close_notify(event.server_id, user, code, reason);
            }
        }
        if let (Scope::User(user), "mention.create") = (event.scope, event.name.as_str()) {
            if let Some(channel) = event.data["channel_id"]
                .as_str()
                .and_then(|c| Uuid::parse_str(c).ok())
            {
                self.notify_mention(event.server_id, user, channel);
            }
        }
    }

    /// Voice follows membership and permissions: a member who left (or was kicked or
    /// banned) leaves voice, and after a change that may take CONNECT_VOICE away or delete a
    /// channel, everyone in voice is checked again (in the background).
    fn voice_follows(&self, event: &Event) {
        use ecto_core::usecases::voice;
        let server_id = event.server_id;
        if event.name == "member.leave" {
            if let Some(user) = event.data["user_id"]
                .as_str()
                .and_then(|u| Uuid::parse_str(u).ok())
            {
                let svc = self.services.clone();
                tokio::spawn(async move { voice::removed(&svc, server_id, user).await });
            }
        } else if changes_permissions(&event.name) {
            let svc = self.services.clone();
            tokio::spawn(async move {
                match svc.servers.get(server_id).await {
                    Ok(Some(server)) => voice::recheck(&svc, &server).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "voice recheck skipped"),
                }
            });
        }
    }

    /// Applies the event to the server's sessions (with the registry lock held): delivers it
    /// to those it reaches and returns the sessions it ends (close, takeover) and those whose
    /// permissions it may have changed. What the event is, and whom it is for, is read once,
    /// not once per session.
    fn apply(&self, stream: &Stream, event: &Event) -> (Vec<Arc<Session>>, Vec<Arc<Session>>) {
        let mut ended: Vec<Arc<Session>> = Vec::new();
        let mut affected: Vec<Arc<Session>> = Vec::new();
        let sessions = stream.sessions.values();
        if event.name == TAKEOVER_EVENT {
            let (id, incarnation) = (
                event.data["session_id"].as_str(),
                event.data["incarnation"].as_str(),
            );
            ended.extend(
                sessions
                    .filter(|s| {
                        id == Some(&s.id.to_string())
                            && incarnation != Some(&s.incarnation.to_string())
                    })
                    .cloned(),
            );
            return (ended, affected);
        }
        if event.name == TRANSFER_EVENT {
            let id = event.data["session_id"].as_str();
            for s in sessions.filter(|s| id == Some(&s.id.to_string())) {
                transferred(s, &event.data["channel_id"]);
            }
            return (ended, affected);
        }
        if event.name == CLOSE_EVENT {
            ended.extend(
                sessions
                    .filter(|s| closes(event, s.server.id, s.caller.user_id))
                    .cloned(),
            );
            return (ended, affected);
        }
        let audience = Audience::of(event);
        if audience.is_nobody() {
            return (ended, affected);
        }
        let rechecks = changes_permissions(&event.name);
        // Serialized once per event, whatever the number of recipients.
        let name = quoted(&event.name);
        let mut data: Option<Arc<str>> = None;
        let mut delivered = 0u64;
        for s in sessions {
            let mut state = s.lock();
            if event.position <= state.position
                || !audience.reaches(s.server.id, s.caller.user_id, &state.subscriptions)
            {
                continue;
            }
            let data = data
                .get_or_insert_with(|| {
                    Arc::from(serde_json::to_string(&event.data).unwrap_or_else(|_| "null".into()))
                })
                .clone();
            self.deliver(&mut state, event.position, &name, data);
            delivered += 1;
            drop(state);
            if rechecks {
                affected.push(s.clone());
            }
        }
        // One counter update per event, whatever the number of recipients.
        metrics::counter!("ecto_ws_events_delivered_total").increment(delivered);
        (ended, affected)
    }

    /// Forgets the checkpoints of sessions closed on purpose, in the background.
    fn forget(&self, ended: Vec<Arc<Session>>) {
        for s in ended {
            let buffer = self.buffer.clone();
            tokio::spawn(async move {
                if let Err(e) = buffer.forget(s.id).await {
                    tracing::warn!(error = %e, "session checkpoints not forgotten");
                }
            });
        }
    }

    /// Numbers and sends one event to a session (or holds it while the session replays); a
    /// socket whose queue is full is closed (4000) and can resume. `name` is [`quoted`].
    fn deliver(&self, state: &mut SessionState, position: u64, name: &Arc<str>, data: Arc<str>) {
        if let Some(held) = &mut state.catching_up {
            held.push((position, name.clone(), data));
            return;
        }
        state.seq += 1;
        state.position = position;
        state.dirty = true;
        if let Some(socket) = &state.socket {
            let event = Dispatched {
                name: name.clone(),
                data,
                seq: state.seq,
            };
            if socket.frames.try_send(event).is_err() {
                metrics::counter!("ecto_ws_outbound_drops_total").increment(1);
                socket.close(close::UNKNOWN_ERROR, "Outbound queue full");
                state.socket = None;
            }
        }
    }
}

/// The dispatcher's busy mark ([`Gateway::busy`]), cleared when dropped.
struct Busy<'a>(&'a Gateway);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
    }
}

/// Counts an event applied to its server's sessions here (dispatch started at `started`), and
/// its lag from publication (published at `published_ms`) to this instance's dispatch: the
/// bus's lag (across instances, their clocks' difference too).
fn applied(published_ms: u64, started: std::time::Instant) {
    if published_ms > 0 {
        let lag = ecto_core::ports::publish_time_ms().saturating_sub(published_ms);
        metrics::histogram!("ecto_event_bus_lag_seconds").record(lag as f64 / 1000.0);
    }
    metrics::counter!("ecto_event_bus_dispatched_total").increment(1);
    metrics::histogram!("ecto_dispatch_seconds").record(started.elapsed());
}

/// Tells one session that its voice moved to another session: `voice.transferred
/// {channel_id}`, a direct frame (no `seq`).
fn transferred(session: &Session, channel_id: &serde_json::Value) {
    let text =
        serde_json::json!({ "event": "voice.transferred", "data": { "channel_id": channel_id } })
            .to_string();
    if let Some(socket) = &session.lock().socket {
        let _ = socket.frames.try_send(crate::frame::Frame::from(text));
    }
}

/// Removes the sessions `event` ended from the registry and closes their sockets: with the
/// code and reason of a close event, or as resumed elsewhere for a takeover.
fn end_sessions(registry: &mut Registry, event: &Event, ended: &[Arc<Session>]) {
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
    for s in ended {
        registry.remove(&s.id);
        if let Some(socket) = s.lock().socket.take() {
            socket.close(code, &reason);
        }
    }
}
