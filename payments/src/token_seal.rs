//! Sealing the customer's payment token: the token a payment method produced is needed once,
//! when the provider is asked to charge, and must never be readable where events go (the
//! event store, JetStream, dead letters, replays). The pay routes seal it with a key held
//! outside the event store (derived from `ORDO_PAYMENT_SECRET`), the payment's events carry
//! only the sealed form, and [`crate::HttpProvider`] opens it right before it calls the
//! provider.
//!
//! A sealed token is `sealed:v1:` and the hex of a random 96-bit nonce followed by the
//! ChaCha20-Poly1305 ciphertext of the token (with its tag), so a sealed token can be
//! neither read nor altered without the key.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

/// What every sealed token starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// The longest token a payment method may give (characters).
pub const MAX_TOKEN_CHARS: usize = 200;

/// Why a token cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The token is empty or longer than [`MAX_TOKEN_CHARS`].
    #[error("payment_token must be 1 to 200 characters")]
    InvalidToken,
    /// The sealed text is not one this key sealed (altered, or sealed with another key).
    #[error("the sealed payment token does not open with this key")]
    NotOpenable,
}

/// Seals and opens payment tokens with one key.
#[derive(Clone)]
pub struct TokenSeal {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for TokenSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSeal(..)")
    }
}

impl TokenSeal {
    /// A seal whose key is derived from `secret` (the payment secret), apart from the
    /// callbacks' HMAC key by its own label.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"ordo payment token seal v1\0");
        hasher.update(secret);
        let key = hasher.finalize();
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Seals a token a customer gave.
    pub fn seal(&self, token: &str) -> Result<String, SealError> {
        let chars = token.chars().count();
        if chars == 0 || chars > MAX_TOKEN_CHARS {
            return Err(SealError::InvalidToken);
        }
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, token.as_bytes())
            .expect("sealing a short token cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", hex::encode(bytes)))
    }

    /// Opens a sealed token. A value without the prefix is a token recorded in the clear
    /// before tokens were sealed (events of version 1), and is answered as it is.
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let Some(hex_text) = sealed.strip_prefix(SEALED_PREFIX) else {
            return Ok(sealed.to_owned());
        };
        let bytes = hex::decode(hex_text).map_err(|_| SealError::NotOpenable)?;
        if bytes.len() < 12 {
            return Err(SealError::NotOpenable);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::NotOpenable)?;
        String::from_utf8(plain).map_err(|_| SealError::NotOpenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_with_its_key_only_and_shows_nothing() {
        let seal = TokenSeal::from_secret(b"payment-secret-0123456789");
        let sealed = seal.seal("tok_success").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("tok_success"));
        assert_ne!(
            sealed,
            seal.seal("tok_success").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(seal.open(&sealed).unwrap(), "tok_success");
        let other = TokenSeal::from_secret(b"another-secret-0123456789");
        assert_eq!(other.open(&sealed), Err(SealError::NotOpenable));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert_eq!(seal.open(&altered), Err(SealError::NotOpenable));
    }

    #[test]
    fn tokens_out_of_bounds_are_refused_and_clear_legacy_tokens_open_as_they_are() {
        let seal = TokenSeal::from_secret(b"payment-secret-0123456789");
        assert_eq!(seal.seal(""), Err(SealError::InvalidToken));
        assert_eq!(seal.seal(&"x".repeat(201)), Err(SealError::InvalidToken));
        assert!(seal.seal(&"x".repeat(200)).unwrap().len() < 600);
        assert_eq!(seal.open("tok_visa_4242").unwrap(), "tok_visa_4242");
    }
}
