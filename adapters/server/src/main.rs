//! `ecto-server`: `serve` (the default), `migrate`, `backup`, `restore`, `export`, `import`,
//! `health`, `check-config` and the `admin` commands. The commands themselves live in `ecto_server::cli`; this file parses
//! arguments, calls them and prints.

use clap::{Parser, Subcommand};
use ecto_core::usecases::tenancy::provision_server;
use ecto_server::cli::{self, admin, CliError, CliResult};
use ecto_server::{open_database, AppConfig};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// The process's allocator (see ARCHITECTURE.md, "Memory"); the `system-allocator` feature
/// leaves it to glibc's malloc, which heap profilers see.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "ecto-server",
    version,
    about = "A self-hostable community chat server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent backup of this self-hosted server (SQLite database, uploads, JWT
    /// secret) into one archive, while it runs; `.tar.gz` or `.tgz` compresses.
    Backup {
        /// The archive to write (an existing file is replaced once the new one is complete).
        archive: PathBuf,
    },
    /// Restore a backup archive into the configured, empty data directory.
    Restore {
        /// The archive `ecto-server backup` wrote.
        archive: PathBuf,
    },
    /// Write every row of the configured database and every upload into one archive, to move
    /// this deployment onto another database or upload store (SQLite and local disk, or
    /// PostgreSQL and S3); `.tar.gz` or `.tgz` compresses. Stop the server first.
    Export {
        /// The archive to write (an existing file is replaced once the new one is complete).
        archive: PathBuf,
    },
    /// Load an export archive into the configured database and upload store, which must be
    /// empty; checks every table's rows and every file's checksum before committing.
    Import {
        /// The archive `ecto-server export` wrote.
        archive: PathBuf,
    },
    /// Ask the server of this configuration, on its port, whether it is alive (exit status 0
    /// when it answers 200): the health check of the container image.
    Health {
        /// Ask `/ready` (database, Redis and S3 answer) instead of `/health`.
        #[arg(long)]
        ready: bool,
    },
    /// Show the effective configuration with secrets hidden, or every invalid setting (exit
    /// status 2).
    CheckConfig,
    /// Administrative tasks on the configured database.
    Admin {
        #[command(subcommand)]
        task: AdminTask,
    },
}

#[derive(Subcommand)]
enum AdminTask {
    /// Provision a community server at an address (managed profile only).
    CreateServer {
        #[arg(long)]
        address: String,
        #[arg(long)]
        name: String,
    },
    /// List the community servers.
    ListServers,
    /// List the members of a server (self-hosted: its one server by default).
    ListMembers {
        /// The server's id or address.
        #[arg(long)]
        server: Option<String>,
    },
    /// Set a new password for a local account and end its sessions; prints a random one
    /// unless --password-stdin is given.
    ResetPassword {
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        username: String,
        /// Read the new password from standard input (its first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of a member (their tokens stop working).
    RevokeSessions {
        #[arg(long)]
        server: Option<String>,
        /// The member's user id or username.
        #[arg(long)]
        user: String,
    },
    /// Make a member the owner of a server (when the owner is gone).
    TransferOwnership {
        #[arg(long)]
        server: Option<String>,
        /// The new owner's user id or username.
        #[arg(long)]
        to: String,
    },
}

/// Logs at `LOG_LEVEL`; a one-off command (`quiet`) logs errors only, so that its output is
/// what it prints.
fn init_logs(config: &AppConfig, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        config.log_level.as_str()
    };
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let loaded = AppConfig::load();
    if let Command::CheckConfig = command {
        let (text, code) = cli::check::report(&loaded);
        print!("{text}");
        return ExitCode::from(code);
    }
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecto-server: refusing to start, {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(
        &config,
        !matches!(command, Command::Serve | Command::Migrate),
    );
    if let Command::Serve = command {
        // Before the runtime starts its threads and the server listens (see
        // `reserve_descriptors`).
        match cli::check::raise_open_file_limit() {
            Ok(limit) => {
                let reserved = cli::check::reserve_descriptors(limit);
                tracing::info!(limit, reserved, "open-file limit");
            }
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecto-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, &config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Said once, on standard error, as what to fix.
            eprintln!("ecto-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: &AppConfig) -> CliResult<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::CheckConfig => Ok(()),
        Command::Migrate => {
            let applied = open_database(config)?.migrate().await?;
            println!("{applied} migration(s) applied");
            Ok(())
        }
        Command::Backup { archive } => {
            let m = cli::backup::backup(config, &archive).await?;
            println!(
                "backup written to {}: {} table rows counted ({}), {} upload file(s), {} bytes{}",
                archive.display(),
                m.tables.values().sum::<i64>(),
                summary(&m.tables),
                m.upload_files,
                m.upload_bytes,
                if m.uploads_included {
                    ""
                } else {
                    " (uploads are on S3: not included, protect the bucket with versioning)"
                }
            );
            Ok(())
        }
        Command::Restore { archive } => {
            let m = cli::backup::restore(config, &archive).await?;
            println!(
                "restored the backup of {} (ecto-server {}) into {}: {}, {} upload file(s); \
                 start the server with `ecto-server serve`",
                m.created_at,
                m.server_version,
                config.data_dir.display(),
                summary(&m.tables),
                m.upload_files
            );
            Ok(())
        }
        Command::Export { archive } => {
            let s =
                cli::transfer::export(config, &archive, &mut |line| eprintln!("{line}")).await?;
            println!(
                "exported to {}: {} rows ({}), {} file(s), {} bytes; move it with `ecto-server \
                 import {}` under the new configuration",
                archive.display(),
                s.rows.values().sum::<i64>(),
                summary(&s.rows),
                s.files,
                s.bytes,
                archive.display()
            );
            Ok(())
        }
        Command::Import { archive } => {
            let s =
                cli::transfer::import(config, &archive, &mut |line| eprintln!("{line}")).await?;
            println!(
                "imported {}: {} rows ({}), {} file(s), {} bytes, every count and checksum \
                 verified; start the server with `ecto-server serve`",
                archive.display(),
                s.rows.values().sum::<i64>(),
                summary(&s.rows),
                s.files,
                s.bytes
            );
            Ok(())
        }
        Command::Health { ready } => {
            println!("{}", cli::health::probe(config, ready)?);
            Ok(())
        }
        Command::Admin { task } => admin_task(task, config).await,
    }
}

/// `messages=12, members=3, …`
fn summary(tables: &std::collections::BTreeMap<String, i64>) -> String {
    tables
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn admin_task(task: AdminTask, config: &AppConfig) -> CliResult<()> {
    if let AdminTask::CreateServer { .. } = task {
        admin::refuse_create_in_self_hosted(config)?;
    }
    let svc = admin::open(config).await?;
    match task {
        AdminTask::CreateServer { address, name } => {
            let server = provision_server(&svc, &address, &name).await?;
            println!(
                "created server {} ({}) at {}",
                server.id, server.name, address
            );
        }
        AdminTask::ListServers => {
            let db = open_database(config)?;
            println!(
                "{:<36}  {:>7}  {:<36}  {:<24}  name",
                "id", "members", "owner", "address"
            );
            for s in admin::list_servers(&svc, &db).await? {
                println!(
                    "{:<36}  {:>7}  {:<36}  {:<24}  {}",
                    s.id,
                    s.members,
                    s.owner.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
                    s.address.as_deref().unwrap_or("-"),
                    s.name
                );
            }
        }
        AdminTask::ListMembers { server } => {
            let server = admin::server(&svc, server.as_deref()).await?;
            println!(
                "{:<36}  {:<7}  {:<24}  joined",
                "user id", "type", "username"
            );
            for m in admin::list_members(&svc, &server).await? {
                let owner = if server.admin_user_id == Some(m.user_id) {
                    "  (owner)"
                } else {
                    ""
                };
                println!(
                    "{:<36}  {:<7}  {:<24}  {}{owner}",
                    m.user_id,
                    m.identity_type.as_str(),
                    m.username,
                    m.joined_at.to_rfc3339()
                );
            }
        }
        AdminTask::ResetPassword {
            server,
            username,
            password_stdin,
        } => {
            let server = admin::server(&svc, server.as_deref()).await?;
            let (password, generated) = if password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
                (text.lines().next().unwrap_or("").to_owned(), false)
            } else {
                (admin::random_password(), true)
            };
            admin::reset_password(&svc, &server, &username, &password).await?;
            if generated {
                println!("new password for {username}: {password}");
            } else {
                println!("password of {username} changed");
            }
            println!("every session of {username} has ended");
        }
        AdminTask::RevokeSessions { server, user } => {
            let server = admin::server(&svc, server.as_deref()).await?;
            let user_id = admin::member(&svc, &server, &user).await?;
            admin::revoke_sessions(&svc, &server, user_id).await?;
            println!("every session of {user_id} has ended");
        }
        AdminTask::TransferOwnership { server, to } => {
            let server = admin::server(&svc, server.as_deref()).await?;
            let user_id = admin::member(&svc, &server, &to).await?;
            let updated = admin::transfer_ownership(&svc, &server, user_id).await?;
            println!("{user_id} now owns {} ({})", updated.name, updated.id);
        }
    }
    Ok(())
}

async fn serve(config: &AppConfig) -> CliResult<()> {
    cli::check::data_dir_writable(config).map_err(CliError::new)?;
    let ecto_server::Running {
        addr,
        handle,
        server,
        gateway,
        ..
    } = ecto_server::start(config).await?;
    tracing::info!(addr = %addr, mode = config.hosting_mode.as_str(), "ecto-server listening");
    let serving = tokio::spawn(server);
    wait_for_stop_signal().await;
    tracing::info!("shutting down: closing sockets, finishing requests in flight");
    ecto_server::shutdown(&gateway, &handle).await;
    serving
        .await
        .map_err(|e| CliError::new(e.to_string()))?
        .map_err(|e| CliError::new(e.to_string()))
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
