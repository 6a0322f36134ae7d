//! Accounts and sessions: registration, login, refresh-token rotation, the bootstrap
//! admin, and checking access tokens. Passwords are hashed with Argon2id off the async
//! runtime; neither they nor their hashes are ever logged.

use std::fmt;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::caller::Caller;
use crate::domain::{Email, EmailError, FullName, FullNameError, Password, PasswordError, Role};
use crate::passwords;
use crate::tokens::{Claims, IdentityConfig, JwtKeys, TokenKind};

/// Name given to an admin account created by [`IdentityService::ensure_admin`].
const BOOTSTRAP_ADMIN_NAME: &str = "Administrator";

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The email address is malformed.
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    /// The new password does not meet the policy.
    #[error(transparent)]
    InvalidPassword(#[from] PasswordError),
    /// The full name is empty or too long.
    #[error(transparent)]
    InvalidFullName(#[from] FullNameError),
    /// Another account already uses this email address.
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// Unknown email or wrong password; deliberately indistinguishable.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The token is malformed, forged, expired, of the wrong kind, or already used.
    #[error("invalid or expired token")]
    InvalidToken,
    /// The database or the hasher failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for IdentityError {
    fn from(err: sqlx::Error) -> Self {
        IdentityError::Internal(anyhow::Error::new(err).context("identity query failed"))
    }
}

/// The tokens handed to a client after registering, logging in or refreshing.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The account the tokens belong to.
    pub user_id: Uuid,
    /// Short-lived bearer token for API calls.
    pub access_token: String,
    /// Single-use token for [`IdentityService::refresh`].
    pub refresh_token: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tokens are credentials: keep them out of logs.
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Registers users and issues, rotates and checks their tokens.
pub struct IdentityService {
    pool: PgPool,
    keys: JwtKeys,
    config: IdentityConfig,
    /// A hash verified against when the email is unknown, so that a login for a missing
    /// account takes as long as one with a wrong password.
    dummy_hash: OnceCell<String>,
}

impl fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// A service over the `users` and `refresh_tokens` tables of `pool`.
    pub fn new(pool: PgPool, keys: JwtKeys, config: IdentityConfig) -> Self {
        IdentityService {
            pool,
            keys,
            config,
            dummy_hash: OnceCell::new(),
        }
    }

    /// Token lifetimes in use.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Creates a customer account and opens a session for it.
    pub async fn register(
        &self,
        email: &Email,
        password: &Password,
        full_name: &FullName,
    ) -> Result<Session, IdentityError> {
        let password_hash = passwords::hash(password.expose().to_owned()).await?;
        let user_id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO users (user_id, email, full_name, password_hash, role)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (email) DO NOTHING
             RETURNING user_id",
        )
        .bind(user_id)
        .bind(email.as_str())
        .bind(full_name.as_str())
        .bind(&password_hash)
        .bind(Role::Customer.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            return Err(IdentityError::EmailTaken);
        }
        let session = self
            .open_session(&mut tx, user_id, Role::Customer, email.as_str())
            .await?;
        tx.commit().await?;
        tracing::info!(%user_id, "user registered");
        Ok(session)
    }

    /// Opens a session for the account with this email and password. An unknown email and
    /// a wrong password fail alike, in about the same time.
    pub async fn login(&self, email: &Email, password: &str) -> Result<Session, IdentityError> {
        let row = sqlx::query_as::<_, (Uuid, String, String)>(
            "SELECT user_id, password_hash, role FROM users WHERE email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some((user_id, password_hash, role)) = row else {
            let dummy = self.dummy_hash().await?;
            passwords::verify(password.to_owned(), dummy.to_owned()).await?;
            return Err(IdentityError::InvalidCredentials);
        };
        if !passwords::verify(password.to_owned(), password_hash).await? {
            return Err(IdentityError::InvalidCredentials);
        }
        let role = parse_stored_role(&role)?;
        let mut tx = self.pool.begin().await?;
        let session = self
            .open_session(&mut tx, user_id, role, email.as_str())
            .await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once: a second
    /// use, like a forged, expired or access token, is refused.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, IdentityError> {
        let claims = self
            .keys
            .verify(refresh_token)
            .map_err(|_| IdentityError::InvalidToken)?;
        if claims.typ != TokenKind::Refresh {
            return Err(IdentityError::InvalidToken);
        }
        let mut tx = self.pool.begin().await?;
        // One statement both checks and spends the token, so that two concurrent
        // refreshes with the same token cannot both succeed. The role and email come from
        // the account as it is now, not as it was when the token was issued.
        let spent = sqlx::query_as::<_, (String, String)>(
            "UPDATE refresh_tokens AS t SET used_at = now()
             FROM users AS u
             WHERE t.token_id = $1 AND t.user_id = $2 AND u.user_id = t.user_id
               AND t.used_at IS NULL AND t.expires_at > now()
             RETURNING u.email, u.role",
        )
        .bind(claims.jti)
        .bind(claims.sub)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((email, role)) = spent else {
            tracing::info!(user_id = %claims.sub, "refused a used, expired or unknown refresh token");
            return Err(IdentityError::InvalidToken);
        };
        let role = parse_stored_role(&role)?;
        let session = self.open_session(&mut tx, claims.sub, role, &email).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Makes sure an admin account with this email exists: creates it with this password
    /// if the email is unknown, otherwise promotes the existing account to admin and leaves
    /// its password alone. Safe to run at every start, from several processes at once.
    pub async fn ensure_admin(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<Uuid, IdentityError> {
        let password_hash = passwords::hash(password.expose().to_owned()).await?;
        let user_id = sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO users (user_id, email, full_name, password_hash, role)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (email) DO UPDATE SET role = EXCLUDED.role
             RETURNING user_id",
        )
        .bind(Uuid::new_v4())
        .bind(email.as_str())
        .bind(BOOTSTRAP_ADMIN_NAME)
        .bind(&password_hash)
        .bind(Role::Admin.as_str())
        .fetch_one(&self.pool)
        .await?;
        tracing::info!(%user_id, "admin account ensured");
        Ok(user_id)
    }

    /// Checks an access token and returns who it belongs to. Access tokens are not looked
    /// up in the database: they stay valid until they expire, which is why they are short.
    pub fn verify_access(&self, token: &str) -> Result<Caller, IdentityError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|_| IdentityError::InvalidToken)?;
        if claims.typ != TokenKind::Access {
            return Err(IdentityError::InvalidToken);
        }
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email,
            role: claims.role,
        })
    }

    /// When a valid access token stops being accepted, in seconds since the Unix epoch
    /// (what a stream opened with it lives until).
    pub fn access_expires_at(&self, token: &str) -> Result<i64, IdentityError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|_| IdentityError::InvalidToken)?;
        if claims.typ != TokenKind::Access {
            return Err(IdentityError::InvalidToken);
        }
        Ok(claims.exp)
    }

    /// Signs a new access and refresh token and records the refresh token, inside the
    /// caller's transaction so that it exists if and only if the caller's change commits.
    async fn open_session(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        role: Role,
        email: &str,
    ) -> Result<Session, IdentityError> {
        let now = Utc::now().timestamp();
        let access = Claims::new(
            user_id,
            role,
            email,
            TokenKind::Access,
            now,
            self.config.access_ttl,
        );
        let refresh = Claims::new(
            user_id,
            role,
            email,
            TokenKind::Refresh,
            now,
            self.config.refresh_ttl,
        );
        sqlx::query(
            "INSERT INTO refresh_tokens (token_id, user_id, issued_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(refresh.jti)
        .bind(user_id)
        .bind(timestamp(refresh.iat)?)
        .bind(timestamp(refresh.exp)?)
        .execute(&mut *conn)
        .await?;
        Ok(Session {
            user_id,
            access_token: self.keys.sign(&access).context("signing an access token")?,
            refresh_token: self
                .keys
                .sign(&refresh)
                .context("signing a refresh token")?,
        })
    }

    async fn dummy_hash(&self) -> Result<&str, IdentityError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| passwords::hash(Uuid::new_v4().to_string()))
            .await?;
        Ok(hash)
    }
}

fn timestamp(secs: i64) -> Result<DateTime<Utc>, IdentityError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| IdentityError::Internal(anyhow!("timestamp {secs} is out of range")))
}

fn parse_stored_role(name: &str) -> Result<Role, IdentityError> {
    Role::from_name(name)
        .ok_or_else(|| IdentityError::Internal(anyhow!("unknown role {name:?} in users")))
}
