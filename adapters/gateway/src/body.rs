//! The response body of a WebSocket, handed to the HTTP/1 dispatcher in small pieces.
//!
//! The dispatcher copies each piece of a streaming body into its write buffer and keeps that
//! buffer, at the largest size it ever reached (up to 128 KiB), for the life of the
//! connection. actix-ws hands over everything queued on a socket as one piece, so a large
//! `system.ready` left every idle socket holding a buffer of its size (heaptrack: 30 KiB of a
//! 50 KiB session). Pieces of at most [`PIECE_BYTES`], with the dispatcher flushing at the same
//! size (`ecto_http::serve`), keep that buffer at a few KiB; the bytes on the wire are the same.

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// The largest piece handed to the dispatcher at once.
pub const PIECE_BYTES: usize = 4096;

/// Re-slices `inner` into pieces of at most [`PIECE_BYTES`] (no copy: `Bytes` slices share).
pub(crate) struct Pieces {
    inner: BoxBody,
    rest: Bytes,
}

impl Pieces {
    pub fn new(inner: BoxBody) -> Self {
        Self {
            inner,
            rest: Bytes::new(),
        }
    }
}

impl MessageBody for Pieces {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(bytes)) => this.rest = bytes,
            }
        }
        let n = this.rest.len().min(PIECE_BYTES);
        Poll::Ready(Some(Ok(this.rest.split_to(n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn pieces_are_small_and_add_up_to_the_body() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut pieces = Pieces::new(BoxBody::new(Bytes::from(body.clone())));
        let mut seen = Vec::new();
        while let Some(piece) = std::future::poll_fn(|cx| Pin::new(&mut pieces).poll_next(cx)).await
        {
            let piece = piece.expect("piece");
            assert!(piece.len() <= PIECE_BYTES);
            seen.extend_from_slice(&piece);
        }
        assert_eq!(seen, body);
        let whole = to_bytes(Pieces::new(BoxBody::new(Bytes::from_static(b"abc"))))
            .await
            .expect("body");
        assert_eq!(&whole[..], b"abc");
    }
}
