//! `GET`/`HEAD /files/{key}`: serving stored files to those allowed to see them (DECISIONS
//! §3.12, §3.23).
//!
//! Server icons and banners are public. An attachment needs either a valid signature
//! (`?exp=&sig=`, as the API hands out) or the bearer token of a member who can read it. The
//! body is streamed from the blob store; `Range` gets 206 or 416. Every answer carries
//! `X-Content-Type-Options: nosniff` and a sandboxing CSP, and anything outside a small list
//! of passive types is sent as a download.

use crate::error::{ApiError, TrpcCode};
use crate::server::HttpState;
use crate::trpc::{bearer, request_server};
use actix_web::body::SizedStream;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::model::Server;
use ecto_core::ports::{resolve_range, BlobKey, ByteRange, ByteStream};
use ecto_core::usecases::base::access;
use ecto_core::usecases::base::{file_names, signing};
use ecto_core::usecases::serving::{self, FileTarget};
use ecto_core::usecases::{authenticate, Caller};
use ecto_core::{ErrorKind, Services};
use futures_util::StreamExt;
use serde_json::json;
use std::collections::HashMap;

const CSP: &str = "sandbox; default-src 'none'";

/// Every refusal of a file goes through the one error mapping (`{"error": message}` with the
/// status of its kind; an internal error is logged there and answered generically).
fn answer(e: ApiError) -> HttpResponse {
    let mut resp = e.plain_response();
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    resp
}

fn error(code: TrpcCode, message: &str) -> HttpResponse {
    answer(ApiError::new(code, message))
}

fn not_found() -> HttpResponse {
    error(TrpcCode::NotFound, "Not found")
}

/// What a `Range` header asks for.
enum RangeAsk {
    /// No usable range: the whole file.
    Whole,
    /// `bytes=a-b` or `bytes=a-`.
    From(ByteRange),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// Parses a single `bytes=` range; anything else (several ranges, other units, bad syntax)
/// is ignored, as RFC 9110 allows.
fn parse_range(req: &HttpRequest) -> RangeAsk {
    let Some(value) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return RangeAsk::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (None, Some(n)) if a.is_empty() => RangeAsk::Suffix(n),
        (Some(start), None) if b.is_empty() => RangeAsk::From(ByteRange { start, end: None }),
        (Some(start), Some(end)) if end >= start => RangeAsk::From(ByteRange {
            start,
            end: Some(end),
        }),
        _ => RangeAsk::Whole,
    }
}

fn unsatisfiable(size: u64) -> HttpResponse {
    HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
        .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .json(json!({ "error": "Requested range not satisfiable" }))
}

/// Whether the request may read `target`: `Ok(())`, or the answer to send instead.
async fn allowed(
    svc: &Services,
    req: &HttpRequest,
    server: &ecto_core::model::Server,
    path: &str,
    target: &FileTarget,
    query: &HashMap<String, String>,
) -> Result<(), HttpResponse> {
    if let FileTarget::Shared(f) = target {
        return shared_allowed(svc, req, server, path, f, query).await;
    }
    let FileTarget::Attachment(a) = target else {
        return Ok(());
    };
    if let (Some(exp), Some(sig)) = (query.get("exp"), query.get("sig")) {
        if signing::signature_valid(svc, path, exp, sig) {
            return Ok(());
        }
    }
    let Some(token) = bearer(req) else {
        return Err(error(TrpcCode::Unauthorized, "Unauthorized"));
    };
    let caller = authenticated_member(svc, server, &token).await?;
    match access::attachment_readable(svc, server, &caller, a).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(error(TrpcCode::Forbidden, "Forbidden")),
        Err(e) => Err(internal(e)),
    }
}

/// A shared hub file: a valid signature, or the token of a member with BROWSE_FILES on it.
async fn shared_allowed(
    svc: &Services,
    req: &HttpRequest,
    server: &ecto_core::model::Server,
    path: &str,
    file: &ecto_core::model::SharedFileRecord,
    query: &HashMap<String, String>,
) -> Result<(), HttpResponse> {
    if let (Some(exp), Some(sig)) = (query.get("exp"), query.get("sig")) {
        if signing::signature_valid(svc, path, exp, sig) {
            return Ok(());
        }
    }
    let Some(token) = bearer(req) else {
        return Err(error(TrpcCode::Unauthorized, "Unauthorized"));
    };
    let caller = authenticated_member(svc, server, &token).await?;
    match access::hub::shared_file_readable(svc, server, &caller, file).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(error(TrpcCode::Forbidden, "Forbidden")),
        Err(e) => Err(internal(e)),
    }
}

/// The caller `token` proves, who must be a member of `server`: 401 for a token that proves
/// nothing (bad, expired, revoked), 403 with ecto 2002's message for someone who is not (or
/// no longer) a member.
async fn authenticated_member(
    svc: &Services,
    server: &ecto_core::model::Server,
    token: &str,
) -> Result<Caller, HttpResponse> {
    let caller = match authenticate(svc, server, token).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(error(TrpcCode::Unauthorized, "Unauthorized")),
        Err(e) => return Err(internal(e)),
    };
    match caller.require_member() {
        Ok(_) => Ok(caller),
        Err(e) => Err(answer(ApiError::from(e))),
    }
}

fn internal(e: ecto_core::CoreError) -> HttpResponse {
    answer(ApiError::from(e))
}

/// The attachment id of a `/files/{attachment_id}/{filename}` path (two segments, the first
/// an id); storage keys always have three or four segments, so the forms cannot clash.
fn by_attachment_id(tail: &str) -> Option<uuid::Uuid> {
    let (id, name) = tail.split_once('/')?;
    (!name.is_empty() && !name.contains('/'))
        .then(|| ecto_core::parse_id(id))
        .flatten()
}

/// `GET`/`HEAD /files/{key}` and `/files/{attachment_id}/{filename}`: which file, whether the
/// caller may read it, which bytes, then the answer.
pub async fn serve(
    req: HttpRequest,
    tail: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<HttpState>,
) -> HttpResponse {
    let svc = &state.services;
    let server = match request_server(svc, &req).await {
        Ok(s) => s,
        Err(e) if e.kind == ErrorKind::NotFound => return not_found(),
        Err(e) => return internal(e),
    };
    let (key, target, path) = match locate(svc, &server, &tail).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if let Err(resp) = allowed(svc, &req, &server, &path, &target, &query).await {
        return resp;
    }
    let range = match requested_range(svc, &req, &key).await {
        Ok(range) => range,
        Err(resp) => return resp,
    };
    let head_only = req.method() == Method::HEAD;
    match read(svc, &key, &target, range, head_only).await {
        Ok(bytes) => respond(&key, &target, range, bytes),
        Err(resp) => resp,
    }
}

/// The stored key, what it is, and the request path its signature covers.
async fn locate(
    svc: &Services,
    server: &Server,
    tail: &str,
) -> Result<(BlobKey, FileTarget, String), HttpResponse> {
    match by_attachment_id(tail) {
        // `/files/{attachment_id}/{filename}`: the attachment's own key is read.
        Some(id) => match serving::resolve_by_id(svc, server, id).await {
            Ok(Some((key, target))) => Ok((key, target, format!("/files/{tail}"))),
            Ok(None) => Err(not_found()),
            Err(e) => Err(internal(e)),
        },
        None => {
            // Anything outside the key alphabet (`..`, `%`, NUL, `\`, empty segments) names
            // nothing.
            let Ok(key) = BlobKey::new(tail) else {
                return Err(not_found());
            };
            match serving::resolve(svc, server, &key).await {
                Ok(Some(target)) => {
                    let path = file_names::file_path(&key);
                    Ok((key, target, path))
                }
                Ok(None) => Err(not_found()),
                Err(e) => Err(internal(e)),
            }
        }
    }
}

/// The `Range` asked for, resolved against the size when it counts from the end.
async fn requested_range(
    svc: &Services,
    req: &HttpRequest,
    key: &BlobKey,
) -> Result<Option<ByteRange>, HttpResponse> {
    match parse_range(req) {
        RangeAsk::Whole => Ok(None),
        RangeAsk::From(r) => Ok(Some(r)),
        RangeAsk::Suffix(n) => match svc.blobs.size(key).await {
            Ok(Some(size)) if n > 0 && size > 0 => Ok(Some(ByteRange {
                start: size.saturating_sub(n),
                end: None,
            })),
            Ok(Some(size)) => Err(unsatisfiable(size)),
            Ok(None) => Err(not_found()),
            Err(e) => Err(internal(e)),
        },
    }
}

/// What is sent: the blob's size, the first byte and the length, and the body (none for HEAD).
struct Served {
    size: u64,
    start: u64,
    len: u64,
    body: Option<ByteStream>,
}

/// The bytes of `range` (or the whole blob); for HEAD only their position.
async fn read(
    svc: &Services,
    key: &BlobKey,
    target: &FileTarget,
    range: Option<ByteRange>,
    head_only: bool,
) -> Result<Served, HttpResponse> {
    if head_only {
        let size = match svc.blobs.size(key).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(not_found()),
            Err(e) => return Err(internal(e)),
        };
        return match resolve_range(range, size) {
            Ok((start, len)) => Ok(Served {
                size,
                start,
                len,
                body: None,
            }),
            Err(_) => Err(unsatisfiable(size)),
        };
    }
    match svc.blobs.get(key, range, target.known_size()).await {
        Ok(Some(blob)) => Ok(Served {
            size: blob.size,
            start: blob.start,
            len: blob.len,
            body: Some(blob.body),
        }),
        Ok(None) => Err(not_found()),
        Err(e) if e.kind == ErrorKind::BadRequest => Err(match svc.blobs.size(key).await {
            Ok(Some(size)) => unsatisfiable(size),
            Ok(None) => not_found(),
            Err(e) => internal(e),
        }),
        Err(e) => Err(internal(e)),
    }
}

/// The answer: type, name, caching and range headers around the bytes.
fn respond(
    key: &BlobKey,
    target: &FileTarget,
    range: Option<ByteRange>,
    bytes: Served,
) -> HttpResponse {
    let (content_type, filename, public) = match target {
        FileTarget::Public { content_type } => (
            (*content_type).to_owned(),
            key.segments().last().unwrap_or("file").to_owned(),
            true,
        ),
        FileTarget::Attachment(a) => (a.content_type.clone(), a.filename.clone(), false),
        FileTarget::Shared(f) => (f.content_type.clone(), f.filename.clone(), false),
    };
    let Served {
        size,
        start,
        len,
        body,
    } = bytes;
    let inline = file_names::inline_allowed(&content_type);
    let disposition = ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![
            DispositionParam::Filename(file_names::key_name(&filename)),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: filename.into_bytes(),
            }),
        ],
    };
    let mut resp = HttpResponse::build(if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    resp.insert_header((header::CONTENT_TYPE, content_type))
        .insert_header(disposition)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        // Already compressed or ranged: never re-encoded on the way out.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header((
            header::CACHE_CONTROL,
            if public {
                "public, max-age=86400"
            } else {
                "private, max-age=3600"
            },
        ));
    if range.is_some() {
        let last = (start + len).saturating_sub(1);
        resp.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{last}/{size}"),
        ));
    }
    match body {
        Some(body) => resp.body(SizedStream::new(
            len,
            body.map(|chunk| chunk.map_err(actix_web::error::ErrorInternalServerError)),
        )),
        None => resp.body(SizedStream::new(
            len,
            futures_util::stream::empty::<Result<bytes::Bytes, actix_web::Error>>(),
        )),
    }
}
