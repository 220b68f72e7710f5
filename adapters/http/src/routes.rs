//! Plain routes: `/health`, `/ready` and managed provisioning.

use crate::error::{ApiError, TrpcCode};
use crate::server::HttpState;
use crate::trpc::{bearer, client_ip, read_body};
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::services::Tenancy;
use ecto_core::usecases::base::signing::same_secret;
use ecto_core::usecases::tenancy::provision_server;
use ecto_core::usecases::webhooks;
use serde::Deserialize;
use serde_json::json;

/// `/health` (any method): the process is up.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// How long `/ready` waits for one backing service (they are asked at once).
const READY_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /ready`: every backing service answered one round trip within two seconds; 503 naming
/// the ones that did not ("unavailable", or "timeout" when no answer came).
pub async fn ready(state: web::Data<HttpState>) -> HttpResponse {
    let answers = futures_util::future::join_all(state.services.health.iter().map(|check| async {
        let status = match tokio::time::timeout(READY_CHECK_TIMEOUT, check.check()).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(service = check.name(), error = %e, "readiness check failed");
                "unavailable"
            }
            Err(_) => {
                tracing::warn!(service = check.name(), "readiness check timed out");
                "timeout"
            }
        };
        (check.name(), status)
    }))
    .await;
    let ok = answers.iter().all(|(_, status)| *status == "ok");
    let mut checks = serde_json::Map::new();
    for (name, status) in answers {
        checks.insert(name.to_owned(), json!(status));
    }
    let body = json!({ "status": if ok { "ok" } else { "unavailable" }, "checks": checks });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[derive(Deserialize)]
struct NewServerWire {
    address: String,
    name: String,
}

fn plain_error(e: &ApiError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(e.code.http_status())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpResponse::build(status).json(e.envelope("internal.servers"));
    let ecto = e
        .ecto
        .map(ecto_core::EctoCode::number)
        .into_iter()
        .collect();
    crate::observe::describe(&mut resp, None, ecto);
    resp
}

/// `POST /internal/servers` (managed): provisions a server. Bearer `MANAGED_API_KEY` required.
pub async fn create_server(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    let (Tenancy::Multi, Some(key)) = (state.services.tenancy, state.managed_api_key.as_deref())
    else {
        return plain_error(&ApiError::new(TrpcCode::NotFound, "Not found"));
    };
    if !bearer(&req).is_some_and(|given| same_secret(given.as_bytes(), key.as_bytes())) {
        return plain_error(&ApiError::new(
            TrpcCode::Unauthorized,
            "A valid managed API key is required",
        ));
    }
    let body = match read_body(&req, payload, state.max_json_body).await {
        Ok(b) => b,
        Err(e) => return plain_error(&e),
    };
    let wire: NewServerWire = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => {
            return plain_error(&ApiError::new(
                TrpcCode::BadRequest,
                format!("Invalid body: {e}"),
            ))
        }
    };
    match provision_server(&state.services, &wire.address, &wire.name).await {
        Ok(server) => HttpResponse::Created().json(json!({
            "server": { "id": server.id, "name": server.name, "address": server.address }
        })),
        Err(e) => plain_error(&e.into()),
    }
}

/// A plain `{"error": message}` answer (the non-tRPC routes' format).
fn route_error(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

#[derive(Deserialize)]
struct WebhookBody {
    content: Option<serde_json::Value>,
    username: Option<String>,
    avatar_url: Option<String>,
}

/// `POST /webhooks/{id}/{token}`: posts a message as the webhook (body at most 1 MB).
pub async fn execute_webhook(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let (id, token) = path.into_inner();
    // The id and token are checked (and limited) before the body is read.
    let ip = client_ip(&req, &state.services.settings.rate_limits);
    let webhook =
        match webhooks::authorize(&state.services, ecto_core::parse_id(&id), &token, ip).await {
            Ok(w) => w,
            Err(e) => return webhook_error(e),
        };
    let body = match read_body(&req, payload, 1_000_000).await {
        Ok(b) => b,
        Err(_) => return route_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
    };
    let Ok(wire) = serde_json::from_slice::<WebhookBody>(&body) else {
        return route_error(StatusCode::BAD_REQUEST, "Invalid JSON body");
    };
    let content = match wire.content {
        Some(serde_json::Value::String(c)) if !c.trim().is_empty() => c,
        _ => {
            return route_error(
                StatusCode::BAD_REQUEST,
                "content must be a non-empty string",
            )
        }
    };
    if content.chars().count() > 4000 {
        return route_error(
            StatusCode::BAD_REQUEST,
            "content must be at most 4000 characters",
        );
    }
    if wire
        .username
        .as_ref()
        .is_some_and(|u| u.trim().is_empty() || u.chars().count() > 80)
    {
        return route_error(
            StatusCode::BAD_REQUEST,
            "username must be 1 to 80 characters",
        );
    }
    if crate::validate::url("avatar_url", wire.avatar_url.as_deref(), 512).is_err() {
        return route_error(
            StatusCode::BAD_REQUEST,
            "avatar_url must be an http(s) URL of at most 512 characters",
        );
    }
    let post = webhooks::WebhookPost {
        content,
        username: wire.username,
        avatar_url: wire.avatar_url,
    };
    match webhooks::execute(&state.services, webhook, post).await {
        Ok(message) => HttpResponse::Ok().json(message),
        Err(e) => webhook_error(e),
    }
}

/// `{"error": message}` with the status of a core error (with `retry_after` when limited).
fn webhook_error(e: ecto_core::CoreError) -> HttpResponse {
    ApiError::from(e).plain_response()
}
