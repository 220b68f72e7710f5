//! The first owner of a self-hosted server proves they run the box: until the server has an
//! owner, registering needs the one-time setup token kept in its data directory (or a valid
//! invite code). Managed servers are provisioned by their operator and ask for nothing.

use ecto_tests::{data, sql_time, unique, Profile, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn guarded() -> TestApp {
    TestApp::spawn_with(Profile::SelfHosted, |c| c.require_setup_token = true).await
}

fn token_file(app: &TestApp) -> std::path::PathBuf {
    app.config.data_dir.join("setup_token")
}

async fn register(app: &TestApp, extra: Value) -> (StatusCode, Value) {
    let mut input = json!({ "username": unique("u"), "password": "password-1" });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    app.mutate("server.join", input, None).await
}

async fn owner_id(app: &TestApp) -> Value {
    let (_, info) = app.query("server.info", None, None).await;
    data(&info)["server"]["admin_user_id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_owner_needs_the_setup_token() {
    let app = guarded().await;
    let token = std::fs::read_to_string(token_file(&app)).expect("the setup token is kept");
    assert_eq!(token.trim().len(), 32, "16 random bytes in hex: {token}");

    for (why, extra) in [
        ("no token", json!({})),
        ("a wrong token", json!({ "setup_token": "0".repeat(32) })),
        ("an empty token", json!({ "setup_token": "" })),
    ] {
        let (status, body) = register(&app, extra).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {body}");
        assert_eq!(body["error"]["data"]["ecto_code"], 2004, "{why}: {body}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM local_users").await,
        0,
        "a refused registration leaves no account"
    );
    assert_eq!(owner_id(&app).await, Value::Null);

    let (status, body) = register(&app, json!({ "setup_token": token.trim() })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner_id(&app).await, data(&body)["member"]["user_id"]);

    // The server has its owner: the next members need nothing.
    let (status, body) = register(&app, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The token is forgotten at the next start.
    let app = app.restart().await;
    assert!(
        !token_file(&app).exists(),
        "the setup token outlived the first owner"
    );
    let (status, body) = register(&app, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_stands_in_for_the_setup_token() {
    let app = guarded().await;
    let server_id = app.server_id().await;
    let code = "SetupInv";
    app.sql(&format!(
        "INSERT INTO invites (id, server_id, code, created_by, max_uses, use_count, revoked, created_at)
         VALUES ('{}', '{server_id}', '{code}', '{}', 1, 0, false, '{}')",
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        sql_time(0),
    ))
    .await;
    let (status, body) = register(&app, json!({ "invite_code": "NotACode" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown invite: {body}");
    let (status, body) = register(&app, json!({ "invite_code": code })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner_id(&app).await, data(&body)["member"]["user_id"]);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM invites WHERE use_count = 1")
            .await,
        1,
        "the invite was used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_servers_ask_for_no_setup_token() {
    let app = TestApp::spawn_with(Profile::Managed, |c| c.require_setup_token = true).await;
    let (status, body) = register(&app, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner_id(&app).await, data(&body)["member"]["user_id"]);
}
