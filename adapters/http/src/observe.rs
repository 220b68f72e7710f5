//! What every HTTP request leaves behind: a request id (the client's `X-Request-Id` when it is
//! sane, else a new UUIDv7) in a tracing span around the whole request and in the
//! `X-Request-Id` response header; request counts and latencies by route (a tRPC procedure,
//! or a plain route's pattern) and status; and one log line per failed request (info for
//! 4xx, error for 5xx) with its route, status and ecto codes, and the cause of an internal
//! error.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The causes of the internal errors met while answering the current request (logged
    /// once, on the request's failure line).
    static CAUSES: RefCell<Vec<String>>;
}

/// Keeps the cause of an internal error for the failure line of the request being answered;
/// outside a request it is logged at once.
pub(crate) fn internal_cause(chain: String) {
    let kept = CAUSES.try_with(|c| c.borrow_mut().push(chain.clone()));
    if kept.is_err() {
        tracing::error!(error = %chain, "internal error");
    }
}

/// How a handler names its request and its errors for metrics and the failure line (a
/// response extension).
pub(crate) struct Described {
    /// The tRPC procedure (`messages.send`; `batch` for a batch, `unknown` for a path no
    /// procedure has); `None` for a plain route, named by its pattern.
    pub route: Option<&'static str>,
    /// The ecto codes of the failed calls.
    pub ecto: Vec<u16>,
}

/// Adds `described` to a response.
pub(crate) fn describe(resp: &mut HttpResponse, route: Option<&'static str>, ecto: Vec<u16>) {
    resp.extensions_mut().insert(Described { route, ecto });
}

/// The id of a request: the client's `X-Request-Id` when it is sane, else a new UUIDv7.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    sane_id(headers).unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The client's request id when it is 1 to 64 characters of `[A-Za-z0-9._-]`.
fn sane_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(REQUEST_ID)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| value.to_owned())
}

/// The middleware (outermost): id, span, metrics, failure line.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", request_id = %id);
    let method = req.method().clone();
    let started = Instant::now();
    let (res, causes) = CAUSES
        .scope(RefCell::new(Vec::new()), async {
            let res = next.call(req).instrument(span.clone()).await;
            (res, CAUSES.with(|c| c.take()))
        })
        .await;
    let mut res = res?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let status = res.status().as_u16();
    let described = res
        .response()
        .extensions()
        .get::<Described>()
        .map(|d| (d.route, d.ecto.clone()));
    let (procedure, ecto) = described.unwrap_or((None, Vec::new()));
    let route: String = match procedure {
        Some(p) => p.to_owned(),
        None => res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned()),
    };
    record(
        &span,
        &method,
        &route,
        status,
        &ecto,
        &causes,
        started.elapsed(),
    );
    Ok(res)
}

/// Counts an answered request under `route` and `status`, and logs it when it failed (info
/// for 4xx, error for 5xx or when internal errors were met).
pub(crate) fn record(
    span: &tracing::Span,
    method: &Method,
    route: &str,
    status: u16,
    ecto: &[u16],
    causes: &[String],
    elapsed: Duration,
) {
    metrics::counter!("ecto_http_requests_total", "route" => route.to_owned(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("ecto_http_request_duration_seconds", "route" => route.to_owned())
        .record(elapsed);
    if status >= 400 || !causes.is_empty() {
        let _entered = span.enter();
        let ecto = ecto
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 || !causes.is_empty() {
            let cause = causes.join("; ");
            tracing::error!(%method, %route, status, ecto_code = %ecto, ms, cause, "request failed");
        } else {
            tracing::info!(%method, %route, status, ecto_code = %ecto, ms, "request failed");
        }
    }
}
