//! A fake ecto-central on loopback serving `POST /api/verify-token`.
//!
//! Tokens of the form `central:{uuid}:{username}` are valid for that user; anything else is
//! answered `{"valid": false}`. Every call is counted so tests can see the cache at work.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A running fake central.
pub struct FakeCentral {
    pub url: String,
    calls: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

async fn verify(body: web::Json<Value>, calls: web::Data<AtomicUsize>) -> HttpResponse {
    calls.fetch_add(1, Ordering::SeqCst);
    let token = body["token"].as_str().unwrap_or("");
    let mut parts = token.splitn(3, ':');
    match (
        parts.next(),
        parts.next().and_then(|id| uuid::Uuid::parse_str(id).ok()),
        parts.next(),
    ) {
        (Some("central"), Some(id), Some(name)) => HttpResponse::Ok().json(json!({
            "valid": true,
            "user_id": id,
            "tag": format!("{name}#1234"),
            "display_name": format!("{name} (central)"),
            "avatar_url": null,
        })),
        _ => HttpResponse::Ok().json(json!({ "valid": false, "error": "invalid token" })),
    }
}

impl FakeCentral {
    pub async fn spawn() -> FakeCentral {
        let calls = Arc::new(AtomicUsize::new(0));
        let data = web::Data::from(calls.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake central");
        let addr = listener.local_addr().expect("addr");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/api/verify-token", web::post().to(verify))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeCentral {
            url: format!("http://{addr}"),
            calls,
            handle,
        }
    }

    /// How many verification requests arrived.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// A token the fake accepts for a new global user.
    pub fn token_for(name: &str) -> (String, uuid::Uuid) {
        let id = uuid::Uuid::now_v7();
        (format!("central:{id}:{name}"), id)
    }
}

impl Drop for FakeCentral {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}
