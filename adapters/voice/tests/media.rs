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
    tracks: Vec<Arc<dyn TrackRemote>>,
    /// A port to reach the SFU through instead of its own (a [`relay`]).
    via: Option<u16>,
    /// The id a producing peer's offer gave the transport-wide sequence extension.
    transport_cc: Option<u8>,
}

/// A UDP relay in front of the SFU for one client.
struct Relay {
    /// The port the client sends to.
    port: u16,
    /// The number of the RTP packet it dropped, once it has.
    dropped: Arc<Mutex<Option<u16>>>,
    /// Its socket toward the SFU: what it sends comes from the client's address as the SFU
    /// sees it.
    back: Arc<tokio::net::UdpSocket>,
}

/// A relay in front of the SFU's `port` which drops the `nth` RTP packet the SFU sends the
/// client (once).
async fn relay(port: u16, nth: usize) -> Relay {
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("front");
    let back = Arc::new(
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("back"),
    );
    back.connect(("127.0.0.1", port)).await.expect("connect");
    let dropped = Arc::new(Mutex::new(None));
    let handle = Relay {
        port: front.local_addr().expect("addr").port(),
        dropped: dropped.clone(),
        back: back.clone(),
    };
    tokio::spawn(async move {
        let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
        let mut client = None;
        let mut rtp_seen = 0;
        loop {
            tokio::select! {
                Ok((n, from)) = front.recv_from(&mut a) => {
                    client = Some(from);
                    let _ = back.send(&a[..n]).await;
                }
                Ok(n) = back.recv(&mut b) => {
                    let is_rtp = n >= 12 && (128..=191).contains(&b[0]) && !(192..=223).contains(&b[1]);
                    if is_rtp {
                        rtp_seen += 1;
                        if rtp_seen == nth {
                            *dropped.lock().expect("dropped") = Some(u16::from_be_bytes([b[2], b[3]]));
                            continue;
                        }
                    }
                    if let Some(to) = client {
                        let _ = front.send_to(&b[..n], to).await;
                    }
                }
            }
        }
    });
    handle
}

/// A UDP relay in front of the SFU's `port` that gives one client two addresses, as a browser
/// with two candidate pairs has: the client's binding requests go out from both (the SFU
/// answers both; the client hears the first address's answers), its first DTLS datagram from
/// the first and everything after it from the second. Returns the port the client sends to.
async fn two_path_relay(port: u16) -> u16 {
    let bind = || async {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        s.connect(("127.0.0.1", port)).await.expect("connect");
        s
    };
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("front");
    let front_port = front.local_addr().expect("addr").port();
    let (first, second) = (bind().await, bind().await);
    tokio::spawn(async move {
        let (mut a, mut b, mut c) = (vec![0u8; 2048], vec![0u8; 2048], vec![0u8; 2048]);
        let (mut client, mut switched) = (None, false);
        loop {
            let to_client = tokio::select! {
                Ok((n, from)) = front.recv_from(&mut a) => {
                    client = Some(from);
                    let packet = &a[..n];
                    if packet[0] < 4 {
                        let _ = first.send(packet).await;
                        let _ = second.send(packet).await;
                    } else if switched {
                        let _ = second.send(packet).await;
                    } else {
                        let _ = first.send(packet).await;
                        switched = (20..=63).contains(&packet[0]);
                    }
                    continue;
                }
                Ok(n) = first.recv(&mut b) => &b[..n],
                Ok(n) = second.recv(&mut c) => {
                    if c[0] < 4 {
                        continue;
                    }
                    &c[..n]
                }
            };
            if let Some(to) = client {
                let _ = front.send_to(to_client, to).await;
            }
        }
    });
    front_port
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
        seen.lock().expect("seen").tracks.push(track.clone());
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
    media
        .register_header_extension(
            rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.to_owned(),
            },
            RtpCodecKind::Video,
            None,
        )
        .expect("transport-cc extension");
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

/// What a test client produces: Opus from a microphone or VP8 from a camera.
struct Media {
    kind: &'static str,
    source: &'static str,
    mime: &'static str,
    payload_type: u8,
    clock_rate: u32,
    channels: u16,
    /// The codec as SDP names it (`a=rtpmap`).
    rtpmap: &'static str,
    /// Timestamp ticks between two packets.
    tick: u32,
    /// Payload bytes of each packet.
    payload: usize,
}

const AUDIO: Media = Media {
    kind: "audio",
    source: "mic",
    mime: "audio/opus",
    payload_type: 111,
    clock_rate: 48000,
    channels: 2,
    rtpmap: "opus/48000/2",
    tick: 960,
    payload: 3,
};

const VIDEO: Media = Media {
    kind: "video",
    source: "webcam",
    mime: "video/VP8",
    payload_type: 96,
    clock_rate: 90000,
    channels: 0,
    rtpmap: "VP8/90000",
    tick: 3000,
    payload: 1000,
};

fn local_track(media: &Media, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let kind = if media.kind == "audio" {
        RtpCodecKind::Audio
    } else {
        RtpCodecKind::Video
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "stream".into(),
        media.source.into(),
        media.source.into(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: media.mime.into(),
                clock_rate: media.clock_rate,
                channels: media.channels,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        }],
    )))
}

/// A producing client: offers `media` on the send transport, gets our answer, connects and
/// produces. Returns the peer, its track, the producer id and its SSRC.
async fn producer(
    sfu: &Sfu,
    channel: Uuid,
    user: Uuid,
    seen: &Arc<Mutex<Seen>>,
    fingerprint_override: Option<&str>,
    media: &Media,
) -> (impl PeerConnection, Arc<TrackLocalStaticRTP>, Uuid, u32) {
    let transports = sfu.join(SERVER, channel, user).await.expect("join");
    let send = &transports.send;
    let pc = peer(seen).await;
    let ssrc = rand::random::<u32>();
    let track = local_track(media, ssrc);
    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .expect("track");
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("local");
    let local = pc.local_description().await.expect("local sdp").sdp;
    let mid = line(&local, "a=mid:").to_owned();
    let fingerprint = line(&local, "a=fingerprint:sha-256 ").to_owned();
    let (kind, pt) = (media.kind, media.payload_type);
    // The offer numbers the transport-wide extension (video only); the answer keeps its id.
    let twcc = local.lines().find_map(|l| {
        let (id, uri) = l.trim().strip_prefix("a=extmap:")?.split_once(' ')?;
        (uri == TRANSPORT_CC_URI)
            .then(|| id.parse::<u8>().ok())
            .flatten()
    });
    seen.lock().expect("seen").transport_cc = twcc;
    let extmap = twcc.map_or(String::new(), |id| {
        format!("a=extmap:{id} {TRANSPORT_CC_URI}\r\n")
    });
    let extensions = twcc.map_or(
        json!([]),
        |id| json!([{ "uri": TRANSPORT_CC_URI, "id": id }]),
    );
    let answer = format!(
        "{}m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 127.0.0.1\r\na=mid:{mid}\r\na=recvonly\r\na=rtpmap:{pt} {}\r\na=rtcp-fb:{pt} nack\r\n{extmap}a=setup:passive\r\n{}",
        session(send, &mid),
        media.rtpmap,
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
                kind: media.kind.into(),
                rtp_parameters: json!({
                    "mid": mid,
                    "codecs": [if media.kind == "audio" {
                        json!({ "mimeType": media.mime, "payloadType": pt, "clockRate": media.clock_rate, "channels": media.channels, "parameters": {}, "rtcpFeedback": [] })
                    } else {
                        json!({ "mimeType": media.mime, "payloadType": pt, "clockRate": media.clock_rate, "parameters": {}, "rtcpFeedback": [{ "type": "nack", "parameter": "" }, { "type": "nack", "parameter": "pli" }] })
                    }],
                    "headerExtensions": extensions,
                    "encodings": [{ "ssrc": ssrc }],
                    "rtcp": { "cname": "producer", "reducedSize": true },
                }),
                source: media.source.into(),
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
    let mut recv = transports.recv.clone();
    if let Some(port) = seen.lock().expect("seen").via {
        recv["iceCandidates"][0]["port"] = json!(port);
    }
    let recv = &recv;
    let consumers = sfu
        .set_capabilities(channel, user, without_rtx(sfu.router_capabilities()))
        .await
        .expect("capabilities");
    assert!(!consumers.is_empty(), "a consumer for the producer");
    let mut sdp = session(recv, "0");
    let mut ssrcs = Vec::new();
    for c in &consumers {
        let p = &c.rtp_parameters;
        let ssrc = p["encodings"][0]["ssrc"].as_u64().expect("ssrc");
        ssrcs.push(u32::try_from(ssrc).expect("u32"));
        let codec = &p["codecs"][0];
        let pt = codec["payloadType"].as_u64().expect("payload type");
        let mime = codec["mimeType"].as_str().expect("mime");
        let (kind, name) = mime.split_once('/').expect("kind/name");
        let rtpmap = match codec["channels"].as_u64() {
            Some(n) => format!("{name}/{}/{n}", codec["clockRate"]),
            None => format!("{name}/{}", codec["clockRate"]),
        };
        sdp.push_str(&format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 127.0.0.1\r\na=mid:{}\r\na=sendonly\r\na=rtpmap:{pt} {rtpmap}\r\na=rtcp-fb:{pt} nack\r\na=msid:stream {}\r\na=ssrc:{ssrc} cname:{}\r\na=setup:passive\r\n{}",
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

/// The router's capabilities as a device without RTX has them (these peers' hand-written
/// SDP gives consumers one stream): retransmissions come plain.
fn without_rtx(mut caps: Value) -> Value {
    if let Some(codecs) = caps["codecs"].as_array_mut() {
        codecs.retain(|c| c["mimeType"] != "video/rtx");
    }
    caps
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send_opus(track: &TrackLocalStaticRTP, ssrc: u32, from: u16, count: u16) {
    send(track, &AUDIO, ssrc, (from..from + count).collect()).await;
}

/// Writes one packet of `media` for each number of `seqs`, 10 ms apart.
async fn send(track: &TrackLocalStaticRTP, media: &Media, ssrc: u32, seqs: Vec<u16>) {
    send_numbered(track, media, ssrc, seqs, None).await;
}

const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Like [`send`]; with `transport_wide` (the extension's id), each packet carries its
/// transport-wide number (the same as its sequence number here) as a browser's would.
async fn send_numbered(
    track: &TrackLocalStaticRTP,
    media: &Media,
    ssrc: u32,
    seqs: Vec<u16>,
    transport_wide: Option<u8>,
) {
    for seq in seqs {
        let extensions = match transport_wide {
            Some(id) => vec![rtc::rtp::header::Extension {
                id,
                payload: bytes::Bytes::copy_from_slice(&seq.to_be_bytes()),
            }],
            None => Vec::new(),
        };
        track
            .write_rtp(rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: media.payload_type,
                    sequence_number: seq,
                    timestamp: u32::from(seq) * media.tick,
                    ssrc,
                    extension: transport_wide.is_some(),
                    extension_profile: 0xBEDE,
                    extensions,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(vec![0xF8; media.payload]),
            })
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server every test channel belongs to (the SFU only reports it back).
const SERVER: Uuid = Uuid::from_u128(7);

fn sfu() -> (Arc<Sfu>, tokio::sync::mpsc::UnboundedReceiver<MediaLoss>) {
    sfu_capped(0, 0)
}

/// An SFU with a cap per send transport and one per server (kbit/s, 0: none).
fn sfu_capped(
    max_bitrate_kbps: u32,
    max_server_bitrate_kbps: u32,
) -> (Arc<Sfu>, tokio::sync::mpsc::UnboundedReceiver<MediaLoss>) {
    Sfu::start(SfuConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        announced_ip: "127.0.0.1".parse().expect("ip"),
        max_bitrate_kbps,
        max_server_bitrate_kbps,
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
        producer(&sfu, channel, alice, &alice_seen, None, &AUDIO).await;
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

/// A producer sending more than `max_bitrate_kbps` gets only that much through: 100 packets
/// of about 1 KB in a second (about 830 kbit/s) against a cap of 160 kbit/s (20 KB/s, with a
/// second's worth of burst) let about 40 through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_over_the_bitrate_cap_is_cut_to_it() {
    let (sfu, _events) = sfu_capped(160, 0);
    let channel = Uuid::now_v7();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let alice_seen = Arc::new(Mutex::new(Seen::default()));
    let bob_seen = Arc::new(Mutex::new(Seen::default()));
    let (alice_pc, track, _producer, ssrc) =
        producer(&sfu, channel, alice, &alice_seen, None, &VIDEO).await;
    until("alice connects", || {
        alice_seen.lock().expect("seen").connected
    })
    .await;
    let (bob_pc, _) = consumer(&sfu, channel, bob, &bob_seen).await;
    until("bob connects", || bob_seen.lock().expect("seen").connected).await;
    send(&track, &VIDEO, ssrc, (1..=100).collect()).await;
    let over = || {
        sfu.stats
            .over_cap
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let got = || bob_seen.lock().expect("seen").packets.len() as u64;
    until("every packet is delivered or dropped", || {
        got() + over() == 100
    })
    .await;
    assert!(
        (25..=60).contains(&got()),
        "about 40 of 100 get through: {}",
        got()
    );
    let _ = alice_pc.close().await;
    let _ = bob_pc.close().await;
}

/// The senders of one server share its cap: two producers, each under the transport cap,
/// together get about the server's 160 kbit/s through (about 40 of their 200 packets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_senders_share_its_bitrate_cap() {
    let (sfu, _events) = sfu_capped(10_000, 160);
    let channel = Uuid::now_v7();
    let (alice, carol, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let seen: Vec<Arc<Mutex<Seen>>> = (0..3)
        .map(|_| Arc::new(Mutex::new(Seen::default())))
        .collect();
    let (alice_pc, alice_track, _, alice_ssrc) =
        producer(&sfu, channel, alice, &seen[0], None, &VIDEO).await;
    let (carol_pc, carol_track, _, carol_ssrc) =
        producer(&sfu, channel, carol, &seen[1], None, &VIDEO).await;
    until("both senders connect", || {
        seen[0].lock().expect("seen").connected && seen[1].lock().expect("seen").connected
    })
    .await;
    let (bob_pc, _) = consumer(&sfu, channel, bob, &seen[2]).await;
    until("bob connects", || seen[2].lock().expect("seen").connected).await;
    tokio::join!(
        send(&alice_track, &VIDEO, alice_ssrc, (1..=100).collect()),
        send(&carol_track, &VIDEO, carol_ssrc, (1..=100).collect()),
    );
    let over = || {
        sfu.stats
            .over_cap
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let got = || seen[2].lock().expect("seen").packets.len() as u64;
    until("every packet is delivered or dropped", || {
        got() + over() == 200
    })
    .await;
    assert!(
        (25..=65).contains(&got()),
        "about 40 of 200 get through: {}",
        got()
    );
    let _ = alice_pc.close().await;
    let _ = carol_pc.close().await;
    let _ = bob_pc.close().await;
}

/// Packets that carry a transport-wide number are acknowledged to their sender with
/// transport-wide congestion-control feedback (about every 100 ms while they come);
/// packets without one get none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_packets_get_transport_wide_feedback() {
    let (sfu, _events) = sfu();
    let channel = Uuid::now_v7();
    let alice_seen = Arc::new(Mutex::new(Seen::default()));
    let (alice_pc, track, _, ssrc) =
        producer(&sfu, channel, Uuid::now_v7(), &alice_seen, None, &VIDEO).await;
    until("alice connects", || {
        alice_seen.lock().expect("seen").connected
    })
    .await;
    let feedback = || {
        sfu.stats
            .congestion_feedback
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    send(&track, &VIDEO, ssrc, (1..=30).collect()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(feedback(), 0, "no numbers, no feedback");
    let id = alice_seen.lock().expect("seen").transport_cc;
    assert!(id.is_some(), "the peer offers the transport-wide extension");
    send_numbered(&track, &VIDEO, ssrc, (31..=80).collect(), id).await;
    until("feedback while numbered packets come", || feedback() >= 3).await;
    let _ = alice_pc.close().await;
}

/// A client whose DTLS handshake starts from one of its checked addresses and goes on from
/// another (Chromium switching candidate pairs mid-handshake) still connects and gets media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_moves_to_another_checked_address_completes() {
    let (sfu, _events) = sfu();
    let channel = Uuid::now_v7();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let alice_seen = Arc::new(Mutex::new(Seen::default()));
    let bob_seen = Arc::new(Mutex::new(Seen::default()));
    let (alice_pc, track, _producer, ssrc) =
        producer(&sfu, channel, alice, &alice_seen, None, &AUDIO).await;
    until("alice connects", || {
        alice_seen.lock().expect("seen").connected
    })
    .await;
    bob_seen.lock().expect("seen").via = Some(two_path_relay(sfu.announced.port()).await);
    let (bob_pc, _) = consumer(&sfu, channel, bob, &bob_seen).await;
    until("bob connects", || bob_seen.lock().expect("seen").connected).await;
    send_opus(&track, ssrc, 1, 20).await;
    until("bob receives", || {
        bob_seen.lock().expect("seen").packets.len() >= 15
    })
    .await;
    let _ = alice_pc.close().await;
    let _ = bob_pc.close().await;
}

/// A binding request to `t` as its client would sign it (ICE username `server:client`, the
/// transport's password).
fn binding_request(t: &Value) -> Vec<u8> {
    use stun::message::Setter;
    let provider = rtc_crypto::default_provider().expect("crypto");
    let ice = &t["iceParameters"];
    let user = format!(
        "{}:flooder",
        ice["usernameFragment"].as_str().expect("ufrag")
    );
    let password = ice["password"].as_str().expect("password").to_owned();
    let mut m = stun::message::Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(stun::message::BINDING_REQUEST),
        Box::new(stun::message::TransactionId::new()),
        Box::new(stun::textattrs::TextAttribute::new(
            stun::attributes::ATTR_USERNAME,
            user,
        )),
        Box::new(
            stun::integrity::MessageIntegrity::new_short_term_integrity_with_provider(
                password,
                provider.crypto(),
            ),
        ),
        Box::new(stun::fingerprint::FINGERPRINT),
    ];
    m.build(&setters).expect("stun request");
    m.raw
}

/// A client that floods its transport with (valid) binding requests loses its place with a
/// log line; the SFU answers the first ones as it would any check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_request_flood_drops_the_transport() {
    let (sfu, mut events) = sfu();
    let (channel, user) = (Uuid::now_v7(), Uuid::now_v7());
    let transports = sfu.join(SERVER, channel, user).await.expect("join");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("socket");
    socket.connect(sfu.announced).await.expect("connect");
    socket
        .send(&binding_request(&transports.send))
        .await
        .expect("send");
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .expect("a check is answered")
        .expect("recv");
    assert!(
        n > 20 && buf[0] == 0x01 && buf[1] == 0x01,
        "a binding success"
    );
    for _ in 0..150 {
        socket
            .send(&binding_request(&transports.send))
            .await
            .expect("send");
    }
    let loss = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the flooder is dropped")
        .expect("event");
    assert_eq!((loss.user_id, loss.channel_id), (user, channel));
}

/// A peer whose packets all fail SRTP authentication (here: garbage sent from a consumer's
/// address) loses its place in the call with a log line; the others keep their media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_garbage_is_dropped_and_the_call_goes_on() {
    let (sfu, mut events) = sfu();
    let channel = Uuid::now_v7();
    let (alice, bob, carol) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let seen: Vec<Arc<Mutex<Seen>>> = (0..3)
        .map(|_| Arc::new(Mutex::new(Seen::default())))
        .collect();
    let (alice_pc, track, _producer, ssrc) =
        producer(&sfu, channel, alice, &seen[0], None, &AUDIO).await;
    until("alice connects", || seen[0].lock().expect("seen").connected).await;
    let via = relay(sfu.announced.port(), usize::MAX).await;
    seen[1].lock().expect("seen").via = Some(via.port);
    let (bob_pc, _) = consumer(&sfu, channel, bob, &seen[1]).await;
    let (carol_pc, _) = consumer(&sfu, channel, carol, &seen[2]).await;
    until("bob and carol connect", || {
        seen[1].lock().expect("seen").connected && seen[2].lock().expect("seen").connected
    })
    .await;
    send_opus(&track, ssrc, 1, 20).await;
    until("both receive", || {
        seen[1].lock().expect("seen").packets.len() >= 15
            && seen[2].lock().expect("seen").packets.len() >= 15
    })
    .await;

    // RTCP-shaped datagrams that fail authentication, from bob's address.
    for i in 0..250u32 {
        let mut garbage = vec![0x81, 201, 0, 7];
        garbage.extend_from_slice(&i.to_be_bytes());
        garbage.extend_from_slice(&[0xAB; 40]);
        via.back.send(&garbage).await.expect("garbage");
    }
    let loss = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a media loss in time")
        .expect("event");
    assert_eq!(
        (loss.channel_id, loss.user_id),
        (channel, bob),
        "bob is dropped"
    );

    let before = seen[2].lock().expect("seen").packets.len();
    send_opus(&track, ssrc, 21, 20).await;
    until("carol still receives", || {
        seen[2].lock().expect("seen").packets.len() >= before + 15
    })
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.recv())
            .await
            .is_err(),
        "nobody else is dropped"
    );
    let _ = alice_pc.close().await;
    let _ = bob_pc.close().await;
    let _ = carol_pc.close().await;
}

/// Video loss recovery: a consumer's NACK is answered with the packet it names, stamped as it
/// was first sent; a packet the SFU never got from the producer is asked for again; the audio
/// of the first test never is (no NACK without a gap, no history for audio).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacks_are_answered_and_gaps_asked_again() {
    use rtc::rtcp::transport_feedbacks::transport_layer_nack as tln;
    let (sfu, _events) = sfu();
    let channel = Uuid::now_v7();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let alice_seen = Arc::new(Mutex::new(Seen::default()));
    let (alice_pc, track, _producer, ssrc) =
        producer(&sfu, channel, alice, &alice_seen, None, &VIDEO).await;
    let via = relay(sfu.announced.port(), 6).await;
    let bob_seen = Arc::new(Mutex::new(Seen {
        via: Some(via.port),
        ..Seen::default()
    }));
    until("alice connects", || {
        alice_seen.lock().expect("seen").connected
    })
    .await;
    let (bob_pc, consumer_ssrcs) = consumer(&sfu, channel, bob, &bob_seen).await;
    until("bob connects", || bob_seen.lock().expect("seen").connected).await;

    send(&track, &VIDEO, ssrc, (2000..2020).collect()).await;
    until("bob receives", || {
        bob_seen.lock().expect("seen").packets.len() >= 18
    })
    .await;
    assert_eq!(sfu.nacks_sent(), 0, "nothing missed, nothing asked");
    let lost = via
        .dropped
        .lock()
        .expect("dropped")
        .expect("the relay dropped one packet");
    let (got, remote) = {
        let seen = bob_seen.lock().expect("seen");
        (seen.packets.clone(), seen.tracks[0].clone())
    };
    assert!(
        got.iter().all(|p| p.0 == 102 && p.3 == consumer_ssrcs[0]),
        "the router's VP8"
    );
    assert!(!got.iter().any(|p| p.1 == lost), "the relay dropped {lost}");
    let nack = tln::TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: consumer_ssrcs[0],
        nacks: tln::nack_pairs_from_sequence_numbers(&[lost]),
    };
    remote
        .write_rtcp(vec![Box::new(nack) as Box<dyn rtc::rtcp::Packet>])
        .await
        .expect("nack");
    until("the lost packet comes", || {
        bob_seen
            .lock()
            .expect("seen")
            .packets
            .iter()
            .any(|p| p.1 == lost)
    })
    .await;
    let (before, resent) = {
        let seen = bob_seen.lock().expect("seen");
        let at = got
            .iter()
            .position(|p| p.1 == lost.wrapping_sub(1))
            .expect("the one before");
        (
            got[at],
            *seen.packets.iter().find(|p| p.1 == lost).expect("resent"),
        )
    };
    assert_eq!(
        resent.2.wrapping_sub(before.2),
        VIDEO.tick,
        "stamped with the timestamp it was first sent with"
    );
    assert_eq!(sfu.retransmitted(), 1);

    // 2025 never reaches the SFU: it asks alice for it.
    let mut seqs: Vec<u16> = (2020..2030).collect();
    seqs.retain(|s| *s != 2025);
    send(&track, &VIDEO, ssrc, seqs).await;
    until("the SFU asks for the missing packet", || {
        sfu.nacks_sent() == 1
    })
    .await;
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
    let (pc, _track, _producer, _ssrc) =
        producer(&sfu, channel, user, &seen, Some(&bogus), &AUDIO).await;
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
