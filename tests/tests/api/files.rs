//! Uploads (`POST /upload`, `/upload/dm`, `/upload/icon`, `/upload/banner`), file serving
//! (`/files/...`) and the `files` router (DECISIONS §3.11, §3.12, §3.17, §3.23).

use ecto_core::permissions::bits;
use ecto_server::AppConfig;
use ecto_tests::{
    both_profiles, ecto_code, managed_config, next_event, unique, FakeCentral, Profile, Session,
    TestApp,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUNDARY: &str = "ectoTestBoundary7d1f";

/// A PNG file: the signature and an IHDR chunk, padded to `len` bytes.
fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.resize(len.max(bytes.len()), 0);
    bytes
}

/// One part of a multipart form.
enum Part<'a> {
    Field(&'a str, &'a str),
    File {
        name: &'a str,
        filename: &'a str,
        content_type: &'a str,
        bytes: &'a [u8],
    },
}

fn file<'a>(filename: &'a str, content_type: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part::File {
        name: "file",
        filename,
        content_type,
        bytes,
    }
}

/// A `multipart/form-data` body.
fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Field(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File {
                name,
                filename,
                content_type,
                bytes,
            } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `POST path` with a multipart body; status, headers, JSON body.
async fn post_form(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    parts: &[Part<'_>],
) -> (StatusCode, HeaderMap, Value) {
    let mut rb = app
        .request(Method::POST, path)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(parts));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    TestApp::send(rb).await
}

/// `GET` (or another method) of a URL path, optionally with a token and extra headers; status,
/// headers and raw body.
async fn fetch(
    app: &TestApp,
    method: Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut rb = app.request(method, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn ok(app: &TestApp, proc_: &str, input: Value, s: &Session) -> Value {
    let (status, body) = app.mutate(proc_, input, Some(&s.token)).await;
    assert_eq!(status, StatusCode::OK, "{proc_}: {body}");
    body["result"]["data"].clone()
}

async fn channel(app: &TestApp, owner: &Session, name: &str) -> String {
    let c = ok(
        app,
        "channels.create",
        json!({ "name": name, "type": "text" }),
        owner,
    )
    .await;
    c["id"].as_str().expect("channel id").to_owned()
}

/// Uploads `bytes` to `channel` and returns the answer; panics unless it is 200.
async fn upload(
    app: &TestApp,
    s: &Session,
    channel: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> Value {
    let (status, _, body) = post_form(
        app,
        "/upload",
        Some(&s.token),
        &[
            Part::Field("channel_id", channel),
            file(filename, content_type, bytes),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "upload: {body}");
    body
}

fn url(v: &Value) -> String {
    v["url"].as_str().expect("url").to_owned()
}

/// The URL path without its query.
fn unsigned(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

// ---------------------------------------------------------------------------------------------

async fn upload_stores_a_file_and_serves_it_by_signed_url(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let ch = channel(&app, &owner, "general").await;
    let bytes = b"hello, world\n".repeat(100);
    let up = upload(&app, &member, &ch, "notes.txt", "text/plain", &bytes).await;
    assert_eq!(up["filename"], "notes.txt");
    assert_eq!(up["content_type"], "text/plain");
    assert_eq!(up["size_bytes"], bytes.len());
    let link = url(&up);
    assert!(link.starts_with("/files/"), "{link}");
    assert!(link.contains("?exp=") && link.contains("&sig="), "{link}");
    assert!(link.contains(&ch), "the key holds the channel id: {link}");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM attachments WHERE id = '{}' AND message_id IS NULL",
            up["id"].as_str().unwrap_or("")
        ))
        .await,
        1,
        "an unlinked attachment row"
    );

    // The signed URL works without a token, with the safety headers.
    let (status, headers, body) = fetch(&app, Method::GET, &link, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert_eq!(header(&headers, "content-type"), "text/plain");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(header(&headers, "content-security-policy").contains("sandbox"));
    assert!(header(&headers, "content-disposition").starts_with("inline"));
    assert_eq!(header(&headers, "accept-ranges"), "bytes");
    let (status, headers, body) = fetch(&app, Method::HEAD, &link, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "content-length"), bytes.len().to_string());

    // Linked to a message, the attachment comes back signed in listings.
    let sent = ok(
        &app,
        "messages.send",
        json!({ "channel_id": ch, "content": "see file", "attachment_ids": [up["id"]] }),
        &member,
    )
    .await;
    let listed_url = url(&sent["attachments"][0]);
    assert!(listed_url.contains("&sig="), "{listed_url}");
    let (status, body) = app
        .query(
            "messages.list",
            Some(json!({ "channel_id": ch })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = &body["result"]["data"]["messages"][0]["attachments"][0];
    assert_eq!(listed["id"], up["id"]);
    let (status, _, body) = fetch(&app, Method::GET, &url(listed), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);

    // files.getUrl signs a URL for a reader.
    let (status, body) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": up["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = &body["result"]["data"];
    assert_eq!(got["filename"], "notes.txt");
    assert_eq!(got["size_bytes"], bytes.len());
    let (status, _, body) = fetch(&app, Method::GET, &url(got), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
}

both_profiles!(upload_stores_a_file_and_serves_it_by_signed_url);
