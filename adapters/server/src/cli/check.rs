//! `ecto-server check-config`, and the start-up checks that name what to fix.

use crate::config::{AppConfig, ConfigError};
use std::path::Path;

/// What stands for a hidden value.
const HIDDEN: &str = "<hidden>";

/// The text `check-config` prints and its exit code: the effective configuration with its
/// secrets hidden and 0, or every problem at once and 2.
pub fn report(loaded: &Result<AppConfig, ConfigError>) -> (String, u8) {
    match loaded {
        Ok(config) => {
            let mut problems = Vec::new();
            if let Err(e) = data_dir_writable(config) {
                problems.push(e);
            }
            let shown = format!("{:#?}", redacted(config));
            if problems.is_empty() {
                (
                    format!("the configuration is valid; in effect:\n{shown}\n"),
                    0,
                )
            } else {
                (
                    format!(
                        "invalid configuration:\n  - {}\nin effect otherwise:\n{shown}\n",
                        problems.join("\n  - ")
                    ),
                    2,
                )
            }
        }
        Err(e) => (format!("{e}\n"), 2),
    }
}

/// `config` with every secret replaced by `<hidden>`: the JWT secret, the central sync key,
/// the managed API key, the S3 keys, and the passwords in the database and Redis URLs.
pub fn redacted(config: &AppConfig) -> AppConfig {
    let mut c = config.clone();
    let hide = |v: &mut Option<String>| {
        if v.is_some() {
            *v = Some(HIDDEN.into());
        }
    };
    hide(&mut c.jwt_secret);
    hide(&mut c.central_sync_key);
    hide(&mut c.managed_api_key);
    if let Some(s3) = &mut c.s3 {
        s3.access_key = HIDDEN.into();
        s3.secret_key = HIDDEN.into();
    }
    c.database_url = c.database_url.as_deref().map(url_without_password);
    // (A cluster's nodes are a comma-separated list.)
    c.redis_url = c.redis_url.as_deref().map(|urls| {
        urls.split(',')
            .map(url_without_password)
            .collect::<Vec<_>>()
            .join(",")
    });
    c
}

/// `scheme://user:password@host…` with the password hidden; other text unchanged.
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{HIDDEN}{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// The self-hosted data directory (when the configuration uses it: the SQLite database, the
/// generated secret or local uploads) exists or can be created, and takes files.
pub fn data_dir_writable(config: &AppConfig) -> Result<(), String> {
    let uses_data_dir = config.database_url.is_none()
        || (config.jwt_secret.is_none()
            && config.hosting_mode == ecto_core::HostingMode::SelfHosted);
    if !uses_data_dir {
        return Ok(());
    }
    writable(&config.data_dir).map_err(|e| {
        format!(
            "DATA_DIR: the data directory {} is not writable ({e}); create it, give the \
             server's user write access to it, or point DATA_DIR elsewhere",
            config.data_dir.display()
        )
    })
}

fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(".ecto-write-check-")
        .tempfile_in(dir)
        .map(drop)
}

/// Raises this process's open-file soft limit to its hard limit (each socket and upload is an
/// open file); the limit in effect afterwards, or why it could not be read.
pub fn raise_open_file_limit() -> Result<u64, String> {
    rlimit::increase_nofile_limit(u64::MAX).map_err(|e| e.to_string())
}

/// How many descriptors the table is grown to at start (at most the open-file limit): room
/// for 16,000 sockets, in about 130 KiB of kernel memory. Past it the kernel grows the table
/// as before.
const DESCRIPTORS_RESERVED: u64 = 16_384;

/// Grows this process's file-descriptor table up front, before the server listens; the size
/// it now covers. The kernel doubles the table as descriptors are opened, and in a
/// process with several threads each doubling waits for an RCU grace period (`expand_files`
/// → `synchronize_rcu`: 4 to 12 ms on the benchmark machine) with the accepting thread
/// asleep. Sockets coming in at once then waited in clusters (perf sched, 1,000 connects 64 at
/// a time: the acceptor in `accept4` → `expand_files`). The table never shrinks, so this is
/// paid once, at start: one grace period (the allocator's background thread already runs),
/// before the runtime's threads exist.
pub fn reserve_descriptors(open_file_limit: u64) -> u64 {
    let size = open_file_limit.min(DESCRIPTORS_RESERVED);
    let Ok(top) = i32::try_from(size.saturating_sub(1)) else {
        return 0;
    };
    // A duplicate at or above `top` grows the table to cover it; both close at once.
    let grown = std::fs::File::open("/dev/null")
        .and_then(|null| Ok(rustix::io::fcntl_dupfd_cloexec(&null, top)?));
    if grown.is_ok() {
        size
    } else {
        0
    }
}
