//! Paged lists: a page of items and the opaque cursor of the next one. Cursors are keyset
//! positions (a time and an id, or an id) written as text, so paging a large history stays as
//! fast on page 1,000 as on page 1, and rows added meanwhile never shift a page.

use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;

/// Items per page when the caller does not say.
const DEFAULT_LIMIT: u32 = 50;

/// The most items one page may hold.
const MAX_LIMIT: u32 = 200;

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

/// Reads a cursor [`pair_cursor`] wrote.
pub fn pair(cursor: &str) -> Result<(i64, i64), ApiError> {
    cursor
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(bad_cursor)
}

/// Reads a cursor that is one id.
pub fn single(cursor: &str) -> Result<i64, ApiError> {
    cursor.parse().map_err(|_| bad_cursor())
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
        for bad in ["", "12", "a.b", "1.2.3", "1.x"] {
            assert!(pair(bad).is_err(), "{bad}");
        }
        assert_eq!(single("7").ok(), Some(7));
        assert!(single("7.1").is_err());
        assert!(limit(Some(0)).is_err() && limit(Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
    }
}
