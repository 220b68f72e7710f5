//! A socket's outbox: the queue of its outbound messages, and the writer that sends them.
//!
//! The dispatcher pushes a delivered frame straight into the outbox of each socket it
//! reaches, and wakes only the socket's writer ([`write`], which runs in the connection's
//! task of the HTTP server): everything queued by then is encoded into one buffer and written
//! with one `write_all` (one `send`, unless the kernel takes a large buffer in parts). The
//! connection's own loop is not in the delivery path (perf, fan-out of 1,000 sockets: a hop
//! through the loop's task and a session channel cost two task polls and a cross-runtime wake
//! per delivery). The buffer lives only for its write: an idle socket keeps none.
//!
//! While a session is being set up (`system.ready`, a resume's replay) frames the dispatcher
//! delivers are held back, and follow once the connection [releases](Outbox::release) them:
//! the client sees `system.ready` or `system.resumed` first.

use crate::frame::Dispatched;
use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// How long a socket lingers once the connection's loop has ended: the writer still tries to
/// send (its close frame; a peer that does not read cannot take it either), and the reader
/// still reads what the client sends, waiting for the client to close.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// Control frames carry at most 125 bytes (RFC 6455 §5.5); a close's reason 123.
const CONTROL_MAX: usize = 125;

/// The socket is gone (its writer ended) or closing: nothing more can be sent.
#[derive(Debug)]
pub(crate) struct Closed;

/// One outbound message: what a server sends on `/ws`.
pub(crate) enum Message {
    Text(ByteString),
    /// A dispatched event, encoded by the writer.
    Event(Dispatched),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

impl From<ByteString> for Message {
    fn from(text: ByteString) -> Self {
        Message::Text(text)
    }
}

impl From<Dispatched> for Message {
    fn from(event: Dispatched) -> Self {
        Message::Event(event)
    }
}

/// The queue's capacity a writer keeps between writes (two queues alternate: the writer
/// encodes one while the dispatcher fills the other, without allocating either). A fan-out at
/// 200 events/s queues about 5 per write; what a burst grew past this is let go, so a socket
/// keeps at most about 1.5 KiB of queue once it is quiet again.
const KEPT_CAPACITY: usize = 16;

#[derive(Default)]
struct State {
    /// What the writer sends next, in order.
    queue: VecDeque<Message>,
    /// Frames delivered while the session is being set up.
    held: VecDeque<Message>,
    holding: bool,
    /// A close frame is queued: nothing follows it.
    closing: bool,
    /// The connection's loop ended: the writer ends once the queue is written.
    ended: bool,
    /// The writer ended (the connection is gone).
    gone: bool,
    waker: Option<Waker>,
}

/// The queue shared by the connection's loop, the dispatcher and the writer.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Messages queued (and held) at most before [`Outbox::try_send`] refuses.
    capacity: usize,
    /// Signalled when the writer took the queue (room for [`Ws::text`]) or went away.
    room: Notify,
    /// Signalled (once) when the connection's loop ended.
    loop_ended: Notify,
    /// Signalled (once) when the writer ended: the reading end stops too.
    writer_gone: Notify,
    /// The waker of the worker thread the connection lives on, for the dispatcher's wakes.
    hub: Option<Arc<Hub>>,
}

/// Wakes, on one worker thread, the writers the dispatcher (on another thread) gave frames.
///
/// Waking a task of another runtime wakes that runtime's thread (an eventfd write) every
/// time: for one event reaching 1,000 sockets, up to 1,000 system calls (perf stat: 0.43
/// `write` per delivery). Through the hub it is one per worker thread and batch; the hub's
/// task wakes the writers on their own thread, which costs no system call.
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

    /// Wakes the writer, if it waits, once `state` is unlocked: through the worker's hub when
    /// `from_afar` (the dispatcher's thread), directly otherwise (the connection's own thread).
    fn wake_writer(&self, mut state: MutexGuard<'_, State>, from_afar: bool) {
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
    pub(crate) fn try_send(&self, message: impl Into<Message>) -> Result<(), Closed> {
        let mut state = self.lock();
        if state.closing || state.gone || state.queue.len() + state.held.len() >= self.capacity {
            return Err(Closed);
        }
        if state.holding {
            state.held.push_back(message.into());
            return Ok(());
        }
        state.queue.push_back(message.into());
        self.wake_writer(state, true);
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
        self.wake_writer(state, false);
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
        self.wake_writer(state, false);
    }

    /// Drops the held frames and stops holding (a session that was not set up after all).
    pub(crate) fn discard(&self) {
        let mut state = self.lock();
        state.holding = false;
        state.held = VecDeque::new();
    }
}

/// The connection loop's end of the outbox.
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

    /// Queues the close frame; the writer ends after sending it.
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
        self.outbox.wake_writer(state, false);
        self.outbox.loop_ended.notify_one();
    }
}

/// An outbox of `capacity` messages and its connection's end; its writer is [`write`].
pub(crate) fn outbox(capacity: usize, delay: Duration) -> Ws {
    Ws {
        outbox: Arc::new(Outbox {
            state: Mutex::new(State::default()),
            capacity,
            room: Notify::new(),
            loop_ended: Notify::new(),
            writer_gone: Notify::new(),
            hub: Hub::local(delay),
        }),
    }
}

impl Outbox {
    /// Everything queued, encoded after `first` (taken); `None` once the queue is written and
    /// the socket closing or its loop ended. `spare` (empty) becomes the queue, and the queue
    /// taken is left there empty, its capacity kept for the next time.
    fn poll_take(
        &self,
        cx: &mut Context<'_>,
        first: &mut BytesMut,
        spare: &mut VecDeque<Message>,
    ) -> Poll<Option<BytesMut>> {
        let mut state = self.lock();
        if state.queue.is_empty() {
            if !first.is_empty() {
                return Poll::Ready(Some(std::mem::take(first)));
            }
            if state.closing || state.ended || state.gone {
                return Poll::Ready(None);
            }
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        std::mem::swap(&mut state.queue, spare);
        drop(state);
        // Only a full queue turns a writer away (`Ws::text`): this runs per delivery.
        if spare.len() >= self.capacity {
            self.room.notify_waiters();
        }
        let size: usize = spare.iter().map(encoded_len).sum();
        let mut buf = std::mem::take(first);
        buf.reserve(size);
        for message in spare.drain(..) {
            // Server frames are not masked (RFC 6455 §5.1).
            match message {
                Message::Text(t) => Parser::write_message(&mut buf, t, OpCode::Text, true, false),
                Message::Event(e) => {
                    text_header(&mut buf, e.len());
                    e.write(&mut buf);
                }
                Message::Pong(p) => Parser::write_message(&mut buf, p, OpCode::Pong, true, false),
                Message::Close(reason) => Parser::write_close(&mut buf, reason, false),
            }
        }
        if spare.capacity() > KEPT_CAPACITY {
            *spare = VecDeque::new();
        }
        Poll::Ready(Some(buf))
    }

    /// The writer ended: nothing more is queued, and waiting senders and the reader learn it.
    fn writer_ended(&self) {
        let mut state = self.lock();
        state.gone = true;
        state.queue.clear();
        state.held.clear();
        drop(state);
        self.room.notify_waiters();
        self.writer_gone.notify_one();
    }

    /// Resolves once the writer has ended (for the one reader of the socket).
    pub(crate) async fn writer_gone(&self) {
        self.writer_gone.notified().await;
    }
}

/// Writes `outbox` to `io` until the close frame is sent or the connection's loop ended and
/// everything it queued is sent; `first` (the upgrade's answer) leads the first write. Once
/// the loop has ended the writer gets [`LINGER`] more, then gives up.
pub(crate) async fn write(mut io: OwnedWriteHalf, outbox: Arc<Outbox>, mut first: BytesMut) {
    let writing = async {
        let mut spare = VecDeque::new();
        while let Some(buf) =
            std::future::poll_fn(|cx| outbox.poll_take(cx, &mut first, &mut spare)).await
        {
            if io.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = io.shutdown().await;
    };
    let abandoned = async {
        outbox.loop_ended.notified().await;
        tokio::time::sleep(LINGER).await;
    };
    tokio::select! {
        () = writing => {}
        () = abandoned => {}
    }
    outbox.writer_ended();
}

/// The bytes `message` takes on the wire (an unmasked frame).
fn encoded_len(message: &Message) -> usize {
    let payload = match message {
        Message::Text(t) => t.len(),
        Message::Event(e) => e.len(),
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

/// The header of an unmasked, final text frame of `len` bytes (RFC 6455 §5.2).
fn text_header(buf: &mut BytesMut, len: usize) {
    const FIN_TEXT: u8 = 0x81;
    match len {
        0..=125 => buf.extend_from_slice(&[FIN_TEXT, len as u8]),
        126..=65535 => {
            buf.extend_from_slice(&[FIN_TEXT, 126]);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf.extend_from_slice(&[FIN_TEXT, 127]);
            buf.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    fn text(b: &[u8]) -> Vec<u8> {
        // An unmasked text frame of fewer than 126 bytes.
        let mut out = vec![0x81, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    /// Everything the writer would send, until it ends.
    async fn drain(outbox: &Outbox, first: &[u8]) -> Vec<Vec<u8>> {
        let mut first = BytesMut::from(first);
        let mut spare = VecDeque::new();
        let mut writes = Vec::new();
        while let Some(buf) =
            std::future::poll_fn(|cx| outbox.poll_take(cx, &mut first, &mut spare)).await
        {
            writes.push(buf.to_vec());
        }
        writes
    }

    fn t(text: &str) -> ByteString {
        ByteString::from(text)
    }

    #[actix_web::test]
    async fn queued_frames_are_written_in_order_and_held_ones_after_the_release() {
        let mut ws = outbox(8, Duration::ZERO);
        let outbox = ws.outbox().clone();
        outbox.hold();
        outbox.try_send(t("held")).expect("room");
        ws.text("ready").await.expect("open");
        outbox.release();
        outbox.try_send(t("live")).expect("room");
        ws.close(None).await.expect("open");
        assert!(outbox.try_send(t("late")).is_err());
        let writes = drain(&outbox, b"HTTP/1.1 101\r\n\r\n").await;
        let mut want = b"HTTP/1.1 101\r\n\r\n".to_vec();
        want.extend(text(b"ready"));
        want.extend(text(b"held"));
        want.extend(text(b"live"));
        want.extend([0x88, 0]);
        assert_eq!(writes, vec![want], "one write, the answer first");
    }

    #[actix_web::test]
    async fn dispatched_events_are_written_as_their_text_frames() {
        let ws = outbox(8, Duration::ZERO);
        let outbox = ws.outbox().clone();
        let mut want = BytesMut::new();
        // Lengths under 126, under 65,536 and over: the three header forms.
        for (data, seq) in [
            ("1".to_owned(), 7),
            (format!("\"{}\"", "x".repeat(300)), 80),
            (format!("\"{}\"", "y".repeat(70_000)), 12_345),
        ] {
            let event = Dispatched {
                name: crate::frame::quoted("message.create"),
                data: data.into(),
                seq,
            };
            Parser::write_message(&mut want, event.text(), OpCode::Text, true, false);
            outbox.try_send(event).expect("room");
        }
        drop(ws);
        assert_eq!(drain(&outbox, b"").await, vec![want.to_vec()]);
    }

    #[actix_web::test]
    async fn a_full_queue_refuses_dispatched_frames_until_the_writer_takes_it() {
        let ws = outbox(2, Duration::ZERO);
        let outbox = ws.outbox().clone();
        outbox.try_send(t(&"x".repeat(10_000))).expect("room");
        outbox.try_send(t("y")).expect("room");
        assert!(outbox.try_send(t("z")).is_err());
        let (mut first, mut spare) = (BytesMut::new(), VecDeque::new());
        let taken = std::future::poll_fn(|cx| outbox.poll_take(cx, &mut first, &mut spare)).await;
        // 10,000 bytes behind a 4-byte header, then "y" behind 2.
        assert_eq!(taken.map(|b| b.len()), Some(10_004 + 3));
        outbox.try_send(t("z")).expect("room again");
        drop(ws);
        assert_eq!(drain(&outbox, b"").await, vec![text(b"z")]);
    }

    #[actix_web::test]
    async fn a_gone_writer_refuses_senders_and_signals_the_reader() {
        let mut ws = outbox(2, Duration::ZERO);
        let outbox = ws.outbox().clone();
        let mut gone = pin!(outbox.writer_gone());
        assert!(futures_util::poll!(gone.as_mut()).is_pending());
        outbox.writer_ended();
        gone.await;
        assert!(outbox.try_send(t("late")).is_err());
        assert!(ws.text("late").await.is_err());
    }
}
