//! Webhooks (CRUD and execution), the MEMBER_JOIN system message and `server.info` channels.

use ecto_core::permissions::bits;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, next_event, unique, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call_webhook(
    app: &TestApp,
    id: &Value,
    token: &Value,
    body: Value,
) -> (StatusCode, Value) {
    let path = format!(
        "/webhooks/{}/{}",
        id.as_str().unwrap_or(""),
        token.as_str().unwrap_or("")
    );
    let (status, _, body) = TestApp::send(app.request(Method::POST, &path).json(&body)).await;
    (status, body)
}

async fn webhooks_are_managed_and_post_messages(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let channel = app.channel(&owner, "hooks", "text").await;
    let hook = app.ok("webhooks.create", json!({ "channel_id": channel["id"], "name": "CI Bot", "avatar_url": "https://example.test/bot.png" }), &owner).await;
    assert_eq!(
        hook["token"].as_str().map(str::len),
        Some(64),
        "32 random bytes, hex"
    );
    assert_eq!(hook["name"], "CI Bot");
    let (status, body) = app
        .query(
            "webhooks.list",
            Some(json!({ "channel_id": channel["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(data(&body)[0]["id"], hook["id"]);

    let mut events = app.events().await;
    let (status, posted) = call_webhook(
        &app,
        &hook["id"],
        &hook["token"],
        json!({ "content": "build passed" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    assert_eq!(posted["author"]["username"], "CI Bot");
    assert_eq!(posted["webhook_id"], hook["id"]);
    assert_eq!(
        next_event(&mut events, "message.create").await.data["content"],
        "build passed"
    );
    let (status, posted) = call_webhook(
        &app,
        &hook["id"],
        &hook["token"],
        json!({ "content": "custom", "username": "Deployer" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    // Listings keep the webhook's name and avatar (DECISIONS §3.14).
    let (_, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"] })),
            Some(&member.token),
        )
        .await;
    let listed = data(&body)["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed[0]["author"]["username"], "CI Bot");
    assert_eq!(
        listed[0]["author"]["avatar_url"],
        "https://example.test/bot.png"
    );
    assert_eq!(listed[1]["author"]["username"], "Deployer");

    for (body, status) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({ "content": "" }), StatusCode::BAD_REQUEST),
        (json!({ "content": 5 }), StatusCode::BAD_REQUEST),
        (
            json!({ "content": "x".repeat(4001) }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "content": "x", "avatar_url": "javascript:alert(1)" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, answer) = call_webhook(&app, &hook["id"], &hook["token"], body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, _) = call_webhook(
        &app,
        &hook["id"],
        &json!("0".repeat(64)),
        json!({ "content": "x" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a wrong token is refused");
    let rb = app
        .request(
            Method::POST,
            &format!(
                "/webhooks/{}/{}",
                hook["id"].as_str().unwrap_or(""),
                hook["token"].as_str().unwrap_or("")
            ),
        )
        .header("content-type", "application/json")
        .body("{not json");
    let (status, _, _) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let fresh = app
        .ok(
            "webhooks.regenerateToken",
            json!({ "webhook_id": hook["id"] }),
            &owner,
        )
        .await;
    assert_ne!(fresh["token"], hook["token"]);
    let (status, _) = call_webhook(
        &app,
        &hook["id"],
        &hook["token"],
        json!({ "content": "old token" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the old token stops working");
    let (status, _) = call_webhook(
        &app,
        &hook["id"],
        &fresh["token"],
        json!({ "content": "new token" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    for (proc_, input) in [
        (
            "webhooks.create",
            json!({ "channel_id": channel["id"], "name": "x" }),
        ),
        ("webhooks.delete", json!({ "webhook_id": hook["id"] })),
        (
            "webhooks.regenerateToken",
            json!({ "webhook_id": hook["id"] }),
        ),
    ] {
        let (status, body) = app.mutate(proc_, input, Some(&member.token)).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::FORBIDDEN, Some(5001)),
            "{proc_}"
        );
    }
    let (status, _) = app
        .query(
            "webhooks.list",
            Some(json!({ "channel_id": channel["id"] })),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({ "channel_id": channel["id"], "name": "" }),
        json!({ "channel_id": channel["id"], "name": "x".repeat(81) }),
        json!({ "channel_id": channel["id"], "name": "x", "avatar_url": "not a url" }),
    ] {
        let (status, _) = app
            .mutate("webhooks.create", bad.clone(), Some(&owner.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, body) = app
        .mutate(
            "webhooks.create",
            json!({ "channel_id": uuid::Uuid::now_v7(), "name": "x" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000))
    );

    app.ok(
        "webhooks.delete",
        json!({ "webhook_id": hook["id"] }),
        &owner,
    )
    .await;
    let (status, body) = app
        .mutate(
            "webhooks.delete",
            json!({ "webhook_id": hook["id"] }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(4000))
    );
    let (status, _) = call_webhook(
        &app,
        &hook["id"],
        &fresh["token"],
        json!({ "content": "gone" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for action in ["webhook.create", "webhook.update", "webhook.delete"] {
        let (_, body) = app
            .query(
                "auditlog.list",
                Some(json!({ "action": action })),
                Some(&owner.token),
            )
            .await;
        assert_eq!(
            data(&body)["entries"][0]["target_id"],
            hook["id"],
            "{action}"
        );
    }
}

async fn joining_posts_member_join_in_the_default_channel(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let lobby = app.channel(&owner, "lobby", "text").await;
    app.ok(
        "server.update",
        json!({ "default_channel_id": lobby["id"] }),
        &owner,
    )
    .await;
    let newcomer = app.register(&unique("new"), "password-2").await;
    let (_, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": lobby["id"] })),
            Some(&owner.token),
        )
        .await;
    let system = &data(&body)["messages"][0];
    assert_eq!(system["type"], 1, "MEMBER_JOIN: {body}");
    assert_eq!(system["content"], Value::Null);
    assert_eq!(system["author"]["id"], newcomer.user_id.as_str());
    // Turned off, nobody is announced.
    app.ok(
        "serverConfig.update",
        json!({ "show_system_messages": false }),
        &owner,
    )
    .await;
    app.register(&unique("quiet"), "password-3").await;
    let (_, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": lobby["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(data(&body)["messages"].as_array().map(Vec::len), Some(1));
}

async fn server_info_lists_readable_channels_for_members_only(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    app.channel(&owner, "visible", "text").await;
    app.ok("channels.create", json!({ "name": "staff", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let (_, body) = app.query("server.info", None, None).await;
    assert!(
        data(&body).get("channels").is_none(),
        "anonymous callers get no channels"
    );
    let (_, body) = app.query("server.info", None, Some(&member.token)).await;
    let channels = data(&body)["channels"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0]["name"], "visible");
    assert_ne!(
        channels[0]["my_permissions"].as_u64().unwrap_or(0) & bits::READ_MESSAGES,
        0,
        "real bits, not an index"
    );
    let (_, body) = app.query("server.info", None, Some(&owner.token)).await;
    assert_eq!(data(&body)["channels"].as_array().map(Vec::len), Some(2));
}

both_profiles!(
    webhooks_are_managed_and_post_messages,
    joining_posts_member_join_in_the_default_channel,
    server_info_lists_readable_channels_for_members_only,
);
