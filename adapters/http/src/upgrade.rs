//! WebSocket upgrades, answered before the App by actix-http's upgrade hook.
//!
//! actix-http hands a request carrying `Upgrade: websocket` to this hook with its connection
//! (the TCP stream, the bytes read past the head, the write buffer). The gateway decides the
//! answer ([`UpgradeHook`]); this module gives it the request id, counts and logs it as the
//! `observe` middleware does for every other request, writes a refusal and closes, or encodes
//! the 101 and hands the bare stream to the gateway, which reads and writes the socket's
//! frames itself. The HTTP/1 dispatcher and its 8 KiB read and write buffers are gone once a
//! socket is open (heaptrack, 2,000 idle sessions: 16.5 KiB of each session's 24 were those
//! buffers while the socket was served as a streaming request and response).

use crate::observe::{record, request_id, REQUEST_ID};
use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::header::HeaderValue;
use actix_http::{ConnectionType, HttpMessage, Request, Response, StatusCode};
use actix_web::web::BytesMut;
use actix_web::HttpResponse;
use futures_util::future::LocalBoxFuture;
use futures_util::SinkExt;
use std::sync::Arc;
use std::time::Instant;

/// The connection's stream.
pub type Socket = actix_web::rt::net::TcpStream;

/// What serves an accepted socket until it closes, given the stream, what the client sent
/// after its request head (its first frames, if any) and the encoded 101, not yet written
/// (the socket's first write carries it).
pub type RunSocket = Box<dyn FnOnce(Socket, BytesMut, BytesMut) -> LocalBoxFuture<'static, ()>>;

/// The gateway's answer to an upgrade request.
pub struct UpgradeAnswer {
    /// The route it is counted under (`/ws`).
    pub route: &'static str,
    /// The answer: 101 with `run`, or a refusal.
    pub response: HttpResponse,
    /// With a 101: what serves the socket.
    pub run: Option<RunSocket>,
}

/// Answers WebSocket upgrade requests; `None` for a path it does not serve (404).
pub type UpgradeHook = Arc<dyn Fn(&Request) -> Option<UpgradeAnswer> + Send + Sync>;

/// The upgrade service: answers `req` through `framed`, then serves the socket if accepted.
pub(crate) async fn answer(
    hook: Option<UpgradeHook>,
    req: Request,
    mut framed: Framed<Socket, h1::Codec>,
) -> Result<(), actix_http::Error> {
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let answer = hook.as_ref().and_then(|h| span.in_scope(|| h(&req)));
    let (route, response, run) = match answer {
        Some(a) => (a.route, a.response, a.run),
        None => (
            "unmatched",
            HttpResponse::NotFound().json(serde_json::json!({ "error": "Not found" })),
            None,
        ),
    };
    let mut res: Response<BoxBody> = response.into();
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let status = res.status();
    record(
        &span,
        req.method(),
        route,
        status.as_u16(),
        &[],
        &[],
        started.elapsed(),
    );
    // The request's head and header values point into the connection's 8 KiB read buffer,
    // and its head is one of actix-http's pooled heads (heaptrack, 2,000 idle sockets: 15 KiB
    // per socket while a socket's task kept them).
    drop(req);
    let (mut head, body) = res.into_parts();
    match run {
        Some(run) if status == StatusCode::SWITCHING_PROTOCOLS => {
            // Encoded only: the gateway's first write sends it with the socket's first frames.
            if framed
                .feed(Message::Item((head, BodySize::None)))
                .await
                .is_ok()
            {
                let parts = framed.into_parts();
                run(parts.io, parts.read_buf, parts.write_buf).await;
            }
        }
        _ => {
            head.head_mut().set_connection_type(ConnectionType::Close);
            let body: actix_web::web::Bytes = body.try_into_bytes().unwrap_or_default();
            let size = BodySize::Sized(body.len() as u64);
            if framed.feed(Message::Item((head, size))).await.is_ok() {
                let _ = framed.send(Message::Chunk(Some(body))).await;
            }
        }
    }
    Ok(())
}
