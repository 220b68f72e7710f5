//! A fake ecto-central on loopback: `POST /api/verify-token`, and every signed sync call of
//! reference §2.6 (`/api/server-metadata-sync`, `/api/invite-register`, …), recorded with
//! whether its signature checked out.
//!
//! Tokens of the form `central:{uuid}:{username}` are valid for that user; anything else is
//! answered `{"valid": false}`. Verifications are counted so tests can see the cache at work.
//! While "down" every sync call is answered 503 and not recorded (it did not get through).
//! `discovery-register` answers `{approved}` as set (default true); `discovery-post-sync`
//! answers `{validation_errors}`: one error when the title contains `[invalid]`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use ecto_core::usecases::base::signing::central_signature_valid;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The error the fake finds in a post whose title contains `[invalid]`.
pub const INVALID_TITLE: &str = "The title breaks the discovery guidelines";

/// A sync call that reached the fake.
#[derive(Debug, Clone)]
pub struct SyncCall {
    /// Such as `/api/invite-register`.
    pub path: String,
    pub body: Value,
    /// Its `X-Signature` was the HMAC of `"{X-Timestamp}.{body}"` with the key, and the
    /// timestamp within 300 s of now.
    pub signed: bool,
}

#[derive(Default)]
struct State {
    verifications: AtomicUsize,
    key: Option<String>,
    calls: Mutex<Vec<SyncCall>>,
    down: AtomicBool,
    refuse_approval: AtomicBool,
}

/// A running fake central.
pub struct FakeCentral {
    pub url: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

async fn verify(body: web::Json<Value>, state: web::Data<State>) -> HttpResponse {
    state.verifications.fetch_add(1, Ordering::SeqCst);
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

fn header<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn sync(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    if state.down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("central is down");
    }
    let timestamp = header(&req, "X-Timestamp");
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    let signed = fresh
        && state.key.as_ref().is_some_and(|key| {
            central_signature_valid(
                key.as_bytes(),
                timestamp,
                &body,
                header(&req, "X-Signature"),
            )
        });
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = req.path().to_owned();
    state.calls.lock().expect("calls").push(SyncCall {
        path: path.clone(),
        body: parsed.clone(),
        signed,
    });
    if !signed {
        return HttpResponse::Unauthorized().json(json!({ "error": "Invalid signature" }));
    }
    match path.as_str() {
        "/api/discovery-register" => HttpResponse::Ok().json(json!({
            "approved": !state.refuse_approval.load(Ordering::SeqCst)
        })),
        "/api/discovery-post-sync" => {
            let bad = parsed["title"]
                .as_str()
                .is_some_and(|t| t.contains("[invalid]"));
            let errors: Vec<&str> = if bad { vec![INVALID_TITLE] } else { vec![] };
            HttpResponse::Ok().json(json!({ "validation_errors": errors }))
        }
        _ => HttpResponse::Ok().json(json!({ "ok": true })),
    }
}

impl FakeCentral {
    /// A fake that verifies tokens and takes sync calls signed with nothing (each is recorded
    /// unsigned and refused 401).
    pub async fn spawn() -> FakeCentral {
        Self::start(None).await
    }

    /// A fake that takes sync calls signed with `key`.
    pub async fn spawn_keyed(key: &str) -> FakeCentral {
        Self::start(Some(key.to_owned())).await
    }

    async fn start(key: Option<String>) -> FakeCentral {
        let state = Arc::new(State {
            key,
            ..State::default()
        });
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake central");
        let addr = listener.local_addr().expect("addr");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/api/verify-token", web::post().to(verify))
                .route("/api/{call}", web::post().to(sync))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeCentral {
            url: format!("http://{addr}"),
            state,
            handle,
        }
    }

    /// How many verification requests arrived.
    pub fn calls(&self) -> usize {
        self.state.verifications.load(Ordering::SeqCst)
    }

    /// A token the fake accepts for a new global user.
    pub fn token_for(name: &str) -> (String, uuid::Uuid) {
        let id = uuid::Uuid::now_v7();
        (format!("central:{id}:{name}"), id)
    }

    /// Takes central down (every sync call answered 503) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Makes `discovery-register` answer `{approved: false}` (or true again).
    pub fn refuse_approval(&self, refuse: bool) {
        self.state.refuse_approval.store(refuse, Ordering::SeqCst);
    }

    /// The sync calls that got through so far, in arrival order.
    pub fn sync_calls(&self) -> Vec<SyncCall> {
        self.state.calls.lock().expect("calls").clone()
    }

    /// Waits (up to `secs` s) until at least `n` sync calls got through; panics otherwise.
    pub async fn wait_for_sync(&self, n: usize, secs: u64) -> Vec<SyncCall> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let calls = self.sync_calls();
            if calls.len() >= n {
                return calls;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} sync calls after {secs} s: {calls:#?}",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FakeCentral {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}
