//! Messages and read states: the send pipeline, permissions, slowmode, mention gating, pins,
//! reactions, edit history and exact paging.

use ecto_core::permissions::bits;
use ecto_core::ports::Scope;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, next_event, sql_time, unique, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn setup(app: &TestApp) -> (Session, Session, Value) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let channel = app.channel(&owner, "general", "text").await;
    (owner, member, channel)
}

async fn messages_are_sent_listed_edited_and_deleted(app: TestApp) {
    let (owner, member, channel) = setup(&app).await;
    let mut events = app.events().await;
    let sent = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "hello", "nonce": "n-1" }),
            &member,
        )
        .await;
    assert_eq!(sent["content"], "hello");
    assert_eq!(sent["nonce"], "n-1", "the nonce is echoed");
    assert_eq!(sent["type"], 0);
    assert_eq!(sent["author"]["id"], member.user_id.as_str());
    assert_eq!(sent["reactions"], json!([]));
    let event = next_event(&mut events, "message.create").await;
    assert_eq!(
        event.scope,
        Scope::Channel(
            channel["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("id")
        )
    );
    assert_eq!(event.data["nonce"], "n-1");

    let (status, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(data(&body)["messages"][0]["id"], sent["id"]);
    assert_eq!(data(&body)["has_more"], false);

    let edited = app
        .ok(
            "messages.update",
            json!({ "message_id": sent["id"], "content": "hello, world" }),
            &member,
        )
        .await;
    assert_eq!(edited["content"], "hello, world");
    assert!(edited["edited_at"].is_string());
    assert_eq!(
        next_event(&mut events, "message.update").await.data["content"],
        "hello, world"
    );
    let (status, body) = app
        .query(
            "messages.history",
            Some(json!({ "message_id": sent["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        data(&body)["edits"][0]["content"],
        "hello",
        "the earlier version is kept"
    );

    let (status, body) = app
        .mutate(
            "messages.update",
            json!({ "message_id": sent["id"], "content": "mine" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5001)),
        "only the author edits"
    );
    app.ok(
        "messages.delete",
        json!({ "message_id": sent["id"] }),
        &member,
    )
    .await;
    assert_eq!(
        next_event(&mut events, "message.delete").await.data,
        json!({ "id": sent["id"], "channel_id": channel["id"] })
    );
    let (status, body) = app
        .mutate(
            "messages.delete",
            json!({ "message_id": sent["id"] }),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::NOT_FOUND, Some(4000))
    );
    let (_, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(
        data(&body)["messages"],
        json!([]),
        "deleted messages are not listed"
    );
}

async fn the_send_pipeline_refuses_bad_input(app: TestApp) {
    let (owner, member, channel) = setup(&app).await;
    let other = app.channel(&owner, "other", "text").await;
    let page = app.channel(&owner, "wiki", "page").await;
    let elsewhere = app
        .ok(
            "messages.send",
            json!({ "channel_id": other["id"], "content": "x" }),
            &owner,
        )
        .await;
    let cases = [
        (
            json!({ "channel_id": channel["id"] }),
            StatusCode::BAD_REQUEST,
            Some(3001),
        ),
        (
            json!({ "channel_id": channel["id"], "content": "" }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            json!({ "channel_id": channel["id"], "content": "x".repeat(4001) }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            json!({ "channel_id": page["id"], "content": "x" }),
            StatusCode::BAD_REQUEST,
            Some(3002),
        ),
        (
            json!({ "channel_id": uuid::Uuid::now_v7(), "content": "x" }),
            StatusCode::NOT_FOUND,
            Some(3000),
        ),
        (
            json!({ "channel_id": channel["id"], "content": "x", "reply_to": elsewhere["id"] }),
            StatusCode::NOT_FOUND,
            Some(4000),
        ),
        (
            json!({ "channel_id": channel["id"], "content": "x", "attachment_ids": [uuid::Uuid::now_v7()] }),
            StatusCode::NOT_FOUND,
            Some(4002),
        ),
        (
            json!({ "channel_id": channel["id"], "content": "x", "nonce": "n".repeat(101) }),
            StatusCode::BAD_REQUEST,
            None,
        ),
    ];
    for (input, status, code) in cases {
        let (got, body) = app
            .mutate("messages.send", input.clone(), Some(&member.token))
            .await;
        assert_eq!(
            (got, ecto_code(&body)),
            (status, code.map(i64::from)),
            "{input}: {body}"
        );
    }
    let (status, _) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"], "limit": 101 })),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .mutate(
            "messages.react",
            json!({ "message_id": elsewhere["id"], "emoji": "", "action": "add" }),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn channel_permissions_gate_reading_and_writing(app: TestApp) {
    let (owner, member, channel) = setup(&app).await;
    let everyone = TestApp::everyone_role(&owner);
    let read_only = app.ok("channels.create", json!({ "name": "announcements", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::SEND_MESSAGES } ] }), &owner).await;
    let hidden = app.ok("channels.create", json!({ "name": "hidden", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let (status, body) = app
        .mutate(
            "messages.send",
            json!({ "channel_id": read_only["id"], "content": "x" }),
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
            "messages.list",
            Some(json!({ "channel_id": hidden["id"] })),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5001)),
        "{body}"
    );
    let secret = app
        .ok(
            "messages.send",
            json!({ "channel_id": hidden["id"], "content": "secret" }),
            &owner,
        )
        .await;
    let (status, _) = app
        .mutate(
            "messages.react",
            json!({ "message_id": secret["id"], "emoji": "👍", "action": "add" }),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .query(
            "messages.history",
            Some(json!({ "message_id": secret["id"] })),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let theirs = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "owner's" }),
            &owner,
        )
        .await;
    let (status, body) = app
        .mutate(
            "messages.delete",
            json!({ "message_id": theirs["id"] }),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::FORBIDDEN, Some(5001))
    );
    let (status, _) = app
        .mutate(
            "messages.pin",
            json!({ "message_id": theirs["id"], "pinned": true }),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A moderator may delete others' messages, and it is audited.
    let mine = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "member's" }),
            &member,
        )
        .await;
    app.ok(
        "messages.delete",
        json!({ "message_id": mine["id"] }),
        &owner,
    )
    .await;
    let (_, body) = app
        .query(
            "auditlog.list",
            Some(json!({ "action": "message.delete" })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(data(&body)["entries"][0]["target_id"], mine["id"]);
}

async fn slowmode_limits_members_but_not_moderators(app: TestApp) {
    let (owner, member, _) = setup(&app).await;
    let slow = app
        .ok(
            "channels.create",
            json!({ "name": "slow", "type": "text", "slowmode_seconds": 30 }),
            &owner,
        )
        .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": slow["id"], "content": "first" }),
        &member,
    )
    .await;
    let rb = app
        .request(Method::POST, "/trpc/messages.send")
        .bearer_auth(&member.token)
        .json(&json!({ "channel_id": slow["id"], "content": "second" }));
    let (status, headers, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(ecto_code(&body), Some(3005));
    assert_eq!(body["error"]["data"]["ecto_error"], "slowmode_active");
    let wait = body["error"]["data"]["retry_after"]
        .as_u64()
        .expect("retry_after");
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(
        headers["retry-after"].to_str().ok(),
        Some(wait.to_string().as_str())
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("Slowmode active. Try again in"));
    app.ok(
        "messages.send",
        json!({ "channel_id": slow["id"], "content": "one" }),
        &owner,
    )
    .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": slow["id"], "content": "two" }),
        &owner,
    )
    .await;
    // Once the last post is older than the window, the member may send again.
    app.sql(&format!(
        "UPDATE messages SET created_at = '{}' WHERE content = 'first'",
        sql_time(-31)
    ))
    .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": slow["id"], "content": "second" }),
        &member,
    )
    .await;
    let (status, body) = app
        .mutate(
            "messages.send",
            json!({ "channel_id": slow["id"], "content": "third" }),
            Some(&member.token),
        )
        .await;
    assert_eq!(
        (status, ecto_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, Some(3005)),
        "the window starts again at the newest post"
    );
}

async fn everyone_mentions_need_mention_everyone(app: TestApp) {
    let (owner, member, channel) = setup(&app).await;
    let third = app.register(&unique("thr"), "password-3").await;
    let mut events = app.events().await;
    let plain = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "@everyone wake up" }),
            &member,
        )
        .await;
    assert_eq!(
        plain["mention_everyone"], false,
        "a member without MENTION_EVERYONE notifies no one"
    );
    assert_eq!(plain["content"], "@everyone wake up", "the text is kept");
    let (_, body) = app.query("read_state.list", None, Some(&third.token)).await;
    assert_eq!(data(&body), &json!([]), "nobody's mention count moved");

    let loud = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "@everyone meeting" }),
            &owner,
        )
        .await;
    assert_eq!(loud["mention_everyone"], true);
    let mention = next_event(&mut events, "mention.create").await;
    assert!(matches!(mention.scope, Scope::User(_)));
    let (_, body) = app.query("read_state.list", None, Some(&third.token)).await;
    assert_eq!(data(&body)[0]["mention_count"], 1, "{body}");

    let direct = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": format!("hi <@{}>", third.user_id) }),
            &member,
        )
        .await;
    assert_eq!(direct["mentions"], json!([third.user_id]));
    let (_, body) = app.query("read_state.list", None, Some(&third.token)).await;
    assert_eq!(data(&body)[0]["mention_count"], 2);
    app.ok(
        "read_state.update",
        json!({ "channel_id": channel["id"], "last_read_message_id": direct["id"] }),
        &third,
    )
    .await;
    let (_, body) = app.query("read_state.list", None, Some(&third.token)).await;
    assert_eq!(data(&body)[0]["mention_count"], 0);
    assert_eq!(data(&body)[0]["last_read_message_id"], direct["id"]);
    app.ok("read_state.markAllRead", json!({}), &owner).await;
    let (_, body) = app.query("read_state.list", None, Some(&owner.token)).await;
    assert_eq!(
        data(&body)[0]["last_read_message_id"],
        direct["id"],
        "marked read up to the channel's newest"
    );
}

async fn pins_and_reactions_update_messages(app: TestApp) {
    let (owner, member, channel) = setup(&app).await;
    let msg = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "pin me" }),
            &member,
        )
        .await;
    let mut events = app.events().await;
    let pinned = app
        .ok(
            "messages.pin",
            json!({ "message_id": msg["id"], "pinned": true }),
            &owner,
        )
        .await;
    assert_eq!(pinned["pinned"], true);
    let system = next_event(&mut events, "message.create").await;
    assert_eq!(system.data["type"], 3, "PIN_ADDED");
    assert_eq!(system.data["reply_to"], msg["id"]);
    let (_, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"], "pinned_only": true })),
            Some(&member.token),
        )
        .await;
    assert_eq!(data(&body)["messages"].as_array().map(Vec::len), Some(1));
    let (_, body) = app
        .query(
            "auditlog.list",
            Some(json!({ "action": "message.pin" })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(data(&body)["entries"][0]["details"]["pinned"], true);

    let groups = app
        .ok(
            "messages.react",
            json!({ "message_id": msg["id"], "emoji": "👍", "action": "add" }),
            &owner,
        )
        .await;
    assert_eq!(
        groups,
        json!([{ "emoji": "👍", "count": 1, "users": [owner.user_id], "me": true }])
    );
    app.ok(
        "messages.react",
        json!({ "message_id": msg["id"], "emoji": "👍", "action": "add" }),
        &owner,
    )
    .await;
    let groups = app
        .ok(
            "messages.react",
            json!({ "message_id": msg["id"], "emoji": "👍", "action": "add" }),
            &member,
        )
        .await;
    assert_eq!(groups[0]["count"], 2, "adding twice counts once");
    let update = next_event(&mut events, "message.reaction_update").await;
    assert_eq!(update.data["action"], "add");
    let groups = app
        .ok(
            "messages.react",
            json!({ "message_id": msg["id"], "emoji": "👍", "action": "remove" }),
            &owner,
        )
        .await;
    assert_eq!(groups[0]["users"], json!([member.user_id]));
    let (_, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"] })),
            Some(&member.token),
        )
        .await;
    let listed = data(&body)["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let target = listed
        .iter()
        .find(|m| m["id"] == msg["id"])
        .expect("listed");
    assert_eq!(target["reactions"][0]["me"], true);
}

async fn ten_thousand_messages_page_without_gaps_or_duplicates(app: TestApp) {
    let (owner, _, channel) = setup(&app).await;
    let server_id = app.server_id().await;
    let mut ids: Vec<uuid::Uuid> = (0..10_000).map(|_| uuid::Uuid::now_v7()).collect();
    ids.sort();
    let now = sql_time(0);
    let rows: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "('{id}', '{server_id}', '{ch}', '{author}', 'message {i}', 0, false, false, false, '[]', '[]', '{now}')",
                ch = channel["id"].as_str().unwrap_or(""),
                author = owner.user_id
            )
        })
        .collect();
    for chunk in rows.chunks(2_000) {
        app.sql(&format!(
            "INSERT INTO messages (id, server_id, channel_id, author_id, content, type, pinned, deleted, mention_everyone, mention_roles, mention_users, created_at) VALUES {};",
            chunk.join(",")
        ))
        .await;
    }
    // Backwards from the newest with `before`.
    let mut seen: Vec<String> = Vec::new();
    let mut input = json!({ "channel_id": channel["id"], "limit": 100 });
    loop {
        let (status, body) = app
            .query("messages.list", Some(input.clone()), Some(&owner.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = data(&body)["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let page_ids: Vec<String> = page
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        let mut sorted = page_ids.clone();
        sorted.sort();
        assert_eq!(page_ids, sorted, "each page is ascending");
        seen.splice(0..0, page_ids);
        if data(&body)["has_more"] != true {
            break;
        }
        input["before"] = page[0]["id"].clone();
    }
    let expected: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        seen, expected,
        "before-paging covers every message once, in order"
    );
    // Forwards from the oldest with `after`.
    let mut seen: Vec<String> = vec![expected[0].clone()];
    let mut input = json!({ "channel_id": channel["id"], "limit": 100, "after": expected[0] });
    loop {
        let (_, body) = app
            .query("messages.list", Some(input.clone()), Some(&owner.token))
            .await;
        let page = data(&body)["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        seen.extend(
            page.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned)),
        );
        if data(&body)["has_more"] != true {
            break;
        }
        input["after"] = page.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    }
    assert_eq!(
        seen, expected,
        "after-paging covers every message once, in order"
    );
}

async fn concurrent_sends_are_each_stored_once(app: TestApp) {
    // On SQLite concurrent sends share one commit (group commit): every send still gets its
    // own answer, and every message is stored and listed exactly once.
    let (owner, member, channel) = setup(&app).await;
    let sends = (0..64).map(|i| {
        let who = if i % 2 == 0 { &owner } else { &member };
        app.mutate(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": format!("together {i}") }),
            Some(&who.token),
        )
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut sent: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            data(body)["id"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 64, "64 distinct messages");
    let (status, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"], "limit": 100 })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut listed: Vec<String> = data(&body)["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    listed.sort();
    assert_eq!(listed, sent, "each stored once");
    // A pinned-only list goes through the partial index and still sees a pin.
    let pinned = &sent[7];
    app.ok(
        "messages.pin",
        json!({ "message_id": pinned, "pinned": true }),
        &owner,
    )
    .await;
    let (status, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": channel["id"], "pinned_only": true })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pins: Vec<&str> = data(&body)["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(pins, vec![pinned.as_str()]);
}

both_profiles!(
    concurrent_sends_are_each_stored_once,
    messages_are_sent_listed_edited_and_deleted,
    the_send_pipeline_refuses_bad_input,
    channel_permissions_gate_reading_and_writing,
    slowmode_limits_members_but_not_moderators,
    everyone_mentions_need_mention_everyone,
    pins_and_reactions_update_messages,
    ten_thousand_messages_page_without_gaps_or_duplicates,
);
