//! [`CentralOutbox`] on SQL: the `central_outbox` queue and the per-server delivery lease in
//! `central_sync_state` (see the migration `central_outbox`). The stores queue calls with
//! `insert_sync!` inside their own transactions.

use crate::db::{db_error, Db};
use crate::types::DbId;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::model::QueuedSync;
use ecto_core::ports::CentralOutbox;
use ecto_core::CoreResult;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// How often [`CentralOutbox::settle`] looks at the queue.
const SETTLE_POLL: Duration = Duration::from_millis(25);

/// The outbox of calls to ecto-central.
pub struct SqlCentralOutbox {
    db: Db,
    wake: Notify,
}

impl SqlCentralOutbox {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Notify::new(),
        }
    }
}

type HeadRow = (DbId, i64, String, String, String, i32);

#[async_trait]
impl CentralOutbox for SqlCentralOutbox {
    async fn due_servers(&self, now_ms: i64, limit: i64) -> CoreResult<Vec<Uuid>> {
        // Only a server's first call is ever put off (`retry_later`), and a later call is due
        // from when it was queued: the latest due time of a server's calls is its first one's
        // unless that one is already due, so a server is due exactly when that latest time is.
        let rows: Vec<DbId> = db_run!(self.db, read, |conn| {
            central_outbox::table
                .group_by(central_outbox::server_id)
                .having(diesel::dsl::max(central_outbox::next_attempt_ms).le(now_ms))
                .select(central_outbox::server_id)
                .limit(limit)
                .load::<DbId>(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(rows.into_iter().map(|id| id.0).collect())
    }

    async fn lease(
        &self,
        server_id: Uuid,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> CoreResult<bool> {
        // One conditional UPDATE: the database lets one of concurrent takers match.
        let taken = db_run!(self.db, write, |conn| {
            diesel::update(
                central_sync_state::table
                    .filter(central_sync_state::server_id.eq(DbId(server_id)))
                    .filter(
                        central_sync_state::lease_owner
                            .is_null()
                            .or(central_sync_state::lease_owner.eq(owner))
                            .or(central_sync_state::lease_until.lt(now_ms)),
                    ),
            )
            .set((
                central_sync_state::lease_owner.eq(owner),
                central_sync_state::lease_until.eq(until_ms),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(taken == 1)
    }

    async fn release(&self, server_id: Uuid, owner: &str) -> CoreResult<()> {
        db_run!(self.db, write, |conn| {
            diesel::update(
                central_sync_state::table
                    .filter(central_sync_state::server_id.eq(DbId(server_id)))
                    .filter(central_sync_state::lease_owner.eq(owner)),
            )
            .set((
                central_sync_state::lease_owner.eq(None::<String>),
                central_sync_state::lease_until.eq(None::<i64>),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(())
    }

    async fn head(&self, server_id: Uuid) -> CoreResult<Option<QueuedSync>> {
        let row: Option<HeadRow> = db_run!(self.db, read, |conn| {
            central_outbox::table
                .filter(central_outbox::server_id.eq(DbId(server_id)))
                .order(central_outbox::seq.asc())
                .select((
                    central_outbox::server_id,
                    central_outbox::seq,
                    central_outbox::subject,
                    central_outbox::path,
                    central_outbox::body,
                    central_outbox::attempts,
                ))
                .first::<HeadRow>(conn)
                .await
                .optional()
                .map_err(db_error)
        })?;
        Ok(
            row.map(|(server, seq, subject, path, body, attempts)| QueuedSync {
                server_id: server.0,
                seq,
                subject,
                path,
                body,
                attempts,
            }),
        )
    }

    async fn remove(&self, server_id: Uuid, seq: i64, owner: &str) -> CoreResult<bool> {
        // Only while the lease is ours: a process that lost it (it stalled past its lease)
        // must not remove what the new holder is delivering.
        let n = db_run!(self.db, write, |conn| {
            let held = central_sync_state::table
                .filter(central_sync_state::server_id.eq(DbId(server_id)))
                .filter(central_sync_state::lease_owner.eq(owner))
                .select(central_sync_state::server_id);
            diesel::delete(
                central_outbox::table
                    .filter(central_outbox::server_id.eq(DbId(server_id)))
                    .filter(central_outbox::seq.eq(seq))
                    .filter(central_outbox::server_id.eq_any(held)),
            )
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(n == 1)
    }

    async fn retry_later(
        &self,
        server_id: Uuid,
        seq: i64,
        next_ms: i64,
        error: &str,
    ) -> CoreResult<()> {
        db_run!(self.db, write, |conn| {
            diesel::update(
                central_outbox::table
                    .filter(central_outbox::server_id.eq(DbId(server_id)))
                    .filter(central_outbox::seq.eq(seq)),
            )
            .set((
                central_outbox::attempts.eq(central_outbox::attempts + 1),
                central_outbox::next_attempt_ms.eq(next_ms),
                central_outbox::last_error.eq(error),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(())
    }

    async fn pending(&self, server_id: Uuid) -> CoreResult<Vec<String>> {
        db_run!(self.db, read, |conn| {
            central_outbox::table
                .filter(central_outbox::server_id.eq(DbId(server_id)))
                .select(central_outbox::subject)
                .distinct()
                .load::<String>(conn)
                .await
                .map_err(db_error)
        })
    }

    fn wake(&self) {
        self.wake.notify_one();
    }

    async fn idle(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.wake.notified()).await;
    }

    async fn settle(&self, server_id: Uuid, subject: &str, within: Duration) -> CoreResult<bool> {
        self.wake();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let queued: Vec<(String, i32)> = db_run!(self.db, read, |conn| {
                central_outbox::table
                    .filter(central_outbox::server_id.eq(DbId(server_id)))
                    .select((central_outbox::subject, central_outbox::attempts))
                    .load::<(String, i32)>(conn)
                    .await
                    .map_err(db_error)
            })?;
            if !queued.iter().any(|(s, _)| s == subject) {
                return Ok(true);
            }
            // A call of the server failed and waits for its backoff (the later ones wait
            // behind it): no answer is coming soon.
            if queued.iter().any(|(_, a)| *a > 0) || tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}
