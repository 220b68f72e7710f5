//! Connection pools per backend, migrations, and the `db_run!` macro.

use async_trait::async_trait;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{ConnectionError, SqliteConnection};
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use ecto_core::ports::HealthCheck;
use ecto_core::{CoreError, CoreResult};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// Serializes concurrent `migrate` runs of several processes on one PostgreSQL database.
const MIGRATION_LOCK: i64 = 0x6563_746f;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection, Placement>;

tokio::task_local! {
    /// Set by [`offloaded`] around a store call whose statements may run long.
    static OFFLOAD: ();
}

/// Where the statements of an SQLite connection run. An indexed lookup or a one-row write in
/// an in-process database takes microseconds, less than handing it to another thread and
/// waking the caller again, so statements run on the calling thread; a call that may scan
/// (search) runs inside [`offloaded`] and goes to the blocking pool instead.
pub(crate) struct Placement;

impl SpawnBlocking for Placement {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        if OFFLOAD.try_with(|_| ()).is_ok() {
            tokio::task::spawn_blocking(task)
                .map(|joined| joined.map_err(Into::into))
                .boxed()
        } else {
            std::future::ready(Ok(task())).boxed()
        }
    }

    fn get_runtime() -> Self {
        Placement
    }
}

/// Runs `body` with its SQLite statements on the blocking pool (see [`Placement`]).
pub(crate) async fn offloaded<T>(body: impl std::future::Future<Output = T>) -> T {
    OFFLOAD.scope((), body).await
}

/// Runs the embedded migrations on a pooled connection; gives the connection back with the
/// result. The harness blocks on the runtime internally, so it runs on a blocking thread.
macro_rules! run_migrations {
    ($conn:expr, $migrations:expr) => {
        tokio::task::spawn_blocking(move || {
            let mut harness = AsyncMigrationHarness::new($conn);
            let result = harness
                .run_pending_migrations($migrations)
                .map(|applied| applied.len())
                .map_err(|e| CoreError::internal_msg(format!("migration failed: {e}")));
            (harness.into_inner(), result)
        })
        .await
        .map_err(CoreError::internal)?
    };
}

/// PostgreSQL's connection pools. A connection is driven (its socket written and read) by a
/// task of the thread that opened it. One pool shared by every thread puts two cross-thread
/// wakes in each query whose caller is not that thread: the query is handed to the driver's
/// thread, and its answer back. So once [`Db::spread_over`] is told how many threads serve
/// requests, each thread with a runtime of its own (an HTTP worker, the dispatcher) gets a pool
/// of its own, whose connections that thread drives; threads of the shared runtime use the
/// shared pool. The connections of all the pools together stay within the configured size.
pub(crate) struct PgPools {
    url: String,
    max_connections: usize,
    shared: Pool<AsyncPgConnection>,
    /// How the pools are split; unset until [`Db::spread_over`] (every call then uses the
    /// shared pool).
    split: std::sync::OnceLock<Split>,
    threads: std::sync::Mutex<Vec<(std::thread::ThreadId, Pool<AsyncPgConnection>)>>,
}

impl PgPools {
    fn new(url: &str, max_connections: usize) -> CoreResult<Self> {
        Ok(Self {
            url: url.to_owned(),
            max_connections,
            shared: pg_pool(url, max_connections)?,
            split: Default::default(),
            threads: Default::default(),
        })
    }

    /// A connection of this thread's pool (see [`PgPools`]).
    pub(crate) async fn get(
        &self,
    ) -> Result<deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>, PoolError>
    {
        self.near().get().await
    }

    fn near(&self) -> Pool<AsyncPgConnection> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let own_runtime =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread);
        let (Some(split), true) = (self.split.get(), own_runtime) else {
            return self.shared.clone();
        };
        let me = std::thread::current().id();
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, pool)) = threads.iter().find(|(id, _)| *id == me) {
            return pool.clone();
        }
        // Past the threads counted (a thread this process did not plan for), the shared pool:
        // the connections stay within the configured size.
        if threads.len() >= split.threads {
            return self.shared.clone();
        }
        match pg_pool(&self.url, split.each) {
            Ok(pool) => {
                threads.push((me, pool.clone()));
                pool
            }
            Err(_) => self.shared.clone(),
        }
    }

    /// Every pool, the shared one first.
    pub(crate) fn all(&self) -> Vec<Pool<AsyncPgConnection>> {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::once(self.shared.clone())
            .chain(threads.iter().map(|(_, p)| p.clone()))
            .collect()
    }
}

/// The pool of each of up to `threads` threads holds `each` connections.
struct Split {
    each: usize,
    threads: usize,
}

fn pg_pool(url: &str, size: usize) -> CoreResult<Pool<AsyncPgConnection>> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // A broken connection is noticed (and replaced) without a ping per checkout.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    build_pool(manager, size)
}

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    Sqlite,
}

pub(crate) enum Backend {
    Pg(PgPools),
    /// SQLite allows one writer at a time: a pool of one connection takes every write, so
    /// writers queue here instead of failing with SQLITE_BUSY; reads use the other pool.
    Sqlite {
        write: Pool<SqliteConn>,
        read: Pool<SqliteConn>,
        /// Plain message inserts waiting for the write connection (see `messages.rs`).
        inserts: std::sync::Mutex<Vec<crate::messages::PendingInsert>>,
    },
}

/// The database handle every SQL store shares. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub(crate) backend: std::sync::Arc<Backend>,
}

impl Db {
    /// Opens pools for `url`: `postgres://…` / `postgresql://…` for PostgreSQL, anything else is
    /// an SQLite file path (created if missing). Nothing is connected until first use, except
    /// that [`Db::migrate`] connects.
    pub fn open(url: &str, max_connections: usize) -> CoreResult<Self> {
        Self::open_with(url, max_connections, false)
    }

    /// [`Db::open`], with SQLite's `synchronous = FULL` when `sync_every_commit` (each commit
    /// is on disk before it returns, so it survives a power loss; `NORMAL` survives a crash of
    /// the process, and may lose the last commits when the machine itself stops).
    pub fn open_with(
        url: &str,
        max_connections: usize,
        sync_every_commit: bool,
    ) -> CoreResult<Self> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Pg(PgPools::new(url, max_connections)?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let write = build_pool(sqlite_manager(path, sync_every_commit), 1)?;
            let read = build_pool(
                sqlite_manager(path, sync_every_commit),
                max_connections.clamp(1, 8),
            )?;
            Backend::Sqlite {
                write,
                read,
                inserts: Default::default(),
            }
        };
        Ok(Self {
            backend: std::sync::Arc::new(backend),
        })
    }

    /// PostgreSQL: gives each of up to `threads` threads with a runtime of their own (the HTTP
    /// workers, the dispatcher) a pool of its own, its share of the configured size beside the
    /// shared pool's (see [`PgPools`]). Nothing changes on SQLite, whose statements run on the
    /// calling thread.
    pub fn spread_over(&self, threads: usize) {
        let Backend::Pg(pools) = &*self.backend else {
            return;
        };
        // A quarter (at least one) stays shared, for the multi-threaded runtime's work.
        let shared = (pools.max_connections / 4).max(1);
        let each = pools.max_connections.saturating_sub(shared) / threads.max(1);
        if each < 2 {
            // Too small to split: one connection per thread would hold back every call of a
            // thread behind its slowest.
            return;
        }
        pools.shared.resize(shared);
        let _ = pools.split.set(Split {
            each,
            threads: threads.max(1),
        });
    }

    pub fn kind(&self) -> DbKind {
        match *self.backend {
            Backend::Pg(_) => DbKind::Postgres,
            Backend::Sqlite { .. } => DbKind::Sqlite,
        }
    }

    /// Runs a batch of raw SQL statements on the write connection (maintenance tools and
    /// tests; the application itself only uses typed queries).
    pub async fn execute_sql(&self, sql: &str) -> CoreResult<()> {
        match &*self.backend {
            Backend::Pg(pool) => {
                pool.get()
                    .await
                    .map_err(pool_error)?
                    .batch_execute(sql)
                    .await
            }
            Backend::Sqlite { write, .. } => {
                write
                    .get()
                    .await
                    .map_err(pool_error)?
                    .batch_execute(sql)
                    .await
            }
        }
        .map_err(db_error)
    }

    /// Runs `sql`, a query answering one row with a BIGINT column `n` (such as
    /// `SELECT COUNT(*) AS n FROM …`), on the write connection, and returns `n` (tests and
    /// maintenance tools).
    pub async fn count_sql(&self, sql: &str) -> CoreResult<i64> {
        let query = diesel::sql_query(sql);
        match &*self.backend {
            Backend::Pg(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                query.get_result::<CountRow>(&mut conn).await
            }
            Backend::Sqlite { write, .. } => {
                let mut conn = write.get().await.map_err(pool_error)?;
                query.get_result::<CountRow>(&mut conn).await
            }
        }
        .map(|row| row.n)
        .map_err(db_error)
    }

    /// SQLite upkeep every 250 ms, off the request path: indexes the pending messages for
    /// search, then copies the write-ahead log back into the database (a passive checkpoint,
    /// on the blocking pool). Without it the commit that crossed SQLite's threshold paid for
    /// the checkpoint, a few milliseconds every hundred messages; the connections' own
    /// threshold stays as a backstop at 10,000 pages. Nothing to do on PostgreSQL.
    pub fn spawn_upkeep(&self) {
        if self.kind() != DbKind::Sqlite {
            return;
        }
        let db = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let done: CoreResult<()> = async {
                    db.index_pending_messages().await?;
                    let Backend::Sqlite { read, .. } = &*db.backend else {
                        return Ok(());
                    };
                    let mut conn = read.get().await.map_err(pool_error)?;
                    offloaded(crate::metrics::checkpoint(&mut conn))
                        .await
                        .map_err(db_error)
                }
                .await;
                if let Err(e) = done {
                    tracing::warn!(error = %e, "SQLite upkeep (search index, checkpoint) failed");
                }
            }
        });
    }

    /// SQLite: adds the messages sent since the last call to the full-text index, in one
    /// transaction (see the migrations `deferred_message_search` and `lean_send_writes`).
    /// Runs with the checkpoints and before every search. Nothing to do on PostgreSQL.
    pub(crate) async fn index_pending_messages(&self) -> CoreResult<()> {
        let Backend::Sqlite { write, .. } = &*self.backend else {
            return Ok(());
        };
        let mut conn = write.get().await.map_err(pool_error)?;
        offloaded(conn.transaction(async |conn| {
            // The rows above the mark, then the mark raised to the last of them (see the
            // migration `lean_send_writes`); nothing is written when there are none.
            conn.batch_execute(
                "INSERT INTO messages_fts (rowid, content) \
                 SELECT rowid, content FROM messages \
                 WHERE rowid > (SELECT indexed_to FROM messages_fts_state) ORDER BY rowid; \
                 UPDATE messages_fts_state SET indexed_to = \
                 (SELECT coalesce(max(rowid), 0) FROM messages) \
                 WHERE indexed_to < (SELECT coalesce(max(rowid), 0) FROM messages);",
            )
            .await
        }))
        .await
        .map_err(db_error)
    }

    /// Applies the embedded migrations that are not applied yet; returns how many ran.
    /// Several processes may call this at once on PostgreSQL: an advisory lock serializes them.
    pub async fn migrate(&self) -> CoreResult<usize> {
        match &*self.backend {
            Backend::Pg(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .execute(&mut conn)
                    .await
                    .map_err(db_error)?;
                let (mut conn, result) = run_migrations!(conn, PG_MIGRATIONS);
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .execute(&mut conn)
                    .await
                    .map_err(db_error)?;
                result
            }
            Backend::Sqlite { write, .. } => {
                let conn = write.get().await.map_err(pool_error)?;
                run_migrations!(conn, SQLITE_MIGRATIONS).1
            }
        }
    }
}

/// The one row of [`Db::count_sql`].
#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn build_pool<C>(manager: AsyncDieselConnectionManager<C>, size: usize) -> CoreResult<Pool<C>>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    Pool::builder(manager)
        .max_size(size.max(1))
        // A request waits at most this long for a connection (every one busy, or the
        // database not answering) before it is answered 503.
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(3)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(CoreError::internal)
}

fn sqlite_manager(path: &str, sync_every_commit: bool) -> AsyncDieselConnectionManager<SqliteConn> {
    let setup: &'static str = if sync_every_commit {
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; \
         PRAGMA wal_autocheckpoint = 10000;"
    } else {
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
         PRAGMA wal_autocheckpoint = 10000;"
    };
    let mut config = ManagerConfig::<SqliteConn>::default();
    // The default verifies every checkout with a query (one more blocking-thread hop per
    // database call); a file connection does not go stale, a broken one is still replaced.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = SqliteConn::establish(&url).await?;
            conn.batch_execute(setup)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    AsyncDieselConnectionManager::new_with_config(path, config)
}

/// A connection could not be had: the database is down, restarting, or every connection is
/// busy past the pool's wait. `Unavailable` (503 "Database unavailable").
pub(crate) fn pool_error(e: PoolError) -> CoreError {
    CoreError::unavailable("Database unavailable", format!("database pool: {e}"))
}

/// A failed query: `Unavailable` when the connection was lost under it (the database
/// restarting or shutting down), internal otherwise.
pub(crate) fn db_error(e: DieselError) -> CoreError {
    let lost = match &e {
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => true,
        // PostgreSQL ending connections: 57P01 admin_shutdown, 57P03 cannot_connect_now.
        DieselError::DatabaseError(_, info) => {
            let m = info.message();
            m.starts_with("terminating connection") || m.starts_with("the database system is")
        }
        _ => false,
    };
    if lost {
        CoreError::unavailable("Database unavailable", e)
    } else {
        CoreError::internal(e)
    }
}

/// For transactions that end with `RollbackTransaction` when the row they target is not there:
/// that outcome is `false` (nothing written), any other failure an internal error.
pub(crate) fn rollback_is_false(e: DieselError) -> Result<bool, CoreError> {
    match e {
        DieselError::RollbackTransaction => Ok(false),
        e => Err(db_error(e)),
    }
}

/// True for a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Runs `$body` with `$conn` bound to a pooled connection of the right backend and that
/// backend's schema glob-imported. `read` or `write` picks the SQLite pool.
macro_rules! db_run {
    ($db:expr, $pick:ident, |$conn:ident| $body:expr) => {{
        match &*$db.backend {
            $crate::db::Backend::Pg(pool) => {
                #[allow(unused_imports)]
                use $crate::schema_pg::*;
                let mut pooled = $crate::metrics::timed_checkout(pool.get())
                    .await
                    .map_err($crate::db::pool_error)?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::db::Backend::Sqlite { $pick: pool, .. } => {
                #[allow(unused_imports)]
                use $crate::schema_sqlite::*;
                let mut pooled = $crate::metrics::timed_checkout(pool.get())
                    .await
                    .map_err($crate::db::pool_error)?;
                let $conn = &mut *pooled;
                $body
            }
        }
    }};
}

/// Inserts a `NewAudit` on `$conn` (inside the caller's transaction); the schema of the
/// current `db_run!` arm must be in scope.
macro_rules! insert_audit {
    ($conn:expr, $audit:expr) => {{
        let a = &$audit;
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::id.eq($crate::types::DbId(a.id)),
                audit_log::server_id.eq($crate::types::DbId(a.server_id)),
                audit_log::actor_id.eq($crate::types::DbId(a.actor_id)),
                audit_log::action.eq(a.action),
                audit_log::target_type.eq(a.target_type),
                audit_log::target_id.eq(a.target_id.map($crate::types::DbId)),
                audit_log::details.eq(a.details.clone()),
                audit_log::created_at.eq(a.created_at),
            ))
            .execute($conn)
            .await
    }};
}

/// Queues `$sync` (a `NewSync`) as the next call of server `$server_id` in the central outbox,
/// on `$conn` inside the caller's transaction, due at once; `?` returns the database error
/// from the enclosing transaction. Taking the number updates the server's
/// `central_sync_state` row, which holds that row until the transaction ends: the calls of one
/// server are numbered in the order their transactions commit. The schema of the current
/// `db_run!` arm must be in scope.
macro_rules! insert_sync {
    ($conn:expr, $server_id:expr, $sync:expr, $now:expr) => {{
        let sync: &ecto_core::model::NewSync = &$sync;
        let server = $crate::types::DbId($server_id);
        let now: ecto_core::model::Timestamp = $now;
        diesel::insert_into(central_sync_state::table)
            .values((
                central_sync_state::server_id.eq(server),
                central_sync_state::next_seq.eq(0i64),
            ))
            .on_conflict_do_nothing()
            .execute($conn)
            .await?;
        let state = central_sync_state::table.filter(central_sync_state::server_id.eq(server));
        diesel::update(state)
            .set(central_sync_state::next_seq.eq(central_sync_state::next_seq + 1i64))
            .execute($conn)
            .await?;
        let seq: i64 = state
            .select(central_sync_state::next_seq)
            .first($conn)
            .await?;
        diesel::insert_into(central_outbox::table)
            .values((
                central_outbox::server_id.eq(server),
                central_outbox::seq.eq(seq),
                central_outbox::subject.eq(&sync.subject),
                central_outbox::path.eq(sync.path),
                central_outbox::body.eq(&sync.body),
                central_outbox::attempts.eq(0),
                central_outbox::next_attempt_ms.eq(now.timestamp_millis()),
                central_outbox::created_at.eq(now),
            ))
            .execute($conn)
            .await?;
    }};
}

/// Inserts a `MessageRecord` on `$conn` (inside the caller's transaction); the schema of the
/// current `db_run!` arm must be in scope.
macro_rules! insert_message {
    ($conn:expr, $m:expr) => {{
        let m = &$m;
        diesel::insert_into(messages::table)
            .values((
                messages::id.eq($crate::types::DbId(m.id)),
                messages::server_id.eq($crate::types::DbId(m.server_id)),
                messages::channel_id.eq($crate::types::DbId(m.channel_id)),
                messages::author_id.eq($crate::types::DbId(m.author_id)),
                messages::content.eq(m.content.as_deref()),
                messages::type_.eq(m.kind),
                messages::reply_to.eq(m.reply_to.map($crate::types::DbId)),
                messages::pinned.eq(m.pinned),
                messages::deleted.eq(false),
                messages::mention_everyone.eq(m.mention_everyone),
                messages::mention_roles.eq($crate::rows::ids_to_json(&m.mention_roles)),
                messages::mention_users.eq($crate::rows::ids_to_json(&m.mention_users)),
                messages::webhook_id.eq(m.webhook_id.map($crate::types::DbId)),
                messages::webhook_name.eq(m.webhook_name.as_deref()),
                messages::webhook_avatar_url.eq(m.webhook_avatar_url.as_deref()),
                messages::created_at.eq(m.created_at),
            ))
            .execute($conn)
            .await
    }};
}

/// Inserts an `ActivityRecord` on `$conn` (inside the caller's transaction); the schema of the
/// current `db_run!` arm must be in scope.
macro_rules! insert_activity {
    ($conn:expr, $item:expr) => {{
        let i = &$item;
        diesel::insert_into(activity_items::table)
            .values((
                activity_items::id.eq($crate::types::DbId(i.id)),
                activity_items::user_id.eq($crate::types::DbId(i.user_id)),
                activity_items::server_id.eq($crate::types::DbId(i.server_id)),
                activity_items::type_.eq(i.kind.as_str()),
                activity_items::actor_id.eq($crate::types::DbId(i.actor_id)),
                activity_items::message_id.eq(i.message_id.map($crate::types::DbId)),
                activity_items::channel_id.eq(i.channel_id.map($crate::types::DbId)),
                activity_items::conversation_id.eq(i.conversation_id.map($crate::types::DbId)),
                activity_items::content_preview.eq(i.content_preview.as_deref()),
                activity_items::emoji.eq(i.emoji.as_deref()),
                activity_items::read.eq(i.read),
                activity_items::created_at.eq(i.created_at),
            ))
            .execute($conn)
            .await
    }};
}

/// Deletes a membership with its read states for the server's channels and DM
/// conversations (roles and refresh tokens go by cascade); evaluates to the number of member
/// rows deleted. For use inside a transaction of a `db_run!` arm.
macro_rules! delete_member {
    ($conn:expr, $server:expr, $user:expr) => {{
        let (server, user) = ($server, $user);
        let channel_ids = channels::table
            .filter(channels::server_id.eq(server))
            .select(channels::id);
        diesel::delete(
            read_states::table
                .filter(read_states::user_id.eq(user))
                .filter(read_states::channel_id.eq_any(channel_ids)),
        )
        .execute($conn)
        .await?;
        let conversations = dm_conversations::table
            .filter(dm_conversations::server_id.eq(server))
            .select(dm_conversations::id);
        diesel::delete(
            dm_read_states::table
                .filter(dm_read_states::user_id.eq(user))
                .filter(dm_read_states::conversation_id.eq_any(conversations)),
        )
        .execute($conn)
        .await?;
        diesel::delete(
            members::table
                .filter(members::server_id.eq(server))
                .filter(members::user_id.eq(user)),
        )
        .execute($conn)
        .await?
    }};
}

/// `/ready`'s check of the database: one `SELECT 1`.
pub struct SqlHealth(pub Db);

#[async_trait]
impl HealthCheck for SqlHealth {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> CoreResult<()> {
        db_run!(self.0, read, |conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod search_mark_tests {
    use super::Db;

    /// A migrated SQLite database of one connection per pool in a fresh temporary directory
    /// (the directory is the caller's to remove).
    pub(super) async fn migrated(tag: &str) -> (std::path::PathBuf, Db) {
        let dir = std::env::temp_dir().join(format!("ecto-sql-{tag}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Db::open(dir.join("t.db").to_str().expect("utf-8"), 1).expect("opens");
        db.migrate().await.expect("migrates");
        (dir, db)
    }

    /// Inserts a message of `word` (no server row: the test connection has no foreign keys).
    fn insert(n: u32, word: &str) -> String {
        format!(
            "INSERT INTO messages (id, server_id, channel_id, author_id, content, created_at) \
             VALUES ('m{n}', 's', 'c', 'a', '{word}', '2026-12-06 00:00:00+00:00');"
        )
    }

    async fn found(db: &Db, word: &str) -> i64 {
        db.index_pending_messages().await.expect("indexes");
        db.count_sql(&format!(
            "SELECT COUNT(*) AS n FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid \
             WHERE messages_fts MATCH '{word}'"
        ))
        .await
        .expect("searches")
    }

    /// The search index's mark (migration `lean_send_writes`): rows above it are indexed on the
    /// next pass, edits and deletions before and after a pass show, and a rowid SQLite gives
    /// again after the newest rows were deleted is indexed too.
    #[tokio::test]
    async fn the_mark_follows_inserts_edits_and_deletions() {
        let (dir, db) = migrated("mark").await;
        db.execute_sql("PRAGMA foreign_keys = OFF;")
            .await
            .expect("pragma");
        db.execute_sql(&(insert(1, "walrus") + &insert(2, "walrus") + &insert(3, "narwhal")))
            .await
            .expect("inserts");
        assert_eq!(found(&db, "walrus").await, 2);
        // Indexed rows: an edit and a deletion leave the index.
        db.execute_sql("UPDATE messages SET content = 'octopus' WHERE id = 'm1';")
            .await
            .expect("edits");
        db.execute_sql("DELETE FROM messages WHERE id = 'm3';")
            .await
            .expect("deletes");
        assert_eq!(found(&db, "walrus").await, 1);
        assert_eq!(found(&db, "octopus").await, 1);
        assert_eq!(found(&db, "narwhal").await, 0);
        // m3 was the newest: its rowid comes back for the next row, which must be indexed.
        let reused = format!("{}{}", insert(4, "squid"), insert(5, "squid"));
        db.execute_sql(&reused).await.expect("inserts");
        assert_eq!(
            db.count_sql("SELECT rowid AS n FROM messages WHERE id = 'm4'")
                .await
                .expect("rowid"),
            3,
            "SQLite gave the deleted newest rowid again"
        );
        // Rows not yet indexed: an edit is indexed as it is then, a deleted one never.
        db.execute_sql("UPDATE messages SET content = 'kraken' WHERE id = 'm5';")
            .await
            .expect("edits");
        assert_eq!(found(&db, "squid").await, 1);
        assert_eq!(found(&db, "kraken").await, 1);
        db.execute_sql(&(insert(6, "eel") + "DELETE FROM messages WHERE id = 'm6';"))
            .await
            .expect("inserts and deletes");
        assert_eq!(found(&db, "eel").await, 0);
        db.execute_sql(&insert(7, "eel")).await.expect("inserts");
        assert_eq!(found(&db, "eel").await, 1);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod statement_cache_tests {
    use super::{db_error, CountRow, Db};
    use crate::members::SqlMemberStore;
    use diesel_async::RunQueryDsl;
    use ecto_core::ports::MemberStore;

    /// `sql` (`SELECT … AS n`) on the read connection.
    async fn count_on_read(db: &Db, sql: String) -> ecto_core::CoreResult<i64> {
        let row: CountRow = db_run!(db, read, |conn| {
            diesel::sql_query(sql)
                .get_result::<CountRow>(conn)
                .await
                .map_err(db_error)?
        });
        Ok(row.n)
    }

    /// How many times SQLite prepared again the read connection's cached statements that
    /// contain `LIMIT`, and how often they ran (`sqlite_stmt`, see `.cargo/config.toml`; the
    /// query reading it is left out).
    async fn limited_statements(db: &Db) -> (i64, i64) {
        let sum = |column: &str| {
            format!(
                "SELECT coalesce(sum({column}), 0) AS n FROM sqlite_stmt \
                 WHERE sql LIKE '%LIMIT%' AND sql NOT LIKE '%sqlite_stmt%'"
            )
        };
        let reprepared = count_on_read(db, sum("reprep")).await.expect("sqlite_stmt");
        let runs = count_on_read(db, sum("run")).await.expect("sqlite_stmt");
        (reprepared, runs)
    }

    /// SQLite is compiled with the query planner stability guarantee (`.cargo/config.toml`):
    /// a cached statement with `LIMIT ?` (diesel's `.first()`, here `MemberStore::get`) runs
    /// again with new values without being prepared again. Without it, SQLite's planner looks
    /// at the bound limit, and every new binding expires the statement.
    #[tokio::test]
    async fn a_cached_statement_with_a_bound_limit_is_not_prepared_again() {
        let (dir, db) = super::search_mark_tests::migrated("qpsg").await;
        let members = SqlMemberStore(db.clone());
        for _ in 0..3 {
            let found = members
                .get(uuid::Uuid::now_v7(), uuid::Uuid::now_v7())
                .await
                .expect("reads");
            assert!(found.is_none());
        }
        let (reprepared, runs) = limited_statements(&db).await;
        assert!(
            runs >= 3,
            "the member lookup ran {runs} times on the read connection"
        );
        assert_eq!(
            reprepared, 0,
            "prepared again {reprepared} times in {runs} runs"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
