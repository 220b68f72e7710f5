//! The operator's commands (`ecto_server::cli`), called as the binary calls them: backup and
//! restore of a self-hosted server while it takes messages, the `admin` set in both profiles,
//! `check-config`, and unknown keys in a configuration file.

use ecto_core::ports::Limit;
use ecto_server::cli::{admin, backup, check, health};
use ecto_server::AppConfig;
use ecto_tests::{data, per_profile, unique, Profile, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A self-hosted server with the per-user rate limit off (the sender below is fast).
async fn busy_server() -> TestApp {
    TestApp::spawn_with(Profile::SelfHosted, |c| {
        c.rate_limits.user = Limit::new(0, Duration::from_secs(10));
    })
    .await
}

/// Every message id of `channel`, newest first, through `messages.list` pages.
async fn message_ids(app: &TestApp, s: &Session, channel: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut input = json!({ "channel_id": channel, "limit": 100 });
        if let Some(b) = &before {
            input["before"] = json!(b);
        }
        let page = app.get("messages.list", input, s).await;
        let messages = page["messages"].as_array().expect("messages").clone();
        for m in &messages {
            ids.push(m["id"].as_str().expect("id").to_owned());
        }
        match (page["has_more"].as_bool(), messages.last()) {
            (Some(true), Some(last)) => before = Some(last["id"].as_str().expect("id").into()),
            _ => break,
        }
    }
    ids
}

/// The configuration of `config` moved to the empty directory `dir`.
fn moved_to(config: &AppConfig, dir: &std::path::Path) -> AppConfig {
    let mut c = config.clone();
    c.data_dir = dir.to_path_buf();
    c.upload_dir = dir.join("uploads");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_messages_are_sent_restores_every_acknowledged_message() {
    let app = busy_server().await;
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "general", "text").await;
    let channel_id = channel["id"].as_str().expect("id").to_owned();
    let bytes = b"kept across a restore\n".repeat(50);
    let up =
        crate::files::upload(&app, &owner, &channel_id, "notes.txt", "text/plain", &bytes).await;
    let link = up["url"].as_str().expect("url").to_owned();

    // A sender that keeps sending until told to stop; each acknowledged id with its time.
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (http, base, token) = (app.http.clone(), app.base.clone(), owner.token.clone());
        let (acked, stop, channel_id) = (acked.clone(), stop.clone(), channel_id.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 2_000 {
                n += 1;
                let resp = http
                    .post(format!("{base}/trpc/messages.send"))
                    .bearer_auth(&token)
                    .json(&json!({ "channel_id": channel_id, "content": format!("m{n}") }))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), StatusCode::OK);
                let body: Value = resp.json().await.expect("json");
                let id = data(&body)["id"].as_str().expect("id").to_owned();
                acked.lock().expect("lock").push((Instant::now(), id));
            }
        })
    };
    while acked.lock().expect("lock").len() < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let archive_dir = tempfile::tempdir().expect("dir");
    let archive = archive_dir.path().join("ecto-backup.tar.gz");
    let started = Instant::now();
    let manifest = backup::backup(&app.config, &archive).await.expect("backup");
    assert!(
        !sender.is_finished(),
        "the messages kept coming during the backup"
    );
    let during = acked.lock().expect("lock").len();
    // Let a few more arrive after the backup, then stop.
    while acked.lock().expect("lock").len() < during + 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    sender.await.expect("sender");
    let before_backup: Vec<String> = acked
        .lock()
        .expect("lock")
        .iter()
        .filter(|(at, _)| *at < started)
        .map(|(_, id)| id.clone())
        .collect();
    assert!(before_backup.len() >= 30);
    assert!(manifest.uploads_included);
    assert_eq!(manifest.upload_files, 1, "the one upload: {manifest:?}");
    assert_eq!(manifest.upload_bytes, bytes.len() as u64);
    assert!(manifest.tables["messages"] >= before_backup.len() as i64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&archive).expect("archive").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the archive holds the secret");

    // Restored into an empty directory, a new server has every acknowledged message.
    let restored_dir = Arc::new(tempfile::tempdir().expect("dir"));
    let config = moved_to(&app.config, restored_dir.path());
    let back = backup::restore(&config, &archive).await.expect("restore");
    assert_eq!(back, manifest);
    app.stop().await;
    let again = TestApp::start(Profile::SelfHosted, config, None, Some(restored_dir)).await;
    let ids = message_ids(&again, &owner, &channel_id).await;
    assert_eq!(
        ids.len() as i64,
        manifest.tables["messages"],
        "the restored channel has the snapshot's messages"
    );
    for id in &before_backup {
        assert!(
            ids.contains(id),
            "message {id} acknowledged before the backup is missing"
        );
    }
    // The secret came back: the old token works and the upload's signed link serves its bytes.
    let resp = again
        .http
        .get(format!("{}{link}", again.base))
        .send()
        .await
        .expect("file");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.expect("bytes").to_vec(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_non_empty_directory_and_a_damaged_archive() {
    let app = TestApp::spawn(Profile::SelfHosted).await;
    app.register(&unique("own"), "password-1").await;
    let dir = tempfile::tempdir().expect("dir");
    let archive = dir.path().join("b.tar");
    backup::backup(&app.config, &archive).await.expect("backup");

    // Into the running server's own directory: refused, nothing touched.
    let err = backup::restore(&app.config, &archive)
        .await
        .expect_err("not empty");
    assert!(err.to_string().contains("is not empty"), "{err}");
    assert!(err
        .to_string()
        .contains(&app.config.data_dir.display().to_string()));

    // An archive cut short: refused, and the empty directory stays empty.
    let full = std::fs::read(&archive).expect("archive");
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &full[..full.len() / 2]).expect("write");
    let target = tempfile::tempdir().expect("dir");
    let config = moved_to(&app.config, target.path());
    let err = backup::restore(&config, &cut).await.expect_err("damaged");
    assert!(
        err.to_string().contains("archive"),
        "the message is about the archive: {err}"
    );
    assert_eq!(
        std::fs::read_dir(target.path()).expect("dir").count(),
        0,
        "a failed restore leaves nothing behind"
    );
    // The complete one restores there.
    backup::restore(&config, &archive).await.expect("restore");
    assert!(target.path().join("ecto.db").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_on_postgres_say_what_to_use_instead() {
    let config = AppConfig::from_pairs(&[("database_url", "postgres://ecto:pw@127.0.0.1/ecto")])
        .expect("valid");
    let dir = tempfile::tempdir().expect("dir");
    let archive = dir.path().join("b.tar");
    for err in [
        backup::backup(&config, &archive).await.expect_err("pg"),
        backup::restore(&config, &archive).await.expect_err("pg"),
    ] {
        let text = err.to_string();
        assert!(
            text.contains("pg_dump") && text.contains("pg_restore") && text.contains("S3"),
            "{text}"
        );
    }
    assert!(!archive.exists());
}

/// The server's id (self-hosted) or address (managed) as `--server` takes it.
fn server_arg(app: &TestApp) -> Option<String> {
    app.server_address.clone()
}

/// Waits (up to 5 s) until `token` gets `status` on `server.join`.
async fn until_token_gets(app: &TestApp, token: &str, status: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (got, body) = app.mutate("server.join", json!({}), Some(token)).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "token still gets {got} ({body}), expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list_commands_show_the_servers_and_their_members(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let owner_name = unique("own");
    let owner = app.register(&owner_name, "password-1").await;
    let member_name = unique("mem");
    let member = app.register(&member_name, "password-2").await;
    let svc = admin::open(&app.config).await.expect("open");
    let db = ecto_server::open_database(&app.config).expect("db");
    let server_id = app.server_id().await;
    let servers = admin::list_servers(&svc, &db).await.expect("servers");
    let row = servers
        .iter()
        .find(|s| s.id.to_string() == server_id)
        .expect("this server is listed");
    assert_eq!(row.members, 2);
    assert_eq!(
        row.owner.map(|o| o.to_string()),
        Some(owner.user_id.clone())
    );

    let server = admin::server(&svc, server_arg(&app).as_deref())
        .await
        .expect("server");
    assert_eq!(server.id.to_string(), server_id);
    // By id too.
    let by_id = admin::server(&svc, Some(&server_id)).await.expect("by id");
    assert_eq!(by_id.id, server.id);
    let members = admin::list_members(&svc, &server).await.expect("members");
    let mut names: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.username.clone(), m.user_id.to_string()))
        .collect();
    names.sort();
    let mut expected = vec![
        (owner_name, owner.user_id.clone()),
        (member_name.clone(), member.user_id.clone()),
    ];
    expected.sort();
    assert_eq!(names, expected);
    // A username or a user id names a member.
    assert_eq!(
        admin::member(&svc, &server, &member_name.to_uppercase())
            .await
            .expect("by name")
            .to_string(),
        member.user_id
    );
    assert!(admin::member(&svc, &server, "nobody-here").await.is_err());
    if profile == Profile::Managed {
        let err = admin::server(&svc, None)
            .await
            .expect_err("managed names one");
        assert!(err.to_string().contains("--server"), "{err}");
    }
}

async fn reset_password_replaces_the_password_and_ends_the_sessions(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let name = unique("own");
    let old = app.register(&name, "password-1").await;
    let mut ws = app.ws().await;
    ws.identify(&old.token, json!({})).await;
    let svc = admin::open(&app.config).await.expect("open");
    let server = admin::server(&svc, server_arg(&app).as_deref())
        .await
        .expect("server");
    let new_password = admin::random_password();
    assert_ne!(new_password, admin::random_password());
    admin::reset_password(&svc, &server, &name, &new_password)
        .await
        .expect("reset");
    assert!(
        admin::reset_password(&svc, &server, "no-such-user", &new_password)
            .await
            .is_err()
    );
    assert_eq!(ws.closed().await, (4006, "Session expired".to_owned()));
    until_token_gets(&app, &old.token, StatusCode::UNAUTHORIZED).await;
    let (status, _) = app.login(&name, "password-1").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old password is refused"
    );
    let (status, body) = app.login(&name, &new_password).await;
    assert_eq!(status, StatusCode::OK, "the new password works: {body}");
}

/// The command runs in a process of its own (services of their own, as `ecto-server admin`
/// opens them) while the server runs: the server hears it (self-hosted through the database,
/// managed through Redis) and closes the member's open socket without a restart.
async fn revoke_sessions_makes_the_members_tokens_refused(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    app.register(&unique("own"), "password-1").await;
    let name = unique("mem");
    let member = app.register(&name, "password-2").await;
    let mut ws = app.ws().await;
    ws.identify(&member.token, json!({})).await;
    let svc = admin::open(&app.config).await.expect("open");
    let server = admin::server(&svc, server_arg(&app).as_deref())
        .await
        .expect("server");
    let user_id = admin::member(&svc, &server, &name).await.expect("member");
    admin::revoke_sessions(&svc, &server, user_id)
        .await
        .expect("revoke");
    assert_eq!(ws.closed().await, (4006, "Session expired".to_owned()));
    until_token_gets(&app, &member.token, StatusCode::UNAUTHORIZED).await;
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
        "the refresh token is gone too"
    );
    // The member can sign in again.
    let (status, _) = app.login(&name, "password-2").await;
    assert_eq!(status, StatusCode::OK);
}

async fn transfer_ownership_gives_the_server_to_a_member(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let heir_name = unique("heir");
    let heir = app.register(&heir_name, "password-2").await;
    let svc = admin::open(&app.config).await.expect("open");
    let server = admin::server(&svc, server_arg(&app).as_deref())
        .await
        .expect("server");
    let heir_id = admin::member(&svc, &server, &heir_name)
        .await
        .expect("heir");
    let updated = admin::transfer_ownership(&svc, &server, heir_id)
        .await
        .expect("transfer");
    assert_eq!(
        updated.admin_user_id.map(|u| u.to_string()),
        Some(heir.user_id.clone())
    );
    let audit = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE server_id = '{}' AND action = \
             'server.transfer_ownership' AND actor_id = '{}'",
            server.id, heir.user_id
        ))
        .await;
    assert_eq!(audit, 1, "one audit entry, by the new owner");
    // The heir does what only the owner may: hand the server back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = app
            .mutate(
                "server.transferOwnership",
                json!({ "new_owner_id": owner.user_id, "confirmation": server.name }),
                Some(&heir.token),
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

per_profile!(
    list_commands_show_the_servers_and_their_members,
    reset_password_replaces_the_password_and_ends_the_sessions,
    revoke_sessions_makes_the_members_tokens_refused,
    transfer_ownership_gives_the_server_to_a_member,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_server_is_refused_in_the_self_hosted_profile() {
    let app = TestApp::spawn(Profile::SelfHosted).await;
    let err = admin::refuse_create_in_self_hosted(&app.config).expect_err("refused");
    assert!(err.to_string().contains("managed"), "{err}");
    let mut managed = app.config.clone();
    managed.hosting_mode = ecto_core::HostingMode::Managed;
    assert!(admin::refuse_create_in_self_hosted(&managed).is_ok());
}

#[test]
fn check_config_reports_every_invalid_setting_at_once() {
    let loaded = AppConfig::from_pairs(&[
        ("port", "70000"),
        ("log_format", "xml"),
        ("redis_url", "http://r"),
        ("ws_outbound_queue", "lots"),
        ("sqlite_synchronous", "sometimes"),
    ]);
    let (text, code) = check::report(&loaded);
    assert_eq!(code, 2);
    for problem in [
        "PORT: 70000 is out of range (a port is 0 to 65535)",
        "LOG_FORMAT",
        "REDIS_URL",
        "WS_OUTBOUND_QUEUE",
        "SQLITE_SYNCHRONOUS: 'sometimes' is neither 'normal' nor 'full'",
    ] {
        assert!(text.contains(problem), "{problem} missing from: {text}");
    }
}

#[test]
fn check_config_shows_the_configuration_with_its_secrets_hidden() {
    let dir = tempfile::tempdir().expect("dir");
    let secrets = [
        "jwt-secret-that-is-long-enough-0123456789",
        "central-sync-key-value",
        "managed-api-key-value",
        "s3-access-key-value",
        "s3-secret-key-value",
        "database-password-value",
    ];
    let database_url = format!("postgres://ecto:{}@db.example:5432/ecto", secrets[5]);
    let data_dir = dir.path().to_string_lossy().into_owned();
    let loaded = AppConfig::from_pairs(&[
        ("data_dir", data_dir.as_str()),
        ("jwt_secret", secrets[0]),
        ("central_url", "https://central.example"),
        ("central_sync_key", secrets[1]),
        ("managed_api_key", secrets[2]),
        ("s3_endpoint", "http://s3.example"),
        ("s3_bucket", "b"),
        ("s3_region", "eu-1"),
        ("s3_access_key", secrets[3]),
        ("s3_secret_key", secrets[4]),
        ("database_url", database_url.as_str()),
        ("port", "4000"),
    ]);
    let (text, code) = check::report(&loaded);
    assert_eq!(code, 0, "{text}");
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} shown in: {text}");
    }
    assert!(text.contains("<hidden>"), "{text}");
    assert!(text.contains("db.example:5432/ecto"), "{text}");
    assert!(text.contains("4000"), "{text}");
}

#[test]
fn check_config_names_a_data_directory_it_cannot_write() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let data_dir = file.to_string_lossy().into_owned();
    let loaded = AppConfig::from_pairs(&[("data_dir", data_dir.as_str())]);
    let (text, code) = check::report(&loaded);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!(
            "the data directory {} is not writable",
            file.display()
        )),
        "{text}"
    );
}

#[test]
fn unknown_keys_in_a_configuration_file_are_errors() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ecto.toml");
    std::fs::write(
        &path,
        "prot = 4000\nlog_format = \"json\"\nmax_upload_size = 5\n",
    )
    .expect("write");
    let err = AppConfig::from_file(&path).expect_err("unknown keys");
    let text = err.to_string();
    for key in ["'prot'", "'max_upload_size'"] {
        assert!(text.contains(key), "{key} missing from: {text}");
    }
    assert!(!text.contains("'log_format'"), "{text}");
    // Every key of the shipped defaults and examples is known.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["default.toml", "self-hosted.toml"] {
        let path = root.join("config").join(file);
        AppConfig::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let path = root.join("config/managed.toml");
    if let Err(e) = AppConfig::from_file(&path) {
        assert!(!e.to_string().contains("is not a setting"), "{e}");
    }
}

/// `config` with the port `app` listens on (tests bind port 0).
fn at_port_of(app: &TestApp) -> AppConfig {
    let mut config = app.config.clone();
    config.port = app
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_asks_the_server_of_the_configuration() {
    let app = TestApp::spawn(Profile::SelfHosted).await;
    let config = at_port_of(&app);
    let alive = tokio::task::spawn_blocking({
        let config = config.clone();
        move || (health::probe(&config, false), health::probe(&config, true))
    })
    .await
    .expect("probe");
    assert!(alive.0.expect("/health").contains("ok"));
    let ready = alive.1.expect("/ready");
    assert!(ready.contains("database"), "{ready}");

    // Anything but 200 is a failure that says what came back.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut unready = config.clone();
    unready.port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut socket, _) = listener.accept().expect("accept");
        // Read the whole request before answering: closing with unread bytes resets.
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = socket.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 32\r\n\r\n{\"checks\":{\"database\":\"down\"}}\r\n",
        );
    });
    let err = tokio::task::spawn_blocking(move || health::probe(&unready, true))
        .await
        .expect("probe")
        .expect_err("503");
    assert!(err.to_string().contains("503"), "{err}");
    assert!(err.to_string().contains("down"), "{err}");

    app.stop().await;
    let err = tokio::task::spawn_blocking(move || health::probe(&config, false))
        .await
        .expect("probe")
        .expect_err("stopped");
    assert!(err.to_string().contains("no answer"), "{err}");
}
