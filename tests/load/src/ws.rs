//! `/ws` sessions: connect, identify, subscribe, then read every frame and heartbeat.

use crate::stats::Errors;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a session did not get where it was going; `kind()` is its counter key.
#[derive(Debug)]
pub enum WsError {
    Connect,
    Handshake(u16),
    Closed(u16),
    Dropped,
    Timeout(&'static str),
    Unexpected(String),
}

impl WsError {
    pub fn kind(&self) -> String {
        match self {
            WsError::Connect => "ws connect error".into(),
            WsError::Handshake(status) => format!("ws upgrade refused http {status}"),
            WsError::Closed(code) => format!("ws close {code}"),
            WsError::Dropped => "ws dropped without close".into(),
            WsError::Timeout(stage) => format!("ws timeout waiting for {stage}"),
            WsError::Unexpected(event) => format!("ws unexpected frame {event}"),
        }
    }
}

/// Where sessions connect.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub server_address: Option<String>,
    pub timeout: Duration,
}

/// An identified session.
pub struct Session {
    pub socket: Socket,
    pub heartbeat: Duration,
    /// From the start of the TCP connect to `system.ready`.
    pub ready_after: Duration,
}

#[derive(Deserialize)]
pub(crate) struct Head {
    event: String,
    #[serde(default)]
    data: HelloData,
}

#[derive(Deserialize, Default)]
struct HelloData {
    heartbeat_interval: Option<u64>,
}

/// Small buffers: a run holds thousands of sockets, and frames are small.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// The next text frame (parsed head and raw text), or why there is none.
pub(crate) async fn next_frame(
    socket: &mut Socket,
    stage: &'static str,
    timeout: Duration,
) -> Result<(Head, Utf8Bytes), WsError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| WsError::Timeout(stage))?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                let head: Head = serde_json::from_str(t.as_str())
                    .map_err(|_| WsError::Unexpected("(not JSON)".into()))?;
                return Ok((head, t));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(WsError::Closed(frame.map_or(1005, |f| u16::from(f.code))))
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(WsError::Dropped),
        }
    }
}

/// Connects, waits for `system.hello`, identifies with `token` and waits for `system.ready`.
pub async fn identify(target: &Target, token: &str) -> Result<Session, WsError> {
    let started = Instant::now();
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|_| WsError::Connect)?;
    if let Some(addr) = &target.server_address {
        let value = addr.parse().map_err(|_| WsError::Connect)?;
        request.headers_mut().insert("x-server-address", value);
    }
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config()), true);
    let (mut socket, _) = match tokio::time::timeout(target.timeout, connect).await {
        Err(_) => return Err(WsError::Timeout("the upgrade")),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            return Err(WsError::Handshake(resp.status().as_u16()))
        }
        Ok(Err(_)) => return Err(WsError::Connect),
        Ok(Ok(pair)) => pair,
    };
    let (hello, _) = next_frame(&mut socket, "system.hello", target.timeout).await?;
    if hello.event != "system.hello" {
        return Err(WsError::Unexpected(hello.event));
    }
    let heartbeat =
        Duration::from_millis(hello.data.heartbeat_interval.unwrap_or(30_000).max(1000));
    let identify = json!({"event": "system.identify", "data": {"token": token}});
    socket
        .send(Message::text(identify.to_string()))
        .await
        .map_err(|_| WsError::Dropped)?;
    loop {
        let (head, _) = next_frame(&mut socket, "system.ready", target.timeout).await?;
        match head.event.as_str() {
            "system.ready" => break,
            "system.heartbeat_ack" => continue,
            other => return Err(WsError::Unexpected(other.to_owned())),
        }
    }
    Ok(Session {
        socket,
        heartbeat,
        ready_after: started.elapsed(),
    })
}

/// Subscribes to `channel_id` and waits for `subscribed` (events before it are skipped).
pub async fn subscribe(
    session: &mut Session,
    channel_id: &str,
    timeout: Duration,
) -> Result<(), WsError> {
    let frame = json!({"event": "subscribe", "data": {"channel_id": channel_id}});
    session
        .socket
        .send(Message::text(frame.to_string()))
        .await
        .map_err(|_| WsError::Dropped)?;
    loop {
        let (head, _) = next_frame(&mut session.socket, "subscribed", timeout).await?;
        if head.event == "subscribed" {
            return Ok(());
        }
    }
}

/// Opens a session subscribed to `channel_id`, holding one of `gate`'s permits while it
/// opens, and says on `ready` whether it did; a failure is counted as `<what>: <kind>`.
pub async fn open_subscribed(
    target: &Target,
    token: &str,
    channel_id: &str,
    gate: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
    errors: &Errors,
    what: &str,
) -> Option<Session> {
    let permit = gate.acquire_owned().await.ok();
    let opened = async {
        let mut s = identify(target, token).await?;
        subscribe(&mut s, channel_id, target.timeout).await?;
        Ok::<_, WsError>(s)
    }
    .await;
    drop(permit);
    let _ = ready.send(opened.is_ok()).await;
    match opened {
        Ok(s) => Some(s),
        Err(e) => {
            errors.add(format!("{what}: {}", e.kind()));
            None
        }
    }
}

/// How a held session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The run asked it to stop.
    Stopped,
    /// The server closed it or the connection broke (counted in the errors).
    Lost,
}

/// Reads every frame (handing text frames to `on_text`) and heartbeats on schedule until `stop`
/// turns true; then closes normally.
pub async fn hold(
    session: Session,
    mut stop: watch::Receiver<bool>,
    errors: &Errors,
    mut on_text: impl FnMut(&str),
) -> End {
    let (mut sink, mut stream) = session.socket.split();
    let mut beat = tokio::time::interval_at(
        tokio::time::Instant::now() + session.heartbeat,
        session.heartbeat,
    );
    let heartbeat = json!({"event": "system.heartbeat", "data": {}}).to_string();
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() { break; }
            }
            _ = beat.tick() => {
                if sink.send(Message::text(heartbeat.clone())).await.is_err() {
                    errors.add("ws dropped while sending heartbeat");
                    return End::Lost;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => on_text(t.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    errors.add(WsError::Closed(frame.map_or(1005, |f| u16::from(f.code))).kind());
                    return End::Lost;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    errors.add(WsError::Dropped.kind());
                    return End::Lost;
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    End::Stopped
}
