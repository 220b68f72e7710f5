//! `GET /api/unfurl`: link previews for members, cached (negatives included).

use super::base::identity::authenticate;
use crate::model::Server;
use crate::ports::LinkPreview;
use crate::{CoreError, CoreResult, Services};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a preview (or the absence of one) is kept.
pub const CACHE_TTL: Duration = Duration::from_secs(600);

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Whether `url` is an absolute `http`/`https` URL with a host (the adapter parses it fully).
fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with('/')
}

/// The preview of `url` for the holder of `token`: UNAUTHORIZED unless the token is a valid
/// token of a member of `server`, BAD_REQUEST unless `url` is an http(s) URL; `None` when there
/// is nothing to show.
pub async fn unfurl(
    svc: &Services,
    server: &Server,
    token: Option<&str>,
    url: Option<&str>,
) -> CoreResult<Option<LinkPreview>> {
    let caller = match token {
        Some(t) => authenticate(svc, server, t).await?,
        None => None,
    };
    let Some(caller) = caller.filter(|c| c.member.is_some()) else {
        return Err(CoreError::unauthorized("Unauthorized"));
    };
    // Each preview takes from the caller's bucket, as a tRPC call does: varying the URL must
    // not make the server fetch without bound.
    super::base::rate_limit::check_call(svc, server.id, Some(&caller), None, "api.unfurl").await?;
    let url = url.map(str::trim).unwrap_or("");
    if url.is_empty() {
        return Err(CoreError::bad_request("url is required"));
    }
    if url.len() > MAX_URL_LEN || !is_http_url(url) {
        return Err(CoreError::bad_request("url must be an http or https URL"));
    }
    let key = format!("unfurl:{}", hex::encode(Sha256::digest(url.as_bytes())));
    // "-" keeps the absence of a preview; concurrent requests for one link fetch it once.
    let fetch = Box::pin(async {
        match svc.unfurler.preview(url).await?.filter(|p| !p.is_empty()) {
            Some(p) => serde_json::to_string(&p).map_err(CoreError::internal),
            None => Ok("-".to_owned()),
        }
    });
    let cached = svc.cache.get_or_fetch(&key, CACHE_TTL, fetch).await?;
    if cached == "-" {
        return Ok(None);
    }
    serde_json::from_str::<LinkPreview>(&cached)
        .map(Some)
        .map_err(CoreError::internal)
}

#[cfg(test)]
mod tests {
    use super::is_http_url;

    #[test]
    fn only_http_and_https_with_a_host() {
        assert!(is_http_url("http://example.com"));
        assert!(is_http_url("HTTPS://example.com/x"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("javascript:alert(1)"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("http:///etc/passwd"));
        assert!(!is_http_url("file:///etc/passwd"));
    }
}
