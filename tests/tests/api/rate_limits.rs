//! Rate limits (DECISIONS §3.19): token buckets per user, per client IP, per IP for the
//! credential procedures, and per webhook. Each test starts a server with small limits.

use ecto_server::AppConfig;
use ecto_tests::{ecto_code, trpc_code, unique, Profile, TestApp};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// A server for `profile` whose rate limits come from `limits` (config keys and values, on top
/// of the defaults).
async fn spawn_limited(profile: Profile, limits: &[(&str, &str)]) -> TestApp {
    let rate_limits = AppConfig::from_pairs(limits)
        .expect("rate-limit settings are valid")
        .rate_limits;
    TestApp::spawn_with(profile, |c| c.rate_limits = rate_limits).await
}

/// A tRPC call with optional token and `X-Forwarded-For`; status, headers and body.
async fn trpc(
    app: &TestApp,
    proc_: &str,
    input: Option<Value>,
    token: Option<&str>,
    forwarded_for: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mutation = matches!(proc_, "server.join" | "server.refreshToken");
    let mut rb = if mutation {
        app.request(Method::POST, &format!("/trpc/{proc_}"))
            .json(&input.unwrap_or(json!({})))
    } else {
        let rb = app.request(Method::GET, &format!("/trpc/{proc_}"));
        match input {
            Some(input) => rb.query(&[("input", input.to_string())]),
            None => rb,
        }
    };
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(ip) = forwarded_for {
        rb = rb.header("X-Forwarded-For", ip);
    }
    TestApp::send(rb).await
}

/// Asserts a rate-limited tRPC answer and returns its `retry_after` (seconds).
fn assert_limited(status: StatusCode, headers: &HeaderMap, body: &Value, path: &str) -> u64 {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(trpc_code(body), "TOO_MANY_REQUESTS", "{body}");
    assert_eq!(body["error"]["code"], -32029, "{body}");
    assert_eq!(ecto_code(body), Some(9000), "{body}");
    assert_eq!(
        body["error"]["data"]["ecto_error"], "rate_limited",
        "{body}"
    );
    assert_eq!(body["error"]["data"]["path"], path, "{body}");
    let retry_after = body["error"]["data"]["retry_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("data.retry_after is a whole number: {body}"));
    assert!(retry_after >= 1, "at least one second: {body}");
    let header = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a Retry-After header in whole seconds");
    assert_eq!(header, retry_after, "header and body agree");
    retry_after
}

fn join_input(username: &str, action: &str) -> Value {
    json!({ "username": username, "password": "password-1", "action": action })
}

async fn each_user_has_a_bucket_and_a_limited_call_can_retry_after_the_wait(profile: Profile) {
    let app = spawn_limited(
        profile,
        &[
            ("rate_limit_user_per_10s", "3"),
            ("rate_limit_ip_per_10s", "0"),
            ("rate_limit_join_per_minute", "0"),
        ],
    )
    .await;
    let alice = app.register(&unique("alice"), "password-1").await;
    let bob = app.register(&unique("bob"), "password-1").await;
    for i in 1..=3 {
        let (status, _, body) = trpc(&app, "server.info", None, Some(&alice.token), None).await;
        assert_eq!(status, StatusCode::OK, "call {i} of 3: {body}");
    }
    let (status, headers, body) = trpc(&app, "server.info", None, Some(&alice.token), None).await;
    let retry_after = assert_limited(status, &headers, &body, "server.info");
    assert!(
        retry_after <= 4,
        "3 calls per 10 s refill one every 3.4 s: {retry_after}"
    );

    let (status, _, body) = trpc(&app, "server.info", None, Some(&bob.token), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another user is not affected: {body}"
    );
    for _ in 0..5 {
        let (status, _, body) = trpc(&app, "server.info", None, None, None).await;
        assert_eq!(status, StatusCode::OK, "0 turns the IP limit off: {body}");
    }

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, body) = trpc(&app, "server.info", None, Some(&alice.token), None).await;
    assert_eq!(status, StatusCode::OK, "after retry_after: {body}");
}

async fn every_call_of_a_batch_counts(profile: Profile) {
    let app = spawn_limited(
        profile,
        &[
            ("rate_limit_user_per_10s", "3"),
            ("rate_limit_ip_per_10s", "0"),
        ],
    )
    .await;
    let alice = app.register(&unique("alice"), "password-1").await;
    let rb = app
        .request(
            Method::GET,
            "/trpc/server.info,server.info,server.info,server.info",
        )
        .query(&[("batch", "1")])
        .bearer_auth(&alice.token);
    let (status, headers, body) = TestApp::send(rb).await;
    assert_eq!(
        status.as_u16(),
        207,
        "three succeed, one is limited: {body}"
    );
    let calls = body.as_array().expect("one envelope per call");
    assert!(calls[..3].iter().all(|c| c["result"]["data"].is_object()));
    assert_eq!(ecto_code(&calls[3]), Some(9000), "{body}");
    let retry_after = calls[3]["error"]["data"]["retry_after"]
        .as_u64()
        .expect("retry_after");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some(retry_after.to_string().as_str()),
        "the batch answer carries Retry-After"
    );
}

async fn anonymous_calls_are_limited_per_ip(profile: Profile) {
    let app = spawn_limited(
        profile,
        &[
            ("rate_limit_ip_per_10s", "3"),
            ("rate_limit_join_per_minute", "0"),
        ],
    )
    .await;
    // The registration is the first anonymous call of this address.
    let alice = app.register(&unique("alice"), "password-1").await;
    for _ in 0..2 {
        let (status, _, body) = trpc(&app, "server.info", None, None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = trpc(&app, "server.info", None, None, None).await;
    assert_limited(status, &headers, &body, "server.info");
    let (status, headers, body) = trpc(&app, "nope.nothing", None, None, None).await;
    assert_limited(status, &headers, &body, "nope.nothing");
    let (status, headers, body) =
        trpc(&app, "server.info", None, Some("not-a-valid-token"), None).await;
    assert_limited(status, &headers, &body, "server.info");
    let (status, _, body) = trpc(&app, "server.info", None, None, Some("198.51.100.23")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "X-Forwarded-For is ignored unless trusted: {body}"
    );
    let (status, _, body) = trpc(&app, "server.info", None, Some(&alice.token), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a signed-in caller is counted per user, not per IP: {body}"
    );
}

async fn joining_is_limited_per_ip(profile: Profile) {
    let app = spawn_limited(
        profile,
        &[
            ("rate_limit_join_per_minute", "2"),
            ("rate_limit_ip_per_10s", "0"),
        ],
    )
    .await;
    let name = unique("alice");
    let alice = app.register(&name, "password-1").await;
    let (status, _, body) = trpc(
        &app,
        "server.join",
        Some(join_input(&name, "login")),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = trpc(
        &app,
        "server.join",
        Some(join_input(&name, "login")),
        None,
        None,
    )
    .await;
    let retry_after = assert_limited(status, &headers, &body, "server.join");
    assert!(
        (20..=30).contains(&retry_after),
        "2 per minute refill one every 30 s: {retry_after}"
    );
    let (status, headers, body) = trpc(
        &app,
        "server.refreshToken",
        Some(json!({ "server_refresh_token": alice.refresh })),
        None,
        None,
    )
    .await;
    assert_limited(status, &headers, &body, "server.refreshToken");
    let (status, headers, body) = trpc(
        &app,
        "server.join",
        Some(join_input(&unique("bob"), "register")),
        None,
        Some("198.51.100.24"),
    )
    .await;
    assert_limited(status, &headers, &body, "server.join");
    let (status, _, body) = trpc(&app, "server.info", None, None, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "other calls of the address do not use the join bucket: {body}"
    );
    let (status, _, body) = trpc(&app, "server.info", None, Some(&alice.token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_trusted_forwarded_for_names_the_client(profile: Profile) {
    let app = spawn_limited(
        profile,
        &[
            ("rate_limit_join_per_minute", "1"),
            ("trust_forwarded_for", "true"),
        ],
    )
    .await;
    let register = |who: &'static str, ip: Option<&'static str>| {
        let app = &app;
        async move {
            let (status, headers, body) = trpc(
                app,
                "server.join",
                Some(join_input(&unique(who), "register")),
                None,
                ip,
            )
            .await;
            (status, headers, body)
        }
    };
    let (status, _, body) = register("a", Some("198.51.100.1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = register("b", Some("198.51.100.1")).await;
    assert_limited(status, &headers, &body, "server.join");
    // Proxies append: the leftmost entries are what the client wrote, so they change nothing.
    let (status, headers, body) = register("c", Some("203.0.113.7, 198.51.100.1")).await;
    assert_limited(status, &headers, &body, "server.join");
    let (status, _, body) = register("c", Some("198.51.100.1, 198.51.100.2")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the rightmost forwarded address (our proxy's) is the client: {body}"
    );
    let (status, _, body) = register("d", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "without the header the peer address counts: {body}"
    );
}

async fn webhook_executions_are_limited_per_webhook(profile: Profile) {
    let app = spawn_limited(
        profile,
        &[
            ("rate_limit_webhook_per_10s", "2"),
            ("rate_limit_webhook_failures_per_10s", "2"),
        ],
    )
    .await;
    let owner = app.register(&unique("own"), "password-1").await;
    let (status, channel) = app
        .mutate(
            "channels.create",
            json!({ "name": "hooks", "type": "text" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    let channel_id = channel["result"]["data"]["id"].clone();
    let mut hooks = Vec::new();
    for name in ["one", "two"] {
        let (status, hook) = app
            .mutate(
                "webhooks.create",
                json!({ "channel_id": channel_id, "name": name }),
                Some(&owner.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{hook}");
        hooks.push(hook["result"]["data"].clone());
    }
    let execute = |hook: &Value, token: &str| {
        let path = format!("/webhooks/{}/{token}", hook["id"].as_str().unwrap_or(""));
        TestApp::send(
            app.request(Method::POST, &path)
                .json(&json!({ "content": "ping" })),
        )
    };
    let token = hooks[0]["token"].as_str().expect("token").to_owned();
    let (status, _, body) = execute(&hooks[0], &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Wrong tokens count against the guesser's address, not the webhook: the real
    // integration keeps its bucket.
    for _ in 0..2 {
        let (status, _, body) = execute(&hooks[0], "wrong-token").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, _, body) = execute(&hooks[0], "wrong-token").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "guessing is limited per address: {body}"
    );
    let (status, _, body) = execute(&hooks[0], &token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the right token still works: {body}"
    );
    let (status, headers, body) = execute(&hooks[0], &token).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the webhook's own bucket: {body}"
    );
    assert!(body["error"].is_string(), "{body}");
    let retry_after = body["retry_after"].as_u64().expect("retry_after");
    assert!((1..=5).contains(&retry_after), "{body}");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some(retry_after.to_string().as_str())
    );
    let token_two = hooks[1]["token"].as_str().expect("token").to_owned();
    let (status, _, body) = execute(&hooks[1], &token_two).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another webhook has its own bucket: {body}"
    );
}

ecto_tests::per_profile!(
    each_user_has_a_bucket_and_a_limited_call_can_retry_after_the_wait,
    every_call_of_a_batch_counts,
    anonymous_calls_are_limited_per_ip,
    joining_is_limited_per_ip,
    a_trusted_forwarded_for_names_the_client,
    webhook_executions_are_limited_per_webhook,
);
