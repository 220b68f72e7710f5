//! Refresh rotation and real revocation (reference §4.3, DECISIONS §3.9, §3.22).

use ecto_tests::{both_profiles, ecto_code, unique, TestApp};
use reqwest::StatusCode;
use serde_json::json;

async fn refresh_rotates_and_a_used_token_fails(app: TestApp) {
    let s = app.register(&unique("rot"), "password-1").await;
    let (status, body) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": s.refresh }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["result"]["data"];
    let (new_access, new_refresh) = (
        data["server_token"].as_str().unwrap_or(""),
        data["server_refresh_token"].as_str().unwrap_or(""),
    );
    assert_ne!(new_refresh, s.refresh);
    let (status, _) = app.mutate("server.join", json!({}), Some(new_access)).await;
    assert_eq!(status, StatusCode::OK, "the new access token works");
    let (status, body) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": s.refresh }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a rotated token is spent");
    assert_eq!(ecto_code(&body), Some(1000));
    let (status, _) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": "garbage" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": s.token }),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an access token is not a refresh token"
    );
}

async fn change_password_revokes_old_tokens(app: TestApp) {
    let name = unique("pwd");
    let s = app.register(&name, "old-password").await;
    let (status, body) = app
        .mutate(
            "members.changePassword",
            json!({ "current_password": "wrong-one", "new_password": "new-password" }),
            Some(&s.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::UNAUTHORIZED, Some(1000)),
        "{body}"
    );
    let (status, body) = app
        .mutate(
            "members.changePassword",
            json!({ "current_password": "old-password", "new_password": "short" }),
            Some(&s.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .mutate(
            "members.changePassword",
            json!({ "current_password": "old-password", "new_password": "new-password" }),
            Some(&s.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_token = body["result"]["data"]["new_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();

    let (status, body) = app.mutate("server.leave", json!({}), Some(&s.token)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "old access token refused: {body}"
    );
    let (status, _) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": s.refresh }),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "old refresh token refused"
    );
    let (status, _) = app.mutate("server.join", json!({}), Some(&new_token)).await;
    assert_eq!(status, StatusCode::OK, "the new token works");
    let (status, _) = app.login(&name, "old-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.login(&name, "new-password").await;
    assert_eq!(status, StatusCode::OK);
}

async fn revoke_sessions_ends_every_token(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    // A plain member may not revoke someone else's sessions.
    let (status, body) = app
        .mutate(
            "members.revokeSessions",
            json!({ "user_id": owner.user_id }),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5001)),
        "{body}"
    );
    // Self-revocation.
    let (status, body) = app
        .mutate("members.revokeSessions", json!({}), Some(&member.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .mutate("server.join", json!({}), Some(&member.token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "old access token refused");
    let (status, _) = app
        .mutate(
            "server.refreshToken",
            json!({ "server_refresh_token": member.refresh }),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "old refresh token refused"
    );
    // The owner (MANAGE_SERVER) may revoke another member's sessions.
    let (_, body) = app
        .login(
            member.body["result"]["data"]["member"]["username"]
                .as_str()
                .unwrap_or(""),
            "password-2",
        )
        .await;
    let fresh = TestApp::session(body);
    let (status, body) = app
        .mutate(
            "members.revokeSessions",
            json!({ "user_id": fresh.user_id }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .mutate("server.join", json!({}), Some(&fresh.token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .mutate("server.join", json!({}), Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "the owner's own token is untouched");
}

both_profiles!(
    refresh_rotates_and_a_used_token_fails,
    change_password_revokes_old_tokens,
    revoke_sessions_ends_every_token
);
