//! Hashing and checking passwords with Argon2id, off the async runtime and behind a bound.
//! Neither a password nor its hash is ever logged, and the error texts of `password-hash`
//! never contain them.
//!
//! Each hash takes about 19 MiB and a core for tens of milliseconds, so a burst of logins
//! could take every core and gigabytes of memory. [`PasswordHasher`] runs at most `permits`
//! of them at once and lets at most `max_waiting` callers wait for a turn; anyone beyond
//! that is told to come back later ([`HasherBusy`]) instead of queueing without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// Every hashing slot is taken and the waiting line is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once; retry shortly")]
pub struct HasherBusy;

/// Why hashing or checking a password failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    #[error(transparent)]
    Busy(#[from] HasherBusy),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Runs Argon2id on blocking threads, at most `permits` at once.
#[derive(Debug)]
pub(crate) struct PasswordHasher {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Counts a caller in the waiting line until it is dropped.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordHasher {
    /// A hasher running `permits` hashes at once (at least one) with at most `max_waiting`
    /// callers waiting.
    pub(crate) fn new(permits: usize, max_waiting: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Runs `work` on a blocking thread once a slot is free. The slot is held until the work
    /// ends, even if the caller stops waiting for it.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(HasherBusy.into());
                }
                let _in_line = InLine(&self.waiting);
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .context("the password hasher is closed")?
            }
        };
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .context("the password hashing task failed")?;
        Ok(result?)
    }

    /// Argon2id with the crate's default (OWASP-recommended) parameters and a random salt,
    /// in PHC string format.
    pub(crate) async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow!("hashing a password failed: {e}"))
        })
        .await
    }

    /// Whether `password` matches a stored PHC-format hash; the parameters come from the
    /// hash.
    pub(crate) async fn verify(&self, password: String, hash: String) -> Result<bool, HashError> {
        self.run(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow!("stored hash unreadable: {e}"))?;
            match Argon2::default().verify_password(password.as_bytes(), &parsed) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::Password) => Ok(false),
                Err(e) => Err(anyhow!("verifying a password failed: {e}")),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(1, 1);
        let hash = hasher.hash("correct horse 9".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher
            .verify("correct horse 9".into(), hash.clone())
            .await
            .unwrap());
        assert!(!hasher.verify("wrong horse 9".into(), hash).await.unwrap());
    }

    #[tokio::test]
    async fn callers_beyond_the_slots_and_the_line_are_turned_away() {
        let hasher = PasswordHasher::new(1, 1);
        // The first takes the slot, the second waits in line, the third finds both full.
        let (first, second, third) = tokio::join!(
            hasher.hash("password 1".into()),
            hasher.hash("password 2".into()),
            hasher.hash("password 3".into()),
        );
        let results = [first, second, third];
        let busy = results
            .iter()
            .filter(|result| matches!(result, Err(HashError::Busy(HasherBusy))))
            .count();
        assert_eq!(
            busy, 1,
            "exactly one caller finds the slot and the line full"
        );
        assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 2);
        // Once they are done, the line is empty again.
        assert_eq!(hasher.waiting.load(Ordering::Acquire), 0);
        assert!(hasher.hash("password 4".into()).await.is_ok());
    }
}
