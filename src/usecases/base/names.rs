//! Channel and category names (reference §7.5, DECISIONS §2).

use crate::{CoreError, CoreResult, EctoCode, ErrorKind};

/// Lower case; runs of whitespace and `_` become `-`; anything but `a-z`, `0-9` and `-` is
/// dropped; repeated `-` collapse; leading and trailing `-` go. The result must be 1–100
/// characters (CHANNEL_INVALID_NAME otherwise).
pub fn normalize_channel_name(raw: &str) -> CoreResult<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.to_lowercase().chars() {
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        if c == '-' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() || out.len() > 100 {
        return Err(CoreError::ecto(
            ErrorKind::BadRequest,
            EctoCode::ChannelInvalidName,
            "Channel name must have 1 to 100 letters, digits or dashes",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::normalize_channel_name as n;

    #[test]
    fn normalizes_like_the_reference() {
        assert_eq!(n("General Chat").ok().as_deref(), Some("general-chat"));
        assert_eq!(
            n("  __Hello__ World!! ").ok().as_deref(),
            Some("hello-world")
        );
        assert_eq!(n("a--b").ok().as_deref(), Some("a-b"));
        assert_eq!(n("Ünïcode-ok 2").ok().as_deref(), Some("ncode-ok-2"));
        assert!(n("!!!").is_err());
        assert!(n("").is_err());
        assert!(n(&"x".repeat(101)).is_err());
        assert_eq!(n(&"x".repeat(100)).map(|s| s.len()).ok(), Some(100));
    }
}
