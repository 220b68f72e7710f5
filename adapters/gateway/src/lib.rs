//! The WebSocket gateway (`/ws`, reference §3.3 with DECISIONS §2–3): the hello → identify →
//! ready handshake, heartbeats, channel subscriptions, and delivery of every event the use
//! cases publish to exactly the sessions of its scope, with a per-session sequence and exact
//! resume on any process of the deployment.
//!
//! One dispatcher task per process reads the event bus and applies each event to the sessions
//! in its registry; a session that drops leaves checkpoints in the `SessionBuffer`, from which a
//! resume replays the event bus's log (see `registry.rs`, `dispatch.rs` and `checkpoints.rs`).

mod body;
mod checkpoints;
mod config;
mod conn;
mod dispatch;
mod events;
mod frame;
mod identify;
mod inbound;
mod notify;
mod registry;
mod resume;
mod session;
mod streams;
mod voice;

pub use config::GatewayConfig;
pub use registry::Gateway;

use actix_http::HttpMessage;
use actix_web::rt::net::TcpStream;
use actix_web::web::BytesMut;
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::usecases::base::rate_limit;
use std::sync::Arc;

/// Routes of the gateway, for the HTTP server to mount: `/ws` and `/notify` asked for without
/// a WebSocket upgrade are refused with 400 (upgrades go to [`upgrade`]).
pub fn configure(
    gateway: Arc<Gateway>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(gateway.clone()))
            .route("/ws", web::get().to(not_an_upgrade))
            .route("/notify", web::get().to(not_an_upgrade));
    }
}

/// Every valid upgrade goes to the HTTP server's hook, so what reaches this route is refused
/// with the handshake's reason (400).
async fn not_an_upgrade(req: HttpRequest) -> HttpResponse {
    let error = actix_http::ws::handshake(req.head())
        .err()
        .unwrap_or(actix_http::ws::HandshakeError::NoWebsocketUpgrade);
    HttpResponse::from(actix_http::Response::from(error))
}

/// What serves an accepted socket: its stream, the bytes read past the request head, and the
/// encoded 101, not yet written.
pub type Accept = Box<
    dyn FnOnce(TcpStream, BytesMut, BytesMut) -> futures_util::future::LocalBoxFuture<'static, ()>,
>;

/// The gateway's answer to a WebSocket upgrade.
pub struct Upgrade {
    /// The route it is counted under.
    pub route: &'static str,
    /// 101 with `accept`, or a refusal.
    pub response: HttpResponse,
    pub accept: Option<Accept>,
}

/// Answers a WebSocket upgrade request on `/ws` or `/notify` (`None` for any other path).
pub fn upgrade(gateway: &Arc<Gateway>, req: &actix_http::Request) -> Option<Upgrade> {
    let (route, notify) = match req.path() {
        "/ws" => ("/ws", false),
        "/notify" => ("/notify", true),
        _ => return None,
    };
    let refuse = |response| {
        Some(Upgrade {
            route,
            response,
            accept: None,
        })
    };
    // A method other than GET, or a missing or bad header, is refused here (405, 400).
    let mut handshake = match actix_http::ws::handshake(req.head()) {
        Ok(h) => h,
        Err(e) => return refuse(HttpResponse::from(actix_http::Response::from(e))),
    };
    if gateway.closing() {
        return refuse(shutting_down());
    }
    let Some(guard) = admit(req, gateway) else {
        return refuse(too_many_sockets());
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let addressing = (header("x-server-address"), header("host"));
    let config = &gateway.config;
    let ws = body::outbox(config.outbound_queue.max(16), config.write_delay);
    let gateway = gateway.clone();
    let outbox = ws.outbox().clone();
    let accept = if notify {
        serve(
            NOTIFY_FRAME_MAX,
            outbox,
            guard,
            move |mut inbound| async move {
                notify::run(gateway, addressing, ws, &mut inbound).await;
                inbound
            },
        )
    } else {
        // Queued now: the 101 and the hello leave in one write.
        let Some(hello_id) = conn::hello(&ws) else {
            return refuse(HttpResponse::InternalServerError().finish());
        };
        serve(WS_FRAME_MAX, outbox, guard, move |mut inbound| async move {
            conn::run(gateway, addressing, ws, hello_id, &mut inbound).await;
            inbound
        })
    };
    Some(Upgrade {
        route,
        response: HttpResponse::from(handshake.finish()).map_into_boxed_body(),
        accept: Some(accept),
    })
}

/// Serves an accepted socket: its reader (frames up to `frame_max`) goes to `run`, the
/// connection's loop, spawned; the returned future is the socket's writer. The address's slot
/// is held until the loop has ended and the client has closed (or [`body::LINGER`] passed).
fn serve<F, Fut>(
    frame_max: usize,
    outbox: Arc<body::Outbox>,
    guard: registry::AddressGuard,
    run: F,
) -> Accept
where
    F: FnOnce(inbound::Inbound) -> Fut + 'static,
    Fut: std::future::Future<Output = inbound::Inbound> + 'static,
{
    Box::new(move |io: TcpStream, read: BytesMut, head: BytesMut| {
        let (reader, writer) = io.into_split();
        let inbound = inbound::Inbound::new(reader, read, frame_max, outbox.clone());
        actix_web::rt::spawn(async move {
            let inbound = run(inbound).await;
            Box::pin(inbound.drain(body::LINGER)).await;
            drop(guard);
        });
        Box::pin(body::write(writer, outbox, head))
    })
}

/// Counts the socket against its client address; `None` when the address holds its cap.
fn admit(req: &actix_http::Request, gateway: &Gateway) -> Option<registry::AddressGuard> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let address = rate_limit::client_address(
        req.peer_addr().map(|a| a.ip()),
        forwarded,
        &gateway.services.settings.rate_limits,
    );
    gateway.admit_address(rate_limit::client_key(address))
}

/// The largest frame (or fragmented message) a `/ws` client may send (close 4002 beyond).
const WS_FRAME_MAX: usize = 64 * 1024;

/// The largest frame a `/notify` client may send.
const NOTIFY_FRAME_MAX: usize = 16 * 1024;

/// The answer to an upgrade past the address's cap.
fn too_many_sockets() -> HttpResponse {
    HttpResponse::TooManyRequests()
        .json(serde_json::json!({ "error": "Too many sockets from this address" }))
}

/// The answer to an upgrade while the process shuts down: the client goes to another one.
fn shutting_down() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
        .json(serde_json::json!({ "error": "Server shutting down" }))
}
