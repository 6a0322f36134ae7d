//! Hashing and checking passwords with Argon2id, off the async runtime. Neither a password
//! nor its hash is ever logged, and the error texts of `password-hash` never contain them.

use anyhow::{anyhow, Context as _};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;

/// Argon2id with the crate's default (OWASP-recommended) parameters and a random salt, in
/// PHC string format.
pub(crate) async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow!("hashing a password failed: {e}"))
    })
    .await
    .context("the password hashing task failed")?
}

/// Whether `password` matches a stored PHC-format hash; the parameters come from the hash.
pub(crate) async fn verify(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow!("stored hash unreadable: {e}"))?;
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(anyhow!("verifying a password failed: {e}")),
        }
    })
    .await
    .context("the password verifying task failed")?
}
