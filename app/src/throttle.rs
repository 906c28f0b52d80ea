//! Sign-in throttling: guesses are limited per client address and per account, with a backoff
//! that doubles, and password hashes (argon2id, 19 MiB and tens of milliseconds each) run a
//! few at a time, so a burst of junk sign-ins costs the server neither its memory nor its CPU.
//!
//! The hashes run on threads of their own at the lowest scheduling priority, each with its
//! working memory allocated once: under a burst, hashing takes only the CPU that serving
//! chats, pages and health checks leaves, and memory stays flat.
//!
//! An attempt counts as a failure from the moment it starts (and is forgiven when the password
//! was right), so a hundred guesses sent at once are limited like a hundred in a row. The
//! address limit is lower than the account's: a guesser at one address is stopped long before
//! the account is, and the owner still signs in from anywhere else.

use crate::error::ConsoleError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Failures an address may have before it must wait.
pub const ADDRESS_FAILURES: u32 = 10;
/// Failures an account may have, from all addresses together, before it must wait.
pub const ACCOUNT_FAILURES: u32 = 50;
/// The first wait; each further failure doubles it, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(30);
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(60 * 60);
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(60 * 60);
/// Most addresses and accounts remembered; past it the oldest are forgotten first.
const MAX_ENTRIES: usize = 100_000;
/// How long an attempt waits for a free hashing slot before it is told to try again.
const HASH_WAIT: Duration = Duration::from_secs(2);
/// Longest password accepted, in bytes: hashing a megabyte would be a cheap way to burn CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Account(String),
}

/// One address's or account's recent failures.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The throttle of one server; it puts one into the console's context.
pub struct LoginGuard {
    /// Recent failures per address (an IPv6 /64) and per account.
    failures: Mutex<HashMap<Key, Failures>>,
    /// Password checks that may be under way at once: one per hashing thread.
    hashing: Semaphore,
    /// Checks for the hashing threads, which end when the guard (this sender) is dropped.
    /// `None` when no thread could be started: checks then run on the blocking pool.
    jobs: Option<Mutex<mpsc::Sender<Job>>>,
}

/// A password, the hash to check it against, and where the answer goes.
type Job = (String, String, tokio::sync::oneshot::Sender<bool>);

impl Default for LoginGuard {
    fn default() -> Self {
        // One core is left for serving everything else.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        LoginGuard::new(cores.saturating_sub(1).max(1))
    }
}

/// Refused before any hashing: wait this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl LoginGuard {
    /// A guard with `hashes` hashing threads.
    pub fn new(hashes: usize) -> LoginGuard {
        let hashes = hashes.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let started = (0..hashes)
            .filter(|n| {
                let queue = queue.clone();
                std::thread::Builder::new()
                    .name(format!("kefu-password-{n}"))
                    .spawn(move || hash_passwords(&queue))
                    .inspect_err(|error| tracing::error!(%error, "cannot start a hashing thread"))
                    .is_ok()
            })
            .count();
        LoginGuard {
            failures: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(hashes),
            jobs: (started > 0).then(|| Mutex::new(jobs)),
        }
    }

    /// Starts an attempt from `address` for `account`: refused with the time to wait while
    /// either is throttled, else counted as a failure until [`LoginGuard::succeeded`] says
    /// otherwise.
    pub fn begin(&self, address: IpAddr, account: &str, now: Instant) -> Result<(), Wait> {
        let mut failures = lock(&self.failures);
        let keys = [
            (Key::Address(address), ADDRESS_FAILURES),
            (Key::Account(account.to_string()), ACCOUNT_FAILURES),
        ];
        let wait = keys
            .iter()
            .filter_map(|(key, free)| failures.get(key).and_then(|f| f.wait(*free, now)))
            .max();
        if let Some(wait) = wait {
            return Err(Wait(wait));
        }
        if failures.len() >= MAX_ENTRIES {
            prune(&mut failures, now);
        }
        for (key, _) in keys {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(entry.last) > WINDOW {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
        }
        Ok(())
    }

    /// The attempt had the right password: forgets the address's and the account's failures.
    pub fn succeeded(&self, address: IpAddr, account: &str) {
        let mut failures = lock(&self.failures);
        failures.remove(&Key::Address(address));
        failures.remove(&Key::Account(account.to_string()));
    }

    /// Checks `password` against `hash` when a hashing thread is free within a moment;
    /// `Throttled` when none is.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ConsoleError> {
        let Ok(Ok(_slot)) = tokio::time::timeout(HASH_WAIT, self.hashing.acquire()).await else {
            return Err(ConsoleError::Throttled);
        };
        let Some(jobs) = &self.jobs else {
            return tokio::task::spawn_blocking(move || {
                verify_in(&mut Vec::new(), password.as_bytes(), &hash)
            })
            .await
            .map_err(crate::error::internal);
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        lock(jobs)
            .send((password, hash, answer))
            .map_err(crate::error::internal)?;
        answered.await.map_err(crate::error::internal)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A hashing thread: at the lowest priority, with its working memory reused from check to
/// check, until the guard is gone.
fn hash_passwords(queue: &Mutex<mpsc::Receiver<Job>>) {
    // On Linux a thread's niceness is set through its thread id.
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::warn!(%error, "password hashing runs at normal priority");
    }
    let mut memory = Vec::new();
    loop {
        let job = lock(queue).recv();
        let Ok((password, hash, answer)) = job else {
            return;
        };
        let _ = answer.send(verify_in(&mut memory, password.as_bytes(), &hash));
    }
}

/// Whether `password` is the one `hash` (an argon2 PHC string) was made from, computed in
/// `memory`, which grows to the hash's memory cost once and is then reused.
fn verify_in(memory: &mut Vec<argon2::Block>, password: &[u8], hash: &str) -> bool {
    use argon2::password_hash::{Output, PasswordHash};
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(expected), Some(salt)) =
        (argon2::Params::try_from(&parsed), parsed.hash, parsed.salt)
    else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(argon2::Version::default()), argon2::Version::try_from)
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    argon2::Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut computed, &mut memory[..blocks])
        .is_ok()
        && Output::new(&computed).is_ok_and(|computed| computed == expected)
}

impl Failures {
    /// How much longer to wait when `free` failures are allowed; `None`: no wait.
    fn wait(&self, free: u32, now: Instant) -> Option<Duration> {
        if self.count < free || now.duration_since(self.last) > WINDOW {
            return None;
        }
        let doublings = (self.count - free).min(16);
        let length = FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT);
        let until = self.last + length;
        (until > now).then(|| until - now)
    }
}

/// Forgets failures older than the window, then the oldest half if that was not enough.
fn prune(failures: &mut HashMap<Key, Failures>, now: Instant) {
    failures.retain(|_, f| now.duration_since(f.last) <= WINDOW);
    if failures.len() >= MAX_ENTRIES {
        let mut ages: Vec<Instant> = failures.values().map(|f| f.last).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        failures.retain(|_, f| f.last > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_address_waits_after_its_failures_and_the_wait_doubles() {
        let guard = LoginGuard::new(1);
        let start = Instant::now();
        for _ in 0..ADDRESS_FAILURES {
            assert!(guard.begin(ip("203.0.113.1"), "a@x", start).is_ok());
        }
        let Err(Wait(first)) = guard.begin(ip("203.0.113.1"), "a@x", start) else {
            panic!("throttled");
        };
        assert_eq!(first, FIRST_WAIT);
        // Another address still gets through for the same account.
        assert!(guard.begin(ip("198.51.100.2"), "a@x", start).is_ok());
        // After the wait, one more failure means a doubled wait.
        let later = start + FIRST_WAIT;
        assert!(guard.begin(ip("203.0.113.1"), "a@x", later).is_ok());
        let Err(Wait(second)) = guard.begin(ip("203.0.113.1"), "a@x", later) else {
            panic!("throttled again");
        };
        assert_eq!(second, FIRST_WAIT * 2);
        // The right password forgives.
        guard.succeeded(ip("203.0.113.1"), "a@x");
        assert!(guard.begin(ip("203.0.113.1"), "a@x", later).is_ok());
    }

    #[test]
    fn an_account_waits_after_failures_from_many_addresses() {
        let guard = LoginGuard::new(1);
        let now = Instant::now();
        for n in 0..ACCOUNT_FAILURES {
            let address = IpAddr::from([10, 0, (n / 250) as u8, (n % 250) as u8]);
            assert!(guard.begin(address, "boss@x", now).is_ok());
        }
        assert!(guard.begin(ip("10.9.9.9"), "boss@x", now).is_err());
        assert!(guard.begin(ip("10.9.9.9"), "other@x", now).is_ok());
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let guard = LoginGuard::new(1);
        let start = Instant::now();
        for _ in 0..ADDRESS_FAILURES {
            assert!(guard.begin(ip("203.0.113.1"), "a@x", start).is_ok());
        }
        let hour_later = start + WINDOW + Duration::from_secs(1);
        assert!(guard.begin(ip("203.0.113.1"), "a@x", hour_later).is_ok());
    }

    #[test]
    fn reused_memory_checks_passwords_like_argon2_does() {
        let hash = crate::password::hash_password("correct horse").expect("hash");
        let mut memory = Vec::new();
        assert!(verify_in(&mut memory, b"correct horse", &hash));
        assert!(!verify_in(&mut memory, b"wrong", &hash));
        assert!(
            verify_in(&mut memory, b"correct horse", &hash),
            "memory reused"
        );
        assert!(!verify_in(&mut memory, b"", crate::password::DUMMY_HASH));
        assert!(!verify_in(&mut memory, b"x", "not a hash"));
    }

    #[tokio::test]
    async fn hashing_threads_check_passwords_then_a_busy_guard_gives_up() {
        let guard = LoginGuard::new(1);
        let hash = crate::password::hash_password("correct horse").expect("hash");
        assert_eq!(
            guard.verify("correct horse".into(), hash.clone()).await,
            Ok(true)
        );
        assert_eq!(guard.verify("wrong".into(), hash).await, Ok(false));
        let _busy = guard.hashing.acquire().await.expect("slot");
        let refused = guard
            .verify("pw".into(), crate::password::DUMMY_HASH.into())
            .await;
        assert_eq!(refused, Err(ConsoleError::Throttled));
    }
}
