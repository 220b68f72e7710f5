//! One identified session: what its socket and the dispatcher share (sequence, position,
//! subscriptions, the socket's sending half) and how it is checkpointed.

use ecto_core::model::Server;
use ecto_core::ports::Checkpoint;
use ecto_core::usecases::Caller;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use uuid::Uuid;

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
    pub frames: Arc<crate::body::Outbox>,
    pub close: Arc<CloseSignal>,
}

impl SocketHandle {
    /// Asks the socket to close with `code`.
    pub fn close(&self, code: u16, reason: &str) {
        self.close.close(code, reason);
    }
}

/// An event held for a session that is still replaying the log: (position, name as a JSON
/// string, data).
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
    /// A session attached to `socket`; `catching_up` while a resume replays the log.
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

    /// The session's state, locked (a poisoned lock is taken over).
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A checkpoint of the session; `position` is the registry's (see
    /// [`crate::registry::Gateway`]).
    pub fn checkpoint(&self, state: &SessionState, position: u64) -> Checkpoint {
        Checkpoint {
            session_id: self.id,
            incarnation: self.incarnation,
            server_id: self.server.id,
            user_id: self.caller.user_id,
            seq: state.seq,
            position: state.position.max(position),
            log: ecto_core::ports::PER_SERVER_LOG,
            subscriptions: state.subscriptions.iter().copied().collect(),
            detached: state.socket.is_none(),
        }
    }
}
