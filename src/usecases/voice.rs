//! Voice (reference §6, the voice parts of §3.3 and §2.4): who may join which voice channel,
//! the signalling a `/ws` session sends, the voice state and its events, and the clean-up when
//! a socket closes, a member is removed, a channel is deleted or CONNECT_VOICE is taken away.
//!
//! The media plane ([`crate::ports::MediaPlane`]) does the media; voice states
//! ([`crate::ports::VoiceStateStore`]) are shared by every process. Answers meant for the
//! asking socket alone come back as [`Direct`] frames; what others hear is published.

use super::base::access::{self, Perms};
use super::base::identity::Caller;
use super::base::loaders;
use super::base::publish::publish;
use crate::model::Server;
use crate::permissions::{bits, has};
use crate::ports::{MediaLoss, NewConsumer, ProduceRequest, Scope, VoiceState};
use crate::{CoreError, CoreResult, EctoCode, Services};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Participants one voice channel holds (DECISIONS §2).
pub const MAX_VOICE_PARTICIPANTS: usize = 25;

/// A frame for the asking socket only (no `seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct Direct {
    pub event: &'static str,
    pub data: Value,
}

fn direct(event: &'static str, data: Value) -> Direct {
    Direct { event, data }
}

/// A refusal, sent as `voice.error {code, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceError {
    pub code: u16,
    pub message: &'static str,
}

impl VoiceError {
    pub fn frame(&self) -> Direct {
        direct(
            "voice.error",
            json!({ "code": self.code, "message": self.message }),
        )
    }
}

const CANNOT_CONNECT: VoiceError = VoiceError {
    code: 3002,
    message: "Cannot connect to this channel",
};
const FULL: VoiceError = VoiceError {
    code: 3003,
    message: "Voice channel full",
};
const NO_PERMISSION: VoiceError = VoiceError {
    code: 5001,
    message: "Insufficient permissions",
};
const UNAVAILABLE: VoiceError = VoiceError {
    code: 8002,
    message: "Voice server unavailable",
};
const TRANSPORT_FAILED: VoiceError = VoiceError {
    code: 8003,
    message: "Transport failed",
};

/// What a voice call answers: frames for the socket, or a refusal.
pub type VoiceOutcome = Result<Vec<Direct>, VoiceError>;

/// The name of the internal event that tells one session its voice moved to another
/// (`voice.transferred` for it alone; data `{session_id, channel_id}`).
pub const TRANSFER_EVENT: &str = "internal.voice_transferred";

/// One `/ws` session asking.
pub struct VoiceSession<'a> {
    pub svc: &'a Services,
    pub server: &'a Server,
    pub caller: &'a Caller,
    pub session_id: Uuid,
}

/// The payload of `voice.state_update` (a removed state carries `_removed: true`).
#[derive(Serialize)]
struct StateUpdate<'a> {
    #[serde(flatten)]
    state: &'a VoiceState,
    #[serde(rename = "_removed", skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

async fn publish_state(svc: &Services, server_id: Uuid, state: &VoiceState, removed: bool) {
    publish(
        svc,
        server_id,
        Scope::Server,
        "voice.state_update",
        &StateUpdate { state, removed },
    )
    .await;
}

async fn publish_consumers(svc: &Services, server_id: Uuid, consumers: &[NewConsumer]) {
    for c in consumers {
        publish(
            svc,
            server_id,
            Scope::User(c.for_user),
            "voice.new_consumer",
            c,
        )
        .await;
    }
}

async fn publish_closed(svc: &Services, server_id: Uuid, closed: &[crate::ports::ClosedProducer]) {
    for p in closed {
        publish(svc, server_id, Scope::Server, "voice.producer_closed", p).await;
    }
}

/// A failure of the media plane (or of the voice state store) as the client hears it: 8002
/// when the service failed, 8003 when it refused the call.
fn internal(e: CoreError) -> VoiceError {
    if e.is_fault() {
        tracing::warn!(error = %e, "voice media plane failed");
        UNAVAILABLE
    } else {
        tracing::debug!(error = %e, "voice call refused by the media plane");
        TRANSPORT_FAILED
    }
}

/// Voice bits of the caller in `channel_id` (a voice channel of the server), or the refusal.
async fn voice_bits(s: &VoiceSession<'_>, channel_id: Uuid) -> Result<u64, VoiceError> {
    let channel = loaders::channel(s.svc, s.server.id, channel_id)
        .await
        .map_err(internal)?
        .filter(|c| c.channel_type == crate::model::ChannelType::Voice)
        .ok_or(CANNOT_CONNECT)?;
    let perms = Perms::load(s.svc, s.server, s.caller)
        .await
        .map_err(|_| NO_PERMISSION)?;
    Ok(perms.channel(&channel))
}

impl VoiceSession<'_> {
    async fn state(&self) -> Result<Option<VoiceState>, VoiceError> {
        self.svc
            .voice_states
            .get(self.server.id, self.caller.user_id)
            .await
            .map_err(internal)
    }

    /// The caller's state, when this session holds it.
    async fn mine(&self) -> Result<VoiceState, VoiceError> {
        self.state()
            .await?
            .filter(|s| s.session_id == self.session_id)
            .ok_or(VoiceError {
                code: 8000,
                message: "Not in a voice channel",
            })
    }

    /// `voice.join {channel_id, force?}`.
    pub async fn join(&self, channel_id: Uuid, force: bool) -> VoiceOutcome {
        let svc = self.svc;
        let bits = voice_bits(self, channel_id).await?;
        if !has(bits, bits::CONNECT_VOICE) {
            return Err(NO_PERMISSION);
        }
        if let Some(current) = self.state().await? {
            let same_session = current.session_id == self.session_id;
            if same_session && current.channel_id == channel_id {
                return Ok(Vec::new());
            }
            if !force {
                return Ok(vec![direct(
                    "voice.already_connected",
                    json!({ "channel_id": current.channel_id, "session_id": current.session_id, "same_session": same_session }),
                )]);
            }
            end(svc, self.server.id, &current).await;
            if !same_session {
                publish(
                    svc,
                    self.server.id,
                    Scope::User(self.caller.user_id),
                    TRANSFER_EVENT,
                    &json!({ "session_id": current.session_id, "channel_id": current.channel_id }),
                )
                .await;
            }
        }
        let others: Vec<VoiceState> = svc
            .voice_states
            .list(self.server.id)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|s| s.channel_id == channel_id && s.user_id != self.caller.user_id)
            .collect();
        if others.len() >= MAX_VOICE_PARTICIPANTS {
            return Err(FULL);
        }
        let transports = svc
            .media
            .join(self.server.id, channel_id, self.caller.user_id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "voice join failed in the media plane");
                UNAVAILABLE
            })?;
        let state = VoiceState {
            user_id: self.caller.user_id,
            channel_id,
            session_id: self.session_id,
            self_mute: false,
            self_deaf: false,
            server_mute: false,
            server_deaf: false,
            video_enabled: false,
            connected_at: svc.clock.now(),
        };
        svc.voice_states
            .set(self.server.id, state.clone())
            .await
            .map_err(internal)?;
        let mut out = vec![
            direct(
                "voice.router_capabilities",
                json!({ "rtpCapabilities": svc.media.router_capabilities() }),
            ),
            direct(
                "voice.transport_created",
                json!({ "send": transports.send, "recv": transports.recv }),
            ),
        ];
        publish_state(svc, self.server.id, &state, false).await;
        out.extend(others.iter().map(|o| {
            direct(
                "voice.state_update",
                serde_json::to_value(o).unwrap_or(Value::Null),
            )
        }));
        Ok(out)
    }

    /// `voice.capabilities {rtp_capabilities}`: consumers for every producer already there.
    pub async fn capabilities(&self, caps: Value) -> VoiceOutcome {
        let state = self.mine().await?;
        let consumers = self
            .svc
            .media
            .set_capabilities(state.channel_id, self.caller.user_id, caps)
            .await
            .map_err(internal)?;
        publish_consumers(self.svc, self.server.id, &consumers).await;
        Ok(Vec::new())
    }

    /// `voice.connect_transport {transport_id, dtls_parameters}`: no answer unless it fails.
    pub async fn connect(&self, transport_id: Uuid, dtls: Value) -> VoiceOutcome {
        let state = self.mine().await?;
        self.svc
            .media
            .connect(state.channel_id, self.caller.user_id, transport_id, dtls)
            .await
            .map_err(internal)?;
        Ok(Vec::new())
    }

    /// `voice.produce {transport_id, kind, rtp_parameters, source?}`: the source's permission
    /// (SCREEN_SHARE for screens, SPEAK_VOICE for other audio, USE_VIDEO for other video);
    /// a muted user's microphone starts paused.
    pub async fn produce(
        &self,
        transport_id: Uuid,
        kind: &str,
        rtp_parameters: Value,
        source: Option<String>,
    ) -> VoiceOutcome {
        let state = self.mine().await?;
        let source =
            source.unwrap_or_else(|| if kind == "audio" { "mic" } else { "camera" }.to_owned());
        let bits = voice_bits(self, state.channel_id).await?;
        let needed = match (source.as_str(), kind) {
            ("screen" | "screen-audio", _) => bits::SCREEN_SHARE,
            (_, "audio") => bits::SPEAK_VOICE,
            (_, "video") => bits::USE_VIDEO,
            _ => return Err(TRANSPORT_FAILED),
        };
        if !has(bits, needed) {
            return Err(NO_PERMISSION);
        }
        let paused = kind == "audio" && (state.self_mute || state.server_mute);
        let produced = self
            .svc
            .media
            .produce(
                state.channel_id,
                self.caller.user_id,
                ProduceRequest {
                    transport_id,
                    kind: kind.to_owned(),
                    rtp_parameters,
                    source,
                    paused,
                },
            )
            .await
            .map_err(internal)?;
        publish_consumers(self.svc, self.server.id, &produced.consumers).await;
        Ok(vec![direct(
            "voice.produced",
            json!({ "producer_id": produced.producer_id }),
        )])
    }

    /// `voice.consumer_resume {consumer_id}`.
    pub async fn resume_consumer(&self, consumer_id: Uuid) -> VoiceOutcome {
        let state = self.mine().await?;
        self.svc
            .media
            .resume_consumer(state.channel_id, self.caller.user_id, consumer_id)
            .await
            .map_err(internal)?;
        Ok(Vec::new())
    }

    /// `voice.producer_pause` / `voice.producer_resume {producer_id}`.
    pub async fn pause_producer(&self, producer_id: Uuid, paused: bool) -> VoiceOutcome {
        let state = self.mine().await?;
        self.svc
            .media
            .pause_producer(state.channel_id, self.caller.user_id, producer_id, paused)
            .await
            .map_err(internal)?;
        Ok(Vec::new())
    }

    /// `voice.produce_stop {producer_id}`: everyone hears `voice.producer_closed`.
    pub async fn stop_producer(&self, producer_id: Uuid) -> VoiceOutcome {
        let state = self.mine().await?;
        let closed = self
            .svc
            .media
            .close_producer(state.channel_id, self.caller.user_id, producer_id)
            .await
            .map_err(internal)?;
        publish_closed(self.svc, self.server.id, &[closed]).await;
        Ok(Vec::new())
    }

    /// `voice.mute {self_mute?, self_deaf?}`: the microphone pauses while muted.
    pub async fn mute(&self, self_mute: Option<bool>, self_deaf: Option<bool>) -> VoiceOutcome {
        let mut state = self.mine().await?;
        if let Some(m) = self_mute {
            state.self_mute = m;
        }
        if let Some(d) = self_deaf {
            state.self_deaf = d;
        }
        self.svc
            .voice_states
            .set(self.server.id, state.clone())
            .await
            .map_err(internal)?;
        self.svc
            .media
            .pause_audio(
                state.channel_id,
                self.caller.user_id,
                state.self_mute || state.server_mute,
            )
            .await
            .map_err(internal)?;
        publish_state(self.svc, self.server.id, &state, false).await;
        Ok(Vec::new())
    }

    /// `voice.leave`.
    pub async fn leave(&self) -> VoiceOutcome {
        if let Some(state) = self
            .svc
            .voice_states
            .remove(self.server.id, self.caller.user_id, Some(self.session_id))
            .await
            .map_err(internal)?
        {
            leave_media(self.svc, self.server.id, &state).await;
        }
        Ok(Vec::new())
    }
}

/// Ends `state`'s participation: the state goes, its media closes, everyone hears of it.
async fn end(svc: &Services, server_id: Uuid, state: &VoiceState) {
    match svc
        .voice_states
        .remove(server_id, state.user_id, Some(state.session_id))
        .await
    {
        Ok(Some(removed)) => leave_media(svc, server_id, &removed).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "voice state not removed"),
    }
}

/// Closes the media of a removed state and announces it.
async fn leave_media(svc: &Services, server_id: Uuid, state: &VoiceState) {
    match svc.media.leave(state.channel_id, state.user_id).await {
        Ok(closed) => publish_closed(svc, server_id, &closed).await,
        Err(e) => tracing::warn!(error = %e, "voice media not closed"),
    }
    publish_state(svc, server_id, state, true).await;
}

/// A `/ws` session closed: its voice state (if it holds one) ends.
pub async fn session_closed(svc: &Services, server_id: Uuid, user_id: Uuid, session_id: Uuid) {
    match svc.voice_states.get(server_id, user_id).await {
        Ok(Some(state)) if state.session_id == session_id => end(svc, server_id, &state).await,
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "voice state unavailable"),
    }
}

/// The user left the server (or was kicked or banned): out of voice.
pub async fn removed(svc: &Services, server_id: Uuid, user_id: Uuid) {
    if let Ok(Some(state)) = svc.voice_states.get(server_id, user_id).await {
        end(svc, server_id, &state).await;
    }
}

/// After a change that may take CONNECT_VOICE away or delete a channel: everyone in voice who
/// can no longer connect to their channel (or whose channel is gone) leaves it.
pub async fn recheck(svc: &Services, server: &Server) {
    let states = match svc.voice_states.list(server.id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "voice states unavailable for a recheck");
            return;
        }
    };
    for state in states {
        let member = loaders::membership(svc, server.id, state.user_id)
            .await
            .ok()
            .flatten();
        let allowed = match member {
            None => false,
            Some(m) => {
                let caller = Caller {
                    user_id: state.user_id,
                    identity_type: m.member.identity_type,
                    member: Some(m.member.clone()),
                };
                let session = VoiceSession {
                    svc,
                    server,
                    caller: &caller,
                    session_id: state.session_id,
                };
                matches!(voice_bits(&session, state.channel_id).await, Ok(bits) if has(bits, bits::CONNECT_VOICE))
            }
        };
        if !allowed {
            end(svc, server.id, &state).await;
        }
    }
}

/// The media plane ended a participation on its own: the state ends if it is still that
/// participation's (same channel, and same session when the loss names one).
pub async fn lost(svc: &Services, loss: MediaLoss) {
    publish_closed(svc, loss.server_id, &loss.closed).await;
    let state = match svc.voice_states.get(loss.server_id, loss.user_id).await {
        Ok(Some(s))
            if s.channel_id == loss.channel_id
                && loss.session_id.is_none_or(|id| id == s.session_id) =>
        {
            s
        }
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "voice state unavailable after a media loss");
            return;
        }
    };
    match svc
        .voice_states
        .remove(loss.server_id, loss.user_id, Some(state.session_id))
        .await
    {
        Ok(Some(removed)) => publish_state(svc, loss.server_id, &removed, true).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "voice state not removed after a media loss"),
    }
}

/// The server's voice states, as `system.ready` carries them.
pub async fn states(svc: &Services, server_id: Uuid) -> CoreResult<Vec<VoiceState>> {
    svc.voice_states.list(server_id).await
}

/// `members.voiceMute {user_id, server_mute?, server_deaf?}`: MUTE_MEMBERS for `server_mute`,
/// DEAFEN_MEMBERS for `server_deaf`, the hierarchy over the target; NOT_FOUND 8000 when the
/// target is not in voice. A server-muted user's microphone pauses.
pub async fn server_mute(
    svc: &Services,
    server: &Server,
    caller: &Caller,
    user_id: Uuid,
    mute: Option<bool>,
    deaf: Option<bool>,
) -> CoreResult<VoiceState> {
    let perms = Perms::load(svc, server, caller).await?;
    if mute.is_some() {
        perms.require(bits::MUTE_MEMBERS, "MUTE_MEMBERS")?;
    }
    if deaf.is_some() {
        perms.require(bits::DEAFEN_MEMBERS, "DEAFEN_MEMBERS")?;
    }
    let mut state = svc
        .voice_states
        .get(server.id, user_id)
        .await?
        .ok_or_else(|| {
            CoreError::not_found(EctoCode::NotInVoice, "User is not in a voice channel")
        })?;
    let (_, top) = access::target(svc, server, &perms, user_id).await?;
    perms.check_hierarchy(server, user_id, top)?;
    if let Some(m) = mute {
        state.server_mute = m;
    }
    if let Some(d) = deaf {
        state.server_deaf = d;
    }
    svc.voice_states.set(server.id, state.clone()).await?;
    svc.media
        .pause_audio(
            state.channel_id,
            user_id,
            state.self_mute || state.server_mute,
        )
        .await?;
    publish_state(svc, server.id, &state, false).await;
    Ok(state)
}
