//! argon2id with the crate's default parameters (PHC strings, so stored hashes stay readable by
//! any argon2 implementation), on a few dedicated threads.
//!
//! Every hash needs 19 MiB of work memory. Allocating it per hash on the shared blocking pool
//! left it resident on glibc (eight sequential sign-ins grew the process by 19.5 MiB each; a
//! burst of 32 left about 330 MiB). Here at most one thread per core hashes, so a burst of
//! sign-ins queues instead of taking every core and at most one work area per core exists. A
//! finished hash leaves its area for the next one while hashes are queued; the hash that ends
//! with nothing queued frees every area.
//!
//! The threads end after [`IDLE`] without a job and are started again by the next one. Freed
//! on a thread that lived on, an area stayed resident for good (a fresh release server: 24 MiB
//! idle, 66 MiB 60 s after 32 sign-ins, one 20 MiB mapping per hashing thread); once the
//! thread ends the allocator returns it within its decay time (28 MiB 30 s after the burst).
//! The queue is a deque under a mutex with a condition variable: the first version waited in
//! `mpsc::Receiver::recv_timeout` while holding the receiver's lock, and in release builds one
//! thread stayed parked in it for good after a burst (its futex wait had no timeout), keeping
//! both threads, and their areas, alive (66 MiB 60 s after 32 sign-ins).

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use ecto_core::ports::PasswordHasher;
use ecto_core::{CoreError, CoreResult};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Jobs sent and not yet taken by a hashing thread.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Work areas left by finished hashes for the queued ones. A hash that ends with nothing
/// queued empties it, under this lock, so no area outlives a burst: one left by a hash that
/// saw a job queued is freed when that job ends.
static AREAS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// How long a hashing thread waits for another job before it ends.
const IDLE: Duration = Duration::from_secs(2);

/// Hashing threads running now (at most one per core).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The jobs waiting for a hashing thread, and the signal that one was added.
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    added: Condvar,
}

/// The queue of jobs; hashing threads are started as jobs come and end when idle.
static POOL: Queue = Queue {
    jobs: Mutex::new(VecDeque::new()),
    added: Condvar::new(),
};

/// The job queue, locked (a poisoned lock is taken over: a job runs outside it).
fn jobs() -> MutexGuard<'static, VecDeque<Job>> {
    POOL.jobs.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a hashing thread unless one per core is running.
fn spawn_worker() {
    let max = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let live = LIVE.fetch_add(1, Ordering::SeqCst);
    if live >= max {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name(format!("argon2-{live}"))
        .spawn(|| {
            let mut queue = jobs();
            loop {
                if let Some(job) = queue.pop_front() {
                    QUEUED.fetch_sub(1, Ordering::SeqCst);
                    drop(queue);
                    job();
                    queue = jobs();
                    continue;
                }
                let (guard, waited) = POOL
                    .added
                    .wait_timeout(queue, IDLE)
                    .unwrap_or_else(|p| p.into_inner());
                queue = guard;
                // Ending under the queue's lock: a job queued after this is not seen here,
                // but its sender then finds one thread fewer and starts another.
                if waited.timed_out() && queue.is_empty() {
                    LIVE.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        tracing::error!(error = %e, "cannot start a password hashing thread");
    }
}

/// Runs `work` on a hashing thread and waits for its result.
async fn on_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> CoreResult<T> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    QUEUED.fetch_add(1, Ordering::SeqCst);
    jobs().push_back(job);
    POOL.added.notify_one();
    spawn_worker();
    rx.await
        .map_err(|_| CoreError::internal_msg("password hashing thread failed"))
}

/// The raw argon2 output of `password` and `salt` into `out`, in a work area left by an
/// earlier hash of the burst or a new one.
fn raw_hash(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let blocks = argon.params().block_count();
    let areas = || AREAS.lock().unwrap_or_else(|p| p.into_inner());
    let left = areas().pop().filter(|area| area.len() >= blocks);
    let mut area = left.unwrap_or_else(|| vec![Block::default(); blocks]);
    let hashed = argon
        .hash_password_into_with_memory(password, salt, out, &mut area[..blocks])
        .map_err(|e| e.to_string());
    let mut areas = areas();
    if QUEUED.load(Ordering::SeqCst) > 0 {
        areas.push(area);
    } else {
        areas.clear();
    }
    hashed
}

/// A new PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
fn hash_phc(password: &[u8]) -> Result<String, String> {
    let argon = Argon2::default();
    let params = argon.params().clone();
    let salt_bytes: [u8; 16] = rand::random();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    raw_hash(&argon, password, &salt_bytes, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt_bytes).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored` (any argon2 variant and parameters it
/// names); the outputs are compared in constant time.
fn verify_phc(password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if raw_hash(&argon, password, salt, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// [`PasswordHasher`] on argon2id.
#[derive(Default)]
pub struct Argon2PasswordHasher;

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &str) -> CoreResult<String> {
        let password = password.to_owned();
        on_pool(move || hash_phc(password.as_bytes()))
            .await?
            .map_err(|e| CoreError::internal_msg(format!("argon2 hash: {e}")))
    }

    async fn verify(&self, password: &str, hash: &str) -> CoreResult<bool> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        on_pool(move || verify_phc(password.as_bytes(), &hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        let ours = hash_phc(b"correct horse").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The crate's own verifier accepts ours, and ours accepts the crate's.
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let theirs = Argon2::default()
            .hash_password(b"battery staple")
            .expect("hash")
            .to_string();
        assert!(verify_phc(b"battery staple", &theirs));
        assert!(!verify_phc(b"battery stapler", &theirs));
        assert!(!verify_phc(b"correct horse!", &ours));
        assert!(!verify_phc(b"correct horse", "not a phc string"));
    }
}

#[cfg(test)]
mod burst_tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_leaves_no_work_area_behind() {
        let hasher = Arc::new(Argon2PasswordHasher);
        let jobs: Vec<_> = (0..16)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash(&format!("password {i}")).await })
            })
            .collect();
        for j in jobs {
            j.await.expect("join").expect("hash");
        }
        assert_eq!(QUEUED.load(Ordering::SeqCst), 0);
        assert_eq!(AREAS.lock().expect("areas").len(), 0);
        // The threads end once idle, and the next hash starts one again.
        tokio::time::sleep(IDLE + Duration::from_secs(1)).await;
        assert_eq!(LIVE.load(Ordering::SeqCst), 0);
        hasher.hash("after the burst").await.expect("hash");
        assert!(LIVE.load(Ordering::SeqCst) >= 1);
    }
}
