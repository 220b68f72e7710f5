//! Channels, categories, overrides, their audit entries and events (issue: community
//! structure). Every test runs in both profiles.

use ecto_core::permissions::bits;
use ecto_core::ports::Scope;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, next_event, unique, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn owner_and_member(app: &TestApp) -> (Session, Session) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    (owner, member)
}

async fn create_channel(app: &TestApp, token: &str, input: Value) -> Value {
    let (status, body) = app.mutate("channels.create", input, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["result"]["data"].clone()
}

async fn channels_are_created_listed_updated_and_deleted(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let mut events = app.events().await;
    let general = create_channel(
        &app,
        &owner.token,
        json!({ "name": "General Chat", "type": "text", "topic": "hi" }),
    )
    .await;
    assert_eq!(general["name"], "general-chat", "names are normalized");
    assert_eq!(general["type"], "text");
    assert_eq!(general["position"], 0, "the first channel is at 0");
    assert!(
        general.get("my_permissions").is_none(),
        "create answers without my_permissions"
    );
    let event = next_event(&mut events, "channel.create").await;
    assert_eq!(event.scope, Scope::Server);
    assert_eq!(event.data["id"], general["id"]);
    let page = create_channel(
        &app,
        &owner.token,
        json!({ "name": "wiki", "type": "page", "slowmode_seconds": 5, "nsfw": true }),
    )
    .await;
    assert_eq!(page["position"], 1);
    assert_eq!(page["slowmode_seconds"], 5);

    let (status, body) = app.query("channels.list", None, Some(&member.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = data(&body)["uncategorized"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "general-chat");
    let mine = list[0]["my_permissions"].as_u64().expect("my_permissions");
    assert_eq!(
        mine & bits::MANAGE_CHANNELS,
        0,
        "a member's own bits, not the owner's"
    );
    assert_ne!(mine & bits::READ_MESSAGES, 0);

    let input = json!({ "channel_id": general["id"], "name": "Lobby", "topic": null, "slowmode_seconds": 10 });
    let (status, body) = app
        .mutate("channels.update", input, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(data(&body)["name"], "lobby");
    assert_eq!(data(&body)["topic"], Value::Null);
    assert_eq!(data(&body)["slowmode_seconds"], 10);
    assert_eq!(
        next_event(&mut events, "channel.update").await.data["name"],
        "lobby"
    );

    let (status, body) = app
        .mutate(
            "channels.delete",
            json!({ "channel_id": general["id"] }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        next_event(&mut events, "channel.delete").await.data,
        json!({ "id": general["id"] })
    );
    let (status, body) = app
        .mutate(
            "channels.delete",
            json!({ "channel_id": general["id"] }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000))
    );
}

async fn members_without_manage_channels_are_refused(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let ch = create_channel(&app, &owner.token, json!({ "name": "x", "type": "text" })).await;
    let cat = app
        .mutate(
            "categories.create",
            json!({ "name": "cat" }),
            Some(&owner.token),
        )
        .await
        .1;
    let cat_id = data(&cat)["id"].clone();
    let calls = [
        ("channels.create", json!({ "name": "y", "type": "text" })),
        (
            "channels.update",
            json!({ "channel_id": ch["id"], "name": "z" }),
        ),
        ("channels.delete", json!({ "channel_id": ch["id"] })),
        (
            "channels.reorder",
            json!({ "channels": [{ "channel_id": ch["id"], "position": 3 }] }),
        ),
        ("categories.create", json!({ "name": "c2" })),
        (
            "categories.update",
            json!({ "category_id": cat_id, "name": "c3" }),
        ),
        ("categories.delete", json!({ "category_id": cat_id })),
        (
            "categories.reorder",
            json!({ "categories": [{ "category_id": cat_id, "position": 2 }] }),
        ),
    ];
    for (proc_, input) in calls {
        let (status, body) = app.mutate(proc_, input, Some(&member.token)).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::FORBIDDEN, Some(5001)),
            "{proc_}: {body}"
        );
    }
    for (proc_, input) in [
        ("channels.getOverrides", json!({ "channel_id": ch["id"] })),
        ("categories.getOverrides", json!({ "category_id": cat_id })),
        ("auditlog.list", json!({})),
    ] {
        let (status, body) = app.query(proc_, Some(input), Some(&member.token)).await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::FORBIDDEN, Some(5001)),
            "{proc_}: {body}"
        );
    }
    // A role with MANAGE_CHANNELS is enough.
    app.grant_role(&member, bits::MANAGE_CHANNELS, 1).await;
    let (status, body) = app
        .mutate(
            "channels.create",
            json!({ "name": "y", "type": "text" }),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn bad_channel_input_is_refused_with_the_rule(app: TestApp) {
    let (owner, _) = owner_and_member(&app).await;
    let cases = [
        (json!({ "name": "!!!", "type": "text" }), Some(3004)),
        (json!({ "name": "", "type": "text" }), None),
        (json!({ "name": "x".repeat(101), "type": "text" }), None),
        (json!({ "name": "ok", "type": "bogus" }), None),
        (
            json!({ "name": "ok", "type": "text", "slowmode_seconds": 3601 }),
            None,
        ),
        (
            json!({ "name": "ok", "type": "text", "slowmode_seconds": -1 }),
            None,
        ),
        (
            json!({ "name": "ok", "type": "text", "topic": "t".repeat(1025) }),
            None,
        ),
        (
            json!({ "name": "ok", "type": "text", "category_id": "not-a-uuid" }),
            None,
        ),
        (
            json!({ "name": "ok", "type": "text", "permission_overrides": [{ "target_type": "role", "target_id": TestApp::everyone_role(&owner), "allow": 1u64 << 40, "deny": 0 }] }),
            None,
        ),
        (
            json!({ "name": "ok", "type": "text", "permission_overrides": [{ "target_type": "group", "target_id": TestApp::everyone_role(&owner), "allow": 0, "deny": 0 }] }),
            None,
        ),
    ];
    for (input, ecto) in cases {
        let (status, body) = app
            .mutate("channels.create", input.clone(), Some(&owner.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}: {body}");
        assert_eq!(ecto_code(&body), ecto.map(i64::from), "{input}: {body}");
    }
    let (status, body) = app
        .mutate(
            "categories.create",
            json!({ "name": "---" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::BAD_REQUEST, Some(3004)),
        "{body}"
    );
    let unknown_cat = json!({ "name": "ok", "type": "text", "category_id": uuid::Uuid::now_v7() });
    let (status, body) = app
        .mutate("channels.create", unknown_cat, Some(&owner.token))
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000)),
        "{body}"
    );
    let unknown_role = json!({ "name": "ok", "type": "text", "permission_overrides": [{ "target_type": "role", "target_id": uuid::Uuid::now_v7(), "allow": 0, "deny": 0 }] });
    let (status, body) = app
        .mutate("channels.create", unknown_role, Some(&owner.token))
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(5000)),
        "{body}"
    );
}

async fn overrides_hide_and_reveal_channels(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    let everyone = TestApp::everyone_role(&owner);
    let read = bits::READ_MESSAGES;
    let secret = create_channel(&app, &owner.token, json!({ "name": "secret", "type": "text",
        "permission_overrides": [{ "target_type": "role", "target_id": everyone, "allow": 0, "deny": read }] })).await;
    let visible = |body: &Value| -> Vec<String> {
        let d = data(body);
        let mut names: Vec<String> = d["uncategorized"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        for cat in d["categories"].as_array().into_iter().flatten() {
            names.extend(
                cat["channels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned)),
            );
        }
        names
    };
    let (_, body) = app.query("channels.list", None, Some(&member.token)).await;
    assert!(
        !visible(&body).contains(&"secret".to_string()),
        "hidden from members: {body}"
    );
    let (_, body) = app.query("channels.list", None, Some(&owner.token)).await;
    assert!(
        visible(&body).contains(&"secret".to_string()),
        "the owner sees everything"
    );

    let (status, body) = app
        .query(
            "channels.getOverrides",
            Some(json!({ "channel_id": secret["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(data(&body)[0]["target_type"], "role");
    assert_eq!(data(&body)[0]["deny"], read);
    assert_eq!(data(&body)[0]["channel_id"], secret["id"]);

    let mut events = app.events().await;
    let reveal = json!({ "channel_id": secret["id"], "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": read },
        { "target_type": "member", "target_id": member.user_id, "allow": read, "deny": 0 } ] });
    let (status, body) = app
        .mutate("channels.update", reveal, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let perms_event = next_event(&mut events, "permissions.update").await;
    assert_eq!(
        perms_event.data,
        json!({ "type": "channel", "id": secret["id"] })
    );
    let (_, body) = app.query("channels.list", None, Some(&member.token)).await;
    assert!(
        visible(&body).contains(&"secret".to_string()),
        "a member override reveals it"
    );

    // A category member override hides every channel of the category from that member.
    let cat = data(
        &app.mutate(
            "categories.create",
            json!({ "name": "Staff" }),
            Some(&owner.token),
        )
        .await
        .1,
    )
    .clone();
    assert_eq!(cat["name"], "staff");
    create_channel(
        &app,
        &owner.token,
        json!({ "name": "staff-room", "type": "text", "category_id": cat["id"] }),
    )
    .await;
    let (_, body) = app.query("channels.list", None, Some(&member.token)).await;
    assert!(visible(&body).contains(&"staff-room".to_string()));
    let hide = json!({ "category_id": cat["id"], "permission_overrides": [{ "target_type": "member", "target_id": member.user_id, "allow": 0, "deny": read }] });
    let (status, body) = app
        .mutate("categories.update", hide, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = app.query("channels.list", None, Some(&member.token)).await;
    assert!(
        !visible(&body).contains(&"staff-room".to_string()),
        "category member override applies: {body}"
    );
    assert!(
        data(&body)["categories"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(false),
        "an empty category is hidden from non-managers"
    );
    let (_, body) = app
        .query(
            "categories.getOverrides",
            Some(json!({ "category_id": cat["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(data(&body)[0]["target_type"], "member");
    assert_eq!(data(&body)[0]["category_id"], cat["id"]);
}

async fn a_member_cannot_grant_bits_it_lacks(app: TestApp) {
    let (owner, member) = owner_and_member(&app).await;
    app.grant_role(&member, bits::MANAGE_CHANNELS, 1).await;
    let everyone = TestApp::everyone_role(&owner);
    let input = json!({ "name": "grab", "type": "text", "permission_overrides": [{ "target_type": "role", "target_id": everyone, "allow": bits::MANAGE_SERVER, "deny": 0 }] });
    let (status, body) = app
        .mutate("channels.create", input, Some(&member.token))
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5004)),
        "{body}"
    );
    let input = json!({ "name": "fine", "type": "text", "permission_overrides": [{ "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::SEND_MESSAGES }] });
    let (status, body) = app
        .mutate("channels.create", input, Some(&member.token))
        .await;
    assert_eq!(status, StatusCode::OK, "denying is always allowed: {body}");
}

async fn reorder_and_category_delete_move_channels(app: TestApp) {
    let (owner, _) = owner_and_member(&app).await;
    let a = create_channel(&app, &owner.token, json!({ "name": "a", "type": "text" })).await;
    let b = create_channel(&app, &owner.token, json!({ "name": "b", "type": "voice" })).await;
    let cat = data(
        &app.mutate(
            "categories.create",
            json!({ "name": "c" }),
            Some(&owner.token),
        )
        .await
        .1,
    )
    .clone();
    let cat2 = data(
        &app.mutate(
            "categories.create",
            json!({ "name": "d" }),
            Some(&owner.token),
        )
        .await
        .1,
    )
    .clone();
    assert_eq!(
        (cat["position"].as_i64(), cat2["position"].as_i64()),
        (Some(0), Some(1))
    );
    let mut events = app.events().await;
    let moves = json!({ "channels": [
        { "channel_id": a["id"], "position": 5, "category_id": cat["id"] },
        { "channel_id": b["id"], "position": 1 } ] });
    let (status, body) = app
        .mutate("channels.reorder", moves, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = next_event(&mut events, "channel.reorder").await;
    assert_eq!(event.data.as_array().map(Vec::len), Some(2));
    let (_, body) = app.query("channels.list", None, Some(&owner.token)).await;
    assert_eq!(data(&body)["uncategorized"][0]["name"], "b");
    assert_eq!(data(&body)["categories"][0]["channels"][0]["name"], "a");
    assert_eq!(data(&body)["categories"][0]["channels"][0]["position"], 5);

    // A move naming an unknown channel changes nothing.
    let bad = json!({ "channels": [{ "channel_id": a["id"], "position": 9 }, { "channel_id": uuid::Uuid::now_v7(), "position": 0 }] });
    let (status, body) = app
        .mutate("channels.reorder", bad, Some(&owner.token))
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000))
    );
    let (_, body) = app.query("channels.list", None, Some(&owner.token)).await;
    assert_eq!(
        data(&body)["categories"][0]["channels"][0]["position"],
        5,
        "nothing half-written"
    );

    let reorder = json!({ "categories": [{ "category_id": cat["id"], "position": 7 }, { "category_id": cat2["id"], "position": 0 }] });
    let (status, _) = app
        .mutate("categories.reorder", reorder, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        next_event(&mut events, "category.reorder").await.data[0]["id"],
        cat2["id"]
    );
    let (status, _) = app
        .mutate(
            "categories.delete",
            json!({ "category_id": cat["id"] }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        next_event(&mut events, "category.delete").await.data,
        json!({ "id": cat["id"] })
    );
    let (_, body) = app.query("channels.list", None, Some(&owner.token)).await;
    let uncategorized: Vec<&str> = data(&body)["uncategorized"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        uncategorized.contains(&"a"),
        "channels of a deleted category become uncategorized: {body}"
    );
}

async fn every_structure_action_is_audited(app: TestApp) {
    let (owner, _) = owner_and_member(&app).await;
    let ch = create_channel(
        &app,
        &owner.token,
        json!({ "name": "audited", "type": "text" }),
    )
    .await;
    app.mutate(
        "channels.update",
        json!({ "channel_id": ch["id"], "topic": "t" }),
        Some(&owner.token),
    )
    .await;
    app.mutate(
        "channels.reorder",
        json!({ "channels": [{ "channel_id": ch["id"], "position": 2 }] }),
        Some(&owner.token),
    )
    .await;
    let cat = data(
        &app.mutate(
            "categories.create",
            json!({ "name": "k" }),
            Some(&owner.token),
        )
        .await
        .1,
    )
    .clone();
    app.mutate(
        "categories.update",
        json!({ "category_id": cat["id"], "name": "k2" }),
        Some(&owner.token),
    )
    .await;
    app.mutate(
        "categories.reorder",
        json!({ "categories": [{ "category_id": cat["id"], "position": 1 }] }),
        Some(&owner.token),
    )
    .await;
    app.mutate(
        "categories.delete",
        json!({ "category_id": cat["id"] }),
        Some(&owner.token),
    )
    .await;
    app.mutate(
        "channels.delete",
        json!({ "channel_id": ch["id"] }),
        Some(&owner.token),
    )
    .await;
    let server_id = app.server_id().await;
    for (action, target) in [
        ("channel.create", ch["id"].clone()),
        ("channel.update", ch["id"].clone()),
        ("channel.delete", ch["id"].clone()),
        ("channel.reorder", json!(server_id)),
        ("category.create", cat["id"].clone()),
        ("category.update", cat["id"].clone()),
        ("category.delete", cat["id"].clone()),
        ("category.reorder", json!(server_id)),
    ] {
        let (status, body) = app
            .query(
                "auditlog.list",
                Some(json!({ "action": action })),
                Some(&owner.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let entry = &data(&body)["entries"][0];
        assert_eq!(entry["action"], action, "{body}");
        assert_eq!(entry["target_id"], target, "{action}");
        assert_eq!(entry["actor_id"], owner.user_id.as_str());
        assert!(
            entry["actor_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("own")),
            "{entry}"
        );
    }
    let (_, body) = app
        .query(
            "auditlog.list",
            Some(json!({ "limit": 3 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(data(&body)["entries"].as_array().map(Vec::len), Some(3));
    assert_eq!(data(&body)["has_more"], true);
    let last = data(&body)["entries"][2]["id"].clone();
    let (_, body) = app
        .query(
            "auditlog.list",
            Some(json!({ "limit": 100, "before": last })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        data(&body)["entries"].as_array().map(Vec::len),
        Some(5),
        "paging by id covers the rest"
    );
    let (status, _) = app
        .query(
            "auditlog.list",
            Some(json!({ "limit": 0 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

both_profiles!(
    channels_are_created_listed_updated_and_deleted,
    members_without_manage_channels_are_refused,
    bad_channel_input_is_refused_with_the_rule,
    overrides_hide_and_reveal_channels,
    a_member_cannot_grant_bits_it_lacks,
    reorder_and_category_delete_move_channels,
    every_structure_action_is_audited,
);
