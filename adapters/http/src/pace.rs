//! Slow request bodies. actix-web times out a request's head but not its body: a client could
//! announce a body and trickle it a byte at a time, holding a connection (and, for an upload,
//! a blob write) for as long as it likes. Every request body is therefore paced: it must not
//! go silent for longer than `idle`, and after that first period it must average `min_rate`
//! bytes a second. A body that falls behind ends with a timed-out read, which the routes
//! answer with 408 (see [`too_slow`]); actix then closes the connection, since the body was
//! not read to its end. WebSocket upgrades are not paced: their "body" is the socket.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How fast a request body must come (`REQUEST_BODY_IDLE_MS`, `REQUEST_BODY_MIN_RATE`).
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub idle: Duration,
    /// Bytes a second, on average after the first `idle`; 0 for no rate.
    pub min_rate: u64,
}

impl Default for BodyPace {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(10),
            min_rate: 1024,
        }
    }
}

/// The message of the read error a paced body ends with.
const TOO_SLOW: &str = "request body too slow";

/// Whether a body read failed because the body came too slowly.
pub fn too_slow(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut
        && io.to_string() == TOO_SLOW)
}

/// The middleware: wraps the body of every request that has one (not upgrades).
pub async fn pace(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body && !headers.contains_key(header::UPGRADE) {
        let pace = req
            .app_data::<web::Data<crate::HttpState>>()
            .map(|s| s.body_pace)
            .unwrap_or_default();
        let inner = req.take_payload();
        let paced: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(Paced::new(inner, pace));
        req.set_payload(Payload::from(paced));
    }
    next.call(req).await
}

struct Paced {
    inner: Payload,
    pace: BodyPace,
    started: Instant,
    last: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
    ended: bool,
}

impl Paced {
    fn new(inner: Payload, pace: BodyPace) -> Self {
        let now = Instant::now();
        Self {
            inner,
            pace,
            started: now,
            last: now,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(now + pace.idle)),
            ended: false,
        }
    }

    /// When the body is too late: `idle` after the last chunk, or when the bytes received so
    /// far fall below `min_rate` after the first `idle`.
    fn deadline(&self) -> Instant {
        let silent = self.last + self.pace.idle;
        if self.pace.min_rate == 0 {
            return silent;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.pace.min_rate as f64);
        silent.min(self.started + self.pace.idle + earned)
    }
}

impl Stream for Paced {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                self.last = Instant::now();
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(other) => return Poll::Ready(other),
            Poll::Pending => {}
        }
        let deadline = self.deadline();
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.ended = true;
                metrics::counter!("ecto_http_slow_bodies_total").increment(1);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    TOO_SLOW,
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
