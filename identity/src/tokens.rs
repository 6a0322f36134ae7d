//! Signing and checking the JWTs Ordo issues: HS256 with one shared secret, issuer
//! `ordo`, and a `typ` claim that keeps access and refresh tokens apart.

use std::fmt;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Role;

/// The `iss` of every token Ordo issues and the only one it accepts.
pub const ISSUER: &str = "ordo";

/// Shortest secret accepted: HS256 is only as strong as its key, and RFC 7518 asks for at
/// least the size of the hash output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Tolerated clock difference between the instance that issued a token and the one that
/// checks it.
const LEEWAY_SECS: u64 = 5;

/// The secret is too short to sign tokens with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long, got {0}")]
pub struct WeakSecret(pub usize);

/// The keys that sign and check tokens. Every gateway instance must share them, or tokens
/// from one instance are refused by the others.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    /// Keys from a configured secret of at least [`MIN_SECRET_BYTES`] bytes.
    pub fn from_secret(secret: &str) -> Result<Self, WeakSecret> {
        let bytes = secret.as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret(bytes.len()));
        }
        Ok(Self::from_bytes(bytes))
    }

    /// Keys from a fresh random secret. Tokens signed with them are refused after a
    /// restart and by any other instance: callers should warn when they fall back to this.
    pub fn random() -> Self {
        let mut secret = [0u8; 64];
        OsRng.fill_bytes(&mut secret);
        Self::from_bytes(&secret)
    }

    fn from_bytes(secret: &[u8]) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs claims with HS256.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Checks the signature, algorithm, issuer and expiry of a token and returns its
    /// claims. It does not look at `typ`: callers check the kind they expect.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|data| data.claims)
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

/// Which of the two tokens of a session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Sent as `Authorization: Bearer` on every request; short-lived, stored only when
    /// revoked.
    Access,
    /// Exchanged once for a new pair; recorded in `refresh_tokens`.
    Refresh,
}

/// The claims of both kinds of token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The user's normalised email when the token was issued.
    pub email: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token id; for refresh tokens, the `token_id` row in `refresh_tokens`.
    pub jti: Uuid,
    /// Access or refresh.
    pub typ: TokenKind,
    /// Always [`ISSUER`].
    pub iss: String,
}

impl Claims {
    /// Claims for a token of `kind` issued `now` (Unix seconds) that lives for `ttl`.
    pub fn new(
        user_id: Uuid,
        role: Role,
        email: &str,
        kind: TokenKind,
        now: i64,
        ttl: Duration,
    ) -> Self {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Claims {
            sub: user_id,
            role,
            email: email.to_owned(),
            exp: now.saturating_add(ttl),
            iat: now,
            jti: Uuid::new_v4(),
            typ: kind,
            iss: ISSUER.to_owned(),
        }
    }
}

/// Lifetimes of the tokens a session is made of, and the limits on password checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityConfig {
    /// How long an access token is accepted unless revoked (logout). Short, because every
    /// instance accepts it without asking anyone but the revocation list.
    pub access_ttl: Duration,
    /// How long a refresh token may be exchanged.
    pub refresh_ttl: Duration,
    /// Password hashes computed at once; each takes a core and about 19 MiB.
    pub hashing_permits: usize,
    /// Callers that may wait for a hashing slot; beyond them, callers are told to retry.
    pub hashing_max_waiting: usize,
    /// Failed logins in a row an email address may have before it is locked; 0 turns the
    /// per-email back-off off.
    pub login_free_failures: u32,
    /// The first lock after those failures; each further failure doubles it, up to
    /// [`crate::throttle::MAX_LOCK`].
    pub login_first_lock: Duration,
}

impl IdentityConfig {
    /// One hashing slot per core this process may use.
    pub fn default_hashing_permits() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

impl Default for IdentityConfig {
    /// 15 minutes for access tokens, 30 days for refresh tokens; one hash per core at once
    /// with 32 callers waiting at most; an address locked for 1 s after 5 failed logins in
    /// a row, doubling with each further failure.
    fn default() -> Self {
        IdentityConfig {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            hashing_permits: Self::default_hashing_permits(),
            hashing_max_waiting: 32,
            login_free_failures: 5,
            login_first_lock: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: TokenKind, now: i64) -> Claims {
        Claims::new(
            Uuid::new_v4(),
            Role::Customer,
            "ada@example.com",
            kind,
            now,
            Duration::from_secs(60),
        )
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            JwtKeys::from_secret("too short").unwrap_err(),
            WeakSecret(9)
        );
        assert!(JwtKeys::from_secret(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn signed_claims_round_trip() {
        let keys = JwtKeys::random();
        let claims = claims(TokenKind::Access, chrono::Utc::now().timestamp());
        let token = keys.sign(&claims).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
    }

    #[test]
    fn tokens_from_another_key_are_refused() {
        let claims = claims(TokenKind::Access, chrono::Utc::now().timestamp());
        let token = JwtKeys::random().sign(&claims).unwrap();
        assert!(JwtKeys::random().verify(&token).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = JwtKeys::random();
        let an_hour_ago = chrono::Utc::now().timestamp() - 3600;
        let token = keys.sign(&claims(TokenKind::Access, an_hour_ago)).unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn tokens_from_another_issuer_are_refused() {
        let keys = JwtKeys::random();
        let mut claims = claims(TokenKind::Access, chrono::Utc::now().timestamp());
        claims.iss = "someone-else".into();
        let token = keys.sign(&claims).unwrap();
        assert!(keys.verify(&token).is_err());
    }
}
