//! `pages.*` and `news.*`: versions and revisions, posts and comments, permissions, events.

use ecto_core::permissions::bits;
use ecto_tests::{both_profiles, unique, Call, Profile, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn read(app: &TestApp, proc_: &str, input: Value, s: &Session) -> Value {
    let (status, body) = app.query(proc_, Some(input), Some(&s.token)).await;
    assert_eq!(status, StatusCode::OK, "{proc_}: {body}");
    body["result"]["data"].clone()
}

async fn channel(app: &TestApp, owner: &Session, name: &str, kind: &str) -> Value {
    app.ok(
        "channels.create",
        json!({ "name": name, "type": kind }),
        owner,
    )
    .await
}

async fn pages_keep_versions_and_revisions(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let page = channel(&app, &owner, "handbook", "page").await;
    let id = page["id"].clone();

    let mut ws = app.ws().await;
    ws.identify(&member.token, json!({})).await;
    ws.send("subscribe", json!({ "channel_id": id })).await;
    ws.expect("subscribed").await;

    let first = read(
        &app,
        "pages.getContent",
        json!({ "channel_id": id }),
        &member,
    )
    .await;
    assert_eq!(first["version"], 1);
    assert_eq!(first["content"], "");
    assert_eq!(first["banner_url"], Value::Null);

    // A member without EDIT_PAGES cannot edit.
    app.refused(
        &member,
        Call::Mutation,
        "pages.updateContent",
        json!({ "channel_id": id, "content": "mine", "version": 1 }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;

    let v2 = app
        .ok(
            "pages.updateContent",
            json!({ "channel_id": id, "content": "# One", "version": 1 }),
            &owner,
        )
        .await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["content"], "# One");
    assert_eq!(v2["edited_by"], owner.user_id.as_str());
    let event = ws.expect("page.update").await;
    assert_eq!(event["data"]["version"], 2);
    assert_eq!(event["data"]["channel_id"], id);

    // A stale version is a conflict, and nothing is written.
    app.refused(
        &owner,
        Call::Mutation,
        "pages.updateContent",
        json!({ "channel_id": id, "content": "stale", "version": 1 }),
        (StatusCode::CONFLICT, 3003),
    )
    .await;
    assert_eq!(
        read(
            &app,
            "pages.getContent",
            json!({ "channel_id": id }),
            &member
        )
        .await["content"],
        "# One"
    );

    // A member given EDIT_PAGES edits too.
    app.grant_role(&member, bits::EDIT_PAGES, 1).await;
    app.ok(
        "pages.updateContent",
        json!({ "channel_id": id, "content": "# Two", "version": 2 }),
        &member,
    )
    .await;
    app.ok(
        "pages.updateContent",
        json!({ "channel_id": id, "content": "# Three", "version": 3 }),
        &owner,
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM page_revisions WHERE channel_id = '{}'",
            id.as_str().unwrap_or("")
        ))
        .await,
        3
    );

    // History: newest first, paged by cursor.
    let h1 = read(
        &app,
        "pages.getHistory",
        json!({ "channel_id": id, "limit": 2 }),
        &owner,
    )
    .await;
    let revs = h1["revisions"].as_array().cloned().unwrap_or_default();
    assert_eq!(revs.len(), 2);
    assert_eq!(h1["has_more"], true);
    assert_eq!(revs[0]["version"], 3);
    assert_eq!(revs[0]["content"], "# Two");
    assert_eq!(
        revs[0]["edited_by"],
        owner.user_id.as_str(),
        "the editor who replaced it"
    );
    assert_eq!(revs[1]["version"], 2);
    assert_eq!(revs[1]["edited_by"], member.user_id.as_str());
    let h2 = read(
        &app,
        "pages.getHistory",
        json!({ "channel_id": id, "limit": 2, "cursor": revs[1]["id"] }),
        &owner,
    )
    .await;
    let rest = h2["revisions"].as_array().cloned().unwrap_or_default();
    assert_eq!(rest.len(), 1);
    assert_eq!(h2["has_more"], false);
    assert_eq!(rest[0]["version"], 1);
    assert_eq!(rest[0]["content"], "");

    // The two edits above were announced too.
    assert_eq!(ws.expect("page.update").await["data"]["version"], 3);
    assert_eq!(ws.expect("page.update").await["data"]["version"], 4);

    // Banner: same checks, version unchanged, event sent.
    let banner = app
        .ok(
            "pages.updateBanner",
            json!({ "channel_id": id, "banner_url": "https://cdn.example.test/b.png" }),
            &owner,
        )
        .await;
    assert_eq!(
        banner,
        json!({ "banner_url": "https://cdn.example.test/b.png" })
    );
    let event = ws.expect("page.update").await;
    assert_eq!(
        event["data"]["banner_url"],
        "https://cdn.example.test/b.png"
    );
    assert_eq!(event["data"]["version"], 4);
    let cleared = app
        .ok(
            "pages.updateBanner",
            json!({ "channel_id": id, "banner_url": null }),
            &owner,
        )
        .await;
    assert_eq!(cleared["banner_url"], Value::Null);
    let (status, body) = app
        .mutate(
            "pages.updateBanner",
            json!({ "channel_id": id, "banner_url": "javascript:alert(1)" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("banner_url"),
        "{body}"
    );
}

async fn pages_refuse_wrong_channels_and_non_readers(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    let text = channel(&app, &owner, "chat", "text").await;
    let hidden = app.ok("channels.create", json!({ "name": "secret", "type": "page", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let missing = uuid::Uuid::now_v7().to_string();

    app.refuses(
        &owner,
        vec![
            (
                Call::Query,
                "pages.getContent",
                json!({ "channel_id": missing }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Query,
                "pages.getContent",
                json!({ "channel_id": text["id"] }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Mutation,
                "pages.updateContent",
                json!({ "channel_id": missing, "content": "x", "version": 1 }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Mutation,
                "pages.updateContent",
                json!({ "channel_id": text["id"], "content": "x", "version": 1 }),
                StatusCode::BAD_REQUEST,
                3002,
            ),
            (
                Call::Mutation,
                "pages.updateBanner",
                json!({ "channel_id": text["id"], "banner_url": null }),
                StatusCode::BAD_REQUEST,
                3002,
            ),
            (
                Call::Query,
                "pages.getHistory",
                json!({ "channel_id": text["id"] }),
                StatusCode::BAD_REQUEST,
                3002,
            ),
        ],
    )
    .await;

    // A member who cannot read the page gets nothing.
    app.refuses(
        &member,
        vec![
            (
                Call::Query,
                "pages.getContent",
                json!({ "channel_id": hidden["id"] }),
                StatusCode::FORBIDDEN,
                5001,
            ),
            (
                Call::Query,
                "pages.getHistory",
                json!({ "channel_id": hidden["id"] }),
                StatusCode::FORBIDDEN,
                5001,
            ),
        ],
    )
    .await;
    // The owner reads it.
    assert_eq!(
        read(
            &app,
            "pages.getContent",
            json!({ "channel_id": hidden["id"] }),
            &owner
        )
        .await["version"],
        1
    );

    // Bounds.
    let (status, body) = app
        .mutate(
            "pages.updateContent",
            json!({ "channel_id": hidden["id"], "content": "x".repeat(100_001), "version": 1 }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .query(
            "pages.getHistory",
            Some(json!({ "channel_id": hidden["id"], "limit": 51 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn news_posts_and_comments(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let other = app.register(&unique("oth"), "password-3").await;
    let news = channel(&app, &owner, "announcements", "news").await;
    let text = channel(&app, &owner, "chat", "text").await;
    let nid = news["id"].clone();

    let mut ws = app.ws().await;
    ws.identify(&member.token, json!({})).await;
    ws.send("subscribe", json!({ "channel_id": nid })).await;
    ws.expect("subscribed").await;

    // Only MANAGE_NEWS posts; only news channels take posts.
    app.refused(
        &member,
        Call::Mutation,
        "news.createPost",
        json!({ "channel_id": nid, "title": "t", "content": "c" }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    app.refused(
        &owner,
        Call::Mutation,
        "news.createPost",
        json!({ "channel_id": text["id"], "title": "t", "content": "c" }),
        (StatusCode::BAD_REQUEST, 3006),
    )
    .await;
    // Discovery needs an ecto-central account (6100), then ecto-central synchronisation
    // (6101): refused, nothing written.
    let submit =
        json!({ "channel_id": nid, "title": "t", "content": "c", "submit_to_discovery": true });
    app.refused(
        &owner,
        Call::Mutation,
        "news.createPost",
        submit.clone(),
        (StatusCode::FORBIDDEN, 6100),
    )
    .await;
    if app.central.is_some() {
        let (token, _) = ecto_tests::FakeCentral::token_for("herald");
        let (status, body) = app.mutate("server.join", json!({}), Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let herald = TestApp::session(body);
        app.grant_role(&herald, bits::MANAGE_NEWS | bits::READ_MESSAGES, 1)
            .await;
        app.refused(
            &herald,
            Call::Mutation,
            "news.createPost",
            submit,
            (StatusCode::FORBIDDEN, 6101),
        )
        .await;
    }
    let (status, body) = app
        .mutate(
            "news.createPost",
            json!({ "channel_id": nid, "title": "", "content": "c" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("title"),
        "{body}"
    );
    let posts_sql = format!(
        "SELECT COUNT(*) AS n FROM news_posts WHERE channel_id = '{}'",
        nid.as_str().unwrap_or("")
    );
    assert_eq!(app.count(&posts_sql).await, 0);

    let first = app
        .ok(
            "news.createPost",
            json!({ "channel_id": nid, "title": "First", "subtitle": "sub", "content": "hello" }),
            &owner,
        )
        .await;
    assert_eq!(first["author"]["id"], owner.user_id.as_str());
    assert_eq!(first["comment_count"], 0);
    assert_eq!(first["submitted_to_discovery"], false);
    assert_eq!(first["discovery_validation_errors"], Value::Null);
    let event = ws.expect("news.post_create").await;
    assert_eq!(event["data"]["id"], first["id"]);
    let second = app
        .ok(
            "news.createPost",
            json!({ "channel_id": nid, "title": "Second", "content": "more" }),
            &owner,
        )
        .await;
    let third = app
        .ok(
            "news.createPost",
            json!({ "channel_id": nid, "title": "Third", "content": "most" }),
            &owner,
        )
        .await;

    // Newest first, paged by `before`.
    let page = read(
        &app,
        "news.listPosts",
        json!({ "channel_id": nid, "limit": 2 }),
        &member,
    )
    .await;
    let posts = page["posts"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        posts.iter().map(|p| p["id"].clone()).collect::<Vec<_>>(),
        vec![third["id"].clone(), second["id"].clone()]
    );
    assert_eq!(page["has_more"], true);
    let page = read(
        &app,
        "news.listPosts",
        json!({ "channel_id": nid, "limit": 2, "before": second["id"] }),
        &member,
    )
    .await;
    assert_eq!(page["posts"][0]["id"], first["id"]);
    assert_eq!(page["has_more"], false);
    assert_eq!(
        read(
            &app,
            "news.getPost",
            json!({ "post_id": first["id"] }),
            &member
        )
        .await["title"],
        "First"
    );

    // Update: fields kept unless given, null clears.
    app.refused(
        &member,
        Call::Mutation,
        "news.updatePost",
        json!({ "post_id": first["id"], "title": "x" }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    app.refused(
        &owner,
        Call::Mutation,
        "news.updatePost",
        json!({ "post_id": first["id"], "submit_to_discovery": true }),
        (StatusCode::FORBIDDEN, 6100),
    )
    .await;
    let updated = app
        .ok(
            "news.updatePost",
            json!({ "post_id": first["id"], "title": "First!", "subtitle": null }),
            &owner,
        )
        .await;
    assert_eq!(updated["title"], "First!");
    assert_eq!(updated["subtitle"], Value::Null);
    assert_eq!(updated["content"], "hello");
    assert_eq!(
        ws.expect("news.post_update").await["data"]["title"],
        "First!"
    );

    // Comments keep the count in step.
    let c1 = app
        .ok(
            "news.addComment",
            json!({ "post_id": first["id"], "content": "nice" }),
            &member,
        )
        .await;
    assert_eq!(c1["author"]["id"], member.user_id.as_str());
    assert_eq!(c1["edited_at"], Value::Null);
    assert_eq!(
        ws.expect("news.comment_create").await["data"]["id"],
        c1["id"]
    );
    let c2 = app
        .ok(
            "news.addComment",
            json!({ "post_id": first["id"], "content": "agreed" }),
            &other,
        )
        .await;
    assert_eq!(
        read(
            &app,
            "news.getPost",
            json!({ "post_id": first["id"] }),
            &member
        )
        .await["comment_count"],
        2
    );
    let comments = read(
        &app,
        "news.listComments",
        json!({ "post_id": first["id"], "limit": 1 }),
        &member,
    )
    .await;
    assert_eq!(comments["comments"][0]["id"], c1["id"]);
    assert_eq!(comments["has_more"], true);
    let comments = read(
        &app,
        "news.listComments",
        json!({ "post_id": first["id"], "after": c1["id"] }),
        &member,
    )
    .await;
    assert_eq!(comments["comments"][0]["id"], c2["id"]);
    assert_eq!(comments["has_more"], false);

    // Someone else's comment needs MANAGE_NEWS; the author may delete their own.
    app.refused(
        &member,
        Call::Mutation,
        "news.deleteComment",
        json!({ "comment_id": c2["id"] }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    app.ok(
        "news.deleteComment",
        json!({ "comment_id": c1["id"] }),
        &member,
    )
    .await;
    let deleted = ws.expect("news.comment_delete").await;
    assert_eq!(
        deleted["data"],
        json!({ "id": c1["id"], "post_id": first["id"] })
    );
    assert_eq!(
        read(
            &app,
            "news.getPost",
            json!({ "post_id": first["id"] }),
            &member
        )
        .await["comment_count"],
        1
    );
    app.refused(
        &member,
        Call::Mutation,
        "news.deleteComment",
        json!({ "comment_id": c1["id"] }),
        (StatusCode::NOT_FOUND, 4006),
    )
    .await;

    // Delete: MANAGE_NEWS; the comments go with the post.
    app.refused(
        &member,
        Call::Mutation,
        "news.deletePost",
        json!({ "post_id": first["id"] }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    app.ok("news.deletePost", json!({ "post_id": first["id"] }), &owner)
        .await;
    let deleted = ws.expect("news.post_delete").await;
    assert_eq!(
        deleted["data"],
        json!({ "id": first["id"], "channel_id": nid })
    );
    app.refuses(
        &member,
        vec![
            (
                Call::Query,
                "news.getPost",
                json!({ "post_id": first["id"] }),
                StatusCode::NOT_FOUND,
                4005,
            ),
            (
                Call::Mutation,
                "news.addComment",
                json!({ "post_id": first["id"], "content": "late" }),
                StatusCode::NOT_FOUND,
                4005,
            ),
        ],
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM news_comments WHERE post_id = '{}'",
            first["id"].as_str().unwrap_or("")
        ))
        .await,
        0
    );

    // A member given MANAGE_NEWS posts and removes others' comments.
    app.grant_role(&member, bits::MANAGE_NEWS, 1).await;
    app.ok(
        "news.createPost",
        json!({ "channel_id": nid, "title": "By member", "content": "x" }),
        &member,
    )
    .await;
    let c3 = app
        .ok(
            "news.addComment",
            json!({ "post_id": second["id"], "content": "hm" }),
            &other,
        )
        .await;
    app.ok(
        "news.deleteComment",
        json!({ "comment_id": c3["id"] }),
        &member,
    )
    .await;
}

async fn news_is_hidden_from_non_readers(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    let hidden = app.ok("channels.create", json!({ "name": "board", "type": "news", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let post = app
        .ok(
            "news.createPost",
            json!({ "channel_id": hidden["id"], "title": "Board", "content": "x" }),
            &owner,
        )
        .await;
    let comment = app
        .ok(
            "news.addComment",
            json!({ "post_id": post["id"], "content": "c" }),
            &owner,
        )
        .await;
    app.refuses(
        &member,
        vec![
            (
                Call::Query,
                "news.listPosts",
                json!({ "channel_id": hidden["id"] }),
                StatusCode::FORBIDDEN,
                5001,
            ),
            (
                Call::Query,
                "news.getPost",
                json!({ "post_id": post["id"] }),
                StatusCode::FORBIDDEN,
                5001,
            ),
            (
                Call::Query,
                "news.listComments",
                json!({ "post_id": post["id"] }),
                StatusCode::FORBIDDEN,
                5001,
            ),
            (
                Call::Mutation,
                "news.addComment",
                json!({ "post_id": post["id"], "content": "x" }),
                StatusCode::FORBIDDEN,
                5001,
            ),
            (
                Call::Mutation,
                "news.deleteComment",
                json!({ "comment_id": comment["id"] }),
                StatusCode::FORBIDDEN,
                5001,
            ),
        ],
    )
    .await;
    let missing = uuid::Uuid::now_v7().to_string();
    app.refuses(
        &member,
        vec![
            (
                Call::Query,
                "news.listPosts",
                json!({ "channel_id": missing }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Query,
                "news.getPost",
                json!({ "post_id": missing }),
                StatusCode::NOT_FOUND,
                4005,
            ),
            (
                Call::Mutation,
                "news.deleteComment",
                json!({ "comment_id": missing }),
                StatusCode::NOT_FOUND,
                4006,
            ),
        ],
    )
    .await;
}

both_profiles!(
    pages_keep_versions_and_revisions,
    pages_refuse_wrong_channels_and_non_readers,
    news_posts_and_comments,
    news_is_hidden_from_non_readers,
    page_banner_and_news_hero_uploads,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_news_of_another_server_are_not_found() {
    let mut app = TestApp::spawn(Profile::Managed).await;
    let a_address = app.server_address.clone().expect("address");
    let owner_a = app.register(&unique("a"), "password-1").await;
    let b_address = format!("{}.test.ecto", unique("b"));
    app.provision(&b_address, "B").await;
    app.server_address = Some(b_address);
    let owner_b = app.register(&unique("b"), "password-1").await;
    let page_b = channel(&app, &owner_b, "page", "page").await;
    let news_b = channel(&app, &owner_b, "news", "news").await;
    let post_b = app
        .ok(
            "news.createPost",
            json!({ "channel_id": news_b["id"], "title": "B", "content": "b" }),
            &owner_b,
        )
        .await;
    let comment_b = app
        .ok(
            "news.addComment",
            json!({ "post_id": post_b["id"], "content": "b" }),
            &owner_b,
        )
        .await;
    app.server_address = Some(a_address);
    let a = &owner_a;
    app.refuses(
        a,
        vec![
            (
                Call::Query,
                "pages.getContent",
                json!({ "channel_id": page_b["id"] }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Mutation,
                "pages.updateContent",
                json!({ "channel_id": page_b["id"], "content": "x", "version": 1 }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Query,
                "pages.getHistory",
                json!({ "channel_id": page_b["id"] }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Query,
                "news.listPosts",
                json!({ "channel_id": news_b["id"] }),
                StatusCode::NOT_FOUND,
                3000,
            ),
            (
                Call::Query,
                "news.getPost",
                json!({ "post_id": post_b["id"] }),
                StatusCode::NOT_FOUND,
                4005,
            ),
            (
                Call::Mutation,
                "news.updatePost",
                json!({ "post_id": post_b["id"], "title": "x" }),
                StatusCode::NOT_FOUND,
                4005,
            ),
            (
                Call::Mutation,
                "news.deletePost",
                json!({ "post_id": post_b["id"] }),
                StatusCode::NOT_FOUND,
                4005,
            ),
            (
                Call::Mutation,
                "news.addComment",
                json!({ "post_id": post_b["id"], "content": "x" }),
                StatusCode::NOT_FOUND,
                4005,
            ),
            (
                Call::Mutation,
                "news.deleteComment",
                json!({ "comment_id": comment_b["id"] }),
                StatusCode::NOT_FOUND,
                4006,
            ),
        ],
    )
    .await;
}

const BOUNDARY: &str = "ectoContentBoundary42";

/// A PNG file: the signature and an IHDR chunk, padded to `len` bytes.
fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.resize(len.max(bytes.len()), 0);
    bytes
}

/// `POST path` with one file part named `file`; status and JSON body.
async fn post_image(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"pic.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut rb = app
        .request(reqwest::Method::POST, path)
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

async fn page_banner_and_news_hero_uploads(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let page = channel(&app, &owner, "wiki", "page").await;
    let news = channel(&app, &owner, "press", "news").await;
    let text = channel(&app, &owner, "chat", "text").await;
    let id = |v: &Value| v["id"].as_str().unwrap_or("").to_owned();
    let banner_path = format!("/upload/page-banner/{}", id(&page));
    let hero_path = format!("/upload/news-hero/{}", id(&news));
    let image = png(2048);

    // Refusals: no token, no permission, wrong or unknown channel, not an image, too large.
    let (status, _) = post_image(&app, &banner_path, None, &image).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = post_image(&app, &banner_path, Some(&member.token), &image).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_image(&app, &hero_path, Some(&member.token), &image).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_image(
        &app,
        &format!("/upload/page-banner/{}", id(&text)),
        Some(&owner.token),
        &image,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post_image(
        &app,
        &format!("/upload/news-hero/{}", id(&page)),
        Some(&owner.token),
        &image,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = post_image(
        &app,
        &format!("/upload/page-banner/{}", uuid::Uuid::now_v7()),
        Some(&owner.token),
        &image,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = post_image(&app, &banner_path, Some(&owner.token), b"not an image").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) =
        post_image(&app, &banner_path, Some(&owner.token), &png(800 * 1024 + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = post_image(
        &app,
        &hero_path,
        Some(&owner.token),
        &png(2 * 1024 * 1024 + 1),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        read(
            &app,
            "pages.getContent",
            json!({ "channel_id": page["id"] }),
            &owner
        )
        .await["banner_url"],
        Value::Null,
        "nothing refused changed the page"
    );

    // The page banner: stored, set on the page, announced, served.
    let mut events = app.events().await;
    let (status, body) = post_image(&app, &banner_path, Some(&owner.token), &image).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["banner_url"].as_str().unwrap_or("").to_owned();
    assert!(
        url.contains("/files/")
            && url.contains("/page-banners/page-banner-")
            && url.ends_with(".png"),
        "{url}"
    );
    let event = ecto_tests::next_event(&mut events, "page.update").await;
    assert_eq!(event.data["banner_url"], url.as_str());
    assert_eq!(
        read(
            &app,
            "pages.getContent",
            json!({ "channel_id": page["id"] }),
            &member
        )
        .await["banner_url"],
        url.as_str()
    );
    let path = &url[url.find("/files/").unwrap_or(0)..];
    let (status, headers, _) = TestApp::send(app.request(reqwest::Method::GET, path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/png")
    );

    // The news hero: stored and returned, nothing else changes.
    app.grant_role(&member, bits::MANAGE_NEWS, 1).await;
    let (status, body) = post_image(&app, &hero_path, Some(&member.token), &image).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hero = body["hero_url"].as_str().unwrap_or("");
    assert!(
        hero.contains("/news-heroes/hero-") && hero.ends_with(".png"),
        "{hero}"
    );
}
