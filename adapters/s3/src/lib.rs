//! [`BlobStore`] on S3 (rust-s3, path-style buckets; managed uploads).
//!
//! Puts stream through multipart upload; reads stream back (ranges through a pipe, so no read
//! ever buffers a whole object).

use async_trait::async_trait;
use ecto_core::ports::{
    limited, resolve_range, too_large, Blob, BlobKey, BlobStore, ByteRange, ByteStream,
};
use ecto_core::{CoreError, CoreResult};
use futures_util::StreamExt;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::serde_types::ObjectIdentifier;
use s3::{Bucket, Region};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::io::{ReaderStream, StreamReader};

/// Parts of one multipart upload sent at once.
const MULTIPART_CONCURRENCY: usize = 2;

/// Blobs as objects of one bucket.
pub struct S3BlobStore {
    bucket: Box<Bucket>,
}

/// Where the bucket is and how to sign for it.
pub struct S3Settings<'a> {
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

/// A failed S3 call, counted in `ecto_s3_errors_total`: the store out of reach (no
/// connection, a timeout, a connection lost mid-transfer) or failing on its side (5xx) is
/// `Unavailable` ("Storage unavailable", 503), anything else internal.
fn s3_err(e: S3Error) -> CoreError {
    metrics::counter!("ecto_s3_errors_total").increment(1);
    let unreachable = match &e {
        S3Error::Reqwest(r) => r.is_connect() || r.is_timeout() || r.is_request() || r.is_body(),
        S3Error::Io(_) => true,
        S3Error::HttpFailWithBody(status, _) => *status >= 500,
        _ => false,
    };
    if unreachable {
        CoreError::unavailable("Storage unavailable", e)
    } else {
        CoreError::internal(e)
    }
}

fn is_not_found(e: &S3Error) -> bool {
    matches!(e, S3Error::HttpFailWithBody(404, _))
}

impl S3BlobStore {
    pub fn new(s: S3Settings<'_>) -> CoreResult<Self> {
        let region = Region::Custom {
            region: s.region.to_owned(),
            endpoint: s.endpoint.trim_end_matches('/').to_owned(),
        };
        let credentials =
            Credentials::new(Some(s.access_key), Some(s.secret_key), None, None, None)
                .map_err(|e| CoreError::internal_msg(format!("S3 credentials: {e}")))?;
        let bucket = Bucket::new(s.bucket, region, credentials)
            .map_err(s3_err)?
            .with_path_style();
        Ok(Self { bucket })
    }

    /// The `/ready` check of this bucket.
    pub fn health(&self) -> S3Health {
        S3Health(self.bucket.clone())
    }
}

/// `/ready`'s check of the bucket: one listing of at most one key, which needs the bucket to
/// exist, the endpoint to answer and the credentials to be accepted (what uploads need).
pub struct S3Health(Box<Bucket>);

#[async_trait]
impl ecto_core::ports::HealthCheck for S3Health {
    fn name(&self) -> &'static str {
        "storage"
    }

    async fn check(&self) -> CoreResult<()> {
        match self
            .0
            .list_page("ecto-ready/".into(), None, None, None, Some(1))
            .await
        {
            Ok((_, status)) if (200..300).contains(&status) => Ok(()),
            Ok((_, status)) => Err(CoreError::internal_msg(format!(
                "S3 listing answered {status}"
            ))),
            Err(e) => Err(s3_err(e)),
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: ByteStream,
        limit: u64,
        content_type: &str,
    ) -> CoreResult<u64> {
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut reader = StreamReader::new(limited(body, limit, exceeded.clone()));
        // At most MULTIPART_CONCURRENCY parts (8 MiB each) in flight per upload, whatever
        // memory the machine reports.
        let result = self
            .bucket
            .put_object_stream_builder(key.as_str())
            .with_content_type(content_type)
            .with_max_concurrent_chunks(MULTIPART_CONCURRENCY)
            .execute_stream(&mut reader)
            .await;
        match result {
            Ok(response) => Ok(response.uploaded_bytes() as u64),
            Err(e) => {
                // Make sure no partial object stays visible.
                let _ = self.bucket.delete_object(key.as_str()).await;
                Err(if exceeded.load(Ordering::SeqCst) {
                    too_large(limit)
                } else {
                    s3_err(e)
                })
            }
        }
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
        known_size: Option<u64>,
    ) -> CoreResult<Option<Blob>> {
        // A size known from a row saves the HEAD request.
        let size = match known_size {
            Some(size) => size,
            None => match self.size(key).await? {
                Some(size) => size,
                None => return Ok(None),
            },
        };
        let (start, len) = resolve_range(range, size)?;
        if range.is_none() {
            let stream = match self.bucket.get_object_stream(key.as_str()).await {
                Ok(stream) => stream,
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(s3_err(e)),
            };
            let body = stream
                .bytes
                .map(|chunk| chunk.map_err(std::io::Error::other));
            return Ok(Some(Blob {
                size,
                start,
                len,
                body: Box::pin(body),
            }));
        }
        // Ranges are written into a pipe by a task, read out as a stream.
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        let bucket = self.bucket.clone();
        let path = key.as_str().to_owned();
        let end = start + len.saturating_sub(1);
        tokio::spawn(async move {
            if let Err(e) = bucket
                .get_object_range_to_writer(&path, start, Some(end), &mut writer)
                .await
            {
                tracing::warn!(error = %e, key = %path, "S3 range read failed");
            }
        });
        Ok(Some(Blob {
            size,
            start,
            len,
            body: Box::pin(ReaderStream::new(reader)),
        }))
    }

    async fn size(&self, key: &BlobKey) -> CoreResult<Option<u64>> {
        match self.bucket.head_object(key.as_str()).await {
            Ok((head, 200)) => Ok(Some(head.content_length.unwrap_or(0).max(0) as u64)),
            Ok((_, 404)) => Ok(None),
            Ok((_, status)) => Err(CoreError::internal_msg(format!(
                "S3 HEAD answered {status}"
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_err(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> CoreResult<bool> {
        if self.size(key).await?.is_none() {
            return Ok(false);
        }
        match self.bucket.delete_object(key.as_str()).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(s3_err(e)),
        }
    }

    async fn list(&self, prefix: Option<&BlobKey>) -> CoreResult<Vec<(BlobKey, u64)>> {
        let dir = prefix
            .map(|p| format!("{}/", p.as_str()))
            .unwrap_or_default();
        let pages = self.bucket.list(dir.clone(), None).await.map_err(s3_err)?;
        let mut out: Vec<(BlobKey, u64)> = pages
            .into_iter()
            .flat_map(|page| page.contents)
            .filter(|object| object.key.starts_with(&dir))
            .filter_map(|object| {
                let key = BlobKey::new(&object.key).ok()?;
                Some((key, object.size))
            })
            .collect();
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(out)
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> CoreResult<u64> {
        let exact = prefix.as_str();
        let dir = format!("{exact}/");
        let pages = self.bucket.list(dir.clone(), None).await.map_err(s3_err)?;
        let keys: Vec<ObjectIdentifier> = pages
            .into_iter()
            .flat_map(|page| page.contents)
            .filter(|object| object.key.starts_with(&dir))
            .map(|object| ObjectIdentifier::new(object.key))
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        // DeleteObjects, 1,000 keys per request.
        let result = self.bucket.delete_objects(keys).await.map_err(s3_err)?;
        if let Some(error) = result.errors.first() {
            return Err(CoreError::internal_msg(format!(
                "S3 could not delete {} objects under {exact}: {error:?}",
                result.errors.len()
            )));
        }
        let n = result.deleted.len() as u64;
        Ok(n)
    }
}
