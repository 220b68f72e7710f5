//! `POST /api/discovery-status` (reference §2.6): ecto-central pushes a server's discovery
//! approval, signed with the shared `CENTRAL_SYNC_KEY` (HMAC-SHA256 of `"{timestamp}.{body}"`).

use ecto_core::usecases::base::signing::central_signature;
use ecto_tests::{data, unique, Profile, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "discovery-test-sync-key";

async fn spawn_keyed(profile: Profile) -> TestApp {
    TestApp::spawn_with(profile, |c| c.central_sync_key = Some(KEY.into())).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` with the headers given (`None` leaves one out).
async fn push(
    app: &TestApp,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut rb = app
        .request(Method::POST, "/api/discovery-status")
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = timestamp {
        rb = rb.header("X-Timestamp", t);
    }
    if let Some(s) = signature {
        rb = rb.header("X-Signature", s);
    }
    let (status, _, body) = TestApp::send(rb).await;
    (status, body)
}

/// Posts `body` signed with `key` at `timestamp`.
async fn signed_at(app: &TestApp, key: &str, timestamp: i64, body: &str) -> (StatusCode, Value) {
    let t = timestamp.to_string();
    let sig = central_signature(key.as_bytes(), &t, body.as_bytes());
    push(app, Some(&t), Some(&sig), body).await
}

async fn approval(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.query("serverConfig.get", None, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body)["discovery_approved"].clone()
}

async fn discovery_status_needs_a_sync_key(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let (status, body) = signed_at(&app, KEY, now(), r#"{"approved":true}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, _) = push(&app, None, None, "{}").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(approval(&app, &owner.token).await, false);
}

async fn discovery_status_sets_approval(profile: Profile) {
    let app = spawn_keyed(profile).await;
    let owner = app.register(&unique("own"), "password-1").await;
    assert_eq!(approval(&app, &owner.token).await, false);
    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({})).await;

    let (status, body) = signed_at(&app, KEY, now(), r#"{"approved":true}"#).await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({ "ok": true })));
    let event = ws.expect("server.update").await;
    assert_eq!(event["data"]["discovery_approved"], true, "{event}");
    assert_eq!(event["data"]["id"], app.server_id().await.as_str());
    assert_eq!(approval(&app, &owner.token).await, true);
    let (_, info) = app.query("server.info", None, Some(&owner.token)).await;
    assert_eq!(data(&info)["server"]["discovery_approved"], true, "{info}");

    let (status, _) = signed_at(&app, KEY, now(), r#"{"approved": false}"#).await;
    assert_eq!(status, StatusCode::OK);
    let event = ws.expect("server.update").await;
    assert_eq!(event["data"]["discovery_approved"], false, "{event}");
    assert_eq!(approval(&app, &owner.token).await, false);

    if profile == Profile::Managed {
        // A signed push for an address this deployment does not serve (its body spelt apart
        // from the one above: the same body in the same second is the same signature).
        let t = now().to_string();
        let body = r#"{ "approved": true }"#;
        let sig = central_signature(KEY.as_bytes(), &t, body.as_bytes());
        // Refused, so not spent: the same push a second time is looked at again.
        for attempt in ["first", "second"] {
            let rb = app
                .http
                .post(format!("{}/api/discovery-status", app.base))
                .header("X-Server-Address", "nowhere.test.ecto")
                .header("X-Timestamp", &t)
                .header("X-Signature", &sig)
                .body(body);
            let (status, _, answer) = TestApp::send(rb).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{attempt} push: {answer}");
        }
        assert_eq!(approval(&app, &owner.token).await, false);
    }
}

async fn discovery_status_refuses_bad_signatures(profile: Profile) {
    let app = spawn_keyed(profile).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let body = r#"{"approved":true}"#;
    let t = now().to_string();
    let good = central_signature(KEY.as_bytes(), &t, body.as_bytes());

    let mut refusals = vec![
        ("no headers", push(&app, None, None, body).await),
        ("no signature", push(&app, Some(&t), None, body).await),
        ("no timestamp", push(&app, None, Some(&good), body).await),
        (
            "a timestamp that is not a number",
            push(&app, Some("soon"), Some(&good), body).await,
        ),
        ("310 s old", signed_at(&app, KEY, now() - 310, body).await),
        ("310 s ahead", signed_at(&app, KEY, now() + 310, body).await),
        (
            "another key",
            signed_at(&app, "not-the-key", now(), body).await,
        ),
        (
            "another body's signature",
            push(&app, Some(&t), Some(&good), r#"{"approved":false}"#).await,
        ),
        (
            "not hex",
            push(&app, Some(&t), Some("not-a-signature"), body).await,
        ),
    ];
    for (what, (status, answer)) in refusals.drain(..) {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
        assert!(answer["error"].is_string(), "{what}: {answer}");
    }
    assert_eq!(approval(&app, &owner.token).await, false);

    // Within the window (either way) is accepted, once.
    let (status, answer) = push(&app, Some(&t), Some(&good), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = push(&app, Some(&t), Some(&good), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replay: {answer}");
    let (status, answer) = push(&app, Some(&t), Some(&good.to_uppercase()), body).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a replay in capitals: {answer}"
    );
    let (status, answer) = signed_at(&app, KEY, now() - 290, r#"{"approved": false}"#).await;
    assert_eq!(status, StatusCode::OK, "290 s old: {answer}");
    let (status, answer) = signed_at(&app, KEY, now() + 290, r#"{"approved":true }"#).await;
    assert_eq!(status, StatusCode::OK, "290 s ahead: {answer}");
    assert_eq!(approval(&app, &owner.token).await, true);

    // Signed, but not `{approved: boolean}`.
    for bad in ["{not json", r#"{"approved":"no"}"#, "{}", ""] {
        let (status, answer) = signed_at(&app, KEY, now(), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {answer}");
    }
    assert_eq!(approval(&app, &owner.token).await, true);
}

ecto_tests::per_profile!(
    discovery_status_needs_a_sync_key,
    discovery_status_sets_approval,
    discovery_status_refuses_bad_signatures,
);
