//! Building and running the actix-web server.

use crate::upgrade::UpgradeHook;
use crate::{
    content_uploads, discovery, files, hub_uploads, landing, og_image, procedures, routes, trpc,
    unfurl, uploads,
};
use actix_http::{HttpService, KeepAlive};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Compress, DefaultHeaders, Next};
use actix_web::{web, App, HttpResponse};
use ecto_core::Services;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Everything the HTTP handlers share.
pub struct HttpState {
    /// Shared by reference with each request's context (a clone of the services themselves
    /// is one reference count per port).
    pub services: Arc<Services>,
    pub registry: trpc::Registry,
    /// Largest accepted JSON body, in bytes.
    pub max_json_body: usize,
    /// How much work one request may ask for.
    pub limits: RequestLimits,
    /// `MANAGED_API_KEY`: the bearer secret of `POST /internal/servers` (managed only).
    pub managed_api_key: Option<String>,
    /// The link cards drawn by this process (`GET /og-image`).
    pub og_images: og_image::OgImages,
    /// How fast request bodies must come (`REQUEST_BODY_*`).
    pub body_pace: crate::pace::BodyPace,
}

/// Bounds on one tRPC request (`MAX_BATCH_CALLS`, `MAX_RESPONSE_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Calls one batch may carry.
    pub max_batch_calls: usize,
    /// Bytes of output one response may carry; calls past it get 413.
    pub max_response_bytes: usize,
}

impl HttpState {
    pub fn new(
        services: Services,
        max_json_body: usize,
        limits: RequestLimits,
        managed_api_key: Option<String>,
    ) -> Self {
        Self {
            services: Arc::new(services),
            registry: procedures::registry(),
            max_json_body,
            limits,
            managed_api_key,
            og_images: og_image::OgImages::default(),
            body_pace: crate::pace::BodyPace::default(),
        }
    }
}

/// `OPTIONS` on any path is a CORS preflight: 204, empty.
async fn preflight(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::OPTIONS {
        let (req, _) = req.into_parts();
        return Ok(
            ServiceResponse::new(req, HttpResponse::NoContent().finish()).map_into_right_body(),
        );
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Routes another inbound adapter (the gateway) mounts next to these.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Starts serving on `listener` with `workers` threads, with `extra` routes mounted before the
/// fall-through and WebSocket upgrades answered by `upgrade` (404 without one); the returned
/// server runs until stopped.
///
/// Built as actix-web's `HttpServer` builds it (same timeouts, graceful shutdown of keep-alive
/// connections), plus the upgrade hook `HttpServer` has no setter for.
pub fn serve(
    state: HttpState,
    listener: TcpListener,
    workers: usize,
    extra: Option<ExtraRoutes>,
    upgrade: Option<UpgradeHook>,
) -> std::io::Result<actix_web::dev::Server> {
    let state = web::Data::from(Arc::new(state));
    let addr = listener.local_addr()?;
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers.max(1))
        .shutdown_timeout(10)
        // The binary handles SIGTERM/SIGINT itself, to close sockets with 4011 first.
        .disable_signals()
        .listen("ecto-http", listener, move || {
            let app = app(state.clone(), extra.clone())
                .into_factory()
                .map_err(|err| err.error_response());
            let signal = shutdown.clone();
            let hook = upgrade.clone();
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = signal.clone();
                    async move { signal.notified().await }
                })
                .keep_alive(KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                // Small writes go out at once: a response written in several pieces must not
                // wait for the peer's delayed ACK (Nagle's algorithm).
                .tcp_nodelay(true)
                .upgrade(fn_service(move |(req, framed)| {
                    crate::upgrade::answer(hook.clone(), req, framed)
                }))
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?
        .run();
    Ok(server)
}

/// The application every worker runs.
fn app(
    state: web::Data<HttpState>,
    extra: Option<ExtraRoutes>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state.clone())
        .app_data(web::PayloadConfig::new(state.max_json_body))
        .wrap(Compress::default())
        .wrap(from_fn(preflight))
        .wrap(from_fn(crate::pace::pace))
        .wrap(
            DefaultHeaders::new()
                .add(("Access-Control-Allow-Origin", "*"))
                .add(("Access-Control-Allow-Methods", "GET, POST, HEAD, OPTIONS"))
                .add((
                    "Access-Control-Allow-Headers",
                    "Content-Type, Authorization, X-Request-Id",
                ))
                .add(("Access-Control-Max-Age", "86400"))
                .add(("Access-Control-Expose-Headers", "X-Request-Id")),
        )
        // Outermost: every answer, preflights and errors included, carries the id.
        .wrap(from_fn(crate::observe::observe))
        .configure(move |cfg| {
            if let Some(extra) = &extra {
                extra(cfg);
            }
        })
        // First: every route is tried in order, and a route with a parameter is matched by a
        // regular expression (perf of a sequential messages.send: 1.7 % of the server's CPU in
        // regex matching while /trpc/{path} came after six others with parameters, 1.3 % when
        // it came first). A scope's prefix is plain text, compared without one; no other route
        // starts with /trpc.
        .service(web::scope("/trpc").default_service(web::route().to(trpc::entry)))
        .route("/health", web::route().to(routes::health))
        .route("/ready", web::get().to(routes::ready))
        .route("/internal/servers", web::post().to(routes::create_server))
        .route("/", web::head().to(HttpResponse::Ok))
        .route("/og-image", web::get().to(og_image::serve))
        .route(
            "/",
            web::get().guard(landing::wants_html()).to(landing::home),
        )
        .route(
            "/invite/{code}",
            web::get().guard(landing::wants_html()).to(landing::invite),
        )
        .route(
            "/webhooks/{id}/{token}",
            web::post().to(routes::execute_webhook),
        )
        .route("/api/unfurl", web::get().to(unfurl::handle))
        .route("/api/discovery-status", web::post().to(discovery::status))
        .route("/upload", web::post().to(uploads::upload))
        .route("/upload/dm", web::post().to(uploads::upload_dm))
        .route("/upload/icon", web::post().to(uploads::upload_icon))
        .route("/upload/banner", web::post().to(uploads::upload_banner))
        .route("/upload/shared", web::post().to(hub_uploads::upload_shared))
        .route(
            "/upload/page-banner/{channel_id}",
            web::post().to(content_uploads::page_banner),
        )
        .route(
            "/upload/news-hero/{channel_id}",
            web::post().to(content_uploads::news_hero),
        )
        .route("/files/{tail:.*}", web::get().to(files::serve))
        .route("/files/{tail:.*}", web::head().to(files::serve))
        .default_service(web::route().to(trpc::not_found))
}
