//! The gateway beyond one socket: every event reaches exactly its scope, a slow socket is
//! closed and resumes, and a session resumes on another managed instance with nothing lost or
//! duplicated.

use ecto_core::permissions::bits;
use ecto_core::ports::{Event, Scope};
use ecto_tests::ws::WsClient;
use ecto_tests::{both_profiles, on_redis_cluster, unique, Profile, Session, TestApp};
use serde_json::{json, Value};

/// `event` reaches the sockets marked true (within 3 s) and none of the others (checked after
/// every receiver saw it, so the dispatcher has handled it for everyone).
async fn reaches(sockets: &mut [&mut WsClient], event: &str, reach: &[bool]) {
    // The test config's heartbeat timeout is short: keep every socket alive.
    for ws in sockets.iter_mut() {
        ws.send("system.heartbeat", Value::Null).await;
    }
    for (i, ws) in sockets.iter_mut().enumerate() {
        if reach[i] {
            assert!(
                ws.receives_within(event, 3000).await,
                "{event} reaches session {i}"
            );
        }
    }
    for (i, ws) in sockets.iter_mut().enumerate() {
        if !reach[i] {
            assert!(
                !ws.receives_within(event, 300).await,
                "{event} must not reach session {i}"
            );
        }
    }
}

/// Sessions: alice is subscribed to the channel, bob can read it but is not subscribed, dave
/// cannot read it (and asked to subscribe anyway).
async fn every_event_reaches_its_scope_and_no_other(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let alice = app.register(&unique("ali"), "password-2").await;
    let bob = app.register(&unique("bob"), "password-3").await;
    let dave = app.register(&unique("dav"), "password-4").await;
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": true }),
        &owner,
    )
    .await;
    let channel = app.ok("channels.create", json!({ "name": "scoped", "type": "text", "permission_overrides": [
        { "target_type": "member", "target_id": dave.user_id, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let mut ws_a = app.ws().await;
    ws_a.identify(&alice.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    let mut ws_b = app.ws().await;
    ws_b.identify(&bob.token, json!({})).await;
    let mut ws_d = app.ws().await;
    ws_d.identify(&dave.token, json!({})).await;
    ws_d.send("subscribe", json!({ "channel_id": channel["id"] }))
        .await;
    let mut all = [&mut ws_a, &mut ws_b, &mut ws_d];
    let everyone = [true, true, true];
    let subscribers = [true, false, false];

    // Server scope.
    app.channel(&owner, "more", "text").await;
    reaches(&mut all, "channel.create", &everyone).await;
    app.ok("categories.create", json!({ "name": "cat" }), &owner)
        .await;
    reaches(&mut all, "category.create", &everyone).await;
    let role = app.ok("roles.create", json!({ "name": "r" }), &owner).await;
    reaches(&mut all, "role.create", &everyone).await;
    app.ok(
        "roles.update",
        json!({ "role_id": role["id"], "name": "r2" }),
        &owner,
    )
    .await;
    reaches(&mut all, "role.update", &everyone).await;
    app.ok(
        "members.updateNickname",
        json!({ "user_id": bob.user_id, "nickname": "bobby" }),
        &owner,
    )
    .await;
    reaches(&mut all, "member.update", &everyone).await;
    app.ok("server.update", json!({ "name": "renamed" }), &owner)
        .await;
    reaches(&mut all, "server.update", &everyone).await;

    // Channel scope: subscribers who can read.
    let msg = app
        .ok(
            "messages.send",
            json!({ "channel_id": channel["id"], "content": "hello" }),
            &owner,
        )
        .await;
    reaches(&mut all, "message.create", &subscribers).await;
    app.ok(
        "messages.update",
        json!({ "message_id": msg["id"], "content": "edited" }),
        &owner,
    )
    .await;
    reaches(&mut all, "message.update", &subscribers).await;
    app.ok(
        "messages.react",
        json!({ "message_id": msg["id"], "emoji": "🎉", "action": "add" }),
        &alice,
    )
    .await;
    reaches(&mut all, "message.reaction_update", &subscribers).await;
    app.ok(
        "messages.pin",
        json!({ "message_id": msg["id"], "pinned": true }),
        &owner,
    )
    .await;
    // Pinning updates the message (and posts a PIN_ADDED system message).
    reaches(&mut all, "message.update", &subscribers).await;
    app.ok(
        "messages.delete",
        json!({ "message_id": msg["id"] }),
        &owner,
    )
    .await;
    reaches(&mut all, "message.delete", &subscribers).await;
    all[0]
        .send("typing.start", json!({ "channel_id": channel["id"] }))
        .await;
    reaches(&mut all, "typing.start", &subscribers).await;

    // User scope: the mentioned user, the DM's participants.
    app.ok(
        "messages.send",
        json!({ "channel_id": channel["id"], "content": format!("hey <@{}>", bob.user_id) }),
        &owner,
    )
    .await;
    reaches(&mut all, "mention.create", &[false, true, false]).await;
    app.ok(
        "serverDms.send",
        json!({ "recipient_id": bob.user_id, "content": "psst" }),
        &alice,
    )
    .await;
    reaches(&mut all, "server_dm.message", &[true, true, false]).await;
}

both_profiles!(every_event_reaches_its_scope_and_no_other);
on_redis_cluster!(every_event_reaches_its_scope_and_no_other);

/// A socket whose client stops reading is closed once its queue is full, instead of buffering
/// without bound, and its session resumes with exactly the events it did not get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_socket_is_closed_and_resumes_without_loss() {
    for profile in [Profile::SelfHosted, Profile::Managed] {
        let template = TestApp::spawn(profile).await;
        let mut config = template.config.clone();
        config.ws_outbound_queue = 16;
        let mut app = TestApp::start(profile, config, None, template.data_dir.clone()).await;
        app.server_address = template.server_address.clone();
        let member = app.register(&unique("slow"), "password-1").await;
        let server_id = uuid::Uuid::parse_str(&app.server_id().await).expect("server id");
        let mut ws = app.ws().await;
        let ready = ws.identify(&member.token, json!({})).await;
        let session_id = ready["session_id"].clone();
        // 400 events of 64 KiB: far more than the socket's queue and the kernel's buffers.
        let filler = "x".repeat(64 * 1024);
        let total = 400u64;
        for i in 0..total {
            app.services
                .events
                .publish(Event::new(
                    server_id,
                    Scope::Server,
                    "test.bulk",
                    json!({ "i": i, "filler": filler }),
                ))
                .await
                .expect("publish");
        }
        // The server lets go of the session rather than holding every frame.
        app.until_no_sessions(10).await;
        // The client reads what reached it, then resumes from its last seq.
        let got = ws.frames_within(3000).await;
        let seqs: Vec<u64> = got.iter().filter_map(|f| f["seq"].as_u64()).collect();
        assert!(
            (seqs.len() as u64) < total,
            "{profile:?}: the queue was bounded"
        );
        assert!(
            seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1),
            "{profile:?}: frames arrive in order without holes"
        );
        let last = seqs.last().copied().unwrap_or(0);
        let mut ws = app.ws().await;
        ws.frame().await;
        ws.send(
            "system.identify",
            json!({ "token": member.token, "session_id": session_id, "resume_seq": last }),
        )
        .await;
        let resumed = ws.expect("system.resumed").await;
        let replayed = resumed["data"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let replayed_seqs: Vec<u64> = replayed.iter().filter_map(|f| f["seq"].as_u64()).collect();
        assert_eq!(
            replayed_seqs,
            (last + 1..last + 1 + replayed.len() as u64).collect::<Vec<_>>(),
            "{profile:?}: the replay continues the sequence"
        );
        let bulk = |frames: &[Value]| -> Vec<u64> {
            frames
                .iter()
                .filter(|f| f["event"] == "test.bulk")
                .filter_map(|f| f["data"]["i"].as_u64())
                .collect()
        };
        let mut every = bulk(&got);
        every.extend(bulk(&replayed));
        assert_eq!(
            every,
            (0..total).collect::<Vec<_>>(),
            "{profile:?}: every event exactly once, in order"
        );
    }
}

/// Two managed instances sharing PostgreSQL and Redis: a client whose instance stops resumes
/// on the other with exactly the events it missed, and goes on without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_another_instance() {
    resumes_on_another_instance().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_another_instance_on_a_redis_cluster() {
    ecto_tests::on_redis_cluster(resumes_on_another_instance()).await;
}

async fn resumes_on_another_instance() {
    let a = TestApp::spawn(Profile::Managed).await;
    let b = a.other_instance().await.expect("a managed deployment");
    let owner = a.register(&unique("own"), "password-1").await;
    let member = a.register(&unique("mem"), "password-2").await;
    let channel = a.channel(&owner, "moving", "text").await;
    async fn send(app: &TestApp, owner: &Session, channel: &Value, content: &str) {
        let input = json!({ "channel_id": channel["id"], "content": content });
        app.ok("messages.send", input, owner).await;
    }
    let mut ws_a = a.ws().await;
    let ready = ws_a
        .identify(&member.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    let session_id = ready["session_id"].clone();
    send(&a, &owner, &channel, "one").await;
    let one = ws_a.expect("message.create").await;
    let seen = one["seq"].as_u64().expect("seq");
    // Instance A goes away (sockets close with 4011); messages keep coming through B.
    a.stop().await;
    assert_eq!(ws_a.closed().await.0, 4011);
    send(&b, &owner, &channel, "two").await;
    send(&b, &owner, &channel, "three").await;

    let mut ws_b = b.ws().await;
    let resume_seq = ws_b
        .resume(&member.token, &session_id, seen, &["two", "three"])
        .await;
    // The session goes on on B: same subscriptions, the next seqs, nothing twice.
    send(&b, &owner, &channel, "four").await;
    ws_b.goes_on(resume_seq, &["four"]).await;
}
