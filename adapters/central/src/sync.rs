//! [`CentralClient`] over HTTP: signed POSTs to ecto-central (reference §2.6, "Outbound calls
//! to central").

use async_trait::async_trait;
use ecto_core::ports::{CentralClient, SyncOutcome};
use ecto_core::usecases::base::signing::{central_signature, SyncKey};
use ecto_core::CoreResult;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long one call may take, answer included.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Signed calls to `{CENTRAL_URL}/api/...`.
pub struct HttpCentralClient {
    base: String,
    key: SyncKey,
    http: reqwest::Client,
}

impl HttpCentralClient {
    pub fn new(central_url: &str, key: SyncKey) -> CoreResult<Self> {
        Ok(Self {
            base: central_url.trim_end_matches('/').to_owned(),
            key,
            http: crate::client(CALL_TIMEOUT)?,
        })
    }
}

#[async_trait]
impl CentralClient for HttpCentralClient {
    async fn call(&self, path: &str, body: &str) -> SyncOutcome {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let signature = central_signature(self.key.as_bytes(), &timestamp, body.as_bytes());
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("X-Timestamp", &timestamp)
            .header("X-Signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return SyncOutcome::Failed(format!("no answer: {e}")),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return SyncOutcome::Failed(format!("{status}, answer cut: {e}")),
        };
        if status.is_success() {
            // Taken: an answer that is not JSON reads as no answer (sending it again would
            // repeat a call central has taken).
            return SyncOutcome::Answered(serde_json::from_str(&text).unwrap_or_default());
        }
        let detail = format!("{status}: {}", text.chars().take(200).collect::<String>());
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            SyncOutcome::Refused(detail)
        } else {
            SyncOutcome::Failed(detail)
        }
    }
}
