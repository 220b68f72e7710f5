//! Names people show to each other (nicknames, display names, webhook names) cannot hide or
//! reorder text: bidi overrides and isolates, zero-width characters and control characters
//! are removed before a name is stored.

/// Whether `c` is invisible or reorders the text around it.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidi embeddings, overrides and isolates; the Arabic letter mark.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}'
            // Left-to-right and right-to-left marks.
            | '\u{200e}' | '\u{200f}'
            // Zero-width space, non-joiner, joiner; word joiner and invisible operators;
            // the Mongolian vowel separator; the byte-order mark; the Hangul fillers.
            | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{180e}' | '\u{feff}'
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}'
            // Soft hyphen and the combining grapheme joiner.
            | '\u{00ad}' | '\u{034f}'
        )
}

/// `raw` without hidden characters, trimmed.
pub fn clean(raw: &str) -> String {
    raw.chars()
        .filter(|c| !hidden(*c))
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn hidden_and_reordering_characters_are_removed() {
        assert_eq!(clean("  ad\u{200b}min\u{202e}txt.exe "), "admintxt.exe");
        assert_eq!(clean("a\u{2066}b\u{2069}c\u{feff}"), "abc");
        assert_eq!(clean("tab\there\nnewline"), "tabherenewline");
        assert_eq!(clean("\u{200d}\u{200c}"), "");
        assert_eq!(clean("Zoë 🦀 日本"), "Zoë 🦀 日本");
    }
}
