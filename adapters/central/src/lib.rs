//! Clients of ecto-central: token verification (`POST {CENTRAL_URL}/api/verify-token`,
//! reference §4.4; caching is the core's business, not this adapter's) and the signed sync
//! calls ([`HttpCentralClient`]).

mod sync;

pub use sync::HttpCentralClient;

use async_trait::async_trait;
use ecto_core::ports::{CentralIdentity, IdentityVerifier};
use ecto_core::{CoreError, CoreResult};
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

/// [`IdentityVerifier`] over HTTP.
pub struct HttpCentralVerifier {
    base: String,
    http: reqwest::Client,
}

impl HttpCentralVerifier {
    pub fn new(central_url: &str) -> CoreResult<Self> {
        Ok(Self {
            base: central_url.trim_end_matches('/').to_owned(),
            http: client(Duration::from_secs(5))?,
        })
    }
}

/// The HTTP client of calls to central, each bounded by `timeout`.
fn client(timeout: Duration) -> CoreResult<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent("ecto-server")
        .build()
        .map_err(CoreError::internal)
}

#[derive(Deserialize)]
struct VerifyAnswer {
    valid: bool,
    user_id: Option<Uuid>,
    tag: Option<String>,
    display_name: Option<String>,
    avatar_url: Option<String>,
}

#[async_trait]
impl IdentityVerifier for HttpCentralVerifier {
    async fn verify(&self, token: &str) -> CoreResult<Option<CentralIdentity>> {
        let response = self
            .http
            .post(format!("{}/api/verify-token", self.base))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .map_err(CoreError::internal)?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let Ok(answer) = response.json::<VerifyAnswer>().await else {
            return Ok(None);
        };
        let (Some(user_id), Some(tag), true) = (answer.user_id, answer.tag, answer.valid) else {
            return Ok(None);
        };
        let (username, discriminator) = match tag.rsplit_once('#') {
            Some((name, disc)) => (name.to_owned(), disc.to_owned()),
            None => (tag, "0000".to_owned()),
        };
        Ok(Some(CentralIdentity {
            user_id,
            username,
            discriminator,
            display_name: answer.display_name,
            avatar_url: answer.avatar_url,
        }))
    }
}
