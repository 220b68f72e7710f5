//! Voice with the real client stack: two headless Chromium pages, each with mediasoup-client,
//! join one voice channel through `/ws` as the Ecto client does (`tests/browser/voice.mjs`).
//! In the managed profile the two sockets are on two instances of the deployment.

use ecto_tests::{both_profiles, unique, TestApp};
use serde_json::{json, Value};

/// Runs the browser scenario; panics with its output when it fails.
async fn run_browsers(config: Value) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let output = tokio::process::Command::new("node")
        .arg(dir.join("voice.mjs"))
        .arg(config.to_string())
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs (make test installs Node.js, Chromium and tests/browser's packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser scenario failed:\n{stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!("unreadable browser report ({e}):\n{stdout}\n{stderr}");
    })
}

/// The origin a browser reaches an instance at: loopback for the self-hosted server, the
/// managed server's address (mapped to loopback in the browser) for a managed instance.
fn origin(app: &TestApp) -> String {
    let port = app.base.rsplit(':').next().unwrap_or("0");
    match &app.server_address {
        Some(address) => format!("http://{address}:{port}"),
        None => app.base.clone(),
    }
}

async fn two_browsers_talk_and_share_through_a_voice_channel(app: TestApp) {
    let other = app.other_instance().await;
    let owner = app.register(&unique("own"), "password-1").await;
    let member = app.register(&unique("mem"), "password-2").await;
    let channel = app.channel(&owner, "talk", "voice").await;
    let b_app = other.as_ref().unwrap_or(&app);
    let report = run_browsers(json!({
        "pages": [
            { "origin": origin(&app), "token": owner.token },
            { "origin": origin(b_app), "token": member.token },
        ],
        "channel_id": channel["id"],
    }))
    .await;
    let audio = &report["audio"];
    assert!(audio["packetsReceived"].as_u64() > Some(50), "{report}");
    assert_eq!(audio["packetsLost"], 0, "no audio lost: {report}");
    assert!(audio["totalAudioEnergy"].as_f64() > Some(0.0), "{report}");
    assert!(
        report["camera"]["framesDecoded"].as_u64() > Some(5),
        "{report}"
    );
    assert!(
        report["reply"]["packetsReceived"].as_u64() > Some(50),
        "B's microphone reaches A: {report}"
    );
    assert_eq!(report["reply"]["user"], json!(member.user_id), "{report}");
    assert_eq!(audio["user"], json!(owner.user_id), "{report}");
    assert!(
        report["screen"]["framesDecoded"].as_u64() > Some(5),
        "{report}"
    );
    for side in ["a", "b"] {
        for t in ["send", "recv"] {
            assert_eq!(
                report["transports"][side][t]["dtlsState"], "connected",
                "{side} {t}: {report}"
            );
        }
    }
    assert!(
        report["muted_packets"].as_u64() <= Some(5),
        "a muted microphone stops: {report}"
    );
    assert!(
        report["unmuted_packets"].as_u64() > Some(25),
        "an unmuted microphone comes back: {report}"
    );
    assert_eq!(report["producers_closed"], 3, "{report}");
    assert_eq!(report["errors"]["a"], json!([]), "{report}");
    assert_eq!(report["errors"]["b"], json!([]), "{report}");
}

both_profiles!(two_browsers_talk_and_share_through_a_voice_channel);
