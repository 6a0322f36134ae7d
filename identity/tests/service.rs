//! The identity service against a real Postgres: each test gets a fresh database with every
//! migration applied.

use std::sync::Arc;
use std::time::Duration;

use ordo_identity::{
    Claims, Email, FullName, IdentityConfig, IdentityError, IdentityService, JwtKeys, Password,
    Role, Session, TokenKind,
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
        let database = TestDatabase::create().await.expect("create a database");
        let pool = database.pool().await.expect("connect to it");
        ordo_schemas::MIGRATOR
            .run(&pool)
            .await
            .expect("run the migrations");
        let keys = JwtKeys::random();
        let identity = Arc::new(IdentityService::new(
            pool.clone(),
            keys.clone(),
            IdentityConfig::default(),
        ));
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
            .register(&email, &password, &name)
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
        .register(&email, &password, &FullName::parse("Ada").unwrap())
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
async fn ensure_admin_promotes_an_existing_user_and_keeps_the_password() {
    let test = TestIdentity::new().await;
    let customer = test.register("ada@example.com").await;
    let email = Email::parse("ada@example.com").unwrap();
    let other_password = Password::parse("not her password 7", &email).unwrap();

    let admin_id = test
        .identity
        .ensure_admin(&email, &other_password)
        .await
        .unwrap();
    assert_eq!(admin_id, customer.user_id);
    assert_eq!(test.role_of(admin_id).await, "admin");
    let session = test.login("ada@example.com", PASSWORD).await.unwrap();
    let caller = test.identity.verify_access(&session.access_token).unwrap();
    assert_eq!(caller.role, Role::Admin);
}
