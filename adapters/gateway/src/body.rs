//! A socket's outbox: the queue of its outbound messages, and the writer that sends them.
//!
//! The dispatcher pushes a delivered frame straight into the outbox of each socket it
//! reaches, and hands the socket to its worker thread's [`Hub`]: everything queued by then is
//! encoded into one buffer and written with one `send` (unless the kernel takes a large buffer
//! in parts). The connection's own loop is not in the delivery path (perf, fan-out of 1,000
//! sockets: a hop through the loop's task and a session channel cost two task polls and a
//! cross-runtime wake per delivery). The buffer lives only for its write: an idle socket keeps
//! none.
//!
//! The socket's writer ([`write()`], which runs in the connection's task of the HTTP server)
//! writes what the connection queues, and whatever the socket does not take at once. While it
//! waits with nothing of its own to write (it is *parked*), the hub writes a delivery for it,
//! on the same thread, so the writer's task is not woken and polled per delivery; a socket
//! that does not take the whole buffer gets the rest from the writer.
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
    /// The writer waits for the queue with nothing of its own to write: the hub may write for
    /// it (see the module's documentation).
    parked: bool,
    /// What the hub wrote for the writer but the socket did not take: the writer sends it
    /// before anything else.
    rest: Option<BytesMut>,
    /// The socket's writing half while the writer runs.
    io: Option<Arc<OwnedWriteHalf>>,
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

/// Writes, on one worker thread, what the dispatcher (on another thread) queued for that
/// thread's sockets.
///
/// Waking a task of another runtime wakes that runtime's thread (an eventfd write) every
/// time: for one event reaching 1,000 sockets, up to 1,000 system calls (perf stat: 0.43
/// `write` per delivery). Through the hub it is one per worker thread and batch. The hub's
/// task then writes each socket's queue itself, on the socket's own thread, while its writer
/// is parked (perf, fan-out of 1,000 sockets at 50 events/s: waking and polling each
/// connection's task and its writer cost about 7 % of the server's CPU); it wakes the writer
/// only when there is more for it to do ([`Outbox::hub_wrote`]).
///
/// After writing a batch the hub waits `delay` (`ws_write_delay_ms`) before the next: what
/// the dispatcher delivers meanwhile is written with it, one `send` per socket for several
/// events. Each `send` costs far more than the frame in it (perf: the TCP send path was three
/// quarters of the server's CPU in a fan-out). The wait runs from the end of the batch's
/// writes, so the busier the thread, the more each `send` carries, and the thread always gets
/// `delay` between batches for its other work (requests, identifies). An event after a quiet
/// moment is written at once; under a steady stream an event waits at most `delay` plus the
/// writing of the batch before it.
pub(crate) struct Hub {
    pending: Mutex<Vec<(Arc<Outbox>, Waker)>>,
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

    fn wake(&self, outbox: Arc<Outbox>, waker: Waker) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let first = pending.is_empty();
        pending.push((outbox, waker));
        drop(pending);
        if first {
            self.signal.notify_one();
        }
    }

    async fn run(self: Arc<Self>) {
        let (mut batch, mut spare) = (Vec::new(), VecDeque::new());
        loop {
            self.signal.notified().await;
            std::mem::swap(
                &mut batch,
                &mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()),
            );
            for (outbox, waker) in batch.drain(..) {
                outbox.write_for_writer(waker, &mut spare);
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

    /// Wakes the writer, if it waits, once `state` is unlocked (the connection's own thread).
    fn wake_writer(&self, mut state: MutexGuard<'_, State>) {
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Queues a dispatched frame unless the queue is full or the socket closing; held while
    /// the session is being set up. Never waits (the dispatcher calls it with locks held). A
    /// waiting writer is handed to its worker's hub, which writes the queue.
    pub(crate) fn try_send(self: &Arc<Self>, message: impl Into<Message>) -> Result<(), Closed> {
        let mut state = self.lock();
        if state.closing || state.gone || state.queue.len() + state.held.len() >= self.capacity {
            return Err(Closed);
        }
        if state.holding {
            state.held.push_back(message.into());
            return Ok(());
        }
        state.queue.push_back(message.into());
        let waker = state.waker.take();
        drop(state);
        match (waker, &self.hub) {
            (Some(w), Some(hub)) => hub.wake(self.clone(), w),
            (Some(w), None) => w.wake(),
            (None, _) => {}
        }
        Ok(())
    }

    /// The hub's turn with this socket (on the socket's thread), holding the waker of its
    /// writer: while the writer is parked, writes the queue for it ([`Outbox::hub_wrote`]
    /// decides what follows); otherwise wakes it.
    fn write_for_writer(&self, waker: Waker, spare: &mut VecDeque<Message>) {
        let mut state = self.lock();
        let io = match &state.io {
            Some(io) if state.parked && !state.queue.is_empty() => io.clone(),
            _ => {
                drop(state);
                return waker.wake();
            }
        };
        std::mem::swap(&mut state.queue, spare);
        drop(state);
        let mut buf = BytesMut::new();
        self.encode(spare, &mut buf);
        // An error leaves it all to the writer, whose own write meets it and ends.
        let sent = io.try_write(&buf).unwrap_or(0);
        let rest = (sent < buf.len()).then(|| buf.split_off(sent));
        self.hub_wrote(rest, waker);
    }

    /// After the hub's write for the parked writer: the writer is woken when there is more to
    /// do (what the socket did not take, what was queued while the hub wrote, a close, the
    /// loop's end); otherwise it stays parked with its waker back, for the next delivery.
    fn hub_wrote(&self, rest: Option<BytesMut>, waker: Waker) {
        let mut state = self.lock();
        if rest.is_some() {
            state.rest = rest;
            state.parked = false;
        } else if state.queue.is_empty() && !(state.closing || state.ended || state.gone) {
            if state.waker.is_none() {
                state.waker = Some(waker);
            }
            return;
        }
        drop(state);
        waker.wake();
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
        self.wake_writer(state);
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
        self.wake_writer(state);
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
        self.outbox.wake_writer(state);
        self.outbox.loop_ended.notify_one();
    }
}

/// An outbox of `capacity` messages and its connection's end; its writer is [`write()`].
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
    /// What the writer sends next: what the hub left over, or everything queued, encoded after
    /// `first` (taken); `None` once the queue is written and the socket closing or its loop
    /// ended. `spare` (empty) becomes the queue, and the queue taken is left there empty, its
    /// capacity kept for the next time.
    fn poll_take(
        &self,
        cx: &mut Context<'_>,
        first: &mut BytesMut,
        spare: &mut VecDeque<Message>,
    ) -> Poll<Option<BytesMut>> {
        let mut state = self.lock();
        if let Some(rest) = state.rest.take() {
            state.parked = false;
            return Poll::Ready(Some(rest));
        }
        if state.queue.is_empty() {
            if !first.is_empty() {
                state.parked = false;
                return Poll::Ready(Some(std::mem::take(first)));
            }
            if state.closing || state.ended || state.gone {
                state.parked = false;
                return Poll::Ready(None);
            }
            state.waker = Some(cx.waker().clone());
            state.parked = true;
            return Poll::Pending;
        }
        state.parked = false;
        std::mem::swap(&mut state.queue, spare);
        drop(state);
        let mut buf = std::mem::take(first);
        self.encode(spare, &mut buf);
        Poll::Ready(Some(buf))
    }

    /// Encodes the messages `taken` from the queue after what `buf` holds, leaving `taken`
    /// empty (its capacity kept unless a burst grew it).
    fn encode(&self, taken: &mut VecDeque<Message>, buf: &mut BytesMut) {
        // Only a full queue turns a writer away (`Ws::text`): this runs per delivery.
        if taken.len() >= self.capacity {
            self.room.notify_waiters();
        }
        let size: usize = taken.iter().map(encoded_len).sum();
        buf.reserve(size);
        for message in taken.drain(..) {
            // Server frames are not masked (RFC 6455 §5.1).
            match message {
                Message::Text(t) => Parser::write_message(buf, t, OpCode::Text, true, false),
                Message::Event(e) => {
                    text_header(buf, e.len());
                    e.write(buf);
                }
                Message::Pong(p) => Parser::write_message(buf, p, OpCode::Pong, true, false),
                Message::Close(reason) => Parser::write_close(buf, reason, false),
            }
        }
        if taken.capacity() > KEPT_CAPACITY {
            *taken = VecDeque::new();
        }
    }

    /// The writer ended: nothing more is queued, and waiting senders and the reader learn it.
    fn writer_ended(&self) {
        let mut state = self.lock();
        state.gone = true;
        state.parked = false;
        state.io = None;
        state.rest = None;
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
/// the loop has ended the writer gets [`LINGER`] more, then gives up. The hub writes through
/// `io` too, while the writer is parked.
pub(crate) async fn write(io: OwnedWriteHalf, outbox: Arc<Outbox>, mut first: BytesMut) {
    let io = Arc::new(io);
    outbox.lock().io = Some(io.clone());
    // However this future ends (done, or dropped with its connection), the writer has ended;
    // dropped before `io`, so that the socket's writing half goes with it.
    let _ended = WriterEnded(&outbox);
    let writing = async {
        let mut spare = VecDeque::new();
        while let Some(buf) =
            std::future::poll_fn(|cx| outbox.poll_take(cx, &mut first, &mut spare)).await
        {
            if write_all(&io, &buf).await.is_err() {
                return;
            }
        }
    };
    let abandoned = async {
        outbox.loop_ended.notified().await;
        tokio::time::sleep(LINGER).await;
    };
    tokio::select! {
        () = writing => {}
        () = abandoned => {}
    }
}

/// Calls [`Outbox::writer_ended`] when dropped. The outbox then lets go of the socket's
/// writing half, and the writer's own handle is the last: dropping it shuts the socket's
/// sending side.
struct WriterEnded<'a>(&'a Outbox);

impl Drop for WriterEnded<'_> {
    fn drop(&mut self) {
        self.0.writer_ended();
    }
}

/// `buf`, all of it, through a writing half shared with the hub.
async fn write_all(io: &OwnedWriteHalf, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match io.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => io.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

    /// Wakes counted.
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A connected pair: our writing half, whose socket takes little, and the peer.
    async fn small_pair() -> (OwnedWriteHalf, tokio::net::TcpStream) {
        let listener = tokio::net::TcpSocket::new_v4().expect("socket");
        listener.set_recv_buffer_size(4096).expect("rcvbuf");
        listener.bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let listener = listener.listen(4).expect("listen");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_send_buffer_size(4096).expect("sndbuf");
        let (ours, peer) = tokio::join!(
            socket.connect(listener.local_addr().expect("address")),
            listener.accept()
        );
        (
            ours.expect("connect").into_split().1,
            peer.expect("accept").0,
        )
    }

    #[actix_web::test]
    async fn the_hub_writes_for_a_parked_writer_and_leaves_it_what_the_socket_did_not_take() {
        use tokio::io::AsyncReadExt;
        let (io, mut peer) = small_pair().await;
        let io = Arc::new(io);
        let ws = outbox(64, Duration::ZERO);
        let outbox = ws.outbox().clone();
        let wakes = Arc::new(Wakes(Default::default()));
        let woken = || wakes.0.load(std::sync::atomic::Ordering::SeqCst);
        // The writer waits on an empty queue (its waker was taken by a delivery).
        {
            let mut state = outbox.lock();
            state.io = Some(io.clone());
            state.parked = true;
            state.queue.push_back(Message::Text(t("one")));
        }
        let mut spare = VecDeque::new();
        outbox.write_for_writer(Waker::from(wakes.clone()), &mut spare);
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).await.expect("read");
        assert_eq!(got.to_vec(), text(b"one"), "written by the hub");
        assert_eq!(woken(), 0, "the writer is left waiting");
        assert!(outbox.lock().waker.is_some(), "with its waker back");

        // More than the socket takes at once: the writer gets the rest, and is woken.
        let big = "x".repeat(1_000_000);
        {
            let mut state = outbox.lock();
            state.waker = None;
            state.queue.push_back(Message::Text(t(&big)));
            state.queue.push_back(Message::Text(t("two")));
        }
        outbox.write_for_writer(Waker::from(wakes.clone()), &mut spare);
        assert_eq!(woken(), 1, "the writer is woken");
        let rest = outbox.lock().rest.as_ref().map_or(0, |r| r.len());
        assert!(
            rest > 0 && rest < big.len(),
            "part was written: {rest} left"
        );
        // A hub's turn now leaves it to the writer too: the rest goes first.
        outbox.try_send(t("three")).expect("room");
        outbox.write_for_writer(Waker::from(wakes.clone()), &mut spare);
        assert_eq!(woken(), 2);

        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).await.expect("read");
            all
        });
        drop(ws);
        for buf in drain(&outbox, b"").await {
            write_all(&io, &buf).await.expect("write");
        }
        outbox.writer_ended();
        drop(io);
        let mut want = BytesMut::new();
        Parser::write_message(&mut want, t(&big), OpCode::Text, true, false);
        want.extend(text(b"two"));
        want.extend(text(b"three"));
        assert!(
            reader.await.expect("reader") == want.to_vec(),
            "every byte, in order"
        );
    }

    #[actix_web::test]
    async fn what_is_queued_while_the_hub_writes_wakes_the_writer() {
        let ws = outbox(8, Duration::ZERO);
        let outbox = ws.outbox().clone();
        let wakes = Arc::new(Wakes(Default::default()));
        let woken = || wakes.0.load(std::sync::atomic::Ordering::SeqCst);
        // The hub holds the parked writer's waker and has taken the queue; a delivery comes
        // meanwhile (it finds no waker to hand on).
        outbox.lock().parked = true;
        outbox.try_send(t("meanwhile")).expect("room");
        outbox.hub_wrote(None, Waker::from(wakes.clone()));
        assert_eq!(woken(), 1, "the writer is woken for it");
        drop(ws);
        assert_eq!(drain(&outbox, b"").await, vec![text(b"meanwhile")]);

        // Nothing came meanwhile: the writer stays parked and gets its waker back.
        let quiet = super::outbox(8, Duration::ZERO);
        let quiet = quiet.outbox();
        quiet.lock().parked = true;
        quiet.hub_wrote(None, Waker::from(wakes.clone()));
        assert_eq!(woken(), 1, "not woken");
        assert!(quiet.lock().waker.is_some());
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
