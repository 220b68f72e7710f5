//! `GET /api/unfurl`: a member's token, http(s) only, and the address guard (DECISIONS §3.18):
//! nothing but public addresses is ever fetched, except hosts in the test-only allow-list.

use ecto_tests::{unique, Profile, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const OG_PAGE: &str = r#"<!doctype html><html><head>
<meta property="og:title" content="Test &amp; Page">
<meta name="description" content="A page for tests">
<meta property="og:image" content="/img.png">
<meta property="og:site_name" content="Local">
</head><body>hi</body></html>"#;

/// A tiny HTTP site on a loopback address, counting the requests it gets.
struct Site {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Site {
    async fn spawn(ip: &str, other: Option<SocketAddr>) -> Option<Site> {
        let listener = TcpListener::bind((ip, 0)).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while n < buf.len() {
                        match sock.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let response = respond(&path, addr, other);
                    let _ = sock.write_all(&response).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Some(Site { addr, hits })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn respond(path: &str, me: SocketAddr, other: Option<SocketAddr>) -> Vec<u8> {
    let html = [("Content-Type", "text/html; charset=utf-8")];
    let redirect = |to: &str| http("302 Found", &[("Location", to)], b"");
    match path {
        "/og" => http("200 OK", &html, OG_PAGE.as_bytes()),
        "/plain" => http(
            "200 OK",
            &[("Content-Type", "text/plain")],
            OG_PAGE.as_bytes(),
        ),
        // The tags come after the first 100 KB: never read.
        "/late" => {
            let mut body = "<!-- filler -->".repeat(120 * 1024 / 15).into_bytes();
            body.extend_from_slice(OG_PAGE.as_bytes());
            http("200 OK", &html, &body)
        }
        // The tags come first, then 1 MB the reader stops before.
        "/early" => {
            let mut body = OG_PAGE.as_bytes().to_vec();
            body.extend(std::iter::repeat_n(b' ', 1024 * 1024));
            http("200 OK", &html, &body)
        }
        "/to-og" => redirect("/og"),
        "/loop" => redirect("/loop"),
        "/to-ten" => redirect("http://10.0.0.1/"),
        "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-other" => match other {
            Some(o) => redirect(&format!("http://{o}/og")),
            None => redirect(&format!("http://127.0.0.2:{}/og", me.port())),
        },
        _ => http("404 Not Found", &html, b"missing"),
    }
}

async fn unfurl(app: &TestApp, url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut rb = app
        .request(Method::GET, "/api/unfurl")
        .query(&[("url", url)]);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Without an allow-list, no loopback or private form is ever fetched: the local site gets no
/// request whichever way its address is written.
async fn private_addresses_are_never_fetched(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let member = app.register(&unique("mem"), "password-1").await;
    let t = Some(member.token.as_str());
    let site = Site::spawn("127.0.0.1", None).await.expect("loopback site");
    let port = site.addr.port();
    let site6 = Site::spawn("::1", None).await;
    let mut urls = vec![
        format!("http://127.0.0.1:{port}/og"),
        format!("http://0.0.0.0:{port}/og"),
        format!("http://2130706433:{port}/og"),
        format!("http://0x7f000001:{port}/og"),
        format!("http://0177.0.0.1:{port}/og"),
        format!("http://127.1:{port}/og"),
        format!("http://[::ffff:127.0.0.1]:{port}/og"),
        format!("http://[::ffff:7f00:1]:{port}/og"),
        format!("http://localhost:{port}/og"),
        format!("HTTP://LOCALHOST:{port}/og"),
        "http://127.0.0.1/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://[::1]/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://0.0.0.0/".to_owned(),
        "http://2130706433/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://[fd00::1]/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://224.0.0.1/".to_owned(),
        "http://255.255.255.255/".to_owned(),
    ];
    if let Some(s6) = &site6 {
        urls.push(format!("http://[::1]:{}/og", s6.addr.port()));
    }
    for url in &urls {
        let started = Instant::now();
        let (status, body) = unfurl(&app, url, t).await;
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "{url} must be refused: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{url} was refused without trying to connect"
        );
    }
    assert_eq!(site.hits(), 0, "the loopback site was never contacted");
    if let Some(s6) = &site6 {
        assert_eq!(s6.hits(), 0, "the ::1 site was never contacted");
    }
}

/// Only a member's valid token, only http(s).
async fn needs_a_member_token_and_an_http_url(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let member = app.register(&unique("mem"), "password-1").await;
    let (status, body) = unfurl(&app, "https://example.com/", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "Unauthorized");
    let (status, _) = unfurl(&app, "https://example.com/", Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let t = Some(member.token.as_str());
    for url in [
        "ftp://example.com/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "example.com",
        "",
    ] {
        let (status, body) = unfurl(&app, url, t).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
}

/// With 127.0.0.1 allow-listed (tests only), the local site is previewed; everything else
/// stays refused, including redirects to other private addresses.
async fn allow_listed_site_is_previewed(profile: Profile) {
    let app = TestApp::spawn_with(profile, |c| {
        c.unfurl_allow_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let member = app.register(&unique("mem"), "password-1").await;
    let t = Some(member.token.as_str());
    let other = Site::spawn("127.0.0.2", None).await;
    let site = Site::spawn("127.0.0.1", other.as_ref().map(|o| o.addr))
        .await
        .expect("loopback site");

    let (status, body) = unfurl(&app, &site.url("/og"), t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], site.url("/og"));
    assert_eq!(body["title"], "Test & Page");
    assert_eq!(body["description"], "A page for tests");
    assert_eq!(body["image"], site.url("/img.png"));
    assert_eq!(body["siteName"], "Local");
    let hits = site.hits();
    // Cached: the same URL is not fetched again, and the answer is cacheable.
    let resp = app
        .request(Method::GET, "/api/unfurl")
        .query(&[("url", site.url("/og"))])
        .bearer_auth(&member.token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=600")
    );
    assert_eq!(site.hits(), hits, "served from the cache");

    // Not HTML, or tags past the first 100 KB: nothing.
    let (status, _) = unfurl(&app, &site.url("/plain"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = unfurl(&app, &site.url("/late"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the body is cut at 100 KB");
    let (status, body) = unfurl(&app, &site.url("/early"), t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["title"], "Test & Page");

    // A redirect within the allowed host is followed.
    let (status, body) = unfurl(&app, &site.url("/to-og"), t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], site.url("/to-og"));
    // Redirects to other private addresses are refused, and never contacted.
    for path in ["/to-other", "/to-ten", "/to-metadata"] {
        let started = Instant::now();
        let (status, body) = unfurl(&app, &site.url(path), t).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {body}");
        assert!(started.elapsed() < Duration::from_secs(3), "{path}");
    }
    if let Some(o) = &other {
        assert_eq!(o.hits(), 0, "127.0.0.2 is not allow-listed");
    }
    // At most 3 redirects: the first request and 3 more, then it stops.
    let before = site.hits();
    let (status, _) = unfurl(&app, &site.url("/loop"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(site.hits() - before, 4);
    // Other loopback forms are not covered by the allow-list.
    let (status, _) = unfurl(&app, &format!("http://0.0.0.0:{}/og", site.addr.port()), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

ecto_tests::per_profile!(
    private_addresses_are_never_fetched,
    needs_a_member_token_and_an_http_url,
    allow_listed_site_is_previewed,
);
