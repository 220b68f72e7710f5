//! `POST /api/discovery-status`: ecto-central pushes a server's discovery approval (reference
//! §2.6), signed with the shared sync key.

use crate::server::HttpState;
use crate::trpc::{read_body, request_server};
use crate::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::usecases::central::{push_status, Push};
use serde_json::json;

/// 200 `{"ok":true}`; 503 without `CENTRAL_SYNC_KEY`; 401 for a missing, expired, wrong or
/// replayed signature; 400 for a body that is not `{approved: boolean}`; 404 for an unknown
/// server. Errors are `{"error": message}`.
pub async fn status(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    let svc = &state.services;
    let body = match read_body(&req, payload, state.max_json_body).await {
        Ok(b) => b,
        Err(e) => return e.plain_response(),
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let server = request_server(svc, &req).await;
    match push_status(
        svc,
        server,
        header("x-timestamp"),
        header("x-signature"),
        &body,
    )
    .await
    {
        Ok(Push::Applied(_)) => HttpResponse::Ok().json(json!({ "ok": true })),
        Ok(Push::NotConfigured) => HttpResponse::ServiceUnavailable()
            .json(json!({ "error": "Central sync is not configured" })),
        Err(e) => ApiError::from(e).plain_response(),
    }
}
