//! The streaming upload pipeline and the upload routes (reference §2.6, DECISIONS §3.11,
//! §3.12, §3.17).
//!
//! Every upload route is the same three steps:
//!
//! 1. [`authenticate`]: the bearer token of a member of the request's server (401 / 403),
//!    then the route's own permission checks, before any of the body is read;
//! 2. [`receive`] with an [`UploadSpec`]: the per-file limit, whether only images are
//!    accepted, the quota left, and a [`KeyFn`] that builds the storage key once the file part
//!    starts (from ids, the form fields sent before the file, and the sanitized name). It
//!    refuses a `Content-Length` over the limit before reading anything, parses the
//!    multipart body as a stream and pipes the file part straight into
//!    [`BlobStore::put`](ecto_core::ports::BlobStore::put), which cuts it off past the limit;
//! 3. the route records what was stored; if that fails it calls [`Received::discard`].
//!
//! Errors are `{"error": message}` with the status of DECISIONS §3.11.

use crate::error::ApiError;
use crate::server::HttpState;
use crate::trpc::{bearer, request_server};
use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use ecto_core::model::Server;
use ecto_core::ports::{BlobKey, ByteStream};
use ecto_core::usecases::base::file_names::{self, ImageKind};
use ecto_core::usecases::files::{self, StoredUpload};
use ecto_core::usecases::server_admin::{self, ServerImage};
use ecto_core::usecases::{authenticate as authenticate_token, Caller};
use ecto_core::{CoreError, ErrorKind, Services};
use futures_util::future::{Either, LocalBoxFuture};
use futures_util::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// Room for the multipart framing and the form fields on top of the file's own limit when a
/// `Content-Length` is checked up front.
pub const FORM_OVERHEAD: u64 = 64 * 1024;
/// Largest text field of an upload form.
const MAX_FIELD_BYTES: usize = 4096;
/// Most text fields an upload form may carry.
const MAX_FIELDS: usize = 16;

/// An upload refused or failed: a status and a message safe to show.
///
/// When it is refused before the whole body was read, the error keeps the unread request
/// body ([`UploadError::keeping`]) until its answer has been sent: actix then closes the
/// connection (after at most its one-second linger) instead of draining a chunked body to its
/// end.
pub struct UploadError {
    pub status: StatusCode,
    pub message: String,
    unread: Option<Box<dyn std::any::Any>>,
}

impl std::fmt::Debug for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadError")
            .field("status", &self.status)
            .field("message", &self.message)
            .finish()
    }
}

/// A response body that holds the unread request body until it is dropped.
struct HoldingBody {
    chunk: Option<Bytes>,
    _unread: Box<dyn std::any::Any>,
}

impl futures_util::Stream for HoldingBody {
    type Item = Result<Bytes, actix_web::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.chunk.take().map(Ok))
    }
}

impl UploadError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            unread: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Keeps `unread` (the request's payload, or what reads it) until the answer is sent.
    pub fn keeping(mut self, unread: impl std::any::Any) -> Self {
        self.unread = Some(Box::new(unread));
        self
    }

    /// The `{"error": message}` answer.
    pub fn response(self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        let Some(unread) = self.unread else {
            return resp.json(json!({ "error": self.message }));
        };
        let body = Bytes::from(json!({ "error": self.message }).to_string());
        resp.content_type("application/json")
            .body(actix_web::body::SizedStream::new(
                body.len() as u64,
                HoldingBody {
                    chunk: Some(body),
                    _unread: unread,
                },
            ))
    }
}

impl From<CoreError> for UploadError {
    fn from(e: CoreError) -> Self {
        let api = ApiError::from(e);
        let status = StatusCode::from_u16(api.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // ApiError already logged the cause.
            return Self::new(status, "Upload failed");
        }
        Self::new(status, api.message)
    }
}

/// Who is uploading: the request's server and a member of it.
#[derive(Clone)]
pub struct Uploader {
    pub server: Server,
    pub caller: Caller,
}

/// The request's server and the bearer token's member: 401 without a valid token, 403 for a
/// token of someone who is not a member.
pub async fn authenticate(req: &HttpRequest, state: &HttpState) -> Result<Uploader, UploadError> {
    let svc = &state.services;
    let server = request_server(svc, req).await?;
    let unauthorized = || UploadError::new(StatusCode::UNAUTHORIZED, "Unauthorized");
    let token = bearer(req).ok_or_else(unauthorized)?;
    let caller = authenticate_token(svc, &server, &token)
        .await?
        .ok_or_else(unauthorized)?;
    caller.require_member()?;
    Ok(Uploader { server, caller })
}

/// What is known when the file part starts.
#[derive(Debug, Clone)]
pub struct FileStart {
    /// The text fields sent before the file, trimmed.
    pub fields: HashMap<String, String>,
    /// The sanitized display name ([`file_names::display_name`]).
    pub filename: String,
    /// The content type that will be stored ([`file_names::stored_content_type`]).
    pub content_type: String,
    /// The image format of the bytes, if they are a PNG, JPEG, GIF or WebP image.
    pub image: Option<ImageKind>,
}

/// Builds the storage key of the file once it starts (and may refuse it, e.g. for a missing
/// form field or a permission that depends on one). Keys must come from ids and
/// [`file_names::key_name`] only; see the key builders of [`file_names`].
pub type KeyFn =
    Box<dyn FnOnce(FileStart) -> LocalBoxFuture<'static, Result<BlobKey, UploadError>>>;

/// How one route accepts its file.
pub struct UploadSpec {
    /// Largest file accepted, in bytes.
    pub limit: u64,
    /// The 413 message for a file over `limit`.
    pub too_large: String,
    /// Accept only PNG, JPEG, GIF or WebP bytes (415 otherwise), whatever the declared type.
    pub image_only: bool,
    /// Bytes left under `STORAGE_QUOTA_BYTES` for non-image files; `None` when the route's
    /// files do not count or there is no quota.
    pub quota_left: Option<u64>,
    pub key: KeyFn,
}

/// A file the pipeline stored.
#[derive(Debug)]
pub struct Received {
    pub key: BlobKey,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub image: Option<ImageKind>,
    /// Every text field of the form (before and after the file).
    pub fields: HashMap<String, String>,
}

impl Received {
    /// Deletes the stored blob (when the route cannot record it).
    pub async fn discard(&self, svc: &Services) {
        if let Err(e) = svc.blobs.delete(&self.key).await {
            tracing::warn!(error = %e, key = self.key.as_str(), "could not delete a discarded upload");
        }
    }
}

fn malformed() -> UploadError {
    UploadError::bad_request("Malformed multipart body")
}

/// A failed read of the multipart body: 408 when it came too slowly (see `pace`), else 400.
fn unreadable(e: &actix_multipart::MultipartError) -> UploadError {
    match e {
        actix_multipart::MultipartError::Payload(p) if crate::pace::too_slow(p) => {
            UploadError::new(StatusCode::REQUEST_TIMEOUT, "Request body too slow")
        }
        _ => malformed(),
    }
}

fn too_large(message: &str) -> UploadError {
    UploadError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// The `Content-Length` the client declared, if any.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn read_field(field: &mut actix_multipart::Field) -> Result<String, UploadError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| unreadable(&e))?;
        if buf.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(too_large("Form field too large"));
        }
        buf.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(buf.to_vec())
        .map_err(|_| UploadError::bad_request("Form fields must be UTF-8"))?;
    Ok(text.trim().to_owned())
}

/// Reads the file part's first bytes (enough to recognise an image); `true` when that was
/// the whole part (a finished field must not be polled again).
async fn read_head(field: &mut actix_multipart::Field) -> Result<(Bytes, bool), UploadError> {
    let mut head = BytesMut::new();
    while head.len() < file_names::SNIFF_BYTES {
        match field.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(unreadable(&e)),
            None => return Ok((head.freeze(), true)),
        }
    }
    Ok((head.freeze(), false))
}

/// Pipes `head` and the rest of `field` into the blob store under `key`; the store stops the
/// write past `limit`. Nothing is buffered beyond a few chunks.
async fn pipe(
    svc: &Services,
    key: &BlobKey,
    field: &mut actix_multipart::Field,
    head: Bytes,
    finished: bool,
    limit: u64,
    content_type: &str,
) -> Result<u64, (CoreError, Result<(), UploadError>)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let put = std::pin::pin!(svc.blobs.put(key, body, limit, content_type));
    // The field is not `Send`, so it is read here and its chunks are passed through a small
    // channel to the store's (Send) body stream.
    let pump = std::pin::pin!(async move {
        if !head.is_empty() && tx.send(Ok(head)).await.is_err() {
            return Ok(());
        }
        if finished {
            return Ok(());
        }
        while let Some(chunk) = field.next().await {
            match chunk {
                Ok(c) => {
                    if tx.send(Ok(c)).await.is_err() {
                        return Ok(());
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return Err(unreadable(&e));
                }
            }
        }
        Ok(())
    });
    let stored = match futures_util::future::select(put, pump).await {
        // The store finished first (done, or refused the body): stop reading.
        Either::Left((result, _)) => result.map_err(|e| (e, Ok(()))),
        Either::Right((body, put)) => put.await.map_err(|e| (e, body)),
    };
    if let Ok(bytes) = stored {
        metrics::counter!("ecto_uploads_total").increment(1);
        metrics::counter!("ecto_upload_bytes_total").increment(bytes);
    }
    stored
}

/// Runs the pipeline for one upload request; see the module docs.
pub async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    state: &HttpState,
    spec: UploadSpec,
) -> Result<Received, UploadError> {
    let svc = &state.services;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Err(UploadError::bad_request("Expected multipart/form-data").keeping(payload));
    }
    // Refused before a byte of the body is read.
    if declared_length(req).is_some_and(|n| n > spec.limit.saturating_add(FORM_OVERHEAD)) {
        return Err(too_large(&spec.too_large).keeping(payload));
    }
    let mut form = Multipart::new(req.headers(), payload);
    let mut fields = HashMap::new();
    let mut key_fn = Some(spec.key);
    let mut stored: Option<Received> = None;
    let result = async {
        while let Some(part) = form.next().await {
            let mut field = part.map_err(|e| unreadable(&e))?;
            // `filename`, or else RFC 5987's `filename*`.
            let filename = field.content_disposition().and_then(|cd| {
                cd.get_filename().map(str::to_owned).or_else(|| {
                    cd.get_filename_ext()
                        .map(|ext| String::from_utf8_lossy(&ext.value).into_owned())
                })
            });
            let Some(raw_name) = filename else {
                let name = field.name().unwrap_or("").to_owned();
                let value = read_field(&mut field).await?;
                if fields.len() >= MAX_FIELDS {
                    return Err(UploadError::bad_request("Too many form fields"));
                }
                fields.insert(name, value);
                continue;
            };
            let Some(key_fn) = key_fn.take() else {
                return Err(UploadError::bad_request("Only one file per upload"));
            };
            let declared = file_names::content_type(field.content_type().map(|m| m.essence_str()));
            let (head, finished) = read_head(&mut field).await?;
            let image = file_names::sniff_image(&head);
            if spec.image_only && image.is_none() {
                return Err(UploadError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "File must be a PNG, JPEG, GIF or WebP image",
                ));
            }
            let content_type = file_names::stored_content_type(&declared, &head);
            let mut limit = spec.limit;
            let mut quota_bound = false;
            if let (Some(left), None) = (spec.quota_left, image) {
                if left == 0 {
                    return Err(files::quota_exceeded(svc).into());
                }
                if left < limit {
                    limit = left;
                    quota_bound = true;
                }
            }
            let start = FileStart {
                fields: fields.clone(),
                filename: file_names::display_name(&raw_name),
                content_type: content_type.clone(),
                image,
            };
            let filename = start.filename.clone();
            let key = key_fn(start).await?;
            let size = match pipe(svc, &key, &mut field, head, finished, limit, &content_type).await
            {
                Ok(n) => n,
                Err((e, _)) if e.kind == ErrorKind::PayloadTooLarge => {
                    return Err(if quota_bound {
                        files::quota_exceeded(svc).into()
                    } else {
                        too_large(&spec.too_large)
                    });
                }
                // The client's body broke off, came too slowly or was not valid multipart.
                Err((_, Err(body))) => return Err(body),
                Err((e, Ok(()))) => return Err(e.into()),
            };
            stored = Some(Received {
                key,
                filename,
                content_type,
                size,
                image,
                fields: HashMap::new(),
            });
        }
        Ok(())
    }
    .await;
    match (result, stored) {
        (Ok(()), Some(mut received)) => {
            received.fields = fields;
            Ok(received)
        }
        (Ok(()), None) => Err(UploadError::bad_request("No file provided")),
        (Err(e), stored) => {
            if let Some(received) = stored {
                received.discard(svc).await;
            }
            Err(e.keeping(form))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

fn parse_channel_id(raw: Option<&str>) -> Result<Uuid, UploadError> {
    let raw = raw
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UploadError::bad_request("channel_id required"))?;
    ecto_core::parse_id(raw).ok_or_else(|| UploadError::bad_request("channel_id must be a UUID"))
}

async fn channel_or_dm(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
    query: HashMap<String, String>,
    dm: bool,
) -> Result<HttpResponse, UploadError> {
    let svc = state.services.clone();
    // Everything checked before the body is read.
    let checks = async {
        let up = authenticate(&req, &state).await?;
        // A channel given in the query string is checked up front too.
        let query_channel = match query.get("channel_id") {
            Some(raw) if !dm => {
                let id = parse_channel_id(Some(raw))?;
                files::authorize_channel_upload(&svc, &up.server, &up.caller, id).await?;
                Some(id)
            }
            _ => None,
        };
        if dm {
            files::authorize_dm_upload(&up.caller)?;
        }
        let limit = files::upload_limit(&svc, &up.server).await?;
        let quota_left = files::quota_left(&svc, &up.server).await?;
        Ok::<_, UploadError>((up, query_channel, limit, quota_left))
    };
    let (up, query_channel, limit, quota_left) = match checks.await {
        Ok(v) => v,
        Err(e) => return Err(e.keeping(payload)),
    };
    let id = Uuid::now_v7();
    let channel_cell = std::rc::Rc::new(std::cell::Cell::new(query_channel));
    let key: KeyFn = {
        let (svc, up, channel_cell) = (svc.clone(), up.clone(), channel_cell.clone());
        Box::new(move |start: FileStart| {
            Box::pin(async move {
                if dm {
                    return Ok(file_names::dm_key(up.server.id, id, &start.filename)?);
                }
                let channel = match channel_cell.get() {
                    Some(c) => c,
                    None => {
                        let c =
                            parse_channel_id(start.fields.get("channel_id").map(|s| s.as_str()))?;
                        files::authorize_channel_upload(&svc, &up.server, &up.caller, c).await?;
                        channel_cell.set(Some(c));
                        c
                    }
                };
                Ok(file_names::channel_key(
                    up.server.id,
                    channel,
                    id,
                    &start.filename,
                )?)
            })
        })
    };
    let spec = UploadSpec {
        limit,
        too_large: "File too large".into(),
        image_only: false,
        quota_left,
        key,
    };
    let received = receive(&req, payload, &state, spec).await?;
    let upload = StoredUpload {
        id,
        channel_id: channel_cell.get(),
        filename: received.filename.clone(),
        key: received.key.clone(),
        content_type: received.content_type.clone(),
        size: received.size,
    };
    match files::record_attachment(&svc, &up.server, &up.caller, upload).await {
        Ok(attachment) => Ok(HttpResponse::Ok().json(attachment)),
        Err(e) => {
            received.discard(&svc).await;
            Err(e.into())
        }
    }
}

/// `POST /upload`: a file for a channel (ATTACH_FILES). The `channel_id` form field must come
/// before the file part (or be given as `?channel_id=`).
pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<HttpState>,
) -> HttpResponse {
    channel_or_dm(req, payload, state, query.into_inner(), false)
        .await
        .unwrap_or_else(|e| e.response())
}

/// `POST /upload/dm`: a file for a server DM (members only).
pub async fn upload_dm(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    channel_or_dm(req, payload, state, HashMap::new(), true)
        .await
        .unwrap_or_else(|e| e.response())
}

/// The absolute URL of `path` on this request's host (`X-Forwarded-Proto` honoured).
pub(crate) fn absolute_url(req: &HttpRequest, path: &str) -> String {
    let info = req.connection_info();
    format!("{}://{}{path}", info.scheme(), info.host())
}

async fn server_image(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
    which: ServerImage,
) -> Result<HttpResponse, UploadError> {
    let svc = state.services.clone();
    let checks = async {
        let up = authenticate(&req, &state).await?;
        files::authorize_server_image(&svc, &up.server, &up.caller).await?;
        Ok::<_, UploadError>(up)
    };
    let up = match checks.await {
        Ok(up) => up,
        Err(e) => return Err(e.keeping(payload)),
    };
    let (limit, message, folder, prefix, field) = match which {
        ServerImage::Icon => (
            files::ICON_MAX_BYTES,
            "Icon must be under 2MB",
            "icons",
            "icon",
            "icon_url",
        ),
        ServerImage::Banner => (
            files::BANNER_MAX_BYTES,
            "Banner must be under 800KB",
            "banners",
            "banner",
            "banner_url",
        ),
    };
    let server_id = up.server.id;
    let spec = UploadSpec {
        limit: files::cap(&svc, limit),
        too_large: message.into(),
        image_only: true,
        quota_left: None,
        key: Box::new(move |start: FileStart| {
            Box::pin(async move {
                let kind = start.image.ok_or_else(|| {
                    UploadError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "File must be an image")
                })?;
                Ok(file_names::image_key(server_id, folder, prefix, kind)?)
            })
        }),
    };
    let received = receive(&req, payload, &state, spec).await?;
    let url = absolute_url(&req, &file_names::file_path(&received.key));
    match server_admin::set_server_image(&svc, &up.server, &up.caller, which, url.clone()).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ field: url }))),
        Err(e) => {
            received.discard(&svc).await;
            Err(e.into())
        }
    }
}

/// `POST /upload/icon` (MANAGE_SERVER): a PNG, JPEG, GIF or WebP of at most 2 MiB.
pub async fn upload_icon(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    server_image(req, payload, state, ServerImage::Icon)
        .await
        .unwrap_or_else(|e| e.response())
}

/// `POST /upload/banner` (MANAGE_SERVER): an image of at most 800 KiB.
pub async fn upload_banner(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    server_image(req, payload, state, ServerImage::Banner)
        .await
        .unwrap_or_else(|e| e.response())
}
