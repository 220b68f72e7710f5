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
mod notify;
mod registry;
mod resume;
mod session;
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

/// The answer to an upgrade past the address's cap.
fn too_many_sockets() -> HttpResponse {
    HttpResponse::TooManyRequests()
        .json(serde_json::json!({ "error": "Too many sockets from this address" }))
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
    let Some(guard) = admit(&req, &gateway) else {
        return Ok(too_many_sockets());
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let response = response
        .map_body(|_, body| body::Pieces::new(body))
        .map_into_boxed_body();
    let stream = stream.max_frame_size(64 * 1024).aggregate_continuations();
    actix_web::rt::spawn(async move {
        conn::run(gateway.into_inner(), addressing, session, stream).await;
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
    let Some(guard) = admit(&req, &gateway) else {
        return Ok(too_many_sockets());
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream.max_frame_size(16 * 1024).aggregate_continuations();
    actix_web::rt::spawn(async move {
        notify::run(gateway.into_inner(), addressing, session, stream).await;
        drop(guard);
    });
    Ok(response)
}
