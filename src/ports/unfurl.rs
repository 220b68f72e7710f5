//! Link previews: fetching a page from the Internet and reading its OpenGraph data.

use crate::CoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a page says about itself (OpenGraph, Twitter card and `description` meta tags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkPreview {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(rename = "siteName", skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
}

impl LinkPreview {
    /// Whether the page gave anything worth showing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.image.is_none()
            && self.site_name.is_none()
    }
}

/// Fetches link previews.
///
/// An adapter must only ever connect to public Internet addresses (DECISIONS §3.18): it
/// resolves the host itself, refuses loopback, private, link-local, multicast, unspecified and
/// other special-purpose addresses (IPv4 and IPv6, mapped forms included), connects to the
/// address it checked, and caps redirects, time and bytes.
#[async_trait]
pub trait LinkPreviewer: Send + Sync {
    /// The preview of an `http`/`https` URL; `Ok(None)` when the address is refused, the
    /// fetch fails, the page is not HTML or says nothing.
    async fn preview(&self, url: &str) -> CoreResult<Option<LinkPreview>>;
}
