//! The media plane against real WebRTC peers (the `webrtc` crate, a full controlling ICE
//! agent and DTLS client, as browsers are): ICE-lite, DTLS, SRTP, forwarding from a producer
//! to a consumer with the router's payload type and the consumer's SSRC, numbering that stays
//! continuous across a pause, and a client certificate that does not match its fingerprint.

use ecto_core::ports::{MediaLoss, MediaPlane, ProduceRequest};
use ecto_voice::{Sfu, SfuConfig};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCPeerConnectionState, RTCSessionDescription,
};

/// What a client peer saw: its connection state and the RTP packets it received.
#[derive(Default)]
struct Seen {
    connected: bool,
    packets: Vec<(u8, u16, u32, u32)>,
}

struct Handler {
    seen: Arc<Mutex<Seen>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.seen.lock().expect("seen").connected = true;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) => seen.lock().expect("seen").packets.push((
                        p.header.payload_type,
                        p.header.sequence_number,
                        p.header.timestamp,
                        p.header.ssrc,
                    )),
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

async fn peer(seen: &Arc<Mutex<Seen>>) -> impl PeerConnection {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    PeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_handler(Arc::new(Handler { seen: seen.clone() }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("peer")
}

fn line<'a>(sdp: &'a str, prefix: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{sdp}"))
}

/// The ICE, candidate and DTLS lines of one of our transports.
fn transport_lines(t: &Value) -> String {
    let ice = &t["iceParameters"];
    let c = &t["iceCandidates"][0];
    format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=candidate:udpcandidate 1 udp {} {} {} typ host\r\na=end-of-candidates\r\na=rtcp-mux\r\n",
        ice["usernameFragment"].as_str().expect("ufrag"),
        ice["password"].as_str().expect("pwd"),
        c["priority"],
        c["ip"].as_str().expect("ip"),
        c["port"],
    )
}

fn session(t: &Value, mid: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\na=group:BUNDLE {mid}\r\na=fingerprint:sha-256 {}\r\n",
        t["dtlsParameters"]["fingerprints"][0]["value"]
            .as_str()
            .expect("fingerprint")
    )
}

fn dtls(fingerprint: &str) -> Value {
    json!({ "role": "client", "fingerprints": [{ "algorithm": "sha-256", "value": fingerprint }] })
}

fn opus_track(ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "stream".into(),
        "mic".into(),
        "mic".into(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: "audio/opus".into(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        }],
    )))
}

/// A producing client: offers Opus on the send transport, gets our answer, connects and
/// produces. Returns the peer, its track, the producer id and its SSRC.
async fn producer(
    sfu: &Sfu,
    channel: Uuid,
    user: Uuid,
    seen: &Arc<Mutex<Seen>>,
    fingerprint_override: Option<&str>,
) -> (impl PeerConnection, Arc<TrackLocalStaticRTP>, Uuid, u32) {
    let transports = sfu.join(SERVER, channel, user).await.expect("join");
    let send = &transports.send;
    let pc = peer(seen).await;
    let ssrc = rand::random::<u32>();
    let track = opus_track(ssrc);
    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .expect("track");
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("local");
    let local = pc.local_description().await.expect("local sdp").sdp;
    let mid = line(&local, "a=mid:").to_owned();
    let fingerprint = line(&local, "a=fingerprint:sha-256 ").to_owned();
    let answer = format!(
        "{}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na=mid:{mid}\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\na=setup:passive\r\n{}",
        session(send, &mid),
        transport_lines(send)
    );
    pc.set_remote_description(RTCSessionDescription::answer(answer).expect("answer"))
        .await
        .expect("remote");
    let send_id = Uuid::parse_str(send["id"].as_str().expect("id")).expect("uuid");
    sfu.connect(
        channel,
        user,
        send_id,
        dtls(fingerprint_override.unwrap_or(&fingerprint)),
    )
    .await
    .expect("connect");
    let produced = sfu
        .produce(
            channel,
            user,
            ProduceRequest {
                transport_id: send_id,
                kind: "audio".into(),
                rtp_parameters: json!({
                    "mid": mid,
                    "codecs": [{ "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2, "parameters": {}, "rtcpFeedback": [] }],
                    "headerExtensions": [],
                    "encodings": [{ "ssrc": ssrc }],
                    "rtcp": { "cname": "producer", "reducedSize": true },
                }),
                source: "mic".into(),
                paused: false,
            },
        )
        .await
        .expect("produce");
    (pc, track, produced.producer_id, ssrc)
}

/// A consuming client: joins, sends the router's capabilities as its device's, receives the
/// offer for its consumers, answers, connects and resumes them. Returns the peer and the
/// consumers' SSRCs.
async fn consumer(
    sfu: &Sfu,
    channel: Uuid,
    user: Uuid,
    seen: &Arc<Mutex<Seen>>,
) -> (impl PeerConnection, Vec<u32>) {
    let transports = sfu.join(SERVER, channel, user).await.expect("join");
    let recv = &transports.recv;
    let consumers = sfu
        .set_capabilities(channel, user, sfu.router_capabilities())
        .await
        .expect("capabilities");
    assert!(!consumers.is_empty(), "a consumer for the producer");
    let mut sdp = session(recv, "0");
    let mut ssrcs = Vec::new();
    for c in &consumers {
        let p = &c.rtp_parameters;
        let ssrc = p["encodings"][0]["ssrc"].as_u64().expect("ssrc");
        ssrcs.push(u32::try_from(ssrc).expect("u32"));
        assert_eq!(
            p["codecs"][0]["payloadType"], 100,
            "the router's payload type"
        );
        sdp.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 127.0.0.1\r\na=mid:{}\r\na=sendonly\r\na=rtpmap:100 opus/48000/2\r\na=msid:stream {}\r\na=ssrc:{ssrc} cname:{}\r\na=setup:passive\r\n{}",
            p["mid"].as_str().expect("mid"),
            c.consumer_id,
            p["rtcp"]["cname"].as_str().expect("cname"),
            transport_lines(recv)
        ));
    }
    let pc = peer(seen).await;
    pc.set_remote_description(RTCSessionDescription::offer(sdp).expect("offer"))
        .await
        .expect("remote");
    let answer = pc.create_answer(None).await.expect("answer");
    pc.set_local_description(answer).await.expect("local");
    let local = pc.local_description().await.expect("local sdp").sdp;
    let fingerprint = line(&local, "a=fingerprint:sha-256 ").to_owned();
    let recv_id = Uuid::parse_str(recv["id"].as_str().expect("id")).expect("uuid");
    sfu.connect(channel, user, recv_id, dtls(&fingerprint))
        .await
        .expect("connect");
    for c in &consumers {
        sfu.resume_consumer(channel, user, c.consumer_id)
            .await
            .expect("resume");
    }
    (pc, ssrcs)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send_opus(track: &TrackLocalStaticRTP, ssrc: u32, from: u16, count: u16) {
    for seq in from..from + count {
        track
            .write_rtp(rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: 111,
                    sequence_number: seq,
                    timestamp: u32::from(seq) * 960,
                    ssrc,
                    ..Default::default()
                },
                payload: bytes::Bytes::from_static(&[0xF8, 0xFF, 0xFE]),
            })
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server every test channel belongs to (the SFU only reports it back).
const SERVER: Uuid = Uuid::from_u128(7);

fn sfu() -> (Arc<Sfu>, tokio::sync::mpsc::UnboundedReceiver<MediaLoss>) {
    Sfu::start(SfuConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        announced_ip: "127.0.0.1".parse().expect("ip"),
    })
    .expect("sfu")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_reaches_a_consumer_through_ice_dtls_and_srtp() {
    let (sfu, _events) = sfu();
    let channel = Uuid::now_v7();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let alice_seen = Arc::new(Mutex::new(Seen::default()));
    let bob_seen = Arc::new(Mutex::new(Seen::default()));
    let (alice_pc, track, producer_id, ssrc) =
        producer(&sfu, channel, alice, &alice_seen, None).await;
    until("alice connects", || {
        alice_seen.lock().expect("seen").connected
    })
    .await;
    let (bob_pc, consumer_ssrcs) = consumer(&sfu, channel, bob, &bob_seen).await;
    until("bob connects", || bob_seen.lock().expect("seen").connected).await;

    send_opus(&track, ssrc, 1000, 30).await;
    until("bob receives", || {
        bob_seen.lock().expect("seen").packets.len() >= 25
    })
    .await;
    let got = bob_seen.lock().expect("seen").packets.clone();
    assert!(
        got.iter().all(|p| p.0 == 100),
        "the router's payload type: {got:?}"
    );
    assert!(
        got.iter().all(|p| p.3 == consumer_ssrcs[0]),
        "the consumer's SSRC"
    );
    let seqs: Vec<u16> = got.iter().map(|p| p.1).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "one continuous numbering: {seqs:?}"
    );
    assert!(sfu.forwarded() >= 25);

    // A paused producer sends nothing; after the resume the numbering goes on without a gap.
    sfu.pause_producer(channel, alice, producer_id, true)
        .await
        .expect("pause");
    let before = bob_seen.lock().expect("seen").packets.len();
    send_opus(&track, ssrc, 1030, 20).await;
    assert_eq!(
        bob_seen.lock().expect("seen").packets.len(),
        before,
        "nothing while paused"
    );
    sfu.pause_producer(channel, alice, producer_id, false)
        .await
        .expect("resume");
    send_opus(&track, ssrc, 1050, 20).await;
    until("bob receives again", || {
        bob_seen.lock().expect("seen").packets.len() >= before + 15
    })
    .await;
    let got = bob_seen.lock().expect("seen").packets.clone();
    let seqs: Vec<u16> = got.iter().map(|p| p.1).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "no hole across the pause: {seqs:?}"
    );
    let (ts_before, ts_after) = (got[before - 1].2, got[before].2);
    assert!(
        ts_after.wrapping_sub(ts_before) > 960 * 10,
        "the timestamp moves on with the time that passed"
    );

    // Leaving closes the producer: nothing more reaches bob.
    let closed = sfu.leave(channel, alice).await.expect("leave");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].producer_id, producer_id);
    let _ = alice_pc.close().await;
    let _ = bob_pc.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_match_its_fingerprint_gets_no_media() {
    let (sfu, mut events) = sfu();
    let channel = Uuid::now_v7();
    let user = Uuid::now_v7();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let bogus = vec!["AB"; 32].join(":");
    let (pc, _track, _producer, _ssrc) = producer(&sfu, channel, user, &seen, Some(&bogus)).await;
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event")
        .expect("open");
    assert_eq!(
        (
            event.server_id,
            event.channel_id,
            event.user_id,
            event.closed.len()
        ),
        (SERVER, channel, user, 1)
    );
    let _ = pc.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_about_someone_elses_objects_are_refused() {
    let (sfu, _events) = sfu();
    let (channel, alice, mallory) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let t = sfu.join(SERVER, channel, alice).await.expect("join");
    sfu.join(SERVER, channel, mallory).await.expect("join");
    let send = Uuid::parse_str(t.send["id"].as_str().expect("id")).expect("uuid");
    let err = sfu
        .connect(channel, mallory, send, dtls("AA"))
        .await
        .expect_err("alice's transport");
    assert_eq!(err.kind, ecto_core::ErrorKind::BadRequest);
    let err = sfu
        .produce(
            channel,
            mallory,
            ProduceRequest {
                transport_id: send,
                kind: "audio".into(),
                rtp_parameters: json!({}),
                source: "mic".into(),
                paused: false,
            },
        )
        .await
        .expect_err("alice's transport");
    assert_eq!(err.kind, ecto_core::ErrorKind::BadRequest);
    assert!(sfu
        .leave(channel, Uuid::now_v7())
        .await
        .expect("leave")
        .is_empty());
}
