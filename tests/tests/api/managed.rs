//! Managed multi-tenancy (DECISIONS §4): servers picked per request, provisioning guarded.

use ecto_tests::{ecto_code, unique, Profile, TestApp, MANAGED_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_keep_separate_members_and_tokens() {
    let mut a = TestApp::spawn(Profile::Managed).await;
    let b_address = format!("{}.test.ecto", unique("b"));
    a.provision(&b_address, "Server B").await;
    let a_address = a
        .server_address
        .clone()
        .expect("managed app has an address");

    let name = unique("same");
    let on_a = a.register(&name, "password-a").await;
    a.server_address = Some(b_address.clone());
    // The same username is free on B: accounts are per server.
    let on_b = a.register(&name, "password-b").await;
    assert_ne!(on_a.user_id, on_b.user_id);
    let (_, info_b) = a.query("server.info", None, None).await;
    assert_eq!(info_b["result"]["data"]["member_count"], 1);
    assert_eq!(info_b["result"]["data"]["server"]["name"], "Server B");

    // A's token is refused by B, and A's password does not log into B.
    let (status, _) = a.mutate("server.leave", json!({}), Some(&on_a.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = a
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": on_a.refresh }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = a.login(&name, "password-a").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    a.server_address = Some(a_address);
    let (status, _) = a.mutate("server.join", json!({}), Some(&on_a.token)).await;
    assert_eq!(status, StatusCode::OK, "A's token still works on A");
    let (status, _) = a.mutate("server.join", json!({}), Some(&on_b.token)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "B's token is refused by A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_header_picks_the_server_when_no_address_header_is_sent() {
    let app = TestApp::spawn(Profile::Managed).await;
    let address = app.server_address.clone().expect("address");
    let rb = app
        .http
        .get(format!("{}/trpc/server.info", app.base))
        .header("Host", format!("{address}:443"));
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["data"]["server"]["address"], address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_addresses_are_not_found() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    app.server_address = Some("nowhere.invalid".into());
    let (status, body) = app.query("server.info", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ecto_code(&body), Some(2000));
    assert_eq!(body["error"]["data"]["ecto_error"], "server_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_needs_the_managed_api_key_and_a_free_address() {
    let app = TestApp::spawn(Profile::Managed).await;
    let body = json!({ "address": format!("{}.test.ecto", unique("p")), "name": "P" });
    let (status, _, _) = TestApp::send(
        app.http
            .post(format!("{}/internal/servers", app.base))
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rb = app
        .http
        .post(format!("{}/internal/servers", app.base))
        .bearer_auth("wrong")
        .json(&body);
    let (status, _, _) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rb = app
        .http
        .post(format!("{}/internal/servers", app.base))
        .bearer_auth(MANAGED_KEY)
        .json(&body);
    let (status, _, created) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let rb = app
        .http
        .post(format!("{}/internal/servers", app.base))
        .bearer_auth(MANAGED_KEY)
        .json(&body);
    let (status, _, _) = TestApp::send(rb).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an address is provisioned once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_hosted_has_no_provisioning_route() {
    let app = TestApp::spawn(Profile::SelfHosted).await;
    let rb = app
        .request(Method::POST, "/internal/servers")
        .bearer_auth(MANAGED_KEY)
        .json(&json!({ "address": "x.test", "name": "X" }));
    let (status, _, _) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_local_accounts_only_central_identities_get_in() {
    let central = ecto_tests::FakeCentral::spawn().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("tmp"));
    let mut config = ecto_tests::managed_config(&dir.path().to_string_lossy(), &central.url);
    config.allow_local_accounts = false;
    let mut app = TestApp::start(Profile::Managed, config, Some(central), Some(dir)).await;
    let address = format!("{}.test.ecto", unique("nl"));
    app.provision(&address, "Central only").await;
    app.server_address = Some(address);

    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": unique("loc"), "password": "password-1" }),
            None,
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(1006)),
        "{body}"
    );
    let (_, info) = app.query("server.info", None, None).await;
    assert_eq!(info["result"]["data"]["allow_local_accounts"], false);
    let (token, _) = ecto_tests::FakeCentral::token_for("central_only");
    let (status, body) = app.mutate("server.join", json!({}), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The server token issued to a global identity keeps working.
    let server_token = body["result"]["data"]["server_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let (status, _) = app
        .mutate("server.join", json!({}), Some(&server_token))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_of_another_server_are_not_found() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address);
    let owner_b = app.register(&unique("b"), "password-1").await;
    let ch_b = app
        .mutate(
            "channels.create",
            json!({ "name": "b-chan", "type": "text" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    let ch_b = ch_b["result"]["data"]["id"].clone();
    let cat_b = app
        .mutate(
            "categories.create",
            json!({ "name": "b-cat" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    let cat_b = cat_b["result"]["data"]["id"].clone();
    let role_b = TestApp::everyone_role(&owner_b);

    app.server_address = Some(a_address);
    let t = Some(owner_a.token.as_str());
    for (proc_, input) in [
        (
            "channels.update",
            json!({ "channel_id": ch_b, "name": "stolen" }),
        ),
        ("channels.delete", json!({ "channel_id": ch_b })),
        (
            "channels.reorder",
            json!({ "channels": [{ "channel_id": ch_b, "position": 0 }] }),
        ),
        (
            "channels.create",
            json!({ "name": "x", "type": "text", "category_id": cat_b }),
        ),
        (
            "categories.update",
            json!({ "category_id": cat_b, "name": "stolen" }),
        ),
        ("categories.delete", json!({ "category_id": cat_b })),
    ] {
        let (status, body) = app.mutate(proc_, input, t).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::NOT_FOUND, Some(3000)),
            "{proc_}: {body}"
        );
    }
    let (status, body) = app
        .query(
            "channels.getOverrides",
            Some(json!({ "channel_id": ch_b })),
            t,
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000)),
        "{body}"
    );
    let foreign_role = json!({ "name": "x", "type": "text", "permission_overrides": [{ "target_type": "role", "target_id": role_b, "allow": 0, "deny": 0 }] });
    let (status, body) = app.mutate("channels.create", foreign_role, t).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(5000)),
        "{body}"
    );
    let foreign_member = json!({ "name": "x", "type": "text", "permission_overrides": [{ "target_type": "member", "target_id": owner_b.user_id, "allow": 0, "deny": 0 }] });
    let (status, body) = app.mutate("channels.create", foreign_member, t).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // B's data is untouched.
    app.server_address = None;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_members_of_another_server_are_not_found() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let member_a = app.register(&unique("am"), "password-1").await;
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address);
    let owner_b = app.register(&unique("b"), "password-1").await;
    let role_b = app
        .mutate(
            "roles.create",
            json!({ "name": "b-role" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    let role_b = role_b["result"]["data"]["id"].clone();
    app.server_address = Some(a_address);
    let t = Some(owner_a.token.as_str());
    // Another server's roles are not found; its members are not members here (the
    // reference's `requireMember` on the target: 403 2002).
    let not_found = StatusCode::NOT_FOUND;
    let not_a_member = StatusCode::FORBIDDEN;
    for (proc_, input, expected) in [
        (
            "roles.update",
            json!({ "role_id": role_b, "name": "x" }),
            (not_found, 5000),
        ),
        (
            "roles.delete",
            json!({ "role_id": role_b }),
            (not_found, 5000),
        ),
        (
            "roles.reorder",
            json!({ "roles": [{ "role_id": role_b, "position": 1 }] }),
            (not_found, 5000),
        ),
        (
            "members.updateRoles",
            json!({ "user_id": member_a.user_id, "role_ids": [role_b] }),
            (not_found, 5000),
        ),
        (
            "members.kick",
            json!({ "user_id": owner_b.user_id }),
            (not_a_member, 2002),
        ),
        (
            "members.updateRoles",
            json!({ "user_id": owner_b.user_id, "role_ids": [] }),
            (not_a_member, 2002),
        ),
        (
            "members.updateNickname",
            json!({ "user_id": owner_b.user_id, "nickname": "x" }),
            (not_a_member, 2002),
        ),
    ] {
        let (status, body) = app.mutate(proc_, input, t).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (expected.0, Some(expected.1)),
            "{proc_}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_another_server_are_not_found() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address);
    let owner_b = app.register(&unique("b"), "password-1").await;
    let ch_b = app
        .mutate(
            "channels.create",
            json!({ "name": "b", "type": "text" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    let ch_b = ch_b["result"]["data"]["id"].clone();
    let msg_b = app
        .mutate(
            "messages.send",
            json!({ "channel_id": ch_b, "content": "b only" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    let msg_b = msg_b["result"]["data"]["id"].clone();
    app.server_address = Some(a_address);
    let t = Some(owner_a.token.as_str());
    let (status, body) = app
        .mutate(
            "messages.send",
            json!({ "channel_id": ch_b, "content": "x" }),
            t,
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000)),
        "{body}"
    );
    let (status, body) = app
        .query("messages.list", Some(json!({ "channel_id": ch_b })), t)
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000)),
        "{body}"
    );
    for (proc_, input) in [
        (
            "messages.update",
            json!({ "message_id": msg_b, "content": "x" }),
        ),
        ("messages.delete", json!({ "message_id": msg_b })),
        (
            "messages.pin",
            json!({ "message_id": msg_b, "pinned": true }),
        ),
        (
            "messages.react",
            json!({ "message_id": msg_b, "emoji": "x", "action": "add" }),
        ),
    ] {
        let (status, body) = app.mutate(proc_, input, t).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::NOT_FOUND, Some(4000)),
            "{proc_}: {body}"
        );
    }
    let (status, body) = app
        .query("messages.history", Some(json!({ "message_id": msg_b })), t)
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(4000)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_refuses_ids_of_another_server() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let (_, info_a) = app.query("server.info", None, None).await;
    let name_a = info_a["result"]["data"]["server"]["name"].clone();
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address.clone());
    let owner_b = app.register(&unique("b"), "password-1").await;
    let member_b = app.register(&unique("bm"), "password-1").await;
    let invite_b = app
        .mutate("invites.create", json!({}), Some(&owner_b.token))
        .await
        .1;
    let invite_b = invite_b["result"]["data"]["invite"]["id"].clone();
    let ch_b = app
        .mutate(
            "channels.create",
            json!({ "name": "b-chan", "type": "text" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    let ch_b = ch_b["result"]["data"]["id"].clone();

    app.server_address = Some(a_address);
    let t = Some(owner_a.token.as_str());
    for (proc_, input, code) in [
        ("invites.revoke", json!({ "invite_id": invite_b }), 2004),
        (
            "server.update",
            json!({ "name": "stolen", "default_channel_id": ch_b }),
            3000,
        ),
        (
            "server.transferOwnership",
            json!({ "new_owner_id": member_b.user_id, "confirmation": name_a }),
            2000,
        ),
        (
            "server.transferOwnership",
            json!({ "new_owner_id": owner_b.user_id, "confirmation": name_a }),
            2000,
        ),
    ] {
        let (status, body) = app.mutate(proc_, input, t).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::NOT_FOUND, Some(code)),
            "{proc_}: {body}"
        );
    }
    let (_, info_a) = app.query("server.info", None, None).await;
    assert_eq!(info_a["result"]["data"]["server"]["name"], name_a);
    assert_eq!(
        info_a["result"]["data"]["server"]["admin_user_id"],
        owner_a.user_id.as_str()
    );

    // B's invite is still usable, and B's owner unchanged.
    app.server_address = Some(b_address);
    let (status, list) = app.query("invites.list", None, Some(&owner_b.token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["result"]["data"]["invites"][0]["revoked"], false);
    let (_, info_b) = app.query("server.info", None, None).await;
    assert_eq!(
        info_b["result"]["data"]["server"]["admin_user_id"],
        owner_b.user_id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_never_crosses_servers() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let ch_a = app
        .mutate(
            "channels.create",
            json!({ "name": "a", "type": "text" }),
            Some(&owner_a.token),
        )
        .await
        .1;
    app.mutate(
        "messages.send",
        json!({ "channel_id": ch_a["result"]["data"]["id"], "content": "platypus here" }),
        Some(&owner_a.token),
    )
    .await;
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address);
    let owner_b = app.register(&unique("b"), "password-1").await;
    let ch_b = app
        .mutate(
            "channels.create",
            json!({ "name": "b", "type": "text" }),
            Some(&owner_b.token),
        )
        .await
        .1;
    app.mutate(
        "messages.send",
        json!({ "channel_id": ch_b["result"]["data"]["id"], "content": "platypus elsewhere" }),
        Some(&owner_b.token),
    )
    .await;
    let (_, body) = app
        .query(
            "search.search",
            Some(json!({ "query": "platypus" })),
            Some(&owner_b.token),
        )
        .await;
    let found: Vec<&str> = body["result"]["data"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(found, vec!["platypus elsewhere"]);
    app.server_address = Some(a_address);
    let (status, body) = app
        .query(
            "search.search",
            Some(json!({ "query": "platypus", "channel_id": ch_b["result"]["data"]["id"] })),
            Some(&owner_a.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dms_and_activity_of_another_server_are_not_found() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    // Two central users are members of both servers, with the same user ids on each.
    let (one, _) = ecto_tests::FakeCentral::token_for("dm_one");
    let (two, _) = ecto_tests::FakeCentral::token_for("dm_two");
    let one_a = TestApp::session(app.mutate("server.join", json!({}), Some(&one)).await.1);
    let two_a = TestApp::session(app.mutate("server.join", json!({}), Some(&two)).await.1);
    let dms_on = json!({ "allow_member_dms": true });
    let (status, _) = app
        .mutate("serverConfig.update", dms_on.clone(), Some(&owner_a.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address.clone());
    let owner_b = app.register(&unique("b"), "password-1").await;
    let only_b = app.register(&unique("ob"), "password-2").await;
    let one_b = TestApp::session(app.mutate("server.join", json!({}), Some(&one)).await.1);
    let two_b = TestApp::session(app.mutate("server.join", json!({}), Some(&two)).await.1);
    assert_eq!(one_a.user_id, one_b.user_id);
    let (status, _) = app
        .mutate("serverConfig.update", dms_on, Some(&owner_b.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .mutate(
            "serverDms.send",
            json!({ "recipient_id": two_b.user_id, "content": "only on b" }),
            Some(&one_b.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let msg_b = body["result"]["data"].clone();
    let conv_b = msg_b["conversation_id"].clone();
    let (_, body) = app
        .query("activity.list", Some(json!({})), Some(&two_b.token))
        .await;
    let item_b = body["result"]["data"]["items"][0]["id"].clone();
    assert!(item_b.is_string(), "{body}");

    app.server_address = Some(a_address);
    let t = Some(one_a.token.as_str());
    let (status, body) = app
        .query(
            "serverDms.history",
            Some(json!({ "conversation_id": conv_b })),
            t,
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(6002)),
        "{body}"
    );
    let (status, body) = app
        .mutate(
            "serverDms.markRead",
            json!({ "conversation_id": conv_b, "last_read_message_id": msg_b["id"] }),
            t,
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(6002)),
        "{body}"
    );
    for (proc_, input) in [
        (
            "serverDms.edit",
            json!({ "message_id": msg_b["id"], "content": "x" }),
        ),
        ("serverDms.delete", json!({ "message_id": msg_b["id"] })),
        (
            "serverDms.react",
            json!({ "message_id": msg_b["id"], "emoji": "x", "action": "add" }),
        ),
        (
            "serverDms.send",
            json!({ "recipient_id": two_a.user_id, "content": "x", "reply_to": msg_b["id"] }),
        ),
    ] {
        let (status, body) = app.mutate(proc_, input, t).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::NOT_FOUND, Some(4000)),
            "{proc_}: {body}"
        );
    }
    let (status, body) = app
        .mutate(
            "serverDms.send",
            json!({ "recipient_id": only_b.user_id, "content": "hi" }),
            t,
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(6004)),
        "a member of B only cannot be reached from A: {body}"
    );
    let (_, body) = app.query("serverDms.list", Some(json!({})), t).await;
    assert_eq!(body["result"]["data"]["conversations"], json!([]));
    // Activity counts and lists are per server (DECISIONS §3.3), and so is marking.
    let t2 = Some(two_a.token.as_str());
    let (_, body) = app.query("activity.unreadCount", None, t2).await;
    assert_eq!(body["result"]["data"]["count"], 0, "{body}");
    let (_, body) = app.query("activity.list", Some(json!({})), t2).await;
    assert_eq!(body["result"]["data"]["items"], json!([]));
    let (status, _) = app
        .mutate("activity.markRead", json!({ "activity_ids": [item_b] }), t2)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.mutate("activity.markAllRead", json!({}), t2).await;
    assert_eq!(status, StatusCode::OK);
    app.server_address = Some(b_address);
    let (_, body) = app
        .query("activity.unreadCount", None, Some(&two_b.token))
        .await;
    assert_eq!(
        body["result"]["data"]["count"], 1,
        "B's item is untouched: {body}"
    );
}
