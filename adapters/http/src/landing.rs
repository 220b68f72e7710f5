//! Browser landing pages for `/` and `/invite/{code}` (reference §2.6): OpenGraph tags (the
//! image is the card of `/og-image`) and an instant redirect to the web client.

use crate::server::HttpState;
use crate::trpc::request_server;
use actix_web::guard::{Guard, GuardContext};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// Matches GET requests whose `Accept` asks for HTML.
pub fn wants_html() -> impl Guard {
    actix_web::guard::fn_guard(|ctx: &GuardContext<'_>| {
        ctx.head()
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn page(req: &HttpRequest, state: &HttpState, invite: Option<&str>) -> HttpResponse {
    let Ok(server) = request_server(&state.services, req).await else {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("Server not found");
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Self-hosted: SERVER_ADDRESS names this server publicly; managed: each server's own.
    let settings = &state.services.settings;
    let address = match state.services.tenancy {
        ecto_core::services::Tenancy::Single(_) => {
            settings.server_address.clone().or(server.address.clone())
        }
        ecto_core::services::Tenancy::Multi => server.address.clone(),
    }
    .unwrap_or_else(|| host.to_owned());
    let mut target = format!(
        "{}?join={}",
        state.services.settings.client_url,
        encode_component(&address)
    );
    if let Some(code) = invite {
        target.push_str(&format!("&invite={}", encode_component(code)));
    }
    let description = match (invite, &server.description) {
        (_, Some(d)) if !d.is_empty() => d.clone(),
        (Some(_), _) => "You've been invited to join a server on Ecto.".to_owned(),
        (None, _) => "Click to join the server on Ecto.".to_owned(),
    };
    let title = escape_html(&format!("Join {} on Ecto", server.name));
    let (description, target) = (escape_html(&description), escape_html(&target));
    let image = escape_html(&crate::uploads::absolute_url(req, "/og-image"));
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <meta property=\"og:title\" content=\"{title}\">\n<meta property=\"og:description\" content=\"{description}\">\n\
         <meta property=\"og:type\" content=\"website\">\n<meta property=\"og:image\" content=\"{image}\">\n\
         <meta property=\"og:image:width\" content=\"1200\">\n<meta property=\"og:image:height\" content=\"630\">\n\
         <meta name=\"twitter:card\" content=\"summary_large_image\">\n\
         <meta name=\"twitter:title\" content=\"{title}\">\n<meta name=\"twitter:description\" content=\"{description}\">\n\
         <meta name=\"twitter:image\" content=\"{image}\">\n\
         <meta http-equiv=\"refresh\" content=\"0;url={target}\">\n</head>\n\
         <body><p><a href=\"{target}\">{title}</a></p></body></html>\n"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}

/// `GET /` from a browser.
pub async fn home(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    page(&req, &state, None).await
}

/// `GET /invite/{code}` from a browser.
pub async fn invite(
    req: HttpRequest,
    code: web::Path<String>,
    state: web::Data<HttpState>,
) -> HttpResponse {
    page(&req, &state, Some(&code)).await
}
