//! Test support: [`TestApp`] spawns the real server in-process on 127.0.0.1:0 for a hosting
//! profile, with private state, and offers named helpers that speak the public protocol.
//!
//! The managed profile needs PostgreSQL, Redis and the S3 emulator that `make test` starts; it
//! reads where they are from `ECTO_TEST_*` variables and fails loudly when they are missing.

pub mod central;
pub mod relay;
pub mod ws;

pub use central::FakeCentral;

use ecto_server::{AppConfig, Running};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The two hosting profiles every API test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    SelfHosted,
    Managed,
}

/// The managed API key test servers use.
pub const MANAGED_KEY: &str = "test-managed-api-key";

/// A variable `make test` sets; a missing one is a loud failure, never a skip.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the managed-profile tests through `make test`, which starts PostgreSQL, Redis and the S3 emulator")
    })
}

/// A running server plus a client pointed at one of its community servers.
pub struct TestApp {
    pub profile: Profile,
    pub base: String,
    pub http: reqwest::Client,
    /// Managed: the `X-Server-Address` of this test's server.
    pub server_address: Option<String>,
    pub config: AppConfig,
    pub running_handle: actix_web::dev::ServerHandle,
    pub central: Option<FakeCentral>,
    /// Keeps the self-hosted data directory alive as long as the app.
    pub data_dir: Option<std::sync::Arc<tempfile::TempDir>>,
    pub db: ecto_sql::Db,
    pub services: ecto_core::Services,
    pub gateway: std::sync::Arc<ecto_gateway::Gateway>,
    /// The process's delivery of calls to ecto-central (stopped by [`TestApp::stop`], as the
    /// end of a real process would).
    pub central_sync: Option<tokio::task::AbortHandle>,
    /// Self-hosted: the loop publishing what operator commands left (aborted by `stop`).
    pub command_events: Option<tokio::task::AbortHandle>,
    /// Where `GET /metrics` is served, when the configuration sets `metrics_address`.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// What a successful `server.join` gave.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub refresh: String,
    pub user_id: String,
    pub member_id: String,
    pub body: Value,
}

/// A unique-enough suffix for names in a test.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[id.len() - 10..])
}

pub fn base_pairs(dir: &str) -> Vec<(String, String)> {
    vec![
        ("data_dir".into(), dir.into()),
        ("port".into(), "0".into()),
        ("bind_address".into(), "127.0.0.1".into()),
        ("http_workers".into(), "2".into()),
        // Large enough to split (see `Db::spread_over`): a pool of 3 per HTTP worker and the
        // dispatcher beside a shared pool of 3, as a deployment's default of 20 is split.
        ("db_pool_max".into(), "12".into()),
        ("log_level".into(), "warn".into()),
        ("ws_identify_timeout_ms".into(), "1500".into()),
        ("ws_heartbeat_timeout_ms".into(), "3000".into()),
        ("ws_presence_grace_ms".into(), "600".into()),
        ("mediasoup_min_port".into(), "0".into()),
        ("mediasoup_max_port".into(), "0".into()),
        ("voice_announced_address".into(), "127.0.0.1".into()),
        ("voice_bind_address".into(), "127.0.0.1".into()),
        // Tests register their owners themselves (setup.rs tests the token).
        ("require_setup_token".into(), "false".into()),
    ]
}

/// The configuration of the managed profile against the services `make test` started.
pub fn managed_config(dir: &str, central_url: &str) -> AppConfig {
    let prefix = format!("{}{}:", required_env("ECTO_TEST_REDIS_PREFIX"), unique("t"));
    let mut pairs = base_pairs(dir);
    pairs.extend([
        ("hosting_mode".into(), "managed".into()),
        (
            "database_url".into(),
            required_env("ECTO_TEST_DATABASE_URL"),
        ),
        ("redis_key_prefix".into(), prefix),
        ("s3_endpoint".into(), required_env("ECTO_TEST_S3_ENDPOINT")),
        ("s3_bucket".into(), required_env("ECTO_TEST_S3_BUCKET")),
        ("s3_region".into(), "eu-test-1".into()),
        (
            "s3_access_key".into(),
            required_env("ECTO_TEST_S3_ACCESS_KEY"),
        ),
        (
            "s3_secret_key".into(),
            required_env("ECTO_TEST_S3_SECRET_KEY"),
        ),
        ("managed_api_key".into(), MANAGED_KEY.into()),
        (
            "jwt_secret".into(),
            "managed-test-secret-that-is-long-enough-0123".into(),
        ),
        ("central_url".into(), central_url.into()),
    ]);
    if ON_REDIS_CLUSTER.try_with(|on| *on).unwrap_or(false) {
        pairs.extend([
            (
                "redis_url".into(),
                required_env("ECTO_TEST_REDIS_CLUSTER_URL"),
            ),
            ("redis_cluster".into(), "true".into()),
        ]);
    } else {
        pairs.push(("redis_url".into(), required_env("ECTO_TEST_REDIS_URL")));
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    AppConfig::from_pairs(&refs).expect("managed test configuration is valid")
}

/// The `CENTRAL_SYNC_KEY` of [`TestApp::spawn_synced`] servers.
pub const SYNC_KEY: &str = "central-sync-test-key-0123456789";
/// The `SERVER_ADDRESS` of self-hosted [`TestApp::spawn_synced`] servers.
pub const SYNCED_ADDRESS: &str = "community.test.ecto";

/// A new, empty PostgreSQL database on the test server (`ECTO_TEST_DATABASE_URL`'s), for a
/// deployment that must not share its tables with other tests; its URL. It is named after the
/// run's database, so the test services script drops it with that one.
pub async fn fresh_database() -> String {
    let url = required_env("ECTO_TEST_DATABASE_URL");
    let (server, run_db) = url
        .rsplit_once('/')
        .expect("a database URL ends with its name");
    let name = unique(&format!("{run_db}_"));
    let admin = ecto_sql::Db::open(&url, 1).expect("open the test database");
    admin
        .execute_sql(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a database");
    format!("{server}/{name}")
}

/// A new, empty bucket on the test S3 emulator, for a deployment that must not share its
/// uploads with other tests; the `s3_*` settings that point at it.
pub async fn fresh_bucket() -> Vec<(String, String)> {
    let name = unique("ecto-t-");
    let endpoint = required_env("ECTO_TEST_S3_ENDPOINT");
    let (key, secret) = (
        required_env("ECTO_TEST_S3_ACCESS_KEY"),
        required_env("ECTO_TEST_S3_SECRET_KEY"),
    );
    let region = s3::Region::Custom {
        region: "eu-test-1".into(),
        endpoint: endpoint.clone(),
    };
    let credentials = s3::creds::Credentials::new(Some(&key), Some(&secret), None, None, None)
        .expect("credentials");
    s3::Bucket::create_with_path_style(
        &name,
        region,
        credentials,
        s3::BucketConfiguration::default(),
    )
    .await
    .expect("create a bucket");
    vec![
        ("s3_endpoint".into(), endpoint),
        ("s3_bucket".into(), name),
        ("s3_region".into(), "eu-test-1".into()),
        ("s3_access_key".into(), key),
        ("s3_secret_key".into(), secret),
    ]
}

/// The `result.data` of a tRPC answer.
pub fn data(body: &Value) -> &Value {
    &body["result"]["data"]
}

impl TestApp {
    /// Spawns a fresh server for `profile` (self-hosted: a new SQLite file and data dir;
    /// managed: a new community server provisioned in the run's PostgreSQL database).
    pub async fn spawn(profile: Profile) -> TestApp {
        Self::spawn_with(profile, |_| {}).await
    }

    /// [`TestApp::spawn`] with the configuration changed by `edit` first.
    pub async fn spawn_with(profile: Profile, edit: impl FnOnce(&mut AppConfig)) -> TestApp {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let dir_str = dir.path().to_string_lossy().into_owned();
        match profile {
            Profile::SelfHosted => {
                let pairs = base_pairs(&dir_str);
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let mut config = AppConfig::from_pairs(&refs).expect("config");
                edit(&mut config);
                Self::start(profile, config, None, Some(dir)).await
            }
            Profile::Managed => {
                let central = FakeCentral::spawn().await;
                let mut config = managed_config(&dir_str, &central.url);
                edit(&mut config);
                let mut app = Self::start(profile, config, Some(central), Some(dir)).await;
                let address = format!("{}.test.ecto", unique("srv"));
                app.provision(&address, "Test Server").await;
                app.server_address = Some(address);
                app
            }
        }
    }

    /// A server that synchronises with `central` (a [`FakeCentral::spawn_keyed`] with
    /// [`SYNC_KEY`]): `CENTRAL_URL`, `CENTRAL_SYNC_KEY`, retries at most 1 s apart, and
    /// self-hosted an address ([`SYNCED_ADDRESS`]). Managed, in a database of its own: every
    /// instance of a deployment delivers any server's calls, and other tests' instances would
    /// deliver to their own fake.
    pub async fn spawn_synced(profile: Profile, central: &FakeCentral) -> TestApp {
        let url = central.url.clone();
        let database = match profile {
            Profile::SelfHosted => None,
            Profile::Managed => Some(fresh_database().await),
        };
        let mut app = Self::spawn_with(profile, move |c| {
            c.central_url = Some(url);
            c.central_sync_key = Some(SYNC_KEY.into());
            c.central_sync_retry_max_secs = 1;
            match database {
                Some(db) => c.database_url = Some(db),
                None => c.server_address = Some(SYNCED_ADDRESS.into()),
            }
        })
        .await;
        // The fake central spawn_with made for verifications is not the one calls go to.
        app.central = None;
        app
    }

    /// Stops this server ([`TestApp::stop`]) and starts another process on the same data:
    /// the same directory and database (and, managed, the same community server).
    pub async fn restart(self) -> TestApp {
        self.stop().await;
        let mut next = TestApp::start(
            self.profile,
            self.config.clone(),
            None,
            self.data_dir.clone(),
        )
        .await;
        next.server_address = self.server_address.clone();
        next
    }

    /// Starts a server with an explicit configuration.
    pub async fn start(
        profile: Profile,
        config: AppConfig,
        central: Option<FakeCentral>,
        data_dir: Option<std::sync::Arc<tempfile::TempDir>>,
    ) -> TestApp {
        let Running {
            addr,
            handle,
            server,
            services,
            gateway,
            central_sync,
            command_events,
            metrics_addr,
        } = ecto_server::start(&config).await.expect("server starts");
        tokio::spawn(server);
        let db = ecto_server::open_database(&config).expect("db handle");
        TestApp {
            profile,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().build().expect("client"),
            server_address: None,
            config,
            running_handle: handle,
            central,
            data_dir,
            db,
            services,
            gateway,
            central_sync,
            command_events,
            metrics_addr,
        }
    }

    /// Managed: another instance of the same deployment (same database, Redis and S3), serving
    /// the same community server; self-hosted: `None` (one process serves it).
    pub async fn other_instance(&self) -> Option<TestApp> {
        match self.profile {
            Profile::SelfHosted => None,
            Profile::Managed => {
                let mut b = TestApp::start(Profile::Managed, self.config.clone(), None, None).await;
                b.server_address = self.server_address.clone();
                Some(b)
            }
        }
    }

    /// Waits (up to `secs` seconds) until this process holds no attached `/ws` session: the
    /// sockets the test dropped were noticed and their sessions detached.
    pub async fn until_no_sessions(&self, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while self.gateway.session_count() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sessions still attached after {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server gracefully: sockets close with 4011, in-flight requests finish.
    pub async fn stop(&self) {
        for task in [&self.central_sync, &self.command_events]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        ecto_server::shutdown(&self.gateway, &self.running_handle).await;
    }

    /// `POST /internal/servers`; panics unless it succeeds.
    pub async fn provision(&self, address: &str, name: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/internal/servers", self.base))
            .bearer_auth(MANAGED_KEY)
            .json(&json!({ "address": address, "name": name }))
            .send()
            .await
            .expect("provision request");
        assert_eq!(resp.status(), StatusCode::CREATED, "provisioning {address}");
        resp.json().await.expect("json")
    }

    /// A request builder for `path` with this test's server address header.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(addr) = &self.server_address {
            rb = rb.header("X-Server-Address", addr);
        }
        rb
    }

    /// Sends and returns status, headers and the JSON body (`Null` when the body is empty or
    /// not JSON).
    pub async fn send(
        rb: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// A tRPC query (GET with `?input=`).
    pub async fn query(
        &self,
        proc_: &str,
        input: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut rb = self.request(Method::GET, &format!("/trpc/{proc_}"));
        if let Some(input) = input {
            rb = rb.query(&[("input", input.to_string())]);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let (s, _, b) = Self::send(rb).await;
        (s, b)
    }

    /// A tRPC mutation (POST with a JSON body).
    pub async fn mutate(
        &self,
        proc_: &str,
        input: Value,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .request(Method::POST, &format!("/trpc/{proc_}"))
            .json(&input);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let (s, _, b) = Self::send(rb).await;
        (s, b)
    }

    /// A mutation as `s` that must succeed; returns its data.
    pub async fn ok(&self, proc_: &str, input: Value, s: &Session) -> Value {
        let (status, body) = self.mutate(proc_, input.clone(), Some(&s.token)).await;
        assert_eq!(status, StatusCode::OK, "{proc_} {input}: {body}");
        body["result"]["data"].clone()
    }

    /// `channels.create {name, type}` as `s`, which must succeed; returns the channel.
    pub async fn channel(&self, s: &Session, name: &str, kind: &str) -> Value {
        self.ok("channels.create", json!({ "name": name, "type": kind }), s)
            .await
    }

    /// A query as `s` that must succeed; returns its data.
    pub async fn get(&self, proc_: &str, input: Value, s: &Session) -> Value {
        let (status, body) = self.query(proc_, Some(input.clone()), Some(&s.token)).await;
        assert_eq!(status, StatusCode::OK, "{proc_} {input}: {body}");
        body["result"]["data"].clone()
    }

    /// The status and ecto code of a call (`Call::Query` over GET, `Call::Mutation` over
    /// POST) made with `token`.
    pub async fn outcome(
        &self,
        call: Call,
        proc_: &str,
        input: Value,
        token: Option<&str>,
    ) -> (StatusCode, Option<i64>) {
        let (status, body) = match call {
            Call::Query => self.query(proc_, Some(input), token).await,
            Call::Mutation => self.mutate(proc_, input, token).await,
        };
        (status, ecto_code(&body))
    }

    /// A call as `s` that must be refused with `status` and ecto `code`.
    pub async fn refused(
        &self,
        s: &Session,
        call: Call,
        proc_: &str,
        input: Value,
        (status, code): (StatusCode, i64),
    ) {
        let got = self
            .outcome(call, proc_, input.clone(), Some(&s.token))
            .await;
        assert_eq!(got, (status, Some(code)), "{proc_} {input}");
    }

    /// Every row of a table of calls as `s` that must be refused: (how, procedure, input,
    /// status, ecto code).
    pub async fn refuses(&self, s: &Session, table: Vec<(Call, &str, Value, StatusCode, i64)>) {
        for (call, proc_, input, status, code) in table {
            self.refused(s, call, proc_, input, (status, code)).await;
        }
    }

    /// Registers a local account and joins; panics unless it succeeds.
    pub async fn register(&self, username: &str, password: &str) -> Session {
        let (status, body) = self
            .mutate(
                "server.join",
                json!({ "username": username, "password": password, "action": "register" }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "register {username}: {body}");
        Self::session(body)
    }

    /// Logs in with a local account; returns the raw answer.
    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.mutate(
            "server.join",
            json!({ "username": username, "password": password, "action": "login" }),
            None,
        )
        .await
    }

    /// Reads a session out of a successful `server.join` body.
    pub fn session(body: Value) -> Session {
        let data = &body["result"]["data"];
        Session {
            token: data["server_token"]
                .as_str()
                .expect("server_token")
                .to_owned(),
            refresh: data["server_refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
            user_id: data["member"]["user_id"]
                .as_str()
                .expect("user_id")
                .to_owned(),
            member_id: data["member"]["id"].as_str().expect("member id").to_owned(),
            body,
        }
    }

    /// The id of this test's community server.
    pub async fn server_id(&self) -> String {
        let (_, body) = self.query("server.info", None, None).await;
        body["result"]["data"]["server"]["id"]
            .as_str()
            .expect("server id")
            .to_owned()
    }

    /// Runs raw SQL against the app's database (to arrange state no procedure sets yet). The
    /// write publishes no event, so the process's memo of server data is dropped by hand.
    pub async fn sql(&self, sql: &str) {
        self.db.execute_sql(sql).await.expect("sql");
        self.services.memo.clear();
    }

    /// Runs a query answering one BIGINT column `n` (`SELECT COUNT(*) AS n FROM …`) against
    /// the app's database and returns `n`.
    pub async fn count(&self, sql: &str) -> i64 {
        self.db
            .count_sql(sql)
            .await
            .unwrap_or_else(|e| panic!("count query failed: {e}: {sql}"))
    }

    /// A role with `bits` (at `position`) given to the member of `session`; returns its id.
    pub async fn grant_role(&self, session: &Session, bits: u64, position: i32) -> String {
        let server_id = self.server_id().await;
        let role = uuid::Uuid::now_v7();
        self.sql(&format!(
            "INSERT INTO roles (id, server_id, name, color, permissions, position, is_default, created_at) \
             VALUES ('{role}', '{server_id}', 'role-{position}', NULL, {bits}, {position}, false, '{t}'); \
             INSERT INTO member_roles (member_id, role_id) VALUES ('{m}', '{role}');",
            m = session.member_id,
            t = sql_time(0)
        ))
        .await;
        role.to_string()
    }

    /// The @everyone role id (the first role of any member).
    pub fn everyone_role(session: &Session) -> String {
        session.body["result"]["data"]["member"]["roles"][0]
            .as_str()
            .expect("@everyone")
            .to_owned()
    }

    /// A feed of this app's process's event bus carrying this test's server.
    pub async fn events(&self) -> ecto_core::ports::EventStream {
        let feed = self.services.events.feed().await.expect("feed");
        let server = self.server_id().await.parse().expect("server id");
        self.services.events.join(server).await.expect("join");
        feed
    }

    /// A WebSocket client on this app's `/ws` (with this test's server address).
    pub async fn ws(&self) -> ws::WsClient {
        ws::WsClient::connect(&self.base, "/ws", self.server_address.as_deref()).await
    }

    /// A WebSocket client on this app's `/notify`.
    pub async fn notify(&self) -> ws::WsClient {
        ws::WsClient::connect(&self.base, "/notify", self.server_address.as_deref()).await
    }

    /// The self-hosted data directory.
    pub fn data_path(&self) -> PathBuf {
        self.config.data_dir.clone()
    }
}

/// How a procedure is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Query,
    Mutation,
}

/// `error.data.ecto_code` of an error envelope.
pub fn ecto_code(body: &Value) -> Option<i64> {
    body["error"]["data"]["ecto_code"].as_i64()
}

/// `error.data.code` of an error envelope.
pub fn trpc_code(body: &Value) -> &str {
    body["error"]["data"]["code"].as_str().unwrap_or("")
}

/// A timestamp literal both databases accept, `secs` from now.
pub fn sql_time(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .format("%Y-%m-%d %H:%M:%S%.f+00:00")
        .to_string()
}

tokio::task_local! {
    /// Set while a test runs against the Redis Cluster ([`on_redis_cluster`]).
    static ON_REDIS_CLUSTER: bool;
}

/// Runs `test` with every managed server it starts on the three-node Redis Cluster of
/// `make test` (`ECTO_TEST_REDIS_CLUSTER_URL`, `REDIS_CLUSTER=true`) instead of one Redis.
pub async fn on_redis_cluster<F: std::future::Future>(test: F) -> F::Output {
    ON_REDIS_CLUSTER.scope(true, test).await
}

/// Generates a `#[tokio::test]` for each named `async fn(TestApp)` with a managed server on
/// the Redis Cluster ([`on_redis_cluster`]), in a module `redis_cluster`.
#[macro_export]
macro_rules! on_redis_cluster {
    ($($name:ident),* $(,)?) => {
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::on_redis_cluster(async {
                        super::$name($crate::TestApp::spawn($crate::Profile::Managed).await).await;
                    })
                    .await;
                }
            )*
        }
    };
}

/// Generates one `#[tokio::test]` per profile for each named `async fn(TestApp)`.
#[macro_export]
macro_rules! both_profiles {
    ($($name:ident),* $(,)?) => {
        mod self_hosted {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestApp::spawn($crate::Profile::SelfHosted).await).await;
                }
            )*
        }
        mod managed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestApp::spawn($crate::Profile::Managed).await).await;
                }
            )*
        }
    };
}

/// Generates one `#[tokio::test]` per profile for each named `async fn(Profile)` (for tests that
/// start their servers with their own configuration).
#[macro_export]
macro_rules! per_profile {
    ($($name:ident),* $(,)?) => {
        mod self_hosted {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Profile::SelfHosted).await;
                }
            )*
        }
        mod managed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Profile::Managed).await;
                }
            )*
        }
    };
}

/// The next event on `stream` named `name`, skipping others; panics after 5 s.
pub async fn next_event(
    stream: &mut ecto_core::ports::EventStream,
    name: &str,
) -> ecto_core::ports::Event {
    use futures_util::StreamExt;
    let deadline = std::time::Duration::from_secs(5);
    tokio::time::timeout(deadline, async {
        loop {
            let event = stream.next().await.expect("event stream ended");
            if event.name == name {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} event within 5 s"))
}
