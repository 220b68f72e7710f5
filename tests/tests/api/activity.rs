//! The activity feed: items for mentions, replies, reactions and server DMs, `activity.create`
//! to the recipient only, listing, counting and marking read.

use ecto_core::ports::Scope;
use ecto_tests::data;
use ecto_tests::{both_profiles, ecto_code, next_event, unique, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn items(app: &TestApp, s: &Session, input: Value) -> Value {
    let (status, body) = app
        .query("activity.list", Some(input), Some(&s.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body).clone()
}

async fn unread(app: &TestApp, s: &Session) -> i64 {
    let (status, body) = app
        .query("activity.unreadCount", None, Some(&s.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    data(&body)["count"].as_i64().expect("count")
}

fn types(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .map(|i| i.iter().filter_map(|i| i["type"].as_str()).collect())
        .unwrap_or_default()
}

fn user(s: &Session) -> Uuid {
    s.user_id.parse().expect("user id")
}

/// The owner, two members and a text channel.
async fn setup(app: &TestApp) -> (Session, Session, Session, Value) {
    let owner = app.register(&unique("own"), "password-1").await;
    let alice = app.register(&unique("ali"), "password-2").await;
    let bob = app.register(&unique("bob"), "password-3").await;
    let channel = app.channel(&owner, "general", "text").await;
    (owner, alice, bob, channel)
}

async fn say(app: &TestApp, s: &Session, channel: &Value, content: &str) -> Value {
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": content }),
        s,
    )
    .await
}

async fn mentions_and_replies_create_items_for_their_recipients(app: TestApp) {
    let (owner, alice, bob, channel) = setup(&app).await;
    let server_id = app.server_id().await;
    let mut events = app.events().await;
    let long = "x".repeat(150);
    let mention = say(
        &app,
        &alice,
        &channel,
        &format!("<@{}> {long}", bob.user_id),
    )
    .await;
    let created = next_event(&mut events, "activity.create").await;
    assert_eq!(created.scope, Scope::User(user(&bob)));
    let item = &created.data;
    assert_eq!(item["type"], "mention");
    assert_eq!(item["actor"]["id"], alice.user_id.as_str());
    assert!(item["actor"]["username"]
        .as_str()
        .unwrap_or("")
        .starts_with("ali"));
    assert_eq!(item["message_id"], mention["id"]);
    assert_eq!(
        item["content_preview"].as_str().map(|p| p.chars().count()),
        Some(100)
    );
    assert_eq!(
        item["source"],
        json!({ "server_id": server_id, "server_name": item["source"]["server_name"],
                "channel_id": channel["id"], "channel_name": "general" })
    );
    assert!(item["source"]["server_name"].is_string());
    assert_eq!(item["read"], false);
    assert!(item.get("emoji").is_none(), "absent keys are omitted");
    assert!(item["created_at"].as_str().unwrap_or("").ends_with('Z'));

    let listed = items(&app, &bob, json!({})).await;
    assert_eq!(types(&listed), vec!["mention"]);
    assert_eq!(listed["items"][0]["id"], item["id"]);
    assert_eq!(listed["items"][0]["source"]["channel_name"], "general");
    assert_eq!(items(&app, &alice, json!({})).await["items"], json!([]));

    // A reply tells the replied-to author…
    let reply = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "answer", "reply_to": mention["id"] }),
            &bob,
        )
        .await;
    let created = next_event(&mut events, "activity.create").await;
    assert_eq!(created.scope, Scope::User(user(&alice)));
    assert_eq!(created.data["type"], "reply");
    assert_eq!(created.data["message_id"], reply["id"]);
    assert_eq!(created.data["actor"]["id"], bob.user_id.as_str());
    // …once: a reply that also mentions the author gives only the mention, and replying to
    // oneself gives nothing.
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": format!("<@{}> again", alice.user_id),
                "reply_to": mention["id"] }),
        &bob,
    )
    .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "me", "reply_to": reply["id"] }),
        &bob,
    )
    .await;
    assert_eq!(
        types(&items(&app, &alice, json!({})).await),
        vec!["mention", "reply"]
    );
    assert_eq!(unread(&app, &alice).await, 2);
    assert_eq!(unread(&app, &bob).await, 1);
    assert_eq!(unread(&app, &owner).await, 0);

    // Someone who cannot read the channel is not told.
    let everyone = TestApp::everyone_role(&owner);
    let hidden = app.ok("channels.create", json!({ "name": "hidden", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": ecto_core::permissions::bits::READ_MESSAGES } ] }), &owner).await;
    say(&app, &owner, &hidden, &format!("<@{}> secret", bob.user_id)).await;
    assert_eq!(unread(&app, &bob).await, 1);
}

async fn reactions_by_others_tell_the_author_once(app: TestApp) {
    let (_owner, alice, bob, channel) = setup(&app).await;
    let msg = say(&app, &alice, &channel, "react to me").await;
    let mut events = app.events().await;
    for _ in 0..2 {
        app.ok(
            "messages.react",
            json!({ "message_id": msg["id"], "emoji": "🎉", "action": "add" }),
            &bob,
        )
        .await;
    }
    let created = next_event(&mut events, "activity.create").await;
    assert_eq!(created.scope, Scope::User(user(&alice)));
    assert_eq!(created.data["type"], "reaction");
    assert_eq!(created.data["emoji"], "🎉");
    assert_eq!(created.data["message_id"], msg["id"]);
    assert_eq!(created.data["actor"]["id"], bob.user_id.as_str());
    assert_eq!(created.data["content_preview"], "react to me");
    // The author's own reaction and a removal add nothing.
    app.ok(
        "messages.react",
        json!({ "message_id": msg["id"], "emoji": "🎉", "action": "add" }),
        &alice,
    )
    .await;
    app.ok(
        "messages.react",
        json!({ "message_id": msg["id"], "emoji": "🎉", "action": "remove" }),
        &bob,
    )
    .await;
    let listed = items(&app, &alice, json!({})).await;
    assert_eq!(types(&listed), vec!["reaction"], "{listed}");
    assert_eq!(unread(&app, &bob).await, 0);
}

async fn server_dms_create_items_for_the_recipient(app: TestApp) {
    let (owner, alice, bob, _) = setup(&app).await;
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": true }),
        &owner,
    )
    .await;
    let mut events = app.events().await;
    let first = app
        .ok(
            "serverDms.send",
            json!({ "recipient_id": bob.user_id, "content": "psst" }),
            &alice,
        )
        .await;
    let created = next_event(&mut events, "activity.create").await;
    assert_eq!(created.scope, Scope::User(user(&bob)));
    assert_eq!(created.data["type"], "server_dm");
    assert_eq!(created.data["message_id"], first["id"]);
    assert_eq!(created.data["content_preview"], "psst");
    assert_eq!(
        created.data["source"]["conversation_id"],
        first["conversation_id"]
    );
    assert!(created.data["source"].get("channel_id").is_none());
    // A reply to the recipient's own message adds a reply item.
    app.ok(
        "serverDms.send",
        json!({ "recipient_id": alice.user_id, "content": "what?", "reply_to": first["id"] }),
        &bob,
    )
    .await;
    let listed = items(&app, &alice, json!({})).await;
    assert_eq!(types(&listed), vec!["reply", "server_dm"], "{listed}");
    assert!(listed["items"].as_array().is_some_and(|i| i
        .iter()
        .all(|i| i["source"]["conversation_id"] == first["conversation_id"])));
    let dms_only = items(&app, &alice, json!({ "type": "server_dm" })).await;
    assert_eq!(types(&dms_only), vec!["server_dm"]);
    assert_eq!(unread(&app, &owner).await, 0);
}

async fn activity_is_paged_counted_and_marked_read(app: TestApp) {
    let (owner, alice, bob, channel) = setup(&app).await;
    for i in 0..5 {
        say(
            &app,
            &alice,
            &channel,
            &format!("<@{}> ping {i}", bob.user_id),
        )
        .await;
    }
    let msg = say(&app, &bob, &channel, "mine").await;
    app.ok(
        "messages.react",
        json!({ "message_id": msg["id"], "emoji": "👍", "action": "add" }),
        &alice,
    )
    .await;
    assert_eq!(unread(&app, &bob).await, 6);

    // Newest first, in pages.
    let mut seen: Vec<Value> = Vec::new();
    let mut input = json!({ "limit": 4 });
    loop {
        let page = items(&app, &bob, input.clone()).await;
        let page_items = page["items"].as_array().cloned().unwrap_or_default();
        seen.extend(page_items.iter().map(|i| i["id"].clone()));
        if page["has_more"] != true {
            break;
        }
        input["before"] = page_items
            .last()
            .map(|i| i["id"].clone())
            .unwrap_or_default();
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.as_str().cmp(&a.as_str()));
    assert_eq!(seen, sorted, "newest first, each item once");
    assert_eq!(
        types(&items(&app, &bob, json!({ "type": "reaction" })).await),
        vec!["reaction"]
    );
    assert_eq!(
        types(&items(&app, &bob, json!({ "type": "mention", "limit": 50 })).await).len(),
        5
    );

    // markRead touches only the caller's items.
    let alice_item = {
        say(&app, &bob, &channel, &format!("<@{}>", alice.user_id)).await;
        items(&app, &alice, json!({})).await["items"][0]["id"].clone()
    };
    app.ok(
        "activity.markRead",
        json!({ "activity_ids": [seen[0], seen[1], alice_item, Uuid::now_v7()] }),
        &bob,
    )
    .await;
    assert_eq!(unread(&app, &bob).await, 4);
    assert_eq!(
        unread(&app, &alice).await,
        1,
        "another user's item is untouched"
    );
    let listed = items(&app, &bob, json!({})).await;
    assert_eq!(listed["items"][0]["read"], true);
    assert_eq!(listed["items"][2]["read"], false);
    app.ok("activity.markAllRead", json!({}), &bob).await;
    assert_eq!(unread(&app, &bob).await, 0);
    assert_eq!(unread(&app, &alice).await, 1);
    let (status, _) = app
        .mutate("activity.markAllRead", Value::Null, Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "markAllRead takes no input");

    // Bounds.
    for input in [
        None,
        Some(json!({ "limit": 51 })),
        Some(json!({ "limit": 0 })),
        Some(json!({ "type": "bogus" })),
        Some(json!({ "before": "nope" })),
    ] {
        let (status, body) = app
            .query("activity.list", input.clone(), Some(&bob.token))
            .await;
        assert_eq!(
            (status, ecto_code(&body)),
            (StatusCode::BAD_REQUEST, None),
            "{input:?}: {body}"
        );
    }
    for ids in [json!([]), json!(vec![Uuid::now_v7(); 101]), json!(["x"])] {
        let (status, body) = app
            .mutate(
                "activity.markRead",
                json!({ "activity_ids": ids }),
                Some(&bob.token),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    app.ok(
        "activity.markRead",
        json!({ "activity_ids": vec![Uuid::now_v7(); 100] }),
        &bob,
    )
    .await;
    let (status, _) = app.query("activity.unreadCount", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

both_profiles!(
    mentions_and_replies_create_items_for_their_recipients,
    reactions_by_others_tell_the_author_once,
    server_dms_create_items_for_the_recipient,
    activity_is_paged_counted_and_marked_read,
);
