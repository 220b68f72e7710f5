//! Server administration: invites, the server's configuration, server.update, uploadIcon,
//! transferOwnership and delete, with their audit entries and events. Every test runs in both
//! profiles.

use ecto_core::permissions::bits;
use ecto_core::ports::Scope;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, next_event, sql_time, unique, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn owner_and_member(app: &TestApp) -> (Session, Session) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    (owner, member)
}

/// A mutation that must succeed; returns its data.
async fn ok(app: &TestApp, proc_: &str, input: Value, token: &str) -> Value {
    let (status, body) = app.mutate(proc_, input.clone(), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{proc_} {input}: {body}");
    data(&body).clone()
}

/// A query that must succeed; returns its data.
async fn ok_query(app: &TestApp, proc_: &str, input: Option<Value>, token: &str) -> Value {
    let (status, body) = app.query(proc_, input, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{proc_}: {body}");
    data(&body).clone()
}

fn refused(status: StatusCode, body: &Value, want: (StatusCode, Option<i64>), what: &str) {
    assert_eq!((status, ecto_code(body)), want, "{what}: {body}");
}

async fn server_name(app: &TestApp) -> String {
    let (_, body) = app.query("server.info", None, None).await;
    data(&body)["server"]["name"]
        .as_str()
        .expect("server name")
        .to_owned()
}

async fn info(app: &TestApp, token: Option<&str>) -> Value {
    let (status, body) = app.query("server.info", None, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body).clone()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

/// The newest audit entry of `action`, read by `token` (which needs VIEW_AUDIT_LOG).
async fn last_audit(app: &TestApp, token: &str, action: &str) -> Value {
    let page = ok_query(
        app,
        "auditlog.list",
        Some(json!({ "action": action, "limit": 1 })),
        token,
    )
    .await;
    let entry = page["entries"][0].clone();
    assert_eq!(entry["action"], action, "no {action} entry: {page}");
    entry
}

async fn invites_are_created_listed_and_revoked(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let server_id = app.server_id().await;
    let mut events = app.events().await;

    let created = ok(
        &app,
        "invites.create",
        json!({ "max_uses": 3, "expires_in": 3_600_000 }),
        &owner.token,
    )
    .await;
    let invite = &created["invite"];
    let code = invite["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    assert_eq!(created["url"], format!("https://ecto.chat/invite/{code}"));
    assert_eq!(invite["server_id"], server_id.as_str());
    assert_eq!(invite["created_by"], owner.user_id.as_str());
    assert_eq!(invite["max_uses"], 3);
    assert_eq!(invite["use_count"], 0);
    assert_eq!(invite["revoked"], false);
    assert_eq!(
        invite["creator_name"],
        owner.body["result"]["data"]["member"]["username"]
    );
    for key in ["expires_at", "created_at"] {
        let ts = invite[key].as_str().expect("timestamp");
        assert!(ts.len() == 24 && ts.ends_with('Z'), "{key}: {ts}");
    }
    let event = next_event(&mut events, "invite.create").await;
    assert_eq!(event.scope, Scope::Server);
    assert_eq!(event.server_id.to_string(), server_id);
    assert_eq!(&event.data, invite);

    // Members hold CREATE_INVITES through @everyone; nulls and no input mean no limits.
    let open = ok(
        &app,
        "invites.create",
        json!({ "max_uses": null, "expires_in": null }),
        &member.token,
    )
    .await;
    assert_eq!(open["invite"]["max_uses"], Value::Null);
    assert_eq!(open["invite"]["expires_at"], Value::Null);
    let bare = ok(&app, "invites.create", Value::Null, &member.token).await;
    assert_ne!(bare["invite"]["code"], open["invite"]["code"]);

    let page = ok_query(&app, "invites.list", None, &member.token).await;
    assert_eq!(
        ids(&page["invites"]),
        vec![
            bare["invite"]["id"].as_str().unwrap_or_default(),
            open["invite"]["id"].as_str().unwrap_or_default(),
            invite["id"].as_str().unwrap_or_default(),
        ],
        "newest first"
    );
    assert_eq!(page["has_more"], false);

    // Only the creator or a holder of MANAGE_SERVER revokes.
    let (status, body) = app
        .mutate(
            "invites.revoke",
            json!({ "invite_id": invite["id"] }),
            Some(&member.token),
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(5001)),
        "another's invite",
    );
    let done = ok(
        &app,
        "invites.revoke",
        json!({ "invite_id": open["invite"]["id"] }),
        &member.token,
    )
    .await;
    assert_eq!(done, json!({ "success": true }));
    let event = next_event(&mut events, "invite.delete").await;
    assert_eq!(event.data, json!({ "id": open["invite"]["id"] }));
    ok(
        &app,
        "invites.revoke",
        json!({ "invite_id": bare["invite"]["id"] }),
        &owner.token,
    )
    .await;
    let (status, body) = app
        .mutate(
            "invites.revoke",
            json!({ "invite_id": Uuid::now_v7() }),
            Some(&owner.token),
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::NOT_FOUND, Some(2004)),
        "unknown invite",
    );
    let page = ok_query(&app, "invites.list", None, &owner.token).await;
    let revoked: Vec<bool> = page["invites"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["revoked"] == true)
        .collect();
    assert_eq!(revoked, vec![true, true, false]);
}

async fn invites_admit_joiners_while_usable_when_required(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    ok(
        &app,
        "serverConfig.update",
        json!({ "require_invite": true }),
        &owner.token,
    )
    .await;
    assert_eq!(info(&app, None).await["require_invite"], true);
    let join = |code: Option<String>| {
        let app = &app;
        async move {
            let mut input = json!({ "username": unique("j"), "password": "password-9" });
            if let Some(code) = code {
                input["invite_code"] = json!(code);
            }
            app.mutate("server.join", input, None).await
        }
    };
    let (status, body) = join(None).await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(2004)),
        "no code",
    );

    let once = ok(
        &app,
        "invites.create",
        json!({ "max_uses": 1 }),
        &owner.token,
    )
    .await;
    let code = once["invite"]["code"].as_str().expect("code").to_owned();
    let (status, body) = join(Some(code.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = join(Some(code)).await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(2006)),
        "used up",
    );
    let page = ok_query(&app, "invites.list", None, &owner.token).await;
    assert_eq!(page["invites"][0]["use_count"], 1);

    let other = ok(&app, "invites.create", json!({}), &owner.token).await;
    ok(
        &app,
        "invites.revoke",
        json!({ "invite_id": other["invite"]["id"] }),
        &owner.token,
    )
    .await;
    let (status, body) = join(other["invite"]["code"].as_str().map(str::to_owned)).await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(2004)),
        "revoked",
    );
}

async fn plain_members_are_refused_administration(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let name = server_name(&app).await;
    let invite = ok(&app, "invites.create", json!({}), &owner.token).await;
    let (status, body) = app
        .query("serverConfig.get", None, Some(&member.token))
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(5001)),
        "serverConfig.get",
    );
    let calls = [
        ("serverConfig.update", json!({ "require_invite": true })),
        ("server.update", json!({ "name": "taken over" })),
        (
            "server.uploadIcon",
            json!({ "icon_url": "https://cdn.example/i.png" }),
        ),
        (
            "server.transferOwnership",
            json!({ "new_owner_id": member.user_id, "confirmation": name }),
        ),
        ("server.delete", json!({ "confirmation": name })),
        (
            "invites.revoke",
            json!({ "invite_id": invite["invite"]["id"] }),
        ),
    ];
    for (proc_, input) in &calls {
        let (status, body) = app.mutate(proc_, input.clone(), Some(&member.token)).await;
        refused(status, &body, (StatusCode::FORBIDDEN, Some(5001)), proc_);
    }
    let (status, body) = app
        .mutate("serverConfig.completeSetup", json!({}), Some(&member.token))
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(1006)),
        "completeSetup",
    );

    // Without CREATE_INVITES in @everyone a member cannot invite, but may still list.
    ok(
        &app,
        "roles.update",
        json!({ "role_id": TestApp::everyone_role(&owner), "permissions": bits::READ_MESSAGES }),
        &owner.token,
    )
    .await;
    let (status, body) = app
        .mutate("invites.create", json!({}), Some(&member.token))
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(5001)),
        "invites.create",
    );
    let page = ok_query(&app, "invites.list", None, &member.token).await;
    assert_eq!(ids(&page["invites"]).len(), 1);

    // Nothing was changed by the refused calls.
    let config = ok_query(&app, "serverConfig.get", None, &owner.token).await;
    assert_eq!(config["require_invite"], false);
    let now = info(&app, None).await;
    assert_eq!(now["server"]["name"], name.as_str());
    assert_eq!(now["server"]["admin_user_id"], owner.user_id.as_str());

    // MANAGE_SERVER opens the configuration and the server's details, not the owner's acts.
    app.grant_role(&member, bits::MANAGE_SERVER, 1).await;
    ok_query(&app, "serverConfig.get", None, &member.token).await;
    ok(
        &app,
        "server.update",
        json!({ "description": "by a manager" }),
        &member.token,
    )
    .await;
    ok(
        &app,
        "invites.revoke",
        json!({ "invite_id": invite["invite"]["id"] }),
        &member.token,
    )
    .await;
    for (proc_, input) in &calls[3..5] {
        let (status, body) = app.mutate(proc_, input.clone(), Some(&member.token)).await;
        refused(status, &body, (StatusCode::FORBIDDEN, Some(5001)), proc_);
    }
    let (status, body) = app
        .mutate("serverConfig.completeSetup", json!({}), Some(&member.token))
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(1006)),
        "completeSetup by a manager",
    );
}

async fn administration_input_is_bounded(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let too_many_tags: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    let mutations = [
        ("invites.create", json!({ "max_uses": 0 })),
        ("invites.create", json!({ "max_uses": -3 })),
        ("invites.create", json!({ "expires_in": 59_999 })),
        ("invites.create", json!({ "expires_in": 1.5 })),
        ("invites.create", json!({ "max_uses": "2" })),
        ("invites.revoke", json!({ "invite_id": "nope" })),
        ("invites.revoke", json!({})),
        ("serverConfig.update", json!({ "tags": too_many_tags })),
        ("serverConfig.update", json!({ "tags": ["x".repeat(31)] })),
        (
            "serverConfig.update",
            json!({ "max_upload_size_bytes": -1 }),
        ),
        (
            "serverConfig.update",
            json!({ "max_upload_size_bytes": 3_000_000_000u64 }),
        ),
        (
            "serverConfig.update",
            json!({ "max_shared_storage_bytes": -1 }),
        ),
        ("serverConfig.update", json!({ "require_invite": "yes" })),
        ("server.update", json!({ "name": "n".repeat(101) })),
        ("server.update", json!({ "name": "" })),
        ("server.update", json!({ "name": "   " })),
        ("server.update", json!({ "description": "d".repeat(1025) })),
        ("server.update", json!({ "icon_url": "i".repeat(513) })),
        ("server.update", json!({ "banner_url": "b".repeat(513) })),
        ("server.update", json!({ "default_channel_id": "nope" })),
        ("server.uploadIcon", json!({ "icon_url": "i".repeat(513) })),
        ("server.uploadIcon", json!({})),
        ("server.transferOwnership", json!({ "confirmation": "x" })),
        ("server.delete", json!({})),
    ];
    for (proc_, input) in mutations {
        let (status, body) = app.mutate(proc_, input.clone(), Some(&owner.token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{proc_} {input}: {body}");
        assert_eq!(ecto_code(&body), None, "{proc_} {input}: {body}");
    }
    for input in [json!({ "limit": 0 }), json!({ "limit": 101 })] {
        let (status, body) = app
            .query("invites.list", Some(input.clone()), Some(&owner.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}: {body}");
    }

    // The bounds themselves are accepted.
    let edge = ok(
        &app,
        "invites.create",
        json!({ "max_uses": 1, "expires_in": 60_000 }),
        &owner.token,
    )
    .await;
    assert_eq!(edge["invite"]["max_uses"], 1);
    let tags: Vec<String> = (0..10)
        .map(|i| format!(" {:<28} ", format!("Tag{i}")))
        .collect();
    assert!(tags.iter().all(|t| t.chars().count() == 30));
    ok(
        &app,
        "serverConfig.update",
        json!({ "tags": tags, "max_upload_size_bytes": i32::MAX, "max_shared_storage_bytes": 0 }),
        &owner.token,
    )
    .await;
    let config = ok_query(&app, "serverConfig.get", None, &owner.token).await;
    let want: Vec<String> = (0..10).map(|i| format!("tag{i}")).collect();
    assert_eq!(config["tags"], json!(want), "trimmed and lower-cased");
    assert_eq!(config["max_upload_size_bytes"], i32::MAX);
    let hundred = "n".repeat(100);
    let view = ok(
        &app,
        "server.update",
        json!({ "name": hundred }),
        &owner.token,
    )
    .await;
    assert_eq!(view["name"], hundred.as_str());
    let (status, body) = app
        .query(
            "invites.list",
            Some(json!({ "limit": 100 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn invites_page_newest_first_by_id(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let invite = ok(&app, "invites.create", json!({}), &owner.token).await;
        created.push(invite["invite"]["id"].as_str().expect("id").to_owned());
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut input = json!({ "limit": 2 });
        if let Some(a) = &after {
            input["after"] = json!(a);
        }
        let page = ok_query(&app, "invites.list", Some(input), &owner.token).await;
        let got = ids(&page["invites"]);
        pages += 1;
        seen.extend(got.clone());
        if page["has_more"] == false {
            break;
        }
        assert_eq!(got.len(), 2);
        after = got.last().cloned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every invite once, newest first");
}

async fn server_config_round_trips_and_is_announced(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let config = ok_query(&app, "serverConfig.get", None, &owner.token).await;
    assert_eq!(
        config,
        json!({
            "max_upload_size_bytes": 5_242_880,
            "max_shared_storage_bytes": 104_857_600,
            "allow_local_accounts": true,
            "require_invite": false,
            "allow_member_dms": false,
            "show_system_messages": true,
            "discoverable": false,
            "discovery_approved": false,
            "tags": [],
            "version": "0.1.0",
            "discovery_pending": false,
        })
    );
    let mut events = app.events().await;
    let done = ok(
        &app,
        "serverConfig.update",
        json!({
            "max_upload_size_bytes": 1_048_576,
            "max_shared_storage_bytes": 0,
            "allow_member_dms": true,
            "show_system_messages": false,
            "discoverable": true,
            "tags": [" Rust ", "GAMES"],
        }),
        &owner.token,
    )
    .await;
    assert_eq!(done, json!({ "success": true }));
    let event = next_event(&mut events, "server.update").await;
    assert_eq!(event.scope, Scope::Server);
    assert_eq!(event.data["discoverable"], true, "{}", event.data);
    assert_eq!(event.data["discovery_approved"], false);
    assert_eq!(event.data["allow_member_dms"], true);
    assert_eq!(event.data["file_browser_enabled"], false);

    ok(
        &app,
        "serverConfig.update",
        json!({ "require_invite": true }),
        &owner.token,
    )
    .await;
    let config = ok_query(&app, "serverConfig.get", None, &owner.token).await;
    assert_eq!(
        config,
        json!({
            "max_upload_size_bytes": 1_048_576,
            "max_shared_storage_bytes": 0,
            "allow_local_accounts": true,
            "require_invite": true,
            "allow_member_dms": true,
            "show_system_messages": false,
            "discoverable": true,
            "discovery_approved": false,
            "tags": ["rust", "games"],
            "version": "0.1.0",
            "discovery_pending": false,
        }),
        "a partial update leaves the other settings"
    );
    let public = info(&app, None).await;
    assert_eq!(public["require_invite"], true);
    assert_eq!(public["server"]["allow_member_dms"], true);
    assert!(public["server"].get("discoverable").is_none());
    let entry = last_audit(&app, &owner.token, "server.update").await;
    assert_eq!(
        entry["details"],
        json!({ "config": { "require_invite": true } })
    );
    assert_eq!(entry["target_type"], "server");

    // Local accounts switched off: registering is refused.
    ok(
        &app,
        "serverConfig.update",
        json!({ "require_invite": false, "allow_local_accounts": false }),
        &owner.token,
    )
    .await;
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": unique("late"), "password": "password-3" }),
            None,
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(1006)),
        "local accounts off",
    );
}

async fn only_the_owner_completes_the_setup(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    assert_eq!(info(&app, None).await["server"]["setup_completed"], false);
    let (status, body) = app
        .mutate(
            "serverConfig.completeSetup",
            Value::Null,
            Some(&member.token),
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(1006)),
        "non-owner",
    );
    let mut events = app.events().await;
    let done = ok(
        &app,
        "serverConfig.completeSetup",
        Value::Null,
        &owner.token,
    )
    .await;
    assert_eq!(done, json!({ "success": true }));
    let event = next_event(&mut events, "server.update").await;
    assert_eq!(event.data["setup_completed"], true);
    assert_eq!(info(&app, None).await["server"]["setup_completed"], true);
}

async fn server_update_changes_the_server_and_announces_it(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let channel = ok(
        &app,
        "channels.create",
        json!({ "name": "general", "type": "text" }),
        &owner.token,
    )
    .await;
    let mut events = app.events().await;
    let view = ok(
        &app,
        "server.update",
        json!({
            "name": "  Renamed  ",
            "description": "About us",
            "icon_url": "https://cdn.example/icon.png",
            "banner_url": "https://cdn.example/banner.png",
            "default_channel_id": channel["id"],
        }),
        &owner.token,
    )
    .await;
    assert_eq!(view["name"], "Renamed", "the name is trimmed");
    assert_eq!(view["description"], "About us");
    assert_eq!(view["icon_url"], "https://cdn.example/icon.png");
    assert_eq!(view["banner_url"], "https://cdn.example/banner.png");
    assert_eq!(view["default_channel_id"], channel["id"]);
    assert_eq!(
        view["discoverable"], false,
        "the caller holds MANAGE_SERVER: {view}"
    );
    let event = next_event(&mut events, "server.update").await;
    assert_eq!(event.data["name"], "Renamed");
    assert!(
        event.data.get("discoverable").is_none(),
        "every member receives the event: {}",
        event.data
    );
    let seen = info(&app, Some(&member.token)).await;
    assert_eq!(seen["server"]["description"], "About us");
    assert!(seen["server"].get("discoverable").is_none());

    // A channel of no server is refused, and nothing of that call is written.
    let (status, body) = app
        .mutate(
            "server.update",
            json!({ "name": "Other", "default_channel_id": Uuid::now_v7() }),
            Some(&owner.token),
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::NOT_FOUND, Some(3000)),
        "unknown channel",
    );
    assert_eq!(info(&app, None).await["server"]["name"], "Renamed");

    let view = ok(
        &app,
        "server.update",
        json!({ "description": null, "banner_url": null, "default_channel_id": null }),
        &owner.token,
    )
    .await;
    assert_eq!(view["description"], Value::Null);
    assert_eq!(view["banner_url"], Value::Null);
    assert_eq!(view["default_channel_id"], Value::Null);
    assert_eq!(
        view["icon_url"], "https://cdn.example/icon.png",
        "absent keys stay"
    );
    assert_eq!(view["name"], "Renamed");

    let icon = ok(
        &app,
        "server.uploadIcon",
        json!({ "icon_url": "https://cdn.example/new.png" }),
        &owner.token,
    )
    .await;
    assert_eq!(icon, json!({ "icon_url": "https://cdn.example/new.png" }));
    loop {
        let event = next_event(&mut events, "server.update").await;
        if event.data["icon_url"] == "https://cdn.example/new.png" {
            break;
        }
    }
    assert_eq!(
        info(&app, None).await["server"]["icon_url"],
        "https://cdn.example/new.png"
    );

    // Deleting the default channel clears it.
    ok(
        &app,
        "server.update",
        json!({ "default_channel_id": channel["id"] }),
        &owner.token,
    )
    .await;
    ok(
        &app,
        "channels.delete",
        json!({ "channel_id": channel["id"] }),
        &owner.token,
    )
    .await;
    assert_eq!(
        info(&app, None).await["server"]["default_channel_id"],
        Value::Null
    );
}

async fn ownership_moves_only_with_the_right_confirmation(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let name = server_name(&app).await;
    let (status, body) = app
        .mutate(
            "server.transferOwnership",
            json!({ "new_owner_id": member.user_id, "confirmation": format!("{name}!") }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(ecto_code(&body), Some(2000));
    let (status, body) = app
        .mutate(
            "server.transferOwnership",
            json!({ "new_owner_id": Uuid::now_v7(), "confirmation": name }),
            Some(&owner.token),
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::NOT_FOUND, Some(2000)),
        "not a member",
    );
    assert_eq!(
        info(&app, None).await["server"]["admin_user_id"],
        owner.user_id.as_str()
    );

    let mut events = app.events().await;
    let done = ok(
        &app,
        "server.transferOwnership",
        json!({ "new_owner_id": member.user_id, "confirmation": name }),
        &owner.token,
    )
    .await;
    assert_eq!(done, json!({ "success": true }));
    let event = next_event(&mut events, "server.update").await;
    assert_eq!(event.data["admin_user_id"], member.user_id.as_str());
    assert_eq!(
        info(&app, None).await["server"]["admin_user_id"],
        member.user_id.as_str()
    );

    // The former owner is a plain member now; the new owner holds every bit.
    let (status, body) = app
        .mutate(
            "server.transferOwnership",
            json!({ "new_owner_id": owner.user_id, "confirmation": name }),
            Some(&owner.token),
        )
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(5001)),
        "former owner",
    );
    ok_query(&app, "serverConfig.get", None, &member.token).await;
    let (status, body) = app
        .mutate("server.leave", json!({}), Some(&member.token))
        .await;
    refused(
        status,
        &body,
        (StatusCode::FORBIDDEN, Some(5001)),
        "the new owner cannot leave",
    );
    let entry = last_audit(&app, &member.token, "server.transfer_ownership").await;
    assert_eq!(entry["actor_id"], owner.user_id.as_str());
    assert_eq!(entry["target_id"], member.user_id.as_str());
    assert_eq!(entry["details"], json!({ "previous_owner": owner.user_id }));
}

async fn administration_is_audited(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let server_id = app.server_id().await;
    let invite = ok(
        &app,
        "invites.create",
        json!({ "max_uses": 5 }),
        &owner.token,
    )
    .await;
    let invite_id = invite["invite"]["id"].clone();
    ok(
        &app,
        "invites.revoke",
        json!({ "invite_id": invite_id }),
        &owner.token,
    )
    .await;
    let created = last_audit(&app, &owner.token, "invite.create").await;
    assert_eq!(created["target_type"], "invite");
    assert_eq!(created["target_id"], invite_id);
    assert_eq!(created["details"]["code"], invite["invite"]["code"]);
    assert_eq!(created["details"]["max_uses"], 5);
    assert_eq!(created["actor_id"], owner.user_id.as_str());
    let revoked = last_audit(&app, &owner.token, "invite.revoke").await;
    assert_eq!(revoked["target_id"], invite_id);

    ok(
        &app,
        "server.update",
        json!({ "description": "audited", "icon_url": null }),
        &owner.token,
    )
    .await;
    let updated = last_audit(&app, &owner.token, "server.update").await;
    assert_eq!(updated["target_id"], server_id.as_str());
    assert_eq!(
        updated["details"],
        json!({ "description": "audited", "icon_url": null })
    );
    ok(
        &app,
        "server.uploadIcon",
        json!({ "icon_url": "https://cdn.example/a.png" }),
        &owner.token,
    )
    .await;
    let icon = last_audit(&app, &owner.token, "server.update").await;
    assert_eq!(
        icon["details"],
        json!({ "icon_url": "https://cdn.example/a.png" })
    );
    ok(&app, "serverConfig.completeSetup", json!({}), &owner.token).await;
    let setup = last_audit(&app, &owner.token, "server.update").await;
    assert_eq!(setup["details"], json!({ "setup_completed": true }));
}

async fn server_delete_needs_the_owner_and_its_name(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let server_id = app.server_id().await;
    let name = server_name(&app).await;
    let (status, body) = app
        .mutate(
            "server.delete",
            json!({ "confirmation": name }),
            Some(&member.token),
        )
        .await;
    refused(status, &body, (StatusCode::FORBIDDEN, Some(5001)), "member");
    let (status, body) = app
        .mutate(
            "server.delete",
            json!({ "confirmation": name.to_uppercase() }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::BAD_REQUEST, Some(2000)),
        "{body}"
    );
    assert_eq!(info(&app, None).await["server"]["id"], server_id.as_str());

    let mut events = app.events().await;
    let done = ok(
        &app,
        "server.delete",
        json!({ "confirmation": name }),
        &owner.token,
    )
    .await;
    assert_eq!(done, json!({ "success": true }));
    let event = next_event(&mut events, "server.delete").await;
    assert_eq!(event.data, json!({ "id": server_id }));
    assert_eq!(event.server_id.to_string(), server_id);
    let (status, body) = app.query("server.info", None, None).await;
    refused(
        status,
        &body,
        (StatusCode::NOT_FOUND, Some(2000)),
        "after delete",
    );
}

/// Every table of the schema, with the condition that selects the rows belonging to one server
/// (`{s}` the server id, `{members}`, `{channels}`, … the ids of its rows, captured before the
/// delete). `cached_profiles` belongs to no server.
const OWNED: &[(&str, &str)] = &[
    ("servers", "id = '{s}'"),
    ("server_config", "server_id = '{s}'"),
    ("custom_domains", "server_id = '{s}'"),
    ("local_users", "server_id = '{s}'"),
    ("members", "server_id = '{s}'"),
    ("roles", "server_id = '{s}'"),
    ("member_roles", "member_id IN ({members})"),
    ("categories", "server_id = '{s}'"),
    ("channels", "server_id = '{s}'"),
    ("channel_permission_overrides", "channel_id IN ({channels})"),
    (
        "category_permission_overrides",
        "category_id IN ({categories})",
    ),
    ("messages", "server_id = '{s}'"),
    ("message_edits", "message_id IN ({messages})"),
    ("attachments", "server_id = '{s}'"),
    ("reactions", "message_id IN ({messages})"),
    ("read_states", "channel_id IN ({channels})"),
    ("invites", "server_id = '{s}'"),
    ("bans", "server_id = '{s}'"),
    ("audit_log", "server_id = '{s}'"),
    ("dm_conversations", "server_id = '{s}'"),
    ("dm_read_states", "conversation_id IN ({conversations})"),
    ("webhooks", "channel_id IN ({channels})"),
    ("page_contents", "channel_id IN ({channels})"),
    ("page_revisions", "channel_id IN ({channels})"),
    ("shared_folders", "server_id = '{s}'"),
    ("shared_files", "server_id = '{s}'"),
    ("shared_item_permission_overrides", "server_id = '{s}'"),
    ("activity_items", "server_id = '{s}'"),
    ("news_posts", "channel_id IN ({channels})"),
    ("news_comments", "post_id IN ({posts})"),
    ("server_refresh_tokens", "member_id IN ({members})"),
];

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn server_delete_leaves_no_row_behind(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let s = app.server_id().await;
    let name = server_name(&app).await;
    let t = sql_time(0);

    // Through the protocol: channels (a page channel gets its page), a category with an
    // override, a channel override, a role held by a member, an invite, audit entries.
    let text = ok(
        &app,
        "channels.create",
        json!({ "name": "text", "type": "text" }),
        &owner.token,
    )
    .await;
    let page = ok(
        &app,
        "channels.create",
        json!({ "name": "page", "type": "page" }),
        &owner.token,
    )
    .await;
    let news = ok(
        &app,
        "channels.create",
        json!({ "name": "news", "type": "news" }),
        &owner.token,
    )
    .await;
    let everyone = TestApp::everyone_role(&owner);
    let category = ok(
        &app,
        "categories.create",
        json!({ "name": "cat" }),
        &owner.token,
    )
    .await;
    let overrides = json!([{ "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::SEND_MESSAGES }]);
    ok(
        &app,
        "categories.update",
        json!({ "category_id": category["id"], "permission_overrides": overrides }),
        &owner.token,
    )
    .await;
    ok(
        &app,
        "channels.update",
        json!({ "channel_id": text["id"], "permission_overrides": overrides }),
        &owner.token,
    )
    .await;
    app.grant_role(&member, bits::MANAGE_MESSAGES, 1).await;
    ok(&app, "invites.create", json!({}), &owner.token).await;

    // Rows no procedure writes yet, inserted directly.
    let id = || Uuid::now_v7().to_string();
    let text_id = text["id"].as_str().expect("id").to_owned();
    let page_id = page["id"].as_str().expect("id").to_owned();
    let news_id = news["id"].as_str().expect("id").to_owned();
    let (message, conversation, post, folder) = (id(), id(), id(), id());
    let (o, m) = (&owner.user_id, &member.user_id);
    let (user_a, user_b) = if o < m { (o, m) } else { (m, o) };
    let domain = format!("{}.custom.test", unique("dom"));
    app.sql(&format!(
        "INSERT INTO custom_domains (server_id, domain, status) VALUES ('{s}', '{domain}', 'pending');
         INSERT INTO bans (id, server_id, user_id, banned_by, reason, created_at)
             VALUES ('{ban}', '{s}', '{banned}', '{o}', 'spam', '{t}');
         INSERT INTO messages (id, server_id, channel_id, author_id, content, created_at)
             VALUES ('{message}', '{s}', '{text_id}', '{m}', 'hello', '{t}');
         INSERT INTO message_edits (id, message_id, content, edited_at)
             VALUES ('{edit}', '{message}', 'helo', '{t}');
         INSERT INTO attachments (id, server_id, message_id, channel_id, uploader_id, filename, url,
                                  storage_key, content_type, size_bytes, created_at)
             VALUES ('{att}', '{s}', '{message}', '{text_id}', '{m}', 'a.txt', '/files/a', 'k/a',
                     'text/plain', 1, '{t}');
         INSERT INTO reactions (id, message_id, user_id, emoji, created_at)
             VALUES ('{reaction}', '{message}', '{o}', 'x', '{t}');
         INSERT INTO read_states (user_id, channel_id, last_read_message_id, mention_count, updated_at)
             VALUES ('{o}', '{text_id}', '{message}', 0, '{t}');
         INSERT INTO dm_conversations (id, server_id, user_a, user_b, created_at)
             VALUES ('{conversation}', '{s}', '{user_a}', '{user_b}', '{t}');
         INSERT INTO dm_read_states (user_id, conversation_id, updated_at)
             VALUES ('{o}', '{conversation}', '{t}');
         INSERT INTO webhooks (id, channel_id, name, token, created_by, created_at)
             VALUES ('{hook}', '{text_id}', 'hook', 'secret', '{o}', '{t}');
         INSERT INTO page_revisions (id, channel_id, content, version, edited_by, created_at)
             VALUES ('{revision}', '{page_id}', 'v1', 1, '{o}', '{t}');
         INSERT INTO shared_folders (id, server_id, name, created_by, created_at)
             VALUES ('{folder}', '{s}', 'docs', '{o}', '{t}');
         INSERT INTO shared_files (id, server_id, folder_id, filename, url, storage_key, content_type,
                                   size_bytes, uploaded_by, created_at)
             VALUES ('{file}', '{s}', '{folder}', 'f.txt', '/hub/f', 'k/f', 'text/plain', 1, '{o}', '{t}');
         INSERT INTO shared_item_permission_overrides (id, server_id, item_type, item_id, target_type,
                                                       target_id, allow, deny)
             VALUES ('{shared_override}', '{s}', 'folder', '{folder}', 'role', '{everyone}', 0, 0);
         INSERT INTO activity_items (id, user_id, server_id, type, actor_id, message_id, channel_id,
                                     read, created_at)
             VALUES ('{activity}', '{o}', '{s}', 'mention', '{m}', '{message}', '{text_id}', false, '{t}');
         INSERT INTO news_posts (id, channel_id, author_id, title, content, published_at, created_at,
                                 updated_at)
             VALUES ('{post}', '{news_id}', '{o}', 'Title', 'Body', '{t}', '{t}', '{t}');
         INSERT INTO news_comments (id, post_id, author_id, content, created_at)
             VALUES ('{comment}', '{post}', '{m}', 'Nice', '{t}');",
        ban = id(),
        banned = id(),
        edit = id(),
        att = id(),
        reaction = id(),
        hook = id(),
        revision = id(),
        file = id(),
        shared_override = id(),
        activity = id(),
        comment = id(),
    ))
    .await;

    let members = quoted(&[owner.member_id.clone(), member.member_id.clone()]);
    let channels = quoted(&[text_id, page_id, news_id]);
    let categories = quoted(&[category["id"].as_str().expect("id").to_owned()]);
    let fill = |cond: &str| {
        cond.replace("{s}", &s)
            .replace("{members}", &members)
            .replace("{channels}", &channels)
            .replace("{categories}", &categories)
            .replace("{messages}", &quoted(std::slice::from_ref(&message)))
            .replace(
                "{conversations}",
                &quoted(std::slice::from_ref(&conversation)),
            )
            .replace("{posts}", &quoted(std::slice::from_ref(&post)))
    };

    // The list above is the whole schema: no table is left unchecked.
    let listed = OWNED
        .iter()
        .map(|(table, _)| format!("'{table}'"))
        // Not the server's: central's calls outlive it (its last ones must still go out), and
        // an operator's command's events live until the running server takes them (a second).
        .chain(
            [
                "cached_profiles",
                "central_outbox",
                "central_sync_state",
                "relayed_events",
            ]
            .map(|t| format!("'{t}'")),
        )
        .collect::<Vec<_>>()
        .join(", ");
    let unlisted = match app.db.kind() {
        ecto_sql::DbKind::Postgres => format!(
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_type = 'BASE TABLE' AND table_name NOT IN ({listed}) \
             AND table_name <> '__diesel_schema_migrations'"
        ),
        ecto_sql::DbKind::Sqlite => format!(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT IN ({listed}) \
             AND name <> '__diesel_schema_migrations' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'messages_fts%'"
        ),
    };
    assert_eq!(
        app.count(&unlisted).await,
        0,
        "a table is missing from OWNED"
    );

    for (table, cond) in OWNED {
        let n = app
            .count(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {}",
                fill(cond)
            ))
            .await;
        assert!(n > 0, "the fixture puts a row into {table}");
    }

    ok(
        &app,
        "server.delete",
        json!({ "confirmation": name }),
        &owner.token,
    )
    .await;

    for (table, cond) in OWNED {
        let n = app
            .count(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {}",
                fill(cond)
            ))
            .await;
        assert_eq!(n, 0, "{table} keeps {n} row(s) of the deleted server");
    }
    if app.db.kind() == ecto_sql::DbKind::Sqlite {
        let n = app
            .count("SELECT COUNT(*) AS n FROM messages_fts WHERE messages_fts MATCH 'hello'")
            .await;
        assert_eq!(n, 0, "the search index forgets the messages");
    }
}

both_profiles!(
    invites_are_created_listed_and_revoked,
    invites_admit_joiners_while_usable_when_required,
    plain_members_are_refused_administration,
    administration_input_is_bounded,
    invites_page_newest_first_by_id,
    server_config_round_trips_and_is_announced,
    only_the_owner_completes_the_setup,
    server_update_changes_the_server_and_announces_it,
    ownership_moves_only_with_the_right_confirmation,
    administration_is_audited,
    server_delete_needs_the_owner_and_its_name,
    server_delete_leaves_no_row_behind,
);
