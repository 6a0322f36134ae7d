//! Accounts and sessions: registration, login, refresh-token rotation in families, logout,
//! the bootstrap admin, and checking access tokens against the revocation list. Passwords
//! are hashed with Argon2id off the async runtime, a bounded number at once; neither they
//! nor their hashes are ever logged.
//!
//! A session is a family of refresh tokens: login or registration starts one, each refresh
//! spends a token and adds the next. Presenting a spent token again means that two parties
//! hold the family (a stolen token), so the whole family is revoked, with every access
//! token it handed out. Logout revokes the family and the access token it is called with.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::caller::Caller;
use crate::domain::{
    Email, EmailError, FullName, FullNameError, Password, PasswordError, Role, SignupRole,
    SignupRoleError,
};
use crate::passwords::{HashError, HasherBusy, PasswordHasher};
use crate::revocations::RevocationChecks;
use crate::throttle::{LoginLocked, LoginThrottle};
use crate::tokens::{Claims, IdentityConfig, JwtKeys, TokenKind};

/// Name given to an admin account created by [`IdentityService::ensure_admin`].
const BOOTSTRAP_ADMIN_NAME: &str = "Administrator";

/// Expired rows deleted at most per table and sweep, so that a sweep stays short.
const PRUNE_BATCH: i64 = 500;

/// Writes between two sweeps of expired rows.
const PRUNE_EVERY_WRITES: u32 = 32;

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
    /// The role asked for at registration is not one an account may choose.
    #[error(transparent)]
    InvalidRole(#[from] SignupRoleError),
    /// Another account already uses this email address.
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// Unknown email or wrong password; deliberately indistinguishable.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The token is malformed, forged, expired, of the wrong kind, already used, or
    /// revoked.
    #[error("invalid or expired token")]
    InvalidToken,
    /// Too many failed logins for this email address; retry after the lock.
    #[error(transparent)]
    LoginLocked(#[from] LoginLocked),
    /// No account has this id.
    #[error("no such user")]
    UnknownUser,
    /// Admin accounts are not erased (they hold no customer data); change the role first.
    #[error("an admin account is not erased; change its role first")]
    AdminNotErasable,
    /// Every password-hashing slot is taken and the waiting line is full.
    #[error(transparent)]
    Busy(#[from] HasherBusy),
    /// The bootstrap admin's email address belongs to an account that is not an admin.
    /// It is never promoted: whoever registered that address first would become admin.
    #[error(
        "{email} already belongs to a {role} account, and an existing account is never made admin at start"
    )]
    BootstrapAdminTaken {
        /// The address.
        email: String,
        /// The role the account has.
        role: Role,
    },
    /// The database or the hasher failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<HashError> for IdentityError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy(busy) => IdentityError::Busy(busy),
            HashError::Failed(cause) => IdentityError::Internal(cause),
        }
    }
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
    /// Single-use token for [`IdentityService::refresh`] and [`IdentityService::logout`].
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

/// The name of an account, as [`IdentityService::account_name`] answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName {
    /// The full name given at registration; empty once erased.
    pub full_name: String,
    /// True once the account was erased.
    pub erased: bool,
}

/// Registers users and issues, rotates, revokes and checks their tokens.
pub struct IdentityService {
    pool: PgPool,
    keys: JwtKeys,
    config: IdentityConfig,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    /// A hash verified against when the email is unknown, so that a login for a missing
    /// account takes as long as one with a wrong password.
    dummy_hash: OnceCell<String>,
    /// Session writes since the last sweep of expired rows.
    writes: AtomicU32,
    /// Every request's token is checked against the revocations, in batches.
    revocations: RevocationChecks,
}

impl fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the row of a presented refresh token says.
#[derive(sqlx::FromRow)]
struct RefreshRow {
    family_id: Uuid,
    spent: bool,
    revoked: bool,
    expired: bool,
    email: String,
    role: String,
}

impl IdentityService {
    /// A service over the `users`, `refresh_tokens` and `revoked_access_tokens` tables of
    /// `pool`.
    pub fn new(pool: PgPool, keys: JwtKeys, config: IdentityConfig) -> Self {
        IdentityService {
            revocations: RevocationChecks::new(pool.clone()),
            pool,
            keys,
            hasher: PasswordHasher::new(config.hashing_permits, config.hashing_max_waiting),
            throttle: LoginThrottle::new(config.login_free_failures, config.login_first_lock),
            config,
            dummy_hash: OnceCell::new(),
            writes: AtomicU32::new(0),
        }
    }

    /// Token lifetimes and limits in use.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Creates a customer or provider account and opens a session for it.
    pub async fn register(
        &self,
        email: &Email,
        password: &Password,
        full_name: &FullName,
        role: SignupRole,
    ) -> Result<Session, IdentityError> {
        let role = role.role();
        let password_hash = self.hasher.hash(password.expose().to_owned()).await?;
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
        .bind(role.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            return Err(IdentityError::EmailTaken);
        }
        let session = self
            .open_session(&mut tx, user_id, role, email.as_str(), None)
            .await?;
        tx.commit().await?;
        tracing::info!(%user_id, %role, "user registered");
        self.after_write().await;
        Ok(session)
    }

    /// Opens a session for the account with this email and password. An unknown email and
    /// a wrong password fail alike, in about the same time, and both count towards the
    /// address's back-off: once locked, the address is refused before any hashing.
    pub async fn login(&self, email: &Email, password: &str) -> Result<Session, IdentityError> {
        self.throttle.check(email.as_str(), Instant::now())?;
        let row = sqlx::query_as::<_, (Uuid, String, String)>(
            "SELECT user_id, password_hash, role FROM users WHERE email = $1 AND erased_at IS NULL",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some((user_id, password_hash, role)) = row else {
            let dummy = self.dummy_hash().await?;
            self.hasher
                .verify(password.to_owned(), dummy.to_owned())
                .await?;
            self.throttle.failed(email.as_str(), Instant::now());
            return Err(IdentityError::InvalidCredentials);
        };
        if !self
            .hasher
            .verify(password.to_owned(), password_hash)
            .await?
        {
            self.throttle.failed(email.as_str(), Instant::now());
            return Err(IdentityError::InvalidCredentials);
        }
        self.throttle.succeeded(email.as_str());
        let role = parse_stored_role(&role)?;
        let mut tx = self.pool.begin().await?;
        let session = self
            .open_session(&mut tx, user_id, role, email.as_str(), None)
            .await?;
        tx.commit().await?;
        self.after_write().await;
        Ok(session)
    }

    /// Exchanges a refresh token for a new pair of the same family. Each refresh token
    /// works once. Presenting a spent one again revokes its whole family: every refresh
    /// token and access token it issued stops working. A forged, expired, revoked or access
    /// token is refused.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, IdentityError> {
        let claims = self.verify_kind(refresh_token, TokenKind::Refresh)?;
        let mut tx = self.pool.begin().await?;
        // The row lock makes two concurrent refreshes with one token take turns: the
        // second sees the token spent. The role and email come from the account as it is
        // now, not as it was when the token was issued.
        let row = sqlx::query_as::<_, RefreshRow>(
            "SELECT t.family_id, t.used_at IS NOT NULL AS spent,
                    t.revoked_at IS NOT NULL AS revoked, t.expires_at <= now() AS expired,
                    u.email, u.role
             FROM refresh_tokens AS t JOIN users AS u ON u.user_id = t.user_id
             WHERE t.token_id = $1 AND t.user_id = $2
             FOR UPDATE OF t",
        )
        .bind(claims.jti)
        .bind(claims.sub)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tracing::info!(user_id = %claims.sub, "refused an unknown refresh token");
            return Err(IdentityError::InvalidToken);
        };
        if row.revoked || row.expired {
            tracing::info!(user_id = %claims.sub, "refused a revoked or expired refresh token");
            return Err(IdentityError::InvalidToken);
        }
        if row.spent {
            let revoked = revoke_family(&mut tx, row.family_id).await?;
            tx.commit().await?;
            tracing::warn!(
                user_id = %claims.sub,
                family_id = %row.family_id,
                revoked_access_tokens = revoked,
                "a spent refresh token was presented again: its session is revoked"
            );
            return Err(IdentityError::InvalidToken);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_id = $1")
            .bind(claims.jti)
            .execute(&mut *tx)
            .await?;
        let role = parse_stored_role(&row.role)?;
        let session = self
            .open_session(&mut tx, claims.sub, role, &row.email, Some(row.family_id))
            .await?;
        tx.commit().await?;
        self.after_write().await;
        Ok(session)
    }

    /// Ends a session: revokes the access token it is called with (until it would have
    /// expired), the refresh family that issued it, and the family of `refresh_token` when
    /// one is given, which must be the same caller's (spent tokens included). Calling it
    /// twice with the same refresh token is harmless; the access token is refused from the
    /// first call on.
    pub async fn logout(
        &self,
        access_token: &str,
        refresh_token: Option<&str>,
    ) -> Result<(), IdentityError> {
        let access = self.verify_kind(access_token, TokenKind::Access)?;
        if self.is_revoked(access.jti).await? {
            return Err(IdentityError::InvalidToken);
        }
        let refresh = refresh_token
            .map(|token| self.verify_kind(token, TokenKind::Refresh))
            .transpose()?;
        if refresh.as_ref().is_some_and(|r| r.sub != access.sub) {
            return Err(IdentityError::InvalidToken);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO revoked_access_tokens (token_id, user_id, expires_at)
             VALUES ($1, $2, $3) ON CONFLICT (token_id) DO NOTHING",
        )
        .bind(access.jti)
        .bind(access.sub)
        .bind(timestamp(access.exp)?)
        .execute(&mut *tx)
        .await?;
        let families = sqlx::query_scalar::<_, Uuid>(
            "SELECT DISTINCT family_id FROM refresh_tokens
             WHERE user_id = $1 AND (access_token_id = $2 OR token_id = $3)",
        )
        .bind(access.sub)
        .bind(access.jti)
        .bind(refresh.as_ref().map(|r| r.jti))
        .fetch_all(&mut *tx)
        .await?;
        for family in &families {
            revoke_family(&mut tx, *family).await?;
        }
        tx.commit().await?;
        tracing::info!(user_id = %access.sub, families = families.len(), "logged out");
        self.sweep().await;
        Ok(())
    }

    /// Erases a customer or merchant account (right to erasure) in one transaction: deletes its personal-data
    /// key, so that every personal value sealed in events for it is unreadable for good;
    /// anonymises its row (email `erased-<id>@invalid`, empty name, a password hash that
    /// matches nothing, `erased_at` set), so it can no longer log in; and revokes every
    /// session, with the access tokens they issued; and runs `read_model_scrubs` (SQL
    /// statements whose `$1` is the user's id) after the key is gone, so that read models
    /// holding the user's opened values lose them in the same transaction. Repeating it
    /// changes nothing more. [`IdentityError::UnknownUser`] when no account has this id.
    pub async fn erase_user(
        &self,
        user_id: Uuid,
        read_model_scrubs: &[&str],
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let role =
            sqlx::query_scalar::<_, String>("SELECT role FROM users WHERE user_id = $1 FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        match role.as_deref().map(parse_stored_role).transpose()? {
            None => return Err(IdentityError::UnknownUser),
            Some(Role::Admin) => return Err(IdentityError::AdminNotErasable),
            Some(_) => {}
        }
        let found = sqlx::query_scalar::<_, Uuid>(
            "UPDATE users SET email = 'erased-' || user_id::text || '@invalid', full_name = '',
                 password_hash = '!erased', erased_at = coalesce(erased_at, now())
             WHERE user_id = $1 RETURNING user_id",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(IdentityError::UnknownUser);
        }
        crate::personal_data::erase_key(&mut tx, user_id).await?;
        for scrub in read_model_scrubs {
            sqlx::query(scrub).bind(user_id).execute(&mut *tx).await?;
        }
        let families = sqlx::query_scalar::<_, Uuid>(
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        for family in &families {
            revoke_family(&mut tx, *family).await?;
        }
        tx.commit().await?;
        tracing::info!(%user_id, sessions = families.len(), "user erased");
        Ok(())
    }

    /// The full name an account registered with, and whether it was erased (the name is
    /// then empty); `None` when no account has this id.
    pub async fn account_name(&self, user_id: Uuid) -> Result<Option<AccountName>, IdentityError> {
        let row = sqlx::query_as::<_, (String, bool)>(
            "SELECT full_name, erased_at IS NOT NULL FROM users WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(full_name, erased)| AccountName { full_name, erased }))
    }

    /// Makes sure an admin account with this email exists: creates it with this password
    /// if the email is unknown, and leaves an existing admin as it is (its password too).
    /// An existing account of another role is refused with
    /// [`IdentityError::BootstrapAdminTaken`]: it is neither promoted nor given this
    /// password. Safe to run at every start, from several processes at once.
    pub async fn ensure_admin(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<Uuid, IdentityError> {
        if let Some(user_id) = self.existing_admin(email).await? {
            tracing::info!(%user_id, "admin account exists");
            return Ok(user_id);
        }
        let password_hash = self.hasher.hash(password.expose().to_owned()).await?;
        let inserted = sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO users (user_id, email, full_name, password_hash, role)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (email) DO NOTHING
             RETURNING user_id",
        )
        .bind(Uuid::new_v4())
        .bind(email.as_str())
        .bind(BOOTSTRAP_ADMIN_NAME)
        .bind(&password_hash)
        .bind(Role::Admin.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(user_id) = inserted {
            tracing::info!(%user_id, "admin account created");
            return Ok(user_id);
        }
        // Someone else created the account in between: another process starting, or a
        // registration. Judge it as it is now.
        self.existing_admin(email)
            .await?
            .ok_or_else(|| IdentityError::Internal(anyhow!("the admin account vanished")))
    }

    /// The id of the admin account with this email; `None` when there is no account,
    /// [`IdentityError::BootstrapAdminTaken`] when the account is not an admin.
    async fn existing_admin(&self, email: &Email) -> Result<Option<Uuid>, IdentityError> {
        let row =
            sqlx::query_as::<_, (Uuid, String)>("SELECT user_id, role FROM users WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok(None),
            Some((user_id, role)) => match parse_stored_role(&role)? {
                Role::Admin => Ok(Some(user_id)),
                role => Err(IdentityError::BootstrapAdminTaken {
                    email: email.as_str().to_owned(),
                    role,
                }),
            },
        }
    }

    /// Checks an access token's signature, issuer, expiry and kind, and returns who it
    /// belongs to, without asking the database: a revoked token passes. Good enough to key
    /// a rate limit; to let a caller in, use [`IdentityService::authenticate`].
    pub fn verify_access(&self, token: &str) -> Result<Caller, IdentityError> {
        let claims = self.verify_kind(token, TokenKind::Access)?;
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email,
            role: claims.role,
        })
    }

    /// Checks an access token as [`IdentityService::verify_access`] does and refuses it if
    /// it was revoked (logout, or a reused refresh token of its family): one primary-key
    /// probe of `revoked_access_tokens`.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, IdentityError> {
        let claims = self.verify_kind(token, TokenKind::Access)?;
        if self.is_revoked(claims.jti).await? {
            return Err(IdentityError::InvalidToken);
        }
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email,
            role: claims.role,
        })
    }

    /// Deletes refresh tokens and revocations whose tokens have expired (with a margin for
    /// the clock leeway of token checks), at most a batch of each; answers how many rows
    /// went. Runs by itself every few session writes and at every logout.
    pub async fn prune_expired(&self) -> Result<u64, IdentityError> {
        let revocations = sqlx::query(
            "DELETE FROM revoked_access_tokens WHERE token_id IN (
                 SELECT token_id FROM revoked_access_tokens
                 WHERE expires_at < now() - interval '1 minute'
                 LIMIT $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(PRUNE_BATCH)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let refresh_tokens = sqlx::query(
            "DELETE FROM refresh_tokens WHERE token_id IN (
                 SELECT token_id FROM refresh_tokens
                 WHERE expires_at < now() - interval '1 minute'
                 LIMIT $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(PRUNE_BATCH)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(revocations + refresh_tokens)
    }

    /// Sweeps expired rows every [`PRUNE_EVERY_WRITES`] session writes.
    async fn after_write(&self) {
        if self
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY_WRITES)
        {
            self.sweep().await;
        }
    }

    /// Sweeps expired rows. A failed sweep is logged, not the caller's problem: its own
    /// change is committed, and the next sweep catches up.
    async fn sweep(&self) {
        if let Err(err) = self.prune_expired().await {
            tracing::warn!(error = %err, "pruning expired tokens failed");
        }
    }

    async fn is_revoked(&self, token_id: Uuid) -> Result<bool, IdentityError> {
        self.revocations
            .is_revoked(token_id)
            .await
            .map_err(IdentityError::Internal)
    }

    /// When a valid access token stops being accepted, in seconds since the Unix epoch
    /// (what a stream opened with it lives until).
    pub fn access_expires_at(&self, token: &str) -> Result<i64, IdentityError> {
        Ok(self.verify_kind(token, TokenKind::Access)?.exp)
    }

    fn verify_kind(&self, token: &str, kind: TokenKind) -> Result<Claims, IdentityError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|_| IdentityError::InvalidToken)?;
        if claims.typ != kind {
            return Err(IdentityError::InvalidToken);
        }
        Ok(claims)
    }

    /// Signs a new access and refresh token and records the refresh token in `family` (a
    /// new family named after it when `None`), inside the caller's transaction so that it
    /// exists if and only if the caller's change commits.
    async fn open_session(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        role: Role,
        email: &str,
        family: Option<Uuid>,
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
            "INSERT INTO refresh_tokens
                 (token_id, family_id, user_id, issued_at, expires_at,
                  access_token_id, access_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(refresh.jti)
        .bind(family.unwrap_or(refresh.jti))
        .bind(user_id)
        .bind(timestamp(refresh.iat)?)
        .bind(timestamp(refresh.exp)?)
        .bind(access.jti)
        .bind(timestamp(access.exp)?)
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
            .get_or_try_init(|| self.hasher.hash(Uuid::new_v4().to_string()))
            .await?;
        Ok(hash)
    }
}

/// Revokes every refresh token of `family` and every access token they were issued with
/// that has not expired yet; answers how many access tokens were revoked.
async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<u64, IdentityError> {
    let revoked = sqlx::query(
        "WITH family AS (
             UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())
             WHERE family_id = $1
             RETURNING user_id, access_token_id, access_expires_at)
         INSERT INTO revoked_access_tokens (token_id, user_id, expires_at)
         SELECT access_token_id, user_id, access_expires_at FROM family
         WHERE access_token_id IS NOT NULL AND access_expires_at > now() - interval '1 minute'
         ON CONFLICT (token_id) DO NOTHING",
    )
    .bind(family)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(revoked)
}

fn timestamp(secs: i64) -> Result<DateTime<Utc>, IdentityError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| IdentityError::Internal(anyhow!("timestamp {secs} is out of range")))
}

fn parse_stored_role(name: &str) -> Result<Role, IdentityError> {
    Role::from_name(name)
        .ok_or_else(|| IdentityError::Internal(anyhow!("unknown role {name:?} in users")))
}
