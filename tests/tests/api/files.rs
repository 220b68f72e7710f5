//! Uploads (`POST /upload`, `/upload/dm`, `/upload/icon`, `/upload/banner`), file serving
//! (`/files/...`) and the `files` router (DECISIONS §3.11, §3.12, §3.17, §3.23).

use ecto_core::permissions::bits;
use ecto_tests::{both_profiles, ecto_code, next_event, unique, Profile, Session, TestApp};
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
                // Names with control characters go as RFC 5987 `filename*`.
                let param = if filename.chars().any(char::is_control) {
                    let encoded: String = filename
                        .bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b == b'.' {
                                (b as char).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect();
                    format!("filename*=UTF-8''{encoded}")
                } else {
                    format!("filename=\"{filename}\"")
                };
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; {param}\r\nContent-Type: {content_type}\r\n\r\n"
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

async fn channel(app: &TestApp, owner: &Session, name: &str) -> String {
    let c = app
        .ok(
            "channels.create",
            json!({ "name": name, "type": "text" }),
            owner,
        )
        .await;
    c["id"].as_str().expect("channel id").to_owned()
}

/// Uploads `bytes` to `channel` and returns the answer; panics unless it is 200.
pub(crate) async fn upload(
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
    assert_eq!(status, StatusCode::OK, "upload of {filename:?}: {body}");
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
    let sent = app
        .ok(
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

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for paths a URL library would normalise and for bodies that keep coming.

fn host(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

fn address_header(app: &TestApp) -> String {
    app.server_address
        .as_ref()
        .map(|a| format!("X-Server-Address: {a}\r\n"))
        .unwrap_or_default()
}

/// Sends `GET {path}` exactly as written; the status and the whole response text.
async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(host(app))
        .await
        .expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{}Connection: close\r\n\r\n",
        host(app),
        address_header(app)
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Starts an upload of `total` zero bytes to `/upload` that is written as fast as the server
/// takes it, with a declared `Content-Length` or chunked. Returns the response status, the
/// bytes written when the response arrived, and the bytes written when the connection broke
/// (more than `total` if it never did).
async fn flood(
    app: &TestApp,
    token: &str,
    channel: &str,
    total: u64,
    declare_length: bool,
) -> (u16, u64, u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let stream = tokio::net::TcpStream::connect(host(app))
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let preamble = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\n{channel}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let length = if declare_length {
        format!("Content-Length: {}\r\n", total + preamble.len() as u64)
    } else {
        "Transfer-Encoding: chunked\r\n".to_owned()
    };
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\n{}Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n{length}\r\n",
        host(app),
        address_header(app)
    );
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let frame = |data: &[u8]| -> Vec<u8> {
            if declare_length {
                data.to_vec()
            } else {
                let mut v = format!("{:x}\r\n", data.len()).into_bytes();
                v.extend_from_slice(data);
                v.extend_from_slice(b"\r\n");
                v
            }
        };
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if wr.write_all(&frame(preamble.as_bytes())).await.is_err() {
            return;
        }
        let chunk = frame(&vec![0u8; 64 * 1024]);
        let mut left = total;
        while left > 0 {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
            left = left.saturating_sub(64 * 1024);
            counter.fetch_add(64 * 1024, Ordering::SeqCst);
        }
        // Everything was taken: count the end as past the total.
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let n = rd.read(&mut byte).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&byte[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&buf)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0)
    })
    .await
    .expect("a response before the body is sent");
    let at_response = sent.load(Ordering::SeqCst);
    // The writer goes on until the server closes the connection.
    let ended = tokio::time::timeout(Duration::from_secs(10), writer).await;
    assert!(ended.is_ok(), "the server kept reading the body");
    (status, at_response, sent.load(Ordering::SeqCst))
}

const GIB: u64 = 1024 * 1024 * 1024;

async fn uploads_past_the_limit_are_refused_without_reading_them(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let ch = channel(&app, &owner, "big").await;
    app.ok(
        "serverConfig.update",
        json!({ "max_upload_size_bytes": 1000 }),
        &owner,
    )
    .await;

    // Declared too large: refused up front.
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&owner.token),
        &[
            Part::Field("channel_id", &ch),
            file("a.bin", "application/octet-stream", &[7u8; 70 * 1024]),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "File too large");

    // Within the declared slack but over the file limit: cut off by the store.
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&owner.token),
        &[
            Part::Field("channel_id", &ch),
            file("b.bin", "application/octet-stream", &[7u8; 2000]),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A declared 1 GiB body is answered before (almost) any of it is sent; the connection is
    // then closed (actix discards what arrives for at most its one-second linger).
    let (status, at_response, _) = flood(&app, &owner.token, &ch, GIB, true).await;
    assert_eq!(status, 413);
    assert!(at_response < 64 * 1024 * 1024, "{at_response} bytes sent");
    // A chunked body that keeps coming is cut off at the limit, and the server closes the
    // connection instead of draining the rest: the writer breaks long before 64 GiB.
    let (status, at_response, later) = flood(&app, &owner.token, &ch, 64 * GIB, false).await;
    assert_eq!(status, 413);
    assert!(at_response < 64 * 1024 * 1024, "{at_response} bytes sent");
    assert!(
        later < 64 * GIB,
        "the server kept reading: {later} bytes sent"
    );

    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM attachments WHERE server_id = '{}'",
            app.server_id().await
        ))
        .await,
        0,
        "no row for a refused upload"
    );
    if app.profile == Profile::SelfHosted {
        // Nothing kept: no partial file, no temporary file.
        let uploads = app.config.upload_dir.clone();
        let mut stack = vec![uploads];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("upload dir") {
                let entry = entry.expect("entry");
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    panic!("left behind: {}", entry.path().display());
                }
            }
        }
    }

    // The process-wide cap applies on top of the server's setting (checked in the quota test's
    // server, which has MAX_UPLOAD_SIZE_BYTES).
}

async fn upload_routes_refuse_with_the_right_status(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let ch = channel(&app, &owner, "general").await;
    let txt = file("a.txt", "text/plain", b"hello");

    // No token, a bad token: 401 (not the reference's 500).
    let (status, _, body) = post_form(
        &app,
        "/upload",
        None,
        &[
            Part::Field("channel_id", &ch),
            file("a.txt", "text/plain", b"x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "Unauthorized");
    let (status, _, _) = post_form(
        &app,
        "/upload",
        Some("not-a-token"),
        &[
            Part::Field("channel_id", &ch),
            file("a.txt", "text/plain", b"x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Not multipart, no file, no or a bad channel_id: 400; an unknown channel: 404.
    let (status, _, body) = TestApp::send(
        app.request(Method::POST, "/upload")
            .bearer_auth(&member.token)
            .json(&json!({ "channel_id": ch })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "Expected multipart/form-data");
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&member.token),
        &[Part::Field("channel_id", &ch)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "No file provided");
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&member.token),
        &[file("a.txt", "text/plain", b"x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "channel_id required");
    let (status, _, _) = post_form(
        &app,
        "/upload",
        Some(&member.token),
        &[
            Part::Field("channel_id", "nope"),
            file("a.txt", "text/plain", b"x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&member.token),
        &[
            Part::Field("channel_id", &unknown),
            file("a.txt", "text/plain", b"x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "Channel not found");

    // Without ATTACH_FILES in the channel: 403 (also when the channel is in the query).
    let everyone = TestApp::everyone_role(&owner);
    let locked = app.ok("channels.create", json!({ "name": "no-files", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::ATTACH_FILES } ] }), &owner).await;
    let locked = locked["id"].as_str().expect("id").to_owned();
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&member.token),
        &[Part::Field("channel_id", &locked), txt],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = post_form(
        &app,
        &format!("/upload?channel_id={locked}"),
        Some(&member.token),
        &[file("a.txt", "text/plain", b"x")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The owner may; the channel can also come in the query string.
    let (status, _, body) = post_form(
        &app,
        &format!("/upload?channel_id={locked}"),
        Some(&owner.token),
        &[file("a.txt", "text/plain", b"x")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A member who left is no longer accepted on /upload/dm (any valid token was, before), nor
    // on /upload, nor served their own file by /files: 403 with ecto 2002's message (these
    // routes answer `{"error": message}`, without codes), not 401.
    let (status, _, dm_up) = post_form(
        &app,
        "/upload/dm",
        Some(&member.token),
        &[file("d.txt", "text/plain", b"dm")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let own_file = format!("/files/{}/d.txt", dm_up["id"].as_str().expect("id"));
    assert_eq!(
        fetch(&app, Method::GET, &own_file, Some(&member.token), &[])
            .await
            .0,
        StatusCode::OK,
        "the uploader's own file"
    );
    app.ok("server.leave", json!({}), &member).await;
    let not_a_member = json!({ "error": "Not a member of this server" });
    let (status, _, body) = post_form(
        &app,
        "/upload/dm",
        Some(&member.token),
        &[file("d.txt", "text/plain", b"dm")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a former member's token");
    assert_eq!(body, not_a_member);
    let (status, _, body) = post_form(
        &app,
        &format!("/upload?channel_id={ch}"),
        Some(&member.token),
        &[file("a.txt", "text/plain", b"x")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a former member's token");
    assert_eq!(body, not_a_member);
    let (status, _, body) = fetch(&app, Method::GET, &own_file, Some(&member.token), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a former member's token");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json"),
        not_a_member
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM attachments WHERE uploader_id = '{}'",
            member.user_id
        ))
        .await,
        1,
        "only the accepted uploads have rows"
    );
}

/// Non-image files count against STORAGE_QUOTA_BYTES; real images do not; a file declared as
/// an image whose bytes are not one counts. MAX_UPLOAD_SIZE_BYTES caps the server's limit.
async fn quota_and_process_cap(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.storage_quota_bytes = 3000;
        c.max_upload_size_bytes = 20_000;
    })
    .await;
    let owner = app.register(&unique("own"), "password-1").await;
    let ch = channel(&app, &owner, "files").await;
    upload(
        &app,
        &owner,
        &ch,
        "one.bin",
        "application/octet-stream",
        &[1u8; 2000],
    )
    .await;
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&owner.token),
        &[
            Part::Field("channel_id", &ch),
            file("two.bin", "application/octet-stream", &[2u8; 2000]),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("Storage quota exceeded"),
        "{body}"
    );
    // A fake PNG counts like any other file.
    let (status, _, _) = post_form(
        &app,
        "/upload",
        Some(&owner.token),
        &[
            Part::Field("channel_id", &ch),
            file("fake.png", "image/png", &[3u8; 2000]),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A real image does not.
    let img = upload(&app, &owner, &ch, "pic.png", "image/png", &png(4000)).await;
    assert_eq!(img["content_type"], "image/png");
    // Under the quota still fits.
    upload(
        &app,
        &owner,
        &ch,
        "small.bin",
        "application/octet-stream",
        &[4u8; 900],
    )
    .await;

    // The server allows 5 MiB by default; MAX_UPLOAD_SIZE_BYTES (20 000) caps it.
    let (status, _, body) = post_form(
        &app,
        "/upload",
        Some(&owner.token),
        &[
            Part::Field("channel_id", &ch),
            file("big.png", "image/png", &png(30_000)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "File too large");
    let server = app.server_id().await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM attachments WHERE server_id = '{server}'"
        ))
        .await,
        3
    );
}

mod quota {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quota_and_process_cap_self_hosted() {
        super::quota_and_process_cap(ecto_tests::Profile::SelfHosted).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quota_and_process_cap_managed() {
        super::quota_and_process_cap(ecto_tests::Profile::Managed).await;
    }
}

async fn server_icon_and_banner_accept_only_real_images(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let mut events = app.events().await;
    let (status, _, body) = post_form(
        &app,
        "/upload/icon",
        Some(&owner.token),
        &[file("logo.png", "image/png", &png(5000))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let icon = body["icon_url"].as_str().expect("icon_url").to_owned();
    assert!(
        icon.starts_with("http://") && icon.contains("/files/") && icon.ends_with(".png"),
        "{icon}"
    );
    let event = next_event(&mut events, "server.update").await;
    assert_eq!(event.data["icon_url"], icon);
    let (status, info) = app.query("server.info", None, Some(&member.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["result"]["data"]["server"]["icon_url"], icon);
    // Icons are public: no signature, no token.
    let path = &icon[icon.find("/files/").expect("path")..];
    let (status, headers, bytes) = fetch(&app, Method::GET, path, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, png(5000));
    assert_eq!(header(&headers, "content-type"), "image/png");

    // A new icon replaces the old one, whose file goes.
    let (status, _, body) = post_form(
        &app,
        "/upload/icon",
        Some(&owner.token),
        &[file(
            "logo2.webp",
            "image/webp",
            b"RIFF\0\0\0\0WEBPVP8 ....",
        )],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let icon2 = body["icon_url"].as_str().expect("icon_url").to_owned();
    assert!(icon2.ends_with(".webp"), "{icon2}");
    assert_eq!(
        fetch(&app, Method::GET, path, None, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let icon = icon2;

    // A GIF banner; its declared type does not matter, its bytes do.
    let mut gif = b"GIF89a".to_vec();
    gif.resize(3000, 0);
    let (status, _, body) = post_form(
        &app,
        "/upload/banner",
        Some(&owner.token),
        &[file("b.gif", "application/octet-stream", &gif)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["banner_url"].as_str().unwrap_or("").ends_with(".gif"));

    // Not an image (whatever it says), SVG: 415. Too large: 413. Not a manager: 403.
    for (name, ct, bytes) in [
        (
            "x.png",
            "image/png",
            b"<html><script>alert(1)</script></html>".to_vec(),
        ),
        (
            "x.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        ),
    ] {
        let (status, _, body) = post_form(
            &app,
            "/upload/icon",
            Some(&owner.token),
            &[file(name, ct, &bytes)],
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {body}");
    }
    let (status, _, body) = post_form(
        &app,
        "/upload/icon",
        Some(&owner.token),
        &[file("big.png", "image/png", &png(2 * 1024 * 1024 + 1))],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "Icon must be under 2MB");
    let (status, _, body) = post_form(
        &app,
        "/upload/banner",
        Some(&owner.token),
        &[file("big.png", "image/png", &png(800 * 1024 + 1))],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "Banner must be under 800KB");
    let (status, _, _) = post_form(
        &app,
        "/upload/icon",
        Some(&member.token),
        &[file("logo.png", "image/png", &png(100))],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, info) = app.query("server.info", None, Some(&member.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info["result"]["data"]["server"]["icon_url"], icon,
        "unchanged by refusals"
    );
}

/// A clock two days behind, to sign URLs that have expired.
struct TwoDaysAgo;
impl ecto_core::ports::Clock for TwoDaysAgo {
    fn now(&self) -> ecto_core::model::Timestamp {
        chrono::Utc::now() - chrono::Duration::days(2)
    }
}

async fn files_are_served_only_to_those_who_may_read_them(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let everyone = TestApp::everyone_role(&owner);
    let hidden = app.ok("channels.create", json!({ "name": "staff", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::READ_MESSAGES } ] }), &owner).await;
    let hidden = hidden["id"].as_str().expect("id").to_owned();
    let up = upload(
        &app,
        &owner,
        &hidden,
        "plan.txt",
        "text/plain",
        b"0123456789",
    )
    .await;
    app.ok(
        "messages.send",
        json!({ "channel_id": hidden, "content": "plan", "attachment_ids": [up["id"]] }),
        &owner,
    )
    .await;
    let signed = url(&up);
    let path = unsigned(&signed).to_owned();

    // Signed: works. Tampered, for another file, expired: 401. No auth: 401.
    let (status, _, body) = fetch(&app, Method::GET, &signed, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"0123456789");
    let tampered = format!(
        "{}{}",
        &signed[..signed.len() - 1],
        if signed.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(
        fetch(&app, Method::GET, &tampered, None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let later_exp = signed.replace("?exp=", "?exp=9");
    assert_eq!(
        fetch(&app, Method::GET, &later_exp, None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut past = app.services.clone();
    past.clock = std::sync::Arc::new(TwoDaysAgo);
    let expired = ecto_core::usecases::base::signing::signed_url(&past, &path);
    assert!(expired.contains("&sig="));
    assert_eq!(
        fetch(&app, Method::GET, &expired, None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, body) = fetch(&app, Method::GET, &path, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!String::from_utf8_lossy(&body).contains("0123456789"));

    // A token of a member who can read the channel works; one who cannot gets 403.
    let (status, _, body) = fetch(&app, Method::GET, &path, Some(&owner.token), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"0123456789");
    assert_eq!(
        fetch(&app, Method::GET, &path, Some(&member.token), &[])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": up["id"] })),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(ecto_code(&body), Some(5001));

    // `/files/{attachment_id}/{filename}`, the form the reference hands out: the same rule.
    let by_id = format!("/files/{}/plan%20v2.txt", up["id"].as_str().expect("id"));
    let (status, _, body) = fetch(&app, Method::GET, &by_id, Some(&owner.token), &[]).await;
    assert_eq!(status, StatusCode::OK, "a reader's token");
    assert_eq!(body, b"0123456789");
    assert_eq!(
        fetch(&app, Method::GET, &by_id, None, &[]).await.0,
        StatusCode::UNAUTHORIZED,
        "no token, no signature"
    );
    assert_eq!(
        fetch(&app, Method::GET, &by_id, Some(&member.token), &[])
            .await
            .0,
        StatusCode::FORBIDDEN,
        "a member who cannot read the channel"
    );
    let unknown = format!("/files/{}/plan.txt", uuid::Uuid::now_v7());
    assert_eq!(
        fetch(&app, Method::GET, &unknown, Some(&owner.token), &[])
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Ranges.
    let (status, headers, body) =
        fetch(&app, Method::GET, &signed, None, &[("Range", "bytes=2-5")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"2345");
    assert_eq!(header(&headers, "content-range"), "bytes 2-5/10");
    let (status, _, body) = fetch(&app, Method::GET, &signed, None, &[("Range", "bytes=7-")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"789");
    let (status, headers, body) =
        fetch(&app, Method::GET, &signed, None, &[("Range", "bytes=-3")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"789");
    assert_eq!(header(&headers, "content-range"), "bytes 7-9/10");
    let (status, headers, _) =
        fetch(&app, Method::GET, &signed, None, &[("Range", "bytes=10-")]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&headers, "content-range"), "bytes */10");
    let (status, headers, body) =
        fetch(&app, Method::HEAD, &signed, None, &[("Range", "bytes=0-3")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "content-length"), "4");

    // Active content is never served inline.
    let ch = channel(&app, &owner, "general").await;
    for (name, ct, bytes) in [
        (
            "page.html",
            "text/html",
            b"<html><script>alert(document.cookie)</script></html>".to_vec(),
        ),
        (
            "img.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec(),
        ),
        (
            "feed.xml",
            "application/xml",
            b"<?xml version=\"1.0\"?><x/>".to_vec(),
        ),
        ("app.js", "text/javascript", b"alert(1)".to_vec()),
        (
            "fake.png",
            "image/png",
            b"<html><script>alert(1)</script></html>".to_vec(),
        ),
    ] {
        let up = upload(&app, &owner, &ch, name, ct, &bytes).await;
        let (status, headers, body) = fetch(&app, Method::GET, &url(&up), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(body, bytes);
        let disposition = header(&headers, "content-disposition");
        assert!(
            disposition.starts_with("attachment"),
            "{name}: {disposition}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{name}"
        );
        assert_eq!(
            header(&headers, "content-security-policy"),
            "sandbox; default-src 'none'",
            "{name}"
        );
    }
}

async fn dm_uploads_are_for_the_two_participants(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let alice = app.register(&unique("ali"), "password-2").await;
    let bob = app.register(&unique("bob"), "password-3").await;
    app.ok(
        "serverConfig.update",
        json!({ "allow_member_dms": true }),
        &owner,
    )
    .await;
    let (status, _, up) = post_form(
        &app,
        "/upload/dm",
        Some(&alice.token),
        &[file("secret.txt", "text/plain", b"for bob")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert!(url(&up).contains("/dm/"), "{up}");
    let path = unsigned(&url(&up)).to_owned();
    // Unlinked: only the uploader.
    assert_eq!(
        fetch(&app, Method::GET, &path, Some(&alice.token), &[])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, Method::GET, &path, Some(&bob.token), &[])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let sent = app
        .ok(
            "serverDms.send",
            json!({ "recipient_id": bob.user_id, "content": "here", "attachment_ids": [up["id"]] }),
            &alice,
        )
        .await;
    assert!(url(&sent["attachments"][0]).contains("&sig="), "{sent}");
    let (status, _, body) = fetch(&app, Method::GET, &path, Some(&bob.token), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"for bob");
    assert_eq!(
        fetch(&app, Method::GET, &path, Some(&owner.token), &[])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": up["id"] })),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": up["id"] })),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn no_path_leaves_the_storage_root(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let ch = channel(&app, &owner, "general").await;
    // A sentinel next to the upload directory (self-hosted: inside the data directory).
    let sentinel = app.data_path().join("sentinel.txt");
    std::fs::write(&sentinel, "SENTINEL-CONTENT").expect("sentinel");

    // Names that try to climb out are reduced to their last component.
    for raw in [
        "../sentinel.txt",
        "../../sentinel.txt",
        "/etc/passwd",
        "..\\..\\sentinel.txt",
        "a%2e%2e%2fb.txt",
        "nul\u{0}byte.txt",
        "..",
        "line\nbreak.txt",
        "../../../../x.txt",
        "a b (1).txt",
        "ünïcødé ✓.txt",
        "CON.txt",
        "trailing.dot.",
        "quote\"d'.txt",
        "semi;colon=equals&amp.txt",
    ] {
        let escaped = raw.replace('\\', "\\\\").replace('"', "\\\"");
        let up = upload(&app, &owner, &ch, &escaped, "text/plain", b"overwrite?").await;
        let name = up["filename"].as_str().expect("filename");
        assert!(
            !name.contains('/')
                && !name.contains('\\')
                && !name.contains('\0')
                && !name.contains('\n'),
            "{raw:?} -> {name:?}"
        );
        let link = url(&up);
        assert!(!unsigned(&link).contains(".."), "{link}");
        assert!(!unsigned(&link).contains('%'), "{link}");
        let (status, _, body) = fetch(&app, Method::GET, &link, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{raw:?}");
        assert_eq!(body, b"overwrite?");
    }
    // A name longer than any storage allows, and an empty file.
    let long = format!("{}.txt", "é".repeat(300));
    let up = upload(&app, &owner, &ch, &long, "text/plain", b"long").await;
    assert_eq!(
        fetch(&app, Method::GET, &url(&up), None, &[]).await.2,
        b"long"
    );
    let up = upload(&app, &owner, &ch, "empty.txt", "text/plain", b"").await;
    let (status, _, body) = fetch(&app, Method::GET, &url(&up), None, &[]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(
        std::fs::read_to_string(&sentinel).expect("sentinel"),
        "SENTINEL-CONTENT"
    );

    // Paths that try to climb out are 404 before storage is touched.
    let server = app.server_id().await;
    for path in [
        "/files/../sentinel.txt".to_owned(),
        "/files/..%2fsentinel.txt".to_owned(),
        "/files/%2e%2e%2fsentinel.txt".to_owned(),
        "/files/%2e%2e/%2e%2e/sentinel.txt".to_owned(),
        format!("/files/{server}/..%2f..%2f..%2fsentinel.txt"),
        format!("/files/{server}/../../sentinel.txt"),
        "/files//etc/passwd".to_owned(),
        "/files/%2fetc%2fpasswd".to_owned(),
        "/files/a%00b".to_owned(),
        format!("/files/{server}/icons/x.png%00.txt"),
        "/files/..\\..\\sentinel.txt".to_owned(),
        "/files/".to_owned(),
        // A name longer than a file name may be (it was a 500 from the disk store).
        format!("/files/{server}/icons/{}.png", "a".repeat(300)),
        format!("/files/{}/x.txt", "b".repeat(300)),
    ] {
        let (status, text) = raw_get(&app, &path).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(!text.contains("SENTINEL-CONTENT"), "{path}");
        assert!(!text.contains("root:"), "{path}");
    }
    assert_eq!(
        std::fs::read_to_string(&sentinel).expect("sentinel"),
        "SENTINEL-CONTENT"
    );
}

async fn files_router_records_metadata_and_signs_urls(app: TestApp) {
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let ch = channel(&app, &owner, "general").await;
    let meta = app.ok("files.upload", json!({ "channel_id": ch, "filename": "../../report.pdf", "content_type": "application/pdf", "size_bytes": 1234 }), &member).await;
    assert_eq!(meta["filename"], "report.pdf");
    assert_eq!(meta["size_bytes"], 1234);
    assert!(url(&meta).contains("&sig="));
    // No bytes were stored: its URL serves 404.
    assert_eq!(
        fetch(&app, Method::GET, &url(&meta), None, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": meta["id"] })),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["data"]["filename"], "report.pdf");

    // Refusals: bad input 400, unknown channel 404 3000, no ATTACH_FILES 403, unknown id 404 4002.
    let (status, _) = app.mutate("files.upload", json!({ "channel_id": ch, "filename": "", "content_type": "text/plain", "size_bytes": 1 }), Some(&member.token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.mutate("files.upload", json!({ "channel_id": ch, "filename": "a", "content_type": "text/plain", "size_bytes": 0 }), Some(&member.token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app.mutate("files.upload", json!({ "channel_id": uuid::Uuid::now_v7(), "filename": "a", "content_type": "text/plain", "size_bytes": 1 }), Some(&member.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ecto_code(&body), Some(3000));
    let (status, body) = app.mutate("files.upload", json!({ "channel_id": ch, "filename": "a", "content_type": "text/plain", "size_bytes": 6_000_000 }), Some(&member.token)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let everyone = TestApp::everyone_role(&owner);
    let locked = app.ok("channels.create", json!({ "name": "no-files", "type": "text", "permission_overrides": [
        { "target_type": "role", "target_id": everyone, "allow": 0, "deny": bits::ATTACH_FILES } ] }), &owner).await;
    let (status, body) = app.mutate("files.upload", json!({ "channel_id": locked["id"], "filename": "a", "content_type": "text/plain", "size_bytes": 1 }), Some(&member.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ecto_code(&body), Some(5001));
    let (status, body) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": uuid::Uuid::now_v7() })),
            Some(&member.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ecto_code(&body), Some(4002));
    let (status, _) = app
        .query(
            "files.getUrl",
            Some(json!({ "attachment_id": meta["id"] })),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Writes `head` then each of `pieces` `every` apart, and reads the answer: its status, its
/// text, and how long after the head it came (`None` when none came in 20 s).
async fn trickle(
    app: &TestApp,
    head: String,
    pieces: Vec<Vec<u8>>,
    every: Duration,
) -> (u16, String, Option<Duration>) {
    let stream = tokio::net::TcpStream::connect(host(app))
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let started = std::time::Instant::now();
    wr.write_all(head.as_bytes()).await.expect("head");
    let writer = tokio::spawn(async move {
        for piece in pieces {
            if wr.write_all(&piece).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
        // Then silence, the connection held open.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(wr);
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        while !String::from_utf8_lossy(&out).contains("\r\n\r\n{") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        // The JSON body follows in the same write or the next.
        let _ = tokio::time::timeout(Duration::from_millis(200), rd.read(&mut buf)).await;
    })
    .await
    .is_ok();
    writer.abort();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text, answered.then(|| started.elapsed()))
}

/// A request body that goes silent, or comes slower than REQUEST_BODY_MIN_RATE, is cut off
/// with 408 (tRPC and uploads alike), and an upload cut off so leaves no file behind; a body
/// that keeps pace is read as usual.
async fn slow_bodies_are_cut_off(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.request_body_idle_ms = 1_000;
        c.request_body_min_rate = 1_024;
    })
    .await;
    let owner = app.register(&unique("own"), "password-1").await;
    let ch = channel(&app, &owner, "general").await;
    let trpc_head = |length: usize| {
        format!(
            "POST /trpc/messages.send HTTP/1.1\r\nHost: {}\r\n{}Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
            host(&app),
            address_header(&app),
            owner.token
        )
    };
    // Silent after its first byte.
    let (status, text, after) = trickle(
        &app,
        trpc_head(2_000),
        vec![b"{".to_vec()],
        Duration::from_millis(10),
    )
    .await;
    assert_eq!(status, 408, "{text}");
    assert!(
        text.contains("TIMEOUT") && text.contains("Request body too slow"),
        "{text}"
    );
    let after = after.expect("answered");
    assert!(after < Duration::from_secs(5), "{after:?}");
    // A byte every 100 ms: never silent for a second, but far under 1 KiB/s.
    let (status, text, _) = trickle(
        &app,
        trpc_head(2_000),
        vec![b" ".to_vec(); 100],
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(status, 408, "{text}");
    // The same body at pace is read and the message sent.
    let body = json!({ "channel_id": ch, "content": "at pace" }).to_string();
    let mut padded = body.clone().into_bytes();
    padded.resize(2_000, b' ');
    let pieces: Vec<Vec<u8>> = padded.chunks(500).map(<[u8]>::to_vec).collect();
    let (status, text, _) =
        trickle(&app, trpc_head(2_000), pieces, Duration::from_millis(100)).await;
    assert_eq!(status, 200, "{text}");

    // An upload whose file part stops coming.
    let preamble = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\n{ch}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\n{}Authorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        host(&app),
        address_header(&app),
        owner.token,
        preamble.len() + 100_000
    );
    let mut first = preamble.into_bytes();
    first.extend_from_slice(&[7u8; 20_000]);
    let (status, text, _) = trickle(&app, head, vec![first], Duration::from_millis(10)).await;
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("Request body too slow"), "{text}");
    if profile == Profile::SelfHosted {
        // Nothing of it stays on disk, finished or not.
        let mut stack = vec![app.config.upload_dir.clone()];
        let mut files = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("upload dir").flatten() {
                if entry.file_type().expect("type").is_dir() {
                    stack.push(entry.path());
                } else {
                    files.push(entry.path());
                }
            }
        }
        assert!(files.is_empty(), "{files:?}");
    }
}

mod paced {
    use super::*;
    ecto_tests::per_profile!(slow_bodies_are_cut_off);
}

both_profiles!(
    upload_stores_a_file_and_serves_it_by_signed_url,
    uploads_past_the_limit_are_refused_without_reading_them,
    upload_routes_refuse_with_the_right_status,
    server_icon_and_banner_accept_only_real_images,
    files_are_served_only_to_those_who_may_read_them,
    dm_uploads_are_for_the_two_participants,
    no_path_leaves_the_storage_root,
    files_router_records_metadata_and_signs_urls,
);
