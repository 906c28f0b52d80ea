//! Full-text search that works the same for Chinese, Japanese and English on every backend.
//!
//! The databases' own word splitters do not: SQLite's `trigram` and PostgreSQL's `pg_trgm`
//! cannot look up a two-character word such as `退款` through their index, and MariaDB has no
//! `ngram` parser while InnoDB ignores words shorter than three characters. So the text is cut
//! into tokens here, once, in Rust, and each backend only indexes and matches whole tokens:
//!
//! - a run of letters or digits in a spaced script is one word, lowercased (`Refund` → `refund`);
//! - a run of CJK characters (Han, kana, Hangul) becomes its overlapping pairs followed by its
//!   last character (`我要退款` → `我要 要退 退款 款`), so any substring of two or more
//!   characters is a sequence of adjacent pairs, and any single character starts a pair or ends
//!   a run.
//!
//! A query is a list of terms that must all match (AND), each a phrase of adjacent tokens whose
//! last token may be a prefix: `refund` finds "refunded", `退款` finds "申请退款中". Each backend
//! renders the same [`Query`] in its own syntax (FTS5 `MATCH`, `tsquery`, InnoDB boolean mode).

/// The longest token kept: longer "words" (hashes, base64) are cut, and stay findable by prefix.
const MAX_TOKEN_CHARS: usize = 40;

/// The most terms one query may have; more is almost always pasted text, not a search.
const MAX_TERMS: usize = 8;

/// InnoDB ignores tokens shorter than `innodb_ft_min_token_size` (3 by default, and a server
/// setting the application cannot change): shorter tokens are padded with this word character.
const MYSQL_PAD: char = '_';

/// Whether `c` belongs to a script written without spaces between words, searched by pairs.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0xFF66..=0xFF9D   // half-width Katakana
        | 0x20000..=0x2FA1F // CJK Extensions B–F, Compatibility Supplement
    )
}

/// Full-width ASCII letters and digits (`ｒｅｆｕｎｄ`, `１２３`), common in CJK input methods,
/// as their ASCII selves; everything else unchanged.
fn fold_width(c: char) -> char {
    match c as u32 {
        code @ (0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A) => {
            char::from_u32(code - 0xFEE0).unwrap_or(c)
        }
        _ => c,
    }
}

/// A stretch of searchable text: a word of a spaced script, or a run of CJK characters.
enum Run {
    Word(String),
    Cjk(Vec<char>),
}

/// Splits `text` into runs; anything neither alphanumeric nor CJK separates them.
fn runs(text: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut current: Option<Run> = None;
    for c in text.chars().map(fold_width) {
        let cjk = is_cjk(c);
        if !cjk && !c.is_alphanumeric() {
            runs.extend(current.take());
            continue;
        }
        match (&mut current, cjk) {
            (Some(Run::Cjk(chars)), true) => chars.push(c),
            (Some(Run::Word(word)), false) => word.extend(c.to_lowercase()),
            (_, true) => {
                runs.extend(current.take());
                current = Some(Run::Cjk(vec![c]));
            }
            (_, false) => {
                runs.extend(current.take());
                current = Some(Run::Word(c.to_lowercase().collect()));
            }
        }
    }
    runs.extend(current);
    runs
}

/// Cuts a token to [`MAX_TOKEN_CHARS`].
fn capped(token: String) -> String {
    match token.char_indices().nth(MAX_TOKEN_CHARS) {
        Some((end, _)) => token[..end].to_owned(),
        None => token,
    }
}

/// The tokens a stored text is indexed under, in order (positions matter for phrases).
pub fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for run in runs(text) {
        match run {
            Run::Word(word) => tokens.push(capped(word)),
            Run::Cjk(chars) => {
                tokens.extend(chars.windows(2).map(|pair| pair.iter().collect()));
                tokens.extend(chars.last().map(char::to_string));
            }
        }
    }
    tokens
}

/// One query term: adjacent tokens that must appear in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The phrase's tokens, as [`tokens`] cuts stored text.
    pub tokens: Vec<String>,
    /// Whether the last token also matches longer tokens that start with it: words are matched
    /// by prefix, and a lone CJK character as the start of a pair.
    pub prefix: bool,
    /// The term's runs of letters or CJK characters, lowercased: what [`highlight`] marks.
    pub words: Vec<String>,
}

impl Term {
    /// The term typed as `word` (no white space in it), tokenised as stored text is, except
    /// that its last run may continue in the stored text: a final CJK run of two or more
    /// characters is only its pairs (the stored run may go on), a final word or lone CJK
    /// character is a prefix. `None` when nothing in it is searchable.
    fn parse(word: &str) -> Option<Term> {
        let runs = runs(word);
        let mut tokens = Vec::new();
        let mut prefix = false;
        for (i, run) in runs.iter().enumerate() {
            let last = i + 1 == runs.len();
            prefix = false;
            match run {
                Run::Word(word) => {
                    tokens.push(capped(word.clone()));
                    prefix = last;
                }
                Run::Cjk(chars) => {
                    tokens.extend(chars.windows(2).map(|pair| pair.iter().collect()));
                    if !last || chars.len() == 1 {
                        tokens.extend(chars.last().map(char::to_string));
                        prefix = last;
                    }
                }
            }
        }
        let words = runs
            .into_iter()
            .map(|run| match run {
                Run::Word(word) => word,
                Run::Cjk(chars) => chars.into_iter().collect(),
            })
            .collect();
        (!tokens.is_empty()).then_some(Term {
            tokens,
            prefix,
            words,
        })
    }
}

/// What a search looks for: terms that must all match. Build it with [`Query::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

impl Query {
    /// The query typed as `input`: terms are separated by white space. `None` when nothing in it
    /// is searchable (only punctuation, say); at most eight terms are kept.
    pub fn parse(input: &str) -> Option<Query> {
        let terms: Vec<Term> = input
            .split_whitespace()
            .filter_map(Term::parse)
            .take(MAX_TERMS)
            .collect();
        (!terms.is_empty()).then_some(Query { terms })
    }

    /// The terms, in the order typed.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The query in SQLite FTS5 syntax: `"退款 款申" "refund"*` (phrases, implicitly ANDed).
    pub(crate) fn fts5(&self) -> String {
        self.render(" ", |term| {
            let phrase = term.tokens.join(" ");
            let star = if term.prefix { "*" } else { "" };
            format!("\"{}\"{star}", phrase.replace('"', "\"\""))
        })
    }

    /// The query as a PostgreSQL `tsquery` literal: `'退款' <-> '款申' & 'refund':*`.
    pub(crate) fn tsquery(&self) -> String {
        self.render(" & ", |term| {
            let last = term.tokens.len().saturating_sub(1);
            let parts: Vec<String> = term
                .tokens
                .iter()
                .enumerate()
                .map(|(i, token)| {
                    let star = if term.prefix && i == last { ":*" } else { "" };
                    format!("{}{star}", pg_quote(token))
                })
                .collect();
            format!("({})", parts.join(" <-> "))
        })
    }

    /// The query in InnoDB boolean-mode syntax over [`mysql_text`]: `+"退款 款申" +refund*`.
    /// InnoDB matches a phrase or a prefix, not both: a phrase's last token is matched whole.
    pub(crate) fn mysql(&self) -> String {
        self.render(" ", |term| match term.tokens.as_slice() {
            // Unpadded: `7*` must match the stored `7__` and `70_` alike.
            [one] if term.prefix => format!("+{one}*"),
            tokens => {
                let phrase: Vec<String> = tokens.iter().map(|t| mysql_token(t)).collect();
                format!("+\"{}\"", phrase.join(" "))
            }
        })
    }

    /// The query as `LIKE` patterns over [`mysql_text`], one per term, all of which must match
    /// (escape character `!`): what InnoDB boolean mode would match, row by row without the
    /// index, for scanning the newest rows (see the store's `SEARCH_WINDOWS`).
    pub(crate) fn mysql_like(&self) -> Vec<String> {
        let escape = |text: &str| {
            text.replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_")
        };
        self.terms
            .iter()
            .map(|term| match term.tokens.as_slice() {
                [one] if term.prefix => format!("% {}%", escape(one)),
                tokens => {
                    let phrase: Vec<String> = tokens.iter().map(|t| mysql_token(t)).collect();
                    format!("% {} %", escape(&phrase.join(" ")))
                }
            })
            .collect()
    }

    fn render(&self, separator: &str, term: impl Fn(&Term) -> String) -> String {
        self.terms
            .iter()
            .map(term)
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// `token` as a quoted `tsvector`/`tsquery` lexeme. Tokens hold only letters and digits, but
/// quoting keeps the literal valid whatever they hold.
fn pg_quote(token: &str) -> String {
    format!("'{}'", token.replace('\\', "\\\\").replace('\'', "''"))
}

/// The stored text's tokens as a PostgreSQL `tsvector` literal with positions (`'退款':3`), so
/// phrases (`<->`) match adjacency. Positions above PostgreSQL's limit of 16,383 share the last.
pub(crate) fn tsvector(text: &str) -> String {
    tokens(text)
        .iter()
        .enumerate()
        .map(|(i, token)| format!("{}:{}", pg_quote(token), (i + 1).min(16_383)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A token padded to InnoDB's minimum token length.
fn mysql_token(token: &str) -> String {
    let mut padded = token.to_owned();
    for _ in token.chars().count()..3 {
        padded.push(MYSQL_PAD);
    }
    padded
}

/// The stored text's tokens as the text of MySQL's `FULLTEXT` column: padded, space-separated,
/// with a space before the first and after the last, so [`Query::mysql_like`] can match a
/// token's start and end anywhere.
pub(crate) fn mysql_text(text: &str) -> String {
    let tokens: Vec<String> = tokens(text).iter().map(|t| mysql_token(t)).collect();
    format!(" {} ", tokens.join(" "))
}

/// The stored text's tokens, space-separated: what SQLite's FTS5 table (tokenizer `unicode61`,
/// which splits on the spaces and keeps each token whole) indexes.
pub(crate) fn fts5_text(text: &str) -> String {
    tokens(text).join(" ")
}

/// `text` cut into pieces, each marked whether it matches one of the query's terms, for showing
/// a hit with its matches highlighted. Matching ignores case; the pieces join back to `text`.
pub fn highlight(text: &str, query: &Query) -> Vec<(String, bool)> {
    // Lowercasing can change byte lengths, so match on chars folded one to one.
    let fold = |c: char| fold_width(c).to_lowercase().next().unwrap_or(c);
    let chars: Vec<char> = text.chars().collect();
    let folded: Vec<char> = chars.iter().copied().map(fold).collect();
    let mut marked = vec![false; chars.len()];
    for term in &query.terms {
        for word in &term.words {
            let needle: Vec<char> = word.chars().map(fold).collect();
            if needle.is_empty() || needle.len() > folded.len() {
                continue;
            }
            for start in 0..=folded.len() - needle.len() {
                if folded[start..start + needle.len()] == needle[..] {
                    marked[start..start + needle.len()].fill(true);
                }
            }
        }
    }
    let mut pieces: Vec<(String, bool)> = Vec::new();
    for (c, mark) in chars.into_iter().zip(marked) {
        match pieces.last_mut() {
            Some((piece, last)) if *last == mark => piece.push(c),
            _ => pieces.push((c.to_string(), mark)),
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_cjk_runs_become_pairs_and_their_last_character() {
        assert_eq!(
            tokens("我要退款, please REFUND order #42"),
            [
                "我要", "要退", "退款", "款", "please", "refund", "order", "42"
            ]
        );
        assert_eq!(
            tokens("返金をお願い"),
            ["返金", "金を", "をお", "お願", "願い", "い"]
        );
        assert_eq!(tokens("ｒｅｆｕｎｄ１２"), ["refund12"]);
        assert_eq!(tokens("<script>"), ["script"]);
        assert!(tokens("!!! ... ???").is_empty());
    }

    #[test]
    fn long_words_are_cut() {
        let long = "a".repeat(100);
        assert_eq!(tokens(&long)[0].chars().count(), MAX_TOKEN_CHARS);
    }

    #[test]
    fn queries_render_as_phrases_and_prefixes_for_each_backend() {
        let query = Query::parse("退款申请  Refund 退").expect("searchable");
        assert_eq!(query.fts5(), r#""退款 款申 申请" "refund"* "退"*"#);
        assert_eq!(
            query.tsquery(),
            "('退款' <-> '款申' <-> '申请') & ('refund':*) & ('退':*)"
        );
        assert_eq!(query.mysql(), r#"+"退款_ 款申_ 申请_" +refund* +退*"#);
        assert_eq!(
            query.mysql_like(),
            ["% 退款!_ 款申!_ 申请!_ %", "% refund%", "% 退%"]
        );
        assert_eq!(query.terms()[1].words, ["refund"]);
        // A CJK run inside a term ends there, as it does in stored text.
        let mixed = Query::parse("退款refund").expect("searchable");
        assert_eq!(mixed.terms()[0].tokens, ["退款", "款", "refund"]);
        assert_eq!(mixed.terms()[0].words, ["退款", "refund"]);
    }

    #[test]
    fn nothing_searchable_is_no_query() {
        assert_eq!(Query::parse("  ?! ** "), None);
        assert_eq!(
            Query::parse(&"x ".repeat(20)).map(|q| q.terms.len()),
            Some(MAX_TERMS)
        );
    }

    #[test]
    fn stored_text_renders_for_each_backend() {
        assert_eq!(tsvector("It's 退款"), "'it':1 's':2 '退款':3 '款':4");
        assert_eq!(mysql_text("ok 退款"), " ok_ 退款_ 款__ ");
        assert_eq!(fts5_text("OK 退款"), "ok 退款 款");
    }

    #[test]
    fn highlight_marks_every_match_without_losing_text() {
        let query = Query::parse("refund! 退款").expect("searchable");
        let pieces = highlight("Refund? 我要退款, refund!", &query);
        let joined: String = pieces.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(joined, "Refund? 我要退款, refund!");
        let marked: Vec<&str> = pieces
            .iter()
            .filter(|(_, m)| *m)
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(marked, ["Refund", "退款", "refund"]);
    }
}
