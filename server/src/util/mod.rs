//! Small helpers every layer of the server uses: the clock, random ids, request header text,
//! visitor text cut to size and the map that forgets its dead entries. A leaf: it imports
//! nothing from the rest of the crate, so anything may use it without making a cycle.

mod pruned;
pub mod text;

pub use pruned::Pruned;

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    app::clock::now()
}

/// `N` bytes from the operating system's secure random source, as `2 * N` hex digits: secrets,
/// visitor keys, node names and attachment ids.
pub fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// Locks one of the server's short, non-async locks. A panic while one was held leaves its
/// data consistent (no await, no half-done update inside), so a poisoned lock is taken as is.
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A request header as text, when present and readable.
pub fn header_text<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
