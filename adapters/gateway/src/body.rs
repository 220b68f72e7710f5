//! A `/ws` socket's outbox: the queue of its outbound messages and the response body that
//! writes them.
//!
//! The dispatcher pushes a delivered frame straight into the outbox of each socket it
//! reaches, and wakes only the HTTP/1 dispatcher's task, which polls the body: everything
//! queued by then is encoded into one buffer and written in one go. The connection's own task
//! is not in the delivery path (perf, fan-out of 1,000 sockets: a hop through the
//! connection's task and actix-ws's session channel cost two task polls and a cross-runtime
//! wake per delivery).
//!
//! The body hands the dispatcher pieces of at most [`PIECE_BYTES`]: the dispatcher copies
//! each piece into its write buffer and keeps that buffer, at the largest size it ever
//! reached, for the life of the connection; small pieces, with the dispatcher flushing at
//! the same size (`ecto_http::serve`), keep it at a few KiB (heaptrack: a large
//! `system.ready` written whole left 30 KiB of a 50 KiB session in it).
//!
//! While a session is being set up (`system.ready`, a resume's replay) frames the dispatcher
//! delivers are held back, and follow once the connection [releases](Outbox::release) them:
//! the client sees `system.ready` or `system.resumed` first.

use actix_http::ws::{OpCode, Parser};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_ws::CloseReason;
use bytestring::ByteString;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::Notify;

/// The largest piece handed to the dispatcher at once.
pub const PIECE_BYTES: usize = 4096;

/// Control frames carry at most 125 bytes (RFC 6455 §5.5); a close's reason 123.
const CONTROL_MAX: usize = 125;

/// The socket is gone (its body dropped) or closing: nothing more can be sent.
#[derive(Debug)]
pub(crate) struct Closed;

/// One outbound message: what a server sends on `/ws`.
enum Message {
    Text(ByteString),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

#[derive(Default)]
struct State {
    /// What the body writes next, in order.
    queue: VecDeque<Message>,
    /// Frames delivered while the session is being set up.
    held: VecDeque<Message>,
    holding: bool,
    /// A close frame is queued: nothing follows it.
    closing: bool,
    /// The connection's task ended: the body ends once the queue is written.
    ended: bool,
    /// The body was dropped (the connection is gone).
    gone: bool,
    waker: Option<Waker>,
}

/// The queue shared by the connection's task, the dispatcher and the body.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Messages queued (and held) at most before [`Outbox::try_send`] refuses.
    capacity: usize,
    /// Signalled when the body took the queue (room for [`Ws::text`]) or went away.
    room: Notify,
    /// The waker of the worker thread the connection lives on, for the dispatcher's wakes.
    hub: Option<Arc<Hub>>,
}

/// Wakes, on one worker thread, the bodies the dispatcher (on another thread) gave frames.
///
/// Waking a task of another runtime wakes that runtime's thread (an eventfd write) every
/// time: for one event reaching 1,000 sockets, up to 1,000 system calls (perf stat: 0.43
/// `write` per delivery). Through the hub it is one per worker thread and batch; the hub's
/// task wakes the bodies on their own thread, which costs no system call.
///
/// After waking a batch the hub waits `delay` (`ws_write_delay_ms`) before the next: what
/// the dispatcher delivers meanwhile is written with it, one `send` per socket for several
/// events. Each `send` costs far more than the frame in it (perf: the TCP send path was three
/// quarters of the server's CPU in a fan-out). An event after a quiet moment is written at
/// once; under a steady stream an event waits at most `delay`.
pub(crate) struct Hub {
    pending: Mutex<Vec<Waker>>,
    signal: Notify,
    delay: Duration,
}

impl Hub {
    /// The hub of this worker thread, started on first use.
    fn local(delay: Duration) -> Option<Arc<Hub>> {
        thread_local! {
            static HUB: std::cell::RefCell<Option<Arc<Hub>>> = const { std::cell::RefCell::new(None) };
        }
        // Only on a thread that runs local tasks (an HTTP worker).
        tokio::runtime::Handle::try_current().ok()?;
        Some(HUB.with(|h| {
            h.borrow_mut()
                .get_or_insert_with(|| {
                    let hub = Arc::new(Hub {
                        pending: Mutex::new(Vec::new()),
                        signal: Notify::new(),
                        delay,
                    });
                    actix_web::rt::spawn(hub.clone().run());
                    hub
                })
                .clone()
        }))
    }

    fn wake(&self, waker: Waker) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let first = pending.is_empty();
        pending.push(waker);
        drop(pending);
        if first {
            self.signal.notify_one();
        }
    }

    async fn run(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.signal.notified().await;
            std::mem::swap(
                &mut batch,
                &mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()),
            );
            for w in batch.drain(..) {
                w.wake();
            }
            if batch.capacity() > 4096 {
                batch = Vec::new();
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
        }
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the body, if it waits, once `state` is unlocked: through the worker's hub when
    /// `from_afar` (the dispatcher's thread), directly otherwise (the connection's own thread).
    fn wake_body(&self, mut state: MutexGuard<'_, State>, from_afar: bool) {
        let waker = state.waker.take();
        drop(state);
        match (waker, &self.hub) {
            (Some(w), Some(hub)) if from_afar => hub.wake(w),
            (Some(w), _) => w.wake(),
            (None, _) => {}
        }
    }

    /// Queues a dispatched frame unless the queue is full or the socket closing; held while
    /// the session is being set up. Never waits (the dispatcher calls it with locks held).
    pub(crate) fn try_send(&self, text: ByteString) -> Result<(), Closed> {
        let mut state = self.lock();
        if state.closing || state.gone || state.queue.len() + state.held.len() >= self.capacity {
            return Err(Closed);
        }
        if state.holding {
            state.held.push_back(Message::Text(text));
            return Ok(());
        }
        state.queue.push_back(Message::Text(text));
        self.wake_body(state, true);
        Ok(())
    }

    /// Queues `message` ahead of any held frames; gives it back when the queue is full
    /// (`force`, for control frames, ignores the capacity).
    fn push(&self, message: Message, force: bool) -> Result<Option<Message>, Closed> {
        let mut state = self.lock();
        if state.closing || state.gone {
            return Err(Closed);
        }
        if !force && state.queue.len() >= self.capacity {
            return Ok(Some(message));
        }
        if matches!(message, Message::Close(_)) {
            state.closing = true;
            state.held = VecDeque::new();
            state.holding = false;
        }
        state.queue.push_back(message);
        self.wake_body(state, false);
        Ok(None)
    }

    /// Holds dispatched frames back until [`Outbox::release`].
    pub(crate) fn hold(&self) {
        self.lock().holding = true;
    }

    /// Sends the held frames, after what the connection queued meanwhile.
    pub(crate) fn release(&self) {
        let mut state = self.lock();
        state.holding = false;
        let held = std::mem::take(&mut state.held);
        state.queue.extend(held);
        self.wake_body(state, false);
    }

    /// Drops the held frames and stops holding (a session that was not set up after all).
    pub(crate) fn discard(&self) {
        let mut state = self.lock();
        state.holding = false;
        state.held = VecDeque::new();
    }
}

/// The connection task's end of the outbox (what `actix_ws::Session` was for `/ws`).
pub(crate) struct Ws {
    outbox: Arc<Outbox>,
}

impl Ws {
    /// Queues a text message, waiting while the queue is full.
    pub(crate) async fn text(&mut self, text: impl Into<ByteString>) -> Result<(), Closed> {
        let mut message = Message::Text(text.into());
        loop {
            let room = self.outbox.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.outbox.push(message, false)? {
                None => return Ok(()),
                Some(back) => message = back,
            }
            room.await;
        }
    }

    /// Answers a ping.
    pub(crate) async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        let payload = Bytes::copy_from_slice(&payload[..payload.len().min(CONTROL_MAX)]);
        self.outbox.push(Message::Pong(payload), true).map(drop)
    }

    /// Queues the close frame; the body ends after writing it.
    pub(crate) async fn close(self, reason: Option<CloseReason>) -> Result<(), Closed> {
        let reason = reason.map(|mut r| {
            if let Some(d) = r.description.as_mut() {
                let mut end = d.len().min(CONTROL_MAX - 2);
                while !d.is_char_boundary(end) {
                    end -= 1;
                }
                d.truncate(end);
            }
            r
        });
        self.outbox.push(Message::Close(reason), true).map(drop)
    }

    /// The outbox, for the dispatcher's handle on this socket.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        let mut state = self.outbox.lock();
        state.ended = true;
        self.outbox.wake_body(state, false);
    }
}

/// The response body of a `/ws` socket.
pub(crate) struct OutboxBody {
    outbox: Arc<Outbox>,
    /// Encoded bytes not yet handed over.
    rest: Bytes,
    /// actix-ws's own body, never polled: dropping it tells actix-ws's message stream that
    /// the connection is gone, so it is dropped with this one.
    _original: BoxBody,
}

/// An outbox of `capacity` messages, its connection's end and the response body writing it
/// (in place of `original`, actix-ws's body).
pub(crate) fn outbox(capacity: usize, delay: Duration, original: BoxBody) -> (Ws, OutboxBody) {
    let outbox = Arc::new(Outbox {
        state: Mutex::new(State::default()),
        capacity,
        room: Notify::new(),
        hub: Hub::local(delay),
    });
    (
        Ws {
            outbox: outbox.clone(),
        },
        OutboxBody {
            outbox,
            rest: Bytes::new(),
            _original: original,
        },
    )
}

impl MessageBody for OutboxBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            let mut state = this.outbox.lock();
            if state.queue.is_empty() {
                if state.closing || state.ended {
                    return Poll::Ready(None);
                }
                state.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let queue = std::mem::take(&mut state.queue);
            drop(state);
            // Only a full queue turns a writer away (`Ws::text`): this runs per delivery.
            if queue.len() >= this.outbox.capacity {
                this.outbox.room.notify_waiters();
            }
            let size = queue.iter().map(encoded_len).sum();
            let mut buf = BytesMut::with_capacity(size);
            for message in queue {
                // Server frames are not masked (RFC 6455 §5.1).
                match message {
                    Message::Text(t) => {
                        Parser::write_message(&mut buf, t, OpCode::Text, true, false)
                    }
                    Message::Pong(p) => {
                        Parser::write_message(&mut buf, p, OpCode::Pong, true, false)
                    }
                    Message::Close(reason) => Parser::write_close(&mut buf, reason, false),
                }
            }
            this.rest = buf.freeze();
        }
        let n = this.rest.len().min(PIECE_BYTES);
        Poll::Ready(Some(Ok(this.rest.split_to(n))))
    }
}

/// The bytes `message` takes on the wire (an unmasked frame).
fn encoded_len(message: &Message) -> usize {
    let payload = match message {
        Message::Text(t) => t.len(),
        Message::Pong(p) => p.len(),
        Message::Close(r) => r
            .as_ref()
            .map_or(0, |r| 2 + r.description.as_ref().map_or(0, String::len)),
    };
    payload
        + match payload {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        let mut state = self.outbox.lock();
        state.gone = true;
        state.queue.clear();
        state.held.clear();
        drop(state);
        self.outbox.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    fn text(b: &[u8]) -> Vec<u8> {
        // An unmasked text frame of fewer than 126 bytes.
        let mut out = vec![0x81, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[actix_web::test]
    async fn queued_frames_are_written_in_order_and_held_ones_after_the_release() {
        let (mut ws, body) = outbox(8, Duration::ZERO, BoxBody::new(()));
        let outbox = ws.outbox().clone();
        outbox.hold();
        outbox.try_send("held".into()).expect("room");
        ws.text("ready").await.expect("open");
        outbox.release();
        outbox.try_send("live".into()).expect("room");
        ws.close(None).await.expect("open");
        assert!(outbox.try_send("late".into()).is_err());
        let bytes = to_bytes(body).await.expect("body");
        let mut want = text(b"ready");
        want.extend(text(b"held"));
        want.extend(text(b"live"));
        want.extend([0x88, 0]);
        assert_eq!(&bytes[..], &want[..]);
    }

    #[actix_web::test]
    async fn a_full_queue_refuses_dispatched_frames_and_large_ones_come_in_pieces() {
        let (ws, mut body) = outbox(2, Duration::ZERO, BoxBody::new(()));
        let outbox = ws.outbox().clone();
        outbox.try_send("x".repeat(10_000).into()).expect("room");
        outbox.try_send("y".into()).expect("room");
        assert!(outbox.try_send("z".into()).is_err());
        drop(ws);
        let mut seen = 0;
        while let Some(piece) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
            let piece = piece.expect("piece");
            assert!(piece.len() <= PIECE_BYTES);
            seen += piece.len();
        }
        // 10,000 bytes behind a 4-byte header, then "y" behind 2.
        assert_eq!(seen, 10_004 + 3);
    }
}
