//! Outbound frames: the text of one WebSocket message, built once per delivery.

/// The text of one outbound WebSocket frame. Built once and handed to the socket without
/// another copy (a `ByteString` shares its buffer).
pub(crate) type Frame = bytestring::ByteString;

/// One dispatched frame: `{"event":…,"data":…,"seq":…}`, written into one buffer of exactly
/// its size (this runs once per delivery; an exact buffer becomes the frame's `Bytes` without
/// another allocation).
pub(crate) fn frame(name: &str, data: &str, seq: u64) -> Frame {
    use std::fmt::Write;
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    let escaped = if plain {
        String::new()
    } else {
        serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into())
    };
    let name_len = if plain { name.len() + 2 } else { escaped.len() };
    let digits = seq.checked_ilog10().map_or(1, |d| d as usize + 1);
    const FIXED: usize = r#"{"event":,"data":,"seq":}"#.len();
    let mut out = String::with_capacity(FIXED + name_len + data.len() + digits);
    out.push_str("{\"event\":");
    if plain {
        out.push('"');
        out.push_str(name);
        out.push('"');
    } else {
        out.push_str(&escaped);
    }
    out.push_str(",\"data\":");
    out.push_str(data);
    let _ = write!(out, ",\"seq\":{seq}}}");
    debug_assert_eq!(out.len(), out.capacity());
    Frame::from(out)
}

#[cfg(test)]
mod tests {
    use super::frame;

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
        for seq in [0, 9, 10, 99, 100, 12_345] {
            let f = frame("a.b", "[]", seq);
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&f).expect("json")["seq"],
                seq
            );
        }
    }
}
