//! Server functions, data and rules that more than one part of the console uses: the desk's
//! data (loaded by the shell, refreshed by the live link, shown by the inbox page), the canned
//! replies (their page and the composer), what a ban checks, and how long a search may be. A
//! server function one page uses lives next to that page.

pub mod bans;
pub mod canned;
pub mod inbox;

/// Longest search text, in characters: history, leave-messages and the REST API's search.
pub const MAX_QUERY: usize = 200;
