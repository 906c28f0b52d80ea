//! What every ban checks, whichever page makes it (a conversation's Ban button, the upkeep
//! page's form).

use crate::error::ConsoleError;

/// A ban's reason, trimmed, if it and the duration (`days`, 0 for ever) are acceptable.
pub fn ban_reason(reason: &str, days: i64) -> Result<String, ConsoleError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || !(0..=3650).contains(&days) {
        return Err(ConsoleError::Invalid);
    }
    Ok(reason.to_owned())
}
