//! `GET /api/unfurl?url=…`: the link preview of a URL for a member (DECISIONS §3.12, §3.18).

use crate::error::ApiError;
use crate::server::HttpState;
use crate::trpc::{bearer, request_server};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::usecases::unfurl::unfurl;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct UnfurlQuery {
    url: Option<String>,
}

fn error(e: ecto_core::CoreError) -> HttpResponse {
    ApiError::from(e).plain_response()
}

/// 200 `{url, title?, description?, image?, siteName?}` (cacheable for 10 minutes), 204 when
/// there is nothing to show, 401 without a member's valid token, 400 for a URL that is not
/// http(s).
pub async fn handle(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let svc = &state.services;
    let server = match request_server(svc, &req).await {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let Ok(query) = web::Query::<UnfurlQuery>::from_query(req.query_string()) else {
        return HttpResponse::BadRequest().json(json!({ "error": "Invalid query string" }));
    };
    let token = bearer(&req);
    match unfurl(svc, &server, token.as_deref(), query.url.as_deref()).await {
        Ok(Some(preview)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "public, max-age=600"))
            .json(preview),
        Ok(None) => HttpResponse::NoContent().finish(),
        Err(e) => error(e),
    }
}
