//! The self-hosted JWT secret: generated once, kept in the data directory with mode 0600.

use rand::RngCore;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The secret stored at `dir/jwt_secret`, creating it (64 random bytes, hex) on first use.
pub fn load_or_create(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("jwt_secret");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        // An empty file (a crash between create and write) is replaced.
        Ok(_) => std::fs::remove_file(&path)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new JWT secret (64 random bytes) and stored it with mode 0600");
    Ok(secret)
}
