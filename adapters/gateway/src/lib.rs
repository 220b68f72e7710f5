//! The WebSocket gateway (`/ws`, reference §3.3 with DECISIONS §2–3): the hello → identify →
//! ready handshake, heartbeats, channel subscriptions, and delivery of every event the use
//! cases publish to exactly the sessions of its scope, with a per-session sequence and exact
//! resume on any process of the deployment.
//!
//! One dispatcher task per process reads the event bus and applies each event to the sessions
//! in its registry; a session that drops leaves checkpoints in the `SessionBuffer`, from which a
//! resume replays the event bus's log (see `registry.rs`).

mod body;
mod notify;
mod registry;
mod resume;
mod socket;

pub use registry::{Gateway, GatewayConfig};

use actix_web::{web, HttpRequest, HttpResponse};
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
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let response = response
        .map_body(|_, body| body::Pieces::new(body))
        .map_into_boxed_body();
    let stream = stream.max_frame_size(64 * 1024).aggregate_continuations();
    actix_web::rt::spawn(socket::run(
        gateway.into_inner(),
        addressing,
        session,
        stream,
    ));
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
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream.max_frame_size(16 * 1024).aggregate_continuations();
    actix_web::rt::spawn(notify::run(
        gateway.into_inner(),
        addressing,
        session,
        stream,
    ));
    Ok(response)
}
