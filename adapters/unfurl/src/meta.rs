//! Reads the `<meta>` tags of an HTML document: OpenGraph, Twitter card and `description`.
//!
//! Only the attributes of `<meta …>` tags are read, so a small scanner does: it finds each tag,
//! splits its attributes (quoted with `"` or `'`, or unquoted), and decodes the common
//! character references. Anything it cannot read is skipped.

/// The values found, before any URL resolution.
#[derive(Debug, Default, PartialEq)]
pub struct Meta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub image: Option<String>,
    pub site_name: Option<String>,
}

/// Longest title, description and site name kept (characters).
const MAX_TEXT: usize = 1000;

/// Reads the meta tags of `html`. The first occurrence of each key wins; `og:` beats
/// `twitter:`, which beats the plain `description`.
pub fn parse(html: &str) -> Meta {
    let mut og_title = None;
    let mut tw_title = None;
    let mut og_desc = None;
    let mut tw_desc = None;
    let mut desc = None;
    let mut og_image = None;
    let mut tw_image = None;
    let mut site = None;
    for attrs in meta_tags(html) {
        let key = attrs
            .iter()
            .find(|(k, _)| k == "property")
            .or_else(|| attrs.iter().find(|(k, _)| k == "name"))
            .map(|(_, v)| v.trim().to_ascii_lowercase());
        let content = attrs.iter().find(|(k, _)| k == "content").map(|(_, v)| v);
        let (Some(key), Some(content)) = (key, content) else {
            continue;
        };
        let value = clean(content);
        if value.is_empty() {
            continue;
        }
        let slot = match key.as_str() {
            "og:title" => &mut og_title,
            "twitter:title" => &mut tw_title,
            "og:description" => &mut og_desc,
            "twitter:description" => &mut tw_desc,
            "description" => &mut desc,
            "og:image" | "og:image:url" | "og:image:secure_url" => &mut og_image,
            "twitter:image" | "twitter:image:src" => &mut tw_image,
            "og:site_name" => &mut site,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    Meta {
        title: og_title.or(tw_title),
        description: og_desc.or(tw_desc).or(desc),
        image: og_image.or(tw_image),
        site_name: site,
    }
}

/// Trims, collapses whitespace, decodes references and caps the length.
fn clean(raw: &str) -> String {
    let decoded = decode_entities(raw);
    let mut out = String::new();
    for word in decoded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.chars().take(MAX_TEXT).collect()
}

/// The attribute lists (lower-case names) of every `<meta` tag.
fn meta_tags(html: &str) -> Vec<Vec<(String, String)>> {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(off) = find_ci(&bytes[i..], b"<meta") {
        let start = i + off + 5;
        // `<metadata>` and the like are not meta tags.
        match bytes.get(start) {
            Some(b) if b.is_ascii_whitespace() || *b == b'/' || *b == b'>' => {}
            Some(_) => {
                i = start;
                continue;
            }
            None => break,
        }
        let (attrs, end) = attributes(html, start);
        tags.push(attrs);
        i = end;
    }
    tags
}

/// Parses attributes from `pos` up to the tag's `>`; returns them and the index after it.
fn attributes(html: &str, mut pos: usize) -> (Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let mut attrs = Vec::new();
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return (attrs, pos);
        }
        if bytes[pos] == b'>' {
            return (attrs, pos + 1);
        }
        let name_start = pos;
        while pos < bytes.len()
            && !bytes[pos].is_ascii_whitespace()
            && !matches!(bytes[pos], b'=' | b'>' | b'/')
        {
            pos += 1;
        }
        let name = html[name_start..pos].to_ascii_lowercase();
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos < bytes.len() && bytes[pos] == b'=' {
            pos += 1;
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let value;
            if pos < bytes.len() && (bytes[pos] == b'"' || bytes[pos] == b'\'') {
                let quote = bytes[pos];
                let value_start = pos + 1;
                let value_end = bytes[value_start..]
                    .iter()
                    .position(|b| *b == quote)
                    .map_or(bytes.len(), |p| value_start + p);
                value = &html[value_start..value_end];
                pos = (value_end + 1).min(bytes.len());
            } else {
                let value_start = pos;
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                    pos += 1;
                }
                value = &html[value_start..pos];
            }
            if !name.is_empty() {
                attrs.push((name, value.to_owned()));
            }
        } else if !name.is_empty() {
            attrs.push((name, String::new()));
        } else {
            // A stray character: step over it.
            pos += 1;
        }
    }
}

/// ASCII case-insensitive search of `needle` (lower case) in `hay`.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Decodes `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#39;`, `&nbsp;` and numeric references;
/// anything else is kept as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        let Some(semi) = semi else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..semi];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => name.strip_prefix('#').and_then(|num| {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse::<u32>().ok(),
                };
                code.and_then(char::from_u32).filter(|c| !c.is_control())
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_opengraph_twitter_and_description() {
        let html = r#"<html><head>
            <META property="og:title" content="The &amp; Title">
            <meta name='twitter:title' content='Ignored'>
            <meta name="description" content="plain">
            <meta name=twitter:description content=tw>
            <meta content="https://x.test/i.png" property="og:image" />
            <meta property="og:site_name" content="  Site &#x41;&#66;  ">
            <metadata property="og:title" content="not a meta tag">
            </head></html>"#;
        assert_eq!(
            parse(html),
            Meta {
                title: Some("The & Title".into()),
                description: Some("tw".into()),
                image: Some("https://x.test/i.png".into()),
                site_name: Some("Site AB".into()),
            }
        );
    }

    #[test]
    fn survives_broken_markup() {
        for html in [
            "<meta",
            "<meta property=\"og:title\" content=\"unterminated",
            "<meta =x>",
            "<meta property=og:title content=>",
            "&#xFFFFFFFF; &bogus; &",
            "<meta property=\"og:title\" content=\"&#0;\">",
            "&ééééééééééééé;",
        ] {
            let _ = parse(html);
        }
        assert_eq!(
            parse("<meta name=\"description\" content=\"\">"),
            Meta::default()
        );
    }
}
