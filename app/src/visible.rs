//! Message text as agents read it: every character kept, but the invisible ones that change
//! the direction text is shown in are written out, so a visitor cannot make a body read
//! differently from what it is ("invoice\u{202E}fdp.exe" shown as "invoice⟨U+202E⟩fdp.exe").

use std::borrow::Cow;

/// Whether a character changes the direction text is shown in, or hides such a change.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with each direction control replaced by a visible `⟨U+XXXX⟩`.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_bidi_control) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_bidi_control(c) {
            shown.push_str(&format!("⟨U+{:04X}⟩", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_controls_are_written_out_and_nothing_else_changes() {
        assert_eq!(visible("invoice\u{202E}fdp.exe"), "invoice⟨U+202E⟩fdp.exe");
        assert_eq!(visible("a\u{2066}b\u{2069}"), "a⟨U+2066⟩b⟨U+2069⟩");
        assert!(matches!(visible("你好 <b>"), Cow::Borrowed("你好 <b>")));
    }
}
