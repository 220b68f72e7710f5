//! Roles, members and bans: permissions, the (stricter) role hierarchy, events and audit.

use ecto_core::permissions::bits;
use ecto_core::ports::Scope;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, next_event, unique, Call, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn audited(app: &TestApp, owner: &Session, action: &str, target: &str) {
    let input = json!({ "action": action, "limit": 100 });
    let (_, body) = app
        .query("auditlog.list", Some(input), Some(&owner.token))
        .await;
    let entries = data(&body)["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == action && e["target_id"] == target),
        "no {action} entry for {target}: {body}"
    );
}

async fn roles_are_created_updated_reordered_and_deleted(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let mut events = app.events().await;
    let mods = app
        .ok(
            "roles.create",
            json!({ "name": "Mods", "color": "#ff0000", "permissions": bits::MANAGE_MESSAGES }),
            &owner,
        )
        .await;
    assert_eq!(
        mods["position"], 1,
        "the first custom role sits above @everyone"
    );
    assert_eq!(mods["permissions"], bits::MANAGE_MESSAGES);
    assert_eq!(mods["is_default"], false);
    assert_eq!(
        next_event(&mut events, "role.create").await.scope,
        Scope::Server
    );
    let helpers = app
        .ok("roles.create", json!({ "name": "Helpers" }), &owner)
        .await;
    assert_eq!(helpers["position"], 2);

    let (status, body) = app.query("roles.list", None, Some(&member.token)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = data(&body)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["Helpers", "Mods", "@everyone"], "highest first");

    let updated = app.ok("roles.update", json!({ "role_id": mods["id"], "name": "Moderators", "permissions": bits::MANAGE_MESSAGES | bits::KICK_MEMBERS, "color": null }), &owner).await;
    assert_eq!(updated["name"], "Moderators");
    assert_eq!(updated["color"], Value::Null);
    assert_eq!(
        next_event(&mut events, "permissions.update").await.data,
        json!({ "type": "role", "id": mods["id"] })
    );

    app.ok(
        "roles.reorder",
        json!({ "roles": [{ "role_id": mods["id"], "position": 5 }] }),
        &owner,
    )
    .await;
    let reordered = next_event(&mut events, "role.reorder").await;
    assert_eq!(
        reordered.data[0]["id"], mods["id"],
        "role.reorder lists roles highest first"
    );

    app.ok("roles.delete", json!({ "role_id": helpers["id"] }), &owner)
        .await;
    assert_eq!(
        next_event(&mut events, "role.delete").await.data,
        json!({ "id": helpers["id"] })
    );
    app.refused(
        &owner,
        Call::Mutation,
        "roles.delete",
        json!({ "role_id": helpers["id"] }),
        (StatusCode::NOT_FOUND, 5000),
    )
    .await;
    let everyone = TestApp::everyone_role(&owner);
    app.refused(
        &owner,
        Call::Mutation,
        "roles.delete",
        json!({ "role_id": everyone }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    // @everyone's bits can change, its name and place cannot.
    app.ok(
        "roles.update",
        json!({ "role_id": everyone, "permissions": bits::READ_MESSAGES }),
        &owner,
    )
    .await;
    let (status, _) = app
        .mutate(
            "roles.update",
            json!({ "role_id": everyone, "name": "all" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    app.refused(
        &member,
        Call::Mutation,
        "roles.create",
        json!({ "name": "nope" }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    for (action, target) in [
        ("role.create", &mods["id"]),
        ("role.update", &mods["id"]),
        ("role.delete", &helpers["id"]),
    ] {
        audited(&app, &owner, action, target.as_str().unwrap_or("")).await;
    }
    let server_id = app.server_id().await;
    audited(&app, &owner, "role.reorder", &server_id).await;
}

async fn role_input_is_validated(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    for input in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": "ok", "color": "#1234567" }),
        json!({ "name": "ok", "permissions": 1u64 << 40 }),
        json!({ "name": "ok", "permissions": -1 }),
        json!({ "name": "ok", "position": 0 }),
        json!({ "permissions": 1 }),
    ] {
        let (status, body) = app
            .mutate("roles.create", input.clone(), Some(&owner.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}: {body}");
    }
}

async fn the_role_hierarchy_binds_everyone_but_the_owner(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let manager = app.register(&unique("mgr"), "password-2").await;
    let peer = app.register(&unique("peer"), "password-3").await;
    let plain = app.register(&unique("pln"), "password-4").await;
    let high = app
        .ok(
            "roles.create",
            json!({ "name": "High", "position": 3 }),
            &owner,
        )
        .await;
    let mine = app.ok("roles.create", json!({ "name": "Manager", "position": 2, "permissions": bits::MANAGE_ROLES | bits::KICK_MEMBERS }), &owner).await;
    let low = app
        .ok(
            "roles.create",
            json!({ "name": "Low", "position": 1 }),
            &owner,
        )
        .await;
    app.ok(
        "members.updateRoles",
        json!({ "user_id": manager.user_id, "role_ids": [mine["id"]] }),
        &owner,
    )
    .await;
    app.ok(
        "members.updateRoles",
        json!({ "user_id": peer.user_id, "role_ids": [mine["id"]] }),
        &owner,
    )
    .await;

    let h = StatusCode::FORBIDDEN;
    app.refuses(
        &manager,
        vec![
            (
                Call::Mutation,
                "roles.update",
                json!({ "role_id": high["id"], "name": "mine now" }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "roles.update",
                json!({ "role_id": mine["id"], "name": "same level" }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "roles.delete",
                json!({ "role_id": high["id"] }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "roles.reorder",
                json!({ "roles": [{ "role_id": low["id"], "position": 4 }] }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "roles.create",
                json!({ "name": "Top", "position": 2 }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "roles.create",
                json!({ "name": "Admin", "permissions": bits::ADMINISTRATOR }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "roles.update",
                json!({ "role_id": low["id"], "permissions": bits::BAN_MEMBERS }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "members.updateRoles",
                json!({ "user_id": plain.user_id, "role_ids": [high["id"]] }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "members.updateRoles",
                json!({ "user_id": peer.user_id, "role_ids": [low["id"]] }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "members.kick",
                json!({ "user_id": peer.user_id }),
                h,
                5004,
            ),
            (
                Call::Mutation,
                "members.kick",
                json!({ "user_id": owner.user_id }),
                h,
                5004,
            ),
        ],
    )
    .await;

    // Below its own highest role, the manager may act.
    let below = app
        .ok(
            "roles.create",
            json!({ "name": "Below", "permissions": bits::KICK_MEMBERS }),
            &manager,
        )
        .await;
    assert_eq!(below["position"], 1, "a manager's role lands below its own");
    app.ok(
        "roles.update",
        json!({ "role_id": low["id"], "name": "Lower" }),
        &manager,
    )
    .await;
    let member = app
        .ok(
            "members.updateRoles",
            json!({ "user_id": plain.user_id, "role_ids": [low["id"]] }),
            &manager,
        )
        .await;
    assert_eq!(
        member["roles"].as_array().map(Vec::len),
        Some(2),
        "@everyone is always kept: {member}"
    );
    assert_eq!(member["roles"][0], TestApp::everyone_role(&owner).as_str());
    app.ok(
        "members.kick",
        json!({ "user_id": plain.user_id }),
        &manager,
    )
    .await;
    // The owner is above everything.
    app.ok(
        "roles.update",
        json!({ "role_id": high["id"], "permissions": bits::ADMINISTRATOR }),
        &owner,
    )
    .await;
}

async fn members_are_listed_paged_and_filtered(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let mut people = vec![owner.clone()];
    for i in 0..4 {
        people.push(
            app.register(&format!("{}{i}", unique("p")), "password-1")
                .await,
        );
    }
    let role = app
        .ok("roles.create", json!({ "name": "Tagged" }), &owner)
        .await;
    app.ok(
        "members.updateRoles",
        json!({ "user_id": people[2].user_id, "role_ids": [role["id"]] }),
        &owner,
    )
    .await;
    app.ok(
        "members.updateNickname",
        json!({ "user_id": people[3].user_id, "nickname": "Zebra Nick" }),
        &owner,
    )
    .await;

    let (status, body) = app
        .query(
            "members.list",
            Some(json!({ "limit": 2 })),
            Some(&people[1].token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(data(&body)["total"], 5);
    assert_eq!(data(&body)["has_more"], true);
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut input = json!({ "limit": 2 });
        if let Some(a) = &after {
            input["after"] = a.clone();
        }
        let (_, body) = app
            .query("members.list", Some(input), Some(&owner.token))
            .await;
        let page = data(&body)["members"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        seen.extend(
            page.iter()
                .filter_map(|m| m["user_id"].as_str().map(str::to_owned)),
        );
        after = page.last().map(|m| m["id"].clone());
        if data(&body)["has_more"] != true {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "paging covers everyone exactly once");

    let (_, body) = app
        .query(
            "members.list",
            Some(json!({ "role_id": role["id"] })),
            Some(&owner.token),
        )
        .await;
    let tagged = data(&body)["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["user_id"], people[2].user_id.as_str());
    let (_, body) = app
        .query(
            "members.list",
            Some(json!({ "search": "zebra" })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        data(&body)["members"][0]["user_id"],
        people[3].user_id.as_str(),
        "search matches nicknames"
    );

    // channel_id keeps only those who can read it.
    let everyone = TestApp::everyone_role(&owner);
    let hidden = app.ok("channels.create", json!({ "name": "hidden", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES },
        { "target_type": "member", "target_id": people[4].user_id, "allow": bits::READ_MESSAGES, "deny": 0 } ] }), &owner).await;
    let (_, body) = app
        .query(
            "members.list",
            Some(json!({ "channel_id": hidden["id"] })),
            Some(&owner.token),
        )
        .await;
    let mut readers: Vec<&str> = data(&body)["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["user_id"].as_str())
        .collect();
    readers.sort();
    let mut expected = vec![owner.user_id.as_str(), people[4].user_id.as_str()];
    expected.sort();
    assert_eq!(readers, expected);
    assert_eq!(data(&body)["total"], 2);
    let (status, _) = app
        .query(
            "members.list",
            Some(json!({ "limit": 101 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn kicks_and_bans_remove_members_and_bans_keep_them_out(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let kicked_name = unique("kick");
    let kicked = app.register(&kicked_name, "password-2").await;
    let banned_name = unique("ban");
    let banned = app.register(&banned_name, "password-3").await;
    let bystander = app.register(&unique("by"), "password-4").await;
    app.refuses(
        &bystander,
        vec![
            (
                Call::Mutation,
                "members.kick",
                json!({ "user_id": kicked.user_id }),
                StatusCode::FORBIDDEN,
                5001,
            ),
            (
                Call::Mutation,
                "members.ban",
                json!({ "user_id": kicked.user_id }),
                StatusCode::FORBIDDEN,
                5001,
            ),
        ],
    )
    .await;

    let mut events = app.events().await;
    app.ok(
        "members.kick",
        json!({ "user_id": kicked.user_id, "reason": "spam" }),
        &owner,
    )
    .await;
    assert_eq!(
        next_event(&mut events, "member.leave").await.data,
        json!({ "user_id": kicked.user_id })
    );
    assert_eq!(
        next_event(&mut events, "presence.update").await.data["status"],
        "offline"
    );
    let (status, body) = app.query("roles.list", None, Some(&kicked.token)).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2002)),
        "a kicked member's token is no longer a member's"
    );
    let (status, _) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": kicked.refresh }),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "and its refresh token too (DECISIONS §3.22)"
    );
    let (status, _) = app.login(&kicked_name, "password-2").await;
    assert_eq!(status, StatusCode::OK, "a kicked member may come back");
    app.refused(
        &owner,
        Call::Mutation,
        "members.kick",
        json!({ "user_id": uuid::Uuid::now_v7() }),
        (StatusCode::FORBIDDEN, 2002),
    )
    .await;

    // What a ban with message deletion takes: the banned member's messages of the window,
    // not older ones, not anyone else's.
    let general = app.channel(&owner, "general", "text").await;
    let mut sent = Vec::new();
    for (s, content) in [
        (&banned, "from long ago"),
        (&banned, "rude remark"),
        (&bystander, "bystander remark"),
    ] {
        let input = json!({ "channel_id": general["id"], "content": content });
        sent.push(app.ok("messages.send", input, s).await);
    }
    let old = &sent[0];
    app.sql(&format!(
        "UPDATE messages SET created_at = '{}' WHERE id = '{}'",
        ecto_tests::sql_time(-2 * 86_400),
        old["id"].as_str().expect("id")
    ))
    .await;
    let (status, _) = app
        .mutate(
            "members.ban",
            json!({ "user_id": banned.user_id, "delete_messages": "2h" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.ok(
        "members.ban",
        json!({ "user_id": banned.user_id, "reason": "rude", "delete_messages": "24h" }),
        &owner,
    )
    .await;
    assert_eq!(
        next_event(&mut events, "member.leave").await.data,
        json!({ "user_id": banned.user_id })
    );
    let listed = app
        .get(
            "messages.list",
            json!({ "channel_id": general["id"] }),
            &owner,
        )
        .await;
    let mut left: Vec<&str> = listed["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    left.sort_unstable();
    assert_eq!(left, ["bystander remark", "from long ago"], "{listed}");
    let (status, body) = app.login(&banned_name, "password-3").await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2003))
    );
    let (status, body) = app.query("bans.list", None, Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK);
    let ban = &data(&body)[0];
    assert_eq!(ban["user_id"], banned.user_id.as_str());
    assert_eq!(ban["username"], banned_name.as_str());
    assert_eq!(ban["reason"], "rude");
    assert_eq!(ban["banned_by"], owner.user_id.as_str());
    let (status, _) = app.query("bans.list", None, Some(&bystander.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Banning someone who is not a member works too.
    let stranger = uuid::Uuid::now_v7();
    app.ok("members.ban", json!({ "user_id": stranger }), &owner)
        .await;

    app.ok(
        "members.unban",
        json!({ "user_id": banned.user_id }),
        &owner,
    )
    .await;
    app.refused(
        &owner,
        Call::Mutation,
        "members.unban",
        json!({ "user_id": banned.user_id }),
        (StatusCode::NOT_FOUND, 2000),
    )
    .await;
    let (status, _) = app.login(&banned_name, "password-3").await;
    assert_eq!(status, StatusCode::OK, "an unbanned user may rejoin");

    audited(&app, &owner, "member.kick", &kicked.user_id).await;
    audited(&app, &owner, "member.unban", &banned.user_id).await;
    let (_, body) = app
        .query(
            "auditlog.list",
            Some(json!({ "action": "member.ban", "limit": 100 })),
            Some(&owner.token),
        )
        .await;
    assert!(
        data(&body)["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["target_id"] == banned.user_id.as_str() && e["details"]["reason"] == "rude"),
        "{body}"
    );
}

async fn nicknames_dm_preferences_and_profiles_are_updated(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let other = app.register(&unique("oth"), "password-3").await;
    let mut events = app.events().await;
    let me = app
        .ok(
            "members.updateNickname",
            json!({ "user_id": member.user_id, "nickname": "Nicky" }),
            &member,
        )
        .await;
    assert_eq!(me["nickname"], "Nicky");
    assert_eq!(
        next_event(&mut events, "member.update").await.data["nickname"],
        "Nicky"
    );
    app.refused(
        &member,
        Call::Mutation,
        "members.updateNickname",
        json!({ "user_id": other.user_id, "nickname": "x" }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    let (status, _) = app
        .mutate(
            "members.updateNickname",
            json!({ "user_id": member.user_id, "nickname": "n".repeat(65) }),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let cleared = app
        .ok(
            "members.updateNickname",
            json!({ "user_id": member.user_id, "nickname": null }),
            &owner,
        )
        .await;
    assert_eq!(cleared["nickname"], Value::Null);

    app.ok(
        "members.updateDmPreference",
        json!({ "allow_dms": false }),
        &member,
    )
    .await;
    app.ok(
        "members.syncProfile",
        json!({ "display_name": "Member Display", "avatar_url": "https://example.test/a.png" }),
        &member,
    )
    .await;
    let (_, body) = app
        .query(
            "members.list",
            Some(json!({ "search": member.body["result"]["data"]["member"]["username"] })),
            Some(&owner.token),
        )
        .await;
    let listed = &data(&body)["members"][0];
    assert_eq!(listed["allow_dms"], false);
    assert_eq!(listed["display_name"], "Member Display");
    assert_eq!(listed["avatar_url"], "https://example.test/a.png");
}

both_profiles!(
    roles_are_created_updated_reordered_and_deleted,
    role_input_is_validated,
    the_role_hierarchy_binds_everyone_but_the_owner,
    members_are_listed_paged_and_filtered,
    kicks_and_bans_remove_members_and_bans_keep_them_out,
    nicknames_dm_preferences_and_profiles_are_updated,
);
