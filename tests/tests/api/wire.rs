//! The tRPC wire layer and the plain routes (reference §2.1–2.2).

use ecto_tests::{both_profiles, ecto_code, trpc_code, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn health_answers_ok(app: TestApp) {
    for method in [Method::GET, Method::POST] {
        let (status, _, body) = TestApp::send(app.request(method, "/health")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "status": "ok" }));
    }
}

async fn ready_checks_every_backing_service(app: TestApp) {
    let (status, _, body) = TestApp::send(app.request(Method::GET, "/ready")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    if app.profile == ecto_tests::Profile::Managed {
        assert_eq!(body["checks"]["redis"], "ok");
    }
}

async fn head_root_is_200_and_options_is_a_cors_preflight(app: TestApp) {
    let (status, _, _) = TestApp::send(app.request(Method::HEAD, "/")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, _) =
        TestApp::send(app.request(Method::OPTIONS, "/trpc/server.info")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        headers["access-control-allow-methods"],
        "GET, POST, HEAD, OPTIONS"
    );
    assert_eq!(
        headers["access-control-allow-headers"],
        "Content-Type, Authorization, X-Request-Id"
    );
    assert_eq!(headers["access-control-expose-headers"], "X-Request-Id");
    assert_eq!(headers["access-control-max-age"], "86400");
}

async fn success_envelope_carries_data_and_cors(app: TestApp) {
    let (status, headers, body) =
        TestApp::send(app.request(Method::GET, "/trpc/server.info")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let data = &body["result"]["data"];
    assert_eq!(data["member_count"], 0);
    assert_eq!(data["require_invite"], false);
    let mode = if app.profile == ecto_tests::Profile::Managed {
        "managed"
    } else {
        "self-hosted"
    };
    assert_eq!(data["server"]["hosting_mode"], mode);
    assert!(
        data["server"].get("discoverable").is_none(),
        "config-only keys are for managers"
    );
}

fn assert_error(body: &Value, code: &str, json_rpc: i64, http: i64, path: &str) {
    let err = &body["error"];
    assert_eq!(err["code"], json_rpc, "{body}");
    assert_eq!(err["data"]["code"], code, "{body}");
    assert_eq!(err["data"]["httpStatus"], http, "{body}");
    assert_eq!(err["data"]["path"], path, "{body}");
    assert!(err["message"].is_string());
    assert!(err["data"].get("stack").is_none(), "never a stack trace");
    assert!(err["data"].get("ecto_code").is_some() && err["data"].get("ecto_error").is_some());
}

async fn unknown_procedure_is_not_found(app: TestApp) {
    let (status, body) = app.query("nope.nothing", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "NOT_FOUND", -32004, 404, "nope.nothing");
    assert_eq!(
        body["error"]["message"],
        "No procedure found on path \"nope.nothing\""
    );
    // Paths outside /trpc/<procedures> fall through to the same answer.
    for path in [
        "/what/ever",
        "/trpc",
        "/trpc/",
        "/trpc/server.info/x",
        "/trpc/%zz",
        "/trpcx",
    ] {
        let (status, _, body) = TestApp::send(app.request(Method::GET, path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(trpc_code(&body), "NOT_FOUND", "{path}");
    }
}

async fn method_mismatch_is_405(app: TestApp) {
    let (status, body) = app.query("server.join", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "METHOD_NOT_SUPPORTED", -32005, 405, "server.join");
    let (status, body) = app.mutate("server.info", json!({}), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "METHOD_NOT_SUPPORTED", -32005, 405, "server.info");
}

async fn malformed_json_is_a_parse_error(app: TestApp) {
    let rb = app
        .request(Method::POST, "/trpc/server.join")
        .header("content-type", "application/json")
        .body("{\"username\": ");
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "PARSE_ERROR", -32700, 400, "server.join");
    let rb = app
        .request(Method::GET, "/trpc/server.info")
        .query(&[("input", "{not json")]);
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(trpc_code(&body), "PARSE_ERROR");
}

async fn wrong_content_type_is_415(app: TestApp) {
    let rb = app
        .request(Method::POST, "/trpc/server.join")
        .header("content-type", "text/plain")
        .body("{}");
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&body, "UNSUPPORTED_MEDIA_TYPE", -32015, 415, "server.join");
}

async fn validation_failure_names_the_field_and_rule(app: TestApp) {
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": "bob", "password": "short" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "BAD_REQUEST", -32600, 400, "server.join");
    let msg = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("password") && msg.contains("at least 8"),
        "{msg}"
    );
    assert_eq!(body["error"]["data"]["ecto_code"], Value::Null);

    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": 5, "password": "longenough" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("username"),
        "{body}"
    );

    let (status, body) = app.mutate("server.refreshToken", json!({}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("server_refresh_token"),
        "{body}"
    );

    // Unknown keys are ignored, not rejected.
    let (status, body) = app
        .mutate(
            "server.join",
            json!({ "username": "extra_keys", "password": "longenough", "setup_token": "x" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn batches_answer_arrays_and_refuse_mixing(app: TestApp) {
    let input = json!({ "0": null, "1": null }).to_string();
    let rb = app
        .request(Method::GET, "/trpc/server.info,server.info")
        .query(&[("batch", "1"), ("input", &input)]);
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::OK);
    let items = body.as_array().expect("array");
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|i| i["result"]["data"]["server"]["id"].is_string()));
    // The procedure segment is percent-decoded (a client may escape the comma).
    let rb = app
        .request(Method::GET, "/trpc/server%2Einfo%2Cserver.info")
        .query(&[("batch", "1"), ("input", &input)]);
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");

    let rb = app
        .request(Method::GET, "/trpc/server.info,nope.nothing")
        .query(&[("batch", "1"), ("input", &input)]);
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status.as_u16(), 207, "differing statuses give 207");
    assert_eq!(trpc_code(&body[1]), "NOT_FOUND");
    assert_eq!(body[1]["error"]["data"]["path"], "nope.nothing");

    let rb = app
        .request(Method::POST, "/trpc/server.info,server.leave?batch=1")
        .json(&json!({ "0": {}, "1": {} }));
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let items = body.as_array().expect("array");
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|i| trpc_code(i) == "BAD_REQUEST"),
        "{body}"
    );
}

async fn protected_procedures_need_a_token(app: TestApp) {
    let (status, body) = app.mutate("server.leave", json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "UNAUTHORIZED", -32001, 401, "server.leave");
    let (status, _) = app
        .mutate("server.leave", json!({}), Some("not-a-token"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn oversized_bodies_are_refused_with_413(app: TestApp) {
    let big = "x".repeat(app.config.max_json_body_bytes + 10);
    let rb = app
        .request(Method::POST, "/trpc/server.join")
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{big}\"}}"));
    let (status, _, body) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(trpc_code(&body), "PAYLOAD_TOO_LARGE");
    assert_eq!(ecto_code(&body), Some(9001));
}

async fn browsers_get_a_landing_page(app: TestApp) {
    let rb = app
        .request(Method::GET, "/invite/abcDEF12")
        .header("accept", "text/html,application/xhtml+xml");
    let resp = rb.send().await.expect("landing");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    let html = resp.text().await.expect("html");
    assert!(html.contains("<title>Join "), "{html}");
    assert!(html.contains("og:title"));
    assert!(html.contains("http-equiv=\"refresh\""));
    assert!(html.contains("invite=abcDEF12"), "{html}");
    let rb = app.request(Method::GET, "/").header("accept", "text/html");
    let (status, _, _) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::OK);
}

async fn errors_from_use_cases_carry_ecto_codes(app: TestApp) {
    let (status, body) = app.login("nobody_here", "whatever-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ecto_code(&body), Some(1000));
    assert_eq!(body["error"]["data"]["ecto_error"], "auth_required");
}

both_profiles!(
    health_answers_ok,
    ready_checks_every_backing_service,
    head_root_is_200_and_options_is_a_cors_preflight,
    success_envelope_carries_data_and_cors,
    unknown_procedure_is_not_found,
    method_mismatch_is_405,
    malformed_json_is_a_parse_error,
    wrong_content_type_is_415,
    validation_failure_names_the_field_and_rule,
    batches_answer_arrays_and_refuse_mixing,
    protected_procedures_need_a_token,
    oversized_bodies_are_refused_with_413,
    browsers_get_a_landing_page,
    errors_from_use_cases_carry_ecto_codes,
);
