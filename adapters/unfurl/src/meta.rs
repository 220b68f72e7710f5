//! Reads the `<meta>` tags of an HTML document: OpenGraph, Twitter card and `description`.
//!
//! The document is decoded with its charset (the `Content-Type` header's, else a `<meta
//! charset>` in its first 1,024 bytes, else UTF-8; encoding_rs) and tokenized by html5gum, a
//! WHATWG tokenizer: character references are decoded as browsers decode them, and comments,
//! scripts and styles are not mistaken for tags.

use encoding_rs::{Encoding, UTF_8};
use html5gum::{DefaultEmitter, Token, Tokenizer};

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
/// How far into the document a `<meta charset>` is looked for (the HTML prescan's limit).
const PRESCAN: usize = 1024;

/// Reads the meta tags of `body`, served with `content_type`. The first occurrence of each
/// key wins; `og:` beats `twitter:`, which beats the plain `description`.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Meta {
    let encoding = content_type
        .and_then(charset_param)
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| prescan(&body[..body.len().min(PRESCAN)]))
        .unwrap_or(UTF_8);
    let (html, _, _) = encoding.decode(body);
    read(meta_tags(html.as_bytes()))
}

/// The `charset` parameter of a `Content-Type` value (or of a `<meta http-equiv>` content).
fn charset_param(value: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The encoding a `<meta charset>` or `<meta http-equiv="content-type">` names.
fn prescan(head: &[u8]) -> Option<&'static Encoding> {
    meta_tags(head).into_iter().find_map(|attrs| {
        let get = |name: &str| attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let label = match get("charset") {
            Some(c) => Some(c.trim().to_owned()),
            None => get("http-equiv")
                .filter(|h| h.trim().eq_ignore_ascii_case("content-type"))
                .and_then(|_| get("content"))
                .and_then(|c| charset_param(&format!("x;{c}"))),
        }?;
        Encoding::for_label(label.as_bytes())
    })
}

/// The attributes (lower-case names) of every `<meta>` start tag, in document order.
fn meta_tags(html: &[u8]) -> Vec<Vec<(String, String)>> {
    let mut emitter = DefaultEmitter::default();
    // Script and style contents are raw text, as a browser reads them, not markup.
    emitter.naively_switch_states(true);
    let mut out = Vec::new();
    for token in Tokenizer::new_with_emitter(html, emitter) {
        let Ok(Token::StartTag(tag)) = token else {
            continue;
        };
        if !tag.name.eq_ignore_ascii_case(b"meta") {
            continue;
        }
        out.push(
            tag.attributes
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).to_ascii_lowercase(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
        );
    }
    out
}

/// Picks the preview's values out of the meta tags.
fn read(tags: Vec<Vec<(String, String)>>) -> Meta {
    let mut og_title = None;
    let mut tw_title = None;
    let mut og_desc = None;
    let mut tw_desc = None;
    let mut desc = None;
    let mut og_image = None;
    let mut tw_image = None;
    let mut site = None;
    for attrs in tags {
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

/// Trims, collapses whitespace and caps the length.
fn clean(raw: &str) -> String {
    let mut out = String::new();
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.chars().take(MAX_TEXT).collect()
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
            parse(html.as_bytes(), None),
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
            let _ = parse(html.as_bytes(), None);
        }
        assert_eq!(
            parse(b"<meta name=\"description\" content=\"\">", None),
            Meta::default()
        );
    }

    #[test]
    fn comments_scripts_and_styles_hold_no_tags() {
        let html = r#"<head>
            <!-- <meta property="og:title" content="commented out"> -->
            <script>document.write('<meta property="og:title" content="scripted">')</script>
            <style>/* <meta property="og:description" content="styled"> */</style>
            <meta property="og:title" content="Real &eacute;t&eacute; &hellip; &#x1F600;">
            </head>"#;
        let meta = parse(html.as_bytes(), None);
        assert_eq!(meta.title.as_deref(), Some("Real été … 😀"));
        assert_eq!(meta.description, None);
    }

    #[test]
    fn the_documents_charset_is_honoured() {
        // "Café crème" in windows-1252.
        let latin = b"<meta property=\"og:title\" content=\"Caf\xe9 cr\xe8me\">";
        assert_eq!(
            parse(latin, Some("text/html; charset=windows-1252"))
                .title
                .as_deref(),
            Some("Café crème")
        );
        let mut declared = b"<meta charset=\"iso-8859-1\">".to_vec();
        declared.extend_from_slice(latin);
        assert_eq!(parse(&declared, None).title.as_deref(), Some("Café crème"));
        let mut equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">"
                .to_vec();
        equiv.extend_from_slice(latin);
        assert_eq!(parse(&equiv, None).title.as_deref(), Some("Café crème"));
        // The header wins over the document; UTF-8 by default.
        let utf8 = "<meta charset=\"windows-1252\"><meta property=\"og:title\" content=\"Café\">";
        assert_eq!(
            parse(utf8.as_bytes(), Some("text/html; charset=utf-8"))
                .title
                .as_deref(),
            Some("Café")
        );
        assert_eq!(
            parse(
                "<meta property=\"og:title\" content=\"Café\">".as_bytes(),
                None
            )
            .title
            .as_deref(),
            Some("Café")
        );
    }
}
