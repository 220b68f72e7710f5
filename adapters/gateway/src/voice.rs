//! The `voice.*` messages of a socket (reference §6): parsed here, decided by the core's voice
//! use cases, answered with their direct frames (no `seq`) or a `voice.error`. Invalid payloads
//! are ignored, as the reference ignores them.

use crate::conn::{uuid_field, Conn, Flow};
use ecto_core::usecases::voice::{VoiceError, VoiceSession};
use serde_json::Value;

impl Conn {
    pub(crate) async fn on_voice(&mut self, event: &str, data: &Value) -> Flow {
        let Some(session) = self.session.clone() else {
            return Flow::Continue;
        };
        let gateway = self.gateway.clone();
        let voice = VoiceSession {
            svc: &gateway.services,
            server: &session.server,
            caller: &session.caller,
            session_id: session.id,
        };
        let bool_field = |key: &str| data.get(key).and_then(Value::as_bool);
        let outcome = match event {
            "voice.join" => match uuid_field(data, "channel_id") {
                Some(channel) => {
                    voice
                        .join(channel, bool_field("force").unwrap_or(false))
                        .await
                }
                None => return Flow::Continue,
            },
            "voice.capabilities" => match data.get("rtp_capabilities") {
                Some(caps) if caps.is_object() => voice.capabilities(caps.clone()).await,
                _ => return Flow::Continue,
            },
            "voice.connect_transport" => {
                match (
                    uuid_field(data, "transport_id"),
                    data.get("dtls_parameters"),
                ) {
                    (Some(t), Some(dtls)) if dtls.is_object() => {
                        voice.connect(t, dtls.clone()).await
                    }
                    _ => return Flow::Continue,
                }
            }
            "voice.produce" => {
                let kind = data.get("kind").and_then(Value::as_str);
                match (
                    uuid_field(data, "transport_id"),
                    kind,
                    data.get("rtp_parameters"),
                ) {
                    (Some(t), Some(kind @ ("audio" | "video")), Some(rtp)) if rtp.is_object() => {
                        let source = data
                            .get("source")
                            .and_then(Value::as_str)
                            .filter(|s| s.len() <= 32)
                            .map(str::to_owned);
                        voice.produce(t, kind, rtp.clone(), source).await
                    }
                    _ => return Flow::Continue,
                }
            }
            "voice.consumer_resume" => match uuid_field(data, "consumer_id") {
                Some(c) => voice.resume_consumer(c).await,
                None => return Flow::Continue,
            },
            "voice.producer_pause" | "voice.producer_resume" => {
                match uuid_field(data, "producer_id") {
                    Some(p) => {
                        voice
                            .pause_producer(p, event == "voice.producer_pause")
                            .await
                    }
                    None => return Flow::Continue,
                }
            }
            "voice.produce_stop" => match uuid_field(data, "producer_id") {
                Some(p) => voice.stop_producer(p).await,
                None => return Flow::Continue,
            },
            "voice.mute" => {
                voice
                    .mute(bool_field("self_mute"), bool_field("self_deaf"))
                    .await
            }
            "voice.leave" => voice.leave().await,
            // No simulcast: there are no layers to choose (reference: setPreferredLayers).
            _ => Ok(Vec::new()),
        };
        let frames = match outcome {
            Ok(frames) => frames,
            Err(e) => vec![VoiceError::frame(&e)],
        };
        for frame in frames {
            if let Flow::Close(code, reason) = self.reply(frame.event, frame.data).await {
                return Flow::Close(code, reason);
            }
        }
        Flow::Continue
    }
}
