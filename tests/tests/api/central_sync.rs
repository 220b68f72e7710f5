//! Synchronisation with ecto-central (reference §2.6, "Outbound calls to central"): every
//! change that central must know of queues a signed call in the same transaction, and the calls
//! reach a fake central once each, in order, across an outage and a restart.

use ecto_core::usecases::base::signing::central_signature;
use ecto_tests::central::{SyncCall, INVALID_TITLE};
use ecto_tests::{data, unique, FakeCentral, Profile, Session, TestApp, SYNCED_ADDRESS, SYNC_KEY};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The address central knows this test's server by.
fn address(app: &TestApp) -> String {
    app.server_address
        .clone()
        .unwrap_or_else(|| SYNCED_ADDRESS.to_owned())
}

/// The calls' paths, without the `/api/` prefix.
fn paths(calls: &[SyncCall]) -> Vec<&str> {
    calls
        .iter()
        .map(|c| c.path.trim_start_matches("/api/"))
        .collect()
}

/// Waits for call number `n` (1-based) and returns it, after checking every call so far was
/// signed with the key.
async fn nth(central: &FakeCentral, n: usize) -> SyncCall {
    let calls = central.wait_for_sync(n, 10).await;
    assert!(calls.iter().all(|c| c.signed), "unsigned calls: {calls:#?}");
    calls[n - 1].clone()
}

async fn config(app: &TestApp, owner: &Session) -> Value {
    let (status, body) = app
        .query("serverConfig.get", None, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body).clone()
}

/// A member with an ecto-central identity who may publish news.
async fn herald(app: &TestApp) -> Session {
    let (token, _) = FakeCentral::token_for(&unique("herald"));
    let (status, body) = app.mutate("server.join", json!({}), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let herald = TestApp::session(body);
    app.grant_role(
        &herald,
        ecto_core::permissions::bits::MANAGE_NEWS | ecto_core::permissions::bits::READ_MESSAGES,
        1,
    )
    .await;
    herald
}

/// ecto-central's signed `POST /api/discovery-status`.
async fn push_approval(app: &TestApp, approved: bool) {
    let body = json!({ "approved": approved }).to_string();
    let t = chrono::Utc::now().timestamp().to_string();
    let sig = central_signature(SYNC_KEY.as_bytes(), &t, body.as_bytes());
    let rb = app
        .request(Method::POST, "/api/discovery-status")
        .header("X-Timestamp", t)
        .header("X-Signature", sig)
        .body(body);
    let (status, _, answer) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn each_change_calls_central_with_its_body(profile: Profile) {
    let central = FakeCentral::spawn_keyed(SYNC_KEY).await;
    let app = TestApp::spawn_synced(profile, &central).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let server_id = app.server_id().await;
    let address = address(&app);

    // server.update: the server's metadata as the change left it.
    app.ok(
        "server.update",
        json!({ "name": "Renamed", "description": "All about kites" }),
        &owner,
    )
    .await;
    let call = nth(&central, 1).await;
    assert_eq!(call.path, "/api/server-metadata-sync");
    assert_eq!(
        call.body,
        json!({
            "server_id": server_id,
            "address": address,
            "name": "Renamed",
            "description": "All about kites",
            "icon_url": null,
            "banner_url": null,
            "default_channel_id": null,
        })
    );

    // Invites: registered with their expiry, unregistered when revoked (once).
    let created = app
        .ok(
            "invites.create",
            json!({ "max_uses": 5, "expires_in": 3_600_000 }),
            &owner,
        )
        .await;
    let code = created["invite"]["code"].as_str().expect("code").to_owned();
    let call = nth(&central, 2).await;
    assert_eq!(call.path, "/api/invite-register");
    assert_eq!(
        call.body,
        json!({
            "code": code,
            "server_id": server_id,
            "address": address,
            "expires_at": created["invite"]["expires_at"],
        })
    );
    assert!(call.body["expires_at"].is_string(), "{call:?}");
    for _ in 0..2 {
        app.ok(
            "invites.revoke",
            json!({ "invite_id": created["invite"]["id"] }),
            &owner,
        )
        .await;
    }
    let call = nth(&central, 3).await;
    assert_eq!(call.path, "/api/invite-unregister");
    assert_eq!(call.body, json!({ "code": code, "server_id": server_id }));

    // Discovery: central's first answer refuses; the request answers with it.
    central.refuse_approval(true);
    app.ok(
        "serverConfig.update",
        json!({ "discoverable": true, "tags": ["Kites", " Wind "] }),
        &owner,
    )
    .await;
    let call = nth(&central, 4).await;
    assert_eq!(call.path, "/api/discovery-register");
    assert_eq!(
        call.body,
        json!({
            "server_id": server_id,
            "address": address,
            "name": "Renamed",
            "description": "All about kites",
            "icon_url": null,
            "banner_url": null,
            "tags": ["kites", "wind"],
        })
    );
    let cfg = config(&app, &owner).await;
    assert_eq!(
        (
            &cfg["discoverable"],
            &cfg["discovery_approved"],
            &cfg["discovery_pending"]
        ),
        (&json!(true), &json!(false), &json!(false)),
        "{cfg}"
    );

    // Not approved: a news post cannot be submitted (6101), nothing is sent.
    let news = app
        .ok(
            "channels.create",
            json!({ "name": "announcements", "type": "news" }),
            &owner,
        )
        .await;
    let herald = herald(&app).await;
    let submit = |title: &str| {
        json!({
            "channel_id": news["id"], "title": title, "content": "Gusts all week",
            "submit_to_discovery": true,
        })
    };
    let (status, body) = app
        .mutate("news.createPost", submit("Forecast"), Some(&herald.token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["data"]["ecto_code"], 6101, "{body}");

    // Central approves by its push; then the post goes to discovery.
    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({})).await;
    push_approval(&app, true).await;
    loop {
        let event = ws.expect("server.update").await;
        if event["data"]["discovery_approved"] == true {
            break;
        }
    }
    let post = app.ok("news.createPost", submit("Forecast"), &herald).await;
    assert_eq!(post["submitted_to_discovery"], true, "{post}");
    assert_eq!(post["discovery_validation_errors"], Value::Null, "{post}");
    assert!(post.get("discovery_pending").is_none(), "{post}");
    let call = nth(&central, 5).await;
    assert_eq!(call.path, "/api/discovery-post-sync");
    assert_eq!(call.body["post_id"], post["id"]);
    assert_eq!(call.body["server_id"], server_id.as_str());
    assert_eq!(call.body["address"], address.as_str());
    assert_eq!(call.body["channel_id"], news["id"]);
    assert_eq!(call.body["title"], "Forecast");
    assert_eq!(call.body["content"], "Gusts all week");
    assert_eq!(call.body["author_id"], herald.user_id.as_str());

    // Central's validation errors come back in the answer.
    let flagged = app
        .ok("news.createPost", submit("Forecast [invalid]"), &herald)
        .await;
    assert_eq!(
        flagged["discovery_validation_errors"],
        json!([INVALID_TITLE]),
        "{flagged}"
    );
    assert_eq!(nth(&central, 6).await.path, "/api/discovery-post-sync");

    // A submitted post's text is not edited (6101) unless the same call retracts it; the
    // retraction deletes it from discovery.
    let (status, body) = app
        .mutate(
            "news.updatePost",
            json!({ "post_id": post["id"], "content": "Calm" }),
            Some(&herald.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["data"]["ecto_code"], 6101, "{body}");
    let retracted = app
        .ok(
            "news.updatePost",
            json!({ "post_id": post["id"], "content": "Calm", "submit_to_discovery": false }),
            &herald,
        )
        .await;
    assert_eq!(retracted["submitted_to_discovery"], false, "{retracted}");
    assert_eq!(retracted["content"], "Calm");
    let call = nth(&central, 7).await;
    assert_eq!(
        (call.path.as_str(), &call.body),
        (
            "/api/discovery-post-delete",
            &json!({ "post_id": post["id"] })
        )
    );
    // Deleting a submitted post deletes it from discovery; a retracted one calls nothing.
    app.ok(
        "news.deletePost",
        json!({ "post_id": flagged["id"] }),
        &herald,
    )
    .await;
    app.ok("news.deletePost", json!({ "post_id": post["id"] }), &herald)
        .await;
    let call = nth(&central, 8).await;
    assert_eq!(
        (call.path.as_str(), &call.body),
        (
            "/api/discovery-post-delete",
            &json!({ "post_id": flagged["id"] })
        )
    );

    // Leaving discovery.
    app.ok(
        "serverConfig.update",
        json!({ "discoverable": false }),
        &owner,
    )
    .await;
    let call = nth(&central, 9).await;
    assert_eq!(
        (call.path.as_str(), &call.body),
        (
            "/api/discovery-unregister",
            &json!({ "server_id": server_id })
        )
    );
    assert_eq!(config(&app, &owner).await["discovery_approved"], false);

    // Nothing else was sent, and nothing twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        paths(&central.sync_calls()),
        [
            "server-metadata-sync",
            "invite-register",
            "invite-unregister",
            "discovery-register",
            "discovery-post-sync",
            "discovery-post-sync",
            "discovery-post-delete",
            "discovery-post-delete",
            "discovery-unregister",
        ]
    );
}

async fn calls_wait_out_an_outage_and_a_restart(profile: Profile) {
    let central = FakeCentral::spawn_keyed(SYNC_KEY).await;
    central.set_down(true);
    let app = TestApp::spawn_synced(profile, &central).await;
    let owner = app.register(&unique("own"), "password-1").await;

    // Central is down: every change still succeeds, its call waits in the outbox.
    app.ok("server.update", json!({ "name": "First name" }), &owner)
        .await;
    let invite = app.ok("invites.create", json!({}), &owner).await;
    app.ok("server.update", json!({ "name": "Second name" }), &owner)
        .await;
    app.ok(
        "serverConfig.update",
        json!({ "discoverable": true }),
        &owner,
    )
    .await;
    let cfg = config(&app, &owner).await;
    assert_eq!(
        (&cfg["discovery_approved"], &cfg["discovery_pending"]),
        (&json!(false), &json!(true)),
        "the approval waits for central: {cfg}"
    );
    assert!(central.sync_calls().is_empty());

    // The process ends and another takes over before central is back.
    let app = app.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    central.set_down(false);
    let calls = central.wait_for_sync(4, 15).await;
    assert!(calls.iter().all(|c| c.signed), "{calls:#?}");
    assert_eq!(
        paths(&calls),
        [
            "server-metadata-sync",
            "invite-register",
            "server-metadata-sync",
            "discovery-register",
        ],
        "in the order of the changes"
    );
    assert_eq!(calls[0].body["name"], "First name");
    assert_eq!(calls[1].body["code"], invite["invite"]["code"]);
    assert_eq!(calls[2].body["name"], "Second name");
    // Central's answer arrived through the outbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let cfg = config(&app, &owner).await;
        if cfg["discovery_approved"] == true && cfg["discovery_pending"] == false {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{cfg}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(central.sync_calls().len(), 4, "each call once");
}

ecto_tests::per_profile!(
    each_change_calls_central_with_its_body,
    calls_wait_out_an_outage_and_a_restart,
);

/// Two instances of one deployment, both delivering: every call goes out once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_delivers_each_call() {
    let central = FakeCentral::spawn_keyed(SYNC_KEY).await;
    central.set_down(true);
    let a = TestApp::spawn_synced(Profile::Managed, &central).await;
    let b = a.other_instance().await.expect("managed has instances");
    let owner = a.register(&unique("own"), "password-1").await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.ok(
            "server.update",
            json!({ "name": format!("Name {i}") }),
            &owner,
        )
        .await;
    }
    central.set_down(false);
    let calls = central.wait_for_sync(10, 15).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls_after = central.sync_calls();
    assert_eq!(calls_after.len(), 10, "each call once: {calls_after:#?}");
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c.body["name"].as_str().unwrap_or(""))
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("Name {i}")).collect();
    assert_eq!(names, expected, "in the order of the changes");
}
