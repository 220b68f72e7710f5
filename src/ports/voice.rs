//! Voice: the media plane (a selective forwarding unit that the Ecto client's mediasoup-client
//! talks to) and the voice state of each server (who is in which voice channel, muted how).
//!
//! The media plane speaks mediasoup's JSON shapes (`rtpCapabilities`, transport options,
//! `rtpParameters`), which the gateway hands through to the client as they are: the core
//! keeps them as JSON and never looks inside them. Everything is addressed by (voice channel,
//! user): one participation per user and channel, with one send and one receive transport.

use crate::model::Timestamp;
use crate::CoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The two transports of a new participation, as mediasoup-client's
/// `createSendTransport` / `createRecvTransport` take them (`{id, iceParameters,
/// iceCandidates, dtlsParameters}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transports {
    pub send: Value,
    pub recv: Value,
}

/// A consumer made for a participant: what `voice.new_consumer` carries to its user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewConsumer {
    /// The participant the consumer is for.
    #[serde(skip)]
    pub for_user: Uuid,
    pub consumer_id: Uuid,
    pub producer_id: Uuid,
    /// The producer's owner.
    pub user_id: Uuid,
    /// `audio` or `video`.
    pub kind: String,
    #[serde(rename = "rtpParameters")]
    pub rtp_parameters: Value,
    /// `mic`, `camera`, `screen` or `screen-audio`.
    pub source: String,
}

/// A participation the media plane ended on its own (consent expired, DTLS failed, a
/// certificate that did not match its fingerprint): the voice state must follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLoss {
    pub server_id: Uuid,
    pub channel_id: Uuid,
    pub user_id: Uuid,
    /// The session whose state ends, when the media plane knows it (a channel whose host is
    /// gone); `None`: whichever session holds the user's state in that channel.
    pub session_id: Option<Uuid>,
    pub closed: Vec<ClosedProducer>,
}

/// A producer that was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedProducer {
    pub producer_id: Uuid,
    pub user_id: Uuid,
    pub channel_id: Uuid,
}

/// What a new producer brought: its id, and the consumers made for every other participant
/// of the channel that has sent its device capabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced {
    pub producer_id: Uuid,
    pub consumers: Vec<NewConsumer>,
}

/// The input of [`MediaPlane::produce`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProduceRequest {
    pub transport_id: Uuid,
    /// `audio` or `video`.
    pub kind: String,
    /// mediasoup-client's `rtpParameters` of the producer (the browser's payload types).
    pub rtp_parameters: Value,
    pub source: String,
    /// Created paused (a self-muted user's microphone).
    pub paused: bool,
}

/// The SFU. Every method is addressed by voice channel and user; a call about a participation,
/// transport, producer or consumer that does not exist (or is another user's) is BAD_REQUEST,
/// and a fault of the media plane itself is INTERNAL.
#[async_trait]
pub trait MediaPlane: Send + Sync {
    /// The router capabilities (mediasoup's `RtpCapabilities`) of every channel.
    fn router_capabilities(&self) -> Value;

    /// Makes `user` a participant of `channel` (a voice channel of `server`) with a fresh send
    /// and receive transport, closing an earlier participation of the same user there first.
    async fn join(&self, server: Uuid, channel: Uuid, user: Uuid) -> CoreResult<Transports>;

    /// Ends the user's participation: closes its transports, producers and consumers. Returns
    /// the producers closed (empty when the user was not a participant).
    async fn leave(&self, channel: Uuid, user: Uuid) -> CoreResult<Vec<ClosedProducer>>;

    /// Stores the participant's device capabilities and makes (paused) consumers for every
    /// producer of the other participants that the device can receive.
    async fn set_capabilities(
        &self,
        channel: Uuid,
        user: Uuid,
        capabilities: Value,
    ) -> CoreResult<Vec<NewConsumer>>;

    /// Connects one of the participant's transports: `dtls_parameters` is mediasoup-client's
    /// `{role, fingerprints: [{algorithm, value}]}`; the client's certificate must match.
    /// Connecting twice is ignored.
    async fn connect(
        &self,
        channel: Uuid,
        user: Uuid,
        transport_id: Uuid,
        dtls_parameters: Value,
    ) -> CoreResult<()>;

    /// A new producer on the participant's send transport, and a consumer for every other
    /// participant able to receive it.
    async fn produce(
        &self,
        channel: Uuid,
        user: Uuid,
        request: ProduceRequest,
    ) -> CoreResult<Produced>;

    /// Resumes one of the participant's consumers; a video consumer then asks its producer for
    /// key frames.
    async fn resume_consumer(&self, channel: Uuid, user: Uuid, consumer: Uuid) -> CoreResult<()>;

    /// Pauses or resumes one of the participant's producers.
    async fn pause_producer(
        &self,
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
        paused: bool,
    ) -> CoreResult<()>;

    /// Pauses or resumes every audio producer of the participant (self or server mute).
    async fn pause_audio(&self, channel: Uuid, user: Uuid, paused: bool) -> CoreResult<()>;

    /// Closes one of the participant's producers (and its consumers).
    async fn close_producer(
        &self,
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
    ) -> CoreResult<ClosedProducer>;

    /// This process is stopping: it hands the channels it hosts over (their participants on
    /// other processes lose their media and are told so, and may join again).
    async fn shutdown(&self) {}
}

/// The media plane of a process whose voice is turned off (`VOICE_ENABLED=false`): no port is
/// bound and every call fails as a fault of the media plane, so `voice.join` answers
/// `voice.error` 8002 "Voice server unavailable".
pub struct NoMediaPlane;

impl NoMediaPlane {
    fn off<T>() -> CoreResult<T> {
        Err(crate::CoreError::internal_msg("voice is turned off"))
    }
}

#[async_trait]
impl MediaPlane for NoMediaPlane {
    fn router_capabilities(&self) -> Value {
        serde_json::json!({ "codecs": [], "headerExtensions": [] })
    }
    async fn join(&self, _: Uuid, _: Uuid, _: Uuid) -> CoreResult<Transports> {
        Self::off()
    }
    async fn leave(&self, _: Uuid, _: Uuid) -> CoreResult<Vec<ClosedProducer>> {
        Ok(Vec::new())
    }
    async fn set_capabilities(&self, _: Uuid, _: Uuid, _: Value) -> CoreResult<Vec<NewConsumer>> {
        Self::off()
    }
    async fn connect(&self, _: Uuid, _: Uuid, _: Uuid, _: Value) -> CoreResult<()> {
        Self::off()
    }
    async fn produce(&self, _: Uuid, _: Uuid, _: ProduceRequest) -> CoreResult<Produced> {
        Self::off()
    }
    async fn resume_consumer(&self, _: Uuid, _: Uuid, _: Uuid) -> CoreResult<()> {
        Self::off()
    }
    async fn pause_producer(&self, _: Uuid, _: Uuid, _: Uuid, _: bool) -> CoreResult<()> {
        Self::off()
    }
    async fn pause_audio(&self, _: Uuid, _: Uuid, _: bool) -> CoreResult<()> {
        Ok(())
    }
    async fn close_producer(&self, _: Uuid, _: Uuid, _: Uuid) -> CoreResult<ClosedProducer> {
        Self::off()
    }
}

/// A user's voice state in one server (the protocol's VoiceState, plus the session that holds
/// it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceState {
    pub user_id: Uuid,
    pub channel_id: Uuid,
    /// The `/ws` session that joined (only it, or a forced transfer, ends the state).
    #[serde(skip_serializing, default)]
    pub session_id: Uuid,
    pub self_mute: bool,
    pub self_deaf: bool,
    pub server_mute: bool,
    pub server_deaf: bool,
    pub video_enabled: bool,
    #[serde(serialize_with = "crate::model::time::iso")]
    pub connected_at: Timestamp,
}

/// Voice states per server, shared by every process of a deployment. One state per user and
/// server.
#[async_trait]
pub trait VoiceStateStore: Send + Sync {
    /// The user's state, or `None` when not in voice.
    async fn get(&self, server_id: Uuid, user_id: Uuid) -> CoreResult<Option<VoiceState>>;
    /// Stores (replaces) the user's state.
    async fn set(&self, server_id: Uuid, state: VoiceState) -> CoreResult<()>;
    /// Removes the user's state when it is still held by `session_id` (any session when
    /// `None`); returns the state removed.
    async fn remove(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> CoreResult<Option<VoiceState>>;
    /// Every state of the server.
    async fn list(&self, server_id: Uuid) -> CoreResult<Vec<VoiceState>>;
}
