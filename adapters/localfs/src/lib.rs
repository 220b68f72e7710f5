//! [`BlobStore`] on a local directory (self-hosted uploads).
//!
//! Keys are checked by [`BlobKey`], so joining one to the root never leaves it. Writes go to a
//! temporary file in `<root>/.tmp` and are renamed into place only when complete.

use async_trait::async_trait;
use ecto_core::ports::{
    limited, resolve_range, too_large, Blob, BlobKey, BlobStore, ByteRange, ByteStream,
};
use ecto_core::{CoreError, CoreResult};
use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

/// Blobs as files under `root`.
pub struct LocalFsBlobStore {
    root: PathBuf,
}

impl LocalFsBlobStore {
    /// Uses (and creates) `root`. Partial writes a killed process left in `.tmp` more than
    /// a day ago are removed (a younger one may be another process's upload in progress).
    pub fn new(root: impl Into<PathBuf>) -> CoreResult<Self> {
        let root = root.into();
        let tmp = root.join(".tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| {
            CoreError::internal_msg(format!("cannot create upload dir {}: {e}", root.display()))
        })?;
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < day_ago);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self { root })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        key.segments().fold(self.root.clone(), |p, seg| p.join(seg))
    }
}

/// A failed disk operation: a full disk (or quota) is `Unavailable` ("Storage is full", 503,
/// the caller may retry once space is freed), anything else internal.
fn io(e: std::io::Error) -> CoreError {
    if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
        CoreError::unavailable("Storage is full", e)
    } else {
        CoreError::internal(e)
    }
}

async fn count_files(dir: &Path) -> std::io::Result<u64> {
    let mut stack = vec![dir.to_path_buf()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&d).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_type().await?.is_dir() {
                stack.push(entry.path());
            } else {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[async_trait]
impl BlobStore for LocalFsBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: ByteStream,
        limit: u64,
        _content_type: &str,
    ) -> CoreResult<u64> {
        let tmp = self
            .root
            .join(".tmp")
            .join(uuid::Uuid::now_v7().to_string());
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut reader = StreamReader::new(limited(body, limit, exceeded.clone()));
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let n = tokio::io::copy(&mut reader, &mut file).await?;
            file.flush().await?;
            file.sync_all().await?;
            Ok::<u64, std::io::Error>(n)
        }
        .await;
        let n = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(if exceeded.load(Ordering::SeqCst) {
                    too_large(limit)
                } else {
                    io(e)
                });
            }
        };
        let target = self.path(key);
        let placed = async {
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&tmp, &target).await
        }
        .await;
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(e));
        }
        Ok(n)
    }

    /// The file's own length is always used (a local stat costs nothing).
    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
        _known_size: Option<u64>,
    ) -> CoreResult<Option<Blob>> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().await.map_err(io)?;
        if !meta.is_file() {
            return Ok(None);
        }
        let size = meta.len();
        let (start, len) = resolve_range(range, size)?;
        file.seek(SeekFrom::Start(start)).await.map_err(io)?;
        Ok(Some(Blob {
            size,
            start,
            len,
            body: Box::pin(ReaderStream::new(file.take(len))),
        }))
    }

    async fn size(&self, key: &BlobKey) -> CoreResult<Option<u64>> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> CoreResult<bool> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn list(&self, prefix: Option<&BlobKey>) -> CoreResult<Vec<(BlobKey, u64)>> {
        let (start, base) = match prefix {
            Some(p) => (self.path(p), format!("{}/", p.as_str())),
            None => (self.root.clone(), String::new()),
        };
        let mut out = Vec::new();
        let mut dirs = vec![(start, base)];
        while let Some((dir, rel)) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    continue
                }
                Err(e) => return Err(io(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io)? {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Writes in progress.
                if rel.is_empty() && name == ".tmp" {
                    continue;
                }
                let meta = entry.metadata().await.map_err(io)?;
                let path = format!("{rel}{name}");
                if meta.is_dir() {
                    dirs.push((entry.path(), format!("{path}/")));
                } else if let (true, Ok(key)) = (meta.is_file(), BlobKey::new(&path)) {
                    out.push((key, meta.len()));
                }
            }
        }
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(out)
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> CoreResult<u64> {
        let path = self.path(prefix);
        match tokio::fs::metadata(&path).await {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io(e)),
            Ok(m) if m.is_file() => Ok(0),
            Ok(_) => {
                let n = count_files(&path).await.map_err(io)?;
                tokio::fs::remove_dir_all(&path).await.map_err(io)?;
                Ok(n)
            }
        }
    }
}
