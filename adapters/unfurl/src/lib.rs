//! [`HttpUnfurler`]: link previews fetched with reqwest, only from public addresses
//! (DECISIONS §3.18).
//!
//! The guard sits where the connection is made:
//! - every host name is resolved by [`GuardedResolver`], reqwest's DNS resolver for this
//!   client, which refuses the name unless every address it resolves to is public; the
//!   connection then goes to the addresses it checked, so a second lookup cannot swap in
//!   another one;
//! - a host written as an IP address (in any form the URL standard accepts: `2130706433`,
//!   `0x7f.1`, `[::ffff:7f00:1]`, …, all normalized by the URL parser) is checked before the
//!   request, since no lookup happens for it;
//! - redirects are not followed by reqwest; at most [`MAX_REDIRECTS`] are followed here, each
//!   target checked like the first URL;
//! - no proxy is used (a proxy would resolve the name itself);
//! - the whole fetch has [`TIMEOUT`], and at most [`MAX_BODY`] bytes are read.
//!
//! Hosts in the allow-list skip the address check. It exists for tests, which fetch from a
//! site on 127.0.0.1, and is empty by default.

mod guard;
mod meta;

pub use guard::is_public;

use async_trait::async_trait;
use ecto_core::ports::{LinkPreview, LinkPreviewer};
use ecto_core::{CoreError, CoreResult};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{redirect, Client, Url};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;
/// Time for the whole fetch, redirects included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the body read at most.
pub const MAX_BODY: usize = 100 * 1024;
/// The `User-Agent` sent.
pub const USER_AGENT: &str = "EctoBot/1.0";

/// Host names (lower case) and IP addresses exempt from the address check.
type AllowList = Arc<HashSet<String>>;

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// A reqwest DNS resolver that refuses names resolving to any non-public address.
struct GuardedResolver {
    allow: AllowList,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.allow.contains(&normalize_host(&host));
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            if !allowed {
                if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                    return Err(format!("{host} resolves to {} (not public)", bad.ip()).into());
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Why a fetch produced nothing (logged at debug level).
#[derive(Debug)]
enum Skip {
    Refused(String),
    Failed(String),
}

/// Link previews over HTTP(S) with the guard above.
pub struct HttpUnfurler {
    client: Client,
    allow: AllowList,
}

impl HttpUnfurler {
    /// A previewer whose address check skips `allow_hosts` (host names or IP addresses; for
    /// tests only).
    pub fn new(allow_hosts: &[String]) -> CoreResult<Self> {
        let allow: AllowList = Arc::new(
            allow_hosts
                .iter()
                .map(|h| normalize_host(h))
                .filter(|h| !h.is_empty())
                .collect(),
        );
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            .build()
            .map_err(CoreError::internal)?;
        Ok(HttpUnfurler { client, allow })
    }

    /// Checks a URL before a request: http(s), and a literal IP address must be public.
    fn check(&self, url: &Url) -> Result<(), Skip> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Skip::Refused(format!("scheme {}", url.scheme())));
        }
        let Some(host) = url.host_str() else {
            return Err(Skip::Refused("no host".into()));
        };
        // The URL parser has already turned every numeric form into a plain address.
        let Ok(ip) = normalize_host(host).parse::<IpAddr>() else {
            return Ok(()); // a name: checked by the resolver
        };
        if self.allow.contains(&ip.to_string()) || is_public(ip) {
            Ok(())
        } else {
            Err(Skip::Refused(format!("{ip} is not public")))
        }
    }

    async fn fetch(&self, original: &str) -> Result<Option<LinkPreview>, Skip> {
        let mut url = Url::parse(original).map_err(|e| Skip::Refused(e.to_string()))?;
        let mut redirects = 0;
        let mut resp = loop {
            self.check(&url)?;
            let resp = self
                .client
                .get(url.clone())
                .header(ACCEPT, "text/html")
                .send()
                .await
                .map_err(|e| Skip::Failed(format!("{e:?}")))?;
            if !resp.status().is_redirection() {
                break resp;
            }
            if redirects == MAX_REDIRECTS {
                return Err(Skip::Refused("too many redirects".into()));
            }
            redirects += 1;
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Skip::Failed("redirect without Location".into()))?;
            url = url
                .join(location)
                .map_err(|e| Skip::Failed(format!("bad Location: {e}")))?;
        };
        if !resp.status().is_success() {
            return Err(Skip::Failed(format!("status {}", resp.status())));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let html = content_type
            .as_deref()
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("text/html"));
        if !html {
            return Ok(None);
        }
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(MAX_BODY - body.len());
                    body.extend_from_slice(&chunk[..take]);
                }
                Ok(None) => break,
                Err(e) => return Err(Skip::Failed(format!("{e:?}"))),
            }
        }
        drop(resp);
        let found = meta::parse(&body, content_type.as_deref());
        // Relative image URLs are relative to the page that was finally fetched.
        let image = found
            .image
            .and_then(|i| url.join(&i).ok())
            .filter(|i| matches!(i.scheme(), "http" | "https"))
            .map(String::from);
        Ok(Some(LinkPreview {
            url: original.to_owned(),
            title: found.title,
            description: found.description,
            image,
            site_name: found.site_name,
        }))
    }
}

#[async_trait]
impl LinkPreviewer for HttpUnfurler {
    async fn preview(&self, url: &str) -> CoreResult<Option<LinkPreview>> {
        match tokio::time::timeout(TIMEOUT, self.fetch(url)).await {
            Ok(Ok(preview)) => Ok(preview),
            Ok(Err(Skip::Refused(why))) => {
                tracing::info!(%url, reason = %why, "link preview refused");
                Ok(None)
            }
            Ok(Err(Skip::Failed(why))) => {
                tracing::debug!(%url, reason = %why, "link preview failed");
                Ok(None)
            }
            Err(_) => {
                tracing::debug!(%url, "link preview timed out");
                Ok(None)
            }
        }
    }
}
