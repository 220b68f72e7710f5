//! Client fidelity: the flows the real Ecto client relies on, as the reference (and
//! DECISIONS) specify them: resume with only `resume_seq`, 403 2002 for someone who is no
//! longer a member, typing from a reader who did not subscribe, ISO-8601 timestamps, error
//! codes that name the right thing, strict input schemas, and 8002 when voice is off.

use ecto_core::permissions::bits;
use ecto_tests::ws::WsClient;
use ecto_tests::{both_profiles, unique, Call, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const FORBIDDEN_2002: (StatusCode, Option<i64>) = (StatusCode::FORBIDDEN, Some(2002));

/// Sends `content` to `channel` as `s` and returns the message.
async fn say(app: &TestApp, s: &Session, channel: &Value, content: &str) -> Value {
    let input = json!({ "channel_id": channel["id"], "content": content });
    app.ok("messages.send", input, s).await
}

/// Reads frames until the `message.create` of `content`; returns its seq.
async fn seq_of(ws: &mut WsClient, content: &str) -> u64 {
    loop {
        let f = ws.expect("message.create").await;
        if f["data"]["content"] == content {
            return f["seq"].as_u64().expect("seq");
        }
    }
}

/// Identifies a new socket with only `resume_seq` (as the Ecto client does) and returns the
/// first answer that is `system.resumed` or `system.ready`.
async fn resume(app: &TestApp, token: &str, resume_seq: u64) -> (WsClient, Value) {
    let mut ws = app.ws().await;
    let hello = ws.frame().await;
    assert_eq!(hello["event"], "system.hello");
    ws.send(
        "system.identify",
        json!({ "token": token, "protocol_version": 1, "resume_seq": resume_seq }),
    )
    .await;
    loop {
        let f = ws.frame().await;
        if f["event"] == "system.resumed" || f["event"] == "system.ready" {
            return (ws, f);
        }
    }
}

/// The `message.create` contents of a resume's events, and whether the seqs run on without a
/// gap from `after`.
fn replayed(resumed: &Value, after: u64) -> Vec<String> {
    let events = resumed["data"]["events"].as_array().expect("events");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (after + 1..after + 1 + events.len() as u64).collect::<Vec<_>>(),
        "numbered right after what the client saw: {resumed}"
    );
    assert_eq!(
        resumed["data"]["resume_seq"].as_u64(),
        Some(after + events.len() as u64),
        "resume_seq is the last seq replayed"
    );
    events
        .iter()
        .filter(|e| e["event"] == "message.create")
        .map(|e| e["data"]["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Two tabs of one user read different channels and both drop; each reconnects with only its
/// `resume_seq` and gets exactly its own missed events, never the other tab's: tab x first,
/// whose seq only its own session reaches, then tab y, whose session is the only detached one
/// left.
async fn a_client_resumes_with_only_its_resume_seq(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let x = app.channel(&owner, "x", "text").await;
    let y = app.channel(&owner, "y", "text").await;
    let mut tab_x = app.ws().await;
    tab_x
        .identify(&member.token, json!({ "active_channel_id": x["id"] }))
        .await;
    let mut tab_y = app.ws().await;
    tab_y
        .identify(&member.token, json!({ "active_channel_id": y["id"] }))
        .await;
    say(&app, &owner, &x, "x1").await;
    say(&app, &owner, &x, "x2").await;
    say(&app, &owner, &y, "y1").await;
    seq_of(&mut tab_x, "x1").await;
    let seen_x = seq_of(&mut tab_x, "x2").await;
    let seen_y = seq_of(&mut tab_y, "y1").await;
    assert!(seen_x > seen_y, "the tabs' numberings differ");
    tab_x.drop_connection();
    tab_y.drop_connection();
    app.until_no_sessions(5).await;
    say(&app, &owner, &x, "x3").await;
    say(&app, &owner, &y, "y2").await;

    // Only tab x's session had been sent `seen_x` events; once it is resumed, tab y's is the
    // only detached one left.
    let (mut again_x, resumed) = resume(&app, &member.token, seen_x).await;
    assert_eq!(resumed["event"], "system.resumed", "{resumed}");
    assert_eq!(
        replayed(&resumed, seen_x),
        vec!["x3"],
        "tab x's events only"
    );
    let (mut again_y, resumed_y) = resume(&app, &member.token, seen_y).await;
    assert_eq!(resumed_y["event"], "system.resumed", "{resumed_y}");
    assert_eq!(
        replayed(&resumed_y, seen_y),
        vec!["y2"],
        "tab y's events only"
    );

    // Both sessions go on live, with their own subscriptions and numbering.
    say(&app, &owner, &y, "y3").await;
    let last_y = resumed_seq(&resumed_y);
    goes_on_from(&mut again_y, last_y, "y3").await;
    say(&app, &owner, &x, "x4").await;
    goes_on_from(&mut again_x, resumed_seq(&resumed), "x4").await;

    // Nothing detached is left to serve a later seq: a normal ready.
    let (_, answer) = resume(&app, &member.token, 10_000).await;
    assert_eq!(answer["event"], "system.ready", "{answer}");
    assert!(answer["data"]["channels"].is_array());
}

fn resumed_seq(resumed: &Value) -> u64 {
    resumed["data"]["resume_seq"].as_u64().expect("resume_seq")
}

/// The seq of the `channel.create` of `channel` on `ws`.
async fn seq_of_channel(ws: &mut WsClient, channel: &Value) -> u64 {
    loop {
        let f = ws.expect("channel.create").await;
        if f["data"]["id"] == channel["id"] {
            return f["seq"].as_u64().expect("seq");
        }
    }
}

/// Two tabs of one user whose numberings overlap: tab a was sent two events it never received
/// (lost in flight when its socket dropped), tab b was sent and saw one event more than tab a
/// saw. Tab a's `resume_seq` could then be either session's, so its reconnect gets a new
/// session (`system.ready`) and never tab b's events; tab b's reconnect too, since tab a's
/// session had been sent more than tab b saw.
async fn overlapping_tabs_get_a_new_session_not_each_others_events(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let x = app.channel(&owner, "x", "text").await;
    let y = app.channel(&owner, "y", "text").await;
    let mut tab_a = app.ws().await;
    tab_a
        .identify(&member.token, json!({ "active_channel_id": x["id"] }))
        .await;
    let mut tab_b = app.ws().await;
    tab_b
        .identify(&member.token, json!({ "active_channel_id": y["id"] }))
        .await;
    // A server event both tabs receive tells where each numbering stands.
    let mark = app.channel(&owner, "mark", "text").await;
    let a0 = seq_of_channel(&mut tab_a, &mark).await;
    let b0 = seq_of_channel(&mut tab_b, &mark).await;
    // Tab a is sent `a0 + n_a` events and sees `a0 + n_a - 2`; tab b is sent and sees one
    // more than that.
    let n_a = 3 + b0.saturating_sub(a0);
    let seen_a = a0 + n_a - 2;
    let n_b = seen_a + 1 - b0;
    for i in 0..n_a {
        say(&app, &owner, &x, &format!("a{i}")).await;
    }
    // Sent after tab a's: once tab b has them, tab a's were sent to its socket.
    for i in 0..n_b {
        say(&app, &owner, &y, &format!("b{i}")).await;
    }
    let seen_b = seq_of(&mut tab_b, &format!("b{}", n_b - 1)).await;
    assert_eq!(seen_b, seen_a + 1, "tab b saw one more than tab a will");
    assert_eq!(
        seq_of(&mut tab_a, &format!("a{}", n_a - 3)).await,
        seen_a,
        "tab a's last two events are still in flight"
    );
    tab_a.drop_connection();
    tab_b.drop_connection();
    app.until_no_sessions(5).await;

    // Tab a: both sessions had been sent at least `seen_a` events.
    let (mut again_a, answer) = resume(&app, &member.token, seen_a).await;
    assert_eq!(
        answer["event"], "system.ready",
        "an ambiguous resume_seq gets a new session: {answer}"
    );
    assert!(answer["data"]["channels"].is_array());
    let later = again_a.frames_within(500).await;
    for f in &later {
        assert_ne!(f["event"], "system.resumed", "{f}");
        assert!(
            !f["data"]["content"]
                .as_str()
                .is_some_and(|c| c.starts_with('b')),
            "tab b's events never reach tab a: {f}"
        );
    }
    // Tab b: tab a's detached session had been sent more than tab b saw.
    let (_, answer_b) = resume(&app, &member.token, seen_b).await;
    assert_eq!(answer_b["event"], "system.ready", "{answer_b}");
}

/// Calls that need membership, with valid inputs for `channel`.
fn membership_calls(channel: &str) -> Vec<(Call, &'static str, Value)> {
    vec![
        (Call::Query, "channels.list", json!({})),
        (
            Call::Query,
            "messages.list",
            json!({ "channel_id": channel }),
        ),
        (
            Call::Mutation,
            "messages.send",
            json!({ "channel_id": channel, "content": "hi" }),
        ),
        (Call::Query, "members.list", json!({})),
        (Call::Query, "roles.list", json!({})),
        (Call::Query, "invites.list", json!({})),
        (Call::Query, "read_state.list", json!({})),
        (Call::Mutation, "read_state.markAllRead", json!({})),
        (Call::Query, "activity.list", json!({})),
        (Call::Query, "activity.unreadCount", json!({})),
        (Call::Query, "serverDms.list", json!({})),
        (Call::Query, "hubFiles.getStorageQuota", json!({})),
        (Call::Query, "search.search", json!({ "query": "hi" })),
        (
            Call::Query,
            "pages.getContent",
            json!({ "channel_id": channel }),
        ),
        (
            Call::Mutation,
            "members.updateDmPreference",
            json!({ "allow_dms": false }),
        ),
        (Call::Mutation, "server.leave", json!({})),
        (Call::Query, "serverConfig.get", json!({})),
    ]
}

/// After `server.leave`, a kick or a ban the token still proves who the caller is: every
/// membership-requiring call answers 403 2002; bad, revoked and expired tokens stay 401.
async fn a_former_member_is_forbidden_not_unauthenticated(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "general", "text").await;
    let ch = channel["id"].as_str().expect("id").to_owned();
    let left = app.register(&unique("lft"), "password-2").await;
    let kicked = app.register(&unique("kck"), "password-3").await;
    let banned = app.register(&unique("ban"), "password-4").await;
    app.ok("server.leave", json!({}), &left).await;
    app.ok("members.kick", json!({ "user_id": kicked.user_id }), &owner)
        .await;
    app.ok("members.ban", json!({ "user_id": banned.user_id }), &owner)
        .await;
    for former in [&left, &kicked, &banned] {
        for (call, proc_, input) in membership_calls(&ch) {
            assert_eq!(
                app.outcome(call, proc_, input, Some(&former.token)).await,
                FORBIDDEN_2002,
                "{proc_} by a former member"
            );
        }
    }
    // A former member's socket identify is refused as before.
    let mut ws = app.ws().await;
    ws.frame().await;
    ws.send("system.identify", json!({ "token": left.token }))
        .await;
    assert_eq!(ws.closed().await, (4004, "Not a member".to_owned()));

    // Bad and revoked tokens are still 401.
    let member = app.register(&unique("mem"), "password-5").await;
    app.ok("members.revokeSessions", json!({}), &member).await;
    for token in ["not-a-token", member.token.as_str()] {
        assert_eq!(
            app.outcome(Call::Query, "channels.list", json!({}), Some(token))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }

    // An expired token is 401, a member's and a former member's alike (never 403 2002), on
    // HTTP and on /ws.
    let current = app.register(&unique("cur"), "password-6").await;
    app.get("channels.list", json!({}), &current).await;
    for token in [expired(&app, &current.token), expired(&app, &left.token)] {
        let (status, code) = app
            .outcome(Call::Query, "channels.list", json!({}), Some(&token))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an expired token");
        assert_ne!(code, Some(2002));
        let mut ws = app.ws().await;
        ws.frame().await;
        ws.send("system.identify", json!({ "token": token })).await;
        assert_eq!(ws.closed().await.0, 4004, "an expired token");
    }
}

/// `token` (an access token this server issued) signed again by the server's own issuer with
/// the same claims, but expired five seconds ago.
fn expired(app: &TestApp, token: &str) -> String {
    let mut claims = app
        .services
        .tokens
        .verify_access(token)
        .expect("a valid access token");
    claims.expires_at = chrono::Utc::now().timestamp() - 5;
    claims.issued_at = claims.expires_at - 900;
    app.services.tokens.issue_access(&claims).expect("signed")
}

/// A member who can read a channel but did not subscribe to it still types into it; one who
/// cannot read it does not. Typing timestamps are ISO-8601, in channels and in DMs.
async fn typing_needs_reading_not_subscribing(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let reader = app.register(&unique("rdr"), "password-2").await;
    let outsider = app.register(&unique("out"), "password-3").await;
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": true }),
        &owner,
    )
    .await;
    let channel = app.ok("channels.create", json!({ "name": "typing", "type": "text", "permission_overrides": [
        { "target_type": "member", "target_id": outsider.user_id, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let mut watcher = app.ws().await;
    watcher
        .identify(&owner.token, json!({ "active_channel_id": channel["id"] }))
        .await;
    let mut typer = app.ws().await;
    typer.identify(&reader.token, json!({})).await;
    let mut hidden = app.ws().await;
    hidden.identify(&outsider.token, json!({})).await;

    // The outsider's frame goes first and the reader's second; whichever the server handles
    // first, the watcher hears the reader only.
    for event in ["typing.start", "typing.stop"] {
        hidden
            .send(event, json!({ "channel_id": channel["id"] }))
            .await;
        typer
            .send(event, json!({ "channel_id": channel["id"] }))
            .await;
        let typing = watcher.expect(event).await;
        assert_eq!(
            typing["data"]["user_id"],
            reader.user_id.as_str(),
            "{typing}"
        );
        assert_eq!(typing["data"]["channel_id"], channel["id"]);
        if event == "typing.start" {
            iso(&typing["data"]["timestamp"]);
        }
        no_typing_within(&mut watcher, 500).await;
    }

    // DM typing reaches the peer with an ISO-8601 timestamp.
    let dm = app
        .ok(
            "serverDms.send",
            json!({ "recipient_id": owner.user_id, "content": "hi" }),
            &reader,
        )
        .await;
    typer
        .send(
            "server_dm.typing",
            json!({ "conversation_id": dm["conversation_id"] }),
        )
        .await;
    let dm_typing = watcher.expect("server_dm.typing").await;
    iso(&dm_typing["data"]["timestamp"]);
}

/// Panics if a `typing.*` frame reaches `ws` within `millis`.
async fn no_typing_within(ws: &mut WsClient, millis: u64) {
    for f in ws.frames_within(millis).await {
        let event = f["event"].as_str().unwrap_or("");
        assert!(!event.starts_with("typing."), "no other typing frame: {f}");
    }
}

/// Panics unless `v` is an ISO-8601 timestamp as JavaScript writes them.
fn iso(v: &Value) {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(text.ends_with('Z') && text.len() == 24, "{text}");
}

/// Acting on someone who is not a member of this server is 403 2002, as the reference's
/// `requireMember` answers, whatever the procedure.
async fn acting_on_a_non_member_is_forbidden_2002(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let gone = app.register(&unique("gon"), "password-2").await;
    app.ok("server.leave", json!({}), &gone).await;
    let stranger = uuid::Uuid::now_v7().to_string();
    for user in [gone.user_id.as_str(), stranger.as_str()] {
        for (proc_, input) in [
            ("members.kick", json!({ "user_id": user })),
            (
                "members.updateNickname",
                json!({ "user_id": user, "nickname": "x" }),
            ),
            (
                "members.updateRoles",
                json!({ "user_id": user, "role_ids": [] }),
            ),
        ] {
            assert_eq!(
                app.outcome(Call::Mutation, proc_, input, Some(&owner.token))
                    .await,
                FORBIDDEN_2002,
                "{proc_} of a non-member"
            );
        }
    }
    // A ban needs no membership: someone can be banned before they join.
    app.ok("members.ban", json!({ "user_id": stranger }), &owner)
        .await;
}

/// Inputs are held to the reference's schemas: a nullable key without `.optional()` must be
/// present, ids are RFC 4122 UUIDs, and a DM to yourself is 6003 before DMs are checked.
async fn inputs_follow_the_reference_schemas(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let token = Some(owner.token.as_str());
    let bad = (StatusCode::BAD_REQUEST, None);
    assert_eq!(
        app.outcome(Call::Query, "hubFiles.listFolders", json!({}), token)
            .await,
        bad,
        "parent_id is required"
    );
    assert_eq!(
        app.outcome(
            Call::Query,
            "hubFiles.listFolders",
            json!({ "parent_id": null }),
            token
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.outcome(Call::Query, "hubFiles.listSharedFiles", json!({}), token)
            .await,
        bad,
        "folder_id is required"
    );
    assert_eq!(
        app.outcome(
            Call::Mutation,
            "hubFiles.createFolder",
            json!({ "name": "docs" }),
            token
        )
        .await,
        bad,
        "parent_id is required"
    );
    let page = app.channel(&owner, "wiki", "page").await;
    assert_eq!(
        app.outcome(
            Call::Mutation,
            "pages.updateBanner",
            json!({ "channel_id": page["id"] }),
            token
        )
        .await,
        bad,
        "banner_url is required"
    );
    assert_eq!(
        app.outcome(
            Call::Mutation,
            "pages.updateBanner",
            json!({ "channel_id": page["id"], "banner_url": null }),
            token
        )
        .await
        .0,
        StatusCode::OK
    );
    for id in [
        "0190a4b2-7c3e-0d4f-8a1b-2c3d4e5f6a7b",
        "0190a4b2-7c3e-7d4f-ca1b-2c3d4e5f6a7b",
        "0190a4b27c3e7d4f8a1b2c3d4e5f6a7b",
        "{0190a4b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b}",
    ] {
        assert_eq!(
            app.outcome(
                Call::Query,
                "messages.list",
                json!({ "channel_id": id }),
                token
            )
            .await,
            bad,
            "{id} is not an RFC 4122 UUID"
        );
    }
    assert_eq!(
        app.outcome(
            Call::Query,
            "messages.list",
            json!({ "channel_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479" }),
            token
        )
        .await,
        (StatusCode::NOT_FOUND, Some(3000)),
        "a well-formed unknown id is looked up"
    );
    // DMs are off by default: talking to yourself is still the first thing refused.
    assert_eq!(
        app.outcome(
            Call::Mutation,
            "serverDms.send",
            json!({ "recipient_id": owner.user_id, "content": "me" }),
            token
        )
        .await,
        (StatusCode::BAD_REQUEST, Some(6003))
    );
}

/// With voice turned off (`VOICE_ENABLED=false`) `voice.join` of a voice channel the member
/// may join answers `voice.error {code: 8002, message: 'Voice server unavailable'}` (issue
/// item 8), and the member is not in voice afterwards.
async fn voice_join_answers_8002_when_voice_is_off(app: TestApp) {
    let app = TestApp::spawn_with(app.profile, |c| c.voice_enabled = false).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let channel = app.channel(&owner, "talk", "voice").await;
    let mut ws = app.ws().await;
    ws.identify(&owner.token, json!({})).await;
    ws.send("voice.join", json!({ "channel_id": channel["id"] }))
        .await;
    let error = ws.expect("voice.error").await;
    assert_eq!(
        error["data"],
        json!({ "code": 8002, "message": "Voice server unavailable" })
    );
    assert!(error.get("seq").is_none(), "a direct reply: {error}");
    assert!(!ws.receives_within("voice.state_update", 300).await);
    let mut again = app.ws().await;
    let ready = again.identify(&owner.token, json!({})).await;
    assert_eq!(ready["voice_states"], json!([]), "nobody is in voice");
}

/// The reference's connect sequence (§10) end to end: preview, join, identify with the
/// active channel, the calls after ready, a second subscription, a dropped socket, and a
/// reconnect with only `resume_seq` (managed: on the other instance) that receives every
/// missed event once, in order, then carries on live.
async fn the_client_connect_sequence_survives_a_dropped_socket(app: TestApp) {
    // Managed: a second instance of the same deployment to reconnect to.
    let other = app.other_instance().await;
    let owner = app.register(&unique("own"), "password-1").await;
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": true }),
        &owner,
    )
    .await;
    let general = app.channel(&owner, "general", "text").await;
    let random = app.channel(&owner, "random", "text").await;

    // 1–3: preview, join, learn the server.
    let (status, preview) = app.query("server.info", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(preview["result"]["data"]["server"]["id"].is_string());
    let name = unique("cli");
    let (status, joined) = app
        .mutate(
            "server.join",
            json!({ "username": name, "password": "password-2", "action": "register" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    let client = TestApp::session(joined);
    let info = app.get("server.info", json!({}), &client).await;
    assert!(info["channels"].as_array().is_some_and(|c| c.len() >= 2));

    // 4: hello, identify with the active channel, ready with its messages.
    say(&app, &owner, &general, "before").await;
    let mut ws = app.ws().await;
    let ready = ws
        .identify(&client.token, json!({ "active_channel_id": general["id"] }))
        .await;
    assert_eq!(ready["initial_messages_channel_id"], general["id"]);
    assert!(ready["initial_messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["content"] == "before")));
    // 5: the calls after ready, and a second subscription.
    app.get("serverDms.list", json!({}), &client).await;
    app.get("activity.list", json!({ "limit": 30 }), &client)
        .await;
    ws.send("subscribe", json!({ "channel_id": random["id"] }))
        .await;
    let subscribed = ws.expect("subscribed").await;
    assert_eq!(subscribed["data"]["channel_id"], random["id"]);
    say(&app, &owner, &general, "live-1").await;
    say(&app, &owner, &random, "live-2").await;
    seq_of(&mut ws, "live-1").await;
    let seen = seq_of(&mut ws, "live-2").await;

    // The network drops; life goes on without the client.
    ws.drop_connection();
    app.until_no_sessions(5).await;
    let missed = ["gone-1", "gone-2", "gone-3", "gone-4"];
    say(&app, &owner, &general, missed[0]).await;
    say(&app, &owner, &random, missed[1]).await;
    say(&app, &owner, &general, missed[2]).await;
    say(&app, &owner, &random, missed[3]).await;
    app.ok(
        "serverDms.send",
        json!({ "recipient_id": client.user_id, "content": "psst" }),
        &owner,
    )
    .await;

    // 7: reconnect with only resume_seq, to the other instance when there is one.
    let target = other.as_ref().unwrap_or(&app);
    let (mut ws, resumed) = resume(target, &client.token, seen).await;
    assert_eq!(resumed["event"], "system.resumed", "no ready: {resumed}");
    assert_eq!(
        replayed(&resumed, seen),
        missed.to_vec(),
        "every missed message once, in order"
    );
    let dms: Vec<&Value> = resumed["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == "server_dm.message")
        .collect();
    assert_eq!(dms.len(), 1, "the DM too, once");
    let last = resumed["data"]["resume_seq"].as_u64().expect("resume_seq");
    say(target, &owner, &random, "after").await;
    goes_on_from(&mut ws, last, "after").await;
}

/// Reads frames up to the `message.create` of `content`, checking that their seqs run on
/// from `last` without a gap or a repeat, and that no `system.ready` follows the resume (up to
/// there, and for 300 ms after).
async fn goes_on_from(ws: &mut WsClient, last: u64, content: &str) {
    let mut expected = last + 1;
    loop {
        let f = ws.frame().await;
        assert_ne!(f["event"], "system.ready", "no ready after a resume: {f}");
        let Some(seq) = f["seq"].as_u64() else {
            continue;
        };
        assert_eq!(seq, expected, "the sequence goes on without a gap: {f}");
        expected += 1;
        if f["event"] == "message.create" && f["data"]["content"] == content {
            break;
        }
    }
    for f in ws.frames_within(300).await {
        assert_ne!(f["event"], "system.ready", "no ready after a resume: {f}");
    }
}

both_profiles!(
    a_client_resumes_with_only_its_resume_seq,
    overlapping_tabs_get_a_new_session_not_each_others_events,
    a_former_member_is_forbidden_not_unauthenticated,
    typing_needs_reading_not_subscribing,
    acting_on_a_non_member_is_forbidden_2002,
    inputs_follow_the_reference_schemas,
    the_client_connect_sequence_survives_a_dropped_socket,
    voice_join_answers_8002_when_voice_is_off,
);
