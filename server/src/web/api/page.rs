//! Paged lists: a page of items and the opaque cursor of the next one. Cursors are keyset
//! positions (a time and an id, or an id) written as text, so paging a large history stays as
//! fast on page 1,000 as on page 1, and rows added meanwhile never shift a page.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;

/// Items per page when the caller does not say.
const DEFAULT_LIMIT: u32 = 50;

/// The most items one page may hold.
const MAX_LIMIT: u32 = 200;

/// Where a page of a list ordered by time starts, and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next` value of the previous page.
    #[param(pattern = r"^-?[0-9]{1,18}\.-?[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Where a page of a list ordered by id starts, and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdPageQuery {
    /// The `next` value of the previous page.
    #[param(pattern = r"^-?[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The page of `rows`, which were read with one row more than `limit` asked for: that extra
    /// row only says whether there is a next page, whose cursor `cursor` makes from the page's
    /// last row.
    pub fn of(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(cursor) } else { None };
        Page { items: rows, next }
    }

    /// A page with nothing on it and nothing after it.
    pub fn empty() -> Page<T> {
        Page {
            items: Vec::new(),
            next: None,
        }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, item: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(item).collect(),
            next: self.next,
        }
    }
}

/// The page size asked for, checked.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(ApiError::Invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

/// A cursor of two numbers (a time and an id), as [`pair`] reads it back.
pub fn pair_cursor(first: i64, second: i64) -> String {
    format!("{first}.{second}")
}

/// Reads a cursor [`pair_cursor`] wrote: exactly the strings the document's `pattern` for it
/// allows (`^-?[0-9]{1,18}\.-?[0-9]{1,18}$`), so a request the document calls valid is never
/// refused for its cursor.
pub fn pair(cursor: &str) -> Result<(i64, i64), ApiError> {
    cursor
        .split_once('.')
        .and_then(|(a, b)| Some((number(a)?, number(b)?)))
        .ok_or_else(bad_cursor)
}

/// Reads a cursor that is one id (`^-?[0-9]{1,18}$`).
pub fn single(cursor: &str) -> Result<i64, ApiError> {
    number(cursor).ok_or_else(bad_cursor)
}

/// `-?[0-9]{1,18}`: up to 18 digits always fit an `i64`, and no `+`, spaces or other forms
/// `str::parse` would also take.
fn number(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn bad_cursor() -> ApiError {
    ApiError::Invalid("cursor must be a `next` value from an earlier page".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_next_cursor_only_when_a_row_is_left_over() {
        let full = Page::of(vec![5, 4, 3], 2, |n| n.to_string()).map(|n| n * 10);
        assert_eq!(
            (full.items, full.next.as_deref()),
            (vec![50, 40], Some("4"))
        );
        let last = Page::of(vec![5, 4], 2, |n| n.to_string());
        assert_eq!((last.items, last.next), (vec![5, 4], None));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(
            pair(&pair_cursor(1_700_000_000_000, 42)).ok(),
            Some((1_700_000_000_000, 42))
        );
        for bad in [
            "", "12", "a.b", "1.2.3", "1.x", "+1.2", "1. 2", "1.2\n", "-.1",
        ] {
            assert!(pair(bad).is_err(), "{bad}");
        }
        assert_eq!(pair("-0.-5").ok(), Some((0, -5)));
        assert_eq!(single("7").ok(), Some(7));
        assert_eq!(
            single("-999999999999999999").ok(),
            Some(-999_999_999_999_999_999)
        );
        for bad in ["7.1", "+7", " 7", "7 ", "", "-", "1234567890123456789", "٣"] {
            assert!(single(bad).is_err(), "{bad}");
        }
        assert!(limit(Some(0)).is_err() && limit(Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
    }
}
