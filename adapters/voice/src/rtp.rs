//! RTP packets as bytes: reading the fixed header, turning a producer's packet into the
//! router's form (router payload type, router extension ids, extensions nobody receives
//! dropped) once, and stamping each consumer's SSRC, sequence number and timestamp into a
//! copy. Everything works on the plain bytes between SRTP decryption and encryption; no
//! packet is parsed into objects and marshalled back (that would change padding).

use crate::caps::Ext;

/// Whether `buf` is RTCP rather than RTP (RFC 5761: the second byte is 192–223 for RTCP).
pub(crate) fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// The fixed-header fields of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// Reads the fixed header; `None` for anything that is not RTP version 2 of at least 12 bytes.
pub(crate) fn header(buf: &[u8]) -> Option<Header> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return None;
    }
    Some(Header {
        payload_type: buf[1] & 0x7f,
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    })
}

/// Header extensions as `(id, data)`, in packet order.
type Extensions<'a> = Vec<(u8, &'a [u8])>;

/// The header extensions of a packet, and where the payload starts.
fn extensions(buf: &[u8]) -> Option<(Extensions<'_>, usize)> {
    let csrc = usize::from(buf[0] & 0x0f) * 4;
    let mut at = 12 + csrc;
    if buf.len() < at {
        return None;
    }
    let mut found = Vec::new();
    if buf[0] & 0x10 != 0 {
        if buf.len() < at + 4 {
            return None;
        }
        let profile = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let words = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        let start = at + 4;
        let end = start + words * 4;
        if buf.len() < end {
            return None;
        }
        let block = &buf[start..end];
        let mut i = 0;
        match profile {
            // One-byte header (RFC 8285 §4.2).
            0xBEDE => {
                while i < block.len() {
                    let b = block[i];
                    if b == 0 {
                        i += 1;
                        continue;
                    }
                    let id = b >> 4;
                    let len = usize::from(b & 0x0f) + 1;
                    if id == 15 || i + 1 + len > block.len() {
                        break;
                    }
                    found.push((id, &block[i + 1..i + 1 + len]));
                    i += 1 + len;
                }
            }
            // Two-byte header (RFC 8285 §4.3).
            p if p >> 4 == 0x100 => {
                while i + 1 < block.len() {
                    let id = block[i];
                    if id == 0 {
                        i += 1;
                        continue;
                    }
                    let len = usize::from(block[i + 1]);
                    if i + 2 + len > block.len() {
                        break;
                    }
                    found.push((id, &block[i + 2..i + 2 + len]));
                    i += 2 + len;
                }
            }
            _ => {}
        }
        at = end;
    }
    Some((found, at))
}

/// The data of header extension `id` of a packet (which `header` accepted), if it has it.
pub(crate) fn extension(buf: &[u8], id: u8) -> Option<&[u8]> {
    extensions(buf)?
        .0
        .into_iter()
        .find(|(found, _)| *found == id)
        .map(|(_, data)| data)
}

/// A producer's packet rewritten for the router: `payload_type` set, the extensions kept
/// (those `map` names and that are forwarded) renumbered to router ids in a one-byte block,
/// everything else (CSRCs, payload, padding) copied. `None` for a malformed packet.
pub(crate) fn to_router(buf: &[u8], payload_type: u8, map: &[(u8, Ext)]) -> Option<Vec<u8>> {
    let (found, payload_at) = extensions(buf)?;
    let kept: Vec<(u8, &[u8])> = found
        .iter()
        .filter_map(|(id, data)| {
            let ext = map.iter().find(|(m, _)| m == id)?.1;
            (ext.forwarded() && !data.is_empty() && data.len() <= 16)
                .then_some((ext.router_id(), *data))
        })
        .collect();
    let csrc_end = 12 + usize::from(buf[0] & 0x0f) * 4;
    let mut out = Vec::with_capacity(buf.len() + 8);
    out.extend_from_slice(&buf[..csrc_end]);
    out[1] = (buf[1] & 0x80) | payload_type;
    if kept.is_empty() {
        out[0] &= !0x10;
    } else {
        out[0] |= 0x10;
        let body: usize = kept.iter().map(|(_, d)| 1 + d.len()).sum();
        let words = body.div_ceil(4);
        out.extend_from_slice(&[0xBE, 0xDE]);
        out.extend_from_slice(&u16::try_from(words).ok()?.to_be_bytes());
        for (id, data) in &kept {
            out.push((id << 4) | u8::try_from(data.len() - 1).ok()?);
            out.extend_from_slice(data);
        }
        out.resize(out.len() + words * 4 - body, 0);
    }
    out.extend_from_slice(&buf[payload_at..]);
    Some(out)
}

/// Where a packet's payload starts and ends (padding left out); `None` when malformed.
fn payload_bounds(buf: &[u8]) -> Option<(usize, usize)> {
    let (_, at) = extensions(buf)?;
    let padding = if buf[0] & 0x20 != 0 {
        // The count includes itself (RFC 3550 §5.1): 0 is malformed.
        usize::from(*buf.last()?)
    } else {
        0
    };
    if buf[0] & 0x20 != 0 && padding == 0 {
        return None;
    }
    let end = buf.len().checked_sub(padding)?;
    (at <= end).then_some((at, end))
}

/// A copy of `buf`'s header with another payload type (the marker kept), sequence number
/// and SSRC, and no padding, followed by `payload`.
fn rebuilt(buf: &[u8], at: usize, pt: u8, seq: u16, ssrc: u32, payload: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 2);
    out.extend_from_slice(&buf[..at]);
    out[0] &= !0x20;
    out[1] = (buf[1] & 0x80) | pt;
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for part in payload {
        out.extend_from_slice(part);
    }
    out
}

/// The original packet inside an RTX retransmission (RFC 4588: the original sequence number
/// first in the payload): the media SSRC and payload type put back. `None` for a packet that
/// carries no original (a padding-only bandwidth probe) or is malformed.
pub(crate) fn from_rtx(buf: &[u8], media_pt: u8, media_ssrc: u32) -> Option<Vec<u8>> {
    let (at, end) = payload_bounds(buf)?;
    if end < at + 2 {
        return None;
    }
    let original = u16::from_be_bytes([buf[at], buf[at + 1]]);
    Some(rebuilt(
        buf,
        at,
        media_pt,
        original,
        media_ssrc,
        &[&buf[at + 2..end]],
    ))
}

/// A consumer's packet as an RTX retransmission on the consumer's RTX stream.
pub(crate) fn to_rtx(buf: &[u8], rtx_pt: u8, rtx_ssrc: u32, rtx_seq: u16) -> Option<Vec<u8>> {
    let (at, end) = payload_bounds(buf)?;
    let original = [buf[2], buf[3]];
    Some(rebuilt(
        buf,
        at,
        rtx_pt,
        rtx_seq,
        rtx_ssrc,
        &[&original, &buf[at..end]],
    ))
}

/// Stamps a consumer's SSRC, sequence number and timestamp into a router packet.
pub(crate) fn stamp(buf: &mut [u8], ssrc: u32, sequence: u16, timestamp: u32) {
    buf[2..4].copy_from_slice(&sequence.to_be_bytes());
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ext: Option<(u16, Vec<u8>)>, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 111, 0x12, 0x34, 0, 0, 0x10, 0, 0xAA, 0xBB, 0xCC, 0xDD];
        if let Some((profile, block)) = ext {
            p[0] |= 0x10;
            p.extend_from_slice(&profile.to_be_bytes());
            p.extend_from_slice(&u16::try_from(block.len() / 4).expect("len").to_be_bytes());
            p.extend_from_slice(&block);
        }
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn headers_are_read_and_rtcp_told_apart() {
        let p = packet(None, b"opus");
        assert_eq!(
            header(&p),
            Some(Header {
                payload_type: 111,
                sequence: 0x1234,
                timestamp: 0x1000,
                ssrc: 0xAABB_CCDD
            })
        );
        assert!(!is_rtcp(&p));
        assert!(is_rtcp(&[0x81, 200, 0, 6]));
        assert_eq!(header(&[0x40; 12]), None, "version 1");
        assert_eq!(header(&[0x80; 5]), None);
    }

    #[test]
    fn producer_packets_take_router_numbers_and_lose_what_nobody_receives() {
        // One-byte block: mid (id 4, "0"), audio level (id 1), abs-send-time (id 2, unknown).
        let block = vec![0x40, b'0', 0x10, 0x85, 0x22, 1, 2, 3, 0, 0, 0, 0];
        let p = packet(Some((0xBEDE, block)), b"payload");
        let map = [(4, Ext::Mid), (1, Ext::AudioLevel)];
        let out = to_router(&p, 100, &map).expect("rewritten");
        assert_eq!(out[1] & 0x7f, 100);
        let (found, at) = extensions(&out).expect("parsed");
        assert_eq!(
            found,
            vec![(10, &[0x85][..])],
            "only the audio level, as id 10"
        );
        assert_eq!(&out[at..], b"payload");
        // No extension kept: the X bit goes.
        let out = to_router(&p, 100, &[(4, Ext::Mid)]).expect("rewritten");
        assert_eq!(out[0] & 0x10, 0);
        assert_eq!(&out[12..], b"payload");
        // Two-byte blocks are read too.
        let two = vec![1, 1, 0x7f, 0];
        let p = packet(Some((0x1000, two)), b"x");
        let out = to_router(&p, 100, &[(1, Ext::AudioLevel)]).expect("rewritten");
        assert_eq!(extensions(&out).expect("parsed").0, vec![(10, &[0x7f][..])]);
        // The marker bit survives.
        let mut marked = packet(None, b"m");
        marked[1] |= 0x80;
        assert_eq!(
            to_router(&marked, 101, &[]).expect("rewritten")[1],
            0x80 | 101
        );
        // Truncated extension blocks are refused.
        let mut bad = packet(Some((0xBEDE, vec![0x10, 1, 0, 0])), b"");
        bad.truncate(14);
        assert!(to_router(&bad, 100, &map).is_none());
    }

    #[test]
    fn retransmissions_go_into_rtx_and_come_out_as_they_were() {
        let block = vec![0x40, b'0', 0, 0];
        let mut original = packet(Some((0xBEDE, block)), b"frame");
        original[1] |= 0x80;
        let rtx = to_rtx(&original, 105, 99, 7).expect("rtx");
        let h = header(&rtx).expect("header");
        assert_eq!((h.payload_type, h.sequence, h.ssrc), (105, 7, 99));
        assert_eq!(rtx[1] & 0x80, 0x80, "the marker stays");
        assert_eq!(
            &rtx[rtx.len() - 7..],
            b"\x12\x34frame",
            "the original number first"
        );
        let back = from_rtx(&rtx, 111, 0xAABB_CCDD).expect("original");
        assert_eq!(back, original);
        // A padding-only probe on the RTX stream holds no original.
        let mut probe = packet(None, &[0, 0, 0, 4]);
        probe[0] |= 0x20;
        assert_eq!(from_rtx(&probe, 111, 1), None);
        // Padding after a retransmission is dropped with it.
        let mut padded = rtx.clone();
        padded[0] |= 0x20;
        padded.extend_from_slice(&[0, 0, 3]);
        assert_eq!(
            from_rtx(&padded, 111, 0xAABB_CCDD).expect("original"),
            original
        );
        // A padding count of 0 (it counts itself) or past the packet is malformed.
        let mut zero = rtx.clone();
        zero[0] |= 0x20;
        zero.push(0);
        assert_eq!(from_rtx(&zero, 111, 1), None);
        let mut past = rtx.clone();
        past[0] |= 0x20;
        past.push(255);
        assert_eq!(from_rtx(&past, 111, 1), None);
    }

    #[test]
    fn consumers_get_their_own_numbers() {
        let mut p = to_router(&packet(None, b"p"), 100, &[]).expect("router");
        stamp(&mut p, 7, 65535, u32::MAX);
        assert_eq!(
            header(&p),
            Some(Header {
                payload_type: 100,
                sequence: 65535,
                timestamp: u32::MAX,
                ssrc: 7
            })
        );
    }
}
