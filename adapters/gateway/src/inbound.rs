//! The incoming side of a WebSocket: its bytes read from the socket, checked against the frame
//! limit at each frame's header, decoded into messages.
//!
//! actix-http's frame parser compares a frame's length with the limit only once the whole
//! frame has arrived, so a client announcing a 16 MiB (or 4 GiB) frame had the server buffer
//! all of it before the refusal (the reliability drill measured 16 MiB frames adding their
//! size to the RSS each time). [`FrameScanner`] follows the frame boundaries of the byte
//! stream as it is read (headers only: payload bytes are counted, never copied) and refuses a
//! frame longer than the limit at its header, which the socket's loop answers with close 4002
//! (`Invalid frame`) after reading at most one chunk of it. A message sent in fragments is
//! held to the same limit.
//!
//! The read buffer is dropped whenever it is empty: an idle socket keeps none.

use crate::body::Outbox;
use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use std::sync::Arc;
use tokio::net::tcp::OwnedReadHalf;

/// What one read asks room for.
const READ_BYTES: usize = 4096;

/// A message from the client.
pub(crate) enum Incoming {
    Text(ByteString),
    /// A binary message (the gateway speaks text only; its bytes are not kept).
    Binary,
    Ping(Bytes),
    Pong,
    /// The client closes, with its code if it gave one.
    Close(Option<u16>),
}

/// The code the server's close frame echoes when the client closed with `code` (RFC 6455
/// §5.5.1): codes a frame may carry, else none.
pub(crate) fn echoed(code: Option<u16>) -> Option<u16> {
    code.filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999))
}

/// A frame the socket refuses: over the limit, malformed, or text that is not UTF-8.
#[derive(Debug)]
pub(crate) struct Invalid;

/// The reading end of a socket.
pub(crate) struct Inbound {
    read: OwnedReadHalf,
    /// Read and not yet decoded; empty (no allocation) between messages.
    buf: BytesMut,
    codec: Codec,
    scanner: FrameScanner,
    /// A message arriving in fragments: whether it is text, and its bytes so far.
    partial: Option<(bool, BytesMut)>,
    max: usize,
    /// A frame over the limit was announced.
    refused: bool,
    /// The stream ended (or the writing end is gone).
    eof: bool,
    outbox: Arc<Outbox>,
}

impl Inbound {
    /// Reads `read`, whose first bytes (read with the request head) are `buf`, with frames of
    /// at most `max` bytes; ends when `outbox`'s writer is gone.
    pub(crate) fn new(read: OwnedReadHalf, buf: BytesMut, max: usize, outbox: Arc<Outbox>) -> Self {
        let mut scanner = FrameScanner::new(max);
        let refused = scanner.scan(&buf).is_err();
        Self {
            read,
            buf,
            codec: Codec::new().max_size(max),
            scanner,
            partial: None,
            max,
            refused,
            eof: false,
            outbox,
        }
    }

    /// The next message; `None` when the stream ended. Cancel-safe: what was read stays.
    pub(crate) async fn next(&mut self) -> Option<Result<Incoming, Invalid>> {
        loop {
            if self.refused {
                return Some(Err(Invalid));
            }
            match self.decode() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.eof {
                return None;
            }
            tokio::select! {
                ready = self.read.readable() => if ready.is_err() {
                    self.eof = true;
                    continue;
                },
                () = self.outbox.writer_gone() => {
                    self.eof = true;
                    continue;
                }
            }
            if self.buf.capacity() - self.buf.len() < READ_BYTES / 4 {
                self.buf.reserve(READ_BYTES);
            }
            let before = self.buf.len();
            match self.read.try_read_buf(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(_) => self.refused = self.scanner.scan(&self.buf[before..]).is_err(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// After the close frame: reads and drops what the client still sends until it closes its
    /// side, for at most `limit`. Closing a socket with unread bytes resets the connection, and
    /// a reset can take the close frame from a client that has not read it yet.
    pub(crate) async fn drain(mut self, limit: std::time::Duration) {
        self.buf = BytesMut::new();
        let mut scratch = vec![0u8; READ_BYTES];
        let _ = tokio::time::timeout(limit, async {
            loop {
                if self.read.readable().await.is_err() {
                    return;
                }
                match self.read.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        })
        .await;
    }

    /// The next whole message in the buffer, if any.
    fn decode(&mut self) -> Result<Option<Incoming>, Invalid> {
        loop {
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new();
                    }
                    return Ok(None);
                }
                Err(_) => return Err(Invalid),
            };
            return Ok(Some(match frame {
                Frame::Text(b) => Incoming::Text(ByteString::try_from(b).map_err(|_| Invalid)?),
                Frame::Binary(_) => Incoming::Binary,
                Frame::Ping(b) => Incoming::Ping(b),
                Frame::Pong(_) => Incoming::Pong,
                Frame::Close(reason) => Incoming::Close(reason.map(|r| u16::from(r.code))),
                Frame::Continuation(item) => {
                    let (text, bytes, last) = match item {
                        Item::FirstText(b) => (Some(true), b, false),
                        Item::FirstBinary(b) => (Some(false), b, false),
                        Item::Continue(b) => (None, b, false),
                        Item::Last(b) => (None, b, true),
                    };
                    if let Some(text) = text {
                        self.partial = Some((text, BytesMut::new()));
                    }
                    let (text, gathered) = self.partial.as_mut().ok_or(Invalid)?;
                    if gathered.len() + bytes.len() > self.max {
                        return Err(Invalid);
                    }
                    gathered.extend_from_slice(&bytes);
                    if !last {
                        continue;
                    }
                    let text = *text;
                    let gathered = self.partial.take().map(|(_, b)| b.freeze());
                    let gathered = gathered.unwrap_or_default();
                    if text {
                        Incoming::Text(ByteString::try_from(gathered).map_err(|_| Invalid)?)
                    } else {
                        Incoming::Binary
                    }
                }
            }));
        }
    }
}

/// Follows frame boundaries through a byte stream; refuses a frame longer than `max`.
#[derive(Debug)]
pub(crate) struct FrameScanner {
    max: u64,
    /// Payload bytes of the current frame not seen yet.
    skip: u64,
    /// The header of the next frame so far (at most 14 bytes).
    head: Vec<u8>,
}

impl FrameScanner {
    pub fn new(max: usize) -> Self {
        Self {
            max: max as u64,
            skip: 0,
            head: Vec::with_capacity(14),
        }
    }

    /// Takes the next bytes of the stream; an error at a frame announcing more than the limit.
    pub fn scan(&mut self, mut data: &[u8]) -> Result<(), Invalid> {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            if let Some(length) = announced_length(&self.head) {
                if length > self.max {
                    return Err(Invalid);
                }
                self.skip = length;
                self.head.clear();
            }
        }
        Ok(())
    }
}

/// The payload length a complete frame header announces (RFC 6455 §5.2), or `None` while the
/// header is incomplete.
fn announced_length(head: &[u8]) -> Option<u64> {
    let second = *head.get(1)?;
    let masked = second & 0x80 != 0;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let total = 2 + extended + if masked { 4 } else { 0 };
    if head.len() < total {
        return None;
    }
    Some(match extended {
        2 => u64::from(u16::from_be_bytes([head[2], head[3]])),
        8 => u64::from_be_bytes(head[2..10].try_into().ok()?),
        _ => u64::from(second & 0x7F),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame of `len` payload bytes (the payload itself not included).
    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x81];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= u64::from(u16::MAX) {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = header(len as u64);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let stream: Vec<u8> = [frame(5), frame(300), frame(64 * 1024), frame(0)].concat();
        for chunk in [1, 2, 3, 7, 13, 1000, stream.len()] {
            let mut s = FrameScanner::new(64 * 1024);
            for piece in stream.chunks(chunk) {
                s.scan(piece).expect("within the limit");
            }
            assert_eq!((s.skip, s.head.len()), (0, 0), "ends on a boundary");
        }
    }

    #[test]
    fn a_frame_over_the_limit_fails_at_its_header() {
        for len in [64 * 1024 + 1, 16 << 20, 1 << 40] {
            let mut s = FrameScanner::new(64 * 1024);
            s.scan(&frame(10)).expect("a small frame first");
            let h = header(len);
            let (first, rest) = h.split_at(3);
            s.scan(first).expect("an incomplete header is not judged");
            assert!(
                s.scan(rest).is_err(),
                "{len} refused at its header, before any payload"
            );
        }
    }

    #[test]
    fn unmasked_and_extended_headers_are_read() {
        assert_eq!(announced_length(&[0x81, 5]), Some(5));
        assert_eq!(announced_length(&[0x81, 126, 1]), None);
        assert_eq!(announced_length(&[0x81, 126, 1, 0]), Some(256));
        assert_eq!(
            announced_length(&[0x81, 0x80 | 126, 1, 0, 9, 9, 9]),
            None,
            "a masked header includes its key"
        );
        assert_eq!(
            announced_length(&[0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0]),
            Some(1 << 32)
        );
    }
}
