//! Building DOM nodes safely. Text from the network only ever becomes text nodes, and links
//! only ever become inert anchors for `http(s)` URLs — never markup.

use alloc::vec::Vec;
use wasm_bindgen::UnwrapThrowExt;
use web_sys::{Document, Element, Node};

/// A piece of a message: plain text, or a URL to show as a link.
#[derive(Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// Splits a message into text and `http(s)` links. A link starts at a word start and runs to
/// the next whitespace, quote, angle bracket or non-ASCII character, minus trailing punctuation
/// that usually ends a sentence. Works on bytes with checked slicing: no panics, little code.
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut pending, mut i) = (0, 0);
    while i < bytes.len() {
        let scheme = scheme_at(bytes, i);
        if scheme > 0 {
            let mut end = i;
            while bytes
                .get(end)
                .is_some_and(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>'))
            {
                end += 1;
            }
            while end > i + scheme
                && bytes
                    .get(end - 1)
                    .is_some_and(|b| matches!(b, b'.' | b',' | b';' | b':' | b'!' | b'?' | b')'))
            {
                end -= 1;
            }
            if end > i + scheme {
                if i > pending {
                    out.push(Segment::Text(text.get(pending..i).unwrap_or_default()));
                }
                out.push(Segment::Link(text.get(i..end).unwrap_or_default()));
                pending = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    if pending < bytes.len() {
        out.push(Segment::Text(text.get(pending..).unwrap_or_default()));
    }
    out
}

/// The length of `http://` or `https://` when one starts a word at `i`, else 0.
fn scheme_at(bytes: &[u8], i: usize) -> usize {
    let word_start = i == 0 || bytes.get(i - 1).is_some_and(|b| !b.is_ascii_alphanumeric());
    if !word_start {
        0
    } else if bytes
        .get(i..i + 8)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"https://"))
    {
        8
    } else if bytes
        .get(i..i + 7)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"http://"))
    {
        7
    } else {
        0
    }
}

/// Appends a `tag` element with `class`, attributes and text to `parent`. Only ever called
/// with the widget's own constant tags and names, which the browser cannot refuse.
pub fn add(
    doc: &Document,
    parent: &Node,
    tag: &str,
    class: &str,
    attributes: &[(&str, &str)],
    text: &str,
) -> Element {
    let element = doc.create_element(tag).unwrap_throw();
    element.set_attribute("class", class).unwrap_throw();
    for (name, value) in attributes {
        element.set_attribute(name, value).unwrap_throw();
    }
    if !text.is_empty() {
        element.set_text_content(Some(text));
    }
    parent.append_child(&element).unwrap_throw();
    element
}

/// Appends an icon to `parent`: an inline SVG of one path `d` in a 24×24 box, drawn in the
/// text colour by widget.css (emoji characters show as empty boxes without an emoji font).
/// Built as elements, not markup: pages that enforce Trusted Types refuse `innerHTML`.
pub fn icon(doc: &Document, parent: &Node, d: &str) {
    const SVG: Option<&str> = Some("http://www.w3.org/2000/svg");
    let svg = doc.create_element_ns(SVG, "svg").unwrap_throw();
    svg.set_attribute("viewBox", "0 0 24 24").unwrap_throw();
    svg.set_attribute("aria-hidden", "true").unwrap_throw();
    let path = doc.create_element_ns(SVG, "path").unwrap_throw();
    path.set_attribute("d", d).unwrap_throw();
    svg.append_child(&path).unwrap_throw();
    parent.append_child(&svg).unwrap_throw();
}

/// Fills `parent` with `text`: text nodes, and inert anchors for its links.
pub fn fill_text(doc: &Document, parent: &Element, text: &str) {
    for segment in segments(text) {
        match segment {
            Segment::Text(text) => {
                parent
                    .append_child(&doc.create_text_node(text))
                    .unwrap_throw();
            }
            Segment::Link(url) => {
                let attributes = [
                    ("href", url),
                    ("target", "_blank"),
                    ("rel", "noopener noreferrer nofollow"),
                ];
                add(doc, parent, "a", "", &attributes, url);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::*;

    #[test]
    fn links_are_only_http_and_https() {
        assert_eq!(
            segments("see https://shop.example/a?b=1. thanks"),
            vec![
                Text("see "),
                Link("https://shop.example/a?b=1"),
                Text(". thanks")
            ]
        );
        assert_eq!(
            segments("javascript:alert(1) data:text/html,x ftp://x"),
            vec![Text("javascript:alert(1) data:text/html,x ftp://x")]
        );
        assert_eq!(segments("HTTP://A.example"), vec![Link("HTTP://A.example")]);
        assert_eq!(
            segments("xhttps://a.example"),
            vec![Text("xhttps://a.example")]
        );
        assert_eq!(segments("https:// alone"), vec![Text("https:// alone")]);
        assert_eq!(
            segments("见 https://a.example/x。谢谢"),
            vec![Text("见 "), Link("https://a.example/x"), Text("。谢谢")]
        );
        assert_eq!(
            segments("(see https://a.example/x) or \"http://b.example\""),
            vec![
                Text("(see "),
                Link("https://a.example/x"),
                Text(") or \""),
                Link("http://b.example"),
                Text("\""),
            ]
        );
        assert_eq!(
            segments("<img src=x onerror=alert(1)>"),
            vec![Text("<img src=x onerror=alert(1)>")]
        );
    }

    /// Messages as they arrive: any text, with link-like pieces mixed in so the link path is
    /// taken often.
    fn message() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            any::<String>(),
            Just("https://".to_owned()),
            Just("HTTP://".to_owned()),
            "[a-z0-9./?=#%-]{0,12}",
            "[ .,;:!?)('\"<>\n]{0,3}",
            "[好é\u{3000}\u{a0}]{0,2}",
        ];
        prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
    }

    #[test]
    fn segments_keep_every_byte_and_links_are_only_http() {
        use proptest::prelude::*;
        let config = ProptestConfig {
            cases: 2_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let passed = core::cell::Cell::new(0u32);
        let result = runner.run(&message(), |text| {
            let parts = segments(&text);
            let mut joined = String::new();
            for (n, part) in parts.iter().enumerate() {
                match part {
                    Text(piece) => {
                        prop_assert!(!piece.is_empty());
                        prop_assert!(!matches!(parts.get(n + 1), Some(Text(_))), "{parts:?}");
                        joined.push_str(piece);
                    }
                    Link(url) => {
                        let lower = url.to_ascii_lowercase();
                        prop_assert!(
                            lower.len() > 8 && lower.starts_with("https://")
                                || lower.len() > 7 && lower.starts_with("http://"),
                            "{url:?}"
                        );
                        prop_assert!(
                            url.bytes().all(|b| b.is_ascii_graphic()
                                && !matches!(b, b'"' | b'\'' | b'<' | b'>')),
                            "{url:?}"
                        );
                        joined.push_str(url);
                    }
                }
            }
            prop_assert_eq!(joined, text);
            passed.set(passed.get() + 1);
            Ok(())
        });
        if let Err(failure) = result {
            panic!("property segments failed: {failure}");
        }
        println!(
            "property widget message segments: {} cases passed",
            passed.get()
        );
    }
}
