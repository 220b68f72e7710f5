//! Voice signalling through `/ws` (reference §6, DECISIONS §2): every `voice.error` case, the
//! permission of each source, the state and its events, `force` transfer, mute, server mute
//! with `members.voiceMute`, and the clean-up after a socket drop, leave, kick, ban, channel
//! delete and CONNECT_VOICE taken away. The media itself is tested with real browsers
//! (`voice_browser.rs`) and WebRTC peers (the voice crate's tests).

use ecto_core::permissions::bits;
use ecto_tests::ws::WsClient;
use ecto_tests::{both_profiles, unique, Call, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// What mediasoup-client sends for a microphone (one encoding, the SSRC in it).
fn opus(ssrc: u32) -> Value {
    json!({ "mid": "0", "codecs": [{ "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000,
        "channels": 2, "parameters": { "minptime": 10, "useinbandfec": 1 }, "rtcpFeedback": [] }],
        "headerExtensions": [{ "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 }],
        "encodings": [{ "ssrc": ssrc }], "rtcp": { "cname": "test", "reducedSize": true } })
}

/// What mediasoup-client sends for a camera or a screen in VP8.
fn vp8(ssrc: u32) -> Value {
    json!({ "mid": "1", "codecs": [{ "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
        "parameters": {}, "rtcpFeedback": [{ "type": "nack" }, { "type": "nack", "parameter": "pli" }] }],
        "headerExtensions": [], "encodings": [{ "ssrc": ssrc }], "rtcp": { "cname": "test", "reducedSize": true } })
}

/// A voice channel made by `owner`, with `deny` taken from @everyone in it.
async fn voice_channel(app: &TestApp, owner: &Session, deny: u64) -> String {
    let everyone = TestApp::everyone_role(owner);
    let channel = app
        .ok(
            "channels.create",
            json!({ "name": unique("talk"), "type": "voice", "permission_overrides": [
                { "target_type": "role", "target_id": everyone, "allow": 0, "deny": deny }] }),
            owner,
        )
        .await;
    channel["id"].as_str().expect("id").to_owned()
}

/// An identified socket of `s`.
async fn socket(app: &TestApp, s: &Session) -> WsClient {
    let mut ws = app.ws().await;
    ws.identify(&s.token, json!({})).await;
    ws
}

/// Sends `voice.join` and returns the `voice.transport_created` data (after checking the
/// router capabilities came first).
async fn join(ws: &mut WsClient, channel: &str) -> Value {
    ws.send("voice.join", json!({ "channel_id": channel }))
        .await;
    // In this order (a transport_created first would be skipped and the wait would fail).
    let caps = ws.expect("voice.router_capabilities").await;
    assert!(
        caps.get("seq").is_none(),
        "direct frames carry no seq: {caps}"
    );
    let created = ws.expect("voice.transport_created").await;
    created["data"].clone()
}

/// Joins and sends the router's capabilities as the device's (mediasoup-client derives its
/// own from them); returns the send transport's id.
async fn join_with_caps(ws: &mut WsClient, channel: &str) -> String {
    ws.send("voice.join", json!({ "channel_id": channel }))
        .await;
    let caps = ws.expect("voice.router_capabilities").await;
    let created = ws.expect("voice.transport_created").await;
    ws.send(
        "voice.capabilities",
        json!({ "rtp_capabilities": caps["data"]["rtpCapabilities"] }),
    )
    .await;
    created["data"]["send"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// The next `voice.error`'s `(code, message)`.
async fn voice_error(ws: &mut WsClient) -> (i64, String) {
    let e = ws.expect("voice.error").await;
    (
        e["data"]["code"].as_i64().expect("code"),
        e["data"]["message"].as_str().expect("message").to_owned(),
    )
}

/// The next `voice.state_update` about `user`.
async fn state_of(ws: &mut WsClient, user: &str) -> Value {
    loop {
        let f = ws.expect("voice.state_update").await;
        if f["data"]["user_id"] == user {
            return f["data"].clone();
        }
    }
}

/// Produces on `transport` and returns the producer id (or the error frame's data).
async fn produce(ws: &mut WsClient, transport: &str, kind: &str, source: &str) -> Value {
    let rtp = if kind == "audio" {
        opus(rand_ssrc())
    } else {
        vp8(rand_ssrc())
    };
    ws.send(
        "voice.produce",
        json!({ "transport_id": transport, "kind": kind, "rtp_parameters": rtp, "source": source }),
    )
    .await;
    loop {
        let f = ws.frame().await;
        match f["event"].as_str() {
            Some("voice.produced") => return f["data"]["producer_id"].clone(),
            Some("voice.error") => return f["data"].clone(),
            _ => {}
        }
    }
}

fn rand_ssrc() -> u32 {
    (uuid::Uuid::now_v7().as_u128() & 0x7fff_ffff) as u32 | 1
}

/// Joining answers the router's capabilities and two transports on this server's voice port;
/// everyone hears the state; the joiner then hears each participant already there; a new
/// socket's `system.ready` carries the states; the same session joining again is a no-op.
async fn joining_announces_the_state_and_answers_transports(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let channel = voice_channel(&app, &owner, 0).await;
    let mut a = socket(&app, &owner).await;
    let mut b = socket(&app, &member).await;

    let created = join(&mut a, &channel).await;
    for side in ["send", "recv"] {
        let t = &created[side];
        assert!(t["id"].is_string(), "{created}");
        assert!(
            t["iceParameters"]["usernameFragment"].is_string(),
            "{created}"
        );
        assert_eq!(t["iceParameters"]["iceLite"], true, "{created}");
        let candidate = &t["iceCandidates"][0];
        assert_eq!(
            candidate["ip"], "127.0.0.1",
            "the announced address: {created}"
        );
        assert_eq!(candidate["protocol"], "udp");
        assert!(candidate["port"].as_u64() > Some(0));
        assert_eq!(
            t["dtlsParameters"]["fingerprints"][0]["algorithm"],
            "sha-256"
        );
    }
    assert_ne!(created["send"]["id"], created["recv"]["id"]);
    let state = state_of(&mut b, &owner.user_id).await;
    assert_eq!(state["channel_id"], channel);
    assert_eq!(state["self_mute"], false);
    assert_eq!(state["server_mute"], false);
    assert!(state.get("_removed").is_none(), "{state}");
    assert!(state["connected_at"].is_string(), "{state}");

    // B joins: B hears A's state directly after its own transports.
    let _ = join(&mut b, &channel).await;
    let direct = loop {
        let f = b.expect("voice.state_update").await;
        if f["data"]["user_id"] == owner.user_id.as_str() {
            break f;
        }
    };
    assert!(
        direct.get("seq").is_none(),
        "the snapshot is direct: {direct}"
    );

    let mut c = app.ws().await;
    let ready = c.identify(&member.token, json!({})).await;
    let mut users: Vec<&str> = ready["voice_states"]
        .as_array()
        .expect("voice_states")
        .iter()
        .map(|s| s["user_id"].as_str().expect("user"))
        .collect();
    users.sort_unstable();
    let mut expected = vec![owner.user_id.as_str(), member.user_id.as_str()];
    expected.sort_unstable();
    assert_eq!(users, expected, "{ready}");

    // Joining the same channel again from the same session changes nothing.
    a.send("voice.join", json!({ "channel_id": channel })).await;
    assert!(!a.receives_within("voice.transport_created", 400).await);
}

/// `voice.join` refusals: not a voice channel or not this server's (3002), no CONNECT_VOICE
/// (5001), full at 25 (3003); calls of a session that is not in voice get 8000.
async fn join_refusals_are_voice_errors(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let text = app.channel(&owner, "text", "text").await;
    let locked = voice_channel(&app, &owner, bits::CONNECT_VOICE).await;
    let mut ws = socket(&app, &member).await;
    let cannot = (3002, "Cannot connect to this channel".to_owned());
    ws.send("voice.join", json!({ "channel_id": text["id"] }))
        .await;
    assert_eq!(voice_error(&mut ws).await, cannot);
    ws.send(
        "voice.join",
        json!({ "channel_id": uuid::Uuid::now_v7().to_string() }),
    )
    .await;
    assert_eq!(voice_error(&mut ws).await, cannot);
    ws.send("voice.join", json!({ "channel_id": locked })).await;
    assert_eq!(
        voice_error(&mut ws).await,
        (5001, "Insufficient permissions".to_owned())
    );
    ws.send("voice.mute", json!({ "self_mute": true })).await;
    assert_eq!(
        voice_error(&mut ws).await,
        (8000, "Not in a voice channel".to_owned())
    );
    ws.send(
        "voice.produce_stop",
        json!({ "producer_id": uuid::Uuid::now_v7().to_string() }),
    )
    .await;
    assert_eq!(voice_error(&mut ws).await.0, 8000);

    // Full: 25 participants, the 26th is refused and nobody else hears of it. The sockets
    // already open keep beating while the others join (the tests' heartbeat timeout is 3 s).
    let channel = voice_channel(&app, &owner, 0).await;
    let mut inside: Vec<WsClient> = Vec::new();
    for i in 0..25 {
        let s = app.register(&unique(&format!("v{i}-")), "password-3").await;
        let mut w = socket(&app, &s).await;
        let _ = join(&mut w, &channel).await;
        inside.push(w);
        for w in inside.iter_mut().chain([&mut ws]) {
            w.send("system.heartbeat", Value::Null).await;
        }
    }
    ws.send("voice.join", json!({ "channel_id": channel }))
        .await;
    assert_eq!(
        voice_error(&mut ws).await,
        (3003, "Voice channel full".to_owned())
    );
    let mut probe = app.ws().await;
    let ready = probe.identify(&owner.token, json!({})).await;
    assert_eq!(ready["voice_states"].as_array().map(Vec::len), Some(25));
}

/// Each source needs its permission: SPEAK_VOICE for the microphone, USE_VIDEO for the camera,
/// SCREEN_SHARE for a screen and its audio; parameters the SFU cannot use get 8003.
async fn every_source_needs_its_permission(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let denied = (5001, "Insufficient permissions".to_owned());
    for (deny, kind, source) in [
        (bits::SPEAK_VOICE, "audio", "mic"),
        (bits::USE_VIDEO, "video", "camera"),
        (bits::SCREEN_SHARE, "video", "screen"),
        (bits::SCREEN_SHARE, "audio", "screen-audio"),
    ] {
        let channel = voice_channel(&app, &owner, deny).await;
        let mut ws = socket(&app, &member).await;
        let transport = join_with_caps(&mut ws, &channel).await;
        let refused = produce(&mut ws, &transport, kind, source).await;
        assert_eq!(
            (
                refused["code"].as_i64().unwrap_or(0),
                refused["message"].as_str().unwrap_or("").to_owned()
            ),
            denied,
            "{source} without its permission: {refused}"
        );
        // The other sources are allowed in that channel.
        let other = if kind == "audio" {
            ("video", "camera")
        } else {
            ("audio", "mic")
        };
        if deny != bits::USE_VIDEO || other.0 != "video" {
            let id = produce(&mut ws, &transport, other.0, other.1).await;
            assert!(id.is_string(), "{} is allowed: {id}", other.1);
        }
        ws.close().await;
    }
    let channel = voice_channel(&app, &owner, 0).await;
    let mut ws = socket(&app, &member).await;
    let transport = join_with_caps(&mut ws, &channel).await;
    ws.send(
        "voice.produce",
        json!({ "transport_id": transport, "kind": "audio", "rtp_parameters": { "codecs": [] } }),
    )
    .await;
    assert_eq!(
        voice_error(&mut ws).await,
        (8003, "Transport failed".to_owned())
    );
    let mut h264 = vp8(7);
    h264["codecs"][0]["mimeType"] = json!("video/AV1");
    ws.send(
        "voice.produce",
        json!({ "transport_id": transport, "kind": "video", "rtp_parameters": h264 }),
    )
    .await;
    assert_eq!(voice_error(&mut ws).await.0, 8003);
    ws.send(
        "voice.produce",
        json!({ "transport_id": uuid::Uuid::now_v7().to_string(), "kind": "audio", "rtp_parameters": opus(9) }),
    )
    .await;
    assert_eq!(
        voice_error(&mut ws).await.0,
        8003,
        "someone else's transport"
    );
}

/// Producers become consumers for everyone who sent capabilities (now and later), with the
/// router's payload type; stopping one is heard by all.
async fn producers_reach_every_participant(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let late = app.register(&unique("late"), "password-3").await;
    let channel = voice_channel(&app, &owner, 0).await;
    let mut a = socket(&app, &owner).await;
    let mut b = socket(&app, &member).await;
    let a_send = join_with_caps(&mut a, &channel).await;
    let _ = join_with_caps(&mut b, &channel).await;
    let mic = produce(&mut a, &a_send, "audio", "mic").await;
    assert!(mic.is_string(), "{mic}");
    let consumer = b.expect("voice.new_consumer").await;
    let d = &consumer["data"];
    assert_eq!(d["producer_id"], mic);
    assert_eq!(d["user_id"], owner.user_id.as_str());
    assert_eq!(d["kind"], "audio");
    assert_eq!(d["source"], "mic");
    assert!(d["consumer_id"].is_string());
    assert_eq!(d["rtpParameters"]["codecs"][0]["mimeType"], "audio/opus");
    assert_eq!(d["rtpParameters"]["codecs"][0]["payloadType"], 100);
    assert!(d["rtpParameters"]["encodings"][0]["ssrc"].is_u64());
    let camera = produce(&mut a, &a_send, "video", "camera").await;
    assert!(camera.is_string(), "{camera}");

    // Someone joining later gets consumers for both producers when it sends capabilities.
    let mut c = socket(&app, &late).await;
    let _ = join_with_caps(&mut c, &channel).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(c.expect("voice.new_consumer").await["data"]["producer_id"].clone());
    }
    got.sort_by_key(|v| v.to_string());
    let mut want = vec![mic.clone(), camera.clone()];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(got, want);
    assert!(
        !a.receives_within("voice.new_consumer", 300).await,
        "nobody consumes their own producer"
    );

    a.send("voice.produce_stop", json!({ "producer_id": camera }))
        .await;
    for ws in [&mut b, &mut c] {
        let closed = ws.expect("voice.producer_closed").await;
        assert_eq!(
            closed["data"],
            json!({ "producer_id": camera, "user_id": owner.user_id, "channel_id": channel })
        );
    }
    // Someone else's producer cannot be stopped.
    b.send("voice.produce_stop", json!({ "producer_id": mic }))
        .await;
    assert_eq!(voice_error(&mut b).await.0, 8003);
}

/// One voice channel per user: another session is told it is already connected; with
/// `force` the old session is moved out (`voice.transferred`) and everyone hears the old
/// state removed and the new one; the same session moving channels needs `force` too.
async fn force_moves_voice_between_sessions(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let first = voice_channel(&app, &owner, 0).await;
    let second = voice_channel(&app, &owner, 0).await;
    let mut s1 = socket(&app, &member).await;
    let mut s2 = socket(&app, &member).await;
    let mut watcher = socket(&app, &owner).await;
    let _ = join(&mut s1, &first).await;
    let _ = state_of(&mut watcher, &member.user_id).await;

    s2.send("voice.join", json!({ "channel_id": second })).await;
    let already = s2.expect("voice.already_connected").await;
    assert_eq!(already["data"]["channel_id"], first);
    assert_eq!(already["data"]["same_session"], false);
    assert!(already["data"]["session_id"].is_string());

    s2.send("voice.join", json!({ "channel_id": second, "force": true }))
        .await;
    let _ = s2.expect("voice.transport_created").await;
    let moved = s1.expect("voice.transferred").await;
    assert_eq!(moved["data"], json!({ "channel_id": first }));
    let removed = state_of(&mut watcher, &member.user_id).await;
    assert_eq!(removed["_removed"], true);
    assert_eq!(removed["channel_id"], first);
    let now = state_of(&mut watcher, &member.user_id).await;
    assert_eq!(now["channel_id"], second);
    assert!(now.get("_removed").is_none());
    // The old session no longer holds voice.
    s1.send("voice.mute", json!({ "self_mute": true })).await;
    assert_eq!(voice_error(&mut s1).await.0, 8000);

    s2.send("voice.join", json!({ "channel_id": first })).await;
    let same = s2.expect("voice.already_connected").await;
    assert_eq!(same["data"]["same_session"], true);
    assert_eq!(same["data"]["channel_id"], second);
    s2.send("voice.join", json!({ "channel_id": first, "force": true }))
        .await;
    let _ = s2.expect("voice.transport_created").await;
    assert_eq!(
        state_of(&mut watcher, &member.user_id).await["_removed"],
        true
    );
    assert_eq!(
        state_of(&mut watcher, &member.user_id).await["channel_id"],
        first
    );
    assert!(
        !s2.receives_within("voice.transferred", 300).await,
        "the same session is not told it was transferred"
    );
}

/// Self mute and deafen are heard by everyone; `members.voiceMute` needs MUTE_MEMBERS for
/// `server_mute` and DEAFEN_MEMBERS for `server_deaf`, respects the hierarchy, and is 404 8000
/// for someone not in voice.
async fn mute_and_server_mute(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let moderator = app.register(&unique("mod"), "password-3").await;
    app.grant_role(&moderator, bits::MUTE_MEMBERS, 1).await;
    let channel = voice_channel(&app, &owner, 0).await;
    let mut watcher = socket(&app, &owner).await;
    let mut m = socket(&app, &member).await;
    let _ = join(&mut m, &channel).await;
    let _ = state_of(&mut watcher, &member.user_id).await;

    m.send(
        "voice.mute",
        json!({ "self_mute": true, "self_deaf": true }),
    )
    .await;
    let muted = state_of(&mut watcher, &member.user_id).await;
    assert_eq!(
        (muted["self_mute"].clone(), muted["self_deaf"].clone()),
        (json!(true), json!(true))
    );

    let mute = |user: &str, field: &str| json!({ "user_id": user, field: true });
    let call = |input: Value, s: &Session| {
        let token = s.token.clone();
        let app = &app;
        async move {
            app.outcome(Call::Mutation, "members.voiceMute", input, Some(&token))
                .await
        }
    };
    let forbidden = (StatusCode::FORBIDDEN, Some(5001));
    assert_eq!(
        call(mute(&member.user_id, "server_mute"), &member).await,
        forbidden
    );
    assert_eq!(
        call(mute(&member.user_id, "server_deaf"), &moderator).await,
        forbidden,
        "DEAFEN_MEMBERS is its own permission"
    );
    assert_eq!(
        call(mute(&owner.user_id, "server_mute"), &moderator).await,
        (StatusCode::NOT_FOUND, Some(8000)),
        "the owner is not in voice"
    );
    let state = app
        .ok(
            "members.voiceMute",
            mute(&member.user_id, "server_mute"),
            &moderator,
        )
        .await;
    assert_eq!(state["server_mute"], true);
    assert_eq!(state["user_id"], member.user_id.as_str());
    let heard = state_of(&mut watcher, &member.user_id).await;
    assert_eq!(heard["server_mute"], true);
    let state = app
        .ok(
            "members.voiceMute",
            json!({ "user_id": member.user_id, "server_mute": false, "server_deaf": true }),
            &owner,
        )
        .await;
    assert_eq!(
        (state["server_mute"].clone(), state["server_deaf"].clone()),
        (json!(false), json!(true))
    );

    // The hierarchy: a moderator cannot mute the owner once the owner is in voice.
    let mut o = socket(&app, &owner).await;
    let _ = join(&mut o, &channel).await;
    let _ = state_of(&mut watcher, &owner.user_id).await;
    assert_eq!(
        call(mute(&owner.user_id, "server_mute"), &moderator).await,
        (StatusCode::FORBIDDEN, Some(5004))
    );
    assert_eq!(
        call(json!({ "user_id": "nope" }), &owner).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// Reads frames until `user`'s state is removed; returns the producers closed on the way.
async fn removal_of(ws: &mut WsClient, user: &str) -> Vec<Value> {
    let mut closed = Vec::new();
    loop {
        let f = ws.frame().await;
        match f["event"].as_str() {
            Some("voice.producer_closed") if f["data"]["user_id"] == user => {
                closed.push(f["data"]["producer_id"].clone());
            }
            Some("voice.state_update")
                if f["data"]["user_id"] == user && f["data"]["_removed"] == true =>
            {
                return closed;
            }
            _ => {}
        }
    }
}

/// Voice follows the member: leaving, a dropped socket, a kick, a ban, the channel deleted and
/// CONNECT_VOICE taken away each end the state (everyone hears it, with the producers closed),
/// and no state is left behind.
async fn voice_ends_with_the_socket_the_member_and_the_channel(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let mut watcher = socket(&app, &owner).await;
    let everyone = TestApp::everyone_role(&owner);
    for how in ["leave", "drop", "kick", "ban", "delete", "deny"] {
        let member = app.register(&unique("mem"), "password-2").await;
        let channel = voice_channel(&app, &owner, 0).await;
        let mut m = socket(&app, &member).await;
        let transport = join_with_caps(&mut m, &channel).await;
        let mic = produce(&mut m, &transport, "audio", "mic").await;
        assert!(mic.is_string(), "{how}: {mic}");
        let _ = state_of(&mut watcher, &member.user_id).await;
        match how {
            "leave" => {
                m.send("voice.leave", json!({ "channel_id": channel }))
                    .await
            }
            "drop" => m.drop_connection(),
            "kick" => {
                app.ok("members.kick", json!({ "user_id": member.user_id }), &owner)
                    .await;
            }
            "ban" => {
                app.ok("members.ban", json!({ "user_id": member.user_id }), &owner)
                    .await;
            }
            "delete" => {
                app.ok("channels.delete", json!({ "channel_id": channel }), &owner)
                    .await;
            }
            _ => {
                app.ok(
                    "channels.update",
                    json!({ "channel_id": channel, "permission_overrides": [
                        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::CONNECT_VOICE }] }),
                    &owner,
                )
                .await;
            }
        }
        let closed = removal_of(&mut watcher, &member.user_id).await;
        assert_eq!(closed, vec![mic], "{how}: the microphone closed");
    }
    let mut probe = app.ws().await;
    let ready = probe.identify(&owner.token, json!({})).await;
    assert_eq!(ready["voice_states"], json!([]), "no ghost left: {ready}");
}

both_profiles!(
    joining_announces_the_state_and_answers_transports,
    join_refusals_are_voice_errors,
    every_source_needs_its_permission,
    producers_reach_every_participant,
    force_moves_voice_between_sessions,
    mute_and_server_mute,
    voice_ends_with_the_socket_the_member_and_the_channel,
);

/// The port of the first ICE candidate: which instance's SFU hosts the channel.
fn media_port(created: &Value) -> u64 {
    created["send"]["iceCandidates"][0]["port"]
        .as_u64()
        .expect("port")
}

/// Managed: a voice channel of another server on the same deployment cannot be joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_channel_of_another_server_cannot_be_joined() {
    let mut app = TestApp::spawn(ecto_tests::Profile::Managed).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let theirs = voice_channel(&app, &owner, 0).await;
    let other = format!("{}.test.ecto", unique("other"));
    app.provision(&other, "Other").await;
    app.server_address = Some(other);
    let stranger = app.register(&unique("str"), "password-2").await;
    let mut ws = socket(&app, &stranger).await;
    ws.send("voice.join", json!({ "channel_id": theirs })).await;
    assert_eq!(voice_error(&mut ws).await.0, 3002);
}

/// Managed: each channel is hosted by one instance, and a socket on another instance is
/// relayed to it (its media goes to the host's port). When the host stops, nobody stays in a
/// ghost channel: the participants relayed from elsewhere hear their state removed, and
/// joining again makes another instance the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_is_hosted_once_and_handed_over_when_its_host_stops() {
    hosted_once_and_handed_over().await;
}

/// The same on the Redis Cluster: leases, voice states and the relay's sharded channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_is_hosted_once_and_handed_over_on_a_redis_cluster() {
    ecto_tests::on_redis_cluster(hosted_once_and_handed_over()).await;
}

async fn hosted_once_and_handed_over() {
    let host = TestApp::spawn(ecto_tests::Profile::Managed).await;
    let relay = host.other_instance().await.expect("a managed deployment");
    let owner = host.register(&unique("own"), "password-1").await;
    let member = host.register(&unique("mem"), "password-2").await;
    let channel = voice_channel(&host, &owner, 0).await;
    let mut a = socket(&host, &owner).await;
    let mut b = socket(&relay, &member).await;
    let on_host = join(&mut a, &channel).await;
    let relayed = join(&mut b, &channel).await;
    assert_eq!(
        media_port(&relayed),
        media_port(&on_host),
        "B's media goes to the hosting instance"
    );
    let _ = state_of(&mut a, &member.user_id).await;

    host.stop().await;
    // A's socket closed with its instance: B hears A leave.
    removal_of(&mut b, &owner.user_id).await;
    // Two sweeps (5 s apart) find the channel without a host; B keeps its socket alive
    // meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        b.send("system.heartbeat", Value::Null).await;
        let frames = b.frames_within(1000).await;
        if frames.iter().any(|f| {
            f["event"] == "voice.state_update"
                && f["data"]["user_id"] == member.user_id.as_str()
                && f["data"]["_removed"] == true
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B's state did not end after its host stopped"
        );
    }
    let mut probe = relay.ws().await;
    let ready = probe.identify(&owner.token, json!({})).await;
    assert_eq!(ready["voice_states"], json!([]), "no ghost: {ready}");
    let again = join(&mut b, &channel).await;
    assert_ne!(
        media_port(&again),
        media_port(&on_host),
        "the remaining instance hosts the channel now"
    );
    let state = state_of(&mut probe, &member.user_id).await;
    assert!(state.get("_removed").is_none(), "{state}");
}
