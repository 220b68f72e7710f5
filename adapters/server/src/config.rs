//! Configuration: `config/default.toml` (embedded), an optional file named by `ECTO_CONFIG`,
//! then environment variables, parsed and checked into [`AppConfig`].

use ecto_core::ports::{Limit, RateLimits};
use ecto_core::HostingMode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// Every setting, already parsed and checked.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub hosting_mode: HostingMode,
    pub port: u16,
    pub bind_address: String,
    pub server_address: Option<String>,
    pub client_url: String,
    pub http_workers: usize,
    pub max_json_body_bytes: usize,
    /// Calls one tRPC batch may carry.
    pub max_batch_calls: usize,
    /// Bytes of output one tRPC response may carry.
    pub max_response_bytes: usize,
    /// A request body that sends nothing for this long is cut off (408).
    pub request_body_idle_ms: u64,
    /// After the first `request_body_idle_ms`, a request body must average this many bytes a
    /// second (408 otherwise); 0 turns the rate off.
    pub request_body_min_rate: u64,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub db_pool_max: usize,
    pub upload_dir: PathBuf,
    pub storage_quota_bytes: u64,
    pub max_upload_size_bytes: u64,
    pub jwt_secret: Option<String>,
    pub allow_local_accounts: bool,
    pub central_url: Option<String>,
    pub central_sync_key: Option<String>,
    /// `CENTRAL_SYNC_RETRY_MAX_SECS` (default 300): the longest pause between attempts of a
    /// call to ecto-central that failed.
    pub central_sync_retry_max_secs: u64,
    /// `REQUIRE_SETUP_TOKEN` (default true): self-hosted, the first owner's registration must
    /// give the setup token kept in the data directory.
    pub require_setup_token: bool,
    pub redis_url: Option<String>,
    pub redis_key_prefix: String,
    /// `REDIS_CLUSTER`: `REDIS_URL` names nodes of a Redis Cluster (comma-separated).
    pub redis_cluster: bool,
    pub s3: Option<S3Config>,
    pub managed_api_key: Option<String>,
    /// The `rate_limit_*` settings and `trust_forwarded_for`.
    pub rate_limits: RateLimits,
    /// `VOICE_ENABLED` (default true): false starts no SFU and binds no voice port, and every
    /// `voice.join` answers `voice.error` 8002.
    pub voice_enabled: bool,
    pub mediasoup_min_port: u16,
    pub mediasoup_max_port: u16,
    /// `VOICE_ANNOUNCED_ADDRESS`: the IP or host name browsers send media to (unset: the
    /// server address when it resolves, else this machine's first non-loopback IPv4).
    pub voice_announced_address: Option<String>,
    /// `VOICE_BIND_ADDRESS`: the address the voice UDP port binds (default `0.0.0.0`, apart
    /// from `bind_address`, so a server behind a local reverse proxy still takes media).
    pub voice_bind_address: String,
    /// `VOICE_MAX_BITRATE_KBPS`: the media one participant may send, in kbit/s (0: no cap).
    pub voice_max_bitrate_kbps: u32,
    /// `VOICE_MAX_SERVER_BITRATE_KBPS`: the media all participants of one community server
    /// may send together, in kbit/s (0: no cap).
    pub voice_max_server_bitrate_kbps: u32,
    pub log_json: bool,
    pub log_level: String,
    /// `SQLITE_SYNCHRONOUS=full`: every SQLite commit is synced to disk before it is answered
    /// (survives power loss); `normal` (the default) survives a crash of the process.
    pub sqlite_synchronous_full: bool,
    /// `METRICS_ADDRESS`: where `GET /metrics` listens, apart from the public port (unset:
    /// no metrics endpoint).
    pub metrics_address: Option<String>,
    /// `METRICS_TOKEN`: the bearer token `/metrics` requires when set.
    pub metrics_token: Option<String>,
    pub ws_identify_timeout_ms: u64,
    pub ws_heartbeat_timeout_ms: u64,
    pub ws_resume_log_events: usize,
    pub ws_resume_buffer_seconds: u64,
    pub ws_outbound_queue: usize,
    /// Milliseconds a worker waits after writing dispatched frames before writing the next
    /// ones, so that frames arriving meanwhile share one write (0: write at once).
    pub ws_write_delay_ms: u64,
    pub ws_presence_grace_ms: u64,
    pub ws_events_per_10s: u32,
    /// Open `/ws` sockets one user may hold in one server (0: no cap).
    pub ws_sockets_per_user: u32,
    /// Open `/ws` and `/notify` sockets one client address may hold on this process (0: no
    /// cap).
    pub ws_sockets_per_address: u32,
    /// How long (ms) a process keeps following a server's events after its last socket of
    /// that server closed.
    pub ws_stream_linger_ms: u64,
    /// `UNFURL_ALLOW_HOSTS`: hosts link previews may fetch from although their address is not
    /// public. For tests only; empty by default.
    pub unfurl_allow_hosts: Vec<String>,
}

/// S3 settings (all five are required together).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Every missing or invalid setting, found at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// The raw values, all as text, before checking. (Serialized only to list the setting names.)
#[derive(Debug, Default, Deserialize, Serialize)]
struct Raw {
    hosting_mode: Option<String>,
    port: Option<String>,
    bind_address: Option<String>,
    server_address: Option<String>,
    client_url: Option<String>,
    http_workers: Option<String>,
    max_json_body_bytes: Option<String>,
    max_batch_calls: Option<String>,
    max_response_bytes: Option<String>,
    request_body_idle_ms: Option<String>,
    request_body_min_rate: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    db_pool_max: Option<String>,
    upload_dir: Option<String>,
    storage_quota_bytes: Option<String>,
    max_upload_size_bytes: Option<String>,
    jwt_secret: Option<String>,
    allow_local_accounts: Option<String>,
    central_url: Option<String>,
    central_sync_key: Option<String>,
    central_sync_retry_max_secs: Option<String>,
    require_setup_token: Option<String>,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
    redis_cluster: Option<String>,
    s3_endpoint: Option<String>,
    s3_bucket: Option<String>,
    s3_region: Option<String>,
    s3_access_key: Option<String>,
    s3_secret_key: Option<String>,
    managed_api_key: Option<String>,
    rate_limit_user_per_10s: Option<String>,
    rate_limit_ip_per_10s: Option<String>,
    rate_limit_join_per_minute: Option<String>,
    rate_limit_webhook_per_10s: Option<String>,
    rate_limit_webhook_failures_per_10s: Option<String>,
    login_failures_per_address_per_minute: Option<String>,
    login_failures_per_account_per_hour: Option<String>,
    trust_forwarded_for: Option<String>,
    forwarded_for_hops: Option<String>,
    unfurl_allow_hosts: Option<String>,
    voice_enabled: Option<String>,
    mediasoup_min_port: Option<String>,
    mediasoup_max_port: Option<String>,
    voice_announced_address: Option<String>,
    voice_bind_address: Option<String>,
    voice_max_bitrate_kbps: Option<String>,
    voice_max_server_bitrate_kbps: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    sqlite_synchronous: Option<String>,
    metrics_address: Option<String>,
    metrics_token: Option<String>,
    ws_identify_timeout_ms: Option<String>,
    ws_heartbeat_timeout_ms: Option<String>,
    ws_resume_log_events: Option<String>,
    ws_resume_buffer_seconds: Option<String>,
    ws_outbound_queue: Option<String>,
    ws_write_delay_ms: Option<String>,
    ws_presence_grace_ms: Option<String>,
    ws_events_per_10s: Option<String>,
    ws_sockets_per_user: Option<String>,
    ws_sockets_per_address: Option<String>,
    ws_stream_linger_ms: Option<String>,
}

/// The name of every setting (the fields of [`Raw`]).
fn known_keys() -> Vec<String> {
    match serde_json::to_value(Raw::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// One problem per key of the file at `path` that is no setting (a misspelt key would
/// otherwise be ignored without a word).
fn unknown_keys(path: &Path) -> Result<Vec<String>, ConfigError> {
    let keys = config::Config::builder()
        .add_source(config::File::with_name(&path.to_string_lossy()))
        .build()
        .and_then(|c| c.try_deserialize::<std::collections::HashMap<String, config::Value>>())
        .map_err(|e| ConfigError(vec![e.to_string()]))?;
    let known = known_keys();
    let mut unknown: Vec<String> = keys
        .keys()
        .filter(|k| !known.contains(&k.to_lowercase()))
        .map(|k| {
            format!(
                "{}: '{k}' is not a setting (every setting is listed in config/default.toml)",
                path.display()
            )
        })
        .collect();
    unknown.sort();
    Ok(unknown)
}

/// A value that is present and not blank.
fn set(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl AppConfig {
    /// Loads defaults, then `ECTO_CONFIG` (if set), then the environment. A key of the
    /// `ECTO_CONFIG` file that is no setting is an error, reported with every other problem.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("ECTO_CONFIG").ok().map(PathBuf::from);
        Self::load_layers(file.as_deref(), true)
    }

    /// Defaults, then the file at `path`, without the environment (tests and tools).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::load_layers(Some(path), false)
    }

    fn load_layers(file: Option<&Path>, env: bool) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        let mut unknown = Vec::new();
        if let Some(path) = file {
            unknown = unknown_keys(path)?;
            builder = builder.add_source(config::File::with_name(&path.to_string_lossy()));
        }
        if env {
            builder = builder.add_source(config::Environment::default());
        }
        let raw: Raw = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(vec![e.to_string()]))?;
        match Self::check(raw) {
            Ok(config) if unknown.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError(unknown)),
            Err(ConfigError(mut problems)) => {
                unknown.append(&mut problems);
                Err(ConfigError(unknown))
            }
        }
    }

    /// Defaults only, with a few overrides given as `(key, value)` (used by tests and tools).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        for (k, v) in pairs {
            builder = builder
                .set_override(*k, *v)
                .map_err(|e| ConfigError(vec![e.to_string()]))?;
        }
        let raw: Raw = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(vec![e.to_string()]))?;
        Self::check(raw)
    }

    /// Checks every setting, collecting each problem (see [`Checker`] for why the order of
    /// the steps matters).
    fn check(raw: Raw) -> Result<Self, ConfigError> {
        let mut c = Checker::default();
        let hosting_mode = c.hosting_mode(&raw);
        let data_dir = PathBuf::from(set(&raw.data_dir).unwrap_or_else(|| "./data".into()));
        let database_url = set(&raw.database_url);
        let s3_values = s3_values(&raw);
        let s3 = c.s3(&s3_values, hosting_mode);
        let jwt_secret = set(&raw.jwt_secret);
        let redis_url = set(&raw.redis_url);
        let managed_api_key = set(&raw.managed_api_key);
        if hosting_mode == HostingMode::Managed {
            c.managed_services(
                database_url.as_deref(),
                redis_url.is_some(),
                &s3_values,
                managed_api_key.is_some(),
                jwt_secret.as_deref(),
            );
        }
        c.self_hosted_secret(hosting_mode, jwt_secret.as_deref());
        c.redis_url(redis_url.as_deref());
        let redis_cluster = c.flag_or("REDIS_CLUSTER", &raw.redis_cluster, false);
        let central_url = set(&raw.central_url);
        c.central_url(central_url.as_deref());
        let central_sync_retry_max_secs = c.number(
            "CENTRAL_SYNC_RETRY_MAX_SECS",
            &raw.central_sync_retry_max_secs,
            300u64,
        );
        let log_json = c.log_format(&raw);
        let sqlite_synchronous_full = c.sqlite_synchronous(&raw);
        let metrics_address = c.metrics_address(&raw);
        let port = c.port("PORT", &raw.port, 3000);
        let voice_enabled = c.flag_or("VOICE_ENABLED", &raw.voice_enabled, true);
        let require_setup_token = c.flag_or("REQUIRE_SETUP_TOKEN", &raw.require_setup_token, true);
        let (mediasoup_min_port, mediasoup_max_port) = c.mediasoup_ports(&raw);
        let voice_max_bitrate_kbps = c.number(
            "VOICE_MAX_BITRATE_KBPS",
            &raw.voice_max_bitrate_kbps,
            10_000u32,
        );
        let voice_max_server_bitrate_kbps = c.number(
            "VOICE_MAX_SERVER_BITRATE_KBPS",
            &raw.voice_max_server_bitrate_kbps,
            100_000u32,
        );
        let rate_limits = c.rate_limits(&raw);
        let http = c.http_settings(&raw);
        let storage = c.storage_settings(&raw);
        let ws = c.ws_settings(&raw);
        let config = AppConfig {
            hosting_mode,
            port,
            bind_address: set(&raw.bind_address).unwrap_or_else(|| "0.0.0.0".into()),
            server_address: set(&raw.server_address),
            client_url: set(&raw.client_url).unwrap_or_else(|| "https://app.ecto.chat".into()),
            http_workers: http.workers,
            max_json_body_bytes: http.max_json_body_bytes,
            max_batch_calls: http.max_batch_calls,
            max_response_bytes: http.max_response_bytes,
            request_body_idle_ms: http.request_body_idle_ms,
            request_body_min_rate: http.request_body_min_rate,
            upload_dir: set(&raw.upload_dir)
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("uploads")),
            data_dir,
            database_url,
            db_pool_max: storage.db_pool_max,
            storage_quota_bytes: storage.storage_quota_bytes,
            max_upload_size_bytes: storage.max_upload_size_bytes,
            jwt_secret,
            // Reference rule: anything but "false" is true.
            allow_local_accounts: set(&raw.allow_local_accounts)
                .is_none_or(|v| !v.eq_ignore_ascii_case("false")),
            central_url,
            central_sync_key: set(&raw.central_sync_key),
            central_sync_retry_max_secs,
            require_setup_token,
            redis_url,
            redis_cluster,
            redis_key_prefix: raw
                .redis_key_prefix
                .clone()
                .unwrap_or_else(|| "ecto:".into()),
            s3,
            managed_api_key,
            rate_limits,
            voice_enabled,
            mediasoup_min_port,
            mediasoup_max_port,
            voice_announced_address: set(&raw.voice_announced_address),
            voice_bind_address: set(&raw.voice_bind_address).unwrap_or_else(|| "0.0.0.0".into()),
            voice_max_bitrate_kbps,
            voice_max_server_bitrate_kbps,
            log_json,
            sqlite_synchronous_full,
            log_level: set(&raw.log_level).unwrap_or_else(|| "info".into()),
            metrics_address,
            metrics_token: set(&raw.metrics_token),
            ws_identify_timeout_ms: ws.identify_timeout_ms,
            ws_heartbeat_timeout_ms: ws.heartbeat_timeout_ms,
            ws_resume_log_events: ws.resume_log_events,
            ws_resume_buffer_seconds: ws.resume_buffer_seconds,
            ws_outbound_queue: ws.outbound_queue,
            ws_write_delay_ms: ws.write_delay_ms,
            ws_presence_grace_ms: ws.presence_grace_ms,
            ws_events_per_10s: ws.events_per_10s,
            ws_sockets_per_user: ws.sockets_per_user,
            ws_sockets_per_address: ws.sockets_per_address,
            ws_stream_linger_ms: ws.stream_linger_ms,
            unfurl_allow_hosts: set(&raw.unfurl_allow_hosts)
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        c.finish(config)
    }
}

/// The five S3 settings, named.
type S3Values = [(&'static str, Option<String>); 5];

fn s3_values(raw: &Raw) -> S3Values {
    [
        ("S3_ENDPOINT", set(&raw.s3_endpoint)),
        ("S3_BUCKET", set(&raw.s3_bucket)),
        ("S3_REGION", set(&raw.s3_region)),
        ("S3_ACCESS_KEY", set(&raw.s3_access_key)),
        ("S3_SECRET_KEY", set(&raw.s3_secret_key)),
    ]
}

/// The HTTP server's limits.
struct HttpSettings {
    workers: usize,
    max_json_body_bytes: usize,
    max_batch_calls: usize,
    max_response_bytes: usize,
    request_body_idle_ms: u64,
    request_body_min_rate: u64,
}

/// The database pool and the upload limits.
struct StorageSettings {
    db_pool_max: usize,
    storage_quota_bytes: u64,
    max_upload_size_bytes: u64,
}

/// The gateway's `ws_*` settings.
struct WsSettings {
    identify_timeout_ms: u64,
    heartbeat_timeout_ms: u64,
    resume_log_events: usize,
    resume_buffer_seconds: u64,
    outbound_queue: usize,
    write_delay_ms: u64,
    presence_grace_ms: u64,
    events_per_10s: u32,
    sockets_per_user: u32,
    sockets_per_address: u32,
    stream_linger_ms: u64,
}

/// Reads settings while collecting every problem. The messages come out in the order the
/// steps of [`AppConfig::check`] run, and that order is what an operator sees: keep it.
#[derive(Default)]
struct Checker {
    errors: Vec<String>,
}

impl Checker {
    /// `v` as a number, `default` when unset; a value that is not one is an error.
    fn number<T: std::str::FromStr>(&mut self, name: &str, v: &Option<String>, default: T) -> T {
        match set(v) {
            None => default,
            Some(s) => s.parse().unwrap_or_else(|_| {
                self.errors
                    .push(format!("{name}: '{s}' is not a valid number"));
                default
            }),
        }
    }

    /// `v` as a port number, `default` when unset; a number outside 0 to 65535 says so.
    fn port(&mut self, name: &str, v: &Option<String>, default: u16) -> u16 {
        match set(v) {
            Some(s) if s.parse::<u16>().is_err() && s.parse::<i64>().is_ok() => {
                self.errors.push(format!(
                    "{name}: {s} is out of range (a port is 0 to 65535)"
                ));
                default
            }
            _ => self.number(name, v, default),
        }
    }

    /// `v` as `true` or `false` (any case), `false` when unset.
    fn flag(&mut self, name: &str, v: &Option<String>) -> bool {
        self.flag_or(name, v, false)
    }

    /// `v` as `true` or `false` (any case), `default` when unset.
    fn flag_or(&mut self, name: &str, v: &Option<String>, default: bool) -> bool {
        match set(v) {
            None => default,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                self.errors
                    .push(format!("{name}: '{other}' is neither 'true' nor 'false'"));
                default
            }
        }
    }

    fn hosting_mode(&mut self, raw: &Raw) -> HostingMode {
        match set(&raw.hosting_mode).as_deref() {
            None | Some("self-hosted") | Some("selfhosted") => HostingMode::SelfHosted,
            Some("managed") => HostingMode::Managed,
            Some(other) => {
                self.errors.push(format!(
                    "HOSTING_MODE: '{other}' is neither 'self-hosted' nor 'managed'"
                ));
                HostingMode::SelfHosted
            }
        }
    }

    /// The S3 settings when all five are given; self-hosted, some without the others name
    /// each one missing (managed mode names them in [`Checker::managed_services`]).
    fn s3(&mut self, values: &S3Values, hosting_mode: HostingMode) -> Option<S3Config> {
        let given = values.iter().filter(|(_, v)| v.is_some()).count();
        let s3 = match values.clone() {
            [(_, Some(endpoint)), (_, Some(bucket)), (_, Some(region)), (_, Some(access_key)), (_, Some(secret_key))] => {
                Some(S3Config {
                    endpoint,
                    bucket,
                    region,
                    access_key,
                    secret_key,
                })
            }
            _ => None,
        };
        if given > 0 && s3.is_none() && hosting_mode == HostingMode::SelfHosted {
            for (name, v) in values {
                if v.is_none() {
                    self.errors
                        .push(format!("{name} is required when any S3 setting is given"));
                }
            }
        }
        s3
    }

    /// Managed mode needs PostgreSQL, Redis, S3, the provisioning key and a long secret.
    fn managed_services(
        &mut self,
        database_url: Option<&str>,
        redis: bool,
        s3_values: &S3Values,
        managed_api_key: bool,
        jwt_secret: Option<&str>,
    ) {
        let errors = &mut self.errors;
        match database_url {
            None => {
                errors.push("DATABASE_URL is required in managed mode (a postgres:// URL)".into())
            }
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                errors.push("DATABASE_URL must be a postgres:// URL in managed mode".into())
            }
            Some(_) => {}
        }
        if !redis {
            errors.push("REDIS_URL is required in managed mode".into());
        }
        for (name, v) in s3_values {
            if v.is_none() {
                errors.push(format!("{name} is required in managed mode"));
            }
        }
        if !managed_api_key {
            errors.push("MANAGED_API_KEY is required in managed mode".into());
        }
        match jwt_secret {
            None => errors
                .push("JWT_SECRET is required in managed mode (at least 32 characters)".into()),
            Some(s) if s.chars().count() < 32 => {
                errors.push("JWT_SECRET must be at least 32 characters in managed mode".into())
            }
            Some(_) => {}
        }
    }

    /// Self-hosted, a given secret must be long enough too (unset, one is generated).
    fn self_hosted_secret(&mut self, hosting_mode: HostingMode, jwt_secret: Option<&str>) {
        if hosting_mode == HostingMode::SelfHosted
            && jwt_secret.is_some_and(|s| s.chars().count() < 32)
        {
            self.errors.push(
                "JWT_SECRET must be at least 32 characters (or unset, to generate one)".into(),
            );
        }
    }

    fn redis_url(&mut self, url: Option<&str>) {
        // A cluster's nodes are a comma-separated list of URLs.
        for url in url.into_iter().flat_map(|u| u.split(',')).map(str::trim) {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                self.errors
                    .push(format!("REDIS_URL: '{url}' is not a redis:// URL"));
            }
        }
    }

    fn central_url(&mut self, url: Option<&str>) {
        if let Some(url) = url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.errors
                    .push(format!("CENTRAL_URL: '{url}' is not an http(s) URL"));
            }
        }
    }

    /// `METRICS_ADDRESS` when set: an `ip:port` (port 0 picks a free one).
    fn metrics_address(&mut self, raw: &Raw) -> Option<String> {
        let address = set(&raw.metrics_address)?;
        if address.parse::<std::net::SocketAddr>().is_err() {
            self.errors.push(format!(
                "METRICS_ADDRESS: '{address}' is not an ip:port address (e.g. 127.0.0.1:9464)"
            ));
            return None;
        }
        Some(address)
    }

    /// Whether logs are JSON (`LOG_FORMAT=json`) rather than text.
    fn log_format(&mut self, raw: &Raw) -> bool {
        match set(&raw.log_format).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                self.errors.push(format!(
                    "LOG_FORMAT: '{other}' is neither 'text' nor 'json'"
                ));
                false
            }
        }
    }

    /// Whether SQLite syncs every commit (`SQLITE_SYNCHRONOUS=full`) rather than at
    /// checkpoints (`normal`).
    fn sqlite_synchronous(&mut self, raw: &Raw) -> bool {
        match set(&raw.sqlite_synchronous).as_deref() {
            None | Some("normal") => false,
            Some("full") => true,
            Some(other) => {
                self.errors.push(format!(
                    "SQLITE_SYNCHRONOUS: '{other}' is neither 'normal' nor 'full'"
                ));
                false
            }
        }
    }

    fn mediasoup_ports(&mut self, raw: &Raw) -> (u16, u16) {
        let min = self.port("MEDIASOUP_MIN_PORT", &raw.mediasoup_min_port, 40000);
        let max = self.port("MEDIASOUP_MAX_PORT", &raw.mediasoup_max_port, 40100);
        if min > max {
            self.errors
                .push("MEDIASOUP_MIN_PORT must not be above MEDIASOUP_MAX_PORT".into());
        }
        (min, max)
    }

    /// The `rate_limit_*` and `login_failures_*` limits, `trust_forwarded_for` and its hops.
    fn rate_limits(&mut self, raw: &Raw) -> RateLimits {
        let trust_forwarded_for = self.flag("TRUST_FORWARDED_FOR", &raw.trust_forwarded_for);
        // Each limit is a number of calls per window; 0 turns it off.
        let mut per = |name: &str, v: &Option<String>, default: u32, secs: u64| {
            Limit::new(self.number(name, v, default), Duration::from_secs(secs))
        };
        let user = per(
            "RATE_LIMIT_USER_PER_10S",
            &raw.rate_limit_user_per_10s,
            300,
            10,
        );
        let ip = per("RATE_LIMIT_IP_PER_10S", &raw.rate_limit_ip_per_10s, 60, 10);
        let join = per(
            "RATE_LIMIT_JOIN_PER_MINUTE",
            &raw.rate_limit_join_per_minute,
            30,
            60,
        );
        let webhook = per(
            "RATE_LIMIT_WEBHOOK_PER_10S",
            &raw.rate_limit_webhook_per_10s,
            30,
            10,
        );
        let webhook_failures = per(
            "RATE_LIMIT_WEBHOOK_FAILURES_PER_10S",
            &raw.rate_limit_webhook_failures_per_10s,
            10,
            10,
        );
        let login_address = per(
            "LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE",
            &raw.login_failures_per_address_per_minute,
            5,
            60,
        );
        let login_account = per(
            "LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR",
            &raw.login_failures_per_account_per_hour,
            30,
            3600,
        );
        let hops = self.number("FORWARDED_FOR_HOPS", &raw.forwarded_for_hops, 1u8);
        if hops == 0 {
            self.errors
                .push("FORWARDED_FOR_HOPS must be at least 1".into());
        }
        RateLimits {
            user,
            ip,
            join,
            webhook,
            webhook_failures,
            login_address,
            login_account,
            trust_forwarded_for,
            forwarded_for_hops: hops.max(1),
        }
    }

    fn http_settings(&mut self, raw: &Raw) -> HttpSettings {
        HttpSettings {
            workers: self.number("HTTP_WORKERS", &raw.http_workers, 0usize),
            max_json_body_bytes: self.number(
                "MAX_JSON_BODY_BYTES",
                &raw.max_json_body_bytes,
                1_000_000usize,
            ),
            max_batch_calls: self
                .number("MAX_BATCH_CALLS", &raw.max_batch_calls, 50usize)
                .max(1),
            max_response_bytes: self.number(
                "MAX_RESPONSE_BYTES",
                &raw.max_response_bytes,
                8_388_608usize,
            ),
            request_body_idle_ms: self
                .number("REQUEST_BODY_IDLE_MS", &raw.request_body_idle_ms, 10_000u64)
                .max(100),
            request_body_min_rate: self.number(
                "REQUEST_BODY_MIN_RATE",
                &raw.request_body_min_rate,
                1_024u64,
            ),
        }
    }

    fn storage_settings(&mut self, raw: &Raw) -> StorageSettings {
        StorageSettings {
            db_pool_max: self.number("DB_POOL_MAX", &raw.db_pool_max, 20usize),
            storage_quota_bytes: self.number("STORAGE_QUOTA_BYTES", &raw.storage_quota_bytes, 0u64),
            max_upload_size_bytes: self.number(
                "MAX_UPLOAD_SIZE_BYTES",
                &raw.max_upload_size_bytes,
                0u64,
            ),
        }
    }

    fn ws_settings(&mut self, raw: &Raw) -> WsSettings {
        WsSettings {
            identify_timeout_ms: self.number(
                "WS_IDENTIFY_TIMEOUT_MS",
                &raw.ws_identify_timeout_ms,
                10_000u64,
            ),
            heartbeat_timeout_ms: self.number(
                "WS_HEARTBEAT_TIMEOUT_MS",
                &raw.ws_heartbeat_timeout_ms,
                90_000u64,
            ),
            resume_log_events: self.number(
                "WS_RESUME_LOG_EVENTS",
                &raw.ws_resume_log_events,
                50_000usize,
            ),
            resume_buffer_seconds: self.number(
                "WS_RESUME_BUFFER_SECONDS",
                &raw.ws_resume_buffer_seconds,
                300u64,
            ),
            outbound_queue: self.number("WS_OUTBOUND_QUEUE", &raw.ws_outbound_queue, 1024usize),
            write_delay_ms: {
                let ms = self.number("WS_WRITE_DELAY_MS", &raw.ws_write_delay_ms, 20u64);
                // Every event of a busy stream waits up to this long: a second is already
                // far past what a chat client tolerates.
                if ms > 1000 {
                    self.errors
                        .push("WS_WRITE_DELAY_MS must be at most 1000".into());
                }
                ms
            },
            presence_grace_ms: self.number(
                "WS_PRESENCE_GRACE_MS",
                &raw.ws_presence_grace_ms,
                15_000u64,
            ),
            events_per_10s: self.number("WS_EVENTS_PER_10S", &raw.ws_events_per_10s, 120u32),
            sockets_per_user: self.number("WS_SOCKETS_PER_USER", &raw.ws_sockets_per_user, 32u32),
            sockets_per_address: self.number(
                "WS_SOCKETS_PER_ADDRESS",
                &raw.ws_sockets_per_address,
                512u32,
            ),
            stream_linger_ms: self.number(
                "WS_STREAM_LINGER_MS",
                &raw.ws_stream_linger_ms,
                30_000u64,
            ),
        }
    }

    /// The configuration, or every problem found.
    fn finish(self, config: AppConfig) -> Result<AppConfig, ConfigError> {
        if self.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_working_self_hosted_profile() {
        let c = AppConfig::from_pairs(&[]).expect("defaults are valid");
        assert_eq!(c.hosting_mode, HostingMode::SelfHosted);
        assert_eq!(c.port, 3000);
        assert!(c.database_url.is_none());
        assert_eq!(c.upload_dir, PathBuf::from("./data/uploads"));
        assert_eq!(c.rate_limits.join, Limit::new(30, Duration::from_secs(60)));
        assert!(!c.rate_limits.trust_forwarded_for);
        assert!(c.voice_enabled);
        let off = AppConfig::from_pairs(&[("voice_enabled", "FALSE")]).expect("valid");
        assert!(!off.voice_enabled);
    }

    #[test]
    fn rate_limits_are_numbers_and_zero_turns_one_off() {
        let c = AppConfig::from_pairs(&[
            ("rate_limit_user_per_10s", "0"),
            ("rate_limit_webhook_per_10s", "5"),
            ("trust_forwarded_for", "TRUE"),
        ])
        .expect("valid");
        assert!(c.rate_limits.user.is_off());
        assert_eq!(
            c.rate_limits.webhook,
            Limit::new(5, Duration::from_secs(10))
        );
        assert!(c.rate_limits.trust_forwarded_for);
        let err = AppConfig::from_pairs(&[
            ("rate_limit_ip_per_10s", "-1"),
            ("trust_forwarded_for", "maybe"),
        ])
        .expect_err("must refuse");
        let text = err.to_string();
        assert!(
            text.contains("RATE_LIMIT_IP_PER_10S") && text.contains("TRUST_FORWARDED_FOR"),
            "{text}"
        );
    }

    #[test]
    fn managed_without_its_services_lists_every_missing_setting() {
        let err = AppConfig::from_pairs(&[("hosting_mode", "managed")]).expect_err("must refuse");
        let text = err.to_string();
        for name in [
            "DATABASE_URL",
            "REDIS_URL",
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_SECRET_KEY",
            "MANAGED_API_KEY",
            "JWT_SECRET",
        ] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
    }

    #[test]
    fn managed_refuses_sqlite_and_short_secrets() {
        let err = AppConfig::from_pairs(&[
            ("hosting_mode", "managed"),
            ("database_url", "./x.db"),
            ("jwt_secret", "short"),
        ])
        .expect_err("must refuse");
        let text = err.to_string();
        assert!(text.contains("must be a postgres:// URL"), "{text}");
        assert!(text.contains("at least 32 characters"), "{text}");
    }

    #[test]
    fn a_given_secret_must_be_long_enough_in_every_profile() {
        let err = AppConfig::from_pairs(&[("jwt_secret", "tooshort")]).expect_err("must refuse");
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        assert!(AppConfig::from_pairs(&[("jwt_secret", &"k".repeat(32))]).is_ok());
    }

    #[test]
    fn bad_numbers_and_modes_are_named() {
        let err = AppConfig::from_pairs(&[
            ("port", "eighty"),
            ("hosting_mode", "cloud"),
            ("log_format", "xml"),
        ])
        .expect_err("must refuse");
        let text = err.to_string();
        assert!(
            text.contains("PORT") && text.contains("HOSTING_MODE") && text.contains("LOG_FORMAT"),
            "{text}"
        );
    }

    /// Every problem at once, self-hosted and managed: the messages and their order are what an
    /// operator reads, and stay as they are.
    #[test]
    fn every_problem_is_listed_in_a_fixed_order() {
        let bad = |pairs: &[(&str, &str)]| AppConfig::from_pairs(pairs).expect_err("must refuse").0;
        let numbers = [
            "port",
            "rate_limit_user_per_10s",
            "rate_limit_ip_per_10s",
            "rate_limit_join_per_minute",
            "rate_limit_webhook_per_10s",
            "rate_limit_webhook_failures_per_10s",
            "login_failures_per_address_per_minute",
            "login_failures_per_account_per_hour",
            "http_workers",
            "max_json_body_bytes",
            "max_batch_calls",
            "max_response_bytes",
            "request_body_idle_ms",
            "request_body_min_rate",
            "db_pool_max",
            "storage_quota_bytes",
            "max_upload_size_bytes",
            "ws_identify_timeout_ms",
            "ws_heartbeat_timeout_ms",
            "ws_resume_log_events",
            "ws_resume_buffer_seconds",
            "ws_outbound_queue",
            "ws_write_delay_ms",
            "ws_presence_grace_ms",
            "ws_events_per_10s",
            "ws_sockets_per_user",
            "ws_sockets_per_address",
            "ws_stream_linger_ms",
        ];
        let mut pairs: Vec<(&str, &str)> = numbers.iter().map(|n| (*n, "x")).collect();
        pairs.extend([
            ("hosting_mode", "cloud"),
            ("s3_bucket", "b"),
            ("jwt_secret", "short"),
            ("redis_url", "http://r"),
            ("redis_cluster", "maybe"),
            ("central_url", "ftp://c"),
            ("log_format", "xml"),
            ("voice_enabled", "off"),
            ("mediasoup_min_port", "50000"),
            ("mediasoup_max_port", "40000"),
            ("trust_forwarded_for", "maybe"),
            ("forwarded_for_hops", "0"),
        ]);
        let self_hosted = bad(&pairs);
        let managed = bad(&[
            ("hosting_mode", "managed"),
            ("database_url", "./x.db"),
            ("s3_region", "r"),
            ("jwt_secret", "short"),
            ("forwarded_for_hops", "-1"),
            ("port", "p"),
        ]);
        assert_eq!(
            self_hosted,
            [
                "HOSTING_MODE: 'cloud' is neither 'self-hosted' nor 'managed'",
                "S3_ENDPOINT is required when any S3 setting is given",
                "S3_REGION is required when any S3 setting is given",
                "S3_ACCESS_KEY is required when any S3 setting is given",
                "S3_SECRET_KEY is required when any S3 setting is given",
                "JWT_SECRET must be at least 32 characters (or unset, to generate one)",
                "REDIS_URL: 'http://r' is not a redis:// URL",
                "REDIS_CLUSTER: 'maybe' is neither 'true' nor 'false'",
                "CENTRAL_URL: 'ftp://c' is not an http(s) URL",
                "LOG_FORMAT: 'xml' is neither 'text' nor 'json'",
                "PORT: 'x' is not a valid number",
                "VOICE_ENABLED: 'off' is neither 'true' nor 'false'",
                "MEDIASOUP_MIN_PORT must not be above MEDIASOUP_MAX_PORT",
                "TRUST_FORWARDED_FOR: 'maybe' is neither 'true' nor 'false'",
                "RATE_LIMIT_USER_PER_10S: 'x' is not a valid number",
                "RATE_LIMIT_IP_PER_10S: 'x' is not a valid number",
                "RATE_LIMIT_JOIN_PER_MINUTE: 'x' is not a valid number",
                "RATE_LIMIT_WEBHOOK_PER_10S: 'x' is not a valid number",
                "RATE_LIMIT_WEBHOOK_FAILURES_PER_10S: 'x' is not a valid number",
                "LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE: 'x' is not a valid number",
                "LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR: 'x' is not a valid number",
                "FORWARDED_FOR_HOPS must be at least 1",
                "HTTP_WORKERS: 'x' is not a valid number",
                "MAX_JSON_BODY_BYTES: 'x' is not a valid number",
                "MAX_BATCH_CALLS: 'x' is not a valid number",
                "MAX_RESPONSE_BYTES: 'x' is not a valid number",
                "REQUEST_BODY_IDLE_MS: 'x' is not a valid number",
                "REQUEST_BODY_MIN_RATE: 'x' is not a valid number",
                "DB_POOL_MAX: 'x' is not a valid number",
                "STORAGE_QUOTA_BYTES: 'x' is not a valid number",
                "MAX_UPLOAD_SIZE_BYTES: 'x' is not a valid number",
                "WS_IDENTIFY_TIMEOUT_MS: 'x' is not a valid number",
                "WS_HEARTBEAT_TIMEOUT_MS: 'x' is not a valid number",
                "WS_RESUME_LOG_EVENTS: 'x' is not a valid number",
                "WS_RESUME_BUFFER_SECONDS: 'x' is not a valid number",
                "WS_OUTBOUND_QUEUE: 'x' is not a valid number",
                "WS_WRITE_DELAY_MS: 'x' is not a valid number",
                "WS_PRESENCE_GRACE_MS: 'x' is not a valid number",
                "WS_EVENTS_PER_10S: 'x' is not a valid number",
                "WS_SOCKETS_PER_USER: 'x' is not a valid number",
                "WS_SOCKETS_PER_ADDRESS: 'x' is not a valid number",
                "WS_STREAM_LINGER_MS: 'x' is not a valid number",
            ]
        );
        assert_eq!(
            managed,
            [
                "DATABASE_URL must be a postgres:// URL in managed mode",
                "REDIS_URL is required in managed mode",
                "S3_ENDPOINT is required in managed mode",
                "S3_BUCKET is required in managed mode",
                "S3_ACCESS_KEY is required in managed mode",
                "S3_SECRET_KEY is required in managed mode",
                "MANAGED_API_KEY is required in managed mode",
                "JWT_SECRET must be at least 32 characters in managed mode",
                "PORT: 'p' is not a valid number",
                "FORWARDED_FOR_HOPS: '-1' is not a valid number",
            ]
        );
    }

    #[test]
    fn the_write_delay_is_bounded() {
        let ok = AppConfig::from_pairs(&[("ws_write_delay_ms", "1000")]).expect("1000 is fine");
        assert_eq!(ok.ws_write_delay_ms, 1000);
        let refused = AppConfig::from_pairs(&[("ws_write_delay_ms", "1001")])
            .expect_err("must refuse")
            .0;
        assert_eq!(refused, ["WS_WRITE_DELAY_MS must be at most 1000"]);
    }

    /// The names a text file gives settings: `key = …` (TOML) or `KEY=…` (env), commented or
    /// not, lower-cased.
    fn named(text: &str, env: bool) -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| {
                let l = l.trim_start_matches('#').trim_start();
                let (name, _) = l.split_once('=')?;
                let name = name.trim_end();
                let ok = !name.is_empty()
                    && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && name.chars().all(|c| {
                        c == '_'
                            || c.is_ascii_digit()
                            || if env {
                                c.is_ascii_uppercase()
                            } else {
                                c.is_ascii_lowercase()
                            }
                    });
                (ok && (env || !name.contains(' '))).then(|| name.to_ascii_lowercase())
            })
            .collect()
    }

    #[test]
    fn default_toml_and_the_env_examples_name_every_setting() {
        let keys: std::collections::BTreeSet<String> = known_keys().into_iter().collect();
        assert!(keys.len() > 50, "{keys:?}");
        let toml = named(DEFAULTS, false);
        assert_eq!(
            toml, keys,
            "config/default.toml lists every setting, and only those"
        );
        // What the env files name beyond the settings: the config file's path, and the
        // PostgreSQL container's own variables (compose.managed.yml).
        let beyond = [
            "ecto_config",
            "postgres_db",
            "postgres_password",
            "postgres_user",
        ];
        for (name, text) in [
            (
                "deploy/self-hosted.env.example",
                include_str!("../../../deploy/self-hosted.env.example"),
            ),
            (
                "deploy/managed.env.example",
                include_str!("../../../deploy/managed.env.example"),
            ),
        ] {
            let env = named(text, true);
            let missing: Vec<_> = keys.difference(&env).collect();
            assert!(missing.is_empty(), "{name} does not name {missing:?}");
            let unknown: Vec<_> = env
                .iter()
                .filter(|k| !keys.contains(*k) && !beyond.contains(&k.as_str()))
                .collect();
            assert!(
                unknown.is_empty(),
                "{name} names what is no setting: {unknown:?}"
            );
        }
    }
}
