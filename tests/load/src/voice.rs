//! `voice`: N participants in one voice channel, each producing Opus (and with `--video` also
//! a VP8 camera) and consuming everyone else, through the server's SFU as mediasoup-client
//! would: `/ws` signalling, then real WebRTC peers (the `webrtc` crate: ICE, DTLS, SRTP) on
//! loopback. Every packet carries the time it was sent, so the receiver measures the delay
//! through the SFU; sequence counts give the loss.

use crate::scenarios::{accounts, report, rss_kib, CpuMark};
use crate::stats::{round1, round3, Report};
use crate::ws::{self, Session};
use crate::Ctx;
use futures_util::SinkExt;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCPeerConnectionState, RTCSessionDescription,
};

pub struct VoiceParams {
    pub participants: usize,
    pub duration: f64,
    pub video: bool,
    pub grace: f64,
    /// Percent of RTP lost each way (0: a clean path, no relay).
    pub loss: f64,
}

/// The path between the peers and the SFU: direct, or through a lossy relay started on the
/// first transport (every transport has the SFU's one address).
struct Path {
    loss: f64,
    relay: tokio::sync::OnceCell<crate::lossy::Relay>,
}

impl Path {
    /// Where the peers send to reach the transport `t`: the relay's address on a lossy path.
    async fn via(&self, t: &Value) -> Result<Option<std::net::SocketAddr>, String> {
        if self.loss <= 0.0 {
            return Ok(None);
        }
        let c = &t["iceCandidates"][0];
        let sfu: std::net::SocketAddr = format!("{}:{}", c["ip"].as_str().unwrap_or(""), c["port"])
            .parse()
            .map_err(|e| format!("the SFU's candidate: {e}"))?;
        let relay = self
            .relay
            .get_or_try_init(|| crate::lossy::start(sfu, self.loss))
            .await?;
        Ok(Some(relay.addr))
    }
}

/// Opus every 20 ms, as browsers send it; bytes per packet (about 64 kbit/s).
const AUDIO_EVERY: Duration = Duration::from_millis(20);
const AUDIO_BYTES: usize = 160;
/// The camera: 30 packets a second of 1,000 bytes (about 240 kbit/s, a small camera stream).
const VIDEO_EVERY: Duration = Duration::from_micros(33_333);
const VIDEO_BYTES: usize = 1000;

/// The clock every packet's send time is read from (one process, so one clock).
fn since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What every receiving track adds to.
#[derive(Default)]
struct Received {
    measuring: AtomicBool,
    /// The kind of each consumer, by the SSRC the SFU gave it.
    kinds: Mutex<HashMap<u32, &'static str>>,
    audio: AtomicU64,
    video: AtomicU64,
    delays: Mutex<Vec<u32>>,
}

impl Received {
    fn packet(&self, ssrc: u32, payload: &[u8]) {
        if !self.measuring.load(Ordering::Relaxed) || payload.len() < 8 {
            return;
        }
        let kind = match self.kinds.lock() {
            Ok(k) => k.get(&ssrc).copied().unwrap_or("unknown"),
            Err(_) => return,
        };
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&payload[..8]);
        let delay = since_start().saturating_sub(u64::from_be_bytes(sent));
        match kind {
            "video" => self.video.fetch_add(1, Ordering::Relaxed),
            "audio" => self.audio.fetch_add(1, Ordering::Relaxed),
            _ => return,
        };
        if let Ok(mut d) = self.delays.lock() {
            d.push(u32::try_from(delay).unwrap_or(u32::MAX));
        }
    }
}

struct Handler {
    connected: watch::Sender<bool>,
    received: Arc<Received>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let _ = self.connected.send(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) => received.packet(p.header.ssrc, &p.payload),
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

async fn peer(
    received: &Arc<Received>,
) -> Result<(impl PeerConnection, watch::Receiver<bool>), String> {
    let mut media = MediaEngine::default();
    media
        .register_default_codecs()
        .map_err(|e| format!("codecs: {e}"))?;
    let (tx, rx) = watch::channel(false);
    // NACK both ways, as browsers: a consumer asks for what it missed, a producer answers
    // from what it sent.
    let registry = rtc::peer_connection::configuration::interceptor_registry::configure_nack(
        rtc::interceptor::Registry::new(),
        &mut media,
    );
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            connected: tx,
            received: received.clone(),
        }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    Ok((pc, rx))
}

/// The value of the first line starting with `prefix` (after it).
fn line<'a>(sdp: &'a str, prefix: &str) -> Result<&'a str, String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .ok_or_else(|| format!("no {prefix} in the local description"))
}

/// Sets `description` as the peer's local description; returns the SDP and its DTLS
/// fingerprint (what `voice.connect_transport` announces).
async fn apply_local(
    pc: &impl PeerConnection,
    description: RTCSessionDescription,
) -> Result<(String, String), String> {
    pc.set_local_description(description)
        .await
        .map_err(|e| format!("local description: {e}"))?;
    let local = pc
        .local_description()
        .await
        .ok_or("no local description")?
        .sdp;
    let fingerprint = line(&local, "a=fingerprint:sha-256 ")?.to_owned();
    Ok((local, fingerprint))
}

/// The m-sections of an SDP: (media, mid, the payload type of `codec`).
fn sections(sdp: &str, codecs: &[(&str, &str)]) -> Vec<(String, String, u8)> {
    let mut out = Vec::new();
    for section in sdp.split("\r\nm=").skip(1) {
        let media = section.split(' ').next().unwrap_or("").to_owned();
        let mid = section
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .unwrap_or("")
            .to_owned();
        let wanted = codecs
            .iter()
            .find(|(m, _)| *m == media)
            .map(|(_, c)| *c)
            .unwrap_or("");
        let pt = section.lines().find_map(|l| {
            let rest = l.strip_prefix("a=rtpmap:")?;
            let (pt, name) = rest.split_once(' ')?;
            name.starts_with(wanted).then(|| pt.parse().ok()).flatten()
        });
        if let Some(pt) = pt {
            out.push((media, mid, pt));
        }
    }
    out
}

/// ICE, candidate and DTLS lines of one of the server's transports (its candidate replaced by
/// `via` on a lossy path).
fn transport_lines(t: &Value, via: Option<std::net::SocketAddr>) -> String {
    let ice = &t["iceParameters"];
    let c = &t["iceCandidates"][0];
    let (ip, port) = match via {
        Some(addr) => (addr.ip().to_string(), json!(addr.port())),
        None => (c["ip"].as_str().unwrap_or("").to_owned(), c["port"].clone()),
    };
    format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=candidate:udpcandidate 1 udp {} {ip} {port} typ host\r\na=end-of-candidates\r\na=rtcp-mux\r\n",
        ice["usernameFragment"].as_str().unwrap_or(""),
        ice["password"].as_str().unwrap_or(""),
        c["priority"],
    )
}

fn session_lines(t: &Value, mids: &[String]) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\na=group:BUNDLE {}\r\na=fingerprint:sha-256 {}\r\n",
        mids.join(" "),
        t["dtlsParameters"]["fingerprints"][0]["value"]
            .as_str()
            .unwrap_or("")
    )
}

fn track(
    kind: RtpCodecKind,
    ssrc: u32,
    mime: &str,
    clock: u32,
    channels: u16,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "stream".into(),
        format!("{mime}-{ssrc}"),
        format!("{mime}-{ssrc}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate: clock,
                channels,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        }],
    )))
}

/// One producing track: what it sends with.
struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    pt: u8,
    kind: &'static str,
}

/// Keeps a peer connection until `close` turns true, then closes it.
fn keep(pc: impl PeerConnection + 'static, mut close: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = close.wait_for(|c| *c).await;
        let _ = pc.close().await;
    })
}

/// One participant after setup.
struct Participant {
    session: Session,
    peers: Vec<JoinHandle<()>>,
    outgoing: Vec<Outgoing>,
    send_connected: watch::Receiver<bool>,
    recv_connected: Option<watch::Receiver<bool>>,
    router_caps: Value,
    recv_transport: Value,
}

async fn send(session: &mut Session, event: &str, data: Value) -> Result<(), String> {
    session
        .socket
        .send(Message::text(
            json!({ "event": event, "data": data }).to_string(),
        ))
        .await
        .map_err(|_| format!("socket dropped sending {event}"))
}

/// Reads frames until `event`; a `voice.error` is an error.
async fn until(
    session: &mut Session,
    event: &'static str,
    timeout: Duration,
) -> Result<Value, String> {
    loop {
        let (_, text) = ws::next_frame(&mut session.socket, event, timeout)
            .await
            .map_err(|e| e.kind())?;
        let frame: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match frame["event"].as_str() {
            Some(e) if e == event => return Ok(frame["data"].clone()),
            Some("voice.error") => return Err(format!("voice.error {}", frame["data"])),
            _ => {}
        }
    }
}

fn dtls(fingerprint: &str) -> Value {
    json!({ "role": "client", "fingerprints": [{ "algorithm": "sha-256", "value": fingerprint }] })
}

/// The router's capabilities as these peers have them: no RTX (their SDP gives each consumer
/// one stream), so retransmissions come plain.
fn without_rtx(mut caps: Value) -> Value {
    if let Some(codecs) = caps["codecs"].as_array_mut() {
        codecs.retain(|c| c["mimeType"] != "video/rtx");
    }
    caps
}

/// The NACK feedback line of a video section (the peers' NACK interceptors act on it).
fn nack_line(media: &str, pt: u8) -> String {
    if media == "video" {
        format!("a=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n")
    } else {
        String::new()
    }
}

/// Joins, connects the send transport and produces (Opus, and VP8 with `video`).
async fn join_and_produce(
    mut session: Session,
    channel: &str,
    video: bool,
    (received, path): (&Arc<Received>, &Path),
    close: &watch::Receiver<bool>,
    timeout: Duration,
) -> Result<Participant, String> {
    send(&mut session, "voice.join", json!({ "channel_id": channel })).await?;
    let caps = until(&mut session, "voice.router_capabilities", timeout).await?;
    let transports = until(&mut session, "voice.transport_created", timeout).await?;
    let send_t = transports["send"].clone();
    let via = path.via(&send_t).await?;
    let (pc, send_connected) = peer(received).await?;
    let audio_ssrc = rand::random::<u32>();
    let mut tracks = vec![(
        "audio",
        audio_ssrc,
        track(RtpCodecKind::Audio, audio_ssrc, "audio/opus", 48000, 2),
    )];
    if video {
        let ssrc = rand::random::<u32>();
        tracks.push((
            "video",
            ssrc,
            track(RtpCodecKind::Video, ssrc, "video/VP8", 90000, 0),
        ));
    }
    for (_, _, t) in &tracks {
        pc.add_track(t.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| format!("add track: {e}"))?;
    }
    let offer = pc
        .create_offer(None)
        .await
        .map_err(|e| format!("offer: {e}"))?;
    let (local, fingerprint) = apply_local(&pc, offer).await?;
    let found = sections(&local, &[("audio", "opus/48000"), ("video", "VP8/90000")]);
    let mids: Vec<String> = found.iter().map(|(_, mid, _)| mid.clone()).collect();
    let mut answer = session_lines(&send_t, &mids);
    for (media, mid, pt) in &found {
        let codec = if media == "audio" {
            "opus/48000/2"
        } else {
            "VP8/90000"
        };
        answer.push_str(&format!(
            "m={media} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 127.0.0.1\r\na=mid:{mid}\r\na=recvonly\r\na=rtpmap:{pt} {codec}\r\n{}a=setup:passive\r\n{}",
            nack_line(media, *pt),
            transport_lines(&send_t, via)
        ));
    }
    let description = RTCSessionDescription::answer(answer).map_err(|e| format!("answer: {e}"))?;
    pc.set_remote_description(description)
        .await
        .map_err(|e| format!("remote description: {e}"))?;
    send(
        &mut session,
        "voice.connect_transport",
        json!({ "transport_id": send_t["id"], "dtls_parameters": dtls(&fingerprint) }),
    )
    .await?;
    let mut outgoing = Vec::new();
    for (kind, ssrc, t) in tracks {
        let (media, mid, pt) = found
            .iter()
            .find(|(m, _, _)| m == kind)
            .ok_or_else(|| format!("no {kind} section in the offer"))?;
        let (mime, clock, channels) = if media == "audio" {
            ("audio/opus", 48000, json!(2))
        } else {
            ("video/VP8", 90000, Value::Null)
        };
        let feedback = if media == "video" {
            json!([{ "type": "nack", "parameter": "" }, { "type": "nack", "parameter": "pli" }])
        } else {
            json!([])
        };
        let mut codec = json!({ "mimeType": mime, "payloadType": pt, "clockRate": clock, "parameters": {}, "rtcpFeedback": feedback });
        if !channels.is_null() {
            codec["channels"] = channels;
        }
        send(
            &mut session,
            "voice.produce",
            json!({
                "transport_id": send_t["id"], "kind": kind,
                "source": if kind == "audio" { "mic" } else { "camera" },
                "rtp_parameters": { "mid": mid, "codecs": [codec], "headerExtensions": [],
                    "encodings": [{ "ssrc": ssrc }], "rtcp": { "cname": "load", "reducedSize": true } },
            }),
        )
        .await?;
        until(&mut session, "voice.produced", timeout).await?;
        outgoing.push(Outgoing {
            track: t,
            ssrc,
            pt: *pt,
            kind,
        });
    }
    Ok(Participant {
        session,
        peers: vec![keep(pc, close.clone())],
        outgoing,
        send_connected,
        recv_connected: None,
        router_caps: without_rtx(caps["rtpCapabilities"].clone()),
        recv_transport: transports["recv"].clone(),
    })
}

/// Sends capabilities, takes the `expected` consumers offered, answers them on the receive
/// transport and resumes them.
async fn consume(
    p: &mut Participant,
    expected: usize,
    (received, path): (&Arc<Received>, &Path),
    close: &watch::Receiver<bool>,
    timeout: Duration,
) -> Result<(), String> {
    send(
        &mut p.session,
        "voice.capabilities",
        json!({ "rtp_capabilities": p.router_caps }),
    )
    .await?;
    let mut consumers = Vec::new();
    while consumers.len() < expected {
        consumers.push(until(&mut p.session, "voice.new_consumer", timeout).await?);
    }
    let recv = p.recv_transport.clone();
    let via = path.via(&recv).await?;
    let mids: Vec<String> = consumers
        .iter()
        .map(|c| c["rtpParameters"]["mid"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut sdp = session_lines(&recv, &mids);
    for c in &consumers {
        let params = &c["rtpParameters"];
        let codec = &params["codecs"][0];
        let pt = codec["payloadType"].as_u64().unwrap_or(0);
        let mime = codec["mimeType"].as_str().unwrap_or("");
        let (media, name) = mime.split_once('/').unwrap_or(("audio", "opus"));
        let ssrc = params["encodings"][0]["ssrc"].as_u64().unwrap_or(0);
        if let Ok(mut kinds) = received.kinds.lock() {
            kinds.insert(
                u32::try_from(ssrc).unwrap_or(0),
                if media == "video" { "video" } else { "audio" },
            );
        }
        let rtpmap = match codec["channels"].as_u64() {
            Some(ch) => format!("{name}/{}/{ch}", codec["clockRate"]),
            None => format!("{name}/{}", codec["clockRate"]),
        };
        sdp.push_str(&format!(
            "m={media} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 127.0.0.1\r\na=mid:{}\r\na=sendonly\r\na=rtpmap:{pt} {rtpmap}\r\n{}a=msid:stream {}\r\na=ssrc:{} cname:{}\r\na=setup:passive\r\n{}",
            params["mid"].as_str().unwrap_or(""),
            nack_line(media, u8::try_from(pt).unwrap_or(0)),
            c["consumer_id"].as_str().unwrap_or(""),
            ssrc,
            params["rtcp"]["cname"].as_str().unwrap_or("c"),
            transport_lines(&recv, via)
        ));
    }
    let (pc, connected) = peer(received).await?;
    let offer = RTCSessionDescription::offer(sdp).map_err(|e| format!("offer: {e}"))?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| format!("remote description: {e}"))?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(|e| format!("answer: {e}"))?;
    let (_, fingerprint) = apply_local(&pc, answer).await?;
    send(
        &mut p.session,
        "voice.connect_transport",
        json!({ "transport_id": recv["id"], "dtls_parameters": dtls(&fingerprint) }),
    )
    .await?;
    for c in &consumers {
        send(
            &mut p.session,
            "voice.consumer_resume",
            json!({ "consumer_id": c["consumer_id"] }),
        )
        .await?;
    }
    p.peers.push(keep(pc, close.clone()));
    p.recv_connected = Some(connected);
    Ok(())
}

async fn connected(rx: &mut watch::Receiver<bool>, timeout: Duration) -> Result<(), String> {
    tokio::time::timeout(timeout, rx.wait_for(|c| *c))
        .await
        .map_err(|_| "a peer connection did not connect in time".to_owned())?
        .map(|_| ())
        .map_err(|_| "a peer connection went away".to_owned())
}

/// Sends one track's packets until `stop`; returns how many.
async fn produce_until(out: Arc<Outgoing>, mut stop: watch::Receiver<bool>) -> u64 {
    let (every, bytes, step) = if out.kind == "audio" {
        (AUDIO_EVERY, AUDIO_BYTES, 960u32)
    } else {
        (VIDEO_EVERY, VIDEO_BYTES, 3000u32)
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut payload = vec![0u8; bytes];
    let mut sent = 0u64;
    let mut seq: u16 = rand::random();
    let mut ts: u32 = rand::random();
    loop {
        tokio::select! {
            _ = stop.changed() => return sent,
            _ = tick.tick() => {
                payload[..8].copy_from_slice(&since_start().to_be_bytes());
                let packet = rtc::rtp::packet::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: out.pt,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc: out.ssrc,
                        marker: out.kind == "video",
                        ..Default::default()
                    },
                    payload: bytes::Bytes::copy_from_slice(&payload),
                };
                if out.track.write_rtp(packet).await.is_ok() {
                    sent += 1;
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(step);
            }
        }
    }
}

pub async fn voice(ctx: &Ctx, p: VoiceParams) -> Result<Report, String> {
    let n = p.participants.max(2);
    let timeout = ctx.target.timeout;
    let (owner, channel) = crate::api::channel_of_type(
        &ctx.api,
        &ctx.owner,
        &ctx.run,
        "voice",
        &ctx.errors,
        &ctx.tokens,
    )
    .await?;
    drop(owner);
    let users = accounts(ctx, n).await?;
    if users.len() < n {
        return Err(format!("only {} of {n} accounts signed in", users.len()));
    }
    let mut sessions = Vec::new();
    for u in &users {
        sessions.push(
            ws::identify(&ctx.target, &u.token)
                .await
                .map_err(|e| e.kind())?,
        );
    }
    let rss_before = ctx.pid.and_then(rss_kib);
    eprintln!("ecto-load: {n} sessions ready; joining and producing");
    let received = Arc::new(Received::default());
    let path = Path {
        loss: p.loss,
        relay: tokio::sync::OnceCell::new(),
    };
    let (close_tx, close_rx) = watch::channel(false);
    let setup_started = Instant::now();
    let joins = sessions
        .into_iter()
        .map(|s| join_and_produce(s, &channel, p.video, (&received, &path), &close_rx, timeout));
    let mut participants = Vec::new();
    for r in futures_util::future::join_all(joins).await {
        participants.push(r?);
    }
    let kinds = if p.video { 2 } else { 1 };
    eprintln!("ecto-load: consuming");
    let consumes = participants.iter_mut().map(|part| {
        consume(
            part,
            (n - 1) * kinds,
            (&received, &path),
            &close_rx,
            timeout,
        )
    });
    for r in futures_util::future::join_all(consumes).await {
        r?;
    }
    for part in &mut participants {
        connected(&mut part.send_connected, timeout).await?;
        if let Some(rx) = part.recv_connected.as_mut() {
            connected(rx, timeout).await?;
        }
    }
    let setup = setup_started.elapsed();
    // Drain every socket (voice.state_update and friends) while media flows.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut held = Vec::new();
    let mut keepers = Vec::new();
    let mut outgoing = Vec::new();
    for part in participants {
        let Participant {
            session,
            peers,
            outgoing: tracks,
            ..
        } = part;
        outgoing.extend(tracks.into_iter().map(Arc::new));
        let stop = stop_rx.clone();
        let errors = ctx.errors.clone();
        held.push(tokio::spawn(async move {
            ws::hold(session, stop, &errors, |_| {}).await
        }));
        keepers.extend(peers);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("ecto-load: media flowing for {:.0} s", p.duration);
    received.measuring.store(true, Ordering::Relaxed);
    if let Some(relay) = path.relay.get() {
        relay.losing.store(true, Ordering::Relaxed);
    }
    let cpu = CpuMark::now(ctx);
    let started = Instant::now();
    let (send_stop_tx, send_stop_rx) = watch::channel(false);
    let senders: Vec<_> = outgoing
        .iter()
        .map(|o| {
            let kind = o.kind;
            (
                kind,
                tokio::spawn(produce_until(o.clone(), send_stop_rx.clone())),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(p.duration)).await;
    let rss_during = ctx.pid.and_then(rss_kib);
    let _ = send_stop_tx.send(true);
    let (mut sent_audio, mut sent_video) = (0u64, 0u64);
    for (kind, h) in senders {
        let count = h.await.unwrap_or(0);
        if kind == "audio" {
            sent_audio += count;
        } else {
            sent_video += count;
        }
    }
    let sending = started.elapsed();
    if let Some(relay) = path.relay.get() {
        relay.losing.store(false, Ordering::Relaxed);
    }
    tokio::time::sleep(Duration::from_secs_f64(p.grace)).await;
    received.measuring.store(false, Ordering::Relaxed);
    let mut r = report(ctx, "voice");
    cpu.report(&mut r);
    let server_cpu = r.result_f64("server_cpu_s");
    let _ = stop_tx.send(true);
    for h in held {
        let _ = h.await;
    }
    let _ = close_tx.send(true);
    for h in keepers {
        let _ = h.await;
    }

    let got_audio = received.audio.load(Ordering::Relaxed);
    let got_video = received.video.load(Ordering::Relaxed);
    let consumers = (n - 1) as u64;
    let expected = (sent_audio + sent_video) * consumers;
    let forwarded = got_audio + got_video;
    r.param("participants", n as u64);
    r.param("video", p.video);
    r.param("duration_s", p.duration);
    r.param("audio", "Opus-sized, 160 B every 20 ms");
    if p.video {
        r.param("camera", "VP8-sized, 1000 B at 30 packets/s");
    }
    r.result("setup_s", round3(setup.as_secs_f64()));
    r.result("packets_sent", sent_audio + sent_video);
    r.result("packets_expected", expected);
    r.result("packets_forwarded", forwarded);
    r.result("audio_forwarded", got_audio);
    if p.video {
        r.result("video_forwarded", got_video);
    }
    r.result(
        "forwarded_per_s",
        round1(forwarded as f64 / sending.as_secs_f64().max(0.001)),
    );
    let lost = expected.saturating_sub(forwarded);
    r.result("lost", lost);
    r.result(
        "loss_percent",
        round3(100.0 * lost as f64 / expected.max(1) as f64),
    );
    if let Some(relay) = path.relay.get() {
        loss_results(
            &mut r,
            relay,
            p.loss,
            consumers,
            [sent_audio, sent_video],
            [got_audio, got_video],
        );
    }
    let delays = std::mem::take(&mut *received.delays.lock().unwrap_or_else(|e| e.into_inner()));
    r.latency("send_to_receive", delays);
    if let Some(cpu_s) = server_cpu {
        r.result(
            "server_cpu_ms_per_1000_forwarded",
            round3(cpu_s * 1000.0 / (forwarded.max(1) as f64 / 1000.0)),
        );
    }
    if let (Some(before), Some(during)) = (rss_before, rss_during) {
        r.result("server_rss_before_kib", before);
        r.result("server_rss_during_kib", during);
        r.result(
            "server_rss_per_participant_kib",
            round1(during.saturating_sub(before) as f64 / n as f64),
        );
    }
    r.errors(&ctx.errors);
    Ok(r)
}

/// What the lossy relay dropped and what reached the receivers anyway: a packet lost on the
/// way in is missed by every consumer, one lost on the way out by one; recovered is the part
/// of those missed deliveries that NACK brought back (audio has no retransmission).
fn loss_results(
    r: &mut Report,
    relay: &crate::lossy::Relay,
    loss: f64,
    consumers: u64,
    [sent_audio, sent_video]: [u64; 2],
    [got_audio, got_video]: [u64; 2],
) {
    let d = &relay.dropped;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    r.param("loss_percent_each_way", loss);
    let kinds = [
        ("audio", &d.audio_up, &d.audio_down, sent_audio, got_audio),
        ("video", &d.video_up, &d.video_down, sent_video, got_video),
    ];
    for (kind, up, down, sent, got) in kinds {
        if sent == 0 {
            continue;
        }
        let missed = load(up) * consumers + load(down);
        let lost = (sent * consumers).saturating_sub(got);
        r.result(&format!("{kind}_dropped_by_relay_in"), load(up));
        r.result(&format!("{kind}_dropped_by_relay_out"), load(down));
        r.result(&format!("{kind}_lost"), lost);
        r.result(
            &format!("{kind}_recovered_percent"),
            round1(100.0 * (1.0 - lost as f64 / missed.max(1) as f64)),
        );
    }
}
