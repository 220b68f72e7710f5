//! Outbound frames: the text of one WebSocket message.

use actix_web::web::BytesMut;
use std::sync::Arc;

/// The text of one outbound WebSocket frame. Built once and handed to the socket without
/// another copy (a `ByteString` shares its buffer).
pub(crate) type Frame = bytestring::ByteString;

/// One dispatched event for one session: `{"event":…,"data":…,"seq":…}`. The name and data
/// are the event's, shared by every session it reaches; only `seq` is the session's. The
/// socket's writer encodes it straight into its write buffer, so a delivery allocates and
/// copies nothing of its own before that (perf, fan-out of 1,000 sockets: building a frame per
/// delivery on the dispatcher's thread, then freeing it on a worker's, was a fifth of the
/// dispatcher's time).
pub(crate) struct Dispatched {
    /// The event's name as a JSON string (see [`quoted`]).
    pub name: Arc<str>,
    /// The event's data as JSON.
    pub data: Arc<str>,
    pub seq: u64,
}

const EVENT: &str = r#"{"event":"#;
const DATA: &str = r#","data":"#;
const SEQ: &str = r#","seq":"#;

/// An event's name as a JSON string, once per event.
pub(crate) fn quoted(name: &str) -> Arc<str> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if plain {
        Arc::from(format!("\"{name}\""))
    } else {
        Arc::from(serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into()))
    }
}

/// `n` in decimal, at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            // ASCII digits.
            return std::str::from_utf8(&buf[at..]).unwrap_or_default();
        }
    }
}

/// A frame's text, in the order written; `name` is [`quoted`].
fn parts<'a>(name: &'a str, data: &'a str, seq: u64, digits: &'a mut [u8; 20]) -> [&'a str; 7] {
    [EVENT, name, DATA, data, SEQ, decimal(seq, digits), "}"]
}

/// The text of `parts` as a frame of its own.
fn text(name: &str, data: &str, seq: u64) -> Frame {
    let mut digits = [0; 20];
    let parts = parts(name, data, seq, &mut digits);
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    Frame::from(out)
}

impl Dispatched {
    /// The length of the frame's text.
    pub fn len(&self) -> usize {
        let digits = self.seq.checked_ilog10().map_or(1, |d| d as usize + 1);
        EVENT.len() + self.name.len() + DATA.len() + self.data.len() + SEQ.len() + digits + 1
    }

    /// Appends the frame's text to `out`.
    pub fn write(&self, out: &mut BytesMut) {
        let mut digits = [0; 20];
        for part in parts(&self.name, &self.data, self.seq, &mut digits) {
            out.extend_from_slice(part.as_bytes());
        }
    }

    /// The frame's text on its own (events held while a resume replayed).
    pub fn text(&self) -> Frame {
        text(&self.name, &self.data, self.seq)
    }
}

/// One frame's text, `{"event":…,"data":…,"seq":…}`, for a resume's replay.
pub(crate) fn frame(name: &str, data: &str, seq: u64) -> Frame {
    text(&quoted(name), data, seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json_with_the_name_escaped_when_needed() {
        let plain: serde_json::Value =
            serde_json::from_str(&frame("message.create", r#"{"a":1}"#, 42)).expect("json");
        assert_eq!(
            plain,
            serde_json::json!({ "event": "message.create", "data": { "a": 1 }, "seq": 42 })
        );
        let odd: serde_json::Value =
            serde_json::from_str(&frame("we\"ird", "null", u64::MAX)).expect("json");
        assert_eq!(odd["event"], "we\"ird");
        assert_eq!(odd["seq"], u64::MAX);
        for seq in [0, 9, 10, 99, 100, 12_345, u64::MAX] {
            let d = Dispatched {
                name: quoted("a.b"),
                data: Arc::from("[]"),
                seq,
            };
            let mut written = BytesMut::new();
            d.write(&mut written);
            let text = d.text();
            assert_eq!(written, text.as_bytes(), "one encoding");
            assert_eq!(text.len(), d.len());
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).expect("json")["seq"],
                seq
            );
        }
    }
}
