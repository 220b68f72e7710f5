//! `GET /metrics` on its own address (`METRICS_ADDRESS`), optionally behind `METRICS_TOKEN`,
//! and the `X-Request-Id` of every answer.

use ecto_tests::{unique, Profile, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// A server with metrics on a free loopback port (and `token`, when given).
async fn spawn_metered(profile: Profile, token: Option<&str>) -> TestApp {
    let token = token.map(str::to_owned);
    TestApp::spawn_with(profile, move |c| {
        c.metrics_address = Some("127.0.0.1:0".into());
        c.metrics_token = token;
    })
    .await
}

/// `GET /metrics` on the metrics address: status and body.
async fn scrape_with(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let addr = app.metrics_addr.expect("metrics address bound");
    let mut rb = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb.send().await.expect("metrics request");
    let status = resp.status();
    (status, resp.text().await.expect("metrics body"))
}

async fn scrape(app: &TestApp) -> String {
    let (status, body) = scrape_with(app, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The labels of a sample line `name{a="x",b="y"} value`.
fn labels(inner: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = inner;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        out.push((
            key.trim_start_matches(',').trim().to_owned(),
            after[..end].to_owned(),
        ));
        rest = &after[end + 1..];
    }
    out
}

/// The sum of the samples of `name` whose labels include `want`; `None` when there is none.
fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, inner) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let have = labels(inner);
        if want
            .iter()
            .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
        {
            let v: f64 = value.parse().expect("sample value");
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    sample(text, name, want).unwrap_or(0.0)
}

/// Scrapes until `check` holds (gauges read what exists now; a socket closes asynchronously).
async fn until(app: &TestApp, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(app).await;
        if check(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metrics_move_with_requests_and_sockets(profile: Profile) {
    let app = spawn_metered(profile, None).await;
    let before = scrape(&app).await;
    let info_ok = [("procedure", "server.info"), ("status", "200")];
    let list_401 = [("procedure", "messages.list"), ("status", "401")];
    for _ in 0..3 {
        let (status, body) = app.query("server.info", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": ecto_core::new_id() })),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let after = scrape(&app).await;
    assert_eq!(
        value(&after, "ecto_trpc_calls_total", &info_ok)
            - value(&before, "ecto_trpc_calls_total", &info_ok),
        3.0,
        "three server.info calls counted:\n{after}"
    );
    assert_eq!(
        value(&after, "ecto_trpc_calls_total", &list_401)
            - value(&before, "ecto_trpc_calls_total", &list_401),
        1.0,
        "the refused call counted with its status:\n{after}"
    );
    let route = [("route", "server.info")];
    assert!(
        value(&after, "ecto_http_request_duration_seconds_count", &route)
            >= value(&before, "ecto_http_request_duration_seconds_count", &route) + 3.0,
        "latencies recorded:\n{after}"
    );
    assert!(
        value(
            &after,
            "ecto_http_requests_total",
            &[("route", "messages.list"), ("status", "401")]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        value(&after, "ecto_db_pool_wait_seconds_count", &[]) > 0.0,
        "database checkouts timed:\n{after}"
    );
    let pool = match profile {
        Profile::SelfHosted => "sqlite_write",
        Profile::Managed => "postgres",
    };
    assert!(
        sample(&after, "ecto_db_pool_max", &[("pool", pool)]).is_some_and(|v| v >= 1.0),
        "pool {pool} reported:\n{after}"
    );

    // A socket: the sessions gauge moves up while it is open and back when it closes.
    let sessions_before = value(&after, "ecto_ws_sessions", &[]);
    let user = app.register(&unique("metric"), "password-123").await;
    let mut ws = app.ws().await;
    ws.identify(&user.token, json!({})).await;
    // The registration's events went through the bus: its lag is measured.
    until(&app, "the event bus's lag measured", |t| {
        value(t, "ecto_event_bus_lag_seconds_count", &[]) > 0.0
    })
    .await;
    until(&app, "one more /ws session", |t| {
        value(t, "ecto_ws_sessions", &[]) == sessions_before + 1.0
    })
    .await;
    drop(ws);
    app.until_no_sessions(5).await;
    until(&app, "the session gone again", |t| {
        value(t, "ecto_ws_sessions", &[]) == sessions_before
    })
    .await;

    // The public port does not serve metrics.
    let (status, _, body) = TestApp::send(app.request(Method::GET, "/metrics")).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(
        !body.to_string().contains("ecto_trpc_calls_total"),
        "{body}"
    );
}

async fn metrics_need_the_token_when_one_is_set(profile: Profile) {
    let token = "metrics-test-token-1234";
    let app = spawn_metered(profile, Some(token)).await;
    let (status, body) = scrape_with(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains("ecto_"), "{body}");
    let (status, _) = scrape_with(&app, Some("wrong-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.query("server.info", None, None).await;
    let (status, body) = scrape_with(&app, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        value(
            &body,
            "ecto_trpc_calls_total",
            &[("procedure", "server.info")]
        ) >= 1.0,
        "{body}"
    );
}

async fn metrics_are_off_unless_configured(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    assert_eq!(app.metrics_addr, None);
    let (status, _, body) = TestApp::send(app.request(Method::GET, "/metrics")).await;
    assert_ne!(status, StatusCode::OK, "{body}");
}

/// Database checkouts counted so far (every store call takes one).
async fn checkouts(app: &TestApp) -> f64 {
    value(&scrape(app).await, "ecto_db_pool_wait_seconds_count", &[])
}

/// Sockets that identify at once, right after a change dropped what the server kept of the
/// community, load its channels, categories, roles, configuration and the member's rows
/// once between them: each waits for the load in flight instead of reading the store too.
async fn sockets_identifying_at_once_share_one_load(profile: Profile) {
    const SOCKETS: usize = 24;
    let app = spawn_metered(profile, None).await;
    let owner = app.register(&unique("owner"), "password-123").await;
    let user = app.register(&unique("member"), "password-123").await;
    // What one identify costs when everything is kept already.
    let mut first = app.ws().await;
    first.identify(&user.token, json!({})).await;
    let before = checkouts(&app).await;
    let mut second = app.ws().await;
    second.identify(&user.token, json!({})).await;
    let one = checkouts(&app).await - before;
    assert!(one >= 1.0, "an identify reads the store (read states)");
    drop((first, second));
    app.until_no_sessions(5).await;

    // A new channel drops everything kept of the server; then many identify at once.
    app.channel(&owner, "fresh", "text").await;
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        let mut ws = app.ws().await;
        let hello = ws.frame().await;
        assert_eq!(hello["event"], "system.hello", "{hello}");
        sockets.push(ws);
    }
    let before = checkouts(&app).await;
    let ready = futures_util::future::join_all(sockets.iter_mut().map(|ws| async {
        ws.send(
            "system.identify",
            json!({ "token": user.token, "protocol_version": 1 }),
        )
        .await;
        ws.expect("system.ready").await
    }))
    .await;
    let spent = checkouts(&app).await - before;
    assert!(
        ready.iter().all(|r| r["data"]["channels"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "fresh"))),
        "every ready shows the new channel"
    );
    // Per socket what a warm identify costs; once in all what a cold one adds (server, its
    // permission data, channels, categories, configuration, membership, member view: under a
    // dozen store calls), with room for the server's own background calls.
    let bound = SOCKETS as f64 * one + 16.0;
    assert!(
        spent <= bound,
        "{SOCKETS} identifies at once took {spent} store calls (one warm identify: {one}); \
         at most {bound} when concurrent loads are shared"
    );
}

/// The `X-Request-Id` of a response, checked to be a UUIDv7 when the client gave none.
fn generated_id(headers: &reqwest::header::HeaderMap) -> String {
    let id = headers
        .get("x-request-id")
        .expect("X-Request-Id on the answer")
        .to_str()
        .expect("ASCII id")
        .to_owned();
    let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    id
}

async fn every_answer_carries_a_request_id(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    // A success, a tRPC error, an unknown path, a plain route's error and a plain route.
    let (status, headers, _) = TestApp::send(app.request(Method::GET, "/trpc/server.info")).await;
    assert_eq!(status, StatusCode::OK);
    let ok_id = generated_id(&headers);
    let (status, headers, _) = TestApp::send(app.request(Method::GET, "/trpc/messages.list")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let error_id = generated_id(&headers);
    assert_ne!(ok_id, error_id, "each request has its own id");
    let (status, headers, _) = TestApp::send(app.request(Method::GET, "/no/such/path")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    generated_id(&headers);
    let (status, headers, _) = TestApp::send(app.request(Method::POST, "/upload")).await;
    assert!(status.is_client_error(), "{status}");
    generated_id(&headers);
    let (status, headers, _) = TestApp::send(app.request(Method::GET, "/files/nope/x.png")).await;
    assert!(status.is_client_error(), "{status}");
    generated_id(&headers);
    let (_, headers, _) = TestApp::send(app.request(Method::GET, "/health")).await;
    generated_id(&headers);

    // A sane id is echoed, on a success and on an error.
    let given = "client-req_42.a";
    for path in ["/trpc/server.info", "/trpc/messages.list"] {
        let (_, headers, _) =
            TestApp::send(app.request(Method::GET, path).header("X-Request-Id", given)).await;
        assert_eq!(
            headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            Some(given),
            "{path}"
        );
    }
    // Anything else is replaced by a generated one.
    for insane in ["has space", "x".repeat(65).as_str(), "semi;colon"] {
        let (_, headers, _) = TestApp::send(
            app.request(Method::GET, "/trpc/server.info")
                .header("X-Request-Id", insane),
        )
        .await;
        generated_id(&headers);
    }
}

ecto_tests::per_profile!(
    metrics_move_with_requests_and_sockets,
    metrics_need_the_token_when_one_is_set,
    metrics_are_off_unless_configured,
    every_answer_carries_a_request_id,
    sockets_identifying_at_once_share_one_load,
);
