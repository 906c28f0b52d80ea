//! Cutting a long text into pieces a provider takes in one request, at the best boundary
//! before the limit: the end of a sentence (in any script), else a space, else anywhere
//! between two characters. The pieces, joined, are the text again.

/// `text` as pieces of at most `max` characters (`max` of 0 counts as 1).
pub fn pieces(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let cut = cut_point(rest, max);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

/// The byte index to cut `text` at: after the last sentence end, else the last whitespace,
/// within its first `max` characters; else after exactly `max` characters.
fn cut_point(text: &str, max: usize) -> usize {
    let window: Vec<(usize, char)> = text.char_indices().take(max).collect();
    let after = |(i, c): &(usize, char)| i + c.len_utf8();
    let sentence = window
        .iter()
        .rev()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '\n' | '。' | '！' | '？' | '；' | '…'))
        .map(after);
    let space = window
        .iter()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map(after);
    sentence
        .or(space)
        .filter(|&cut| cut > 0)
        .unwrap_or_else(|| window.last().map(after).unwrap_or(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_one_piece() {
        assert_eq!(pieces("你好", 10), ["你好"]);
        assert_eq!(pieces("", 10), [""]);
    }

    #[test]
    fn long_texts_are_cut_at_sentences_then_spaces_then_anywhere() {
        assert_eq!(
            pieces("您好。我想退款！订单号是12345", 9),
            ["您好。我想退款！", "订单号是12345"]
        );
        assert_eq!(
            pieces("refund my order please", 10),
            ["refund my ", "order ", "please"]
        );
        assert_eq!(pieces("一二三四五六七", 3), ["一二三", "四五六", "七"]);
        let text = "Hello there. ".repeat(100) + &"长".repeat(999);
        let cut = pieces(&text, 50);
        assert!(cut.iter().all(|p| p.chars().count() <= 50));
        assert_eq!(cut.concat(), text);
    }
}
