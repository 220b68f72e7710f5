//! Resume: rebuilding a session's numbering from its checkpoints and the event log, for a
//! client that reconnects (`system.identify` with `resume_seq`, with or without the old
//! `session_id`) or asks for a replay on its live socket (`system.resume`).

use crate::conn::{Conn, Flow};
use crate::frame::{frame, Frame};
use crate::registry::Gateway;
use crate::session::Session;
use ecto_core::model::Server;
use ecto_core::ports::{Checkpoint, Event, Scope, PER_SERVER_LOG};
use ecto_core::usecases::base::publish::close;
use ecto_core::usecases::gateway::{closes, reaches, readable, TAKEOVER_EVENT};
use ecto_core::usecases::Caller;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a resume that names no session waits for the dropped one to be saved: the
/// client may notice the drop (or close the socket itself) before the server does.
const DETACH_WAITS: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(150)];

/// The detached session of `user_id` in `server_id` that a client having seen `resume_seq`
/// events resumes when it names no session (the Ecto client sends only `resume_seq`).
///
/// Every session numbers its events from 1, so `resume_seq` alone names no session: any
/// detached session that had been sent at least `resume_seq` events could be the client's (a
/// client may not have received the last events it was sent). It is taken only when it is the
/// only such session; with two or more the server cannot tell whose client this is, and
/// answers a new session (`None`) rather than risk replaying another session's events.
/// Sessions still attached to a socket are never taken: that would steal another tab's
/// session.
pub(crate) async fn find_detached(
    gateway: &Gateway,
    server_id: Uuid,
    user_id: Uuid,
    resume_seq: u64,
) -> Option<Uuid> {
    gateway.flush().await;
    for wait in std::iter::once(None).chain(DETACH_WAITS.into_iter().map(Some)) {
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        let found = match gateway.buffer.detached(server_id, user_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "detached sessions unavailable");
                return None;
            }
        };
        let holders: Vec<Uuid> = found
            .iter()
            .filter_map(|checkpoints| checkpoints.first())
            .filter(|c| c.seq >= resume_seq)
            .map(|c| c.session_id)
            .collect();
        match holders.as_slice() {
            [] => continue,
            [only] => return Some(*only),
            several => {
                tracing::debug!(
                    sessions = several.len(),
                    resume_seq,
                    "several detached sessions could hold this seq; a new session instead"
                );
                return None;
            }
        }
    }
    None
}

/// What replaying the log from a checkpoint gives: the frames to send, and the sequence and
/// position reached.
struct Replay {
    frames: Vec<Frame>,
    seq: u64,
    position: u64,
}

/// Replays the log after `checkpoint` with the session's filter, numbering events as the
/// session did; returns the frames numbered above `after_seq` (channel events only while the
/// caller can still read the channel), stopping after position `upto` when given. `None` when
/// the log no longer reaches back to the checkpoint, or the session was closed on purpose
/// (kick, ban, revocation, deletion) in between.
async fn replay(
    gateway: &Gateway,
    (checkpoint, later): &(Checkpoint, Vec<Checkpoint>),
    after_seq: u64,
    upto: Option<u64>,
    visible: &HashSet<Uuid>,
) -> Option<Replay> {
    let events = match gateway
        .services
        .events
        .since(checkpoint.server_id, checkpoint.position)
        .await
    {
        Ok(Some(events)) => events,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "event log unavailable for a resume");
            return None;
        }
    };
    let mut subscriptions: HashSet<Uuid> = checkpoint.subscriptions.iter().copied().collect();
    let mut later = later.iter().peekable();
    let (server_id, user_id) = (checkpoint.server_id, checkpoint.user_id);
    let mut out = Replay {
        frames: Vec::new(),
        seq: checkpoint.seq,
        position: checkpoint.position,
    };
    for event in events {
        if upto.is_some_and(|upto| event.position > upto) {
            break;
        }
        while let Some(next) = later.next_if(|c| c.position < event.position) {
            subscriptions = next.subscriptions.iter().copied().collect();
        }
        out.position = event.position;
        if closes(&event, server_id, user_id) {
            return None;
        }
        if !reaches(&event, server_id, user_id, &subscriptions) {
            continue;
        }
        out.seq += 1;
        let hidden = matches!(event.scope, Scope::Channel(c) if !visible.contains(&c));
        if out.seq > after_seq && !hidden {
            let data = serde_json::to_string(&event.data).unwrap_or_else(|_| "null".into());
            out.frames.push(frame(&event.name, &data, out.seq));
        }
    }
    Some(out)
}

/// The checkpoint to replay from for a client that has seen `seq` (the newest one at or before
/// it, of this user in this server), and the later ones in position order: the replay adopts
/// each later checkpoint's subscriptions when it passes its position.
fn usable(
    checkpoints: Vec<Checkpoint>,
    server_id: Uuid,
    user_id: Uuid,
    seq: u64,
) -> Option<(Checkpoint, Vec<Checkpoint>)> {
    let mine: Vec<Checkpoint> = checkpoints
        .into_iter()
        .filter(|c| c.server_id == server_id && c.user_id == user_id && c.log == PER_SERVER_LOG)
        .collect();
    let start = mine
        .iter()
        .filter(|c| c.seq <= seq)
        .max_by_key(|c| (c.seq, c.position))?
        .clone();
    let mut later: Vec<Checkpoint> = mine
        .into_iter()
        .filter(|c| c.position > start.position)
        .collect();
    later.sort_by_key(|c| (c.position, c.seq));
    Some((start, later))
}

impl Conn {
    /// Resumes session `old_id` on this socket from its newest usable checkpoint (held by this
    /// process or saved by any): the session is registered first, holding live events, then
    /// the log is replayed from the checkpoint, then the held events the replay did not reach
    /// are numbered after it. `None` when the gap cannot be served (a normal ready follows).
    pub(crate) async fn try_resume(
        &mut self,
        server: &Server,
        caller: &Caller,
        old_id: Uuid,
        resume_seq: u64,
    ) -> Option<Flow> {
        let gateway = self.gateway.clone();
        let mut known: Vec<Checkpoint> = gateway
            .take_local(old_id, server.id, caller.user_id)
            .into_iter()
            .collect();
        match gateway.buffer.load(old_id).await {
            Ok(saved) => known.extend(saved),
            Err(e) => tracing::warn!(error = %e, "session checkpoints unavailable"),
        }
        let chain = usable(known, server.id, caller.user_id, resume_seq)?;
        let visible = readable(&gateway.services, server, caller).await.ok()?;
        if !self.follow(server.id).await {
            return None;
        }
        let socket = self.attach();
        let session = Arc::new(Session::new(
            old_id,
            server.clone(),
            caller.clone(),
            // The subscriptions as of the newest checkpoint: those of the events to come.
            chain
                .1
                .last()
                .unwrap_or(&chain.0)
                .subscriptions
                .iter()
                .copied()
                .collect(),
            socket,
            true,
        ));
        if let Err(e) = gateway.buffer.claim(old_id, session.incarnation).await {
            tracing::warn!(error = %e, "session not claimed");
            self.detach_socket();
            return None;
        }
        gateway.insert(session.clone());
        let takeover = Event::new(
            server.id,
            Scope::User(caller.user_id),
            TAKEOVER_EVENT,
            json!({ "session_id": old_id, "incarnation": session.incarnation }),
        );
        if let Err(e) = gateway.services.events.publish(takeover).await {
            tracing::warn!(error = %e, "takeover not announced");
        }
        let replayed = match replay(&gateway, &chain, resume_seq, None, &visible).await {
            Some(r) if r.seq >= resume_seq => r,
            _ => {
                gateway.abandon(&session);
                self.detach_socket();
                return None;
            }
        };
        let later = gateway.caught_up(&session, replayed.seq, replayed.position);
        self.session = Some(session.clone());
        self.opened(&session).await;
        let events = replayed
            .frames
            .iter()
            .map(|f| &**f)
            .collect::<Vec<&str>>()
            .join(",");
        let text = format!(
            "{{\"event\":\"system.resumed\",\"data\":{{\"events\":[{events}],\"resume_seq\":{}}}}}",
            replayed.seq
        );
        if self.ws.text(text).await.is_err() {
            return Some(Flow::Close(close::UNKNOWN_ERROR, "Send failed"));
        }
        for f in later {
            if self.ws.text(f).await.is_err() {
                return Some(Flow::Close(close::UNKNOWN_ERROR, "Send failed"));
            }
        }
        self.live();
        Some(Flow::Continue)
    }

    /// `system.resume {last_seq}`: replays this session's events after `last_seq`, rebuilt
    /// from its checkpoints and the log, then `system.resumed {replayed, resume_seq}`.
    pub(crate) async fn on_resume(&mut self, data: &Value) -> Flow {
        let Some(session) = self.session.clone() else {
            return Flow::Continue;
        };
        let last = data.get("last_seq").and_then(Value::as_u64).unwrap_or(0);
        let gateway = self.gateway.clone();
        let (seq, position) = gateway.progress(&session);
        let mut known = gateway.recent(&session);
        if let Ok(saved) = gateway.buffer.load(session.id).await {
            known.extend(
                saved
                    .into_iter()
                    .filter(|c| c.incarnation == session.incarnation),
            );
        }
        let (server, user) = (session.server.id, session.caller.user_id);
        let replayed = match (usable(known, server, user, last), last <= seq) {
            (Some(chain), true) => {
                let visible = readable(&gateway.services, &session.server, &session.caller)
                    .await
                    .unwrap_or_default();
                replay(&gateway, &chain, last, Some(position), &visible).await
            }
            _ => None,
        };
        let Some(replayed) = replayed.filter(|r| r.seq == seq) else {
            count(false);
            return Flow::Close(close::INVALID_SEQUENCE, "Sequence no longer available");
        };
        count(true);
        // What the dispatcher delivers meanwhile follows `system.resumed`.
        self.ws.outbox().hold();
        for frame in &replayed.frames {
            if self.ws.text(frame.clone()).await.is_err() {
                return Flow::Close(close::UNKNOWN_ERROR, "Send failed");
            }
        }
        let flow = self
            .reply(
                "system.resumed",
                json!({ "replayed": replayed.frames.len(), "resume_seq": seq }),
            )
            .await;
        self.live();
        flow
    }
}

/// Counts one resume asked for, served or refused (`ecto_ws_resumes_total{outcome}`).
pub(crate) fn count(served: bool) {
    let outcome = if served { "served" } else { "refused" };
    metrics::counter!("ecto_ws_resumes_total", "outcome" => outcome).increment(1);
}
