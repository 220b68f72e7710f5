//! `ecto-server export <archive>` and `ecto-server import <archive>`: a whole deployment
//! (every row of every table and every upload) moved between databases and upload stores of
//! either kind. This is how a self-hosted community on SQLite and local disk grows onto
//! PostgreSQL and S3, and how it comes back.
//!
//! The archive (tar, gzip-compressed when its name ends in `.gz` or `.tgz`, mode 0600):
//!
//! - `header.json`, first: format version, the source's schema version and backend, every
//!   table with its columns and their kinds ([`ecto_sql::Layout`]), the rows of each table, and
//!   whether the generated JWT secret is included.
//! - `jwt_secret`, when the source's data directory holds a generated one (tokens and signed
//!   links stay valid after the move).
//! - `tables/<table>.jsonl`, parents before children: one JSON array per row, the values in the
//!   header's column order, read inside one transaction (a consistent snapshot).
//! - `files/<key>`: every blob of the upload store, listed after the rows were read (an upload
//!   writes its blob before its row, so every row of the snapshot has its blob).
//! - `files.json`, last: each blob's key, size and SHA-256. An archive without it is cut short.
//!
//! `import` needs an empty database (it applies the migrations first) and an empty upload
//! store. It writes all rows in one transaction, puts every blob, then checks every table's
//! row count against the header and reads every blob back from the store to compare its
//! checksum; only then does it commit. On any failure it rolls back and deletes the blobs it
//! put, so nothing is half-imported.

use super::backup::{
    append_bytes, append_file, finish_tar, gzipped, io_error, open_archive, tar_writer, Partial,
};
use super::{CliError, CliResult};
use crate::compose::{open_blob_store, open_database};
use crate::config::AppConfig;
use ecto_core::ports::{BlobKey, BlobStore};
use ecto_sql::{Import, Layout, TableInfo};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The version of the archive layout this binary writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Rows per insert statement of an import.
const BATCH: usize = 500;

/// The archive's `header.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format_version: u32,
    /// RFC 3339, when the export began.
    pub created_at: String,
    /// The `ecto-server` version that wrote the archive.
    pub server_version: String,
    pub layout: Layout,
    /// Rows per table.
    pub rows: BTreeMap<String, i64>,
    pub jwt_secret_included: bool,
}

/// One blob in `files.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// The archive's `files.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trailer {
    pub files: Vec<FileEntry>,
}

/// What an export wrote or an import moved in (and checked).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: BTreeMap<String, i64>,
    pub files: u64,
    pub bytes: u64,
}

/// Where progress lines go (the binary prints them on standard error).
pub type Report<'a> = dyn FnMut(&str) + Send + 'a;

/// Says when another progress line is due: at most one a second.
struct Ticker(Instant);

impl Ticker {
    fn new() -> Self {
        Self(Instant::now())
    }

    fn due(&mut self) -> bool {
        let due = self.0.elapsed() >= Duration::from_secs(1);
        if due {
            self.0 = Instant::now();
        }
        due
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The generated JWT secret of the data directory, when no `JWT_SECRET` is configured.
fn generated_secret(config: &AppConfig) -> Option<PathBuf> {
    config
        .jwt_secret
        .is_none()
        .then(|| config.data_dir.join("jwt_secret"))
}

/// Writes the export archive of the configured database and upload store to `archive`.
pub async fn export(
    config: &AppConfig,
    archive: &Path,
    report: &mut Report<'_>,
) -> CliResult<Summary> {
    let db = open_database(config)?;
    let (blobs, _) = open_blob_store(config)?;
    let layout = db.layout().await.map_err(|e| {
        CliError::new(format!(
            "cannot read the database to export (is it an ecto-server database?): {}",
            super::describe(&e)
        ))
    })?;
    let parent = match archive.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let work = tempfile::Builder::new()
        .prefix(".ecto-export-")
        .tempdir_in(&parent)
        .map_err(io_error("cannot create a work directory in", &parent))?;
    let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let rows = export_rows(&db, &layout, work.path(), report).await?;
    let secret = generated_secret(config).filter(|p| p.is_file());
    let header = Header {
        format_version: FORMAT_VERSION,
        created_at,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        layout,
        rows: rows.clone(),
        jwt_secret_included: secret.is_some(),
    };
    let partial = Partial::create(archive)?;
    let written = async {
        let mut tar = tar_writer(&partial.file, gzipped(archive))?;
        let json = serde_json::to_vec_pretty(&header).map_err(std::io::Error::other)?;
        append_bytes(&mut tar, &json, "header.json")?;
        if let Some(secret) = &secret {
            append_file(&mut tar, secret, "jwt_secret")?;
        }
        for table in &header.layout.tables {
            let path = work.path().join(format!("{}.jsonl", table.name));
            append_file(&mut tar, &path, &format!("tables/{}.jsonl", table.name))?;
            std::fs::remove_file(&path)?;
        }
        let files = export_files(&*blobs, &mut tar, work.path(), report).await?;
        let json = serde_json::to_vec_pretty(&Trailer {
            files: files.clone(),
        })
        .map_err(std::io::Error::other)?;
        append_bytes(&mut tar, &json, "files.json")?;
        finish_tar(tar, &partial.file)?;
        Ok::<_, std::io::Error>(files)
    }
    .await
    .map_err(|e| {
        CliError::new(format!(
            "cannot write the archive {}: {e}",
            archive.display()
        ))
    })?;
    partial.keep()?;
    Ok(Summary {
        rows,
        files: written.len() as u64,
        bytes: written.iter().map(|f| f.size).sum(),
    })
}

/// Every row of `layout` into `<work>/<table>.jsonl`; the rows per table.
async fn export_rows(
    db: &ecto_sql::Db,
    layout: &Layout,
    work: &Path,
    report: &mut Report<'_>,
) -> CliResult<BTreeMap<String, i64>> {
    let mut out: HashMap<String, (BufWriter<File>, i64)> = HashMap::new();
    for table in &layout.tables {
        let path = work.join(format!("{}.jsonl", table.name));
        let file = File::create(&path).map_err(io_error("cannot create", &path))?;
        out.insert(table.name.clone(), (BufWriter::new(file), 0));
    }
    let mut ticker = Ticker::new();
    let mut sink = |table: &TableInfo, row: &str| -> ecto_core::CoreResult<()> {
        let (file, n) = out
            .get_mut(&table.name)
            .ok_or_else(|| ecto_core::CoreError::internal_msg("a row of an unknown table"))?;
        file.write_all(row.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .map_err(ecto_core::CoreError::internal)?;
        *n += 1;
        if ticker.due() {
            report(&format!("export: {} rows of {} read", n, table.name));
        }
        Ok(())
    };
    db.export_rows(layout, &mut sink).await?;
    let mut rows = BTreeMap::new();
    for (name, (mut file, n)) in out {
        file.flush()
            .map_err(|e| CliError::new(format!("cannot write the rows of {name}: {e}")))?;
        rows.insert(name, n);
    }
    report(&format!(
        "export: {} rows of {} tables read",
        rows.values().sum::<i64>(),
        rows.len()
    ));
    Ok(rows)
}

/// Copies `body` into `out`; its size and SHA-256 (hex).
async fn digest(
    mut body: ecto_core::ports::ByteStream,
    mut out: impl Write,
) -> std::io::Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        hash.update(&chunk);
        out.write_all(&chunk)?;
        size += chunk.len() as u64;
    }
    out.flush()?;
    Ok((size, hex::encode(hash.finalize())))
}

/// Every blob of `blobs` into the archive as `files/<key>`; what was written.
async fn export_files(
    blobs: &dyn BlobStore,
    tar: &mut tar::Builder<Box<dyn Write>>,
    work: &Path,
    report: &mut Report<'_>,
) -> std::io::Result<Vec<FileEntry>> {
    let listed = blobs.list(None).await.map_err(std::io::Error::other)?;
    let total = listed.len();
    let spooled = work.join("blob");
    let mut out = Vec::with_capacity(total);
    let mut ticker = Ticker::new();
    for (i, (key, size)) in listed.into_iter().enumerate() {
        // A blob deleted since the listing was deleted with its row: skip it.
        let Some(blob) = blobs
            .get(&key, None, Some(size))
            .await
            .map_err(std::io::Error::other)?
        else {
            continue;
        };
        let (size, sha256) = digest(blob.body, BufWriter::new(File::create(&spooled)?)).await?;
        append_file(tar, &spooled, &format!("files/{}", key.as_str()))?;
        out.push(FileEntry {
            key: key.as_str().to_owned(),
            size,
            sha256,
        });
        if ticker.due() {
            report(&format!("export: {}/{total} files copied", i + 1));
        }
    }
    let bytes = out.iter().map(|f| f.size).sum();
    report(&format!(
        "export: {} files copied ({})",
        out.len(),
        mib(bytes)
    ));
    Ok(out)
}

/// What an import changed outside the database transaction, undone when it fails.
#[derive(Default)]
struct Undo {
    blobs: Vec<BlobKey>,
    secret: Option<PathBuf>,
}

/// Imports the archive at `archive` into the configured (empty) database and upload store.
pub async fn import(
    config: &AppConfig,
    archive: &Path,
    report: &mut Report<'_>,
) -> CliResult<Summary> {
    let file = File::open(archive).map_err(io_error("cannot open", archive))?;
    let db = open_database(config)?;
    db.migrate().await?;
    let (blobs, _) = open_blob_store(config)?;
    let mut import = db.begin_import().await?;
    let mut undo = Undo::default();
    let result = async {
        refuse_non_empty(config, &mut import, &*blobs).await?;
        import_archive(config, file, &mut import, &*blobs, &mut undo, report).await
    }
    .await;
    let result = match result {
        Ok(summary) => import.commit().await.map(|()| summary).map_err(Into::into),
        Err(e) => {
            let _ = import.rollback().await;
            Err(e)
        }
    };
    if result.is_err() {
        for key in &undo.blobs {
            let _ = blobs.delete(key).await;
        }
        if let Some(secret) = &undo.secret {
            let _ = std::fs::remove_file(secret);
        }
    }
    result
}

async fn refuse_non_empty(
    config: &AppConfig,
    import: &mut Import,
    blobs: &dyn BlobStore,
) -> CliResult<()> {
    if !import.is_empty().await? {
        return Err(CliError::new(format!(
            "the database ({}) already holds data: import only into an empty database (a new \
             DATA_DIR, or a new PostgreSQL database in DATABASE_URL)",
            match &config.database_url {
                Some(_) => "DATABASE_URL".to_owned(),
                None => config.data_dir.join("ecto.db").display().to_string(),
            }
        )));
    }
    if !blobs.list(None).await?.is_empty() {
        return Err(CliError::new(format!(
            "the upload store ({}) is not empty: import only into an empty one",
            match &config.s3 {
                Some(s3) => format!("bucket {}", s3.bucket),
                None => config.upload_dir.display().to_string(),
            }
        )));
    }
    Ok(())
}

fn damaged(e: impl std::fmt::Display) -> CliError {
    CliError::new(format!(
        "cannot read the archive (not an ecto-server export, or damaged): {e}"
    ))
}

/// Reads the archive into the import; checks rows and files; the summary.
async fn import_archive(
    config: &AppConfig,
    file: File,
    import: &mut Import,
    blobs: &dyn BlobStore,
    undo: &mut Undo,
    report: &mut Report<'_>,
) -> CliResult<Summary> {
    let mut tar = tar::Archive::new(open_archive(file)?);
    let mut header: Option<Header> = None;
    let mut trailer: Option<Trailer> = None;
    let mut tables_seen = BTreeSet::new();
    let mut files_seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let spool_dir = tempfile::tempdir().map_err(|e| CliError::new(e.to_string()))?;
    let mut ticker = Ticker::new();
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = entry
            .path()
            .map_err(damaged)?
            .to_string_lossy()
            .into_owned();
        if trailer.is_some() {
            return Err(damaged(format!("entry {name} after files.json")));
        }
        if name == "header.json" && header.is_none() {
            let h: Header = serde_json::from_reader(&mut entry).map_err(damaged)?;
            check_header(&h, import)?;
            header = Some(h);
            continue;
        }
        let Some(h) = &header else {
            return Err(damaged("it does not begin with header.json"));
        };
        if name == "jwt_secret" {
            import_secret(config, &mut entry, undo, report)?;
        } else if name == "files.json" {
            trailer = Some(serde_json::from_reader(&mut entry).map_err(damaged)?);
        } else if let Some(table) = name
            .strip_prefix("tables/")
            .and_then(|t| t.strip_suffix(".jsonl"))
        {
            let info = h
                .layout
                .tables
                .iter()
                .find(|t| t.name == table)
                .ok_or_else(|| damaged(format!("table {table} is not in its header")))?;
            let expected = h.rows.get(table).copied().unwrap_or(0);
            import_table(import, info, &mut entry, expected, &mut ticker, report).await?;
            tables_seen.insert(table.to_owned());
        } else if let Some(key) = name.strip_prefix("files/") {
            let key = BlobKey::new(key).map_err(|_| damaged(format!("bad file name {name}")))?;
            let spooled = spool_dir.path().join("blob");
            let checked = import_file(blobs, &key, &mut entry, &spooled, undo).await?;
            files_seen.insert(key.as_str().to_owned(), checked);
            if ticker.due() {
                report(&format!("import: {} files stored", files_seen.len()));
            }
        } else {
            return Err(damaged(format!("unexpected entry {name}")));
        }
    }
    let (Some(header), Some(trailer)) = (header, trailer) else {
        return Err(CliError::new(
            "the archive has no files.json: it is cut short or not an ecto-server export",
        ));
    };
    let missing: Vec<&String> = header
        .rows
        .keys()
        .filter(|t| !tables_seen.contains(*t))
        .collect();
    if !missing.is_empty() {
        return Err(damaged(format!("the rows of {missing:?} are missing")));
    }
    verify(import, blobs, &header, &trailer, &files_seen, report).await
}

/// Refuses an archive of another format or schema version, or with other tables.
fn check_header(h: &Header, import: &Import) -> CliResult<()> {
    if h.format_version != FORMAT_VERSION {
        return Err(CliError::new(format!(
            "the archive has format version {} and this ecto-server reads version \
             {FORMAT_VERSION}: import it with the version that wrote it ({})",
            h.format_version, h.server_version
        )));
    }
    let here = import.layout();
    if h.layout.schema_version != here.schema_version {
        return Err(CliError::new(format!(
            "the archive was exported at schema version {} and this ecto-server's is {}: \
             export and import with the same version (upgrade the source first)",
            h.layout.schema_version, here.schema_version
        )));
    }
    let theirs: BTreeSet<&str> = h.layout.tables.iter().map(|t| t.name.as_str()).collect();
    let ours: BTreeSet<&str> = here.tables.iter().map(|t| t.name.as_str()).collect();
    if theirs != ours {
        return Err(CliError::new(format!(
            "the archive's tables differ from this database's: only in the archive {:?}, only \
             here {:?}",
            theirs.difference(&ours).collect::<Vec<_>>(),
            ours.difference(&theirs).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// Writes the archive's generated JWT secret into the data directory, unless a secret is
/// configured or one is there already.
fn import_secret(
    config: &AppConfig,
    entry: &mut impl Read,
    undo: &mut Undo,
    report: &mut Report<'_>,
) -> CliResult<()> {
    let Some(path) = generated_secret(config).filter(|p| !p.exists()) else {
        report("import: the archive's JWT secret is not used (JWT_SECRET is set, or the data directory has one): members sign in again");
        return Ok(());
    };
    std::fs::create_dir_all(&config.data_dir)
        .map_err(io_error("cannot create", &config.data_dir))?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_error("cannot create", &path))?;
    undo.secret = Some(path.clone());
    std::io::copy(entry, &mut out).map_err(io_error("cannot write", &path))?;
    Ok(())
}

/// Inserts the rows of one table entry in batches; refuses a count other than `expected`.
async fn import_table(
    import: &mut Import,
    info: &TableInfo,
    entry: &mut impl Read,
    expected: i64,
    ticker: &mut Ticker,
    report: &mut Report<'_>,
) -> CliResult<()> {
    let mapping = import.mapping(info)?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut n = 0i64;
    for line in BufReader::new(entry).lines() {
        let line = line.map_err(damaged)?;
        batch.push(serde_json::from_str(&line).map_err(damaged)?);
        if batch.len() == BATCH {
            import.insert(&mapping, &batch).await?;
            n += batch.len() as i64;
            batch.clear();
            if ticker.due() {
                report(&format!("import: {n}/{expected} rows of {}", info.name));
            }
        }
    }
    import.insert(&mapping, &batch).await?;
    n += batch.len() as i64;
    if n != expected {
        return Err(damaged(format!(
            "{} has {n} rows where its header says {expected}",
            info.name
        )));
    }
    Ok(())
}

/// Stores one file entry under `key` (through a spool file); its size and SHA-256.
async fn import_file(
    blobs: &dyn BlobStore,
    key: &BlobKey,
    entry: &mut impl Read,
    spooled: &Path,
    undo: &mut Undo,
) -> CliResult<(u64, String)> {
    let mut hash = Sha256::new();
    let mut size = 0u64;
    {
        let mut out =
            BufWriter::new(File::create(spooled).map_err(io_error("cannot create", spooled))?);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(damaged)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io_error("cannot write", spooled))?;
            size += n as u64;
        }
        out.flush().map_err(io_error("cannot write", spooled))?;
    }
    let body = tokio::fs::File::open(spooled)
        .await
        .map_err(io_error("cannot read", spooled))?;
    undo.blobs.push(key.clone());
    let stored = blobs
        .put(
            key,
            Box::pin(tokio_util::io::ReaderStream::new(body)),
            u64::MAX,
            "application/octet-stream",
        )
        .await?;
    if stored != size {
        return Err(CliError::new(format!(
            "the upload store kept {stored} bytes of {} where the archive has {size}",
            key.as_str()
        )));
    }
    Ok((size, hex::encode(hash.finalize())))
}

/// Checks the imported rows against the header and every blob, read back from the store,
/// against `files.json`.
async fn verify(
    import: &mut Import,
    blobs: &dyn BlobStore,
    header: &Header,
    trailer: &Trailer,
    seen: &BTreeMap<String, (u64, String)>,
    report: &mut Report<'_>,
) -> CliResult<Summary> {
    for (table, expected) in &header.rows {
        let n = import.count(table).await?;
        if n != *expected {
            return Err(CliError::new(format!(
                "{table} holds {n} rows after the import where the archive has {expected}"
            )));
        }
    }
    let listed: BTreeMap<&str, (u64, &str)> = trailer
        .files
        .iter()
        .map(|f| (f.key.as_str(), (f.size, f.sha256.as_str())))
        .collect();
    if listed.len() != seen.len() {
        return Err(damaged(format!(
            "it holds {} files where files.json lists {}",
            seen.len(),
            listed.len()
        )));
    }
    let mut ticker = Ticker::new();
    let mut bytes = 0u64;
    for (i, (key, (size, sha256))) in listed.iter().enumerate() {
        if seen.get(*key).map(|(s, h)| (*s, h.as_str())) != Some((*size, *sha256)) {
            return Err(damaged(format!(
                "{key} differs from its size or checksum in files.json"
            )));
        }
        let blob_key = BlobKey::new(key).map_err(|_| damaged(format!("bad key {key}")))?;
        let blob = blobs
            .get(&blob_key, None, Some(*size))
            .await?
            .ok_or_else(|| CliError::new(format!("{key} is missing from the upload store")))?;
        let (stored, hash) = digest(blob.body, std::io::sink())
            .await
            .map_err(|e| CliError::new(format!("cannot read {key} back: {e}")))?;
        if (stored, hash.as_str()) != (*size, *sha256) {
            return Err(CliError::new(format!(
                "{key} reads back from the upload store with another checksum"
            )));
        }
        bytes += size;
        if ticker.due() {
            report(&format!("import: {}/{} files checked", i + 1, listed.len()));
        }
    }
    report(&format!(
        "import: {} rows in {} tables and {} files ({}) checked",
        header.rows.values().sum::<i64>(),
        header.rows.len(),
        listed.len(),
        mib(bytes)
    ));
    Ok(Summary {
        rows: header.rows.clone(),
        files: listed.len() as u64,
        bytes,
    })
}
