//! The incoming bytes of a WebSocket, checked against the frame limit at each frame's header.
//!
//! actix-http's frame parser compares a frame's length with the limit only once the whole
//! frame has arrived, so a client announcing a 16 MiB (or 4 GiB) frame had the server buffer
//! all of it before the refusal (the reliability drill measured 16 MiB frames adding their
//! size to the RSS each time). [`FrameGuard`] follows the frame boundaries of the byte stream
//! as it passes (headers only: payload bytes are counted, never copied) and fails the stream
//! at the header of a frame longer than the limit, which the socket's loop answers with close
//! 4002 (`Invalid frame`) after reading at most one chunk of it.

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

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
    pub fn scan(&mut self, mut data: &[u8]) -> Result<(), PayloadError> {
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
                    return Err(PayloadError::Overflow);
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

/// The request body of an upgraded socket, failed at the first frame over the limit.
pub(crate) struct FrameGuard {
    inner: actix_web::dev::Payload,
    scanner: FrameScanner,
    failed: bool,
}

impl FrameGuard {
    pub fn new(inner: actix_web::dev::Payload, max: usize) -> Self {
        Self {
            inner,
            scanner: FrameScanner::new(max),
            failed: false,
        }
    }
}

impl Stream for FrameGuard {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let next = ready!(Pin::new(&mut self.inner).poll_next(cx));
        if let Some(Ok(bytes)) = &next {
            if let Err(e) = self.scanner.scan(bytes) {
                self.failed = true;
                return Poll::Ready(Some(Err(e)));
            }
        }
        Poll::Ready(next)
    }
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
                matches!(s.scan(rest), Err(PayloadError::Overflow)),
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
