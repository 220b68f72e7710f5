//! RTP capabilities in mediasoup's shapes: the router's (what every channel offers), a
//! producer's mapping from the browser's payload types and extension ids to the router's, and
//! the `rtpParameters` of a consumer for one device.
//!
//! The router offers Opus 48 kHz stereo, VP9 profile 0, VP8 and H264 packetization-mode 1
//! (reference §6), with NACK and PLI/FIR feedback for video, transport-wide congestion-control
//! feedback for both kinds and REMB for video (toward producers: see `bwe`), and two header
//! extensions that are worth forwarding: the audio level and the video orientation. The MID
//! and transport-wide sequence extensions are taken from browsers but never sent to them:
//! consumers are told apart by SSRC, and the SFU reads no congestion feedback from consumers
//! (one stream per producer: there is no layer to choose).

use serde_json::{json, Value};

/// A router codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouterCodec {
    pub kind: Kind,
    pub mime: &'static str,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// `audio` or `video`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "audio" => Some(Kind::Audio),
            "video" => Some(Kind::Video),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }
}

pub(crate) const OPUS: RouterCodec = RouterCodec {
    kind: Kind::Audio,
    mime: "audio/opus",
    payload_type: 100,
    clock_rate: 48_000,
    channels: Some(2),
};
pub(crate) const VP9: RouterCodec = RouterCodec {
    kind: Kind::Video,
    mime: "video/VP9",
    payload_type: 101,
    clock_rate: 90_000,
    channels: None,
};
pub(crate) const VP8: RouterCodec = RouterCodec {
    kind: Kind::Video,
    mime: "video/VP8",
    payload_type: 102,
    clock_rate: 90_000,
    channels: None,
};
pub(crate) const H264: RouterCodec = RouterCodec {
    kind: Kind::Video,
    mime: "video/H264",
    payload_type: 103,
    clock_rate: 90_000,
    channels: None,
};
pub(crate) const CODECS: [RouterCodec; 4] = [OPUS, VP9, VP8, H264];

/// The router's RTX payload type for a video codec (RFC 4588: retransmissions on their own
/// SSRC, the original sequence number first in the payload).
pub(crate) fn rtx_payload_type(codec: RouterCodec) -> Option<u8> {
    (codec.kind == Kind::Video).then_some(codec.payload_type + 3)
}

/// RTX of a producer or consumer: its payload type and SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rtx {
    pub payload_type: u8,
    pub ssrc: u32,
}

/// A header extension the router knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ext {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`: read from browsers, never forwarded.
    Mid,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`.
    AudioLevel,
    /// `urn:3gpp:video-orientation`.
    VideoOrientation,
    /// The transport-wide sequence number: read from browsers for the feedback, never
    /// forwarded.
    TransportCc,
}

impl Ext {
    pub const ALL: [Ext; 4] = [
        Ext::Mid,
        Ext::AudioLevel,
        Ext::VideoOrientation,
        Ext::TransportCc,
    ];

    pub fn uri(self) -> &'static str {
        match self {
            Ext::Mid => "urn:ietf:params:rtp-hdrext:sdes:mid",
            Ext::AudioLevel => "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            Ext::VideoOrientation => "urn:3gpp:video-orientation",
            Ext::TransportCc => crate::bwe::TRANSPORT_CC_URI,
        }
    }

    /// The router's id of the extension (what consumers carry).
    pub fn router_id(self) -> u8 {
        match self {
            Ext::Mid => 1,
            Ext::AudioLevel => 10,
            Ext::VideoOrientation => 11,
            Ext::TransportCc => 5,
        }
    }

    /// Whether consumers carry it.
    pub fn forwarded(self) -> bool {
        !matches!(self, Ext::Mid | Ext::TransportCc)
    }

    fn kinds(self) -> &'static [Kind] {
        match self {
            Ext::Mid | Ext::TransportCc => &[Kind::Audio, Kind::Video],
            Ext::AudioLevel => &[Kind::Audio],
            Ext::VideoOrientation => &[Kind::Video],
        }
    }

    fn from_uri(uri: &str) -> Option<Ext> {
        Ext::ALL.into_iter().find(|e| e.uri() == uri)
    }
}

/// The router's RTCP feedback for a codec of `kind`.
fn feedback(kind: Kind) -> Value {
    match kind {
        Kind::Audio => json!([{ "type": "transport-cc", "parameter": "" }]),
        Kind::Video => json!([
            { "type": "nack", "parameter": "" },
            { "type": "nack", "parameter": "pli" },
            { "type": "ccm", "parameter": "fir" },
            { "type": "goog-remb", "parameter": "" },
            { "type": "transport-cc", "parameter": "" }
        ]),
    }
}

/// Feedback the SFU reads from producers only: congestion feedback about the SFU's own
/// sending would have nothing to act on (one stream per producer, no layers to switch).
fn producers_only(feedback: &Value) -> bool {
    matches!(
        feedback["type"].as_str(),
        Some("transport-cc" | "goog-remb")
    )
}

fn parameters(codec: RouterCodec) -> Value {
    match codec.mime {
        "video/VP9" => json!({ "profile-id": 0 }),
        "video/H264" => json!({
            "level-asymmetry-allowed": 1,
            "packetization-mode": 1,
            "profile-level-id": "4d0032"
        }),
        _ => json!({}),
    }
}

/// The router's `RtpCapabilities`, as `voice.router_capabilities` carries them.
pub(crate) fn router_capabilities() -> Value {
    let mut codecs: Vec<Value> = Vec::new();
    for c in CODECS {
        let mut v = json!({
            "kind": c.kind.as_str(),
            "mimeType": c.mime,
            "preferredPayloadType": c.payload_type,
            "clockRate": c.clock_rate,
            "parameters": parameters(c),
            "rtcpFeedback": feedback(c.kind),
        });
        if let Some(ch) = c.channels {
            v["channels"] = json!(ch);
        }
        codecs.push(v);
        if let Some(rtx) = rtx_payload_type(c) {
            codecs.push(json!({
                "kind": "video",
                "mimeType": "video/rtx",
                "preferredPayloadType": rtx,
                "clockRate": c.clock_rate,
                "parameters": { "apt": c.payload_type },
                "rtcpFeedback": [],
            }));
        }
    }
    let mut extensions = Vec::new();
    for ext in Ext::ALL {
        for kind in ext.kinds() {
            extensions.push(json!({
                "kind": kind.as_str(),
                "uri": ext.uri(),
                "preferredId": ext.router_id(),
                "preferredEncrypt": false,
                // The server's view: "recvonly" is sent by browsers only.
                "direction": if ext.forwarded() { "sendrecv" } else { "recvonly" },
            }));
        }
    }
    json!({ "codecs": codecs, "headerExtensions": extensions })
}

fn num(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Whether a codec of `rtpParameters` (or of device capabilities) is `router`'s.
fn matches(codec: &Value, router: RouterCodec) -> bool {
    let mime_ok = codec["mimeType"]
        .as_str()
        .is_some_and(|m| m.eq_ignore_ascii_case(router.mime));
    let rate_ok = codec["clockRate"].as_u64() == Some(u64::from(router.clock_rate));
    let channels_ok = match router.channels {
        Some(ch) => codec["channels"].as_u64().unwrap_or(1) == u64::from(ch),
        None => true,
    };
    let params = &codec["parameters"];
    let params_ok = match router.mime {
        "video/VP9" => params.get("profile-id").map_or(0, |p| num(p).unwrap_or(-1)) == 0,
        "video/H264" => params.get("packetization-mode").and_then(num) == Some(1),
        _ => true,
    };
    mime_ok && rate_ok && channels_ok && params_ok
}

/// How a producer's packets become the router's: the payload type in use and its router
/// codec, the SSRC, and which of its extension ids mean what.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProducerMapping {
    pub kind: Kind,
    pub ssrc: u32,
    pub payload_type: u8,
    pub codec: RouterCodec,
    /// The producer codec's parameters (consumers carry them).
    pub parameters: Value,
    /// Browser extension id → extension.
    pub extensions: Vec<(u8, Ext)>,
    pub cname: String,
    /// The browser's RTX stream, when it negotiated one (its retransmissions and probes).
    pub rtx: Option<Rtx>,
}

impl ProducerMapping {
    /// The browser's id of the transport-wide sequence extension, if it sends it.
    pub fn transport_cc(&self) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(_, e)| *e == Ext::TransportCc)
            .map(|(id, _)| *id)
    }
}

/// Maps mediasoup-client `rtpParameters` of a producer of `kind` to the router; `Err` names
/// what cannot be used (unknown codec, no SSRC: simulcast by RID is not offered).
pub(crate) fn map_producer(kind: Kind, rtp: &Value) -> Result<ProducerMapping, String> {
    let media = rtp["codecs"]
        .as_array()
        .and_then(|codecs| {
            codecs.iter().find(|c| {
                c["mimeType"]
                    .as_str()
                    .is_some_and(|m| !m.to_ascii_lowercase().ends_with("/rtx"))
            })
        })
        .ok_or("rtpParameters has no media codec")?;
    let codec = CODECS
        .into_iter()
        .find(|r| r.kind == kind && matches(media, *r))
        .ok_or_else(|| format!("codec {} is not offered", media["mimeType"]))?;
    let payload_type = media["payloadType"]
        .as_u64()
        .and_then(|p| u8::try_from(p).ok())
        .filter(|p| *p < 128)
        .ok_or("codec without a valid payloadType")?;
    let ssrc = rtp["encodings"]
        .as_array()
        .and_then(|e| e.first())
        .and_then(|e| e["ssrc"].as_u64())
        .and_then(|s| u32::try_from(s).ok())
        .ok_or("encodings[0].ssrc is required (one encoding per producer)")?;
    let extensions = rtp["headerExtensions"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    let ext = Ext::from_uri(e["uri"].as_str()?)?;
                    let id = u8::try_from(e["id"].as_u64()?).ok()?;
                    (ext.kinds().contains(&kind) && (1..=255).contains(&id)).then_some((id, ext))
                })
                .collect()
        })
        .unwrap_or_default();
    let rtx_pt = rtp["codecs"].as_array().and_then(|codecs| {
        codecs.iter().find_map(|c| {
            let is_rtx = c["mimeType"]
                .as_str()
                .is_some_and(|m| m.to_ascii_lowercase().ends_with("/rtx"));
            let apt = num(&c["parameters"]["apt"]);
            (is_rtx && apt == Some(i64::from(payload_type)))
                .then(|| c["payloadType"].as_u64().and_then(|p| u8::try_from(p).ok()))
                .flatten()
                .filter(|p| *p < 128 && *p != payload_type)
        })
    });
    let rtx_ssrc = rtp["encodings"][0]["rtx"]["ssrc"]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok())
        .filter(|s| *s != ssrc);
    let rtx = match (rtx_pt, rtx_ssrc) {
        (Some(payload_type), Some(ssrc)) if kind == Kind::Video => Some(Rtx { payload_type, ssrc }),
        _ => None,
    };
    Ok(ProducerMapping {
        rtx,
        kind,
        ssrc,
        payload_type,
        codec,
        parameters: media["parameters"].clone(),
        extensions,
        cname: rtp["rtcp"]["cname"].as_str().unwrap_or("ecto").to_owned(),
    })
}

/// The `rtpParameters` of a consumer of `producer` for a device with `caps`, with its SSRC and
/// mid; `None` when the device cannot receive the producer's codec.
pub(crate) fn consumer_parameters(
    producer: &ProducerMapping,
    caps: &Value,
    ssrc: u32,
    mid: &str,
) -> Option<(Value, Option<Rtx>)> {
    let device_codec = caps["codecs"].as_array()?.iter().find(|c| {
        matches(c, producer.codec)
            && c["preferredPayloadType"].as_u64() == Some(u64::from(producer.codec.payload_type))
    })?;
    // RTX when the device knows the router's RTX of this codec; plain retransmission else.
    let rtx = rtx_payload_type(producer.codec)
        .filter(|rtx| {
            caps["codecs"].as_array().is_some_and(|codecs| {
                codecs.iter().any(|c| {
                    c["mimeType"]
                        .as_str()
                        .is_some_and(|m| m.eq_ignore_ascii_case("video/rtx"))
                        && c["preferredPayloadType"].as_u64() == Some(u64::from(*rtx))
                        && num(&c["parameters"]["apt"])
                            == Some(i64::from(producer.codec.payload_type))
                })
            })
        })
        .map(|payload_type| Rtx {
            payload_type,
            // Consumer SSRCs are odd: the next even number is nobody's (never 0).
            ssrc: ssrc.checked_add(1).unwrap_or(2),
        });
    // Feedback both the router and the device know.
    let router_fb = feedback(producer.codec.kind);
    let feedback: Vec<Value> = router_fb
        .as_array()
        .map(|fb| {
            fb.iter()
                .filter(|f| !producers_only(f))
                .filter(|f| {
                    device_codec["rtcpFeedback"].as_array().is_some_and(|d| {
                        d.iter().any(|x| {
                            x["type"] == f["type"]
                                && x["parameter"].as_str().unwrap_or("")
                                    == f["parameter"].as_str().unwrap_or("")
                        })
                    })
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let device_exts = caps["headerExtensions"].as_array();
    let extensions: Vec<Value> = Ext::ALL
        .into_iter()
        .filter(|e| e.forwarded() && e.kinds().contains(&producer.kind))
        .filter(|e| {
            device_exts.is_some_and(|list| {
                list.iter().any(|d| {
                    d["uri"] == e.uri()
                        && d["preferredId"].as_u64() == Some(u64::from(e.router_id()))
                        && d["kind"] == producer.kind.as_str()
                })
            })
        })
        .map(|e| json!({ "uri": e.uri(), "id": e.router_id(), "encrypt": false, "parameters": {} }))
        .collect();
    let mut codec = json!({
        "mimeType": producer.codec.mime,
        "payloadType": producer.codec.payload_type,
        "clockRate": producer.codec.clock_rate,
        "parameters": producer.parameters,
        "rtcpFeedback": feedback,
    });
    if let Some(ch) = producer.codec.channels {
        codec["channels"] = json!(ch);
    }
    let mut codecs = vec![codec];
    let mut encoding = json!({ "ssrc": ssrc });
    if let Some(rtx) = rtx {
        codecs.push(json!({
            "mimeType": "video/rtx",
            "payloadType": rtx.payload_type,
            "clockRate": producer.codec.clock_rate,
            "parameters": { "apt": producer.codec.payload_type },
            "rtcpFeedback": [],
        }));
        encoding["rtx"] = json!({ "ssrc": rtx.ssrc });
    }
    let parameters = json!({
        "mid": mid,
        "codecs": codecs,
        "headerExtensions": extensions,
        "encodings": [encoding],
        "rtcp": { "cname": producer.cname, "reducedSize": true },
    });
    Some((parameters, rtx))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What mediasoup-client 3.18 sent for Chromium 156's microphone (captured).
    fn chrome_opus() -> Value {
        json!({"mid":"0","codecs":[{"mimeType":"audio/opus","payloadType":111,"clockRate":48000,"channels":2,
            "parameters":{"minptime":10,"useinbandfec":1},"rtcpFeedback":[{"type":"transport-cc","parameter":""},{"type":"nack","parameter":""}]}],
            "headerExtensions":[{"uri":"urn:ietf:params:rtp-hdrext:sdes:mid","id":4,"encrypt":false,"parameters":{}},
              {"uri":"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time","id":2,"encrypt":false,"parameters":{}},
              {"uri":"urn:ietf:params:rtp-hdrext:ssrc-audio-level","id":1,"encrypt":false,"parameters":{}},
              {"uri":"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01","id":3,"encrypt":false,"parameters":{}}],
            "encodings":[{"ssrc":3066224408u64,"dtx":false}],"rtcp":{"cname":"eNs/tLTx8lUaD5yE","reducedSize":true}})
    }

    /// A device's capabilities as mediasoup-client derives them from the router's.
    fn device_caps() -> Value {
        let mut caps = router_capabilities();
        for c in caps["codecs"].as_array_mut().expect("codecs") {
            c["rtcpFeedback"] = c["rtcpFeedback"].clone();
        }
        caps
    }

    #[test]
    fn producers_map_the_browsers_numbers_to_the_routers() {
        let m = map_producer(Kind::Audio, &chrome_opus()).expect("mapping");
        assert_eq!(m.payload_type, 111);
        assert_eq!(m.codec, OPUS);
        assert_eq!(m.ssrc, 3_066_224_408);
        assert_eq!(
            m.extensions,
            vec![(4, Ext::Mid), (1, Ext::AudioLevel), (3, Ext::TransportCc)]
        );
        assert_eq!(m.transport_cc(), Some(3));
        assert_eq!(m.cname, "eNs/tLTx8lUaD5yE");
        let mut vp9 = json!({"codecs":[{"mimeType":"video/VP9","payloadType":98,"clockRate":90000,"parameters":{"profile-id":0}},
            {"mimeType":"video/rtx","payloadType":99,"clockRate":90000,"parameters":{"apt":98}}],
            "encodings":[{"ssrc":1}],"headerExtensions":[{"uri":"urn:3gpp:video-orientation","id":13}]});
        let m = map_producer(Kind::Video, &vp9).expect("vp9");
        assert_eq!((m.payload_type, m.codec), (98, VP9));
        assert_eq!(m.extensions, vec![(13, Ext::VideoOrientation)]);
        vp9["codecs"][0]["parameters"]["profile-id"] = json!(2);
        assert!(
            map_producer(Kind::Video, &vp9).is_err(),
            "VP9 profile 2 is not offered"
        );
        let mut no_ssrc = chrome_opus();
        no_ssrc["encodings"] = json!([{ "rid": "r0" }]);
        assert!(map_producer(Kind::Audio, &no_ssrc).is_err());
        assert!(
            map_producer(Kind::Video, &chrome_opus()).is_err(),
            "kind must match"
        );
    }

    #[test]
    fn consumers_use_router_numbers_and_what_the_device_knows() {
        let m = map_producer(Kind::Audio, &chrome_opus()).expect("mapping");
        let (p, rtx) = consumer_parameters(&m, &device_caps(), 42, "3").expect("receivable");
        assert_eq!(rtx, None, "no RTX for audio");
        assert_eq!(p["mid"], "3");
        assert_eq!(p["codecs"][0]["payloadType"], 100);
        assert_eq!(p["codecs"][0]["channels"], 2);
        assert_eq!(p["codecs"][0]["parameters"]["useinbandfec"], 1);
        assert_eq!(p["encodings"], json!([{ "ssrc": 42 }]));
        assert_eq!(
            p["headerExtensions"],
            json!([{ "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 10, "encrypt": false, "parameters": {} }])
        );
        assert_eq!(p["rtcp"]["cname"], "eNs/tLTx8lUaD5yE");
        assert_eq!(
            p["codecs"][0]["rtcpFeedback"],
            json!([]),
            "no congestion feedback asked of consumers"
        );
        let mut no_opus = device_caps();
        no_opus["codecs"] = json!([]);
        assert!(consumer_parameters(&m, &no_opus, 42, "0").is_none());
    }

    #[test]
    fn video_retransmits_on_rtx_where_negotiated() {
        let vp8 = json!({"codecs":[{"mimeType":"video/VP8","payloadType":96,"clockRate":90000,"parameters":{}},
            {"mimeType":"video/rtx","payloadType":97,"clockRate":90000,"parameters":{"apt":96}}],
            "encodings":[{"ssrc":10,"rtx":{"ssrc":11}}],"headerExtensions":[]});
        let m = map_producer(Kind::Video, &vp8).expect("vp8");
        assert_eq!(
            m.rtx,
            Some(Rtx {
                payload_type: 97,
                ssrc: 11
            })
        );
        let (p, rtx) = consumer_parameters(&m, &device_caps(), 42, "1").expect("receivable");
        assert_eq!(
            rtx,
            Some(Rtx {
                payload_type: 105,
                ssrc: 43
            })
        );
        assert_eq!(p["codecs"][1]["mimeType"], "video/rtx");
        assert_eq!(p["codecs"][1]["parameters"]["apt"], 102);
        assert_eq!(p["encodings"][0]["rtx"]["ssrc"], 43);
        // A device without RTX gets plain retransmission.
        let mut plain = device_caps();
        plain["codecs"]
            .as_array_mut()
            .expect("codecs")
            .retain(|c| c["mimeType"] != "video/rtx");
        let (p, rtx) = consumer_parameters(&m, &plain, 42, "1").expect("receivable");
        assert_eq!((rtx, p["codecs"].as_array().map(Vec::len)), (None, Some(1)));
        // RTX whose apt names another codec is not this producer's.
        let mut other = vp8.clone();
        other["codecs"][1]["parameters"]["apt"] = json!(100);
        assert_eq!(map_producer(Kind::Video, &other).expect("vp8").rtx, None);
    }

    #[test]
    fn router_capabilities_have_mediasoup_shape() {
        let caps = router_capabilities();
        let codecs = caps["codecs"].as_array().expect("codecs");
        assert_eq!(
            codecs.len(),
            7,
            "four codecs and the three video codecs' RTX"
        );
        for c in codecs {
            assert!(c["preferredPayloadType"].is_u64() && c["clockRate"].is_u64());
            assert!(c["kind"] == "audio" || c["kind"] == "video");
        }
        assert_eq!(
            codecs[1]["parameters"]["profile-id"], 0,
            "a number, not a string"
        );
        assert_eq!(codecs[2]["mimeType"], "video/rtx");
        assert_eq!(codecs[2]["parameters"]["apt"], 101);
        for e in caps["headerExtensions"].as_array().expect("extensions") {
            assert!(e["preferredId"].is_u64() && e["uri"].is_string());
        }
        let twcc: Vec<&Value> = caps["headerExtensions"]
            .as_array()
            .expect("extensions")
            .iter()
            .filter(|e| e["uri"] == crate::bwe::TRANSPORT_CC_URI)
            .collect();
        assert_eq!(twcc.len(), 2, "audio and video");
        assert!(twcc.iter().all(|e| e["direction"] == "recvonly"));
        let video_fb = &codecs[1]["rtcpFeedback"];
        for wanted in ["transport-cc", "goog-remb", "nack"] {
            assert!(
                video_fb
                    .as_array()
                    .expect("feedback")
                    .iter()
                    .any(|f| f["type"] == wanted),
                "{wanted}"
            );
        }
    }
}
