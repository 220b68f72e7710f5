//! `/ready` answers 503, naming the service, when a backing service does not answer.

use async_trait::async_trait;
use ecto_core::ports::HealthCheck;
use ecto_core::{CoreError, CoreResult};
use ecto_server::AppConfig;
use std::sync::Arc;

struct Down;

#[async_trait]
impl HealthCheck for Down {
    fn name(&self) -> &'static str {
        "redis"
    }
    async fn check(&self) -> CoreResult<()> {
        Err(CoreError::internal_msg("connection refused"))
    }
}

/// A service that never answers (a blackholed address).
struct Hangs;

#[async_trait]
impl HealthCheck for Hangs {
    fn name(&self) -> &'static str {
        "storage"
    }
    async fn check(&self) -> CoreResult<()> {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_when_a_backing_service_is_down() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_string_lossy().into_owned();
    let config = AppConfig::from_pairs(&[
        ("data_dir", &data),
        ("log_level", "warn"),
        ("mediasoup_min_port", "0"),
        ("mediasoup_max_port", "0"),
    ])
    .expect("config");
    let mut services = ecto_server::build_services(&config)
        .await
        .expect("services");
    services.health.push(Arc::new(Down));
    services.health.push(Arc::new(Hangs));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = ecto_http::serve(
        ecto_http::HttpState::new(
            services,
            1_000_000,
            ecto_http::RequestLimits {
                max_batch_calls: 50,
                max_response_bytes: 8 << 20,
            },
            None,
        ),
        listener,
        1,
        None,
        None,
    )
    .expect("serve");
    tokio::spawn(server);
    let asked = std::time::Instant::now();
    let resp = reqwest::get(format!("http://{addr}/ready"))
        .await
        .expect("ready");
    assert_eq!(resp.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["checks"]["redis"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    // A service that does not answer is named as such, and does not hold the probe.
    assert_eq!(body["checks"]["storage"], "timeout");
    let took = asked.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let health = reqwest::get(format!("http://{addr}/health"))
        .await
        .expect("health");
    assert_eq!(
        health.status(),
        reqwest::StatusCode::OK,
        "liveness does not depend on backing services"
    );
}

/// `/ready` of a managed server checks its S3 bucket: uploads fail without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_checks_the_upload_storage() {
    async fn ready(app: &ecto_tests::TestApp) -> (reqwest::StatusCode, serde_json::Value) {
        let resp = reqwest::get(format!("{}/ready", app.base))
            .await
            .expect("ready");
        let status = resp.status();
        (status, resp.json().await.expect("json"))
    }
    let app = ecto_tests::TestApp::spawn(ecto_tests::Profile::Managed).await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["storage"], "ok", "{body}");

    let broken = ecto_tests::TestApp::spawn_with(ecto_tests::Profile::Managed, |c| {
        if let Some(s3) = &mut c.s3 {
            s3.bucket = "ecto-no-such-bucket".into();
        }
    })
    .await;
    let (status, body) = ready(&broken).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["storage"], "unavailable", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
}
