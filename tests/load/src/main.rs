//! ecto-load: a load generator for ecto-server. It speaks only the public protocol (tRPC over
//! HTTP and the `/ws` gateway), so it runs against any deployment given its base URL.

mod api;
mod communities;
mod lossy;
mod scenarios;
mod stats;
mod voice;
mod ws;

use clap::{Args, Parser, Subcommand};
use rand::distr::{Alphanumeric, SampleString};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The server's allocator (see `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Load generator for ecto-server (tRPC over HTTP and the /ws gateway).
///
/// Every scenario prints a table; with --json it prints one JSON object on stdout instead (the
/// table then goes to stderr). Errors are counted by kind and always shown.
#[derive(Parser)]
#[command(name = "ecto-load", version)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args)]
struct Common {
    /// Base URL of the server.
    #[arg(
        long,
        global = true,
        env = "ECTO_LOAD_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    url: String,
    /// X-Server-Address sent with every request and socket (managed deployments).
    #[arg(long, global = true, env = "ECTO_LOAD_SERVER_ADDRESS")]
    server_address: Option<String>,
    /// Profile label copied into the report (e.g. self-hosted, managed).
    #[arg(long, global = true, default_value = "")]
    label: String,
    /// Print one JSON object per run on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// The account that creates the run's channel, NAME:PASSWORD; registered when new. It must
    /// be allowed to create channels (on a fresh server the first account is the owner).
    #[arg(long, global = true, default_value = "load-owner:load-owner-password")]
    owner: String,
    /// Prefix of the load accounts (<prefix>-<i>); default: a fresh random one per run. Accounts
    /// that exist are signed in instead of registered.
    #[arg(long, global = true)]
    user_prefix: Option<String>,
    /// Most accounts a run signs in; sessions and clients share them round-robin.
    #[arg(long, global = true, default_value_t = 200)]
    max_users: usize,
    /// server.join calls in flight while signing accounts in.
    #[arg(long, global = true, default_value_t = 16)]
    join_concurrency: usize,
    /// Process id of the server (same machine only): every scenario then reports the server's
    /// CPU time during the measured phase, and `idle` its VmRSS (from /proc/<pid>/status).
    #[arg(long, global = true)]
    pid: Option<u32>,
    /// A JSON file of access tokens by account, read at start and written at the end: later
    /// runs sign their accounts in with `server.join` and the token (no password hashing on
    /// the server) while the tokens are valid.
    #[arg(long, global = true)]
    token_cache: Option<std::path::PathBuf>,
    /// Timeout of one HTTP call and of each /ws handshake step, in seconds.
    #[arg(long, global = true, default_value_t = 15.0)]
    timeout: f64,
}

#[derive(Subcommand)]
enum Scenario {
    /// N sequential messages.send from one client.
    SendSeq {
        #[arg(short = 'n', long, default_value_t = 2000)]
        count: usize,
    },
    /// C clients, each sending sequentially for a duration (or a count per client).
    SendConcurrent {
        #[arg(short = 'c', long, default_value_t = 32)]
        clients: usize,
        /// Seconds to send for (ignored when --count is given).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Messages per client instead of a duration.
        #[arg(long)]
        count: Option<usize>,
    },
    /// N subscribers of one channel; senders at a fixed total rate (open loop); every delivery
    /// timed from send start to frame received.
    Fanout {
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Messages per second, all senders together.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Accounts that send, round-robin.
        #[arg(long, default_value_t = 8)]
        senders: usize,
        /// Sends in flight at most; a send due while all are busy waits (and is counted late).
        #[arg(long, default_value_t = 64)]
        sender_concurrency: usize,
        /// Seconds to wait after the last send before counting losses.
        #[arg(long, default_value_t = 5.0)]
        grace: f64,
        /// Sockets opening at once.
        #[arg(long, default_value_t = 64)]
        connect_concurrency: usize,
    },
    /// N identified, heartbeating sessions; the server's RSS before and after.
    Idle {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Sockets opening at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to wait after the last session is ready before reading the RSS.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Seconds to keep the sessions afterwards (heartbeating) before closing them.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
    },
    /// Large tRPC batches: a channel of long messages, then `clients` clients each sending
    /// `rounds` batches of `calls` messages.list; the server's RSS before, at its peak, and
    /// after `settle` seconds (needs --pid for memory).
    Batch {
        #[arg(long, default_value_t = 50)]
        calls: usize,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Messages of 4,000 characters in the channel.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        #[arg(long, default_value_t = 10.0)]
        settle: f64,
    },
    /// N participants in one voice channel, each producing Opus (and a VP8-sized camera with
    /// --video) and consuming everyone else through real WebRTC peers on this machine:
    /// packets forwarded per second, send-to-receive delay, loss, and with --pid the server's
    /// CPU per 1,000 forwarded packets and memory per participant.
    Voice {
        #[arg(long, default_value_t = 25)]
        participants: usize,
        /// Seconds of media.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long)]
        video: bool,
        /// Seconds to wait after the last packet before counting losses.
        #[arg(long, default_value_t = 2.0)]
        grace: f64,
        /// Percent of the RTP lost each way between the peers and the SFU (a relay in this
        /// process stands in the path): shows what NACK recovers and what it costs in delay.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
    },
    /// N new accounts registered at once (a password hash each); the server's RSS before, at
    /// its peak, and `settle` seconds later (needs --pid).
    SigninBurst {
        #[arg(long, default_value_t = 32)]
        count: usize,
        #[arg(long, default_value_t = 60.0)]
        settle: f64,
    },
    /// Many communities on a managed deployment of two instances (`--url` and
    /// `--other-url`), traffic in a few: sessions spread over `servers` provisioned servers,
    /// the busy ones' on the first instance; both instances' CPU over an idle and a traffic
    /// phase (`--pid`, `--other-pid`), and Redis's commands per message and per delivery
    /// (`--redis-url`).
    Communities {
        #[arg(long, default_value_t = 1000)]
        servers: usize,
        #[arg(long, default_value_t = 10000)]
        sessions: usize,
        /// Communities with traffic.
        #[arg(long, default_value_t = 5)]
        busy: usize,
        /// Messages per second, all busy communities together.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds of each phase (idle, then traffic).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Base URL of the second instance.
        #[arg(long)]
        other_url: String,
        /// Process id of the second instance.
        #[arg(long)]
        other_pid: Option<u32>,
        /// The deployment's managed API key (servers are provisioned with it).
        #[arg(long, env = "MANAGED_API_KEY")]
        managed_key: String,
        /// Redis of the deployment, for `INFO commandstats` (redis://host:port; a cluster's
        /// masters comma-separated, summed).
        #[arg(long)]
        redis_url: Option<String>,
        /// Sockets opening at once.
        #[arg(long, default_value_t = 64)]
        connect_concurrency: usize,
        /// Seconds to wait after the last send.
        #[arg(long, default_value_t = 3.0)]
        grace: f64,
    },
    /// Connect→ready latency of N sessions, C at a time.
    Connect {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

/// What every scenario needs.
pub struct Ctx {
    pub api: api::Api,
    pub target: ws::Target,
    pub errors: Arc<stats::Errors>,
    pub run: String,
    pub prefix: String,
    pub owner: String,
    pub max_users: usize,
    pub join_concurrency: usize,
    pub label: String,
    pub tokens: api::Tokens,
    pub pid: Option<u32>,
}

/// How many sockets a scenario holds open at once (0: a handful).
fn socket_count(scenario: &Scenario) -> usize {
    match scenario {
        Scenario::Fanout { subscribers, .. } => *subscribers,
        Scenario::Idle { sessions, .. }
        | Scenario::Connect { sessions, .. }
        | Scenario::Communities { sessions, .. } => *sessions,
        _ => 0,
    }
}

/// Grows this process's file-descriptor table to hold `wanted` descriptors (at most `limit`)
/// before the runtime starts. The kernel doubles the table as descriptors are opened, and in a
/// process with several threads each doubling waits for an RCU grace period (`expand_files`
/// → `synchronize_rcu`, about 4 to 12 ms here), during which every thread opening a socket
/// sleeps: opening 1,000 sockets at once, both runtime threads stalled in `socket` at the
/// doublings (64 → 2,048; perf sched). The table never shrinks, so growing it once up front
/// removes those stalls.
fn reserve_descriptors(wanted: u64, limit: u64) {
    let top = wanted.min(limit).saturating_sub(1);
    let Ok(top) = i32::try_from(top) else { return };
    if top < 64 {
        return;
    }
    // A duplicate at or above `top` grows the table to cover it; both are closed at once.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = rustix::io::fcntl_dupfd_cloexec(&null, top);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of sockets need more than the usual soft limit of 1024 open files: raise the
    // soft limit to the hard limit (`ulimit -Hn`); beyond that, raise the hard limit first.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).ok();
    if let Some(limit) = nofile {
        reserve_descriptors(socket_count(&cli.scenario) as u64 + 256, limit);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecto-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli, nofile))
}

async fn run(cli: Cli, nofile: Option<u64>) -> ExitCode {
    let c = cli.common;
    let timeout = Duration::from_secs_f64(c.timeout.max(0.1));
    let pool = match &cli.scenario {
        Scenario::SendConcurrent { clients, .. } => *clients,
        Scenario::Fanout {
            sender_concurrency, ..
        } => *sender_concurrency,
        Scenario::SigninBurst { count, .. } => *count,
        _ => 16,
    }
    .max(c.join_concurrency);
    let api = match api::Api::new(&c.url, c.server_address.clone(), pool, timeout) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ecto-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run = Alphanumeric
        .sample_string(&mut rand::rng(), 6)
        .to_lowercase();
    let sockets = socket_count(&cli.scenario);
    if let Some(limit) = nofile {
        if (sockets as u64) + 256 > limit {
            eprintln!(
                "ecto-load: warning: the open-file limit is {limit}, too low for {sockets} \
                 sockets; raise it with `ulimit -n` (hard limit) before running"
            );
        }
    }
    let ctx = Ctx {
        target: ws::Target {
            url: api.ws_url(),
            server_address: c.server_address.clone(),
            timeout,
        },
        api,
        errors: Arc::new(stats::Errors::default()),
        prefix: c.user_prefix.clone().unwrap_or_else(|| format!("l{run}")),
        run,
        owner: c.owner.clone(),
        max_users: c.max_users.max(1),
        join_concurrency: c.join_concurrency.max(1),
        label: c.label.clone(),
        tokens: Default::default(),
        pid: c.pid,
    };
    if let Some(path) = &c.token_cache {
        if let Ok(text) = std::fs::read_to_string(path) {
            match serde_json::from_str(&text) {
                Ok(map) => *ctx.tokens.lock().unwrap_or_else(|e| e.into_inner()) = map,
                Err(e) => eprintln!(
                    "ecto-load: ignoring the token cache {}: {e}",
                    path.display()
                ),
            }
        }
    }
    let outcome = match cli.scenario {
        Scenario::SendSeq { count } => scenarios::send_seq(&ctx, count).await,
        Scenario::SigninBurst { count, settle } => {
            scenarios::signin_burst(&ctx, count, settle).await
        }
        Scenario::SendConcurrent {
            clients,
            duration,
            count,
        } => scenarios::send_concurrent(&ctx, clients.max(1), duration, count).await,
        Scenario::Fanout {
            subscribers,
            rate,
            duration,
            senders,
            sender_concurrency,
            grace,
            connect_concurrency,
        } => {
            scenarios::fanout(
                &ctx,
                scenarios::FanoutParams {
                    subscribers,
                    rate: rate.max(0.001),
                    duration,
                    senders: senders.max(1),
                    sender_concurrency: sender_concurrency.max(1),
                    grace,
                    connect_concurrency: connect_concurrency.max(1),
                },
            )
            .await
        }
        Scenario::Idle {
            sessions,
            concurrency,
            settle,
            hold,
        } => scenarios::idle(&ctx, sessions, concurrency.max(1), settle, hold).await,
        Scenario::Connect {
            sessions,
            concurrency,
        } => scenarios::connect(&ctx, sessions, concurrency.max(1)).await,
        Scenario::Communities {
            servers,
            sessions,
            busy,
            rate,
            duration,
            other_url,
            other_pid,
            managed_key,
            redis_url,
            connect_concurrency,
            grace,
        } => {
            communities::run(
                &ctx,
                communities::CommunitiesParams {
                    servers: servers.max(1),
                    sessions,
                    busy,
                    rate,
                    duration,
                    other_url,
                    other_pid,
                    managed_key,
                    redis_url,
                    connect_concurrency,
                    grace,
                },
            )
            .await
        }
        Scenario::Voice {
            participants,
            duration,
            video,
            grace,
            loss,
        } => {
            voice::voice(
                &ctx,
                voice::VoiceParams {
                    participants,
                    duration,
                    video,
                    grace,
                    loss,
                },
            )
            .await
        }
        Scenario::Batch {
            calls,
            clients,
            rounds,
            messages,
            settle,
        } => {
            scenarios::batch(
                &ctx,
                scenarios::BatchParams {
                    calls: calls.max(1),
                    clients: clients.max(1),
                    rounds: rounds.max(1),
                    messages,
                    settle,
                },
            )
            .await
        }
    };
    if let Some(path) = &c.token_cache {
        let map = ctx.tokens.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Err(e) = serde_json::to_string(&map)
            .map_err(std::io::Error::other)
            .and_then(|t| std::fs::write(path, t))
        {
            eprintln!(
                "ecto-load: cannot write the token cache {}: {e}",
                path.display()
            );
        }
    }
    match outcome {
        Ok(mut report) => {
            if let Some(limit) = nofile {
                report.result("client_open_file_limit", limit);
            }
            if c.json {
                eprint!("{}", report.to_table());
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ecto-load: {e}");
            let errors = ctx.errors.snapshot();
            if !errors.is_empty() {
                eprintln!("ecto-load: errors so far: {errors:?}");
            }
            ExitCode::FAILURE
        }
    }
}
