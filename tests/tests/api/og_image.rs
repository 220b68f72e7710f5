//! `GET /og-image` (reference §2.6): the server's 1200×630 link card, drawn again when what it
//! shows changes, and the landing pages whose `og:image` points at it.

use ecto_tests::{unique, Profile, TestApp};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::json;

const BOUNDARY: &str = "ectoOgImageBoundary42";

/// `GET /og-image` with this test's server address: status, headers, body.
async fn get_card(app: &TestApp) -> (StatusCode, HeaderMap, Vec<u8>) {
    let resp = app
        .request(Method::GET, "/og-image")
        .send()
        .await
        .expect("og-image");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

/// The card's size and RGBA pixels.
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane size")];
    let frame = reader.next_frame(&mut pixels).expect("a PNG frame");
    pixels.truncate(frame.buffer_size());
    (frame.width, frame.height, pixels)
}

/// The card, checked to be a 1200×630 PNG with the caching headers; its pixels.
async fn card_pixels(app: &TestApp) -> Vec<u8> {
    let (status, headers, body) = get_card(app).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=3600, s-maxage=3600"
    );
    let (width, height, pixels) = decode(&body);
    assert_eq!((width, height), (1200, 630));
    pixels
}

/// A real `size`×`size` PNG of one colour.
fn icon_png(size: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    let data: Vec<u8> = rgb.repeat((size * size) as usize);
    writer.write_image_data(&data).expect("png data");
    writer.finish().expect("png end");
    out
}

/// `POST /upload/{what}` of `bytes` as `name`; the answer's status.
async fn upload_image(app: &TestApp, what: &str, token: &str, name: &str, bytes: &[u8]) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let rb = app
        .request(Method::POST, &format!("/upload/{what}"))
        .bearer_auth(token)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    let (status, _, answer) = TestApp::send(rb).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn the_card_is_drawn_again_when_the_server_changes(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let owner = app.register(&unique("own"), "password-1").await;
    let first = card_pixels(&app).await;
    // Nothing changed: the same card (the one kept), byte for byte.
    let (_, _, a) = get_card(&app).await;
    let (_, _, b) = get_card(&app).await;
    assert_eq!(a, b);

    let (status, body) = app
        .mutate(
            "server.update",
            json!({ "name": "A Renamed Server", "description": "Now with a description" }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renamed = card_pixels(&app).await;
    assert_ne!(renamed, first, "the new name is drawn");

    upload_image(
        &app,
        "icon",
        &owner.token,
        "logo.png",
        &icon_png(96, [200, 30, 40]),
    )
    .await;
    let with_icon = card_pixels(&app).await;
    assert_ne!(with_icon, renamed, "the icon is drawn");

    upload_image(
        &app,
        "banner",
        &owner.token,
        "b.png",
        &icon_png(120, [20, 90, 200]),
    )
    .await;
    let with_banner = card_pixels(&app).await;
    assert_ne!(with_banner, with_icon, "the banner is drawn");

    app.register(&unique("mem"), "password-2").await;
    assert_ne!(
        card_pixels(&app).await,
        with_banner,
        "the member count is drawn"
    );

    let (status, body) = app
        .mutate(
            "serverConfig.update",
            json!({ "require_invite": true }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invite_only = card_pixels(&app).await;
    let (status, body) = app
        .mutate(
            "serverConfig.update",
            json!({ "require_invite": false }),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(card_pixels(&app).await, invite_only, "the badge goes");
}

async fn the_landing_pages_point_at_the_card(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    app.register(&unique("own"), "password-1").await;
    let host = app.base.trim_start_matches("http://").to_owned();
    for (path, proto) in [("/", None), ("/invite/abcDEF12", Some("https"))] {
        let mut rb = app.request(Method::GET, path).header("accept", "text/html");
        if let Some(p) = proto {
            rb = rb.header("X-Forwarded-Proto", p);
        }
        let resp = rb.send().await.expect("landing");
        assert_eq!(resp.status(), StatusCode::OK);
        let html = resp.text().await.expect("html");
        let url = format!("{}://{host}/og-image", proto.unwrap_or("http"));
        for tag in [
            format!("<meta property=\"og:image\" content=\"{url}\">"),
            "<meta property=\"og:image:width\" content=\"1200\">".to_owned(),
            "<meta property=\"og:image:height\" content=\"630\">".to_owned(),
            "<meta name=\"twitter:card\" content=\"summary_large_image\">".to_owned(),
            format!("<meta name=\"twitter:image\" content=\"{url}\">"),
        ] {
            assert!(html.contains(&tag), "{tag} missing from {html}");
        }
    }
    // What the tag points at is the card.
    card_pixels(&app).await;
}

async fn the_card_is_of_the_requested_server(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    app.register(&unique("own"), "password-1").await;
    let resp = app
        .http
        .get(format!("{}/og-image", app.base))
        .header("X-Server-Address", format!("{}.example", unique("nowhere")))
        .send()
        .await
        .expect("og-image");
    match profile {
        Profile::Managed => {
            assert_eq!(resp.status(), StatusCode::NOT_FOUND);
            assert_eq!(resp.text().await.expect("body"), "Server not found");
        }
        // Self-hosted serves its one server whatever the address.
        Profile::SelfHosted => {
            assert_eq!(resp.status(), StatusCode::OK);
            let png = resp.bytes().await.expect("body");
            assert_eq!(decode(&png).2, card_pixels(&app).await);
        }
    }
}

ecto_tests::per_profile!(
    the_card_is_drawn_again_when_the_server_changes,
    the_landing_pages_point_at_the_card,
    the_card_is_of_the_requested_server,
);
