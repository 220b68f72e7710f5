//! Blob storage for uploads: local disk in self-hosted, S3 in managed.

use crate::{CoreError, CoreResult, EctoCode, ErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use std::pin::Pin;

/// A stream of body bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A storage key: `/`-separated segments of ASCII letters, digits, `.`, `_` and `-`, none of
/// them empty, `.` or `..`, nor longer than a file name may be (255 bytes). No key built from
/// user input can leave its store's root or fail as a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Checks `raw`; anything outside the key alphabet is BAD_REQUEST.
    pub fn new(raw: &str) -> CoreResult<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 1024
            && raw.split('/').all(|seg| {
                !seg.is_empty()
                    && seg.len() <= 255
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(CoreError::bad_request("Invalid storage key"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments of the key.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// An inclusive byte range; `end: None` runs to the end of the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// A blob (or a range of it) being read.
pub struct Blob {
    /// Size of the whole blob.
    pub size: u64,
    /// Offset of the first byte in `body`.
    pub start: u64,
    /// Number of bytes in `body`.
    pub len: u64,
    pub body: ByteStream,
}

/// The error every adapter returns when a body passes its limit.
pub fn too_large(limit: u64) -> CoreError {
    CoreError::ecto(
        ErrorKind::PayloadTooLarge,
        EctoCode::PayloadTooLarge,
        format!("File exceeds {limit} bytes"),
    )
}

/// The error for a range that starts past the end of the blob.
pub fn range_not_satisfiable() -> CoreError {
    CoreError::bad_request("Requested range not satisfiable")
}

/// Resolves `range` against a blob of `size` bytes: `(start, len)`, or an error when it
/// starts past the end.
pub fn resolve_range(range: Option<ByteRange>, size: u64) -> CoreResult<(u64, u64)> {
    match range {
        None => Ok((0, size)),
        Some(r) if r.start >= size || r.end.is_some_and(|e| e < r.start) => {
            Err(range_not_satisfiable())
        }
        Some(r) => {
            let end = r.end.map_or(size - 1, |e| e.min(size - 1));
            Ok((r.start, end - r.start + 1))
        }
    }
}

/// Wraps `body` so that it fails with an `InvalidData` error (and sets `exceeded`) as soon as
/// more than `limit` bytes have passed; adapters use it to stop a write early.
pub fn limited(
    body: ByteStream,
    limit: u64,
    exceeded: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> ByteStream {
    Box::pin(Limited {
        inner: body,
        seen: 0,
        limit,
        exceeded,
    })
}

struct Limited {
    inner: ByteStream,
    seen: u64,
    limit: u64,
    exceeded: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stream for Limited {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            std::task::Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if this.seen > this.limit {
                    this.exceeded
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    let err = std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "body exceeds its limit",
                    );
                    return std::task::Poll::Ready(Some(Err(err)));
                }
                std::task::Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

/// Where uploaded bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Streams `body` into `key`, replacing any blob there, and returns its size. When more
    /// than `limit` bytes arrive the write stops with PAYLOAD_TOO_LARGE (ecto 9001) and nothing
    /// is kept under `key`. A failed write never leaves a partial blob visible.
    async fn put(
        &self,
        key: &BlobKey,
        body: ByteStream,
        limit: u64,
        content_type: &str,
    ) -> CoreResult<u64>;
    /// The blob (or the bytes of `range`), streamed; `None` when there is no blob at `key`.
    /// A range starting at or past the end is BAD_REQUEST ("not satisfiable"). `known_size`
    /// is the blob's size when the caller has it from a row: a remote store then reads without
    /// asking for the size first.
    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
        known_size: Option<u64>,
    ) -> CoreResult<Option<Blob>>;
    /// The size of the blob at `key`, or `None`.
    async fn size(&self, key: &BlobKey) -> CoreResult<Option<u64>>;
    /// Deletes the blob at `key`; `false` when there was none.
    async fn delete(&self, key: &BlobKey) -> CoreResult<bool>;
    /// Deletes every blob under `prefix` (keys that start with its segments followed by `/`);
    /// returns how many.
    async fn delete_prefix(&self, prefix: &BlobKey) -> CoreResult<u64>;
    /// Every blob with its size, sorted by key: all of them, or those under `prefix` (whole
    /// segments, as [`BlobStore::delete_prefix`]). Objects of a shared bucket whose names are
    /// not keys are left out.
    async fn list(&self, prefix: Option<&BlobKey>) -> CoreResult<Vec<(BlobKey, u64)>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_every_way_out_of_the_root() {
        for bad in [
            "",
            "/abs",
            "a/../b",
            "..",
            "a/./b",
            "a//b",
            "a/b/",
            "nul\0byte",
            "back\\slash",
            "spa ce",
            "%2e%2e",
        ] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} must be refused");
        }
        for good in ["a", "srv/ch/01/file.png", "x_y-z.tar.gz"] {
            assert!(BlobKey::new(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(resolve_range(None, 10).ok(), Some((0, 10)));
        assert_eq!(
            resolve_range(
                Some(ByteRange {
                    start: 2,
                    end: Some(4)
                }),
                10
            )
            .ok(),
            Some((2, 3))
        );
        assert_eq!(
            resolve_range(
                Some(ByteRange {
                    start: 8,
                    end: None
                }),
                10
            )
            .ok(),
            Some((8, 2))
        );
        assert_eq!(
            resolve_range(
                Some(ByteRange {
                    start: 8,
                    end: Some(99)
                }),
                10
            )
            .ok(),
            Some((8, 2))
        );
        assert!(resolve_range(
            Some(ByteRange {
                start: 10,
                end: None
            }),
            10
        )
        .is_err());
    }
}
