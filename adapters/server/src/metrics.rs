//! `GET /metrics` in the Prometheus text format, on its own listen address
//! (`METRICS_ADDRESS`, off by default), optionally behind a bearer token (`METRICS_TOKEN`).
//!
//! The core and the adapters record through the `metrics` facade; this module installs the
//! process's one recorder (the facade's recorder is process-global: every [`crate::Running`]
//! of the process shares it) and renders it. Gauges that are a count of what exists now
//! (sessions, subscriptions, database connections in use, the voice plane's transports) are
//! read from their owners when Prometheus scrapes, so no hot path keeps them up to date; the
//! counts of every server of the process are added together.

use ecto_core::usecases::base::signing::same_secret;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Duration;

/// Bucket bounds (seconds) of every `*_seconds` histogram: from half a millisecond to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Exporter {
    handle: PrometheusHandle,
    /// The gateways and databases of the process's servers (while they exist).
    gateways: Mutex<Vec<Weak<ecto_gateway::Gateway>>>,
    databases: Mutex<Vec<ecto_sql::WeakDb>>,
    /// The counters of each SFU of the process (while it runs).
    voice: Mutex<Vec<Weak<ecto_voice::Stats>>>,
}

static EXPORTER: OnceLock<Result<Exporter, String>> = OnceLock::new();

/// The process's recorder, installed on first use (with a thread that keeps histograms
/// drained between scrapes).
fn exporter() -> Result<&'static Exporter, String> {
    EXPORTER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.install_recorder())
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
            Ok(Exporter {
                handle,
                gateways: Mutex::new(Vec::new()),
                databases: Mutex::new(Vec::new()),
                voice: Mutex::new(Vec::new()),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Installs the recorder (once per process); call before anything records.
pub(crate) fn install() -> Result<(), String> {
    exporter().map(|_| ())
}

/// The recorder, when one is installed (never installs it).
fn installed() -> Option<&'static Exporter> {
    EXPORTER.get().and_then(|e| e.as_ref().ok())
}

/// Adds a server's sessions to what scrapes read; nothing when metrics are off.
pub(crate) fn add_gateway(gateway: Weak<ecto_gateway::Gateway>) {
    if let Some(exporter) = installed() {
        lock(&exporter.gateways).push(gateway);
    }
}

/// Adds a database's pools to what scrapes read; nothing when metrics are off.
pub(crate) fn add_db(db: ecto_sql::WeakDb) {
    if let Some(exporter) = installed() {
        lock(&exporter.databases).push(db);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds an SFU's counters to what scrapes read (while it runs); nothing when metrics are off.
pub(crate) fn add_voice(stats: Weak<ecto_voice::Stats>) {
    if let Some(exporter) = installed() {
        lock(&exporter.voice).push(stats);
    }
}

/// Sets the gauges read at scrape time: the sum over the process's live servers.
fn collect(exporter: &Exporter) {
    let (mut sessions, mut subscriptions, mut streams) = (0usize, 0usize, 0usize);
    let mut gateways = lock(&exporter.gateways);
    gateways.retain(|g| g.strong_count() > 0);
    for gateway in gateways.iter().filter_map(Weak::upgrade) {
        let (s, subs) = gateway.counts();
        sessions += s;
        subscriptions += subs;
        streams += gateway.stream_count();
    }
    drop(gateways);
    let mut pools: Vec<ecto_sql::PoolUse> = Vec::new();
    let mut databases = lock(&exporter.databases);
    let mut open = Vec::new();
    for db in databases.drain(..) {
        let Some(used) = db.pool_use() else { continue };
        open.push(db);
        for used in used {
            match pools.iter_mut().find(|p| p.pool == used.pool) {
                Some(p) => {
                    p.size += used.size;
                    p.in_use += used.in_use;
                    p.waiting += used.waiting;
                    p.max_size += used.max_size;
                }
                None => pools.push(used),
            }
        }
    }
    *databases = open;
    drop(databases);
    let mut voice = [0u64; 7];
    let mut sfus = lock(&exporter.voice);
    sfus.retain(|s| s.strong_count() > 0);
    for stats in sfus.iter().filter_map(Weak::upgrade) {
        use std::sync::atomic::Ordering::Relaxed;
        let read = [
            &stats.transports,
            &stats.producers,
            &stats.consumers,
            &stats.forwarded,
            &stats.packets_in,
            &stats.packets_out,
            &stats.retransmitted,
        ];
        for (total, value) in voice.iter_mut().zip(read) {
            *total += value.load(Relaxed);
        }
    }
    drop(sfus);
    metrics::gauge!("ecto_ws_sessions").set(sessions as f64);
    metrics::gauge!("ecto_ws_subscriptions").set(subscriptions as f64);
    metrics::gauge!("ecto_event_streams").set(streams as f64);
    for p in pools {
        metrics::gauge!("ecto_db_pool_connections", "pool" => p.pool).set(p.size as f64);
        metrics::gauge!("ecto_db_pool_in_use", "pool" => p.pool).set(p.in_use as f64);
        metrics::gauge!("ecto_db_pool_waiting", "pool" => p.pool).set(p.waiting as f64);
        metrics::gauge!("ecto_db_pool_max", "pool" => p.pool).set(p.max_size as f64);
    }
    let [transports, producers, consumers, forwarded, packets_in, packets_out, retransmitted] =
        voice;
    metrics::gauge!("ecto_voice_transports").set(transports as f64);
    metrics::gauge!("ecto_voice_producers").set(producers as f64);
    metrics::gauge!("ecto_voice_consumers").set(consumers as f64);
    metrics::counter!("ecto_voice_forwarded_packets_total").absolute(forwarded);
    metrics::counter!("ecto_voice_packets_in_total").absolute(packets_in);
    metrics::counter!("ecto_voice_packets_out_total").absolute(packets_out);
    metrics::counter!("ecto_voice_retransmitted_packets_total").absolute(retransmitted);
}

/// `GET /metrics`: 401 without the right bearer token when one is configured.
async fn render(
    req: actix_web::HttpRequest,
    token: actix_web::web::Data<Option<String>>,
) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    if let Some(token) = token.as_ref() {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer"))
                .body("a valid METRICS_TOKEN bearer token is required\n");
        }
    }
    match exporter() {
        Ok(exporter) => {
            collect(exporter);
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(exporter.handle.render())
        }
        Err(e) => HttpResponse::ServiceUnavailable().body(e),
    }
}

/// Starts the metrics listener on `address` (one worker; it only renders text) and returns
/// the address it is bound to.
pub(crate) fn serve(
    address: &str,
    token: Option<String>,
) -> std::io::Result<(SocketAddr, actix_web::dev::Server)> {
    let listener = TcpListener::bind(address)?;
    let addr = listener.local_addr()?;
    let token = actix_web::web::Data::new(token);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(token.clone())
            .route("/metrics", actix_web::web::get().to(render))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((addr, server))
}
