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
mod guard;
mod identify;
mod notify;
mod registry;
mod resume;
mod session;
mod streams;
mod voice;

pub use config::GatewayConfig;
pub use registry::Gateway;

use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::usecases::base::rate_limit;
use std::sync::Arc;

/// Routes of the gateway, for the HTTP server to mount.
pub fn configure(
    gateway: Arc<Gateway>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(gateway.clone()))
            .route("/ws", web::get().to(ws_route))
            .route("/notify", web::get().to(notify_route));
    }
}

/// Counts the socket against its client address; `None` when the address holds its cap.
fn admit(req: &HttpRequest, gateway: &Gateway) -> Option<registry::AddressGuard> {
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

/// The largest frame a `/ws` client may send (close 4002 beyond).
const WS_FRAME_MAX: usize = 64 * 1024;
/// The largest frame a `/notify` client may send.
const NOTIFY_FRAME_MAX: usize = 16 * 1024;

/// The body of an upgrade request, read through [`guard::FrameGuard`] so that a frame over
/// `max` is refused at its header instead of after it has all arrived.
fn guarded(
    req: &HttpRequest,
    body: web::Payload,
    max: usize,
) -> Result<web::Payload, actix_web::Error> {
    use actix_web::FromRequest;
    type Boxed = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>>,
    >;
    let stream: Boxed = Box::pin(guard::FrameGuard::new(body.into_inner(), max));
    let mut payload = actix_web::dev::Payload::from(stream);
    web::Payload::from_request(req, &mut payload).into_inner()
}

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

async fn ws_route(
    req: HttpRequest,
    body: web::Payload,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, actix_web::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let addressing = (header("x-server-address"), header("host"));
    if gateway.closing() {
        return Ok(shutting_down());
    }
    let Some(guard) = admit(&req, &gateway) else {
        return Ok(too_many_sockets());
    };
    let (response, _, stream) = actix_ws::handle(&req, guarded(&req, body, WS_FRAME_MAX)?)?;
    let mut outbox = None;
    let response = response
        .map_body(|_, original| {
            let config = &gateway.config;
            let (ws, body) =
                body::outbox(config.outbound_queue.max(16), config.write_delay, original);
            outbox = Some(ws);
            body
        })
        .map_into_boxed_body();
    let session = outbox.ok_or_else(|| actix_web::error::ErrorInternalServerError("no body"))?;
    let hello_id = conn::hello(&session)
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("no hello"))?;
    // A message sent in fragments is held to the same limit as one frame (actix-ws would
    // gather up to 1 MiB of them).
    let stream = stream
        .max_frame_size(WS_FRAME_MAX)
        .aggregate_continuations()
        .max_continuation_size(WS_FRAME_MAX);
    actix_web::rt::spawn(async move {
        conn::run(gateway.into_inner(), addressing, session, hello_id, stream).await;
        drop(guard);
    });
    Ok(response)
}

async fn notify_route(
    req: HttpRequest,
    body: web::Payload,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, actix_web::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let addressing = (header("x-server-address"), header("host"));
    if gateway.closing() {
        return Ok(shutting_down());
    }
    let Some(guard) = admit(&req, &gateway) else {
        return Ok(too_many_sockets());
    };
    let (response, session, stream) =
        actix_ws::handle(&req, guarded(&req, body, NOTIFY_FRAME_MAX)?)?;
    let stream = stream
        .max_frame_size(NOTIFY_FRAME_MAX)
        .aggregate_continuations()
        .max_continuation_size(NOTIFY_FRAME_MAX);
    actix_web::rt::spawn(async move {
        notify::run(gateway.into_inner(), addressing, session, stream).await;
        drop(guard);
    });
    Ok(response)
}
