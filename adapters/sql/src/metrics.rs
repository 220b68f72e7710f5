//! What the database adapter tells the metrics facade: how long callers wait for a pooled
//! connection, how many connections each pool holds and lends (read when Prometheus
//! scrapes), and, on SQLite, the write-ahead log's size and how long its checkpoints take.

use crate::db::{Backend, Db, SqliteConn};
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;
use std::future::Future;
use std::time::Instant;

/// One connection pool's state now.
#[derive(Debug, Clone)]
pub struct PoolUse {
    /// `postgres`, or SQLite's `sqlite_write` and `sqlite_read`.
    pub pool: &'static str,
    /// Connections open.
    pub size: usize,
    /// Connections lent out.
    pub in_use: usize,
    /// Callers waiting for one.
    pub waiting: usize,
    pub max_size: usize,
}

fn pool_use<M: deadpool::managed::Manager>(
    pool: &'static str,
    p: &deadpool::managed::Pool<M>,
) -> PoolUse {
    let status = p.status();
    PoolUse {
        pool,
        size: status.size,
        in_use: status.size.saturating_sub(status.available),
        waiting: status.waiting,
        max_size: status.max_size,
    }
}

/// A [`Db`] that does not keep its pools open (for reading their state while they exist).
#[derive(Clone)]
pub struct WeakDb(std::sync::Weak<Backend>);

impl WeakDb {
    /// The state of each connection pool; `None` once the database is closed.
    pub fn pool_use(&self) -> Option<Vec<PoolUse>> {
        self.0.upgrade().map(|backend| Db { backend }.pool_use())
    }
}

impl Db {
    /// A handle that does not keep the pools open.
    pub fn downgrade(&self) -> WeakDb {
        WeakDb(std::sync::Arc::downgrade(&self.backend))
    }

    /// The state of each connection pool (no connection is taken).
    pub fn pool_use(&self) -> Vec<PoolUse> {
        match &*self.backend {
            Backend::Pg(pools) => {
                // The shared pool and each thread's, as one.
                let mut all = PoolUse {
                    pool: "postgres",
                    size: 0,
                    in_use: 0,
                    waiting: 0,
                    max_size: 0,
                };
                for p in pools.all() {
                    let one = pool_use("postgres", &p);
                    all.size += one.size;
                    all.in_use += one.in_use;
                    all.waiting += one.waiting;
                    all.max_size += one.max_size;
                }
                vec![all]
            }
            Backend::Sqlite { write, read, .. } => vec![
                pool_use("sqlite_write", write),
                pool_use("sqlite_read", read),
            ],
        }
    }
}

/// Awaits a pool checkout, recording the wait in `ecto_db_pool_wait_seconds`.
pub(crate) async fn timed_checkout<T, E>(get: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let started = Instant::now();
    let got = get.await;
    metrics::histogram!("ecto_db_pool_wait_seconds").record(started.elapsed());
    got
}

#[derive(diesel::QueryableByName)]
struct CheckpointRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

#[derive(diesel::QueryableByName)]
struct PageSizeRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    page_size: i32,
}

/// A passive checkpoint of the write-ahead log, timed (`ecto_sqlite_checkpoint_seconds`),
/// with the log's size after it (`ecto_sqlite_wal_frames`, `ecto_sqlite_wal_bytes`).
pub(crate) async fn checkpoint(conn: &mut SqliteConn) -> Result<(), DieselError> {
    let started = Instant::now();
    let row: CheckpointRow = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
        .get_result(conn)
        .await?;
    metrics::histogram!("ecto_sqlite_checkpoint_seconds").record(started.elapsed());
    let page: PageSizeRow = diesel::sql_query("PRAGMA page_size")
        .get_result(conn)
        .await?;
    // `log` is the log's length in frames (-1 when the database is not in WAL mode); each
    // frame is a page and a 24-byte header, after the log's 32-byte header.
    let frames = f64::from(row.log.max(0));
    metrics::gauge!("ecto_sqlite_wal_frames").set(frames);
    let bytes = if frames > 0.0 {
        32.0 + frames * (f64::from(page.page_size) + 24.0)
    } else {
        0.0
    };
    metrics::gauge!("ecto_sqlite_wal_bytes").set(bytes);
    Ok(())
}
