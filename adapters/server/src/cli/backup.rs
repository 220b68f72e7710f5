//! `ecto-server backup <archive>` and `ecto-server restore <archive>` (self-hosted, SQLite).
//!
//! A backup is one tar archive (gzip-compressed when its name ends in `.gz` or `.tgz`):
//!
//! - `ecto.db`: a snapshot of the database made by SQLite itself with `VACUUM INTO`, which
//!   SQLite documents as a transactionally consistent copy; it reads in one transaction, so a
//!   running server goes on writing meanwhile. The live file and its write-ahead log are never
//!   copied.
//! - `jwt_secret`: the generated signing secret, when the data directory holds one (tokens
//!   and signed file links stay valid after a restore). The archive is therefore written with
//!   mode 0600: keep it as private as the data directory.
//! - `uploads/…`: the upload directory's files, copied AFTER the snapshot. An upload writes
//!   its file before its row, so every row in the snapshot has its file on disk already. A file
//!   uploaded during the backup may be included without its row (harmless: nothing names it);
//!   a file deleted during the backup, after the snapshot, is missing while its row (deleted
//!   since) is in the snapshot.
//! - `manifest.json`, last: format version, creation time, server version and the counts that
//!   `restore` checks (rows of the main tables, upload files and bytes). An archive cut short
//!   has no manifest and is refused.
//!
//! With PostgreSQL configured both commands refuse and say what to use instead.

use super::{CliError, CliResult};
use crate::config::AppConfig;
use ecto_sql::Db;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The version of the archive layout this binary writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The tables whose row counts the manifest records and `restore` checks.
const COUNTED_TABLES: [&str; 9] = [
    "servers",
    "local_users",
    "members",
    "channels",
    "messages",
    "attachments",
    "shared_files",
    "audit_log",
    "invites",
];

/// The archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    /// RFC 3339, when the snapshot was taken.
    pub created_at: String,
    /// The `ecto-server` version that wrote the archive.
    pub server_version: String,
    /// Rows per table in the snapshot.
    pub tables: BTreeMap<String, i64>,
    /// Whether the uploads are in the archive (false when S3 holds them).
    pub uploads_included: bool,
    pub upload_files: u64,
    pub upload_bytes: u64,
    /// Whether the archive holds the generated JWT secret.
    pub jwt_secret_included: bool,
}

/// Why PostgreSQL deployments back up differently.
const POSTGRES_ADVICE: &str = "the database is PostgreSQL (DATABASE_URL): `ecto-server backup` \
and `restore` handle the self-hosted SQLite database only. Back PostgreSQL up with its own \
tools, which take consistent snapshots of a running database: `pg_dump --format=custom \
--file=ecto.dump <DATABASE_URL>` and `pg_restore --dbname=<DATABASE_URL> ecto.dump` (or \
continuous archiving). Uploads on S3 are protected by the bucket's own versioning and \
replication; uploads on local disk (UPLOAD_DIR) are plain files, copy them after the dump";

/// The SQLite file of the configuration: `database_url` when it names a file, else
/// `<data_dir>/ecto.db`. An error with the PostgreSQL advice when it is PostgreSQL.
fn sqlite_path(config: &AppConfig) -> CliResult<PathBuf> {
    match &config.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Err(CliError::new(POSTGRES_ADVICE))
        }
        Some(url) => Ok(PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url))),
        None => Ok(config.data_dir.join("ecto.db")),
    }
}

/// Rows per counted table of the SQLite file at `path`.
async fn table_counts(path: &Path) -> CliResult<BTreeMap<String, i64>> {
    let db = Db::open(&path.to_string_lossy(), 1)?;
    let mut counts = BTreeMap::new();
    for table in COUNTED_TABLES {
        let n = db
            .count_sql(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await?;
        counts.insert(table.to_owned(), n);
    }
    Ok(counts)
}

pub(super) fn io_error<'a>(
    what: &str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CliError + 'a {
    let what = what.to_owned();
    move |e| CliError::new(format!("{what} {}: {e}", path.display()))
}

/// Makes the backup archive at `archive` from the configured (running or stopped) server; the
/// manifest of what it holds.
pub async fn backup(config: &AppConfig, archive: &Path) -> CliResult<Manifest> {
    let db_path = sqlite_path(config)?;
    if !db_path.is_file() {
        return Err(CliError::new(format!(
            "no database at {}: nothing to back up (check DATA_DIR / DATABASE_URL)",
            db_path.display()
        )));
    }
    let parent = match archive.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The snapshot is written next to the archive (the same file system as the result).
    let work = tempfile::Builder::new()
        .prefix(".ecto-backup-")
        .tempdir_in(&parent)
        .map_err(io_error("cannot create a work directory in", &parent))?;
    let snapshot = work.path().join("ecto.db");
    {
        let live = Db::open(&db_path.to_string_lossy(), 1)?;
        let target = snapshot.to_string_lossy().replace('\'', "''");
        live.execute_sql(&format!("VACUUM INTO '{target}'"))
            .await
            .map_err(|e| {
                CliError::new(format!(
                    "cannot snapshot {}: {}",
                    db_path.display(),
                    super::describe(&e)
                ))
            })?;
    }
    let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let tables = table_counts(&snapshot).await?;
    let secret = config
        .jwt_secret
        .is_none()
        .then(|| config.data_dir.join("jwt_secret"))
        .filter(|p| p.is_file());
    let uploads = config.s3.is_none().then(|| config.upload_dir.clone());
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        created_at,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        tables,
        uploads_included: uploads.is_some(),
        upload_files: 0,
        upload_bytes: 0,
        jwt_secret_included: secret.is_some(),
    };
    let archive = archive.to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        write_archive(
            &archive,
            &snapshot,
            secret.as_deref(),
            uploads.as_deref(),
            manifest.clone(),
        )
        .map(|(files, bytes)| {
            manifest.upload_files = files;
            manifest.upload_bytes = bytes;
            manifest
        })
    })
    .await
    .map_err(|e| CliError::new(format!("the backup stopped: {e}")))?;
    drop(work);
    written
}

/// Whether `path` names a gzip-compressed archive.
pub(super) fn gzipped(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".gz") || name.ends_with(".tgz")
}

/// Writes the archive to `<archive>.partial` (mode 0600) and renames it into place once
/// complete; the number of upload files and their bytes.
fn write_archive(
    archive: &Path,
    snapshot: &Path,
    secret: Option<&Path>,
    uploads: Option<&Path>,
    mut manifest: Manifest,
) -> CliResult<(u64, u64)> {
    write_atomically(archive, |file| {
        fill_archive(
            file,
            gzipped(archive),
            snapshot,
            secret,
            uploads,
            &mut manifest,
        )
    })
}

/// Creates `<archive>.partial` (mode 0600: archives hold secrets), lets `fill` write it, and
/// renames it to `archive` when `fill` succeeded; removes it when not.
pub(super) fn write_atomically<T>(
    archive: &Path,
    fill: impl FnOnce(&File) -> std::io::Result<T>,
) -> CliResult<T> {
    let partial = Partial::create(archive)?;
    let done = fill(&partial.file).map_err(|e| {
        CliError::new(format!(
            "cannot write the archive {}: {e}",
            archive.display()
        ))
    })?;
    partial.keep()?;
    Ok(done)
}

/// An archive being written: `<archive>.partial` (mode 0600, as archives hold secrets),
/// renamed to the archive by [`Partial::keep`], removed when dropped before.
pub(super) struct Partial {
    pub(super) file: File,
    path: PathBuf,
    archive: PathBuf,
    kept: bool,
}

impl Partial {
    pub(super) fn create(archive: &Path) -> CliResult<Self> {
        let path = PathBuf::from(format!("{}.partial", archive.display()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("cannot create", &path))?;
        Ok(Self {
            file,
            path,
            archive: archive.to_path_buf(),
            kept: false,
        })
    }

    /// Puts the complete archive in place.
    pub(super) fn keep(mut self) -> CliResult<()> {
        std::fs::rename(&self.path, &self.archive)
            .map_err(io_error("cannot write", &self.archive))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A tar writer on `file`, gzip-compressed when `gzip`.
pub(super) fn tar_writer(file: &File, gzip: bool) -> std::io::Result<tar::Builder<Box<dyn Write>>> {
    let out: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            BufWriter::new(file.try_clone()?),
            flate2::Compression::default(),
        ))
    } else {
        Box::new(BufWriter::new(file.try_clone()?))
    };
    Ok(tar::Builder::new(out))
}

/// Finishes the archive of `tar` and makes it durable in `file`.
pub(super) fn finish_tar(tar: tar::Builder<Box<dyn Write>>, file: &File) -> std::io::Result<()> {
    let mut out = tar.into_inner()?;
    out.flush()?;
    drop(out);
    file.sync_all()
}

/// Writes the entries into `file`; the number of upload files and their bytes.
fn fill_archive(
    file: &File,
    gzip: bool,
    snapshot: &Path,
    secret: Option<&Path>,
    uploads: Option<&Path>,
    manifest: &mut Manifest,
) -> std::io::Result<(u64, u64)> {
    let mut tar = tar_writer(file, gzip)?;
    append_file(&mut tar, snapshot, "ecto.db")?;
    if let Some(secret) = secret {
        append_file(&mut tar, secret, "jwt_secret")?;
    }
    let (mut files, mut bytes) = (0u64, 0u64);
    if let Some(root) = uploads {
        for (path, name) in upload_files(root)? {
            // A file deleted since it was listed was deleted with its row: skip it.
            match append_file(&mut tar, &path, &format!("uploads/{name}")) {
                Ok(size) => {
                    files += 1;
                    bytes += size;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    manifest.upload_files = files;
    manifest.upload_bytes = bytes;
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    append_bytes(&mut tar, &json, "manifest.json")?;
    finish_tar(tar, file)?;
    Ok((files, bytes))
}

/// Appends the file at `path` as `name` (mode 0600); its size.
pub(super) fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    header.set_entry_type(tar::EntryType::Regular);
    // The size is fixed when the header is written: read exactly that many bytes.
    tar.append_data(&mut header, name, (&mut file).take(size))?;
    Ok(size)
}

pub(super) fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    bytes: &[u8],
    name: &str,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes)
}

/// Every regular file under `root` (its path, and its name relative to `root` with `/`),
/// except the upload store's `.tmp` directory of writes in progress. A missing root is empty.
fn upload_files(root: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if prefix.is_empty() && name == ".tmp" {
                continue;
            }
            let kind = entry.file_type()?;
            let rel = format!("{prefix}{name}");
            if kind.is_dir() {
                dirs.push((entry.path(), format!("{rel}/")));
            } else if kind.is_file() {
                out.push((entry.path(), rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Whether `dir` is absent or an empty directory.
pub(super) fn absent_or_empty(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// A name inside the archive made only of plain components (no `..`, no root).
pub(super) fn plain(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let ok = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| path.to_path_buf())
}

/// What restoring wrote, removed again when the restore fails.
#[derive(Default)]
pub(super) struct Written {
    pub(super) files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Written {
    pub(super) fn create_dirs(&mut self, dir: &Path) -> std::io::Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        for d in missing.into_iter().rev() {
            std::fs::create_dir(&d)?;
            self.dirs.push(d);
        }
        Ok(())
    }

    pub(super) fn undo(self) {
        for f in self.files.iter().rev() {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Restores the archive at `archive` into the configured data directory, which must be empty
/// (or absent), as must the upload directory and the database file when they lie outside it.
/// Checks the archive against its manifest; on any failure removes what it wrote.
pub async fn restore(config: &AppConfig, archive: &Path) -> CliResult<Manifest> {
    let db_path = sqlite_path(config)?;
    let refuse_non_empty = |dir: &Path, what: &str| -> CliResult<()> {
        if absent_or_empty(dir).map_err(io_error("cannot read", dir))? {
            Ok(())
        } else {
            Err(CliError::new(format!(
                "the {what} {} is not empty: restore only into an empty directory (move its \
                 contents away, or point DATA_DIR at a new directory)",
                dir.display()
            )))
        }
    };
    refuse_non_empty(&config.data_dir, "data directory")?;
    if !config.upload_dir.starts_with(&config.data_dir) && config.s3.is_none() {
        refuse_non_empty(&config.upload_dir, "upload directory")?;
    }
    if db_path.exists() {
        return Err(CliError::new(format!(
            "a database already exists at {}: restore only where there is none",
            db_path.display()
        )));
    }
    let file = File::open(archive).map_err(io_error("cannot open", archive))?;
    let (data_dir, upload_dir, target_db) = (
        config.data_dir.clone(),
        config.upload_dir.clone(),
        db_path.clone(),
    );
    let mut written = Written::default();
    let extracted = tokio::task::spawn_blocking(move || {
        let result = extract(file, &data_dir, &upload_dir, &target_db, &mut written);
        (result, written)
    })
    .await
    .map_err(|e| CliError::new(format!("the restore stopped: {e}")))?;
    let (result, written) = extracted;
    let checked = match result {
        Ok((manifest, files, bytes)) => check_restored(&db_path, manifest, files, bytes).await,
        Err(e) => Err(e),
    };
    if checked.is_err() {
        written.undo();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
        }
    }
    checked
}

/// Compares what was restored with the manifest.
async fn check_restored(
    db_path: &Path,
    manifest: Manifest,
    files: u64,
    bytes: u64,
) -> CliResult<Manifest> {
    if manifest.uploads_included
        && (files != manifest.upload_files || bytes != manifest.upload_bytes)
    {
        return Err(CliError::new(format!(
            "the archive holds {files} upload file(s) of {bytes} bytes where its manifest says \
             {} of {}: refusing a damaged archive",
            manifest.upload_files, manifest.upload_bytes
        )));
    }
    let tables = table_counts(db_path).await?;
    if tables != manifest.tables {
        return Err(CliError::new(format!(
            "the restored database's rows {tables:?} differ from the manifest's {:?}: refusing \
             a damaged archive",
            manifest.tables
        )));
    }
    Ok(manifest)
}

/// The archive in `file`, decompressed when it starts with gzip's magic bytes.
pub(super) fn open_archive(file: File) -> CliResult<Box<dyn Read>> {
    let mut reader = BufReader::new(file);
    let compressed = {
        use std::io::BufRead;
        let head = reader
            .fill_buf()
            .map_err(|e| CliError::new(format!("cannot read the archive: {e}")))?;
        head.starts_with(&[0x1f, 0x8b])
    };
    Ok(if compressed {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// Reads the archive entry by entry into place; the manifest, and the upload files and bytes
/// written.
fn extract(
    file: File,
    data_dir: &Path,
    upload_dir: &Path,
    db_path: &Path,
    written: &mut Written,
) -> CliResult<(Manifest, u64, u64)> {
    let input = open_archive(file)?;
    let damaged = |e: std::io::Error| {
        CliError::new(format!(
            "cannot read the archive (not an ecto-server backup, or damaged): {e}"
        ))
    };
    let mut tar = tar::Archive::new(input);
    let mut manifest: Option<Manifest> = None;
    let (mut files, mut bytes, mut has_db) = (0u64, 0u64, false);
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        if manifest.is_some() {
            return Err(CliError::new(
                "the archive has entries after its manifest: not an ecto-server backup",
            ));
        }
        let kind = entry.header().entry_type();
        let name = entry
            .path()
            .map_err(damaged)?
            .to_string_lossy()
            .into_owned();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(CliError::new(format!(
                "the archive entry {name} is not a regular file: not an ecto-server backup"
            )));
        }
        let target = match name.as_str() {
            "manifest.json" => {
                let mut text = Vec::new();
                entry.read_to_end(&mut text).map_err(damaged)?;
                let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
                    CliError::new(format!("the archive's manifest is not readable: {e}"))
                })?;
                if m.format_version != FORMAT_VERSION {
                    return Err(CliError::new(format!(
                        "the archive has format version {} and this ecto-server reads version \
                         {FORMAT_VERSION}: restore it with the version that wrote it ({})",
                        m.format_version, m.server_version
                    )));
                }
                manifest = Some(m);
                continue;
            }
            "ecto.db" => {
                has_db = true;
                db_path.to_path_buf()
            }
            "jwt_secret" => data_dir.join("jwt_secret"),
            other => match other.strip_prefix("uploads/").and_then(plain) {
                Some(rel) => {
                    files += 1;
                    bytes += entry.header().size().map_err(damaged)?;
                    upload_dir.join(rel)
                }
                None => {
                    return Err(CliError::new(format!(
                        "unexpected entry {other} in the archive: not an ecto-server backup"
                    )))
                }
            },
        };
        if let Some(dir) = target.parent() {
            written
                .create_dirs(dir)
                .map_err(io_error("cannot create", dir))?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(io_error("cannot create", &target))?;
        written.files.push(target.clone());
        std::io::copy(&mut entry, &mut out).map_err(damaged)?;
        out.sync_all().map_err(io_error("cannot write", &target))?;
    }
    let manifest = manifest.ok_or_else(|| {
        CliError::new("the archive has no manifest: it is cut short or not an ecto-server backup")
    })?;
    if !has_db {
        return Err(CliError::new("the archive holds no database (ecto.db)"));
    }
    Ok((manifest, files, bytes))
}
