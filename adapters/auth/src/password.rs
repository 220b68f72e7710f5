//! argon2id with the crate's default parameters, run off the async threads, one per core at
//! a time.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::Argon2;
use async_trait::async_trait;
use ecto_core::ports::PasswordHasher;
use ecto_core::{CoreError, CoreResult};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// At most one hash per core at a time: each takes 19 MiB of memory, and more at once only
/// queue for the same cores while holding theirs (a burst of sign-ins stays bounded).
static PERMITS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    )
});

/// [`PasswordHasher`] on argon2id. Hashing is CPU-bound, so it runs on the blocking pool.
#[derive(Default)]
pub struct Argon2PasswordHasher;

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &str) -> CoreResult<String> {
        let password = password.to_owned();
        let _permit = PERMITS.acquire().await.map_err(CoreError::internal)?;
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| CoreError::internal_msg(format!("argon2 hash: {e}")))
        })
        .await
        .map_err(CoreError::internal)?
    }

    async fn verify(&self, password: &str, hash: &str) -> CoreResult<bool> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        let _permit = PERMITS.acquire().await.map_err(CoreError::internal)?;
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(&hash) else {
                return false;
            };
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(CoreError::internal)
    }
}
