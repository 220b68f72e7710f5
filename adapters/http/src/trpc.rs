//! The tRPC wire layer (reference §2.2): `/trpc/{router}.{procedure}`, queries over GET with
//! `?input=`, mutations over POST with a JSON body, `?batch=1`, and the response envelopes.

use crate::error::{ApiError, TrpcCode};
use crate::observe::describe;
use crate::server::HttpState;
use crate::validate::Input;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::model::Server;
use ecto_core::ports::RateLimits;
use ecto_core::usecases::base::rate_limit;
use ecto_core::usecases::tenancy::resolve_server;
use ecto_core::usecases::{authenticate, Caller};
use ecto_core::{CoreResult, Services};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

/// Query (GET) or mutation (POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
}

/// Whether a procedure needs an authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Protected,
}

/// What a procedure handler gets: the services, the request's server, and who is calling.
pub struct Ctx {
    pub svc: Arc<Services>,
    pub server: Server,
    pub caller: Option<Caller>,
    /// The raw bearer token, for `server.join` (which also accepts central tokens).
    pub bearer: Option<String>,
    /// The client's address (see [`client_ip`]).
    pub ip: Option<IpAddr>,
}

impl Ctx {
    /// The authenticated caller; protected procedures only run when there is one.
    pub fn caller(&self) -> &Caller {
        // Protected handlers are only invoked with a caller (checked in `call`).
        self.caller
            .as_ref()
            .unwrap_or_else(|| unreachable!("protected procedure without caller"))
    }
}

/// A procedure: parses its input, runs its use case and answers the output's JSON text
/// (serialized straight from the use case's type, with no intermediate `Value`).
type Handler =
    Arc<dyn Fn(Rc<Ctx>, Value) -> LocalBoxFuture<'static, Result<String, ApiError>> + Send + Sync>;

struct Procedure {
    kind: Kind,
    access: Access,
    handler: Handler,
}

/// Every procedure by path.
#[derive(Default)]
pub struct Registry {
    procedures: HashMap<&'static str, Procedure>,
}

impl Registry {
    /// The metrics label of a path: the procedure's own name, or `unknown` (a label never
    /// comes from the request itself).
    pub fn label(&self, path: &str) -> &'static str {
        self.procedures
            .get_key_value(path)
            .map_or("unknown", |(name, _)| name)
    }

    /// Registers a procedure whose handler takes a parsed input and returns a use case result.
    pub fn add<I, O, F, Fut>(&mut self, path: &'static str, kind: Kind, access: Access, f: F)
    where
        I: Input + 'static,
        O: Serialize + 'static,
        F: Fn(Rc<Ctx>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CoreResult<O>> + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |ctx, raw| {
            let f = f.clone();
            Box::pin(async move {
                let input = I::parse(raw)?;
                let out = f(ctx, input).await?;
                serde_json::to_string(&out)
                    .map_err(|e| ApiError::from(ecto_core::CoreError::internal(e)))
            })
        });
        self.procedures.insert(
            path,
            Procedure {
                kind,
                access,
                handler,
            },
        );
    }

    pub fn query<I, O, F, Fut>(&mut self, path: &'static str, access: Access, f: F)
    where
        I: Input + 'static,
        O: Serialize + 'static,
        F: Fn(Rc<Ctx>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CoreResult<O>> + 'static,
    {
        self.add(path, Kind::Query, access, f);
    }

    pub fn mutation<I, O, F, Fut>(&mut self, path: &'static str, access: Access, f: F)
    where
        I: Input + 'static,
        O: Serialize + 'static,
        F: Fn(Rc<Ctx>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CoreResult<O>> + 'static,
    {
        self.add(path, Kind::Mutation, access, f);
    }
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    json_text_response(status, body.to_string())
}

fn json_text_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .insert_header((header::VARY, HeaderValue::from_static("trpc-accept")))
        .body(body)
}

/// The success envelope around an output's JSON text.
fn success_text(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 22);
    out.push_str("{\"result\":{\"data\":");
    out.push_str(data);
    out.push_str("}}");
    out
}

fn error_response(err: &ApiError, path: &str) -> HttpResponse {
    let mut resp = json_response(
        StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &err.envelope(path),
    );
    if let Some(secs) = err.retry_after {
        set_retry_after(&mut resp, secs);
    }
    resp
}

/// An error for every path of the call (a batch answers an array).
fn fail_all(paths: &[String], batch: bool, err: ApiError) -> HttpResponse {
    if !batch {
        return error_response(&err, paths.first().map(String::as_str).unwrap_or(""));
    }
    let body: Vec<Value> = paths.iter().map(|p| err.envelope(p)).collect();
    json_response(
        StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        &json!(body),
    )
}

/// The bearer token of the request, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The client's address (see [`rate_limit::client_address`]).
pub fn client_ip(req: &HttpRequest, limits: &RateLimits) -> Option<IpAddr> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    rate_limit::client_address(req.peer_addr().map(|a| a.ip()), forwarded, limits)
}

/// The `Retry-After` header of a limited answer (whole seconds).
pub fn set_retry_after(resp: &mut HttpResponse, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// The server a request is for (self-hosted: the one server; managed: by address).
pub async fn request_server(svc: &Services, req: &HttpRequest) -> CoreResult<Server> {
    let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    resolve_server(svc, header_str("x-server-address"), header_str("host")).await
}

/// Reads the whole body, refusing more than `limit` bytes (by `Content-Length` up front, or as
/// soon as the stream passes it).
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError {
        ecto: Some(ecto_core::EctoCode::PayloadTooLarge),
        ..ApiError::new(
            TrpcCode::PayloadTooLarge,
            format!("Request body exceeds {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::pace::too_slow(&e) {
                ApiError::new(TrpcCode::Timeout, "Request body too slow")
            } else {
                ApiError::new(TrpcCode::BadRequest, format!("Could not read body: {e}"))
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Everything under `/trpc`: one path segment, percent-decoded, names the procedures
/// ([`handle`]); anything else is a tRPC NOT_FOUND, as outside the routes.
pub async fn entry(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    let segment = req
        .match_info()
        .unprocessed()
        .strip_prefix('/')
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .and_then(percent_decoded);
    match segment {
        Some(path) => handle(req, path, query, payload, state).await,
        None => not_found(req).await,
    }
}

/// `text` with its `%XX` escapes decoded; `None` for a broken escape or bytes that are not
/// UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `/trpc/{paths}`: the whole request pipeline for procedures. Until the calls run, any
/// failure answers every path of the request with the same error.
async fn handle(
    req: HttpRequest,
    path: String,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    let batch = query.get("batch").is_some_and(|b| b == "1" || b == "true");
    let paths = batch_paths(path, batch);
    let route = if batch {
        "batch"
    } else {
        state.registry.label(&paths[0])
    };
    // Any failure before the calls run answers (and counts) every path alike.
    let failed = |e: ApiError| {
        for p in &paths {
            count_call(state.registry.label(p), e.code.http_status());
        }
        let ecto = e
            .ecto
            .map(ecto_core::EctoCode::number)
            .into_iter()
            .collect();
        let mut resp = fail_all(&paths, batch, e);
        describe(&mut resp, Some(route), ecto);
        resp
    };
    let kind = match method_kind(req.method()) {
        Ok(Some(kind)) => kind,
        Ok(None) => return HttpResponse::NoContent().finish(),
        Err(e) => return failed(e),
    };
    let prepared = async {
        let raw = raw_input(&req, &query, payload, &state, kind).await?;
        let inputs = split_batch(raw, paths.len(), batch)?;
        check_batch(&state, &paths, batch)?;
        let ctx = request_context(&state.services, &req).await?;
        Ok::<_, ApiError>((ctx, inputs))
    };
    let (ctx, inputs) = match prepared.await {
        Ok(prepared) => prepared,
        Err(e) => return failed(e),
    };
    let (results, spent) = run_calls(&state, &ctx, &paths, kind, inputs).await;
    let mut ecto = Vec::new();
    for (p, r) in paths.iter().zip(&results) {
        let status = match r {
            Ok(_) => 200,
            Err(e) => {
                ecto.extend(e.ecto.map(ecto_core::EctoCode::number));
                e.code.http_status()
            }
        };
        count_call(state.registry.label(p), status);
    }
    let mut resp = if batch {
        batch_response(results, &paths, spent)
    } else {
        single_response(results, &paths[0])
    };
    describe(&mut resp, Some(route), ecto);
    resp
}

/// Counts one call in `ecto_trpc_calls_total{procedure, status}` (each call of a batch too).
fn count_call(procedure: &'static str, status: u16) {
    metrics::counter!("ecto_trpc_calls_total", "procedure" => procedure, "status" => status_label(status))
        .increment(1);
}

/// A status as a label without allocating (the statuses the tRPC layer answers).
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        408 => "408",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// The procedure paths of the request: a batch names several, comma-separated.
fn batch_paths(path: String, batch: bool) -> Vec<String> {
    if batch {
        path.split(',').map(str::to_owned).collect()
    } else {
        vec![path]
    }
}

/// Queries come over GET, mutations over POST; `None` for HEAD (answered with no content).
fn method_kind(method: &Method) -> Result<Option<Kind>, ApiError> {
    match *method {
        Method::GET => Ok(Some(Kind::Query)),
        Method::POST => Ok(Some(Kind::Mutation)),
        Method::HEAD => Ok(None),
        _ => Err(ApiError::new(
            TrpcCode::MethodNotSupported,
            "Unsupported HTTP method",
        )),
    }
}

/// The request's input: `?input=` for queries, the JSON body for mutations; `None` when
/// there is none.
async fn raw_input(
    req: &HttpRequest,
    query: &HashMap<String, String>,
    payload: web::Payload,
    state: &HttpState,
    kind: Kind,
) -> Result<Option<Value>, ApiError> {
    match kind {
        Kind::Query => match query.get("input") {
            None => Ok(None),
            Some(text) => serde_json::from_str(text).map(Some).map_err(|e| {
                ApiError::new(TrpcCode::ParseError, format!("Invalid JSON in input: {e}"))
            }),
        },
        Kind::Mutation => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            // `application/json`, with parameters or without; not `application/jsonx`.
            let essence = content_type.split(';').next().unwrap_or("").trim();
            if essence != "application/json" {
                return Err(ApiError::new(
                    TrpcCode::UnsupportedMediaType,
                    format!("Unsupported content-type \"{content_type}\""),
                ));
            }
            let body = read_body(req, payload, state.max_json_body).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| ApiError::new(TrpcCode::ParseError, format!("Invalid JSON body: {e}")))
        }
    }
}

/// One input per call: a batch's input is an object keyed by index (a missing key is null).
fn split_batch(raw: Option<Value>, calls: usize, batch: bool) -> Result<Vec<Value>, ApiError> {
    if !batch {
        return Ok(vec![raw.unwrap_or(Value::Null)]);
    }
    let map = match raw {
        None => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::new(
                TrpcCode::BadRequest,
                "Batch input must be an object keyed by index",
            ))
        }
    };
    Ok((0..calls)
        .map(|i| map.get(&i.to_string()).cloned().unwrap_or(Value::Null))
        .collect())
}

/// A batch holds at most `max_batch_calls` calls, and never queries and mutations together.
fn check_batch(state: &HttpState, paths: &[String], batch: bool) -> Result<(), ApiError> {
    if !batch {
        return Ok(());
    }
    // One request does a bounded amount of work: the rate limit counts calls, this bounds
    // how many one request may carry.
    if paths.len() > state.limits.max_batch_calls {
        return Err(ApiError::new(
            TrpcCode::BadRequest,
            format!(
                "A batch may hold at most {} calls",
                state.limits.max_batch_calls
            ),
        ));
    }
    let kinds: Vec<Kind> = paths
        .iter()
        .filter_map(|p| state.registry.procedures.get(p.as_str()).map(|pr| pr.kind))
        .collect();
    if kinds.iter().any(|k| Some(k) != kinds.first()) {
        return Err(ApiError::new(
            TrpcCode::BadRequest,
            "Cannot mix queries and mutations in one batch",
        ));
    }
    Ok(())
}

/// The request's server, bearer token, caller and client address.
async fn request_context(svc: &Arc<Services>, req: &HttpRequest) -> Result<Rc<Ctx>, ApiError> {
    let server = request_server(svc, req).await?;
    let bearer = bearer(req);
    let caller = match &bearer {
        Some(token) => authenticate(svc, &server, token).await?,
        None => None,
    };
    let ip = client_ip(req, &svc.settings.rate_limits);
    Ok(Rc::new(Ctx {
        svc: svc.clone(),
        server,
        caller,
        bearer,
        ip,
    }))
}

/// Runs the calls in order, with the bytes their answers take. Each call takes from its
/// rate-limit buckets before anything else about it is checked. The answers together may
/// not pass `max_response_bytes`: once they do, the call that passed it and every later one
/// get 413 instead of being run (memory stays bounded).
async fn run_calls(
    state: &HttpState,
    ctx: &Rc<Ctx>,
    paths: &[String],
    kind: Kind,
    inputs: Vec<Value>,
) -> (Vec<Result<String, ApiError>>, usize) {
    let budget = state.limits.max_response_bytes;
    let mut spent = 0usize;
    let mut results = Vec::with_capacity(paths.len());
    for (path, input) in paths.iter().zip(inputs) {
        if spent > budget {
            results.push(Err(response_too_large(budget)));
            continue;
        }
        let limited =
            rate_limit::check_call(&ctx.svc, ctx.server.id, ctx.caller.as_ref(), ctx.ip, path)
                .await;
        let result = match limited {
            Ok(()) => call(&state.registry, ctx, path, kind, input).await,
            Err(e) => Err(e.into()),
        };
        results.push(match result {
            Ok(data) => {
                spent += data.len();
                if spent > budget {
                    Err(response_too_large(budget))
                } else {
                    Ok(data)
                }
            }
            Err(e) => Err(e),
        });
    }
    (results, spent)
}

/// The answer to a single call.
fn single_response(mut results: Vec<Result<String, ApiError>>, path: &str) -> HttpResponse {
    match results.pop() {
        Some(Ok(data)) => json_text_response(StatusCode::OK, success_text(&data)),
        Some(Err(e)) => error_response(&e, path),
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// The answer to a batch: an array of envelopes, with the calls' common status or 207, and
/// the longest `Retry-After` of its limited calls.
fn batch_response(
    results: Vec<Result<String, ApiError>>,
    paths: &[String],
    spent: usize,
) -> HttpResponse {
    let statuses: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().map_or_else(|e| e.code.http_status(), |_| 200))
        .collect();
    let status = if statuses.windows(2).all(|w| w[0] == w[1]) {
        statuses.first().copied().unwrap_or(200)
    } else {
        207
    };
    let mut body = String::with_capacity(spent + 64 * results.len() + 2);
    body.push('[');
    for (i, (r, p)) in results.iter().zip(paths).enumerate() {
        if i > 0 {
            body.push(',');
        }
        match r {
            Ok(data) => body.push_str(&success_text(data)),
            Err(e) => body.push_str(&e.envelope(p).to_string()),
        }
    }
    body.push(']');
    let mut resp = json_text_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
    // A batch with limited calls waits for the longest of them.
    if let Some(secs) = results
        .iter()
        .filter_map(|r| r.as_ref().err().and_then(|e| e.retry_after))
        .max()
    {
        set_retry_after(&mut resp, secs);
    }
    resp
}

/// 413 for a call whose answer would take the response past `budget` bytes.
fn response_too_large(budget: usize) -> ApiError {
    ApiError {
        ecto: Some(ecto_core::EctoCode::PayloadTooLarge),
        ..ApiError::new(
            TrpcCode::PayloadTooLarge,
            format!("The response would exceed {budget} bytes; ask for less, or split the batch"),
        )
    }
}

async fn call(
    registry: &Registry,
    ctx: &Rc<Ctx>,
    path: &str,
    kind: Kind,
    input: Value,
) -> Result<String, ApiError> {
    let Some(procedure) = registry.procedures.get(path) else {
        return Err(ApiError::new(
            TrpcCode::NotFound,
            format!("No procedure found on path \"{path}\""),
        ));
    };
    if procedure.kind != kind {
        let expected = match procedure.kind {
            Kind::Query => "GET",
            Kind::Mutation => "POST",
        };
        return Err(ApiError::new(
            TrpcCode::MethodNotSupported,
            format!("Unsupported method for \"{path}\"; use {expected}"),
        ));
    }
    if procedure.access == Access::Protected && ctx.caller.is_none() {
        return Err(ApiError::new(
            TrpcCode::Unauthorized,
            "Authentication required",
        ));
    }
    (procedure.handler)(ctx.clone(), input).await
}

/// A tRPC NOT_FOUND for any path outside the routes (the reference's fall-through).
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_start_matches('/').to_owned();
    let mut resp = error_response(
        &ApiError::new(
            TrpcCode::NotFound,
            format!("No procedure found on path \"{path}\""),
        ),
        &path,
    );
    describe(&mut resp, Some("unknown"), Vec::new());
    resp
}
