//! The shared file hub (`hubFiles.*`): folders, shared files, item overrides (the chain),
//! channel files, the quota; events and audit entries.

use ecto_core::permissions::bits;
use ecto_tests::{both_profiles, ecto_code, next_event, sql_time, unique, Call, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Inserts a shared file row (the upload route is tested separately); returns its id.
async fn shared_file(
    app: &TestApp,
    folder: Option<&str>,
    uploader: &Session,
    name: &str,
    size: i64,
) -> String {
    let server = app.server_id().await;
    let id = uuid::Uuid::now_v7();
    let folder_sql = folder.map_or("NULL".to_owned(), |f| format!("'{f}'"));
    app.sql(&format!(
        "INSERT INTO shared_files (id, server_id, folder_id, filename, url, storage_key, \
         content_type, size_bytes, uploaded_by, created_at) VALUES ('{id}', '{server}', \
         {folder_sql}, '{name}', '/files/{server}/shared/x/{id}', '{server}/shared/x/{id}', \
         'text/plain', {size}, '{u}', '{t}')",
        u = uploader.user_id,
        t = sql_time(0)
    ))
    .await;
    id.to_string()
}

/// An unlinked upload of `uploader` in `channel` (for `messages.send`); returns its id.
async fn upload(
    app: &TestApp,
    channel: &Value,
    uploader: &Session,
    name: &str,
    size: i64,
) -> String {
    let server = app.server_id().await;
    let id = uuid::Uuid::now_v7();
    let channel = channel.as_str().unwrap_or_default();
    app.sql(&format!(
        "INSERT INTO attachments (id, server_id, message_id, channel_id, uploader_id, filename, \
         url, storage_key, content_type, size_bytes, created_at) VALUES ('{id}', '{server}', \
         NULL, '{channel}', '{u}', '{name}', '/files/{id}/{name}', '{server}/{channel}/{id}', \
         'image/png', {size}, '{t}')",
        u = uploader.user_id,
        t = sql_time(0)
    ))
    .await;
    id.to_string()
}

async fn set_everyone(app: &TestApp, owner: &Session, permissions: u64) {
    app.ok(
        "roles.update",
        json!({ "role_id": TestApp::everyone_role(owner), "permissions": permissions }),
        owner,
    )
    .await;
}

async fn audit_actions(app: &TestApp, owner: &Session) -> Vec<String> {
    app.get("auditlog.list", json!({}), owner).await["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            f["name"]
                .as_str()
                .or(f["filename"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

async fn server_rows(app: &TestApp, table: &str) -> i64 {
    let server = app.server_id().await;
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE server_id = '{server}'"
    ))
    .await
}

const BOUNDARY: &str = "ectoHubBoundary41c9";

/// `POST /upload/shared` with an optional `folder_id` field before a text file of `size` bytes;
/// status and JSON body.
async fn upload_shared(
    app: &TestApp,
    token: Option<&str>,
    folder: Option<&str>,
    filename: &str,
    size: usize,
) -> (StatusCode, Value) {
    let mut body = Vec::new();
    if let Some(f) = folder {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"folder_id\"\r\n\r\n{f}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(std::iter::repeat_n(b'x', size));
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut rb = app
        .request(reqwest::Method::POST, "/upload/shared")
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let (status, _, body) = TestApp::send(rb).await;
    (status, body)
}

async fn folders_are_created_listed_renamed_and_deleted(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({})).await;

    let docs = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Docs", "parent_id": null }),
            &owner,
        )
        .await;
    assert_eq!(docs["name"], "Docs");
    assert_eq!(docs["parent_id"], Value::Null);
    assert_eq!(docs["created_by"], owner.user_id.as_str());
    assert_eq!(docs["file_count"], 0);
    assert_eq!(docs["contributors"], json!([]));
    assert!(
        docs.get("has_overrides").is_none(),
        "only present when true"
    );
    let event = ws.expect("shared_folder.create").await;
    assert_eq!(event["data"]["id"], docs["id"]);

    let sub = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Sub", "parent_id": docs["id"] }),
            &owner,
        )
        .await;
    app.ok(
        "hubFiles.createFolder",
        json!({ "name": "Archive", "parent_id": null }),
        &owner,
    )
    .await;
    let root = app
        .get("hubFiles.listFolders", json!({ "parent_id": null }), &owner)
        .await;
    assert_eq!(names(&root), ["Archive", "Docs"], "ordered by name");
    let limited = app
        .get(
            "hubFiles.listFolders",
            json!({ "parent_id": null, "limit": 1 }),
            &owner,
        )
        .await;
    assert_eq!(names(&limited), ["Archive"]);
    let children = app
        .get(
            "hubFiles.listFolders",
            json!({ "parent_id": docs["id"] }),
            &owner,
        )
        .await;
    assert_eq!(names(&children), ["Sub"]);

    let docs_id = docs["id"].as_str().unwrap_or_default().to_owned();
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
    let in_docs = shared_file(&app, Some(&docs_id), &owner, "a.txt", 100).await;
    shared_file(&app, Some(&docs_id), &member, "b.txt", 50).await;
    shared_file(&app, Some(&sub_id), &member, "c.txt", 7).await;
    shared_file(&app, None, &owner, "root.txt", 1000).await;
    let root = app
        .get("hubFiles.listFolders", json!({ "parent_id": null }), &owner)
        .await;
    let listed = &root[1];
    assert_eq!(listed["file_count"], 2, "{listed}");
    assert_eq!(listed["total_size_bytes"], 150);
    let contributors: Vec<&str> = listed["contributors"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x["user_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        contributors,
        [owner.user_id.as_str(), member.user_id.as_str()]
    );
    assert!(listed["contributors"][0]["username"].is_string());

    let quota = app
        .get("hubFiles.getStorageQuota", json!(null), &owner)
        .await;
    assert_eq!(quota, json!({ "used_bytes": 1157, "max_bytes": 104857600 }));
    app.ok(
        "serverConfig.update",
        json!({ "max_shared_storage_bytes": 5000 }),
        &owner,
    )
    .await;
    let quota = app
        .get("hubFiles.getStorageQuota", json!(null), &owner)
        .await;
    assert_eq!(quota["max_bytes"], 5000);

    let renamed = app
        .ok(
            "hubFiles.renameFolder",
            json!({ "folder_id": docs_id, "name": "Papers" }),
            &owner,
        )
        .await;
    assert_eq!(renamed, json!({ "success": true }));
    let event = ws.expect("shared_folder.update").await;
    assert_eq!(
        event["data"],
        json!({ "id": docs_id, "name": "Papers", "parent_id": null })
    );
    let root = app
        .get("hubFiles.listFolders", json!({ "parent_id": null }), &owner)
        .await;
    assert_eq!(names(&root), ["Archive", "Papers"]);

    // Overrides on the tree go with it.
    let everyone = TestApp::everyone_role(&owner);
    for (kind, id) in [("folder", &sub_id), ("file", &in_docs)] {
        app.ok("hubFiles.updateItemOverrides",
            json!({ "item_type": kind, "item_id": id, "permission_overrides": [{ "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::BROWSE_FILES }] }),
            &owner,
        )
        .await;
    }
    assert_eq!(
        server_rows(&app, "shared_item_permission_overrides").await,
        2
    );
    let deleted = app
        .ok(
            "hubFiles.deleteFolder",
            json!({ "folder_id": docs_id }),
            &owner,
        )
        .await;
    assert_eq!(deleted, json!({ "success": true }));
    let event = ws.expect("shared_folder.delete").await;
    assert_eq!(event["data"], json!({ "id": docs_id }));
    assert_eq!(
        server_rows(&app, "shared_folders").await,
        1,
        "Archive stays"
    );
    assert_eq!(
        server_rows(&app, "shared_files").await,
        1,
        "the root file stays"
    );
    assert_eq!(
        server_rows(&app, "shared_item_permission_overrides").await,
        0
    );
    let (status, code) = app
        .outcome(
            Call::Mutation,
            "hubFiles.renameFolder",
            json!({ "folder_id": sub_id, "name": "gone" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, Some(2000)));

    let actions = audit_actions(&app, &owner).await;
    for action in [
        "shared_folder.update",
        "shared_folder.delete",
        "shared_item.permissions_update",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

async fn folder_names_are_checked(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    for name in [
        json!(""),
        json!("   "),
        json!("a/b"),
        json!("a\\b"),
        json!("new\nline"),
        json!(".."),
        json!("x".repeat(256)),
        json!(5),
    ] {
        let (status, body) = app
            .mutate(
                "hubFiles.createFolder",
                json!({ "name": name, "parent_id": null }),
                Some(&owner.token),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("name"), "{message}");
    }
    let (status, body) = app
        .mutate(
            "hubFiles.createFolder",
            json!({ "name": "ok", "parent_id": uuid::Uuid::now_v7() }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(2000))
    );
    let (status, _) = app
        .query(
            "hubFiles.listFolders",
            Some(json!({ "parent_id": null, "limit": 0 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(server_rows(&app, "shared_folders").await, 0);
}

async fn shared_files_are_paged_and_deleted_by_their_uploader_or_a_manager(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let uploader = app.register(&unique("up"), "password-2").await;
    let other = app.register(&unique("oth"), "password-3").await;
    set_everyone(&app, &owner, bits::READ_MESSAGES | bits::BROWSE_FILES).await;
    let first = shared_file(&app, None, &uploader, "one.txt", 10).await;
    let second = shared_file(&app, None, &uploader, "two.txt", 20).await;
    let third = shared_file(&app, None, &owner, "three.txt", 30).await;

    let page = app
        .get(
            "hubFiles.listSharedFiles",
            json!({ "folder_id": null, "limit": 2 }),
            &other,
        )
        .await;
    assert_eq!(
        names(&page["files"]),
        ["three.txt", "two.txt"],
        "newest first"
    );
    assert_eq!(page["has_more"], true);
    assert_eq!(page["files"][0]["id"], third.as_str());
    assert_eq!(page["files"][0]["uploaded_by"], owner.user_id.as_str());
    assert!(page["files"][0]["uploaded_by_name"].is_string());
    assert_eq!(page["files"][0]["folder_id"], Value::Null);
    assert_eq!(page["files"][0]["size_bytes"], 30);
    let rest = app
        .get(
            "hubFiles.listSharedFiles",
            json!({ "folder_id": null, "limit": 2, "cursor": second }),
            &other,
        )
        .await;
    assert_eq!(names(&rest["files"]), ["one.txt"]);
    assert_eq!(rest["has_more"], false);

    let mut events = app.events().await;
    let (status, code) = app
        .outcome(
            Call::Mutation,
            "hubFiles.deleteSharedFile",
            json!({ "file_id": first }),
            Some(&other.token),
        )
        .await;
    assert_eq!(
        (status, code),
        (StatusCode::FORBIDDEN, Some(5001)),
        "not theirs, no MANAGE_FILES"
    );
    app.ok(
        "hubFiles.deleteSharedFile",
        json!({ "file_id": first }),
        &uploader,
    )
    .await;
    let event = next_event(&mut events, "shared_file.delete").await;
    assert_eq!(event.data, json!({ "id": first, "folder_id": null }));
    assert_eq!(event.scope, ecto_core::ports::Scope::Server);
    app.ok(
        "hubFiles.deleteSharedFile",
        json!({ "file_id": third }),
        &owner,
    )
    .await;
    let (status, code) = app
        .outcome(
            Call::Mutation,
            "hubFiles.deleteSharedFile",
            json!({ "file_id": first }),
            Some(&owner.token),
        )
        .await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, Some(2000)));
    assert_eq!(server_rows(&app, "shared_files").await, 1);
    let quota = app
        .get("hubFiles.getStorageQuota", json!(null), &other)
        .await;
    assert_eq!(quota["used_bytes"], 20);
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "shared_file.delete"));
}

async fn hub_procedures_need_their_permissions(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let folder = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Team", "parent_id": null }),
            &owner,
        )
        .await;
    let item = json!({ "item_type": "folder", "item_id": folder["id"] });
    // @everyone has no hub bit by default.
    for (call, proc_, input) in [
        (
            Call::Query,
            "hubFiles.listFolders",
            json!({ "parent_id": null }),
        ),
        (
            Call::Query,
            "hubFiles.listSharedFiles",
            json!({ "folder_id": null }),
        ),
        (Call::Query, "hubFiles.listChannelFiles", json!({})),
        (Call::Query, "hubFiles.channelFileStats", json!(null)),
        (Call::Query, "hubFiles.getStorageQuota", json!(null)),
        (Call::Query, "hubFiles.getItemOverrides", item.clone()),
        (
            Call::Mutation,
            "hubFiles.updateItemOverrides",
            json!({ "item_type": "folder", "item_id": folder["id"], "permission_overrides": [] }),
        ),
        (
            Call::Mutation,
            "hubFiles.createFolder",
            json!({ "name": "x", "parent_id": null }),
        ),
        (
            Call::Mutation,
            "hubFiles.deleteChannelFile",
            json!({ "attachment_id": uuid::Uuid::now_v7() }),
        ),
        (
            Call::Mutation,
            "hubFiles.deleteFolder",
            json!({ "folder_id": folder["id"] }),
        ),
        (
            Call::Mutation,
            "hubFiles.renameFolder",
            json!({ "folder_id": folder["id"], "name": "mine" }),
        ),
    ] {
        let (status, code) = app.outcome(call, proc_, input, Some(&member.token)).await;
        assert_eq!(
            (status, code),
            (StatusCode::FORBIDDEN, Some(5001)),
            "{proc_}"
        );
    }

    // Uploaders may create, rename and delete their own folders, not others'.
    set_everyone(
        &app,
        &owner,
        bits::READ_MESSAGES | bits::BROWSE_FILES | bits::UPLOAD_SHARED_FILES,
    )
    .await;
    let other = app.register(&unique("oth"), "password-3").await;
    let own = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Mine", "parent_id": null }),
            &member,
        )
        .await;
    app.ok(
        "hubFiles.renameFolder",
        json!({ "folder_id": own["id"], "name": "Still mine" }),
        &member,
    )
    .await;
    for (proc_, input) in [
        (
            "hubFiles.renameFolder",
            json!({ "folder_id": own["id"], "name": "Taken" }),
        ),
        ("hubFiles.deleteFolder", json!({ "folder_id": own["id"] })),
        (
            "hubFiles.deleteFolder",
            json!({ "folder_id": folder["id"] }),
        ),
    ] {
        let (status, code) = app
            .outcome(Call::Mutation, proc_, input, Some(&other.token))
            .await;
        assert_eq!(
            (status, code),
            (StatusCode::FORBIDDEN, Some(5001)),
            "{proc_}"
        );
    }
    // A manager may rename anyone's folder; the creator may delete their own.
    let manager = app.register(&unique("mgr"), "password-4").await;
    app.grant_role(&manager, bits::MANAGE_FILES, 1).await;
    app.ok(
        "hubFiles.renameFolder",
        json!({ "folder_id": own["id"], "name": "Renamed" }),
        &manager,
    )
    .await;
    app.ok(
        "hubFiles.deleteFolder",
        json!({ "folder_id": own["id"] }),
        &member,
    )
    .await;
    app.ok(
        "hubFiles.deleteFolder",
        json!({ "folder_id": folder["id"] }),
        &manager,
    )
    .await;
    assert_eq!(server_rows(&app, "shared_folders").await, 0);
}

/// Root folder names, subfolders of `folder`, file names in `folder`, and the raw root list,
/// as `s` sees them.
async fn what_sees(
    app: &TestApp,
    s: &Session,
    folder: &str,
) -> (Vec<String>, Vec<String>, Vec<String>, Value) {
    let root = app
        .get("hubFiles.listFolders", json!({ "parent_id": null }), s)
        .await;
    let inside = app
        .get("hubFiles.listFolders", json!({ "parent_id": folder }), s)
        .await;
    let files = app
        .get(
            "hubFiles.listSharedFiles",
            json!({ "folder_id": folder }),
            s,
        )
        .await;
    (names(&root), names(&inside), names(&files["files"]), root)
}

async fn a_folder_override_hides_the_folder_and_its_files_from_one_role(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let guest = app.register(&unique("gst"), "password-2").await;
    let regular = app.register(&unique("reg"), "password-3").await;
    set_everyone(&app, &owner, bits::READ_MESSAGES | bits::BROWSE_FILES).await;
    let guests = app.grant_role(&guest, 0, 1).await;
    let secret = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Secret", "parent_id": null }),
            &owner,
        )
        .await;
    app.ok(
        "hubFiles.createFolder",
        json!({ "name": "Public", "parent_id": null }),
        &owner,
    )
    .await;
    let inner = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Inner", "parent_id": secret["id"] }),
            &owner,
        )
        .await;
    let secret_id = secret["id"].as_str().unwrap_or_default().to_owned();
    shared_file(&app, Some(&secret_id), &owner, "plan.txt", 5).await;
    let shown = shared_file(&app, Some(&secret_id), &owner, "menu.txt", 5).await;

    let mut events = app.events().await;
    app.ok("hubFiles.updateItemOverrides",
        json!({ "item_type": "folder", "item_id": secret_id, "permission_overrides": [
            { "target_type": "role", "target_id": guests, "allow": 0, "deny": bits::BROWSE_FILES },
            { "target_type": "role", "target_id": TestApp::everyone_role(&owner), "allow": 0, "deny": 0 },
        ] }),
        &owner,
    )
    .await;
    let event = next_event(&mut events, "shared_item.permissions_update").await;
    assert_eq!(
        event.data,
        json!({ "item_type": "folder", "item_id": secret_id })
    );
    let stored = app
        .get(
            "hubFiles.getItemOverrides",
            json!({ "item_type": "folder", "item_id": secret_id }),
            &owner,
        )
        .await;
    assert_eq!(
        stored.as_array().map(Vec::len),
        Some(1),
        "all-zero entries are dropped: {stored}"
    );
    assert_eq!(stored[0]["target_id"], guests.as_str());
    assert_eq!(stored[0]["target_type"], "role");
    assert_eq!(stored[0]["item_type"], "folder");
    assert_eq!(stored[0]["deny"], bits::BROWSE_FILES);

    // One file of the folder is re-allowed for the role by its own override.
    app.ok(
        "hubFiles.updateItemOverrides",
        json!({ "item_type": "file", "item_id": shown, "permission_overrides": [
            { "target_type": "role", "target_id": guests, "allow": bits::BROWSE_FILES, "deny": 0 },
        ] }),
        &owner,
    )
    .await;

    let (root, inside, files, _) = what_sees(&app, &guest, &secret_id).await;
    assert_eq!(root, ["Public"]);
    assert!(
        inside.is_empty(),
        "the subfolder inherits the deny: {inside:?}"
    );
    assert_eq!(files, ["menu.txt"], "only the re-allowed file");
    let (root, inside, files, raw) = what_sees(&app, &regular, &secret_id).await;
    assert_eq!(root, ["Public", "Secret"]);
    assert_eq!(inside, ["Inner"]);
    assert_eq!(files, ["menu.txt", "plan.txt"]);
    assert_eq!(raw[1]["has_overrides"], true);
    assert!(raw[0].get("has_overrides").is_none());
    let (_, _, files, _) = what_sees(&app, &owner, &secret_id).await;
    assert_eq!(files.len(), 2, "the owner is not bound by overrides");
    // The chain also decides uploads into the folder.
    let (status, code) = app
        .outcome(
            Call::Mutation,
            "hubFiles.createFolder",
            json!({ "name": "x", "parent_id": inner["id"] }),
            Some(&guest.token),
        )
        .await;
    assert_eq!((status, code), (StatusCode::FORBIDDEN, Some(5001)));

    // Targets must be roles of this server; entries must be valid.
    for (overrides, status, code) in [
        (
            json!([{ "target_type": "role", "target_id": uuid::Uuid::now_v7(), "allow": 0, "deny": 1 }]),
            StatusCode::NOT_FOUND,
            Some(5000),
        ),
        (
            json!([{ "target_type": "member", "target_id": guest.user_id, "allow": 0, "deny": 1 }]),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            json!([{ "target_type": "role", "target_id": guests, "allow": 1u64 << 40, "deny": 0 }]),
            StatusCode::BAD_REQUEST,
            None,
        ),
    ] {
        let (got, body) = app
            .mutate(
                "hubFiles.updateItemOverrides",
                json!({ "item_type": "folder", "item_id": secret_id, "permission_overrides": overrides }),
                Some(&owner.token),
            )
            .await;
        assert_eq!((got, ecto_code(&body)), (status, code), "{body}");
    }
    let (status, _) = app
        .query(
            "hubFiles.getItemOverrides",
            Some(json!({ "item_type": "page", "item_id": secret_id })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Replacing with nothing clears them; the guest sees the folder again.
    app.ok(
        "hubFiles.updateItemOverrides",
        json!({ "item_type": "folder", "item_id": secret_id, "permission_overrides": [] }),
        &owner,
    )
    .await;
    let (root, _, _, _) = what_sees(&app, &guest, &secret_id).await;
    assert_eq!(root, ["Public", "Secret"]);
}

async fn channel_files_are_listed_counted_and_deleted(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    let general = app.channel(&owner, "general", "text").await;
    let hidden = app.ok("channels.create",
        json!({ "name": "staff", "type": "text", "permission_overrides": [{ "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES }] }),
        &owner,
    )
    .await;
    let with_text = upload(&app, &general["id"], &owner, "a.png", 100).await;
    let text_message = app.ok("messages.send",
        json!({ "channel_id": general["id"], "content": "look", "attachment_ids": [with_text] }),
        &owner,
    )
    .await;
    let only_1 = upload(&app, &general["id"], &owner, "b.png", 20).await;
    let only_2 = upload(&app, &general["id"], &owner, "c.png", 3).await;
    let bare = app
        .ok(
            "messages.send",
            json!({ "channel_id": general["id"], "attachment_ids": [only_1, only_2] }),
            &owner,
        )
        .await;
    let secret = upload(&app, &hidden["id"], &owner, "s.png", 9).await;
    app.ok(
        "messages.send",
        json!({ "channel_id": hidden["id"], "content": "staff only", "attachment_ids": [secret] }),
        &owner,
    )
    .await;

    set_everyone(&app, &owner, bits::READ_MESSAGES | bits::BROWSE_FILES).await;
    let page = app
        .get("hubFiles.listChannelFiles", json!({}), &member)
        .await;
    let files = page["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        names(&page["files"]),
        ["c.png", "b.png", "a.png"],
        "newest first, the unreadable channel left out"
    );
    assert_eq!(page["has_more"], false);
    assert_eq!(files[2]["message_id"], text_message["id"]);
    assert_eq!(files[2]["channel_id"], general["id"]);
    assert_eq!(files[2]["channel_name"], "general");
    assert_eq!(files[2]["category_name"], Value::Null);
    assert_eq!(files[2]["uploaded_by"], owner.user_id.as_str());
    assert!(files[2]["uploaded_by_name"].is_string());
    assert_eq!(files[2]["size_bytes"], 100);
    // Listed URLs are signed: without a token, the bare path is refused (401) and the signed
    // URL gets through to storage (404 here: the fixture rows have no stored bytes).
    let listed = files[2]["url"].as_str().unwrap_or_default();
    let (unsigned, _) = listed.split_once('?').unwrap_or((listed, ""));
    assert!(listed.contains("&sig="), "{listed}");
    let (status, _, _) = TestApp::send(app.request(reqwest::Method::GET, unsigned)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{unsigned}");
    let (status, _, _) = TestApp::send(app.request(reqwest::Method::GET, listed)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{listed}");
    let first = app
        .get("hubFiles.listChannelFiles", json!({ "limit": 2 }), &member)
        .await;
    assert_eq!(first["has_more"], true);
    let one = app
        .get(
            "hubFiles.listChannelFiles",
            json!({ "channel_id": hidden["id"] }),
            &owner,
        )
        .await;
    assert_eq!(names(&one["files"]), ["s.png"]);
    let (status, code) = app
        .outcome(
            Call::Query,
            "hubFiles.listChannelFiles",
            json!({ "channel_id": uuid::Uuid::now_v7() }),
            Some(&member.token),
        )
        .await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, Some(3000)));

    let stats = app
        .get("hubFiles.channelFileStats", json!(null), &member)
        .await;
    let stats = stats.as_array().cloned().unwrap_or_default();
    assert_eq!(stats.len(), 1, "only readable text channels: {stats:?}");
    assert_eq!(stats[0]["channel_id"], general["id"]);
    assert_eq!(stats[0]["total_size_bytes"], 123);
    assert!(stats[0]["last_upload_at"].is_string());
    assert_eq!(stats[0]["access_role_ids"], json!([everyone]));
    let owner_stats = app
        .get("hubFiles.channelFileStats", json!(null), &owner)
        .await;
    let staff = owner_stats
        .as_array()
        .and_then(|s| s.iter().find(|x| x["channel_id"] == hidden["id"]).cloned())
        .unwrap_or_default();
    assert_eq!(
        staff["access_role_ids"],
        json!([]),
        "@everyone is denied there"
    );

    // Deleting: the bare message keeps one file, then goes; the text message stays.
    let manager = app.register(&unique("mgr"), "password-3").await;
    app.grant_role(&manager, bits::MANAGE_FILES, 1).await;
    let (status, code) = app
        .outcome(
            Call::Mutation,
            "hubFiles.deleteChannelFile",
            json!({ "attachment_id": only_1 }),
            Some(&member.token),
        )
        .await;
    assert_eq!((status, code), (StatusCode::FORBIDDEN, Some(5001)));
    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({ "active_channel_id": general["id"] }))
        .await;
    app.ok(
        "hubFiles.deleteChannelFile",
        json!({ "attachment_id": only_1 }),
        &manager,
    )
    .await;
    let update = ws.expect("message.update").await;
    assert_eq!(update["data"]["id"], bare["id"]);
    assert_eq!(update["data"]["attachments"][0]["id"], only_2.as_str());
    assert_eq!(
        update["data"]["attachments"].as_array().map(Vec::len),
        Some(1)
    );
    let kept = update["data"]["attachments"][0]["url"]
        .as_str()
        .unwrap_or_default();
    assert!(kept.contains("&sig="), "the update's URL is signed: {kept}");
    assert_eq!(
        ws.expect("channel_file.delete").await["data"],
        json!({ "id": only_1 })
    );
    app.ok(
        "hubFiles.deleteChannelFile",
        json!({ "attachment_id": only_2 }),
        &manager,
    )
    .await;
    let gone = ws.expect("message.delete").await;
    assert_eq!(
        gone["data"],
        json!({ "id": bare["id"], "channel_id": general["id"] })
    );
    app.ok(
        "hubFiles.deleteChannelFile",
        json!({ "attachment_id": with_text }),
        &manager,
    )
    .await;
    let update = ws.expect("message.update").await;
    assert_eq!(update["data"]["id"], text_message["id"]);
    assert_eq!(update["data"]["attachments"], json!([]));
    let (status, code) = app
        .outcome(
            Call::Mutation,
            "hubFiles.deleteChannelFile",
            json!({ "attachment_id": with_text }),
            Some(&manager.token),
        )
        .await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, Some(2000)));

    let listed = app
        .get(
            "messages.list",
            json!({ "channel_id": general["id"] }),
            &owner,
        )
        .await;
    let ids: Vec<&Value> = listed["messages"]
        .as_array()
        .map(|m| m.iter().map(|x| &x["id"]).collect())
        .unwrap_or_default();
    assert!(ids.contains(&&text_message["id"]));
    assert!(
        !ids.contains(&&bare["id"]),
        "the emptied message is deleted"
    );
    let page = app
        .get("hubFiles.listChannelFiles", json!({}), &member)
        .await;
    assert_eq!(page["files"], json!([]));
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "channel_file.delete"));
}

async fn shared_uploads_check_the_chain_and_the_quota(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let server = app.server_id().await;
    let mut ws = app.ws().await;
    ws.identify(&member.token, json!({})).await;

    // At the root: the owner may, a member without UPLOAD_SHARED_FILES may not (403, not 500).
    let (status, file) = upload_shared(&app, Some(&owner.token), None, "notes.txt", 300).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["filename"], "notes.txt");
    assert_eq!(file["folder_id"], Value::Null);
    assert_eq!(file["size_bytes"], 300);
    assert_eq!(file["content_type"], "text/plain");
    assert_eq!(file["uploaded_by"], owner.user_id.as_str());
    assert!(file["uploaded_by_name"].is_string());
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let url = file["url"].as_str().unwrap_or_default().to_owned();
    let path = format!("/files/{server}/shared/root/{id}");
    assert!(
        url.starts_with(&format!("{path}?exp=")),
        "the key is built from ids only, the URL signed: {url}"
    );
    // Served with the signature, or to a member who may browse it; not to others.
    let resp = app
        .request(reqwest::Method::GET, &url)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.expect("body");
    assert_eq!(bytes.len(), 300);
    assert!(bytes.iter().all(|b| *b == b'x'));
    let fetch = |token: Option<String>| {
        let mut rb = app.request(reqwest::Method::GET, &path);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb
    };
    let (status, _, _) = TestApp::send(fetch(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = TestApp::send(fetch(Some(member.token.clone()))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no BROWSE_FILES");
    let (status, _, _) = TestApp::send(fetch(Some(owner.token.clone()))).await;
    assert_eq!(status, StatusCode::OK);
    let event = ws.expect("shared_file.create").await;
    assert_eq!(event["data"]["id"], id.as_str());
    let (status, body) = upload_shared(&app, Some(&member.token), None, "x.txt", 10).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = upload_shared(&app, None, None, "x.txt", 10).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Into a folder: the chain decides; an allow on the folder lets the member upload there.
    let folder = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "Drop box", "parent_id": null }),
            &owner,
        )
        .await;
    let folder_id = folder["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = upload_shared(&app, Some(&member.token), Some(&folder_id), "x.txt", 10).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.ok("hubFiles.updateItemOverrides",
        json!({ "item_type": "folder", "item_id": folder_id, "permission_overrides": [
            { "target_type": "role", "target_id": TestApp::everyone_role(&owner), "allow": bits::UPLOAD_SHARED_FILES | bits::BROWSE_FILES, "deny": 0 },
        ] }),
        &owner,
    )
    .await;
    let (status, dropped) = upload_shared(
        &app,
        Some(&member.token),
        Some(&folder_id),
        "report.txt",
        200,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dropped}");
    assert_eq!(dropped["folder_id"], folder_id.as_str());
    let listed = app
        .get(
            "hubFiles.listSharedFiles",
            json!({ "folder_id": folder_id }),
            &owner,
        )
        .await;
    assert_eq!(names(&listed["files"]), ["report.txt"]);
    assert_eq!(listed["files"][0]["uploaded_by"], member.user_id.as_str());
    let (status, body) = upload_shared(
        &app,
        Some(&owner.token),
        Some(&uuid::Uuid::now_v7().to_string()),
        "x.txt",
        10,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("Folder not found"))
    );
    let (status, _) =
        upload_shared(&app, Some(&owner.token), Some("not-a-uuid"), "x.txt", 10).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The quota: 300 + 200 used of 1000.
    app.ok(
        "serverConfig.update",
        json!({ "max_shared_storage_bytes": 1000 }),
        &owner,
    )
    .await;
    let (status, body) = upload_shared(&app, Some(&owner.token), None, "big.txt", 501).await;
    assert_eq!(
        (status, &body["error"]),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!("Shared storage quota exceeded")
        )
    );
    let (status, _) = upload_shared(&app, Some(&owner.token), None, "fits.txt", 500).await;
    assert_eq!(status, StatusCode::OK);
    let quota = app
        .get("hubFiles.getStorageQuota", json!(null), &owner)
        .await;
    assert_eq!(quota, json!({ "used_bytes": 1000, "max_bytes": 1000 }));
    let (status, body) = upload_shared(&app, Some(&owner.token), None, "one.txt", 1).await;
    assert_eq!(
        (status, &body["error"]),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!("Shared storage quota exceeded")
        )
    );
    assert_eq!(server_rows(&app, "shared_files").await, 3);

    // Deleting the folder removes its stored file too; deleting a file frees its bytes.
    let key = format!(
        "{server}/shared/{folder_id}/{}",
        dropped["id"].as_str().unwrap_or_default()
    );
    let blob = ecto_core::ports::BlobKey::new(&key).expect("key");
    assert_eq!(
        app.services.blobs.size(&blob).await.expect("size"),
        Some(200)
    );
    app.ok(
        "hubFiles.deleteFolder",
        json!({ "folder_id": folder_id }),
        &owner,
    )
    .await;
    assert_eq!(app.services.blobs.size(&blob).await.expect("size"), None);
    let root_key =
        ecto_core::ports::BlobKey::new(&format!("{server}/shared/root/{id}")).expect("key");
    app.ok(
        "hubFiles.deleteSharedFile",
        json!({ "file_id": id }),
        &owner,
    )
    .await;
    assert_eq!(
        app.services.blobs.size(&root_key).await.expect("size"),
        None
    );
    let quota = app
        .get("hubFiles.getStorageQuota", json!(null), &owner)
        .await;
    assert_eq!(quota["used_bytes"], 500);
}

both_profiles!(
    folders_are_created_listed_renamed_and_deleted,
    folder_names_are_checked,
    shared_files_are_paged_and_deleted_by_their_uploader_or_a_manager,
    hub_procedures_need_their_permissions,
    a_folder_override_hides_the_folder_and_its_files_from_one_role,
    channel_files_are_listed_counted_and_deleted,
    shared_uploads_check_the_chain_and_the_quota,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_ids_of_another_server_are_not_found() {
    let mut app = TestApp::spawn(ecto_tests::Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let a_folder = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "A", "parent_id": null }),
            &owner_a,
        )
        .await;
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address);
    let owner_b = app.register(&unique("b"), "password-1").await;
    let b_folder = app
        .ok(
            "hubFiles.createFolder",
            json!({ "name": "B", "parent_id": null }),
            &owner_b,
        )
        .await;
    let b_file = shared_file(&app, None, &owner_b, "b.txt", 1).await;
    let b_channel = app.channel(&owner_b, "b", "text").await;
    let b_attachment = upload(&app, &b_channel["id"], &owner_b, "b.png", 1).await;
    app.ok(
        "messages.send",
        json!({ "channel_id": b_channel["id"], "attachment_ids": [b_attachment] }),
        &owner_b,
    )
    .await;
    let b_role = TestApp::everyone_role(&owner_b);

    app.server_address = Some(a_address);
    for (call, proc_, input) in [
        (
            Call::Query,
            "hubFiles.listFolders",
            json!({ "parent_id": b_folder["id"] }),
        ),
        (
            Call::Query,
            "hubFiles.listSharedFiles",
            json!({ "folder_id": b_folder["id"] }),
        ),
        (
            Call::Mutation,
            "hubFiles.createFolder",
            json!({ "name": "x", "parent_id": b_folder["id"] }),
        ),
        (
            Call::Mutation,
            "hubFiles.renameFolder",
            json!({ "folder_id": b_folder["id"], "name": "stolen" }),
        ),
        (
            Call::Mutation,
            "hubFiles.deleteFolder",
            json!({ "folder_id": b_folder["id"] }),
        ),
        (
            Call::Mutation,
            "hubFiles.deleteSharedFile",
            json!({ "file_id": b_file }),
        ),
        (
            Call::Query,
            "hubFiles.getItemOverrides",
            json!({ "item_type": "file", "item_id": b_file }),
        ),
        (
            Call::Mutation,
            "hubFiles.updateItemOverrides",
            json!({ "item_type": "folder", "item_id": b_folder["id"], "permission_overrides": [] }),
        ),
        (
            Call::Mutation,
            "hubFiles.deleteChannelFile",
            json!({ "attachment_id": b_attachment }),
        ),
    ] {
        let (status, code) = app.outcome(call, proc_, input, Some(&owner_a.token)).await;
        assert_eq!(
            (status, code),
            (StatusCode::NOT_FOUND, Some(2000)),
            "{proc_}"
        );
    }
    let (status, code) = app.outcome(Call::Mutation, "hubFiles.updateItemOverrides", json!({ "item_type": "folder", "item_id": a_folder["id"], "permission_overrides": [{ "target_type": "role", "target_id": b_role, "allow": 0, "deny": 1 }] }), Some(&owner_a.token)).await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, Some(5000)));
    let files = app
        .get("hubFiles.listChannelFiles", json!({}), &owner_a)
        .await;
    assert_eq!(files["files"], json!([]));
    let quota = app
        .get("hubFiles.getStorageQuota", json!(null), &owner_a)
        .await;
    assert_eq!(quota["used_bytes"], 0, "B's files count for B only");
    // B's rows are untouched.
    let b_rows = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM shared_folders WHERE id = '{}'",
            b_folder["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(b_rows, 1);
}
