//! `GET /og-image` (reference §2.6): the server's 1200×630 link card, drawn by `ecto-ogimage`
//! from what `usecases::og_image` gathers and kept in this process by the card's version, so
//! a card is drawn again only after something on it changed.

use crate::server::HttpState;
use crate::trpc::request_server;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use ecto_core::usecases::og_image::{self, CardBadge, OgCard};
use ecto_core::{ErrorKind, Services};
use ecto_ogimage::Badge;
use std::sync::Arc;
use std::time::Duration;

/// Rendered cards by `{server id}:{version}`: at most 32 MiB of PNG (a card is about
/// 100–200 KB), each dropped after a day unused.
#[derive(Clone)]
pub struct OgImages(moka::future::Cache<String, Bytes>);

impl Default for OgImages {
    fn default() -> Self {
        Self(
            moka::future::Cache::builder()
                .weigher(|_: &String, png: &Bytes| u32::try_from(png.len()).unwrap_or(u32::MAX))
                .max_capacity(32 * 1024 * 1024)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
        )
    }
}

fn badge(b: CardBadge) -> Badge {
    match b {
        CardBadge::SelfHosted => Badge::SelfHosted,
        CardBadge::CentralHosted => Badge::CentralHosted,
        CardBadge::Central => Badge::Central,
        CardBadge::Discoverable => Badge::Discoverable,
        CardBadge::FileSharing => Badge::FileSharing,
        CardBadge::InviteOnly => Badge::InviteOnly,
    }
}

/// Reads the card's images and draws it on the blocking pool.
async fn draw(svc: &Services, card: &OgCard) -> Result<Bytes, String> {
    let icon = match &card.icon {
        Some(key) => og_image::image(svc, key).await,
        None => None,
    };
    let banner = match &card.banner {
        Some(key) => og_image::image(svc, key).await,
        None => None,
    };
    let card = card.clone();
    let png = tokio::task::spawn_blocking(move || {
        let badges: Vec<Badge> = card.badges.iter().copied().map(badge).collect();
        ecto_ogimage::render(&ecto_ogimage::Card {
            name: &card.name,
            description: card.description.as_deref(),
            icon: icon.as_deref(),
            banner: banner.as_deref(),
            member_count: card.member_count,
            badges: &badges,
            tags: &card.tags,
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok(Bytes::from(png))
}

fn failed() -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/plain")
        .body("Image generation failed")
}

/// `GET /og-image`.
pub async fn serve(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let svc = &state.services;
    let server = match request_server(svc, &req).await {
        Ok(server) => server,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return HttpResponse::NotFound()
                .content_type("text/plain")
                .body("Server not found");
        }
        Err(e) => {
            tracing::error!(error = %e, "og-image: resolving the server failed");
            return failed();
        }
    };
    let card = match og_image::card(svc, &server).await {
        Ok(card) => card,
        Err(e) => {
            tracing::error!(error = %e, "og-image: reading the card failed");
            return failed();
        }
    };
    let key = format!("{}:{}", card.server_id, card.version);
    // Concurrent misses of one version share one drawing.
    let png = state
        .og_images
        .0
        .try_get_with(key, async { draw(svc, &card).await })
        .await;
    match png {
        Ok(png) => HttpResponse::Ok()
            .content_type("image/png")
            .insert_header(("Cache-Control", "public, max-age=3600, s-maxage=3600"))
            .body(png),
        Err(e) => {
            let e: Arc<String> = e;
            tracing::error!(error = %e, "og-image: drawing failed");
            failed()
        }
    }
}
