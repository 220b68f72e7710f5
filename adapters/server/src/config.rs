//! Configuration: `config/default.toml` (embedded), an optional file named by `ECTO_CONFIG`,
//! then environment variables, parsed and checked into [`AppConfig`].

use ecto_core::ports::{Limit, RateLimits};
use ecto_core::HostingMode;
use serde::Deserialize;
use std::path::PathBuf;
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
    pub redis_url: Option<String>,
    pub redis_key_prefix: String,
    pub s3: Option<S3Config>,
    pub managed_api_key: Option<String>,
    /// The `rate_limit_*` settings and `trust_forwarded_for`.
    pub rate_limits: RateLimits,
    pub mediasoup_min_port: u16,
    pub mediasoup_max_port: u16,
    pub log_json: bool,
    pub log_level: String,
    pub ws_identify_timeout_ms: u64,
    pub ws_heartbeat_timeout_ms: u64,
    pub ws_resume_log_events: usize,
    pub ws_resume_buffer_seconds: u64,
    pub ws_outbound_queue: usize,
    pub ws_presence_grace_ms: u64,
    pub ws_events_per_10s: u32,
    /// Open `/ws` sockets one user may hold in one server (0: no cap).
    pub ws_sockets_per_user: u32,
    /// Open `/ws` and `/notify` sockets one client address may hold on this process (0: no
    /// cap).
    pub ws_sockets_per_address: u32,
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

/// The raw values, all as text, before checking.
#[derive(Debug, Default, Deserialize)]
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
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
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
    mediasoup_min_port: Option<String>,
    mediasoup_max_port: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    ws_identify_timeout_ms: Option<String>,
    ws_heartbeat_timeout_ms: Option<String>,
    ws_resume_log_events: Option<String>,
    ws_resume_buffer_seconds: Option<String>,
    ws_outbound_queue: Option<String>,
    ws_presence_grace_ms: Option<String>,
    ws_events_per_10s: Option<String>,
    ws_sockets_per_user: Option<String>,
    ws_sockets_per_address: Option<String>,
}

/// A value that is present and not blank.
fn set(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn number<T: std::str::FromStr>(
    errors: &mut Vec<String>,
    name: &str,
    v: &Option<String>,
    default: T,
) -> T {
    match set(v) {
        None => default,
        Some(s) => s.parse().unwrap_or_else(|_| {
            errors.push(format!("{name}: '{s}' is not a valid number"));
            default
        }),
    }
}

impl AppConfig {
    /// Loads defaults, then `ECTO_CONFIG` (if set), then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Ok(path) = std::env::var("ECTO_CONFIG") {
            builder = builder.add_source(config::File::with_name(&path));
        }
        let raw: Raw = builder
            .add_source(config::Environment::default())
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(vec![e.to_string()]))?;
        Self::check(raw)
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

    fn check(raw: Raw) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let hosting_mode = match set(&raw.hosting_mode).as_deref() {
            None | Some("self-hosted") | Some("selfhosted") => HostingMode::SelfHosted,
            Some("managed") => HostingMode::Managed,
            Some(other) => {
                errors.push(format!(
                    "HOSTING_MODE: '{other}' is neither 'self-hosted' nor 'managed'"
                ));
                HostingMode::SelfHosted
            }
        };
        let data_dir = PathBuf::from(set(&raw.data_dir).unwrap_or_else(|| "./data".into()));
        let database_url = set(&raw.database_url);
        let is_pg = database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
        let s3_values = [
            ("S3_ENDPOINT", set(&raw.s3_endpoint)),
            ("S3_BUCKET", set(&raw.s3_bucket)),
            ("S3_REGION", set(&raw.s3_region)),
            ("S3_ACCESS_KEY", set(&raw.s3_access_key)),
            ("S3_SECRET_KEY", set(&raw.s3_secret_key)),
        ];
        let s3_given = s3_values.iter().filter(|(_, v)| v.is_some()).count();
        let s3 = match s3_values.clone() {
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
        if s3_given > 0 && s3.is_none() && hosting_mode == HostingMode::SelfHosted {
            for (name, v) in &s3_values {
                if v.is_none() {
                    errors.push(format!("{name} is required when any S3 setting is given"));
                }
            }
        }
        let jwt_secret = set(&raw.jwt_secret);
        let redis_url = set(&raw.redis_url);
        let managed_api_key = set(&raw.managed_api_key);
        if hosting_mode == HostingMode::Managed {
            if database_url.is_none() {
                errors.push("DATABASE_URL is required in managed mode (a postgres:// URL)".into());
            } else if !is_pg {
                errors.push("DATABASE_URL must be a postgres:// URL in managed mode".into());
            }
            if redis_url.is_none() {
                errors.push("REDIS_URL is required in managed mode".into());
            }
            for (name, v) in &s3_values {
                if v.is_none() {
                    errors.push(format!("{name} is required in managed mode"));
                }
            }
            if managed_api_key.is_none() {
                errors.push("MANAGED_API_KEY is required in managed mode".into());
            }
            match &jwt_secret {
                None => errors
                    .push("JWT_SECRET is required in managed mode (at least 32 characters)".into()),
                Some(s) if s.chars().count() < 32 => {
                    errors.push("JWT_SECRET must be at least 32 characters in managed mode".into())
                }
                Some(_) => {}
            }
        }
        if hosting_mode == HostingMode::SelfHosted
            && jwt_secret.as_ref().is_some_and(|s| s.chars().count() < 32)
        {
            errors.push(
                "JWT_SECRET must be at least 32 characters (or unset, to generate one)".into(),
            );
        }
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                errors.push(format!("REDIS_URL: '{url}' is not a redis:// URL"));
            }
        }
        let central_url = set(&raw.central_url);
        if let Some(url) = &central_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(format!("CENTRAL_URL: '{url}' is not an http(s) URL"));
            }
        }
        let log_json = match set(&raw.log_format).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                errors.push(format!(
                    "LOG_FORMAT: '{other}' is neither 'text' nor 'json'"
                ));
                false
            }
        };
        let port = number(&mut errors, "PORT", &raw.port, 3000u16);
        let mediasoup_min_port = number(
            &mut errors,
            "MEDIASOUP_MIN_PORT",
            &raw.mediasoup_min_port,
            40000u16,
        );
        let mediasoup_max_port = number(
            &mut errors,
            "MEDIASOUP_MAX_PORT",
            &raw.mediasoup_max_port,
            40100u16,
        );
        if mediasoup_min_port > mediasoup_max_port {
            errors.push("MEDIASOUP_MIN_PORT must not be above MEDIASOUP_MAX_PORT".into());
        }
        let trust_forwarded_for = match set(&raw.trust_forwarded_for) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                errors.push(format!(
                    "TRUST_FORWARDED_FOR: '{other}' is neither 'true' nor 'false'"
                ));
                false
            }
        };
        // Each limit is a number of calls per window; 0 turns it off.
        let per = |capacity: u32, secs: u64| Limit::new(capacity, Duration::from_secs(secs));
        let rate_limits = RateLimits {
            user: per(
                number(
                    &mut errors,
                    "RATE_LIMIT_USER_PER_10S",
                    &raw.rate_limit_user_per_10s,
                    300u32,
                ),
                10,
            ),
            ip: per(
                number(
                    &mut errors,
                    "RATE_LIMIT_IP_PER_10S",
                    &raw.rate_limit_ip_per_10s,
                    60u32,
                ),
                10,
            ),
            join: per(
                number(
                    &mut errors,
                    "RATE_LIMIT_JOIN_PER_MINUTE",
                    &raw.rate_limit_join_per_minute,
                    30u32,
                ),
                60,
            ),
            webhook: per(
                number(
                    &mut errors,
                    "RATE_LIMIT_WEBHOOK_PER_10S",
                    &raw.rate_limit_webhook_per_10s,
                    30u32,
                ),
                10,
            ),
            webhook_failures: per(
                number(
                    &mut errors,
                    "RATE_LIMIT_WEBHOOK_FAILURES_PER_10S",
                    &raw.rate_limit_webhook_failures_per_10s,
                    10u32,
                ),
                10,
            ),
            login_address: per(
                number(
                    &mut errors,
                    "LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE",
                    &raw.login_failures_per_address_per_minute,
                    5u32,
                ),
                60,
            ),
            login_account: per(
                number(
                    &mut errors,
                    "LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR",
                    &raw.login_failures_per_account_per_hour,
                    30u32,
                ),
                3600,
            ),
            trust_forwarded_for,
            forwarded_for_hops: {
                let hops = number(
                    &mut errors,
                    "FORWARDED_FOR_HOPS",
                    &raw.forwarded_for_hops,
                    1u8,
                );
                if hops == 0 {
                    errors.push("FORWARDED_FOR_HOPS must be at least 1".into());
                }
                hops.max(1)
            },
        };
        let config = AppConfig {
            hosting_mode,
            port,
            bind_address: set(&raw.bind_address).unwrap_or_else(|| "0.0.0.0".into()),
            server_address: set(&raw.server_address),
            client_url: set(&raw.client_url).unwrap_or_else(|| "https://app.ecto.chat".into()),
            http_workers: number(&mut errors, "HTTP_WORKERS", &raw.http_workers, 0usize),
            max_json_body_bytes: number(
                &mut errors,
                "MAX_JSON_BODY_BYTES",
                &raw.max_json_body_bytes,
                1_000_000usize,
            ),
            max_batch_calls: number(
                &mut errors,
                "MAX_BATCH_CALLS",
                &raw.max_batch_calls,
                50usize,
            )
            .max(1),
            max_response_bytes: number(
                &mut errors,
                "MAX_RESPONSE_BYTES",
                &raw.max_response_bytes,
                8_388_608usize,
            ),
            upload_dir: set(&raw.upload_dir)
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("uploads")),
            data_dir,
            database_url,
            db_pool_max: number(&mut errors, "DB_POOL_MAX", &raw.db_pool_max, 20usize),
            storage_quota_bytes: number(
                &mut errors,
                "STORAGE_QUOTA_BYTES",
                &raw.storage_quota_bytes,
                0u64,
            ),
            max_upload_size_bytes: number(
                &mut errors,
                "MAX_UPLOAD_SIZE_BYTES",
                &raw.max_upload_size_bytes,
                0u64,
            ),
            jwt_secret,
            // Reference rule: anything but "false" is true.
            allow_local_accounts: set(&raw.allow_local_accounts)
                .is_none_or(|v| !v.eq_ignore_ascii_case("false")),
            central_url,
            central_sync_key: set(&raw.central_sync_key),
            redis_url,
            redis_key_prefix: raw
                .redis_key_prefix
                .clone()
                .unwrap_or_else(|| "ecto:".into()),
            s3,
            managed_api_key,
            rate_limits,
            mediasoup_min_port,
            mediasoup_max_port,
            log_json,
            log_level: set(&raw.log_level).unwrap_or_else(|| "info".into()),
            ws_identify_timeout_ms: number(
                &mut errors,
                "WS_IDENTIFY_TIMEOUT_MS",
                &raw.ws_identify_timeout_ms,
                10_000u64,
            ),
            ws_heartbeat_timeout_ms: number(
                &mut errors,
                "WS_HEARTBEAT_TIMEOUT_MS",
                &raw.ws_heartbeat_timeout_ms,
                90_000u64,
            ),
            ws_resume_log_events: number(
                &mut errors,
                "WS_RESUME_LOG_EVENTS",
                &raw.ws_resume_log_events,
                50_000usize,
            ),
            ws_resume_buffer_seconds: number(
                &mut errors,
                "WS_RESUME_BUFFER_SECONDS",
                &raw.ws_resume_buffer_seconds,
                300u64,
            ),
            ws_outbound_queue: number(
                &mut errors,
                "WS_OUTBOUND_QUEUE",
                &raw.ws_outbound_queue,
                1024usize,
            ),
            ws_presence_grace_ms: number(
                &mut errors,
                "WS_PRESENCE_GRACE_MS",
                &raw.ws_presence_grace_ms,
                15_000u64,
            ),
            ws_events_per_10s: number(
                &mut errors,
                "WS_EVENTS_PER_10S",
                &raw.ws_events_per_10s,
                120u32,
            ),
            ws_sockets_per_user: number(
                &mut errors,
                "WS_SOCKETS_PER_USER",
                &raw.ws_sockets_per_user,
                32u32,
            ),
            ws_sockets_per_address: number(
                &mut errors,
                "WS_SOCKETS_PER_ADDRESS",
                &raw.ws_sockets_per_address,
                512u32,
            ),
            unfurl_allow_hosts: set(&raw.unfurl_allow_hosts)
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(errors))
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
}
