//! The `/ws` gateway: handshake, close codes, subscriptions, scoped delivery, resume.

use ecto_core::permissions::bits;
use ecto_tests::ws::Incoming;
use ecto_tests::{both_profiles, on_redis_cluster, unique, TestApp};
use serde_json::{json, Value};

async fn hello_identify_ready_in_order(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "general", "text").await;
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "before you came" }),
        &owner,
    )
    .await;
    let mut ws = app.ws().await;
    let hello = ws.frame().await;
    assert_eq!(hello["event"], "system.hello");
    assert_eq!(hello["data"]["heartbeat_interval"], 30000);
    assert!(hello.get("seq").is_none(), "direct replies carry no seq");
    ws.send(
        "system.identify",
        json!({ "token": owner.token, "protocol_version": 1, "active_channel_id": channel["id"] }),
    )
    .await;
    let ready = ws.expect("system.ready").await["data"].clone();
    assert_eq!(ready["user_id"], owner.user_id.as_str());
    assert_eq!(ready["session_id"], hello["data"]["session_id"]);
    assert_eq!(ready["protocol_version"], 1);
    assert_eq!(ready["channels"][0]["id"], channel["id"]);
    assert!(ready["channels"][0]["my_permissions"].is_u64());
    assert_eq!(ready["self_member"]["user_id"], owner.user_id.as_str());
    assert_eq!(ready["initial_messages"][0]["content"], "before you came");
    assert_eq!(ready["initial_messages_channel_id"], channel["id"]);
    assert!(ready["roles"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(
        ready["server"]["discoverable"].is_boolean(),
        "the owner gets the config keys"
    );
    // The session's own online presence is its first dispatched event (seq 1).
    let presence = ws.expect("presence.update").await;
    assert_eq!(presence["seq"].as_u64(), Some(1));
    assert_eq!(presence["data"]["status"], "online");
    ws.send("system.heartbeat", Value::Null).await;
    assert_eq!(ws.expect("system.heartbeat_ack").await["data"], json!({}));
    // Auto-subscribed to the active channel: a new message arrives next.
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "live" }),
        &owner,
    )
    .await;
    let live = ws.expect("message.create").await;
    assert_eq!(live["data"]["content"], "live");
    assert_eq!(live["seq"], 2, "per-session sequence without gaps");
}

/// `system.ready`'s `self_member` for a session that identifies now.
async fn ready_self_member(app: &TestApp, token: &str) -> Value {
    app.ws().await.identify(token, json!({})).await["self_member"].clone()
}

async fn ready_shows_the_sessions_own_member_as_members_list_does(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let helper = app
        .ok("roles.create", json!({ "name": "Helper" }), &owner)
        .await;
    app.ok(
        "members.updateRoles",
        json!({ "user_id": member.user_id, "role_ids": [helper["id"]] }),
        &owner,
    )
    .await;
    app.ok(
        "members.updateNickname",
        json!({ "user_id": member.user_id, "nickname": "Nick" }),
        &member,
    )
    .await;
    app.ok(
        "members.syncProfile",
        json!({ "display_name": "Shown" }),
        &member,
    )
    .await;
    let listed = |body: Value| {
        body["result"]["data"]["members"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|m| m["user_id"] == member.user_id.as_str())
                    .cloned()
            })
            .expect("the member is listed")
    };
    let (_, list) = app
        .query("members.list", Some(json!({})), Some(owner.token.as_str()))
        .await;
    let shown = ready_self_member(&app, &member.token).await;
    assert_eq!(shown, listed(list), "self_member is the listed member");
    assert_eq!(shown["nickname"], "Nick");
    assert_eq!(shown["display_name"], "Shown");
    assert_eq!(shown["roles"].as_array().map(Vec::len), Some(2));
    assert_eq!(shown["roles"][1], helper["id"], "@everyone first");
    // A change of roles reaches the next session's ready.
    app.ok(
        "members.updateRoles",
        json!({ "user_id": member.user_id, "role_ids": [] }),
        &owner,
    )
    .await;
    let (_, list) = app
        .query("members.list", Some(json!({})), Some(owner.token.as_str()))
        .await;
    let shown = ready_self_member(&app, &member.token).await;
    assert_eq!(shown, listed(list));
    assert_eq!(shown["roles"].as_array().map(Vec::len), Some(1));
}

async fn protocol_errors_close_with_their_codes(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send_raw("this is not json").await;
    assert_eq!(ws.closed().await.0, 4002);

    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send_raw(r#"{"data": {}}"#).await;
    assert_eq!(ws.closed().await.0, 4002, "a frame without an event");

    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send("subscribe", json!({ "channel_id": uuid::Uuid::now_v7() }))
        .await;
    assert_eq!(ws.closed().await.0, 4003, "events before identify");

    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send("system.identify", json!({ "token": "not-a-token" }))
        .await;
    assert_eq!(ws.closed().await.0, 4004);

    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send(
        "system.identify",
        json!({ "token": owner.token, "protocol_version": 99 }),
    )
    .await;
    assert_eq!(ws.closed().await.0, 4010);

    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({})).await;
    ws.send("system.identify", json!({ "token": owner.token }))
        .await;
    assert_eq!(ws.closed().await.0, 4005, "a second identify");

    let mut ws = app.ws().await;
    ws.frame().await;
    let (code, reason) = ws.closed().await;
    assert_eq!((code, reason.as_str()), (4003, "Identify timeout"));

    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({})).await;
    let (code, reason) = ws.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (4009, "Heartbeat timeout"),
        "no heartbeat within the timeout"
    );
}

async fn channel_events_reach_only_subscribers_who_can_read(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    let open = app.channel(&owner, "open", "text").await;
    let hidden = app.ok("channels.create", json!({ "name": "hidden", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let mut ws = app.ws().await;
    let ready = ws.identify(&member.token, json!({})).await;
    assert_eq!(
        ready["channels"].as_array().map(Vec::len),
        Some(1),
        "ready lists only readable channels"
    );
    ws.send("subscribe", json!({ "channel_id": open["id"] }))
        .await;
    assert_eq!(
        ws.expect("subscribed").await["data"]["channel_id"],
        open["id"]
    );
    ws.send("subscribe", json!({ "channel_id": hidden["id"] }))
        .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": hidden["id"], "content": "secret" }),
        &owner,
    )
    .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": open["id"], "content": "public" }),
        &owner,
    )
    .await;
    let first = ws.expect("message.create").await;
    assert_eq!(
        first["data"]["content"], "public",
        "the hidden channel's message never arrives"
    );
    assert!(!ws.receives_within("subscribed", 300).await);

    // Losing READ_MESSAGES unsubscribes.
    app.ok("channels.update", json!({ "channel_id": open["id"], "permission_overrides": [
        { "target_type": "member", "target_id": member.user_id, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    // The dispatcher re-reads the member's rights before it applies the next event.
    ws.expect("permissions.update").await;
    app.ok(
        "messages.send",
        json!({ "channel_id": open["id"], "content": "after" }),
        &owner,
    )
    .await;
    assert!(
        !ws.receives_within("message.create", 800).await,
        "nothing more from a channel it cannot read"
    );

    ws.send("unsubscribe", json!({ "channel_id": open["id"] }))
        .await;
    assert_eq!(
        ws.expect("unsubscribed").await["data"]["channel_id"],
        open["id"]
    );
}

async fn server_and_user_events_respect_their_scope(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let other = app.register(&unique("oth"), "password-3").await;
    let channel = app.channel(&owner, "c", "text").await;
    let mut ws_member = app.ws().await;
    ws_member
        .identify(&member.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    let mut ws_other = app.ws().await;
    ws_other
        .identify(&other.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    app.ok("roles.create", json!({ "name": "everyone sees" }), &owner)
        .await;
    assert!(ws_member.receives_within("role.create", 2000).await);
    assert!(ws_other.receives_within("role.create", 2000).await);
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": format!("hi <@{}>", member.user_id) }),
        &owner,
    )
    .await;
    assert!(
        ws_member.receives_within("mention.create", 2000).await,
        "the mentioned user gets it"
    );
    assert!(
        !ws_other.receives_within("mention.create", 500).await,
        "nobody else does"
    );
}

async fn kicks_bans_and_revocations_close_sessions(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let leaver = app.register(&unique("left"), "password-5").await;
    let mut ws_l = app.ws().await;
    ws_l.identify(&leaver.token, json!({})).await;
    app.ok("server.leave", json!({}), &leaver).await;
    assert_eq!(
        ws_l.closed().await,
        (4003, "Left the server".to_string()),
        "a member who left hears nothing more of the server"
    );
    let kicked = app.register(&unique("kick"), "password-2").await;
    let banned = app.register(&unique("ban"), "password-3").await;
    let revoked = app.register(&unique("rev"), "password-4").await;
    let mut ws_owner = app.ws().await;
    ws_owner.identify(&owner.token, json!({})).await;
    let mut ws_k = app.ws().await;
    ws_k.identify(&kicked.token, json!({})).await;
    let mut ws_b = app.ws().await;
    ws_b.identify(&banned.token, json!({})).await;
    let mut ws_r = app.ws().await;
    ws_r.identify(&revoked.token, json!({})).await;
    app.ok("members.kick", json!({ "user_id": kicked.user_id }), &owner)
        .await;
    assert_eq!(ws_k.closed().await, (4003, "Kicked".to_string()));
    app.ok("members.ban", json!({ "user_id": banned.user_id }), &owner)
        .await;
    assert_eq!(ws_b.closed().await, (4003, "Banned".to_string()));
    app.ok("members.revokeSessions", json!({}), &revoked).await;
    assert_eq!(ws_r.closed().await.0, 4006);
    // A revoked token cannot identify again.
    let mut again = app.ws().await;
    again.frame().await;
    again
        .send("system.identify", json!({ "token": revoked.token }))
        .await;
    assert_eq!(again.closed().await.0, 4004);
    // The owner's socket is untouched.
    ws_owner.send("system.heartbeat", Value::Null).await;
    assert!(matches!(ws_owner.next(5).await, Incoming::Frame(_)));
}

async fn resume_replays_exactly_the_missed_events(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let channel = app.channel(&owner, "c", "text").await;
    let mut ws = app.ws().await;
    let ready = ws
        .identify(&member.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    let session_id = ready["session_id"].clone();
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "one" }),
        &owner,
    )
    .await;
    let one = ws.expect("message.create").await;
    let seen = one["seq"].as_u64().expect("seq");
    drop(ws);
    app.until_no_sessions(5).await;
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "two" }),
        &owner,
    )
    .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "three" }),
        &owner,
    )
    .await;

    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send(
        "system.identify",
        json!({ "token": member.token, "session_id": session_id, "resume_seq": seen }),
    )
    .await;
    let resumed = ws.expect("system.resumed").await;
    let contents: Vec<&str> = resumed["data"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == "message.create")
        .filter_map(|e| e["data"]["content"].as_str())
        .collect();
    assert_eq!(
        contents,
        vec!["two", "three"],
        "exactly the missed events, in order"
    );
    let seqs: Vec<u64> = resumed["data"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs.first() == Some(&(seen + 1)),
        "{seqs:?}"
    );
    // The resumed session keeps its subscriptions and sequence.
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "four" }),
        &owner,
    )
    .await;
    let four = ws.expect("message.create").await;
    assert_eq!(four["seq"].as_u64(), seqs.last().map(|s| s + 1));

    // A gap that cannot be served gets a normal ready.
    let mut ws2 = app.ws().await;
    ws2.frame().await;
    ws2.send(
        "system.identify",
        json!({ "token": member.token, "session_id": uuid::Uuid::now_v7(), "resume_seq": 3 }),
    )
    .await;
    assert_eq!(ws2.frame().await["event"], "system.ready");
}

/// Sessions whose sockets drop at the same moment have their checkpoints saved together
/// (the saver takes what is queued as one batch); each resumes with exactly the events it
/// missed, numbered on from its own sequence, and goes on from there.
async fn sessions_dropped_together_each_resume_exactly(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "together", "text").await;
    let send = |content: &'static str| {
        let input = json!({ "channel_id": channel["id"], "content": content });
        app.ok("messages.send", input, &owner)
    };
    let mut held = Vec::new();
    for i in 0..3 {
        let member = app
            .register(&unique(&format!("mem{i}")), "password-2")
            .await;
        for _ in 0..3 {
            let mut ws = app.ws().await;
            let ready = ws
                .identify(&member.token, json!({ "active_channel_id": channel["id"] }))
                .await;
            held.push((member.token.clone(), ready["session_id"].clone(), ws));
        }
    }
    send("one").await;
    let (mut dropped, mut sockets) = (Vec::new(), Vec::new());
    for (token, session_id, mut ws) in held {
        let one = ws.expect("message.create").await;
        dropped.push((token, session_id, one["seq"].as_u64().expect("seq")));
        sockets.push(ws);
    }
    drop(sockets);
    app.until_no_sessions(5).await;
    send("two").await;
    send("three").await;

    let mut resumed = Vec::new();
    for (token, session_id, seen) in &dropped {
        let mut ws = app.ws().await;
        let resume_seq = ws.resume(token, session_id, *seen, &["two", "three"]).await;
        resumed.push((resume_seq, ws));
    }
    send("four").await;
    futures_util::future::join_all(
        resumed
            .iter_mut()
            .map(|(resume_seq, ws)| ws.goes_on(*resume_seq, &["four"])),
    )
    .await;
}

async fn presence_follows_sessions_with_an_offline_grace(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let mut ws_owner = app.ws().await;
    ws_owner.identify(&owner.token, json!({})).await;
    let mut ws_member = app.ws().await;
    let ready = ws_member.identify(&member.token, json!({})).await;
    assert!(
        ready["presences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["user_id"] == owner.user_id.as_str() && p["status"] == "online"),
        "{ready}"
    );
    let online = ws_owner.expect("presence.update").await;
    let online = if online["data"]["user_id"] == member.user_id.as_str() {
        online
    } else {
        ws_owner.expect("presence.update").await
    };
    assert_eq!(online["data"]["user_id"], member.user_id.as_str());
    assert_eq!(online["data"]["status"], "online");
    let (_, info) = app.query("server.info", None, None).await;
    assert_eq!(info["result"]["data"]["online_count"], 2);

    ws_member
        .send(
            "presence.update",
            json!({ "status": "dnd", "custom_text": "focusing" }),
        )
        .await;
    let dnd = ws_owner.expect("presence.update").await;
    assert_eq!(
        (
            dnd["data"]["status"].as_str(),
            dnd["data"]["custom_text"].as_str()
        ),
        (Some("dnd"), Some("focusing"))
    );
    // A second change within 5 s is dropped; an invalid status is ignored.
    ws_member
        .send("presence.update", json!({ "status": "idle" }))
        .await;
    ws_member
        .send("presence.update", json!({ "status": "sleeping" }))
        .await;
    assert!(!ws_owner.receives_within("presence.update", 400).await);

    drop(ws_member);
    let offline = ws_owner.expect("presence.update").await;
    assert_eq!(
        (
            offline["data"]["user_id"].as_str(),
            offline["data"]["status"].as_str()
        ),
        (Some(member.user_id.as_str()), Some("offline"))
    );
    let (_, info) = app.query("server.info", None, None).await;
    assert_eq!(info["result"]["data"]["online_count"], 1);
}

async fn notify_pings_members_about_mentions(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let channel = app.channel(&owner, "c", "text").await;
    let mut notify = app.notify().await;
    assert_eq!(notify.frame().await["event"], "system.hello");
    notify
        .send("system.identify", json!({ "token": member.token }))
        .await;
    let ready = notify.frame().await;
    assert_eq!(ready["event"], "system.ready");
    assert!(ready["data"]["session_id"].is_string());
    notify.send("system.heartbeat", Value::Null).await;
    assert_eq!(notify.frame().await["event"], "system.heartbeat_ack");
    let mention =
        json!({ "channel_id": channel["id"], "content": format!("<@{}> look", member.user_id) });
    app.ok("messages.send", mention.clone(), &owner).await;
    let ping = notify.expect("notify").await;
    assert_eq!(ping["data"]["channel_id"], channel["id"]);
    assert_eq!(ping["data"]["type"], "mention");
    // `ts` is epoch milliseconds, as the reference sends it (the one timestamp on the wire
    // that is not ISO-8601; see PROTOCOL.md, Notify socket).
    let ts = ping["data"]["ts"].as_i64().expect("ts is a number");
    let now = chrono::Utc::now().timestamp_millis();
    assert!((now - 60_000..=now).contains(&ts), "epoch ms: {ts}");
    // Debounced: a second mention in the same channel within 2 s sends nothing.
    app.ok("messages.send", mention, &owner).await;
    assert!(!notify.receives_within("notify", 500).await);
    // A kick closes the member's notify socket as it closes their sessions.
    app.ok("members.kick", json!({ "user_id": member.user_id }), &owner)
        .await;
    assert_eq!(notify.closed().await, (4003, "Kicked".to_string()));
    // Not a member: refused (DECISIONS §3.12).
    let mut again = app.notify().await;
    again.frame().await;
    again
        .send("system.identify", json!({ "token": member.token }))
        .await;
    assert_eq!(again.closed().await.0, 4004);
    let mut early = app.notify().await;
    early.frame().await;
    early.send("system.heartbeat", Value::Null).await;
    assert_eq!(early.closed().await.0, 4003, "events before identify");
}

async fn dm_typing_reaches_the_peer_only(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let peer = app.register(&unique("peer"), "password-2").await;
    let third = app.register(&unique("thr"), "password-3").await;
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": true }),
        &owner,
    )
    .await;
    let sent = app
        .ok(
            "serverDms.send",
            json!({ "recipient_id": peer.user_id, "content": "hi" }),
            &owner,
        )
        .await;
    let conversation = sent["conversation_id"].clone();
    let mut ws_owner = app.ws().await;
    ws_owner.identify(&owner.token, json!({})).await;
    let mut ws_peer = app.ws().await;
    ws_peer.identify(&peer.token, json!({})).await;
    let mut ws_third = app.ws().await;
    ws_third.identify(&third.token, json!({})).await;
    ws_owner
        .send(
            "server_dm.typing",
            json!({ "conversation_id": conversation }),
        )
        .await;
    let typing = ws_peer.expect("server_dm.typing").await;
    assert_eq!(typing["data"]["user_id"], owner.user_id.as_str());
    assert_eq!(typing["data"]["conversation_id"], conversation);
    assert!(
        !ws_third.receives_within("server_dm.typing", 400).await,
        "nobody else hears it"
    );
    // Someone outside the conversation cannot type into it.
    ws_third
        .send(
            "server_dm.typing",
            json!({ "conversation_id": conversation }),
        )
        .await;
    assert!(!ws_peer.receives_within("server_dm.typing", 400).await);
}

both_profiles!(
    dm_typing_reaches_the_peer_only,
    notify_pings_members_about_mentions,
    presence_follows_sessions_with_an_offline_grace,
    hello_identify_ready_in_order,
    ready_shows_the_sessions_own_member_as_members_list_does,
    protocol_errors_close_with_their_codes,
    channel_events_reach_only_subscribers_who_can_read,
    server_and_user_events_respect_their_scope,
    kicks_bans_and_revocations_close_sessions,
    resume_replays_exactly_the_missed_events,
    sessions_dropped_together_each_resume_exactly,
);

on_redis_cluster!(
    channel_events_reach_only_subscribers_who_can_read,
    kicks_bans_and_revocations_close_sessions,
    resume_replays_exactly_the_missed_events,
    sessions_dropped_together_each_resume_exactly,
);

/// Two server processes sharing PostgreSQL and Redis: an event published through one reaches
/// a socket held by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_managed_instances() {
    events_cross_instances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_managed_instances_on_a_redis_cluster() {
    ecto_tests::on_redis_cluster(events_cross_instances()).await;
}

async fn events_cross_instances() {
    let a = TestApp::spawn(ecto_tests::Profile::Managed).await;
    let b = a.other_instance().await.expect("a managed deployment");
    let owner = a.register(&unique("own"), "password-1").await;
    let member = a.register(&unique("mem"), "password-2").await;
    let channel = a.channel(&owner, "shared", "text").await;
    let mut ws_b = b.ws().await;
    ws_b.identify(&member.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    a.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": "from A" }),
        &owner,
    )
    .await;
    let got = ws_b.expect("message.create").await;
    assert_eq!(got["data"]["content"], "from A");
    // A kick through B closes the socket held by B, and one held by A.
    let mut ws_a = a.ws().await;
    ws_a.identify(&member.token, json!({})).await;
    b.ok("members.kick", json!({ "user_id": member.user_id }), &owner)
        .await;
    assert_eq!(ws_a.closed().await.0, 4003);
    assert_eq!(ws_b.closed().await.0, 4003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_over_its_event_limit_is_closed_with_4008() {
    for profile in [
        ecto_tests::Profile::SelfHosted,
        ecto_tests::Profile::Managed,
    ] {
        let template = TestApp::spawn(profile).await;
        let mut config = template.config.clone();
        config.ws_events_per_10s = 5;
        let mut app = TestApp::start(profile, config, None, template.data_dir.clone()).await;
        app.server_address = template.server_address.clone();
        let owner = app.register(&unique("own"), "password-1").await;
        let mut ws = app.ws().await;
        ws.identify(&owner.token, json!({})).await;
        for _ in 0..10 {
            ws.send("system.heartbeat", Value::Null).await;
        }
        assert_eq!(
            ws.closed().await,
            (4008, "Rate limited".to_string()),
            "{profile:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_4011() {
    for profile in [
        ecto_tests::Profile::SelfHosted,
        ecto_tests::Profile::Managed,
    ] {
        let app = TestApp::spawn(profile).await;
        let owner = app.register(&unique("own"), "password-1").await;
        let mut ws = app.ws().await;
        ws.identify(&owner.token, json!({})).await;
        let mut notify = app.notify().await;
        notify.frame().await;
        notify
            .send("system.identify", json!({ "token": owner.token }))
            .await;
        notify.expect("system.ready").await;
        app.stop().await;
        assert_eq!(
            ws.closed().await,
            (4011, "Server shutting down".to_string()),
            "{profile:?}"
        );
        assert_eq!(notify.closed().await.0, 4011, "{profile:?}");
    }
}

/// Opens a raw upgrade on `path` (with `extra` request headers), writing `frames` in the same
/// write as the request head, and reads until `done` finds what it waits for in the answer's
/// head and the frames so far (`(opcode, payload)`); panics when the socket ends or 5 s pass.
async fn raw_upgrade<T>(
    addr: &str,
    path: &str,
    extra: &str,
    frames: &[u8],
    mut done: impl FnMut(&str, &[(u8, Vec<u8>)]) -> Option<T>,
) -> T {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(frames);
    tcp.write_all(&request).await.expect("handshake");
    let mut seen = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut buf = [0u8; 8192];
        loop {
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "{path}: the socket ended first");
            seen.extend_from_slice(&buf[..n]);
            let Some(head_end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&seen[..head_end]).to_string();
            let mut frames = Vec::new();
            let mut at = head_end + 4;
            while seen.len() >= at + 2 {
                let (op, len) = (seen[at] & 0x0F, (seen[at + 1] & 0x7F) as usize);
                let (skip, len) = match len {
                    126 if seen.len() >= at + 4 => {
                        (4, u16::from_be_bytes([seen[at + 2], seen[at + 3]]) as usize)
                    }
                    126 => break,
                    _ => (2, len),
                };
                if seen.len() < at + skip + len {
                    break;
                }
                frames.push((op, seen[at + skip..at + skip + len].to_vec()));
                at += skip + len;
            }
            if let Some(found) = done(&head, &frames) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{path}: not seen within 5 s"))
}

/// Opens a raw upgrade on `path`, writes `frames` with it, and returns the code of the close
/// frame the server answers with.
async fn close_code_after(addr: &str, path: &str, frames: &[u8]) -> u16 {
    raw_upgrade(addr, path, "", frames, |_, frames| {
        frames
            .iter()
            .find(|(op, _)| *op == 8)
            .map(|(_, p)| u16::from_be_bytes([p[0], p[1]]))
    })
    .await
}

/// WebSocket upgrades are answered before the app, yet like any request: the 101 carries the
/// client's `X-Request-Id` and is followed by `system.hello` (a frame the client sent with its
/// request head is read too: a ping gets its pong); an upgrade to a path that is no socket
/// gets 404, and `/ws` without an upgrade 400, each with a request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_are_answered_like_any_request() {
    let app = TestApp::spawn(ecto_tests::Profile::SelfHosted).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for path in ["/ws", "/notify"] {
        let ping = client_frame(0x89, b"early");
        let (head, frames) = raw_upgrade(
            &addr,
            path,
            "X-Request-Id: probe-1\r\n",
            &ping,
            |head, frames| {
                frames
                    .iter()
                    .any(|(op, _)| *op == 0xA)
                    .then(|| (head.to_owned(), frames.to_vec()))
            },
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 101"), "{path}: {head}");
        assert!(
            head.to_ascii_lowercase().contains("x-request-id: probe-1"),
            "{path}: {head}"
        );
        let (op, hello) = &frames[0];
        assert_eq!(*op, 1, "{path}: the hello comes first");
        let hello: Value = serde_json::from_slice(hello).expect("json");
        assert_eq!(hello["event"], "system.hello", "{path}");
        assert!(
            frames.contains(&(0xA, b"early".to_vec())),
            "{path}: {frames:?}"
        );
    }
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    let mut elsewhere = app.http.get(format!("{}/trpc/server.info", app.base));
    for (name, value) in upgrade {
        elsewhere = elsewhere.header(name, value);
    }
    let res = elsewhere.send().await.expect("send");
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("x-request-id"));
    let res = app
        .http
        .get(format!("{}/ws", app.base))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400);
    assert!(res.headers().contains_key("x-request-id"));
}

/// A client's close is echoed with its code (RFC 6455 §5.5.1), on `/ws` and `/notify`, so a
/// browser's close event reports the code it sent rather than 1005 (no status).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_echoed_with_its_code() {
    let app = TestApp::spawn(ecto_tests::Profile::SelfHosted).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for path in ["/ws", "/notify"] {
        for code in [1000u16, 4321] {
            let close = client_frame(0x88, &code.to_be_bytes());
            assert_eq!(close_code_after(&addr, path, &close).await, code, "{path}");
        }
    }
}

/// A client frame (masked with a zero key, so the payload goes as it is).
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first_byte];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// A frame whose header announces more than the 64 KiB limit is refused at its header: the
/// socket is closed with 4002 while most of the frame has not even been sent, instead of the
/// server waiting for (and buffering) all of it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_refused_at_its_header() {
    let app = TestApp::spawn(ecto_tests::Profile::SelfHosted).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for path in ["/ws", "/notify"] {
        // A masked text frame announcing 16 MiB, of which only 64 KiB are sent.
        let mut frame = vec![0x81u8, 0x80 | 127];
        frame.extend_from_slice(&(16u64 << 20).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend(std::iter::repeat_n(b'x', 64 * 1024));
        let code = close_code_after(&addr, path, &frame).await;
        assert_eq!(code, 4002, "{path}");
    }
}

/// A message sent in fragments, each under the limit, is held to the same limit as a single
/// frame: a heartbeat of 80 KiB in five fragments closes the socket with 4002 (invalid
/// payload) instead of being gathered and read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_message_over_the_limit_is_refused() {
    let app = TestApp::spawn(ecto_tests::Profile::SelfHosted).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let message = format!(
        r#"{{"event":"system.heartbeat","data":{{"pad":"{}"}}}}"#,
        "x".repeat(80 * 1024)
    );
    let pieces: Vec<&[u8]> = message.as_bytes().chunks(16 * 1024).collect();
    let mut frames = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
        frames.extend(client_frame(fin | opcode, piece));
    }
    assert_eq!(close_code_after(&addr, "/ws", &frames).await, 4002);
    // The same heartbeat under the limit, in fragments, is gathered and read as a message:
    // before identify, that is 4003 (not authenticated), not a refused frame.
    let small = r#"{"event":"system.heartbeat","data":{}}"#.as_bytes();
    let (a, b) = small.split_at(10);
    let frames = [client_frame(0x01, a), client_frame(0x80, b)].concat();
    assert_eq!(close_code_after(&addr, "/ws", &frames).await, 4003);
}
