//! Server functions and the data they answer that more than one part of the console uses: the
//! desk's data (loaded by the shell, refreshed by the live link, shown by the inbox page).
//! A server function used by one page only lives next to that page.

pub mod inbox;
