//! Visitor-supplied text made safe to show as a label: cut to a length, and names and titles
//! kept to one visible line.
//!
//! Bidirectional overrides (U+202E "RIGHT-TO-LEFT OVERRIDE" and friends) make a name or a page
//! title read differently from what it is ("gpj.exe" shown as "exe.jpg"), and control
//! characters break lines in lists and logs. Labels lose both; message bodies keep every
//! character, since the console shows them as text.

/// `text` cut to at most `max` bytes at a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Whether a character changes the direction text is shown in, or is invisible formatting
/// that can hide such a change.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// A name, title or attribute as one line: control characters become spaces (a tab or a line
/// break is a space), bidirectional controls go, and the ends are trimmed; then cut to `max`
/// bytes.
pub fn label(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(line.trim(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }

    #[test]
    fn labels_lose_direction_overrides_and_line_breaks() {
        assert_eq!(label("invoice\u{202E}gpj.exe", 100), "invoicegpj.exe");
        assert_eq!(label("  Mei\nLin\t\u{2066}x\u{2069} ", 100), "Mei Lin x");
        assert_eq!(label("\u{0}\u{7}", 100), "");
        assert_eq!(label("王小明", 6), "王小");
        assert_eq!(label("Zoë 😀", 100), "Zoë 😀");
    }
}
