//! `server.join`, `server.leave` and identities (reference §4.2, DECISIONS §3.10).

use ecto_tests::{both_profiles, ecto_code, sql_time, unique, FakeCentral, Profile, TestApp};
use reqwest::StatusCode;
use serde_json::json;

async fn first_joiner_becomes_owner_and_later_ones_do_not(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let data = &owner.body["result"]["data"];
    assert_eq!(data["server"]["admin_user_id"], owner.user_id.as_str());
    assert_eq!(data["member"]["identity_type"], "local");
    assert_eq!(
        data["member"]["roles"].as_array().map(Vec::len),
        Some(1),
        "@everyone"
    );
    assert!(
        data["server"]["discoverable"].is_boolean(),
        "the owner sees config-only keys"
    );

    let second = app.register(&unique("mem"), "password-2").await;
    let data = &second.body["result"]["data"];
    assert_eq!(data["server"]["admin_user_id"], owner.user_id.as_str());
    assert!(
        data["server"].get("discoverable").is_none(),
        "a plain member does not"
    );
    let (_, info) = app.query("server.info", None, None).await;
    assert_eq!(info["result"]["data"]["member_count"], 2);
}

async fn login_works_with_the_right_password_only(app: TestApp) {
    let name = unique("log");
    let reg = app.register(&name, "correct-horse").await;
    let (status, body) = app.login(&name.to_uppercase(), "correct-horse").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "login is case-insensitive on the name: {body}"
    );
    let again = TestApp::session(body);
    assert_eq!(again.user_id, reg.user_id);
    assert_eq!(
        again.member_id, reg.member_id,
        "an existing member keeps its membership"
    );
    let (status, body) = app.login(&name, "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ecto_code(&body), Some(1000));
}

async fn taken_usernames_conflict_case_insensitively(app: TestApp) {
    let name = unique("Dup");
    app.register(&name, "password-1").await;
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": name.to_lowercase(), "password": "password-2" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(ecto_code(&body), Some(1002));
    assert_eq!(body["error"]["data"]["ecto_error"], "username_taken");
}

async fn invalid_usernames_are_refused_with_1001(app: TestApp) {
    for bad in ["a", "has space", "semi;colon"] {
        let (status, body) = app
            .mutate(
                "server.join",
                json!({ "username": bad, "password": "password-1" }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(ecto_code(&body), Some(1001), "{bad}");
    }
}

async fn join_without_any_identity_is_unauthorized(app: TestApp) {
    let (status, body) = app.mutate("server.join", json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ecto_code(&body), Some(1000));
}

async fn a_valid_token_rejoins_with_fresh_tokens(app: TestApp) {
    let s = app.register(&unique("tok"), "password-1").await;
    let (status, body) = app.mutate("server.join", json!({}), Some(&s.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = TestApp::session(body);
    assert_eq!(again.member_id, s.member_id);
    assert_ne!(again.refresh, s.refresh);
}

async fn banned_users_cannot_join(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let name = unique("ban");
    let victim = app.register(&name, "password-2").await;
    let server_id = app.server_id().await;
    app.sql(&format!(
        "DELETE FROM members WHERE user_id = '{u}'; \
         INSERT INTO bans (id, server_id, user_id, banned_by, reason, created_at) VALUES ('{id}', '{server_id}', '{u}', '{o}', 'spam', '{t}');",
        u = victim.user_id,
        id = uuid::Uuid::now_v7(),
        o = owner.user_id,
        t = sql_time(0)
    ))
    .await;
    let (status, body) = app.login(&name, "password-2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(ecto_code(&body), Some(2003));
}

async fn invites_are_checked_and_counted_when_required(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let server_id = app.server_id().await;
    let invite = |code: &str, max_uses: &str, expires: &str, revoked: bool| {
        format!(
            "INSERT INTO invites (id, server_id, code, created_by, max_uses, use_count, expires_at, revoked, created_at) \
             VALUES ('{}', '{server_id}', '{code}', '{}', {max_uses}, 0, {expires}, {revoked}, '{}');",
            uuid::Uuid::now_v7(),
            owner.user_id,
            sql_time(0)
        )
    };
    let future = format!("'{}'", sql_time(3600));
    let past = format!("'{}'", sql_time(-60));
    let suffix = &unique("")[6..];
    let (ok, once, old, gone) = (
        format!("ok{suffix}"),
        format!("on{suffix}"),
        format!("ex{suffix}"),
        format!("rv{suffix}"),
    );
    app.sql(&format!(
        "UPDATE server_config SET require_invite = true WHERE server_id = '{server_id}'; {}{}{}{}",
        invite(&ok, "NULL", &future, false),
        invite(&once, "1", "NULL", false),
        invite(&old, "NULL", &past, false),
        invite(&gone, "NULL", "NULL", true),
    ))
    .await;
    let join = |code: Option<String>| {
        let mut input = json!({ "username": unique("inv"), "password": "password-1" });
        if let Some(c) = code {
            input["invite_code"] = json!(c);
        }
        app.mutate("server.join", input, None)
    };
    let (status, body) = join(None).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2004)),
        "{body}"
    );
    let (status, body) = join(Some("NOPE0000".into())).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(2004)),
        "{body}"
    );
    let (status, body) = join(Some(gone)).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2004)),
        "{body}"
    );
    let (status, body) = join(Some(old)).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2005)),
        "{body}"
    );
    let (status, body) = join(Some(once.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = join(Some(once)).await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2006)),
        "{body}"
    );
    let (status, body) = join(Some(ok.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A refused registration leaves no account behind: the same name registers later.
    let name = unique("retry");
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": name, "password": "password-1" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.login(&name, "password-1").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no account was created: {body}"
    );
    // The owner, already a member, logs in without any invite.
    let invited = json!({ "username": name, "password": "password-1", "invite_code": ok });
    let (status, body) = app.mutate("server.join", invited, None).await;
    assert_eq!(status, StatusCode::OK, "the refused name is free: {body}");
    let (_, info) = app.query("server.info", None, None).await;
    assert_eq!(info["result"]["data"]["require_invite"], true);
    assert_eq!(info["result"]["data"]["member_count"], 4);
}

async fn local_accounts_can_be_disabled_per_server(app: TestApp) {
    let server_id = app.server_id().await;
    app.sql(&format!(
        "UPDATE server_config SET allow_local_accounts = false WHERE server_id = '{server_id}';"
    ))
    .await;
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": unique("loc"), "password": "password-1" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(ecto_code(&body), Some(1006));
}

async fn owner_cannot_leave_but_members_can(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let (status, body) = app
        .mutate("server.leave", json!({}), Some(&owner.token))
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5001)),
        "{body}"
    );
    let (status, body) = app
        .mutate("server.leave", json!({}), Some(&member.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["data"]["success"], true);
    // The left member's token proves only that they are no longer a member; the refresh
    // token no longer works.
    let (status, body) = app
        .mutate("server.leave", json!({}), Some(&member.token))
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(2002))
    );
    let (status, _) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": member.refresh }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, info) = app.query("server.info", None, None).await;
    assert_eq!(info["result"]["data"]["member_count"], 1);
}

async fn central_identities_join_as_global_users(app: TestApp) {
    if app.profile == Profile::SelfHosted {
        // Self-hosted without CENTRAL_URL: a central-looking token proves nothing.
        let (token, _) = FakeCentral::token_for("ghost");
        let (status, _) = app.mutate("server.join", json!({}), Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        return;
    }
    let central = app
        .central
        .as_ref()
        .expect("managed tests run a fake central");
    let (token, user_id) = FakeCentral::token_for("globetrotter");
    let (status, body) = app.mutate("server.join", json!({}), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let member = &body["result"]["data"]["member"];
    assert_eq!(member["identity_type"], "global");
    assert_eq!(member["user_id"], user_id.to_string());
    assert_eq!(member["username"], "globetrotter");
    assert_eq!(member["discriminator"], "1234");
    let calls = central.calls();
    // Within 60 s the answer comes from the cache.
    let (status, _) = app.mutate("server.join", json!({}), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        central.calls(),
        calls,
        "a cached verification does not call central again"
    );
    let (status, _) = app
        .mutate("server.join", json!({}), Some("central:not-a-uuid:x"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

both_profiles!(
    first_joiner_becomes_owner_and_later_ones_do_not,
    login_works_with_the_right_password_only,
    taken_usernames_conflict_case_insensitively,
    invalid_usernames_are_refused_with_1001,
    join_without_any_identity_is_unauthorized,
    a_valid_token_rejoins_with_fresh_tokens,
    banned_users_cannot_join,
    invites_are_checked_and_counted_when_required,
    local_accounts_can_be_disabled_per_server,
    owner_cannot_leave_but_members_can,
    central_identities_join_as_global_users,
);
