//! Port contract suites run against every adapter: memory and Redis caches and rate limiters,
//! SQLite and PostgreSQL stores (the latter two from `make test`'s services).

use ecto_core::model::RefreshTokenRecord;
use ecto_core::ports::RefreshTokenStore;
use ecto_core::testing::{cache_contract, store_contract, Sleep, Stores};
use ecto_sql::{Db, SqlAccountStore, SqlMemberStore, SqlRefreshTokenStore, SqlServerStore};
use ecto_tests::required_env;
use std::sync::Arc;

mod size;

/// A connection, with a key prefix of its own, to each Redis the managed profile supports:
/// one Redis (`ECTO_TEST_REDIS_URL`) and the three-node Redis Cluster `make test` starts
/// (`ECTO_TEST_REDIS_CLUSTER_URL`).
async fn redises(tag: &str) -> Vec<ecto_redis::RedisConn> {
    let prefix = format!(
        "{}{}:",
        required_env("ECTO_TEST_REDIS_PREFIX"),
        ecto_tests::unique(tag)
    );
    let single =
        ecto_redis::RedisConn::connect(&required_env("ECTO_TEST_REDIS_URL"), &prefix, false)
            .await
            .expect("redis");
    let cluster =
        ecto_redis::RedisConn::connect(&required_env("ECTO_TEST_REDIS_CLUSTER_URL"), &prefix, true)
            .await
            .expect("redis cluster");
    vec![single, cluster]
}

fn sleep() -> Box<Sleep> {
    Box::new(|d| Box::pin(tokio::time::sleep(d)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_keeps_the_cache_contract() {
    cache_contract(&ecto_memory::MemoryCache::default(), &*sleep()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cache_keeps_the_cache_contract() {
    for conn in redises("c").await {
        cache_contract(&ecto_redis::RedisCache::new(conn), &*sleep()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_rate_limiter_keeps_the_rate_limit_contract() {
    let limiter = Arc::new(ecto_memory::MemoryRateLimiter::default());
    ecto_core::testing::rate_limit_contract(&*limiter, &*sleep()).await;
    concurrent_checks_never_overdraw(limiter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rate_limiter_keeps_the_rate_limit_contract() {
    for conn in redises("r").await {
        let limiter = Arc::new(ecto_redis::RedisRateLimiter(conn));
        ecto_core::testing::rate_limit_contract(&*limiter, &*sleep()).await;
        concurrent_checks_never_overdraw(limiter).await;
    }
}

/// 40 concurrent checks on a bucket of 10: exactly 10 are allowed.
async fn concurrent_checks_never_overdraw(limiter: Arc<dyn ecto_core::ports::RateLimiter>) {
    let key = ecto_tests::unique("race");
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (limiter, key) = (limiter.clone(), key.clone());
            tokio::spawn(async move {
                limiter
                    .check(&key, 10, std::time::Duration::from_secs(600))
                    .await
                    .expect("check")
                    .is_allowed()
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.expect("task"));
    }
    assert_eq!(allowed, 10, "concurrent checks take exactly the capacity");
}

async fn check_stores(db: Db) {
    db.migrate().await.expect("migrate");
    store_contract(Stores {
        servers: &SqlServerStore(db.clone()),
        accounts: &SqlAccountStore(db.clone()),
        members: &SqlMemberStore(db.clone()),
        tokens: &SqlRefreshTokenStore(db.clone()),
    })
    .await;
    concurrent_takes_rotate_once(db).await;
}

/// Two concurrent uses of one refresh token: exactly one wins.
async fn concurrent_takes_rotate_once(db: Db) {
    let servers = SqlServerStore(db.clone());
    let svc_server = ecto_core::ports::ServerStore::create(
        &servers,
        ecto_core::model::NewServer {
            id: ecto_core::new_id(),
            name: "Race".into(),
            address: None,
            everyone_permissions: 0,
            everyone_role_id: ecto_core::new_id(),
            now: chrono::Utc::now(),
        },
    )
    .await
    .expect("server");
    let members = SqlMemberStore(db.clone());
    let outcome = ecto_core::ports::MemberStore::join(
        &members,
        ecto_core::model::JoinPlan {
            server_id: svc_server.id,
            user_id: ecto_core::new_id(),
            identity_type: ecto_core::model::IdentityType::Local,
            member_id: ecto_core::new_id(),
            invite_code: None,
            require_invite: false,
            new_account: None,
            now: chrono::Utc::now(),
        },
    )
    .await
    .expect("join");
    let ecto_core::model::JoinOutcome::Joined { member, .. } = outcome else {
        panic!("joined")
    };
    let tokens = Arc::new(SqlRefreshTokenStore(db));
    for round in 0..10 {
        let hash = format!("{round:0>8}{}", ecto_core::new_id().simple());
        tokens
            .insert(RefreshTokenRecord {
                id: ecto_core::new_id(),
                member_id: member.id,
                jti: ecto_core::new_id().to_string(),
                token_hash: hash.clone(),
                expires_at: chrono::Utc::now() + chrono::Duration::days(1),
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("insert");
        let (a, b) = tokio::join!(tokens.take(&hash), tokens.take(&hash));
        let wins = [a.expect("take a"), b.expect("take b")]
            .iter()
            .filter(|r| r.is_some())
            .count();
        assert_eq!(
            wins, 1,
            "round {round}: exactly one concurrent take succeeds"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_keep_the_store_contract() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(&dir.path().join("contract.db").to_string_lossy(), 4).expect("open");
    check_stores(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_keep_the_store_contract() {
    let db = Db::open(&required_env("ECTO_TEST_DATABASE_URL"), 4).expect("open");
    check_stores(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_on_both_databases() {
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite = Db::open(&dir.path().join("m.db").to_string_lossy(), 2).expect("open");
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite"))
        .expect("migrations")
        .count();
    assert_eq!(sqlite.migrate().await.expect("first"), shipped);
    assert_eq!(
        sqlite.migrate().await.expect("second"),
        0,
        "nothing left to apply"
    );
    let pg = Db::open(&required_env("ECTO_TEST_DATABASE_URL"), 2).expect("open");
    pg.migrate().await.expect("first");
    assert_eq!(pg.migrate().await.expect("second"), 0);
}

/// PostgreSQL at size (scripts/pgsize): a database of its own, migrated as the server does it,
/// filled by fill.sql at `ECTO_SIZE_SCALE` (default 0.05: 500 communities, 500k messages),
/// then every hot query of queries.sql explained 20 times against the biggest community and
/// its member with the most activity: no big table is read sequentially, the indexes the
/// migrations added for a query are used, and a query finds rows where the data has them.
/// The times are printed, never asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_database_queries_keep_their_indexes() {
    let pg = size::Postgres::from_url(&required_env("ECTO_TEST_DATABASE_URL"));
    let name = format!("{}_size", pg.database);
    pg.create_database(&name);
    let db = Db::open(&pg.url_of(&name), 2).expect("open");
    assert!(db.migrate().await.expect("migrate") > 0, "migrated");

    let scale = size::scale();
    let filled_in = pg.fill(&name, scale);
    // fill.sql's sizes at scale 1, times the scale (give or take its skew and rounding).
    for (table, at_full_size) in [
        ("messages", 10_000_000.0),
        ("members", 1_000_000.0),
        ("audit_log", 1_000_000.0),
        ("activity_items", 2_000_000.0),
    ] {
        let rows = db
            .count_sql(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
            .expect("count") as f64;
        let expected = at_full_size * scale;
        assert!(
            rows > expected / 2.0 && rows < expected * 2.0,
            "{table}: {rows} rows after the fill, expected about {expected}"
        );
    }
    drop(db);

    // The community with the most messages (its general channel is its busiest: queries.sql
    // reads that one), and its member with the most activity items.
    let address = pg.value(
        &name,
        "SELECT s.address FROM servers s \
         JOIN (SELECT server_id, COUNT(*) AS n FROM messages GROUP BY server_id \
               ORDER BY n DESC LIMIT 1) m ON m.server_id = s.id",
    );
    let user = pg.value(
        &name,
        &format!(
            "SELECT a.user_id FROM activity_items a JOIN servers s ON s.id = a.server_id \
             WHERE s.address = '{address}' GROUP BY a.user_id ORDER BY COUNT(*) DESC, a.user_id LIMIT 1"
        ),
    );
    let vars = [("address", address.as_str()), ("user_id", user.as_str())];
    let rounds: Vec<_> = (0..size::ROUNDS)
        .map(|_| pg.explain_queries(&name, &vars))
        .collect();
    pg.drop_database(&name);

    println!(
        "{name}: scale {scale}, filled in {:.1} s; {address}, member {user}; {} runs of each query",
        filled_in.as_secs_f64(),
        size::ROUNDS
    );
    println!(
        "{:<56} {:>8} {:>8} {:>5}  reads",
        "query", "p50 ms", "p99 ms", "rows"
    );
    let mut wrong = Vec::new();
    for hot in size::HOT {
        let runs: Vec<&size::Explained> = rounds
            .iter()
            .map(|round| {
                round
                    .get(hot.tag)
                    .unwrap_or_else(|| panic!("queries.sql has no @{}", hot.tag))
            })
            .collect();
        if let Some(found) = runs
            .iter()
            .map(|run| run.check(hot))
            .find(|w| !w.is_empty())
        {
            wrong.extend(found);
        }
        let times: Vec<f64> = runs.iter().map(|run| run.execution_ms()).collect();
        println!(
            "{:<56} {:>8.3} {:>8.3} {:>5}  {}",
            runs[0].title,
            size::percentile(&times, 50.0),
            size::percentile(&times, 99.0),
            runs[0].rows(),
            runs[0].reads()
        );
    }
    assert!(wrong.is_empty(), "plans at size:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_disk_keeps_the_blob_contract() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = ecto_localfs::LocalFsBlobStore::new(dir.path().join("uploads")).expect("store");
    ecto_core::testing::blob_contract(&store).await;
    let leftovers = std::fs::read_dir(dir.path().join("uploads/.tmp"))
        .expect("tmp dir")
        .count();
    assert_eq!(leftovers, 0, "no temporary file is left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_keeps_the_blob_contract() {
    let (endpoint, bucket) = (
        required_env("ECTO_TEST_S3_ENDPOINT"),
        required_env("ECTO_TEST_S3_BUCKET"),
    );
    let (access_key, secret_key) = (
        required_env("ECTO_TEST_S3_ACCESS_KEY"),
        required_env("ECTO_TEST_S3_SECRET_KEY"),
    );
    let store = ecto_s3::S3BlobStore::new(ecto_s3::S3Settings {
        endpoint: &endpoint,
        bucket: &bucket,
        region: "eu-test-1",
        access_key: &access_key,
        secret_key: &secret_key,
    })
    .expect("store");
    ecto_core::testing::blob_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_presence_keeps_the_presence_contract() {
    let store = ecto_memory::MemoryPresenceStore::default();
    ecto_core::testing::presence_contract(&store).await;
    ecto_core::testing::presence_shared_contract(&store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_presence_keeps_the_presence_contract() {
    for conn in redises("p").await {
        let other = ecto_redis::RedisPresenceStore::new(conn.clone());
        let store = ecto_redis::RedisPresenceStore::new(conn);
        ecto_core::testing::presence_contract(&store).await;
        ecto_core::testing::presence_shared_contract(&store, &other).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_event_bus_keeps_the_event_bus_contract() {
    let bus = ecto_memory::MemoryEventBus::default();
    ecto_core::testing::event_bus_contract([&bus, &bus], &*sleep()).await;
    ecto_core::testing::event_log_contract(&ecto_memory::MemoryEventBus::new(64, 20), 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_session_buffer_keeps_the_session_buffer_contract() {
    ecto_core::testing::session_buffer_contract(&ecto_memory::MemorySessionBuffer::new(
        std::time::Duration::from_secs(60),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_session_buffer_keeps_the_session_buffer_contract() {
    for conn in redises("s").await {
        ecto_core::testing::session_buffer_contract(&ecto_redis::RedisSessionBuffer::new(
            conn,
            std::time::Duration::from_secs(60),
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_event_bus_keeps_the_event_bus_contract() {
    for conn in redises("e").await {
        let ttl = std::time::Duration::from_secs(60);
        // Two processes of one deployment.
        let first = ecto_redis::RedisEventBus::new(conn.clone(), 1000, ttl);
        let second = ecto_redis::RedisEventBus::new(conn.clone(), 1000, ttl);
        ecto_core::testing::event_bus_contract([&first, &second], &*sleep()).await;
        let log = ecto_redis::RedisEventBus::new(conn.clone(), 20, ttl);
        ecto_core::testing::event_log_contract(&log, 20).await;
        redis_log_keeps_only_the_resume_window(conn).await;
    }
}

/// A server's log on Redis holds no event older than the resume window: a busy community's
/// log is its last minutes, not its last `WS_RESUME_LOG_EVENTS` events held for good.
async fn redis_log_keeps_only_the_resume_window(conn: ecto_redis::RedisConn) {
    use ecto_core::ports::{Event, EventBus, Scope};
    let bus = ecto_redis::RedisEventBus::new(conn, 1000, std::time::Duration::from_secs(1));
    let server = ecto_core::new_id();
    let event = || Event::new(server, Scope::Server, "test.window", serde_json::json!({}));
    for _ in 0..3 {
        bus.publish(event()).await.expect("publish");
    }
    assert_eq!(
        bus.since(server, 0).await.expect("since").map(|e| e.len()),
        Some(3)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    bus.publish(event()).await.expect("publish");
    assert_eq!(
        bus.since(server, 0).await.expect("since"),
        None,
        "events older than the window are gone"
    );
    let kept = bus.since(server, 3).await.expect("since").expect("kept");
    assert_eq!(kept.iter().map(|e| e.position).collect::<Vec<_>>(), vec![4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_voice_states_keep_the_voice_state_contract() {
    ecto_core::testing::voice_state_contract(&ecto_memory::MemoryVoiceStateStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_voice_states_keep_the_voice_state_contract() {
    use ecto_core::ports::VoiceStateStore;
    for conn in redises("v").await {
        let store = ecto_redis::RedisVoiceStateStore(conn);
        ecto_core::testing::voice_state_contract(&store).await;
        // The servers with someone in voice (what the relay sweeps): the contract leaves one
        // state in one server.
        assert_eq!(store.servers().await.expect("servers").len(), 1);
        let server = store.servers().await.expect("servers")[0];
        for state in store.list(server).await.expect("list") {
            store
                .remove(server, state.user_id, None)
                .await
                .expect("remove");
        }
        assert!(
            store.servers().await.expect("servers").is_empty(),
            "an empty server is forgotten"
        );
    }
}
