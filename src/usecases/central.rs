//! What ecto-central tells this server: `POST /api/discovery-status` (reference §2.6), signed
//! with the shared `CENTRAL_SYNC_KEY`.

use super::base::central::set_approval;
use super::base::signing::central_signature_valid;
use crate::model::Server;
use crate::{CoreError, CoreResult, Services};
use serde::Deserialize;
use std::time::Duration;

/// How far `X-Timestamp` may be from now, either way.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;

/// How long a signature is remembered: a timestamp stays acceptable for twice the window
/// (from `WINDOW` s before it to `WINDOW` s after it), so a signature seen once is refused for
/// as long as it could otherwise be accepted.
const REPLAY_TTL: Duration = Duration::from_secs(2 * TIMESTAMP_WINDOW_SECS as u64 + 5);

/// What a push came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// No `CENTRAL_SYNC_KEY` is configured: nothing is checked or changed (503).
    NotConfigured,
    /// `discovery_approved` is now this (200 `{"ok":true}`).
    Applied(bool),
}

#[derive(Deserialize)]
struct StatusBody {
    approved: bool,
}

/// Checks a push's signature headers against `body` (its raw bytes): both present, the
/// timestamp unix seconds within ±300 s of now, the signature ours, and not seen before.
/// UNAUTHORIZED otherwise.
async fn verify(
    svc: &Services,
    key: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> CoreResult<()> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(CoreError::unauthorized("Missing signature headers"));
    };
    let fresh = timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| svc.clock.now().timestamp().abs_diff(t) <= TIMESTAMP_WINDOW_SECS as u64);
    if !fresh {
        return Err(CoreError::unauthorized("Expired or invalid timestamp"));
    }
    if !central_signature_valid(key, timestamp, body, signature.trim()) {
        return Err(CoreError::unauthorized("Invalid signature"));
    }
    // Remembered by its bytes, so the same signature in the other case is the same one.
    let seen = seen_key(Some(signature));
    if !svc.cache.set_if_absent(&seen, "1", REPLAY_TTL).await? {
        return Err(CoreError::unauthorized("Signature already used"));
    }
    Ok(())
}

/// The cache key under which a push's signature is remembered.
fn seen_key(signature: Option<&str>) -> String {
    format!(
        "central-signature:{}",
        signature.unwrap_or("").trim().to_ascii_lowercase()
    )
}

/// `POST /api/discovery-status` from ecto-central: with a sync key configured, verifies the
/// signature ([`verify`]), reads `{approved: bool}` (BAD_REQUEST otherwise), then sets the
/// server's `discovery_approved` and tells its sessions (`server.update`, the Server object
/// with its config keys, as configuration changes send it). `server` is the request's server,
/// looked at (and its error returned) only once the push is known to be central's.
pub async fn push_status(
    svc: &Services,
    server: CoreResult<Server>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> CoreResult<Push> {
    let Some(key) = &svc.settings.central_sync_key else {
        return Ok(Push::NotConfigured);
    };
    verify(svc, key.as_bytes(), timestamp, signature, body).await?;
    match apply(svc, server, body).await {
        Ok(approved) => Ok(Push::Applied(approved)),
        Err(e) => {
            // Not applied: central may send the same push again (setting the value twice is
            // harmless), so its signature is forgotten.
            let _ = svc.cache.remove(&seen_key(signature)).await;
            Err(e)
        }
    }
}

/// Reads `{approved}` and applies it to `server`.
async fn apply(svc: &Services, server: CoreResult<Server>, body: &[u8]) -> CoreResult<bool> {
    let status: StatusBody = serde_json::from_slice(body)
        .map_err(|_| CoreError::bad_request("Body must be {\"approved\": boolean}"))?;
    set_approval(svc, &server?, status.approved).await?;
    Ok(status.approved)
}
