//! `ecto-server export` / `import` (`ecto_server::cli::transfer`), called as the binary calls
//! them: a self-hosted community on SQLite and local disk moved onto PostgreSQL and the S3
//! emulator, and from there back onto SQLite and local disk, answering the same at each step;
//! and the refusals that keep an import from mixing with data or taking a damaged archive.

use ecto_core::ports::Limit;
use ecto_server::cli::transfer::{self, Summary};
use ecto_server::AppConfig;
use ecto_tests::{base_pairs, fresh_bucket, fresh_database, unique, Profile, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A self-hosted configuration in `dir`, with `extra` settings (a database, a bucket).
fn config_in(dir: &Path, extra: Vec<(String, String)>) -> AppConfig {
    let mut pairs = base_pairs(&dir.to_string_lossy());
    pairs.extend(extra);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    AppConfig::from_pairs(&refs).expect("config")
}

/// What the community looks like through the API: server, channels, messages (reactions,
/// pins, edits, replies, attachments), members, roles, invites, the audit log and a page.
/// Signed links carry their expiry, so their query is left out.
async fn answers(app: &TestApp, owner: &Session, channel: &str, page: &str) -> Value {
    let (_, info) = app.query("server.info", None, None).await;
    let mut all = json!({
        "server": info["result"]["data"],
        "channels": app.get("channels.list", json!({}), owner).await,
        "messages": app.get("messages.list", json!({ "channel_id": channel, "limit": 100 }), owner).await,
        "members": app.get("members.list", json!({}), owner).await,
        "roles": app.get("roles.list", json!({}), owner).await,
        "invites": app.get("invites.list", json!({}), owner).await,
        "audit": app.get("auditlog.list", json!({ "limit": 100 }), owner).await,
        "page": app.get("pages.getContent", json!({ "channel_id": page }), owner).await,
    });
    unsigned(&mut all);
    all
}

fn unsigned(v: &mut Value) {
    match v {
        Value::String(s) if s.starts_with("/files/") || s.contains("/files/") => {
            if let Some(i) = s.find('?') {
                s.truncate(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned),
        Value::Object(map) => map.values_mut().for_each(unsigned),
        _ => {}
    }
}

/// `search.search` for `word` until it finds something (SQLite indexes new rows off the
/// request path); the ids found.
async fn search(app: &TestApp, s: &Session, word: &str) -> Vec<String> {
    for _ in 0..100 {
        let found = app.get("search.search", json!({ "query": word }), s).await;
        let ids: Vec<String> = found["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect();
        if !ids.is_empty() {
            return ids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Vec::new()
}

/// The bytes behind a link the API gave.
async fn fetch(app: &TestApp, link: &str) -> Vec<u8> {
    let resp = app
        .http
        .get(format!("{}{link}", app.base))
        .send()
        .await
        .expect("file");
    assert_eq!(resp.status(), StatusCode::OK, "{link}");
    resp.bytes().await.expect("bytes").to_vec()
}

struct Community {
    owner: Session,
    owner_name: String,
    member: Session,
    channel: String,
    page: String,
    attachment: Vec<u8>,
}

/// A community with a bit of everything in it.
async fn community(app: &TestApp) -> Community {
    let owner_name = unique("own");
    let owner = app.register(&owner_name, "password-1").await;
    let channel = app.channel(&owner, "general", "text").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let page = app.channel(&owner, "handbook", "page").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.ok(
        "pages.updateContent",
        json!({ "channel_id": page, "content": "# Handbook\n\nBe kind.", "version": 1 }),
        &owner,
    )
    .await;
    let invite = app
        .ok("invites.create", json!({ "max_uses": 5 }), &owner)
        .await;
    let code = invite["invite"]["code"]
        .as_str()
        .or_else(|| invite["code"].as_str())
        .expect("invite code")
        .to_owned();
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": unique("mem"), "password": "password-2", "action": "register", "invite_code": code }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let member = TestApp::session(body);
    app.ok(
        "roles.create",
        json!({ "name": "helpers", "color": "#3366ff", "permissions": 0 }),
        &owner,
    )
    .await;
    // More rows than one page of an export read, older than the messages looked at below.
    for i in 0..2_100 {
        app.ok(
            "messages.send",
            json!({ "channel_id": channel, "content": format!("filler {i}") }),
            &owner,
        )
        .await;
    }
    let bytes = b"moved with the community\n".repeat(300);
    let up = crate::files::upload(app, &owner, &channel, "notes.txt", "text/plain", &bytes).await;
    let first = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel, "content": "the kestrel has landed", "attachment_ids": [up["id"]] }),
            &owner,
        )
        .await;
    let reply = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel, "content": "welcome aboard", "reply_to": first["id"] }),
            &member,
        )
        .await;
    app.ok(
        "messages.react",
        json!({ "message_id": first["id"], "emoji": "👍", "action": "add" }),
        &member,
    )
    .await;
    app.ok(
        "messages.pin",
        json!({ "message_id": first["id"], "pinned": true }),
        &owner,
    )
    .await;
    app.ok(
        "messages.update",
        json!({ "message_id": reply["id"], "content": "welcome aboard, friend" }),
        &member,
    )
    .await;
    Community {
        owner,
        owner_name,
        member,
        channel,
        page,
        attachment: bytes,
    }
}

/// Every progress line an export or import reported.
fn recorder() -> (Arc<Mutex<Vec<String>>>, impl FnMut(&str) + Send) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    (lines, move |l: &str| {
        sink.lock().expect("lock").push(l.to_owned())
    })
}

/// Exports `from`'s configuration and imports it into `to`'s; both summaries agree.
async fn carry(from: &AppConfig, to: &AppConfig, archive: &Path) -> Summary {
    let (out_lines, mut out) = recorder();
    let exported = transfer::export(from, archive, &mut out)
        .await
        .expect("export");
    let (in_lines, mut into) = recorder();
    let imported = transfer::import(to, archive, &mut into)
        .await
        .expect("import");
    assert_eq!(exported, imported, "the import moved what the export wrote");
    let said = |lines: &Arc<Mutex<Vec<String>>>, what: &str| {
        assert!(
            lines.lock().expect("lock").iter().any(|l| l.contains(what)),
            "progress names {what}: {:?}",
            lines.lock().expect("lock")
        )
    };
    said(&out_lines, "rows of");
    said(&out_lines, "files copied");
    said(&in_lines, "checked");
    imported
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_moves_to_postgres_and_s3_and_back_answering_the_same() {
    // The owner sends the filler quickly: no per-user rate limit.
    let app = TestApp::spawn_with(Profile::SelfHosted, |c| {
        c.rate_limits.user = Limit::new(0, std::time::Duration::from_secs(10));
    })
    .await;
    let c = community(&app).await;
    let before = answers(&app, &c.owner, &c.channel, &c.page).await;
    let found_before = search(&app, &c.owner, "kestrel").await;
    assert_eq!(found_before.len(), 1);
    let link = before["messages"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find_map(|m| m["attachments"][0]["url"].as_str())
        .expect("an attachment")
        .to_owned();
    let signed_link = app
        .get(
            "messages.list",
            json!({ "channel_id": c.channel, "limit": 100 }),
            &c.owner,
        )
        .await["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find_map(|m| m["attachments"][0]["url"].as_str().map(str::to_owned))
        .expect("a signed link");
    assert_eq!(fetch(&app, &signed_link).await, c.attachment);
    let messages = app.count("SELECT COUNT(*) AS n FROM messages").await;
    assert!(messages > 2_100);
    app.stop().await;

    // SQLite + local disk → PostgreSQL + S3.
    let work = tempfile::tempdir().expect("dir");
    let pg_dir = Arc::new(tempfile::tempdir().expect("dir"));
    let mut extra = vec![("database_url".to_owned(), fresh_database().await)];
    extra.extend(fresh_bucket().await);
    let pg = config_in(pg_dir.path(), extra);
    let summary = carry(&app.config, &pg, &work.path().join("ecto-export.tar.gz")).await;
    assert_eq!(summary.rows["messages"], messages, "{summary:?}");
    assert_eq!(summary.rows["servers"], 1);
    assert_eq!(summary.files, 1);
    assert_eq!(summary.bytes, c.attachment.len() as u64);
    let on_pg = TestApp::start(Profile::SelfHosted, pg.clone(), None, Some(pg_dir)).await;
    assert_eq!(
        answers(&on_pg, &c.owner, &c.channel, &c.page).await,
        before,
        "PostgreSQL and S3 answer as SQLite and the disk did (the old tokens still work)"
    );
    assert_eq!(search(&on_pg, &c.owner, "kestrel").await, found_before);
    assert_eq!(fetch(&on_pg, &signed_link).await, c.attachment);
    assert_eq!(link.split('?').next(), signed_link.split('?').next());
    // It is a working server, not a copy: the member writes, and signs in with their password.
    on_pg
        .ok(
            "messages.send",
            json!({ "channel_id": c.channel, "content": "hello from postgres" }),
            &c.member,
        )
        .await;
    let (status, _) = on_pg.login(&c.owner_name, "password-1").await;
    assert_eq!(status, StatusCode::OK);
    let after_write = answers(&on_pg, &c.owner, &c.channel, &c.page).await;
    on_pg.stop().await;

    // And back: PostgreSQL + S3 → SQLite + local disk.
    let back_dir = Arc::new(tempfile::tempdir().expect("dir"));
    let back = config_in(back_dir.path(), Vec::new());
    carry(&pg, &back, &work.path().join("ecto-export-2.tar")).await;
    let on_sqlite = TestApp::start(Profile::SelfHosted, back, None, Some(back_dir)).await;
    assert_eq!(
        answers(&on_sqlite, &c.owner, &c.channel, &c.page).await,
        after_write,
        "back on SQLite, the community answers as it did on PostgreSQL"
    );
    assert_eq!(search(&on_sqlite, &c.owner, "kestrel").await, found_before);
    assert_eq!(fetch(&on_sqlite, &signed_link).await, c.attachment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_data_it_would_mix_with_and_a_damaged_archive() {
    let app = TestApp::spawn(Profile::SelfHosted).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "general", "text").await;
    crate::files::upload(
        &app,
        &owner,
        channel["id"].as_str().expect("id"),
        "a.txt",
        "text/plain",
        b"some bytes",
    )
    .await;
    let work = tempfile::tempdir().expect("dir");
    let archive = work.path().join("e.tar");
    transfer::export(&app.config, &archive, &mut |_| {})
        .await
        .expect("export");

    // Into the database it came from: refused, nothing written.
    let err = transfer::import(&app.config, &archive, &mut |_| {})
        .await
        .expect_err("not empty");
    assert!(err.to_string().contains("already holds data"), "{err}");

    // Into an empty database over a non-empty upload directory: refused, nothing written.
    let dir = tempfile::tempdir().expect("dir");
    let target = config_in(dir.path(), Vec::new());
    std::fs::create_dir_all(target.upload_dir.join("x")).expect("dir");
    std::fs::write(target.upload_dir.join("x/old"), b"old").expect("file");
    let err = transfer::import(&target, &archive, &mut |_| {})
        .await
        .expect_err("store not empty");
    assert!(err.to_string().contains("upload store"), "{err}");
    std::fs::remove_dir_all(target.upload_dir.join("x")).expect("rm");

    // A cut archive: refused, and the database and the upload store stay empty.
    let whole = std::fs::read(&archive).expect("read");
    let cut = work.path().join("cut.tar");
    std::fs::write(&cut, &whole[..whole.len() - 2_048]).expect("write");
    let err = transfer::import(&target, &cut, &mut |_| {})
        .await
        .expect_err("cut");
    assert!(err.to_string().contains("archive"), "{err}");
    let db = ecto_server::open_database(&target).expect("db");
    assert_eq!(
        db.count_sql("SELECT COUNT(*) AS n FROM servers")
            .await
            .expect("count"),
        0,
        "nothing of a refused import stays"
    );
    let (store, _) = ecto_server::open_blob_store(&target).expect("store");
    assert!(store.list(None).await.expect("list").is_empty());
    assert!(
        !target.data_dir.join("jwt_secret").exists(),
        "the archive's secret is taken back out"
    );

    // The whole archive then goes in.
    let summary = transfer::import(&target, &archive, &mut |_| {})
        .await
        .expect("import");
    assert_eq!(summary.files, 1);
    assert_eq!(summary.rows["servers"], 1);
}
