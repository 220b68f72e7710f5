//! Checkpoints of sessions: taken under the registry lock, saved in order by one task, and
//! taken again periodically for sessions that changed (see the registry's module docs).

use crate::registry::Gateway;
use crate::session::{Session, SessionState};
use ecto_core::ports::Checkpoint;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Checkpoints a session keeps in memory for `system.resume`.
const RECENT_CHECKPOINTS: usize = 4;
/// A session whose checkpoint lags the log by this many events records a new one even when
/// nothing else changed, so that its resume point stays inside the log.
const CHECKPOINT_LAG: u64 = 2_000;
/// Most checkpoints the saver takes at once.
const SAVE_BATCH: usize = 256;
/// How long the saver waits after a batch before it looks for the next one: a resume on this
/// process waits for it at most this plus the saving ([`Gateway::flush`]); one on another
/// process comes after the client noticed the drop and reconnected.
const SAVE_PAUSE: Duration = Duration::from_millis(5);

impl Gateway {
    /// Starts the task that saves queued checkpoints in order: what is queued when it looks
    /// is saved together (see [`Gateway::save_batch`]), and it then pauses [`SAVE_PAUSE`] so
    /// that a stream of checkpoints (sessions opening or closing) wakes it once per batch, not
    /// once per checkpoint.
    pub(crate) fn spawn_saver(
        gateway: &Arc<Gateway>,
        mut to_save: mpsc::UnboundedReceiver<Checkpoint>,
    ) {
        let saving = Arc::downgrade(gateway);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while to_save.recv_many(&mut batch, SAVE_BATCH).await > 0 {
                let Some(gateway) = saving.upgrade() else {
                    break;
                };
                gateway.save_batch(&batch).await;
                gateway
                    .saved
                    .fetch_add(batch.len() as u64, Ordering::SeqCst);
                gateway.saved_notify.notify_waiters();
                batch.clear();
                drop(gateway);
                tokio::time::sleep(SAVE_PAUSE).await;
            }
        });
    }

    /// Starts the task that checkpoints changed sessions every `checkpoint_interval`, and
    /// leaves the servers no socket holds any more.
    pub(crate) fn spawn_janitor(gateway: &Arc<Gateway>) {
        let janitor = Arc::downgrade(gateway);
        let every = gateway
            .config
            .checkpoint_interval
            .min(gateway.config.stream_linger)
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(gateway) = janitor.upgrade() else {
                    break;
                };
                gateway.checkpoint_all();
                gateway.leave_idle();
            }
        });
    }

    /// Saves `batch` (in the order it was queued): each session's checkpoints one after the
    /// other, different sessions' at the same time (a shared buffer's round trips overlap).
    pub(crate) async fn save_batch(&self, batch: &[Checkpoint]) {
        let mut by_session: HashMap<Uuid, Vec<&Checkpoint>> = HashMap::new();
        for checkpoint in batch {
            by_session
                .entry(checkpoint.session_id)
                .or_default()
                .push(checkpoint);
        }
        futures_util::future::join_all(by_session.into_values().map(|own| async move {
            for checkpoint in own {
                self.save(checkpoint).await;
            }
        }))
        .await;
    }

    /// Saves one checkpoint; a session that was resumed elsewhere is let go.
    async fn save(&self, checkpoint: &Checkpoint) {
        match self.buffer.save(checkpoint).await {
            Ok(true) => {}
            Ok(false) => self.let_go(checkpoint.session_id, checkpoint.incarnation),
            Err(e) => tracing::warn!(error = %e, "session checkpoint not saved"),
        }
    }

    /// Takes a checkpoint of `session` and queues it for saving (call with the registry lock
    /// held, `position` being the registry's).
    pub(crate) fn record(&self, session: &Session, state: &mut SessionState, position: u64) {
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

    /// Records a checkpoint of every session that changed (or whose checkpoint lags far behind
    /// the log) since its last one.
    fn checkpoint_all(&self) {
        let registry = self.registry();
        for session in registry.all() {
            let position = registry.position(session.server.id);
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
}
