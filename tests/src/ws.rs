//! A WebSocket test client speaking the gateway's framing.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One client socket.
pub struct WsClient {
    stream: Stream,
}

/// What the next frame turned out to be.
#[derive(Debug)]
pub enum Incoming {
    Frame(Value),
    Closed(u16, String),
}

impl WsClient {
    /// Connects to `path` (`/ws`, `/notify`) of `base` (http URL), sending `X-Server-Address`
    /// when given.
    pub async fn connect(base: &str, path: &str, server_address: Option<&str>) -> WsClient {
        let url = format!("{}{path}", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("request");
        if let Some(addr) = server_address {
            request
                .headers_mut()
                .insert("x-server-address", addr.parse().expect("header"));
        }
        // Large enough for a resume that replays many big events in one frame.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        let (stream, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                .await
                .expect("websocket connects");
        WsClient { stream }
    }

    /// Sends `{event, data}`.
    pub async fn send(&mut self, event: &str, data: Value) {
        self.send_raw(&json!({ "event": event, "data": data }).to_string())
            .await;
    }

    /// Sends a raw text frame.
    pub async fn send_raw(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next text frame or the close, within `secs` seconds (panics on silence).
    pub async fn next(&mut self, secs: u64) -> Incoming {
        let deadline = Duration::from_secs(secs);
        tokio::time::timeout(deadline, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return Incoming::Frame(serde_json::from_str(&t).expect("json frame"))
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) => Incoming::Closed(u16::from(f.code), f.reason.to_string()),
                            None => Incoming::Closed(u16::from(CloseCode::Status), String::new()),
                        }
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Incoming::Closed(0, "dropped".into()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("nothing received within {secs} s"))
    }

    /// The next frame, which must not be a close.
    pub async fn frame(&mut self) -> Value {
        match self.next(5).await {
            Incoming::Frame(v) => v,
            Incoming::Closed(code, reason) => {
                panic!("closed {code} {reason} while a frame was expected")
            }
        }
    }

    /// The next frame named `event`, skipping others.
    pub async fn expect(&mut self, event: &str) -> Value {
        loop {
            let f = self.frame().await;
            if f["event"] == event {
                return f;
            }
        }
    }

    /// Waits for the close, skipping frames; returns code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Incoming::Closed(code, reason) = self.next(5).await {
                return (code, reason);
            }
        }
    }

    /// Whether a frame named `event` arrives within `millis` (others are skipped). A socket
    /// that closes meanwhile is a failure, not a "no": silence from a dead socket proves
    /// nothing.
    pub async fn receives_within(&mut self, event: &str, millis: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(millis);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return false,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("json");
                    if v["event"] == event {
                        return true;
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    panic!("the socket closed ({frame:?}) while waiting for {event}")
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("the socket failed ({e}) while waiting for {event}"),
                Ok(None) => panic!("the socket ended while waiting for {event}"),
            }
        }
    }

    /// Sends a WebSocket ping frame.
    pub async fn ping(&mut self) {
        self.stream
            .send(Message::Ping(vec![1, 2, 3].into()))
            .await
            .expect("ping");
    }

    /// Drops the connection without a close frame, as a lost network does.
    pub fn drop_connection(self) {
        drop(self.stream);
    }

    /// Closes the socket with a close frame and waits for the server's answer.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(2), self.stream.next()).await
        {}
    }

    /// Every frame that arrives within `millis`, until the socket closes.
    pub async fn frames_within(&mut self, millis: u64) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(millis);
        let mut frames = Vec::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout_at(deadline, self.stream.next()).await
        {
            match message {
                Message::Text(t) => frames.push(serde_json::from_str(&t).expect("json")),
                Message::Close(_) => break,
                _ => {}
            }
        }
        frames
    }

    /// Reads hello, identifies, and returns `system.ready`'s data.
    pub async fn identify(&mut self, token: &str, extra: Value) -> Value {
        let hello = self.frame().await;
        assert_eq!(hello["event"], "system.hello", "{hello}");
        let mut data = json!({ "token": token, "protocol_version": 1 });
        if let (Value::Object(d), Value::Object(e)) = (&mut data, extra) {
            d.extend(e);
        }
        self.send("system.identify", data).await;
        let ready = self.expect("system.ready").await;
        ready["data"].clone()
    }
}

/// The contents of the `message.create` frames among `frames`.
fn contents(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| f["event"] == "message.create")
        .filter_map(|f| f["data"]["content"].as_str())
        .collect()
}

impl WsClient {
    /// Reads hello and resumes session `session_id` from `seen` (identify with `session_id`
    /// and `resume_seq`); checks that `system.resumed` replays exactly the messages
    /// `missed`, numbered from `seen + 1` up to its `resume_seq`, which it returns.
    pub async fn resume(
        &mut self,
        token: &str,
        session_id: &Value,
        seen: u64,
        missed: &[&str],
    ) -> u64 {
        self.frame().await;
        self.send(
            "system.identify",
            json!({ "token": token, "session_id": session_id, "resume_seq": seen }),
        )
        .await;
        let resumed = self.expect("system.resumed").await;
        let events = resumed["data"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(contents(&events), missed, "exactly the missed events");
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        let resume_seq = resumed["data"]["resume_seq"].as_u64().expect("resume_seq");
        assert_eq!(
            seqs,
            (seen + 1..=resume_seq).collect::<Vec<_>>(),
            "numbered right after what it saw, up to resume_seq"
        );
        resume_seq
    }

    /// Checks that what arrives within 1.5 s goes on from `resume_seq` without a gap and
    /// carries the messages `live`, each once.
    pub async fn goes_on(&mut self, resume_seq: u64, live: &[&str]) {
        let rest = self.frames_within(1500).await;
        let seqs: Vec<u64> = rest.iter().filter_map(|f| f["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (resume_seq + 1..resume_seq + 1 + seqs.len() as u64).collect::<Vec<_>>(),
            "the sequence goes on without a gap"
        );
        assert_eq!(contents(&rest), live, "delivered once");
    }
}
