//! Outbound frames: the text of one WebSocket message, built once per delivery.

/// The text of one outbound WebSocket frame. Built once and handed to the socket without
/// another copy (a `ByteString` shares its buffer).
pub(crate) type Frame = bytestring::ByteString;

/// One dispatched frame: `{"event":…,"data":…,"seq":…}`, written into one buffer of the
/// right size (this runs once per delivery).
pub(crate) fn frame(name: &str, data: &str, seq: u64) -> Frame {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len() + data.len() + 48);
    out.push_str("{\"event\":");
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    {
        out.push('"');
        out.push_str(name);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into()));
    }
    out.push_str(",\"data\":");
    out.push_str(data);
    let _ = write!(out, ",\"seq\":{seq}}}");
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
    }
}
