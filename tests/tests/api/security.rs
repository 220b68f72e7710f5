//! What a hostile member must not be able to do: grant themselves ADMINISTRATOR through a
//! role, manage channels they cannot see, make one request take the server's memory, ping
//! everyone through a webhook, pose as another member, hold unbounded sockets, use tokens
//! this server never issued, or guess passwords quickly.

use ecto_core::model::{AccessClaims, IdentityType};
use ecto_core::permissions::bits;
use ecto_tests::ws::{Incoming, WsClient};
use ecto_tests::{both_profiles, unique, Call, Profile, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HIERARCHY: (StatusCode, Option<i64>) = (StatusCode::FORBIDDEN, Some(5004));
const MISSING: (StatusCode, Option<i64>) = (StatusCode::FORBIDDEN, Some(5001));

async fn role(
    app: &TestApp,
    owner: &Session,
    name: &str,
    permissions: u64,
    position: i32,
) -> Value {
    let input = json!({ "name": name, "permissions": permissions, "position": position });
    app.ok("roles.create", input, owner).await["id"].clone()
}

async fn give(app: &TestApp, owner: &Session, to: &Session, roles: &[&Value]) {
    let input = json!({ "user_id": to.user_id, "role_ids": roles });
    app.ok("members.updateRoles", input, owner).await;
}

/// A member with MANAGE_ROLES cannot add (to themselves or anyone) a role below theirs that
/// holds bits they lack; the owner can, and roles within the caller's bits stay assignable.
async fn assigning_a_role_cannot_grant_bits_the_caller_lacks(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let manager = app.register(&unique("mgr"), "password-2").await;
    let other = app.register(&unique("oth"), "password-3").await;
    let boss = role(&app, &owner, "boss", bits::ADMINISTRATOR, 1).await;
    let helper = role(&app, &owner, "helper", bits::KICK_MEMBERS, 2).await;
    let mods = role(
        &app,
        &owner,
        "mods",
        bits::MANAGE_ROLES | bits::KICK_MEMBERS,
        5,
    )
    .await;
    give(&app, &owner, &manager, &[&mods]).await;
    let m = Some(manager.token.as_str());
    for (target, roles) in [(&manager, json!([mods, boss])), (&other, json!([boss]))] {
        assert_eq!(
            app.outcome(
                Call::Mutation,
                "members.updateRoles",
                json!({ "user_id": target.user_id, "role_ids": roles }),
                m
            )
            .await,
            HIERARCHY,
            "a role holding ADMINISTRATOR"
        );
    }
    let me = app.get("channels.list", json!({}), &manager).await;
    assert!(me.is_object());
    let (status, log) = app.query("auditlog.list", Some(json!({})), m).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "still no admin: {log}");
    // Bits the manager holds can be handed out.
    app.ok(
        "members.updateRoles",
        json!({ "user_id": other.user_id, "role_ids": [helper] }),
        &manager,
    )
    .await;
    // And the owner may hand out anything.
    give(&app, &owner, &other, &[&boss]).await;
}

/// Taking a role away is checked like giving it: a member with MANAGE_ROLES cannot remove a
/// role holding bits they lack (5004), while one holding ADMINISTRATOR (not the owner) may
/// give and take any role below theirs, whatever bits it carries.
async fn removing_a_role_is_checked_and_administrators_are_exempt(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let manager = app.register(&unique("mgr"), "password-2").await;
    let admin = app.register(&unique("adm"), "password-3").await;
    let other = app.register(&unique("oth"), "password-4").await;
    let banner = role(
        &app,
        &owner,
        "banner",
        bits::BAN_MEMBERS | bits::VIEW_AUDIT_LOG,
        1,
    )
    .await;
    let helper = role(&app, &owner, "helper", bits::KICK_MEMBERS, 2).await;
    let mods = role(
        &app,
        &owner,
        "mods",
        bits::MANAGE_ROLES | bits::KICK_MEMBERS,
        5,
    )
    .await;
    let admins = role(&app, &owner, "admins", bits::ADMINISTRATOR, 6).await;
    give(&app, &owner, &manager, &[&mods]).await;
    give(&app, &owner, &admin, &[&admins]).await;
    give(&app, &owner, &other, &[&banner, &helper]).await;

    // The manager outranks both roles and holds KICK_MEMBERS, not BAN_MEMBERS.
    let m = Some(manager.token.as_str());
    for roles in [json!([]), json!([helper])] {
        assert_eq!(
            app.outcome(
                Call::Mutation,
                "members.updateRoles",
                json!({ "user_id": other.user_id, "role_ids": roles }),
                m
            )
            .await,
            HIERARCHY,
            "taking away a role holding BAN_MEMBERS"
        );
    }
    // Taking away what the manager holds is fine, and the other role stays.
    let view = app
        .ok(
            "members.updateRoles",
            json!({ "user_id": other.user_id, "role_ids": [banner] }),
            &manager,
        )
        .await;
    let roles = view["roles"].as_array().expect("roles");
    assert!(roles.contains(&banner), "{view}");
    assert!(!roles.contains(&helper), "{view}");

    // An ADMINISTRATOR holder's own role carries no other bit, yet they may take the role
    // away and give it back (and give ADMINISTRATOR-free roles of any bits).
    let view = app
        .ok(
            "members.updateRoles",
            json!({ "user_id": other.user_id, "role_ids": [] }),
            &admin,
        )
        .await;
    assert!(!view["roles"].as_array().expect("roles").contains(&banner));
    let view = app
        .ok(
            "members.updateRoles",
            json!({ "user_id": other.user_id, "role_ids": [banner, helper] }),
            &admin,
        )
        .await;
    let roles = view["roles"].as_array().expect("roles");
    assert!(roles.contains(&banner) && roles.contains(&helper), "{view}");
}

/// "Grant only what you hold" for a channel's or category's overrides uses the caller's bits
/// there, not server-wide: a manager holding ATTACH_FILES server-wide but denied it in a
/// channel they still read and manage cannot write an override allowing it there.
async fn override_grants_use_channel_level_bits(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let manager = app.register(&unique("mgr"), "password-2").await;
    let staff = role(
        &app,
        &owner,
        "staff",
        bits::MANAGE_CHANNELS | bits::ATTACH_FILES,
        3,
    )
    .await;
    give(&app, &owner, &manager, &[&staff]).await;
    let everyone = TestApp::everyone_role(&owner);
    let deny_me = json!({ "target_type": "member", "target_id": manager.user_id, "allow": 0, "deny": bits::ATTACH_FILES });
    let channel = app
        .ok(
            "channels.create",
            json!({ "name": "no-files", "type": "text", "permission_overrides": [deny_me] }),
            &owner,
        )
        .await;
    let category = app
        .ok("categories.create", json!({ "name": "no-files" }), &owner)
        .await;
    app.ok(
        "categories.update",
        json!({ "category_id": category["id"], "permission_overrides": [deny_me] }),
        &owner,
    )
    .await;

    // What the manager holds in the channel: READ_MESSAGES and MANAGE_CHANNELS, not
    // ATTACH_FILES.
    let listed = app.get("channels.list", json!({}), &manager).await;
    let mine = listed["uncategorized"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == channel["id"]))
        .unwrap_or_else(|| panic!("the manager sees the channel: {listed}"))
        .clone();
    let held = mine["my_permissions"].as_u64().expect("my_permissions");
    assert_eq!(
        held & (bits::READ_MESSAGES | bits::MANAGE_CHANNELS | bits::ATTACH_FILES),
        bits::READ_MESSAGES | bits::MANAGE_CHANNELS,
        "{mine}"
    );

    let m = Some(manager.token.as_str());
    let allow = |target_type: &str, target: &Value| json!({ "target_type": target_type, "target_id": target, "allow": bits::ATTACH_FILES, "deny": 0 });
    let me = json!(manager.user_id);
    for (proc_, input) in [
        (
            "channels.update",
            json!({ "channel_id": channel["id"], "permission_overrides": [allow("member", &me)] }),
        ),
        (
            "channels.update",
            json!({ "channel_id": channel["id"], "permission_overrides": [deny_me, allow("role", &json!(everyone))] }),
        ),
        (
            "categories.update",
            json!({ "category_id": category["id"], "permission_overrides": [allow("member", &me)] }),
        ),
        (
            "channels.create",
            json!({ "name": "inside", "type": "text", "category_id": category["id"], "permission_overrides": [allow("role", &json!(everyone))] }),
        ),
        // Dropping the deny (or only its ATTACH_FILES) gives the bit back just the same.
        (
            "channels.update",
            json!({ "channel_id": channel["id"], "permission_overrides": [] }),
        ),
        (
            "channels.update",
            json!({ "channel_id": channel["id"], "permission_overrides": [{ "target_type": "member", "target_id": manager.user_id, "allow": 0, "deny": 0 }] }),
        ),
        (
            "categories.update",
            json!({ "category_id": category["id"], "permission_overrides": [] }),
        ),
    ] {
        assert_eq!(
            app.outcome(Call::Mutation, proc_, input.clone(), m).await,
            HIERARCHY,
            "{proc_} allowing ATTACH_FILES, or lifting its deny, where the manager is denied it: {input}"
        );
    }
    // Moving a channel out of the category that denies it, or deleting the category, lifts
    // the deny just the same.
    let inside = app
        .ok(
            "channels.create",
            json!({ "name": "in-no-files", "type": "text", "category_id": category["id"] }),
            &owner,
        )
        .await;
    for (proc_, input) in [
        (
            "channels.update",
            json!({ "channel_id": inside["id"], "category_id": null }),
        ),
        (
            "channels.reorder",
            json!({ "channels": [{ "channel_id": inside["id"], "position": 0, "category_id": null }] }),
        ),
        (
            "categories.delete",
            json!({ "category_id": category["id"] }),
        ),
    ] {
        assert_eq!(
            app.outcome(Call::Mutation, proc_, input.clone(), m).await,
            HIERARCHY,
            "{proc_} lifting the category's deny: {input}"
        );
    }
    // One target twice is a bad request, not a database error.
    let twice = json!({ "channel_id": channel["id"], "permission_overrides": [deny_me, deny_me] });
    assert_eq!(
        app.outcome(Call::Mutation, "channels.update", twice, m)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    // Bits the manager does hold there can be granted.
    let embed = json!({ "target_type": "role", "target_id": everyone, "allow": bits::EMBED_LINKS, "deny": 0 });
    app.ok(
        "channels.update",
        json!({ "channel_id": channel["id"], "permission_overrides": [deny_me, embed] }),
        &manager,
    )
    .await;
    let overrides = app
        .get(
            "channels.getOverrides",
            json!({ "channel_id": channel["id"] }),
            &owner,
        )
        .await;
    let text = overrides.to_string();
    assert!(
        overrides.as_array().is_some_and(|o| o
            .iter()
            .all(|o| o["allow"].as_u64().unwrap_or(0) & bits::ATTACH_FILES == 0)),
        "no override allows ATTACH_FILES: {text}"
    );
}

/// Server-level MANAGE_CHANNELS / MANAGE_WEBHOOKS do not reach into a channel the member
/// cannot read: no webhook tokens, no overrides, no rewriting them to let oneself in.
async fn channel_denials_bind_managers(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let manager = app.register(&unique("mgr"), "password-2").await;
    let staff = role(
        &app,
        &owner,
        "staff",
        bits::MANAGE_CHANNELS | bits::MANAGE_WEBHOOKS,
        3,
    )
    .await;
    give(&app, &owner, &manager, &[&staff]).await;
    let deny = json!([{ "target_type": "member", "target_id": manager.user_id, "allow": 0, "deny": bits::READ_MESSAGES }]);
    let hidden = app
        .ok(
            "channels.create",
            json!({ "name": "secret", "type": "text", "permission_overrides": deny }),
            &owner,
        )
        .await;
    let open = app.channel(&owner, "open", "text").await;
    let hook = app
        .ok(
            "webhooks.create",
            json!({ "channel_id": hidden["id"], "name": "ci" }),
            &owner,
        )
        .await;
    let category = app
        .ok("categories.create", json!({ "name": "vault" }), &owner)
        .await;
    app.ok(
        "categories.update",
        json!({ "category_id": category["id"], "permission_overrides": deny }),
        &owner,
    )
    .await;

    let m = Some(manager.token.as_str());
    let allow_me = json!([{ "target_type": "member", "target_id": manager.user_id, "allow": bits::READ_MESSAGES, "deny": 0 }]);
    for (call, proc_, input) in [
        (
            Call::Query,
            "webhooks.list",
            json!({ "channel_id": hidden["id"] }),
        ),
        (
            Call::Mutation,
            "webhooks.create",
            json!({ "channel_id": hidden["id"], "name": "mine" }),
        ),
        (
            Call::Mutation,
            "webhooks.delete",
            json!({ "webhook_id": hook["id"] }),
        ),
        (
            Call::Mutation,
            "webhooks.regenerateToken",
            json!({ "webhook_id": hook["id"] }),
        ),
        (
            Call::Query,
            "channels.getOverrides",
            json!({ "channel_id": hidden["id"] }),
        ),
        (
            Call::Mutation,
            "channels.update",
            json!({ "channel_id": hidden["id"], "permission_overrides": allow_me }),
        ),
        (
            Call::Mutation,
            "channels.delete",
            json!({ "channel_id": hidden["id"] }),
        ),
        (
            Call::Mutation,
            "channels.reorder",
            json!({ "channels": [{ "channel_id": hidden["id"], "position": 0 }] }),
        ),
        (
            Call::Query,
            "categories.getOverrides",
            json!({ "category_id": category["id"] }),
        ),
        (
            Call::Mutation,
            "categories.update",
            json!({ "category_id": category["id"], "permission_overrides": allow_me }),
        ),
        (
            Call::Mutation,
            "channels.create",
            json!({ "name": "inside", "type": "text", "category_id": category["id"] }),
        ),
    ] {
        assert_eq!(
            app.outcome(call, proc_, input, m).await,
            MISSING,
            "{proc_} on what the manager cannot see"
        );
    }
    // Where the manager can see, management works, and grants are limited to what they
    // hold there.
    let hooks = app
        .get(
            "webhooks.list",
            json!({ "channel_id": open["id"] }),
            &manager,
        )
        .await;
    assert_eq!(hooks, json!([]));
    let grant_admin = json!([{ "target_type": "member", "target_id": manager.user_id, "allow": bits::ADMINISTRATOR, "deny": 0 }]);
    assert_eq!(
        app.outcome(
            Call::Mutation,
            "channels.update",
            json!({ "channel_id": open["id"], "permission_overrides": grant_admin }),
            m
        )
        .await,
        HIERARCHY
    );
    app.ok(
        "channels.update",
        json!({ "channel_id": open["id"], "topic": "fine" }),
        &manager,
    )
    .await;
    // The webhook still works for its owner: nothing leaked or changed.
    let hooks = app
        .get(
            "webhooks.list",
            json!({ "channel_id": hidden["id"] }),
            &owner,
        )
        .await;
    assert_eq!(hooks[0]["token"], hook["token"]);
}

/// One request does a bounded amount of work: a batch past `max_batch_calls` is refused, and
/// answers past `max_response_bytes` get 413 instead of being built.
async fn one_request_is_bounded(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.max_batch_calls = 10;
        c.max_response_bytes = 40_000;
    })
    .await;
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "big", "text").await;
    for _ in 0..4 {
        let input = json!({ "channel_id": channel["id"], "content": "x".repeat(4000) });
        app.ok("messages.send", input, &owner).await;
    }
    let batch = |n: usize| {
        let paths = vec!["messages.list"; n].join(",");
        let inputs: serde_json::Map<String, Value> = (0..n)
            .map(|i| (i.to_string(), json!({ "channel_id": channel["id"] })))
            .collect();
        let rb = app
            .request(Method::GET, &format!("/trpc/{paths}"))
            .query(&[
                ("batch", "1"),
                ("input", &Value::Object(inputs).to_string()),
            ])
            .bearer_auth(&owner.token);
        TestApp::send(rb)
    };
    let (status, _, body) = batch(11).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "past the batch limit");
    assert!(body[0]["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("at most 10")));
    // Each answer is ~16 KB: the first two fit in 40 KB, the rest are refused with 413.
    let (status, _, body) = batch(6).await;
    assert_eq!(status.as_u16(), 207, "{}", body.to_string().len());
    let answers = body.as_array().expect("array");
    assert!(answers[0]["result"]["data"]["messages"].is_array());
    assert!(answers[1]["result"]["data"]["messages"].is_array());
    for answer in &answers[2..] {
        assert_eq!(answer["error"]["data"]["httpStatus"], 413, "{answer}");
        assert_eq!(answer["error"]["data"]["ecto_code"], 9001);
    }
    assert!(
        body.to_string().len() < 60_000,
        "the response stays bounded"
    );
}

/// @everyone, @here and role mentions of a webhook count only when its creator holds
/// MENTION_EVERYONE in the channel.
async fn webhooks_ping_no_more_than_their_creator(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let manager = app.register(&unique("mgr"), "password-2").await;
    let hooks_role = role(&app, &owner, "hooks", bits::MANAGE_WEBHOOKS, 2).await;
    give(&app, &owner, &manager, &[&hooks_role]).await;
    let channel = app.channel(&owner, "news", "text").await;
    let post = |hook: Value| {
        let path = format!(
            "/webhooks/{}/{}",
            hook["id"].as_str().unwrap_or(""),
            hook["token"].as_str().unwrap_or("")
        );
        let content = format!("@everyone and <@&{}>", hooks_role.as_str().unwrap_or(""));
        TestApp::send(
            app.request(Method::POST, &path)
                .json(&json!({ "content": content })),
        )
    };
    let theirs = app
        .ok(
            "webhooks.create",
            json!({ "channel_id": channel["id"], "name": "bot" }),
            &manager,
        )
        .await;
    let (status, _, message) = post(theirs.clone()).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert_eq!(message["mention_everyone"], false, "{message}");
    assert_eq!(message["mention_roles"], json!([]));
    // @here is the same ping: plain text, kept as written.
    let here = |hook: &Value| {
        let path = format!(
            "/webhooks/{}/{}",
            hook["id"].as_str().unwrap_or(""),
            hook["token"].as_str().unwrap_or("")
        );
        TestApp::send(
            app.request(Method::POST, &path)
                .json(&json!({ "content": "@here deploy done" })),
        )
    };
    let (status, _, message) = here(&theirs).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert_eq!(message["mention_everyone"], false, "{message}");
    assert_eq!(message["content"], "@here deploy done");
    let owners = app
        .ok(
            "webhooks.create",
            json!({ "channel_id": channel["id"], "name": "news-bot" }),
            &owner,
        )
        .await;
    let (_, _, message) = post(owners.clone()).await;
    assert_eq!(message["mention_everyone"], true, "{message}");
    assert_eq!(message["mention_roles"], json!([hooks_role]));
    let (_, _, message) = here(&owners).await;
    assert_eq!(message["mention_everyone"], true, "{message}");
}

/// Nicknames, display names and webhook names lose characters that hide or reorder text; a
/// name equal to another member's username is refused; stored URLs are http(s) or this
/// server's own files.
async fn names_and_urls_cannot_deceive(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let victim_name = unique("vic");
    let victim = app.register(&victim_name, "password-2").await;
    let member = app.register(&unique("mem"), "password-3").await;
    let view = app
        .ok(
            "members.updateNickname",
            json!({ "user_id": member.user_id, "nickname": "\u{202e}gnp.exe\u{200b} bob\u{0007}" }),
            &member,
        )
        .await;
    assert_eq!(view["nickname"], "gnp.exe bob");
    let taken = (StatusCode::CONFLICT, Some(1002));
    for (proc_, input) in [
        (
            "members.updateNickname",
            json!({ "user_id": member.user_id, "nickname": victim_name.to_uppercase() }),
        ),
        (
            "members.updateNickname",
            json!({ "user_id": member.user_id, "nickname": format!("{victim_name}\u{200b}") }),
        ),
        (
            "members.syncProfile",
            json!({ "display_name": victim_name }),
        ),
    ] {
        assert_eq!(
            app.outcome(Call::Mutation, proc_, input, Some(&member.token))
                .await,
            taken,
            "{proc_} posing as {victim_name}"
        );
    }
    // One's own username is fine as a nickname.
    app.ok(
        "members.updateNickname",
        json!({ "user_id": victim.user_id, "nickname": victim_name }),
        &victim,
    )
    .await;
    let channel = app.channel(&owner, "hooks", "text").await;
    let hook = app
        .ok(
            "webhooks.create",
            json!({ "channel_id": channel["id"], "name": "\u{2066}ci\u{2069} bot\u{feff}" }),
            &owner,
        )
        .await;
    assert_eq!(hook["name"], "ci bot");

    let bad = (StatusCode::BAD_REQUEST, None);
    let o = Some(owner.token.as_str());
    let page = app.channel(&owner, "wiki", "page").await;
    let news = app.channel(&owner, "news", "news").await;
    for (proc_, input) in [
        (
            "members.syncProfile",
            json!({ "avatar_url": "javascript:alert(1)" }),
        ),
        (
            "server.update",
            json!({ "icon_url": "data:image/png;base64,AAAA" }),
        ),
        (
            "server.update",
            json!({ "banner_url": "ftp://example.org/b.png" }),
        ),
        ("server.uploadIcon", json!({ "icon_url": "/etc/passwd" })),
        (
            "pages.updateBanner",
            json!({ "channel_id": page["id"], "banner_url": "https://x.org/\" onerror=\"x" }),
        ),
        (
            "news.createPost",
            json!({ "channel_id": news["id"], "title": "t", "content": "c", "hero_image_url": "vbscript:x" }),
        ),
        (
            "webhooks.create",
            json!({ "channel_id": channel["id"], "name": "n", "avatar_url": "file:///etc/passwd" }),
        ),
    ] {
        assert_eq!(
            app.outcome(Call::Mutation, proc_, input, o).await,
            bad,
            "{proc_}"
        );
    }
    let server = app.server_id().await;
    for url in [
        "https://cdn.example.org/a.png".to_owned(),
        format!("/files/{server}/icons/icon-x.png"),
    ] {
        app.ok("server.update", json!({ "icon_url": url }), &owner)
            .await;
    }
}

/// Sockets are capped per user and per address, pings count against a socket's budget, and
/// only tokens this server could have issued are accepted.
async fn sockets_and_tokens_are_bounded(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.ws_sockets_per_user = 2;
        c.ws_sockets_per_address = 6;
        c.ws_events_per_10s = 5;
    })
    .await;
    let member = app.register(&unique("mem"), "password-1").await;
    // The address cap: six sockets open, the seventh is refused before the upgrade.
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(app.ws().await);
    }
    assert_eq!(try_socket(&app).await, Some(429), "a seventh socket");
    drop(idle);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while try_socket(&app).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed sockets count again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The user cap: two sessions, the third is closed at identify.
    let mut first = app.ws().await;
    first.identify(&member.token, json!({})).await;
    let mut second = app.ws().await;
    second.identify(&member.token, json!({})).await;
    let mut third = identifying(&app, &member.token).await;
    assert_eq!(third.closed().await, (4008, "Too many sockets".to_owned()));
    // Pings count: the sixth within 10 s closes the socket.
    for _ in 0..6 {
        first.ping().await;
    }
    assert_eq!(first.closed().await.0, 4008);

    // Tokens: only what this server could have issued.
    let server_id = uuid::Uuid::parse_str(&app.server_id().await).expect("id");
    let user_id = uuid::Uuid::parse_str(&member.user_id).expect("id");
    let now = chrono::Utc::now().timestamp();
    let forge = |identity_type, issued_at: i64, expires_at: i64| {
        app.services
            .tokens
            .issue_access(&AccessClaims {
                user_id,
                identity_type,
                token_version: 0,
                server_id,
                issued_at,
                expires_at,
            })
            .expect("sign")
    };
    let fine = forge(IdentityType::Local, now, now + 7200);
    assert_eq!(
        app.outcome(Call::Query, "roles.list", json!({}), Some(&fine))
            .await
            .0,
        StatusCode::OK
    );
    for (token, why) in [
        (
            forge(IdentityType::Global, now, now + 7200),
            "identity type",
        ),
        (forge(IdentityType::Local, now, now + 3 * 7200), "lifetime"),
        (
            forge(IdentityType::Local, now + 3600, now + 7200),
            "issued later",
        ),
    ] {
        assert_eq!(
            app.outcome(Call::Query, "roles.list", json!({}), Some(&token))
                .await
                .0,
            StatusCode::UNAUTHORIZED,
            "{why}"
        );
    }
    // tRPC takes application/json, with parameters, and nothing that merely starts like it.
    for (content_type, status) in [
        ("application/json; charset=utf-8", StatusCode::OK),
        ("application/jsonx", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("application/json-seq", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let rb = app
            .request(Method::POST, "/trpc/members.updateDmPreference")
            .header("Content-Type", content_type)
            .bearer_auth(&member.token)
            .body(json!({ "allow_dms": true }).to_string());
        assert_eq!(TestApp::send(rb).await.0, status, "{content_type}");
    }
}

/// Sockets of one user that identify at the same moment are held to the user's cap all the
/// same: exactly `cap` of them get their ready, the others are closed with 4008, and the
/// refused ones leave nothing counted behind.
async fn identifies_at_once_stay_within_the_cap(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.ws_sockets_per_user = 2;
        c.ws_sockets_per_address = 0;
    })
    .await;
    let member = app.register(&unique("mem"), "password-1").await;
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let mut ws = app.ws().await;
        ws.expect("system.hello").await;
        sockets.push(ws);
    }
    // Every identify is on its way before the first answer is read.
    for ws in &mut sockets {
        ws.send("system.identify", json!({ "token": member.token }))
            .await;
    }
    let (mut ready, mut refused) = (Vec::new(), 0);
    for mut ws in sockets {
        match ws.next(10).await {
            Incoming::Frame(f) if f["event"] == "system.ready" => ready.push(ws),
            Incoming::Closed(code, reason) => {
                assert_eq!((code, reason.as_str()), (4008, "Too many sockets"));
                refused += 1;
            }
            Incoming::Frame(f) => panic!("unexpected {f}"),
        }
    }
    assert_eq!((ready.len(), refused), (2, 8), "ready and refused of 10");
    // Two open: a third is refused; once one closes, one more is let in.
    let mut third = identifying(&app, &member.token).await;
    assert_eq!(third.closed().await, (4008, "Too many sockets".to_owned()));
    ready.pop().expect("one").close().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match identifying(&app, &member.token).await.next(5).await {
            Incoming::Frame(f) if f["event"] == "system.ready" => break,
            Incoming::Closed(4008, _) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => panic!("a socket after one closed: {other:?}"),
        }
    }
}

/// A new socket past its hello that has sent `system.identify` with `token`; its answer is
/// not read yet.
async fn identifying(app: &TestApp, token: &str) -> WsClient {
    let mut ws = app.ws().await;
    ws.expect("system.hello").await;
    ws.send("system.identify", json!({ "token": token })).await;
    ws
}

/// Opens (and drops) a `/ws` socket: `None` when the upgrade succeeds, else its HTTP status.
async fn try_socket(app: &TestApp) -> Option<u16> {
    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("request");
    if let Some(addr) = &app.server_address {
        request
            .headers_mut()
            .insert("x-server-address", addr.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Some(resp.status().as_u16()),
        Err(e) => panic!("socket failed: {e}"),
    }
}

/// Link previews take from the caller's tRPC bucket, so varying the URL cannot make the server
/// fetch without bound.
async fn previews_take_from_the_callers_bucket(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.rate_limits.user = ecto_core::ports::Limit::new(3, std::time::Duration::from_secs(60));
    })
    .await;
    let member = app.register(&unique("mem"), "password-1").await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let rb = app
            .request(
                Method::GET,
                &format!("/api/unfurl?url=http%3A%2F%2F127.0.0.1%3A9%2F{i}"),
            )
            .bearer_auth(&member.token);
        let (status, headers, _) = TestApp::send(rb).await;
        statuses.push((status, headers.get("retry-after").is_some()));
    }
    assert!(
        statuses[..3]
            .iter()
            .all(|(s, _)| *s != StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(statuses[3], (StatusCode::TOO_MANY_REQUESTS, true));
}

/// The most common passwords are refused, and repeated failed logins slow down per account
/// without locking out its owner.
async fn passwords_resist_guessing(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.rate_limits.trust_forwarded_for = true;
        c.rate_limits.login_address =
            ecto_core::ports::Limit::new(3, std::time::Duration::from_secs(60));
        c.rate_limits.login_account =
            ecto_core::ports::Limit::new(2, std::time::Duration::from_secs(3600));
    })
    .await;
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": unique("weak"), "password": "Password123", "action": "register" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let name = unique("usr");
    let user = app.register(&name, "a long and private phrase").await;
    let (status, _) = app
        .mutate(
            "members.changePassword",
            json!({ "current_password": "a long and private phrase", "new_password": "qwerty123" }),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let login = |password: &'static str, from: &'static str| {
        let rb = app
            .request(Method::POST, "/trpc/server.join")
            .header("X-Forwarded-For", from)
            .json(&json!({ "username": name, "password": password, "action": "login" }));
        TestApp::send(rb)
    };
    // One address: three failures, then even the right password waits.
    for _ in 0..3 {
        assert_eq!(
            login("wrong guess!", "203.0.113.1").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, headers, _) = login("a long and private phrase", "203.0.113.1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.get("retry-after").is_some());
    // The owner, from an address that never failed, gets in.
    assert_eq!(
        login("a long and private phrase", "198.51.100.7").await.0,
        StatusCode::OK
    );
    // Guessing from other addresses takes from the account's bucket once an address failed.
    // (The first address's second and third attempts took the account's two tokens.)
    assert_eq!(
        login("guessing-1", "203.0.113.2").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login("guessing-2", "203.0.113.2").await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the account's bucket is spent"
    );
    assert_eq!(
        login("a long and private phrase", "198.51.100.8").await.0,
        StatusCode::OK,
        "still never locked out from a clean address"
    );
}

both_profiles!(
    assigning_a_role_cannot_grant_bits_the_caller_lacks,
    removing_a_role_is_checked_and_administrators_are_exempt,
    channel_denials_bind_managers,
    override_grants_use_channel_level_bits,
    webhooks_ping_no_more_than_their_creator,
    names_and_urls_cannot_deceive,
);

mod configured {
    use super::*;
    ecto_tests::per_profile!(
        one_request_is_bounded,
        sockets_and_tokens_are_bounded,
        identifies_at_once_stay_within_the_cap,
        previews_take_from_the_callers_bucket,
        passwords_resist_guessing,
    );
}
