//! A self-hosted server survives restarts: same server, same secret, same accounts.

use ecto_tests::{unique, Profile, TestApp};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_server_the_secret_and_the_accounts() {
    let app = TestApp::spawn(Profile::SelfHosted).await;
    let name = unique("keep");
    let before = app.register(&name, "password-1").await;
    let server_id = app.server_id().await;
    let secret_path = app.data_path().join("jwt_secret");
    let secret = std::fs::read_to_string(&secret_path).expect("secret kept in the data dir");
    assert_eq!(secret.trim().len(), 128, "64 random bytes, hex");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret_path).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    app.stop().await;

    let again = TestApp::start(
        Profile::SelfHosted,
        app.config.clone(),
        None,
        app.data_dir.clone(),
    )
    .await;
    assert_eq!(
        again.server_id().await,
        server_id,
        "no second server is created"
    );
    assert_eq!(
        std::fs::read_to_string(&secret_path).expect("secret"),
        secret,
        "the secret is not regenerated"
    );
    let (status, body) = again.login(&name, "password-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(TestApp::session(body).user_id, before.user_id);
    // Tokens issued before the restart are still valid (same secret).
    let (status, _) = again
        .mutate("server.join", serde_json::json!({}), Some(&before.token))
        .await;
    assert_eq!(status, StatusCode::OK);
}
