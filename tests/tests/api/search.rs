//! Full-text search on both databases: matching, ranking, filters and visibility.

use ecto_core::permissions::bits;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, sql_time, unique, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn send(app: &TestApp, s: &Session, channel: &Value, content: &str) -> Value {
    let (status, body) = app
        .mutate(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": content }),
            Some(&s.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body).clone()
}

async fn search(app: &TestApp, s: &Session, input: Value) -> Vec<String> {
    let (status, body) = app
        .query("search.search", Some(input.clone()), Some(&s.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{input}: {body}");
    data(&body)["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}

async fn channel(app: &TestApp, owner: &Session, input: Value) -> Value {
    let (status, body) = app
        .mutate("channels.create", input, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body).clone()
}

async fn search_finds_words_and_ranks_the_closest_match_first(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let general = channel(&app, &owner, json!({ "name": "general", "type": "text" })).await;
    send(
        &app,
        &owner,
        &general,
        "a long unrelated message that mentions deploy only once among many other words here",
    )
    .await;
    send(
        &app,
        &owner,
        &general,
        "deploy checklist: deploy, verify, deploy",
    )
    .await;
    send(&app, &owner, &general, "nothing to see here").await;
    let found = search(&app, &owner, json!({ "query": "deploy" })).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0], "deploy checklist: deploy, verify, deploy",
        "the closest match ranks first"
    );
    let found = search(&app, &owner, json!({ "query": "deploy checklist" })).await;
    assert_eq!(
        found,
        vec!["deploy checklist: deploy, verify, deploy"],
        "every word must match"
    );
    assert!(search(&app, &owner, json!({ "query": "absent" }))
        .await
        .is_empty());
    // Search syntax in user input is only words.
    assert!(search(&app, &owner, json!({ "query": "\" OR * NEAR(" }))
        .await
        .is_empty());
}

async fn search_respects_every_filter(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let other = app.register(&unique("oth"), "password-2").await;
    let a = channel(&app, &owner, json!({ "name": "a", "type": "text" })).await;
    let b = channel(&app, &owner, json!({ "name": "b", "type": "text" })).await;
    let first = send(&app, &owner, &a, "alpha one").await;
    send(&app, &other, &b, "alpha two https://example.test/page").await;
    let third = send(&app, &owner, &b, "alpha three").await;
    let server_id = app.server_id().await;
    app.sql(&format!(
        "INSERT INTO attachments (id, server_id, message_id, channel_id, uploader_id, filename, url, storage_key, content_type, size_bytes, created_at) \
         VALUES ('{}', '{server_id}', '{}', '{}', '{}', 'f.txt', '/files/x/f.txt', 'x/f.txt', 'text/plain', 3, '{}');",
        uuid::Uuid::now_v7(),
        third["id"].as_str().unwrap_or(""),
        b["id"].as_str().unwrap_or(""),
        owner.user_id,
        sql_time(0)
    ))
    .await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(search(&app, &owner, json!({ "query": "alpha" })).await).len(),
        3
    );
    assert_eq!(
        search(
            &app,
            &owner,
            json!({ "query": "alpha", "channel_id": a["id"] })
        )
        .await,
        vec!["alpha one"]
    );
    assert_eq!(
        search(
            &app,
            &owner,
            json!({ "query": "alpha", "author_id": other.user_id })
        )
        .await,
        vec!["alpha two https://example.test/page"]
    );
    assert_eq!(
        search(&app, &owner, json!({ "query": "alpha", "has": ["link"] })).await,
        vec!["alpha two https://example.test/page"]
    );
    assert_eq!(
        search(
            &app,
            &owner,
            json!({ "query": "alpha", "has": ["attachment"] })
        )
        .await,
        vec!["alpha three"]
    );
    assert_eq!(
        sorted(
            search(
                &app,
                &owner,
                json!({ "query": "alpha", "before": third["id"] })
            )
            .await
        ),
        vec![
            "alpha one".to_string(),
            "alpha two https://example.test/page".to_string()
        ]
    );
    assert_eq!(
        sorted(
            search(
                &app,
                &owner,
                json!({ "query": "alpha", "after": first["id"] })
            )
            .await
        ),
        vec![
            "alpha three".to_string(),
            "alpha two https://example.test/page".to_string()
        ]
    );
    let (status, body) = app
        .query(
            "search.search",
            Some(json!({ "query": "alpha", "limit": 1 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(data(&body)["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(data(&body)["has_more"], true);
}

async fn search_never_returns_what_the_caller_cannot_read(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    let open = channel(&app, &owner, json!({ "name": "open", "type": "text" })).await;
    let hidden = channel(&app, &owner, json!({ "name": "hidden", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] })).await;
    send(&app, &owner, &open, "zebra in the open").await;
    send(&app, &owner, &hidden, "zebra in secret").await;
    assert_eq!(
        search(&app, &member, json!({ "query": "zebra" })).await,
        vec!["zebra in the open"]
    );
    assert_eq!(
        search(&app, &owner, json!({ "query": "zebra" }))
            .await
            .len(),
        2
    );
    let (status, body) = app
        .query(
            "search.search",
            Some(json!({ "query": "zebra", "channel_id": hidden["id"] })),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5001)),
        "{body}"
    );
    let (status, body) = app
        .query(
            "search.search",
            Some(json!({ "query": "zebra", "channel_id": uuid::Uuid::now_v7() })),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(3000)),
        "{body}"
    );
    for bad in [
        json!({ "query": "" }),
        json!({ "query": "x".repeat(201) }),
        json!({ "query": "x", "limit": 51 }),
        json!({ "query": "x", "has": ["image"] }),
        json!({}),
    ] {
        let (status, _) = app
            .query("search.search", Some(bad.clone()), Some(&member.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn ok(app: &TestApp, s: &Session, proc_: &str, input: Value) {
    let (status, body) = app.mutate(proc_, input, Some(&s.token)).await;
    assert_eq!(status, StatusCode::OK, "{proc_}: {body}");
}

async fn search_follows_edits_and_deletions(app: TestApp) {
    // On SQLite a message reaches the index shortly after its send (or when a search comes):
    // edits and deletions before and after that point must both show.
    let owner = app.register(&unique("own"), "password-1").await;
    let general = channel(&app, &owner, json!({ "name": "general", "type": "text" })).await;
    let doomed = channel(&app, &owner, json!({ "name": "doomed", "type": "text" })).await;
    let early = send(&app, &owner, &general, "walrus early").await;
    let edit = |m: &Value, content: &str| json!({ "message_id": m["id"], "content": content });
    ok(
        &app,
        &owner,
        "messages.update",
        edit(&early, "narwhal early"),
    )
    .await;
    let late = send(&app, &owner, &general, "walrus late").await;
    assert_eq!(
        search(&app, &owner, json!({ "query": "walrus" })).await,
        vec!["walrus late"]
    );
    ok(&app, &owner, "messages.update", edit(&late, "narwhal late")).await;
    assert!(search(&app, &owner, json!({ "query": "walrus" }))
        .await
        .is_empty());
    let mut found = search(&app, &owner, json!({ "query": "narwhal" })).await;
    found.sort();
    assert_eq!(found, vec!["narwhal early", "narwhal late"]);
    // The messages of a deleted channel leave the index, indexed or not yet.
    send(&app, &owner, &doomed, "octopus indexed").await;
    assert_eq!(
        search(&app, &owner, json!({ "query": "octopus" }))
            .await
            .len(),
        1
    );
    send(&app, &owner, &doomed, "octopus pending").await;
    ok(
        &app,
        &owner,
        "channels.delete",
        json!({ "channel_id": doomed["id"] }),
    )
    .await;
    assert!(search(&app, &owner, json!({ "query": "octopus" }))
        .await
        .is_empty());
    send(&app, &owner, &general, "octopus again").await;
    assert_eq!(
        search(&app, &owner, json!({ "query": "octopus" })).await,
        vec!["octopus again"]
    );
}

both_profiles!(
    search_follows_edits_and_deletions,
    search_finds_words_and_ranks_the_closest_match_first,
    search_respects_every_filter,
    search_never_returns_what_the_caller_cannot_read,
);
