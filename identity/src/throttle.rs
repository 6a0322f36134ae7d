//! [`LoginThrottle`]: back-off per email address after repeated failed logins, on top of the
//! per-IP limit of the gateway. Guessing one account's password from many addresses meets
//! this limit; guessing many accounts' from one address meets the per-IP one.
//!
//! After `free_failures` failures in a row for an address, each further failure locks it
//! for a doubling time (`first_lock`, then twice that, up to [`MAX_LOCK`]). While locked,
//! a login for that address is refused before any password is hashed, even with the right
//! password. A successful login forgets the failures; failures older than [`MAX_LOCK`]
//! are forgotten too. The state is in this process: each instance counts on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest an address is locked for, and how long failures are remembered.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);

/// Addresses tracked at most; beyond it, addresses neither locked nor failing recently are
/// dropped, and if all are, new ones are not tracked (the per-IP limit still applies).
const MAX_TRACKED: usize = 100_000;

/// The address is locked; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins for this account; retry in {} s", retry_after_secs(.0))]
pub struct LoginLocked(pub Duration);

impl LoginLocked {
    /// Whole seconds to wait, at least one.
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(&self.0)
    }
}

fn retry_after_secs(wait: &Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Counts failed logins per address and locks addresses that fail too often.
#[derive(Debug)]
pub struct LoginThrottle {
    free_failures: u32,
    first_lock: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    /// A throttle that locks an address after `free_failures` failures in a row, first for
    /// `first_lock`. Zero free failures turns it off.
    pub fn new(free_failures: u32, first_lock: Duration) -> Self {
        LoginThrottle {
            free_failures,
            first_lock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses a login for `key` while it is locked.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), LoginLocked> {
        let failures = self.failures.lock().expect("login throttle lock");
        match failures.get(key).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(LoginLocked(until - now)),
            _ => Ok(()),
        }
    }

    /// Records a failed login for `key`; locks it once it has failed too often.
    pub fn failed(&self, key: &str, now: Instant) {
        if self.free_failures == 0 {
            return;
        }
        let mut failures = self.failures.lock().expect("login throttle lock");
        if failures.len() >= MAX_TRACKED && !failures.contains_key(key) {
            failures.retain(|_, f| {
                f.locked_until.is_some_and(|until| until > now) || now - f.last < MAX_LOCK
            });
            if failures.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.saturating_duration_since(entry.last) >= MAX_LOCK {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= self.free_failures {
            let doublings = (entry.count - self.free_failures).min(20);
            let lock = self.first_lock.saturating_mul(1 << doublings).min(MAX_LOCK);
            entry.locked_until = Some(now + lock);
        }
    }

    /// Forgets the failures of `key` after a successful login.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .expect("login throttle lock")
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_its_free_failures_only() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(2));
        let now = Instant::now();
        for _ in 0..2 {
            throttle.failed("ada@example.com", now);
            assert_eq!(throttle.check("ada@example.com", now), Ok(()));
        }
        throttle.failed("ada@example.com", now);
        assert_eq!(
            throttle.check("ada@example.com", now),
            Err(LoginLocked(Duration::from_secs(2)))
        );
        assert_eq!(throttle.check("grace@example.com", now), Ok(()));
        // The lock ends on time.
        assert_eq!(
            throttle.check("ada@example.com", now + Duration::from_secs(2)),
            Ok(())
        );
    }

    #[test]
    fn each_further_failure_doubles_the_lock_up_to_the_maximum() {
        let throttle = LoginThrottle::new(1, Duration::from_secs(1));
        let now = Instant::now();
        let mut locks = Vec::new();
        for _ in 0..15 {
            throttle.failed("ada@example.com", now);
            let Err(LoginLocked(wait)) = throttle.check("ada@example.com", now) else {
                panic!("locked after the first failure");
            };
            locks.push(wait.as_secs());
        }
        assert_eq!(&locks[..4], &[1, 2, 4, 8]);
        assert_eq!(*locks.last().unwrap(), MAX_LOCK.as_secs());
    }

    #[test]
    fn success_and_time_forget_the_failures() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(1));
        let now = Instant::now();
        throttle.failed("ada@example.com", now);
        throttle.succeeded("ada@example.com");
        throttle.failed("ada@example.com", now);
        assert_eq!(throttle.check("ada@example.com", now), Ok(()));

        let later = now + MAX_LOCK;
        throttle.failed("ada@example.com", later);
        assert_eq!(throttle.check("ada@example.com", later), Ok(()));
    }

    #[test]
    fn zero_free_failures_turns_it_off() {
        let throttle = LoginThrottle::new(0, Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..10 {
            throttle.failed("ada@example.com", now);
        }
        assert_eq!(throttle.check("ada@example.com", now), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(LoginLocked(Duration::from_millis(1)).retry_after_secs(), 1);
        assert_eq!(LoginLocked(Duration::from_secs(2)).retry_after_secs(), 2);
        assert_eq!(
            LoginLocked(Duration::from_millis(2500)).retry_after_secs(),
            3
        );
    }
}
