//! Server DMs: conversations of two members, their rules, events to both participants only,
//! unread counts and read markers, and the `messages` router refusing conversation ids.

use ecto_core::ports::{Event, EventStream, Scope};
use ecto_tests::data;
use ecto_tests::{both_profiles, unique, Call, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn user(s: &Session) -> Uuid {
    s.user_id.parse().expect("user id")
}

/// The owner (who turns member DMs on) and two members, alice and bob.
async fn setup(app: &TestApp) -> (Session, Session, Session) {
    let owner = app.register(&unique("own"), "password-1").await;
    let alice = app.register(&unique("ali"), "password-2").await;
    let bob = app.register(&unique("bob"), "password-3").await;
    set_dms(app, &owner, true).await;
    (owner, alice, bob)
}

async fn set_dms(app: &TestApp, owner: &Session, on: bool) {
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": on }),
        owner,
    )
    .await;
}

async fn dm(app: &TestApp, from: &Session, to: &Session, content: &str) -> Value {
    app.ok(
        "serverDms.send",
        json!({ "recipient_id": to.user_id, "content": content }),
        from,
    )
    .await
}

/// Every event on `stream` until `count` events named `last` were seen (5 s at most).
async fn collect_until(stream: &mut EventStream, last: &str, count: usize) -> Vec<Event> {
    use futures_util::StreamExt;
    let mut seen = Vec::new();
    let mut found = 0;
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while found < count {
            let event = stream.next().await.expect("event stream ended");
            if event.name == last {
                found += 1;
            }
            seen.push(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("fewer than {count} {last} events within 5 s"));
    seen
}

/// The users the events named `name` went to; each must be scoped to one user.
fn recipients(events: &[Event], name: &str) -> Vec<Uuid> {
    let mut users: Vec<Uuid> = events
        .iter()
        .filter(|e| e.name == name)
        .map(|e| match e.scope {
            Scope::User(u) => u,
            other => panic!("{name} went to {other:?}"),
        })
        .collect();
    users.sort();
    users
}

fn pair(a: &Session, b: &Session) -> Vec<Uuid> {
    let mut users = vec![user(a), user(b)];
    users.sort();
    users
}

async fn server_dms_are_sent_listed_and_read_by_both_participants(app: TestApp) {
    let (_owner, alice, bob) = setup(&app).await;
    let mut events = app.events().await;
    let first = dm(&app, &alice, &bob, "hello bob").await;
    let conversation = first["conversation_id"].clone();
    assert!(conversation.is_string(), "{first}");
    assert_eq!(first["author"]["id"], alice.user_id.as_str());
    assert_eq!(first["content"], "hello bob");
    assert_eq!(first["reply_to"], Value::Null);
    assert_eq!(first["edited_at"], Value::Null);
    assert_eq!(first["attachments"], json!([]));
    assert_eq!(first["reactions"], json!([]));
    assert!(first["created_at"].as_str().unwrap_or("").ends_with('Z'));
    assert!(first.get("channel_id").is_none(), "{first}");

    let sent = collect_until(&mut events, "server_dm.message", 2).await;
    assert_eq!(recipients(&sent, "server_dm.message"), pair(&alice, &bob));
    for event in sent.iter().filter(|e| e.name == "server_dm.message") {
        let Scope::User(to) = event.scope else {
            panic!("{event:?}")
        };
        let peer = if to == user(&alice) { &bob } else { &alice };
        assert_eq!(event.data["_conversation_peer_id"], peer.user_id.as_str());
        assert_eq!(event.data["id"], first["id"]);
    }

    let second = dm(&app, &alice, &bob, "are you there?").await;
    assert_eq!(
        second["conversation_id"], conversation,
        "one conversation per pair"
    );
    let reply = app
        .ok(
            "serverDms.send",
            json!({ "recipient_id": alice.user_id, "content": "yes", "reply_to": second["id"] }),
            &bob,
        )
        .await;
    assert_eq!(reply["conversation_id"], conversation);
    assert_eq!(reply["reply_to"], second["id"]);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE channel_id = '{}'",
            conversation.as_str().unwrap_or("")
        ))
        .await,
        3,
        "DM messages are stored with the conversation as their channel"
    );

    let listed = app.get("serverDms.list", json!({}), &bob).await;
    assert_eq!(listed["has_more"], false);
    let convs = listed["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(convs.len(), 1, "{listed}");
    assert_eq!(convs[0]["id"], conversation);
    assert_eq!(convs[0]["peer"]["user_id"], alice.user_id.as_str());
    assert!(convs[0]["peer"]["username"]
        .as_str()
        .unwrap_or("")
        .starts_with("ali"));
    assert_eq!(convs[0]["last_message"]["id"], reply["id"]);
    assert_eq!(convs[0]["unread_count"], 2, "alice's two messages");
    let listed = app.get("serverDms.list", json!({}), &alice).await;
    assert_eq!(
        listed["conversations"][0]["peer"]["user_id"],
        bob.user_id.as_str()
    );
    assert_eq!(listed["conversations"][0]["unread_count"], 1, "bob's reply");

    app.ok(
        "serverDms.markRead",
        json!({ "conversation_id": conversation, "last_read_message_id": first["id"] }),
        &bob,
    )
    .await;
    let listed = app.get("serverDms.list", json!({}), &bob).await;
    assert_eq!(listed["conversations"][0]["unread_count"], 1);
    app.ok(
        "serverDms.markRead",
        json!({ "conversation_id": conversation, "last_read_message_id": reply["id"] }),
        &bob,
    )
    .await;
    let listed = app.get("serverDms.list", json!({}), &bob).await;
    assert_eq!(listed["conversations"][0]["unread_count"], 0);

    let history = app
        .get(
            "serverDms.history",
            json!({ "conversation_id": conversation }),
            &alice,
        )
        .await;
    let ids: Vec<&Value> = history["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| &m["id"]).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![&first["id"], &second["id"], &reply["id"]]);
    assert_eq!(history["has_more"], false);
    // The list without input works too (the input is optional).
    let (status, body) = app.query("serverDms.list", None, Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn edits_deletes_and_reactions_reach_both_participants_only(app: TestApp) {
    let (owner, alice, bob) = setup(&app).await;
    let msg = dm(&app, &alice, &bob, "first version").await;
    let conversation = msg["conversation_id"].clone();
    let mut events = app.events().await;

    let edited = app
        .ok(
            "serverDms.edit",
            json!({ "message_id": msg["id"], "content": "second version" }),
            &alice,
        )
        .await;
    assert_eq!(edited["content"], "second version");
    assert!(edited["edited_at"].is_string());
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM message_edits WHERE message_id = '{}'",
            msg["id"].as_str().unwrap_or("")
        ))
        .await,
        1,
        "the earlier version is kept"
    );
    app.refused(
        &bob,
        Call::Mutation,
        "serverDms.edit",
        json!({ "message_id": msg["id"], "content": "mine now" }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    app.refused(
        &bob,
        Call::Mutation,
        "serverDms.delete",
        json!({ "message_id": msg["id"] }),
        (StatusCode::FORBIDDEN, 5001),
    )
    .await;
    let groups = app
        .ok(
            "serverDms.react",
            json!({ "message_id": msg["id"], "emoji": "👍", "action": "add" }),
            &bob,
        )
        .await;
    assert_eq!(
        groups,
        json!([{ "emoji": "👍", "count": 1, "users": [bob.user_id], "me": true }])
    );
    // Someone outside the conversation, even the owner, sees no such message.
    for (proc_, input) in [
        (
            "serverDms.edit",
            json!({ "message_id": msg["id"], "content": "x" }),
        ),
        ("serverDms.delete", json!({ "message_id": msg["id"] })),
        (
            "serverDms.react",
            json!({ "message_id": msg["id"], "emoji": "👀", "action": "add" }),
        ),
    ] {
        app.refused(
            &owner,
            Call::Mutation,
            proc_,
            input,
            (StatusCode::NOT_FOUND, 4000),
        )
        .await;
    }
    app.ok(
        "serverDms.delete",
        json!({ "message_id": msg["id"] }),
        &alice,
    )
    .await;
    let seen = collect_until(&mut events, "server_dm.delete", 2).await;
    let both = pair(&alice, &bob);
    assert_eq!(recipients(&seen, "server_dm.update"), both);
    assert_eq!(recipients(&seen, "server_dm.reaction_update"), both);
    assert_eq!(recipients(&seen, "server_dm.delete"), both);
    let owner_id = user(&owner);
    assert!(
        !seen
            .iter()
            .any(|e| e.name.starts_with("server_dm.") && e.scope == Scope::User(owner_id)),
        "no DM event reaches a third member"
    );
    let update = seen
        .iter()
        .find(|e| e.name == "server_dm.update")
        .expect("update");
    assert_eq!(update.data["content"], "second version");
    assert_eq!(update.data["conversation_id"], conversation);
    let reaction = seen
        .iter()
        .find(|e| e.name == "server_dm.reaction_update")
        .expect("reaction");
    assert_eq!(
        reaction.data,
        json!({ "conversation_id": conversation, "message_id": msg["id"], "emoji": "👍",
                "user_id": bob.user_id, "action": "add", "count": 1 })
    );
    let delete = seen
        .iter()
        .find(|e| e.name == "server_dm.delete")
        .expect("delete");
    assert_eq!(
        delete.data,
        json!({ "id": msg["id"], "conversation_id": conversation })
    );
    let history = app
        .get(
            "serverDms.history",
            json!({ "conversation_id": conversation }),
            &bob,
        )
        .await;
    assert_eq!(history["messages"], json!([]), "deleted messages are gone");
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.edit",
        json!({ "message_id": msg["id"], "content": "again" }),
        (StatusCode::NOT_FOUND, 4000),
    )
    .await;
    let listed = app.get("serverDms.list", json!({}), &bob).await;
    assert_eq!(listed["conversations"][0]["last_message"], Value::Null);
    assert_eq!(listed["conversations"][0]["unread_count"], 0);
}

async fn dm_rules_refuse_self_strangers_closed_inboxes_and_other_conversations(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let alice = app.register(&unique("ali"), "password-2").await;
    let bob = app.register(&unique("bob"), "password-3").await;
    let carol = app.register(&unique("car"), "password-4").await;
    // Member DMs are off by default.
    let send = json!({ "recipient_id": bob.user_id, "content": "hi" });
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        send.clone(),
        (StatusCode::FORBIDDEN, 6001),
    )
    .await;
    app.refused(
        &alice,
        Call::Query,
        "serverDms.list",
        json!({}),
        (StatusCode::FORBIDDEN, 6001),
    )
    .await;
    set_dms(&app, &owner, true).await;
    let msg = app.ok("serverDms.send", send.clone(), &alice).await;
    let conversation = msg["conversation_id"].clone();
    set_dms(&app, &owner, false).await;
    app.refused(
        &alice,
        Call::Query,
        "serverDms.history",
        json!({ "conversation_id": conversation }),
        (StatusCode::FORBIDDEN, 6001),
    )
    .await;
    set_dms(&app, &owner, true).await;

    // Self first: even with the caller's own DMs closed.
    app.ok(
        "members.updateDmPreference",
        json!({ "allow_dms": false }),
        &carol,
    )
    .await;
    app.refused(
        &carol,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": carol.user_id, "content": "me" }),
        (StatusCode::BAD_REQUEST, 6003),
    )
    .await;
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": carol.user_id, "content": "hi" }),
        (StatusCode::FORBIDDEN, 6005),
    )
    .await;
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": Uuid::now_v7(), "content": "hi" }),
        (StatusCode::NOT_FOUND, 6004),
    )
    .await;
    let leaver = app.register(&unique("lea"), "password-5").await;
    app.ok("server.leave", json!({}), &leaver).await;
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": leaver.user_id, "content": "hi" }),
        (StatusCode::NOT_FOUND, 6004),
    )
    .await;

    // Replies stay within the conversation; attachments must be the sender's own uploads.
    let other = dm(&app, &owner, &bob, "another pair").await;
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": bob.user_id, "content": "re", "reply_to": other["id"] }),
        (StatusCode::NOT_FOUND, 4000),
    )
    .await;
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": owner.user_id, "content": "re", "reply_to": msg["id"] }),
        (StatusCode::NOT_FOUND, 4000),
    )
    .await;
    app.refused(&alice, Call::Mutation, "serverDms.send", json!({ "recipient_id": bob.user_id, "content": "file", "attachment_ids": [Uuid::now_v7()] }), (StatusCode::NOT_FOUND, 4002)).await;

    // Someone else's conversation, or none at all, is NOT_FOUND 6002.
    for id in [conversation.clone(), json!(Uuid::now_v7())] {
        app.refused(
            &carol,
            Call::Query,
            "serverDms.history",
            json!({ "conversation_id": id }),
            (StatusCode::NOT_FOUND, 6002),
        )
        .await;
        app.refused(
            &carol,
            Call::Mutation,
            "serverDms.markRead",
            json!({ "conversation_id": id, "last_read_message_id": msg["id"] }),
            (StatusCode::NOT_FOUND, 6002),
        )
        .await;
    }
    app.refused(
        &bob,
        Call::Mutation,
        "serverDms.markRead",
        json!({ "conversation_id": conversation, "last_read_message_id": other["id"] }),
        (StatusCode::NOT_FOUND, 4000),
    )
    .await;
    let (status, body) = app
        .query("serverDms.list", Some(json!({})), Some(&carol.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(data(&body)["conversations"], json!([]));
    // Without a token nothing works.
    assert_eq!(
        app.outcome(Call::Query, "serverDms.list", json!({}), None)
            .await,
        (StatusCode::UNAUTHORIZED, None),
        "anonymous"
    );
}

async fn dm_inputs_are_validated(app: TestApp) {
    let (_owner, alice, bob) = setup(&app).await;
    let msg = dm(&app, &alice, &bob, "x").await;
    let conversation = msg["conversation_id"].clone();
    let r = &bob.user_id;
    for input in [
        json!({ "recipient_id": r, "content": "" }),
        json!({ "recipient_id": r, "content": "x".repeat(4001) }),
        json!({ "recipient_id": r }),
        json!({ "recipient_id": "not-a-uuid", "content": "x" }),
        json!({ "recipient_id": r, "content": "x", "attachment_ids": vec![Uuid::now_v7(); 11] }),
    ] {
        let got = app.outcome(
            Call::Mutation,
            "serverDms.send",
            input.clone(),
            Some(&alice.token),
        );
        assert_eq!(got.await, (StatusCode::BAD_REQUEST, None), "{input}");
    }
    app.refused(
        &alice,
        Call::Mutation,
        "serverDms.send",
        json!({ "recipient_id": r, "content": "   " }),
        (StatusCode::BAD_REQUEST, 3001),
    )
    .await;
    app.ok(
        "serverDms.send",
        json!({ "recipient_id": r, "content": "x".repeat(4000) }),
        &alice,
    )
    .await;
    for (proc_, input) in [
        (
            "serverDms.edit",
            json!({ "message_id": msg["id"], "content": "" }),
        ),
        (
            "serverDms.edit",
            json!({ "message_id": msg["id"], "content": "x".repeat(4001) }),
        ),
        (
            "serverDms.react",
            json!({ "message_id": msg["id"], "emoji": "e".repeat(65), "action": "add" }),
        ),
        (
            "serverDms.react",
            json!({ "message_id": msg["id"], "emoji": "", "action": "add" }),
        ),
        (
            "serverDms.react",
            json!({ "message_id": msg["id"], "emoji": "x", "action": "toggle" }),
        ),
        (
            "serverDms.markRead",
            json!({ "conversation_id": conversation }),
        ),
    ] {
        let got = app.outcome(Call::Mutation, proc_, input.clone(), Some(&alice.token));
        assert_eq!(
            got.await,
            (StatusCode::BAD_REQUEST, None),
            "{proc_} {input}"
        );
    }
    app.ok(
        "serverDms.react",
        json!({ "message_id": msg["id"], "emoji": "e".repeat(64), "action": "add" }),
        &alice,
    )
    .await;
    for (proc_, input) in [
        ("serverDms.list", json!({ "limit": 101 })),
        ("serverDms.list", json!({ "limit": 0 })),
        (
            "serverDms.history",
            json!({ "conversation_id": conversation, "limit": 101 }),
        ),
        ("serverDms.history", json!({})),
    ] {
        let got = app.outcome(Call::Query, proc_, input.clone(), Some(&alice.token));
        assert_eq!(
            got.await,
            (StatusCode::BAD_REQUEST, None),
            "{proc_} {input}"
        );
    }
}

async fn history_pages_backwards_with_has_more(app: TestApp) {
    let (_owner, alice, bob) = setup(&app).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (from, to) = if i % 2 == 0 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        ids.push(dm(&app, from, to, &format!("m{i}")).await["id"].clone());
    }
    let conversation =
        app.get("serverDms.list", json!({}), &alice).await["conversations"][0]["id"].clone();
    let mut seen: Vec<Value> = Vec::new();
    let mut input = json!({ "conversation_id": conversation, "limit": 2 });
    let mut pages = 0;
    loop {
        let page = app.get("serverDms.history", input.clone(), &bob).await;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        let page_ids: Vec<Value> = messages.iter().map(|m| m["id"].clone()).collect();
        seen.splice(0..0, page_ids);
        pages += 1;
        if page["has_more"] != true {
            break;
        }
        input["before"] = messages[0]["id"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every message once, ascending");
}

async fn a_concurrent_first_send_creates_one_conversation(app: TestApp) {
    let (_owner, alice, bob) = setup(&app).await;
    let sends = (0..8).map(|i| {
        let (from, to) = if i % 2 == 0 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        app.mutate(
            "serverDms.send",
            json!({ "recipient_id": to.user_id, "content": format!("race {i}") }),
            Some(&from.token),
        )
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut conversations: Vec<Value> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            data(body)["conversation_id"].clone()
        })
        .collect();
    conversations.dedup();
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    let server_id = app.server_id().await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM dm_conversations WHERE server_id = '{server_id}'"
        ))
        .await,
        1
    );
    let listed = app.get("serverDms.list", json!({}), &alice).await;
    assert_eq!(listed["conversations"][0]["unread_count"], 4);
}

async fn the_messages_router_refuses_conversation_ids(app: TestApp) {
    let (_owner, alice, bob) = setup(&app).await;
    let msg = dm(&app, &alice, &bob, "private").await;
    let conversation = msg["conversation_id"].clone();
    app.refused(
        &alice,
        Call::Query,
        "messages.list",
        json!({ "channel_id": conversation }),
        (StatusCode::NOT_FOUND, 3000),
    )
    .await;
    app.refused(
        &alice,
        Call::Mutation,
        "messages.send",
        json!({ "channel_id": conversation, "content": "x" }),
        (StatusCode::NOT_FOUND, 3000),
    )
    .await;
    app.refused(
        &alice,
        Call::Mutation,
        "read_state.update",
        json!({ "channel_id": conversation, "last_read_message_id": msg["id"] }),
        (StatusCode::NOT_FOUND, 3000),
    )
    .await;
    // Not even the author reaches a DM message through `messages.*`.
    for (proc_, input) in [
        (
            "messages.update",
            json!({ "message_id": msg["id"], "content": "x" }),
        ),
        ("messages.delete", json!({ "message_id": msg["id"] })),
        (
            "messages.pin",
            json!({ "message_id": msg["id"], "pinned": true }),
        ),
        (
            "messages.react",
            json!({ "message_id": msg["id"], "emoji": "x", "action": "add" }),
        ),
    ] {
        app.refused(
            &alice,
            Call::Mutation,
            proc_,
            input,
            (StatusCode::NOT_FOUND, 4000),
        )
        .await;
    }
    app.refused(
        &alice,
        Call::Query,
        "messages.history",
        json!({ "message_id": msg["id"] }),
        (StatusCode::NOT_FOUND, 4000),
    )
    .await;
    let history = app
        .get(
            "serverDms.history",
            json!({ "conversation_id": conversation }),
            &bob,
        )
        .await;
    assert_eq!(history["messages"][0]["content"], "private", "unchanged");
}

both_profiles!(
    server_dms_are_sent_listed_and_read_by_both_participants,
    edits_deletes_and_reactions_reach_both_participants_only,
    dm_rules_refuse_self_strangers_closed_inboxes_and_other_conversations,
    dm_inputs_are_validated,
    history_pages_backwards_with_has_more,
    a_concurrent_first_send_creates_one_conversation,
    the_messages_router_refuses_conversation_ids,
);
