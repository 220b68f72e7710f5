//! Per-community event streams (managed): a process follows only the servers it holds sockets
//! of or serves requests of, joins a server's stream on its first socket, leaves it after the
//! last one (plus `WS_STREAM_LINGER_MS`), and a session of a server joined late resumes from
//! the server's log. Run against one Redis and against the Redis Cluster.

use ecto_tests::ws::WsClient;
use ecto_tests::{unique, Profile, Session, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

async fn send(app: &TestApp, owner: &Session, channel: &Value, content: &str) {
    let input = json!({ "channel_id": channel["id"], "content": content });
    app.ok("messages.send", input, owner).await;
}

/// Waits (up to 5 s) until the process follows `count` servers.
async fn follows(app: &TestApp, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.gateway.stream_count() != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the process follows {} servers, not {count}",
            app.gateway.stream_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_process_follows_only_the_servers_it_holds_sockets_of() {
    // Process A serves the test's server; B (same deployment) serves a second community.
    let a = TestApp::spawn_with(Profile::Managed, |c| c.ws_stream_linger_ms = 300).await;
    let second = format!("{}.test.ecto", unique("srv2"));
    a.provision(&second, "Second").await;
    let mut b = a.other_instance().await.expect("a managed deployment");
    b.server_address = Some(second.clone());
    let owner_a = a.register(&unique("own"), "password-1").await;
    let channel_a = a.channel(&owner_a, "first", "text").await;
    let owner_b = b.register(&unique("own"), "password-1").await;
    let member_b = b.register(&unique("mem"), "password-2").await;
    let channel_b = b.channel(&owner_b, "second", "text").await;
    // A served the first server's requests: it follows that server (its memo is kept up to
    // date by its events), and not the second one, whose requests went to B.
    follows(&a, 1).await;
    follows(&b, 1).await;

    // A socket of the first server: A follows that server and no other.
    let mut ws_first = a.ws().await;
    ws_first
        .identify(
            &owner_a.token,
            json!({ "active_channel_id": channel_a["id"] }),
        )
        .await;
    follows(&a, 1).await;
    send(&b, &owner_b, &channel_b, "unheard by A").await;
    send(&a, &owner_a, &channel_a, "first").await;
    assert_eq!(
        ws_first.expect("message.create").await["data"]["content"],
        "first"
    );
    follows(&a, 1).await;

    // A socket of the second server on A: A joins its stream late, and the socket hears the
    // events after its ready.
    let mut ws_second = WsClient::connect(&a.base, "/ws", Some(&second)).await;
    let ready = ws_second
        .identify(
            &member_b.token,
            json!({ "active_channel_id": channel_b["id"] }),
        )
        .await;
    follows(&a, 2).await;
    send(&b, &owner_b, &channel_b, "heard by A").await;
    let heard = ws_second.expect("message.create").await;
    assert_eq!(heard["data"]["content"], "heard by A");
    let seen = heard["seq"].as_u64().expect("seq");

    // The second server's socket goes away: after the linger A leaves its stream, and events
    // go on without it.
    ws_second.close().await;
    follows(&a, 1).await;
    send(&b, &owner_b, &channel_b, "missed one").await;
    send(&b, &owner_b, &channel_b, "missed two").await;

    // Resuming on A joins the stream again and replays the missed events from the server's
    // log, numbered right after what the client saw.
    let mut again = WsClient::connect(&a.base, "/ws", Some(&second)).await;
    let resume_seq = again
        .resume(
            &member_b.token,
            &ready["session_id"],
            seen,
            &["missed one", "missed two"],
        )
        .await;
    follows(&a, 2).await;
    send(&b, &owner_b, &channel_b, "live again").await;
    again.goes_on(resume_seq, &["live again"]).await;
    // The first server's socket heard none of the second server's events.
    let rest = ws_first.frames_within(300).await;
    assert!(
        rest.iter().all(|f| f["event"] != "message.create"),
        "another community's events: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_follows_only_the_servers_it_holds_sockets_of_on_one_redis() {
    a_process_follows_only_the_servers_it_holds_sockets_of().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_follows_only_the_servers_it_holds_sockets_of_on_a_redis_cluster() {
    ecto_tests::on_redis_cluster(a_process_follows_only_the_servers_it_holds_sockets_of()).await;
}
