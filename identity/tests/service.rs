//! The identity service against a real Postgres: each test gets a fresh database with every
//! migration applied.

use std::sync::Arc;
use std::time::Duration;

use ordo_identity::{
    Claims, Email, FullName, HasherBusy, IdentityConfig, IdentityError, IdentityService, JwtKeys,
    Password, Role, Session, SignupRole, TokenKind,
};
use ordo_tests::TestDatabase;
use sqlx::PgPool;
use uuid::Uuid;

const PASSWORD: &str = "correct horse 9";

/// A service over a database of its own, dropped with it.
struct TestIdentity {
    pool: PgPool,
    /// The keys the service signs with, to build tokens it should accept but for one flaw.
    keys: JwtKeys,
    identity: Arc<IdentityService>,
    _database: TestDatabase,
}

impl TestIdentity {
    async fn new() -> Self {
        Self::with_config(IdentityConfig::default()).await
    }

    async fn with_config(config: IdentityConfig) -> Self {
        let database = TestDatabase::create().await.expect("create a database");
        let pool = database.pool().await.expect("connect to it");
        ordo_schemas::MIGRATOR
            .run(&pool)
            .await
            .expect("run the migrations");
        let keys = JwtKeys::random();
        let identity = Arc::new(IdentityService::new(pool.clone(), keys.clone(), config));
        TestIdentity {
            pool,
            keys,
            identity,
            _database: database,
        }
    }

    async fn register(&self, email: &str) -> Session {
        let email = Email::parse(email).unwrap();
        let password = Password::parse(PASSWORD, &email).unwrap();
        let name = FullName::parse("Ada Lovelace").unwrap();
        self.identity
            .register(&email, &password, &name, SignupRole::Customer)
            .await
            .expect("register")
    }

    async fn login(&self, email: &str, password: &str) -> Result<Session, IdentityError> {
        self.identity
            .login(&Email::parse(email).unwrap(), password)
            .await
    }

    async fn role_of(&self, user_id: Uuid) -> String {
        sqlx::query_scalar("SELECT role FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn admin_credentials() -> (Email, Password) {
    let email = Email::parse("root@example.com").unwrap();
    let password = Password::parse("admin password 1", &email).unwrap();
    (email, password)
}

#[tokio::test]
async fn register_creates_a_customer_with_an_argon2id_hash() {
    let test = TestIdentity::new().await;
    let session = test.register("Ada@Example.com").await;

    let (email, hash, role): (String, String, String) =
        sqlx::query_as("SELECT email, password_hash, role FROM users WHERE user_id = $1")
            .bind(session.user_id)
            .fetch_one(&test.pool)
            .await
            .unwrap();
    assert_eq!(email, "ada@example.com");
    assert_eq!(role, "customer");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));

    let caller = test.identity.verify_access(&session.access_token).unwrap();
    assert_eq!(caller.user_id, session.user_id);
    assert_eq!(caller.email, "ada@example.com");
    assert_eq!(caller.role, Role::Customer);
}

#[tokio::test]
async fn register_refuses_a_taken_email_in_any_spelling() {
    let test = TestIdentity::new().await;
    test.register("ada@example.com").await;
    let email = Email::parse("  ADA@example.COM").unwrap();
    let password = Password::parse("another one 2", &email).unwrap();
    let result = test
        .identity
        .register(
            &email,
            &password,
            &FullName::parse("Ada").unwrap(),
            SignupRole::Customer,
        )
        .await;
    assert!(
        matches!(result, Err(IdentityError::EmailTaken)),
        "{result:?}"
    );
    assert_eq!(test.count("users").await, 1);
}

#[tokio::test]
async fn login_opens_a_session_for_the_right_password_only() {
    let test = TestIdentity::new().await;
    let registered = test.register("ada@example.com").await;

    let session = test.login("ADA@example.com", PASSWORD).await.unwrap();
    assert_eq!(session.user_id, registered.user_id);
    assert!(matches!(
        test.login("ada@example.com", "wrong horse 9").await,
        Err(IdentityError::InvalidCredentials)
    ));
    assert!(matches!(
        test.login("grace@example.com", PASSWORD).await,
        Err(IdentityError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let test = TestIdentity::new().await;
    let first = test.register("ada@example.com").await;

    let second = test.identity.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert!(test.identity.verify_access(&second.access_token).is_ok());
    assert!(matches!(
        test.identity.refresh(&first.refresh_token).await,
        Err(IdentityError::InvalidToken)
    ));
}

#[tokio::test]
async fn refresh_lets_only_one_of_two_concurrent_uses_win() {
    let test = TestIdentity::new().await;
    let session = test.register("ada@example.com").await;
    let (a, b) = tokio::join!(
        test.identity.refresh(&session.refresh_token),
        test.identity.refresh(&session.refresh_token),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "exactly one refresh must win"
    );
}

#[tokio::test]
async fn refresh_refuses_an_expired_token() {
    let test = TestIdentity::new().await;
    let session = test.register("ada@example.com").await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&test.pool)
        .await
        .unwrap();
    assert!(matches!(
        test.identity.refresh(&session.refresh_token).await,
        Err(IdentityError::InvalidToken)
    ));
}

#[tokio::test]
async fn refresh_refuses_forged_and_malformed_tokens() {
    let test = TestIdentity::new().await;
    let session = test.register("ada@example.com").await;
    // A refresh token for a real user and a recorded, unused jti, signed with another key.
    let mut claims = Claims::new(
        session.user_id,
        Role::Customer,
        "ada@example.com",
        TokenKind::Refresh,
        chrono::Utc::now().timestamp(),
        Duration::from_secs(3600),
    );
    claims.jti = sqlx::query_scalar("SELECT token_id FROM refresh_tokens")
        .fetch_one(&test.pool)
        .await
        .unwrap();
    let forged = JwtKeys::random().sign(&claims).unwrap();
    assert!(matches!(
        test.identity.refresh(&forged).await,
        Err(IdentityError::InvalidToken)
    ));
    assert!(matches!(
        test.identity.refresh("not.a.jwt").await,
        Err(IdentityError::InvalidToken)
    ));
    // The same claims under the right key pass: the refusal above is the signature's.
    let genuine = test.keys.sign(&claims).unwrap();
    assert!(test.identity.refresh(&genuine).await.is_ok());
}

#[tokio::test]
async fn refresh_refuses_an_access_token_and_access_refuses_a_refresh_token() {
    let test = TestIdentity::new().await;
    let session = test.register("ada@example.com").await;
    assert!(matches!(
        test.identity.refresh(&session.access_token).await,
        Err(IdentityError::InvalidToken)
    ));
    assert!(matches!(
        test.identity.verify_access(&session.refresh_token),
        Err(IdentityError::InvalidToken)
    ));
}

#[tokio::test]
async fn ensure_admin_is_idempotent() {
    let test = TestIdentity::new().await;
    let (email, password) = admin_credentials();

    let (first, second) = tokio::join!(
        test.identity.ensure_admin(&email, &password),
        test.identity.ensure_admin(&email, &password),
    );
    let first = first.unwrap();
    assert_eq!(second.unwrap(), first);
    assert_eq!(
        test.identity.ensure_admin(&email, &password).await.unwrap(),
        first
    );
    assert_eq!(test.count("users").await, 1);
    assert_eq!(test.role_of(first).await, "admin");

    let session = test
        .login("root@example.com", "admin password 1")
        .await
        .unwrap();
    let caller = test.identity.verify_access(&session.access_token).unwrap();
    assert!(caller.is_admin());
}

#[tokio::test]
async fn refresh_carries_a_role_granted_since_login() {
    let test = TestIdentity::new().await;
    let session = test.register("ada@example.com").await;
    sqlx::query("UPDATE users SET role = 'merchant' WHERE user_id = $1")
        .bind(session.user_id)
        .execute(&test.pool)
        .await
        .unwrap();

    let refreshed = test.identity.refresh(&session.refresh_token).await.unwrap();
    let caller = test
        .identity
        .verify_access(&refreshed.access_token)
        .unwrap();
    assert_eq!(caller.role, Role::Merchant);
}

#[tokio::test]
async fn ensure_admin_refuses_an_existing_customer_and_changes_nothing() {
    let test = TestIdentity::new().await;
    let customer = test.register("ada@example.com").await;
    let email = Email::parse("ada@example.com").unwrap();
    let other_password = Password::parse("not her password 7", &email).unwrap();

    let result = test.identity.ensure_admin(&email, &other_password).await;
    let Err(IdentityError::BootstrapAdminTaken { role, .. }) = result else {
        panic!("an existing customer must not become admin: {result:?}");
    };
    assert_eq!(role, Role::Customer);
    assert_eq!(test.role_of(customer.user_id).await, "customer");
    // Neither promoted nor re-keyed: her password still works, the configured one does not.
    assert!(test.login("ada@example.com", PASSWORD).await.is_ok());
    assert!(matches!(
        test.login("ada@example.com", "not her password 7").await,
        Err(IdentityError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn ensure_admin_leaves_an_existing_admin_and_its_password_alone() {
    let test = TestIdentity::new().await;
    let (email, password) = admin_credentials();
    let admin = test.identity.ensure_admin(&email, &password).await.unwrap();
    let new_password = Password::parse("another admin password 2", &email).unwrap();

    assert_eq!(
        test.identity
            .ensure_admin(&email, &new_password)
            .await
            .unwrap(),
        admin
    );
    assert!(test
        .login("root@example.com", "admin password 1")
        .await
        .is_ok());
    assert!(test
        .login("root@example.com", "another admin password 2")
        .await
        .is_err());
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_its_whole_family() {
    let test = TestIdentity::new().await;
    let first = test.register("ada@example.com").await;
    let second = test.identity.refresh(&first.refresh_token).await.unwrap();
    let third = test.identity.refresh(&second.refresh_token).await.unwrap();
    // Another session of the same account, which the reuse must not touch.
    let other = test.login("ada@example.com", PASSWORD).await.unwrap();
    assert!(test
        .identity
        .authenticate(&third.access_token)
        .await
        .is_ok());

    // The thief (or the victim) presents the spent first token again.
    assert!(matches!(
        test.identity.refresh(&first.refresh_token).await,
        Err(IdentityError::InvalidToken)
    ));
    // Every later token of that family is dead: refresh and access alike.
    assert!(matches!(
        test.identity.refresh(&third.refresh_token).await,
        Err(IdentityError::InvalidToken)
    ));
    for session in [&first, &second, &third] {
        assert!(matches!(
            test.identity.authenticate(&session.access_token).await,
            Err(IdentityError::InvalidToken)
        ));
    }
    assert!(test
        .identity
        .authenticate(&other.access_token)
        .await
        .is_ok());
    assert!(test.identity.refresh(&other.refresh_token).await.is_ok());
}

#[tokio::test]
async fn logout_revokes_the_access_token_and_the_refresh_family() {
    let test = TestIdentity::new().await;
    let first = test.register("ada@example.com").await;
    let second = test.identity.refresh(&first.refresh_token).await.unwrap();
    let other = test.login("ada@example.com", PASSWORD).await.unwrap();

    test.identity
        .logout(&second.access_token, Some(&second.refresh_token))
        .await
        .unwrap();

    assert!(matches!(
        test.identity.authenticate(&second.access_token).await,
        Err(IdentityError::InvalidToken)
    ));
    // The access token issued before the rotation belongs to the family too.
    assert!(matches!(
        test.identity.authenticate(&first.access_token).await,
        Err(IdentityError::InvalidToken)
    ));
    assert!(matches!(
        test.identity.refresh(&second.refresh_token).await,
        Err(IdentityError::InvalidToken)
    ));
    // A revoked token cannot log out again; the other session lives on.
    assert!(matches!(
        test.identity.logout(&second.access_token, None).await,
        Err(IdentityError::InvalidToken)
    ));
    assert!(test
        .identity
        .authenticate(&other.access_token)
        .await
        .is_ok());
    // verify_access checks only the signature: it is for keying rate limits, not entry.
    assert!(test.identity.verify_access(&second.access_token).is_ok());
}

#[tokio::test]
async fn logout_refuses_another_accounts_refresh_token_and_changes_nothing() {
    let test = TestIdentity::new().await;
    let ada = test.register("ada@example.com").await;
    let grace = test.register("grace@example.com").await;

    assert!(matches!(
        test.identity
            .logout(&ada.access_token, Some(&grace.refresh_token))
            .await,
        Err(IdentityError::InvalidToken)
    ));
    assert!(test.identity.authenticate(&ada.access_token).await.is_ok());
    assert!(test.identity.refresh(&grace.refresh_token).await.is_ok());
}

#[tokio::test]
async fn prune_deletes_only_expired_rows() {
    let test = TestIdentity::new().await;
    let old = test.register("ada@example.com").await;
    let fresh = test.register("grace@example.com").await;
    test.identity
        .logout(&old.access_token, Some(&old.refresh_token))
        .await
        .unwrap();
    test.identity
        .logout(&fresh.access_token, Some(&fresh.refresh_token))
        .await
        .unwrap();
    for table in ["refresh_tokens", "revoked_access_tokens"] {
        sqlx::query(&format!(
            "UPDATE {table} SET expires_at = now() - interval '1 hour' WHERE user_id = $1"
        ))
        .bind(old.user_id)
        .execute(&test.pool)
        .await
        .unwrap();
    }

    assert_eq!(test.identity.prune_expired().await.unwrap(), 2);
    assert_eq!(test.count("refresh_tokens").await, 1);
    assert_eq!(test.count("revoked_access_tokens").await, 1);
    // Grace's revocation is kept: her token has not expired yet.
    assert!(test
        .identity
        .authenticate(&fresh.access_token)
        .await
        .is_err());
}

#[tokio::test]
async fn repeated_failed_logins_lock_that_email_only() {
    let test = TestIdentity::with_config(IdentityConfig {
        login_free_failures: 3,
        login_first_lock: Duration::from_secs(60),
        ..IdentityConfig::default()
    })
    .await;
    test.register("ada@example.com").await;
    test.register("grace@example.com").await;

    for _ in 0..3 {
        assert!(matches!(
            test.login("ada@example.com", "wrong horse 9").await,
            Err(IdentityError::InvalidCredentials)
        ));
    }
    // Locked now, even with the right password and in another spelling.
    let Err(IdentityError::LoginLocked(locked)) = test.login("ADA@example.com", PASSWORD).await
    else {
        panic!("the address must be locked after three failures");
    };
    assert!((59..=60).contains(&locked.retry_after_secs()));
    assert!(test.login("grace@example.com", PASSWORD).await.is_ok());

    // Unknown addresses count the same way, so the lock tells nothing about accounts.
    for _ in 0..3 {
        let _ = test.login("nobody@example.com", PASSWORD).await;
    }
    assert!(matches!(
        test.login("nobody@example.com", PASSWORD).await,
        Err(IdentityError::LoginLocked(_))
    ));
}

#[tokio::test]
async fn hashing_beyond_the_slots_and_the_line_is_refused_as_busy() {
    let test = TestIdentity::with_config(IdentityConfig {
        hashing_permits: 1,
        hashing_max_waiting: 0,
        ..IdentityConfig::default()
    })
    .await;
    let emails: Vec<Email> = (0..3)
        .map(|i| Email::parse(&format!("user{i}@example.com")).unwrap())
        .collect();
    let name = FullName::parse("Someone").unwrap();
    let passwords: Vec<Password> = emails
        .iter()
        .map(|email| Password::parse(PASSWORD, email).unwrap())
        .collect();
    let (a, b, c) = tokio::join!(
        test.identity
            .register(&emails[0], &passwords[0], &name, SignupRole::Customer),
        test.identity
            .register(&emails[1], &passwords[1], &name, SignupRole::Customer),
        test.identity
            .register(&emails[2], &passwords[2], &name, SignupRole::Customer),
    );
    let results = [a, b, c];
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(IdentityError::Busy(HasherBusy))))
        .count();
    assert_eq!(busy, 2, "one hashes, nobody may wait: {results:?}");
    assert_eq!(test.count("users").await, 1);
}
