//! Self-hosted secrets generated once and kept in the data directory with mode 0600: the JWT
//! secret, and the setup token that the first owner's registration must present.

use rand::RngCore;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The secret stored at `dir/jwt_secret`, creating it (64 random bytes, hex) on first use.
pub fn load_or_create(dir: &Path) -> std::io::Result<String> {
    load_or_create_file(dir, "jwt_secret", 64)
}

/// The one-time setup token at `dir/setup_token`, creating it (16 random bytes, hex) on first
/// use.
pub fn setup_token(dir: &Path) -> std::io::Result<String> {
    load_or_create_file(dir, "setup_token", 16)
}

/// Forgets the setup token once the server has its owner.
pub fn forget_setup_token(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join("setup_token")) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The hex secret in `dir/name`, created with `bytes` random bytes when absent.
fn load_or_create_file(dir: &Path, name: &str, bytes: usize) -> std::io::Result<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        // An empty file (a crash between create and write) is replaced.
        Ok(_) => std::fs::remove_file(&path)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let mut random = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut random);
    let secret = hex::encode(random);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), bytes, "generated a new secret and stored it with mode 0600");
    Ok(secret)
}
