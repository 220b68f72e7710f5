//! `POST /upload/page-banner/{channelId}` and `POST /upload/news-hero/{channelId}`, on the
//! streaming upload pipeline of [`crate::uploads`].

use crate::server::HttpState;
use crate::uploads::{absolute_url, authenticate, receive, FileStart, UploadError, UploadSpec};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::usecases::base::file_names;
use ecto_core::usecases::{files, news, pages};
use serde_json::json;

/// Largest news hero image (as the reference: 2 MiB).
pub const HERO_MAX_BYTES: u64 = 2 * 1024 * 1024;

#[derive(Clone, Copy)]
enum Target {
    PageBanner,
    NewsHero,
}

fn image_only() -> UploadError {
    UploadError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "File must be an image")
}

async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
    channel: String,
    target: Target,
) -> Result<HttpResponse, UploadError> {
    let svc = state.services.clone();
    // Every check comes before any of the body is read.
    let checks = async {
        let up = authenticate(&req, &state).await?;
        let channel_id = ecto_core::parse_id(&channel)
            .ok_or_else(|| UploadError::new(StatusCode::NOT_FOUND, "Channel not found"))?;
        match target {
            Target::PageBanner => {
                pages::require_editor(&svc, &up.server, &up.caller, channel_id).await?
            }
            Target::NewsHero => {
                news::require_publisher(&svc, &up.server, &up.caller, channel_id).await?
            }
        }
        Ok::<_, UploadError>((up, channel_id))
    };
    let (up, channel_id) = match checks.await {
        Ok(ok) => ok,
        Err(e) => return Err(e.keeping(payload)),
    };
    let (limit, message, folder, prefix) = match target {
        Target::PageBanner => (
            files::BANNER_MAX_BYTES,
            "Banner must be under 800KB",
            "page-banners",
            "page-banner",
        ),
        Target::NewsHero => (
            HERO_MAX_BYTES,
            "Image must be under 2MB",
            "news-heroes",
            "hero",
        ),
    };
    let server_id = up.server.id;
    let spec = UploadSpec {
        limit: files::cap(&svc, limit),
        too_large: message.into(),
        image_only: true,
        quota_left: None,
        key: Box::new(move |start: FileStart| {
            Box::pin(async move {
                let kind = start.image.ok_or_else(image_only)?;
                Ok(file_names::image_key(server_id, folder, prefix, kind)?)
            })
        }),
    };
    let received = receive(&req, payload, &state, spec).await?;
    let url = absolute_url(&req, &file_names::file_path(&received.key));
    match target {
        Target::PageBanner => {
            match pages::set_banner(&svc, &up.server, channel_id, Some(url.clone())).await {
                Ok(page) => Ok(HttpResponse::Ok().json(json!({ "banner_url": page.banner_url }))),
                Err(e) => {
                    received.discard(&svc).await;
                    Err(e.into())
                }
            }
        }
        Target::NewsHero => Ok(HttpResponse::Ok().json(json!({ "hero_url": url }))),
    }
}

/// `POST /upload/page-banner/{channelId}` (EDIT_PAGES in a page channel): a PNG, JPEG, GIF or
/// WebP of at most 800 KiB becomes the page's banner; `page.update` is published.
pub async fn page_banner(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    upload(req, payload, state, path.into_inner(), Target::PageBanner)
        .await
        .unwrap_or_else(|e| e.response())
}

/// `POST /upload/news-hero/{channelId}` (MANAGE_NEWS in a news channel): an image of at most
/// 2 MiB, stored for a post to use; nothing else changes.
pub async fn news_hero(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    upload(req, payload, state, path.into_inner(), Target::NewsHero)
        .await
        .unwrap_or_else(|e| e.response())
}
