//! [`SessionBuffer`] in one process: checkpoints per session in a map, expiring a fixed time
//! after each session's last save (swept as saves go by).

use async_trait::async_trait;
use ecto_core::ports::{Checkpoint, SessionBuffer, CHECKPOINTS_KEPT};
use ecto_core::CoreResult;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Entry {
    incarnation: Uuid,
    checkpoints: VecDeque<Checkpoint>,
    touched: Instant,
}

impl Entry {
    /// The newest checkpoint, when it was taken with the socket gone.
    fn detached_of(&self, server_id: Uuid, user_id: Uuid) -> Option<&Checkpoint> {
        self.checkpoints
            .front()
            .filter(|c| c.detached && c.server_id == server_id && c.user_id == user_id)
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<Uuid, Entry>,
    saves: u64,
}

/// Session checkpoints of this process.
pub struct MemorySessionBuffer {
    inner: Mutex<Inner>,
    ttl: Duration,
}

impl MemorySessionBuffer {
    /// Checkpoints of a session expire `ttl` after its last save or claim.
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            ttl,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SessionBuffer for MemorySessionBuffer {
    async fn claim(&self, session_id: Uuid, incarnation: Uuid) -> CoreResult<()> {
        let mut inner = self.inner();
        let entry = inner.sessions.entry(session_id).or_insert_with(|| Entry {
            incarnation,
            checkpoints: VecDeque::new(),
            touched: Instant::now(),
        });
        entry.incarnation = incarnation;
        entry.touched = Instant::now();
        Ok(())
    }

    async fn save(&self, checkpoint: &Checkpoint) -> CoreResult<bool> {
        let ttl = self.ttl;
        let mut inner = self.inner();
        inner.saves += 1;
        if inner.saves.is_multiple_of(1024) {
            inner.sessions.retain(|_, e| e.touched.elapsed() < ttl);
        }
        let entry = inner
            .sessions
            .entry(checkpoint.session_id)
            .or_insert_with(|| Entry {
                incarnation: checkpoint.incarnation,
                checkpoints: VecDeque::new(),
                touched: Instant::now(),
            });
        if entry.touched.elapsed() >= ttl {
            entry.checkpoints.clear();
            entry.incarnation = checkpoint.incarnation;
        }
        if entry.incarnation != checkpoint.incarnation {
            return Ok(false);
        }
        if entry
            .checkpoints
            .front()
            .is_some_and(|c| c.seq == checkpoint.seq)
        {
            entry.checkpoints.pop_front();
        }
        entry.checkpoints.push_front(checkpoint.clone());
        entry.checkpoints.truncate(CHECKPOINTS_KEPT);
        entry.touched = Instant::now();
        Ok(true)
    }

    async fn load(&self, session_id: Uuid) -> CoreResult<Vec<Checkpoint>> {
        Ok(self
            .inner()
            .sessions
            .get(&session_id)
            .filter(|e| e.touched.elapsed() < self.ttl)
            .map(|e| e.checkpoints.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn detached(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Vec<Vec<Checkpoint>>> {
        let inner = self.inner();
        let mut found: Vec<&Entry> = inner
            .sessions
            .values()
            .filter(|e| e.touched.elapsed() < self.ttl)
            .filter(|e| e.detached_of(server_id, user_id).is_some())
            .collect();
        found.sort_by_key(|e| std::cmp::Reverse(e.touched));
        Ok(found
            .into_iter()
            .map(|e| e.checkpoints.iter().cloned().collect())
            .collect())
    }

    async fn forget(&self, session_id: Uuid) -> CoreResult<()> {
        self.inner().sessions.remove(&session_id);
        Ok(())
    }
}
