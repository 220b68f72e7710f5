//! `ecto-server`: `serve` (the default), `migrate`, and `admin create-server`.

use clap::{Parser, Subcommand};
use ecto_core::usecases::tenancy::provision_server;
use ecto_server::{build_services, open_database, AppConfig};
use std::process::ExitCode;

/// The process's allocator (see ARCHITECTURE.md, "Memory").
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
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        task: AdminTask,
    },
}

#[derive(Subcommand)]
enum AdminTask {
    /// Provision a community server at an address (managed profile).
    CreateServer {
        #[arg(long)]
        address: String,
        #[arg(long)]
        name: String,
    },
}

fn init_logs(config: &AppConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
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
    let config = match AppConfig::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecto-server: refusing to start, {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(&config);
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
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(&config).await,
            Command::Migrate => {
                let applied = open_database(&config)?.migrate().await?;
                println!("{applied} migration(s) applied");
                Ok(())
            }
            Command::Admin {
                task: AdminTask::CreateServer { address, name },
            } => {
                // A one-off task next to a running server: its voice socket takes any free
                // port rather than the server's.
                let mut config = config.clone();
                config.mediasoup_min_port = 0;
                let services = build_services(&config).await?;
                let server = provision_server(&services, &address, &name).await?;
                println!(
                    "created server {} ({}) at {}",
                    server.id, server.name, address
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ecto-server failed");
            eprintln!("ecto-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &AppConfig) -> ecto_core::CoreResult<()> {
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
        .map_err(ecto_core::CoreError::internal)?
        .map_err(ecto_core::CoreError::internal)
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
