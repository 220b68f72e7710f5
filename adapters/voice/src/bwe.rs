//! Bandwidth feedback toward a browser that sends: transport-wide congestion-control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), so the browser's own estimator sees
//! the path's delay and loss packet by packet, and REMB carrying the SFU's caps, so it keeps
//! under them rather than having the excess dropped.
//!
//! The arrival bookkeeping and the feedback packets' encoding are the TWCC receiver of
//! `rtc-interceptor`; this module feeds it the transport's packets (only the fields it reads)
//! and collects what it writes.

use crate::rtp;
use bytes::Bytes;
use rtc_interceptor::{
    AttributedPacket, Interceptor, Packet, RTPHeaderExtension, StreamInfo, TaggedPacket,
    TwccReceiverBuilder, TwccReceiverInterceptor,
};
use sansio::Protocol;
use std::time::{Duration, Instant};

/// The extension's URI, as the router offers it.
pub(crate) const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// How often feedback goes out while packets arrive (what browsers and mediasoup use).
const INTERVAL: Duration = Duration::from_millis(100);
/// How far from the highest number seen a packet's transport-wide number may be. A browser's
/// numbers are consecutive; one far off would make the bookkeeping walk (and report) up to
/// 32,767 numbers for that one packet, so it is left out.
const WINDOW: i32 = 1000;
/// Packets in a row out of that window after which the numbering is taken to have restarted.
const RESTART_AFTER: u32 = 50;

/// The transport-wide feedback of one send transport.
pub(crate) struct TransportFeedback {
    twcc: TwccReceiverInterceptor,
    /// The extension id the browser numbers packets with (one per BUNDLEd transport).
    ext_id: Option<u8>,
    /// When feedback is next due (a copy of the interceptor's timeout).
    next: Option<Instant>,
    /// The streams bound, to bind again when the numbering restarts.
    bound: Vec<(u32, u8)>,
    /// The highest transport-wide number seen, and the packets in a row far from it.
    highest: Option<u16>,
    far_in_a_row: u32,
}

impl TransportFeedback {
    pub fn new() -> Self {
        Self {
            twcc: TwccReceiverBuilder::new().with_interval(INTERVAL).build(),
            ext_id: None,
            next: None,
            bound: Vec::new(),
            highest: None,
            far_in_a_row: 0,
        }
    }

    /// A producer whose packets carry the transport-wide sequence number as extension `id`.
    pub fn bind(&mut self, ssrc: u32, id: u8) {
        self.ext_id = Some(id);
        self.bound.push((ssrc, id));
        self.twcc.bind_remote_stream(&Self::stream(ssrc, id));
    }

    /// The producer of `ssrc` is gone.
    pub fn unbind(&mut self, ssrc: u32, id: u8) {
        self.bound.retain(|b| *b != (ssrc, id));
        self.twcc.unbind_remote_stream(&Self::stream(ssrc, id));
    }

    /// Whether a packet numbered `n` is near enough the numbers seen to be recorded; after
    /// [`RESTART_AFTER`] far ones in a row the bookkeeping starts over from `n`.
    fn near(&mut self, n: u16) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(n);
            return true;
        };
        let distance = i32::from(n.wrapping_sub(highest) as i16);
        if distance.abs() <= WINDOW {
            self.far_in_a_row = 0;
            if distance > 0 {
                self.highest = Some(n);
            }
            return true;
        }
        self.far_in_a_row += 1;
        if self.far_in_a_row < RESTART_AFTER {
            return false;
        }
        self.twcc = TwccReceiverBuilder::new().with_interval(INTERVAL).build();
        for (ssrc, id) in &self.bound {
            self.twcc.bind_remote_stream(&Self::stream(*ssrc, *id));
        }
        self.highest = Some(n);
        self.far_in_a_row = 0;
        true
    }

    fn stream(ssrc: u32, id: u8) -> StreamInfo {
        StreamInfo {
            ssrc,
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: TRANSPORT_CC_URI.to_owned(),
                id: u16::from(id),
            }],
            ..StreamInfo::default()
        }
    }

    /// A plain RTP packet arrived at `now` (padding and probes included: the browser's
    /// estimator counts every numbered packet).
    pub fn on_packet(&mut self, plain: &[u8], now: Instant) {
        let Some(id) = self.ext_id else { return };
        let Some(header) = rtp::header(plain) else {
            return;
        };
        let Some(number) = rtp::extension(plain, id) else {
            return;
        };
        let Ok(n) = <[u8; 2]>::try_from(number) else {
            return;
        };
        if !self.near(u16::from_be_bytes(n)) {
            return;
        }
        // Only what the receiver reads: the SSRC and the one extension.
        let packet = rtc_rtp::Packet {
            header: rtc_rtp::Header {
                version: 2,
                extension: true,
                extension_profile: 0xBEDE,
                sequence_number: header.sequence,
                ssrc: header.ssrc,
                extensions: vec![rtc_rtp::header::Extension {
                    id,
                    payload: Bytes::copy_from_slice(number),
                }],
                ..rtc_rtp::Header::default()
            },
            payload: Bytes::new(),
        };
        let arrived = TaggedPacket {
            now,
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        };
        if self.twcc.handle_read(arrived).is_ok() {
            while self.twcc.poll_read().is_some() {}
        }
        self.next = self.twcc.poll_timeout();
    }

    /// When feedback is next due.
    pub fn next_due(&self) -> Option<Instant> {
        self.next
    }

    /// The feedback packets due by `now` (none before the first numbered packet).
    pub fn due(&mut self, now: Instant) -> Vec<Box<dyn rtcp::packet::Packet>> {
        if self.next.is_none_or(|at| at > now) {
            return Vec::new();
        }
        let _ = self.twcc.handle_timeout(now);
        self.next = self.twcc.poll_timeout();
        let mut out = Vec::new();
        while let Some(written) = self.twcc.poll_write() {
            if let Packet::Rtcp(packets) = written.message.packet {
                out.extend(packets);
            }
        }
        out
    }
}

/// The REMB telling a browser to send at most `kbps` on the streams `ssrcs`.
pub(crate) fn remb(sender_ssrc: u32, kbps: u32, ssrcs: Vec<u32>) -> Box<dyn rtcp::packet::Packet> {
    Box::new(
        rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate {
            sender_ssrc,
            bitrate: kbps as f32 * 1000.0,
            ssrcs,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

    /// An RTP packet with the transport-wide number `n` as extension 5.
    fn numbered(n: u16) -> Vec<u8> {
        let mut p = vec![0x90, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x51]);
        p.extend_from_slice(&n.to_be_bytes());
        p.push(0);
        p.extend_from_slice(b"opus");
        p
    }

    #[test]
    fn arrivals_become_transport_wide_feedback_every_interval() {
        let mut f = TransportFeedback::new();
        let start = Instant::now();
        f.on_packet(&numbered(1), start);
        assert!(f.due(start).is_empty(), "nothing before the first interval");
        f.bind(7, 5);
        // 1, 2, 4 arrive (3 is lost), 5 ms apart.
        for (i, n) in [1u16, 2, 4].into_iter().enumerate() {
            f.on_packet(&numbered(n), start + Duration::from_millis(5 * i as u64));
        }
        let due = f.next_due().expect("a timeout once packets came");
        let packets = f.due(due);
        let cc = packets
            .iter()
            .find_map(|p| p.as_any().downcast_ref::<TransportLayerCc>())
            .expect("transport-cc feedback");
        assert_eq!(cc.base_sequence_number, 1);
        assert_eq!(cc.packet_status_count, 4, "1 to 4, the lost one included");
        assert_eq!(cc.recv_deltas.len(), 3, "three arrivals");
        assert!(f.due(due).is_empty(), "sent once");
    }

    #[test]
    fn numbers_far_from_the_stream_are_left_out_until_it_restarts() {
        let mut f = TransportFeedback::new();
        f.bind(7, 5);
        let start = Instant::now();
        f.on_packet(&numbered(100), start);
        assert!(f.near(101));
        assert!(!f.near(100 + 0x7FFF), "a jump of half the number space");
        assert!(f.near(102), "the stream goes on");
        for i in 1..RESTART_AFTER {
            assert!(!f.near(40_000 + i as u16));
        }
        assert!(f.near(40_000 + RESTART_AFTER as u16), "restarted there");
        assert!(f.near(40_051));
    }

    #[test]
    fn remb_carries_the_cap_in_bits() {
        let p = remb(1, 300, vec![7, 8]);
        let raw = rtcp::packet::marshal(&[p]).expect("marshal");
        let back = rtcp::packet::unmarshal(&mut raw.as_ref()).expect("unmarshal");
        let remb = back[0]
            .as_any()
            .downcast_ref::<rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>()
            .expect("remb");
        assert!((remb.bitrate - 300_000.0).abs() < 300.0);
        assert_eq!(remb.ssrcs, vec![7, 8]);
    }
}
