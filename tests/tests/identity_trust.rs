//! Identity's trust boundaries against a real `ordo serve`, each test with the attack it
//! stops: taking over the bootstrap admin by registering its email first, reusing a stolen
//! refresh token, using tokens after logout, and guessing one account's password.

use ordo_tests::{Api, TestOrdo};
use serde_json::{json, Value};

/// The password `Api::register` gives every customer.
const CUSTOMER_PASSWORD: &str = "Secure-pass-123";

/// Registers a customer; answers the register body (user_id and both tokens).
async fn register(ordo: &TestOrdo, email: &str) -> Value {
    let answer = ordo
        .api()
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": CUSTOMER_PASSWORD, "full_name": "Test Customer"}),
        )
        .await;
    assert_eq!(answer.status, 201, "register: {:?}", answer.body);
    answer.body
}

async fn refresh_with(ordo: &TestOrdo, refresh_token: &str) -> ordo_tests::Answer {
    ordo.api()
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh_token}),
        )
        .await
}

async fn login(ordo: &TestOrdo, email: &str, password: &str) -> ordo_tests::Answer {
    ordo.api()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
}

/// The status of an authenticated read with this access token on `api`'s process.
async fn status_with(api: &Api, access_token: &str) -> u16 {
    let mut api = api.clone();
    api.token = Some(access_token.to_string());
    api.get("/api/v1/orders").await.status
}

fn token(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
        .to_string()
}

#[tokio::test]
async fn bootstrap_admin_email_registered_first_stops_the_start_and_stays_a_customer() {
    let ordo = TestOrdo::start().await;
    // The attacker registers the address the operator is about to make admin.
    let attacker = register(&ordo, "boss@example.com").await;
    let user_id = token(&attacker, "user_id");

    // The operator starts Ordo with that address as bootstrap admin.
    let output = ordo
        .serve_until_exit(&[
            (
                "ORDO_JWT_SECRET",
                "test-secret-test-secret-test-secret-0123",
            ),
            ("ORDO_BOOTSTRAP_ADMIN_EMAIL", "Boss@Example.com"),
            ("ORDO_BOOTSTRAP_ADMIN_PASSWORD", "operator-password-1"),
            ("ORDO_LOG", "warn"),
        ])
        .await;
    assert!(!output.status.success(), "ordo serve must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reasons: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("refusing to start"))
        .collect();
    assert_eq!(reasons.len(), 1, "one line says why: {stderr}");
    assert!(
        reasons[0].contains("ORDO_BOOTSTRAP_ADMIN_EMAIL")
            && reasons[0].contains("boss@example.com")
            && reasons[0].contains("customer"),
        "{}",
        reasons[0]
    );

    // The account is still a customer with the attacker's password, not the operator's.
    let pool = ordo.pool();
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE user_id = $1::uuid")
        .bind(&user_id)
        .fetch_one(pool)
        .await
        .expect("the account");
    assert_eq!(role, "customer");
    assert_eq!(
        login(&ordo, "boss@example.com", "operator-password-1")
            .await
            .status,
        401
    );
    let login = login(&ordo, "boss@example.com", CUSTOMER_PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let mut attacker_api = ordo.api();
    attacker_api.token = Some(token(&login.body, "access_token"));
    assert_eq!(
        attacker_api
            .get("/api/v1/admin/sagas/00000000-0000-0000-0000-000000000000")
            .await
            .status,
        403,
        "a customer's token opens no admin route"
    );
    ordo.stop().await;
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let ordo = TestOrdo::start().await;
    let first = register(&ordo, "ada@example.com").await;
    let stolen = token(&first, "refresh_token");

    // The victim keeps refreshing; the thief holds the first refresh token.
    let second = refresh_with(&ordo, &stolen).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let third = refresh_with(&ordo, &token(&second.body, "refresh_token")).await;
    assert_eq!(third.status, 200, "{:?}", third.body);
    let latest_access = token(&third.body, "access_token");
    let latest_refresh = token(&third.body, "refresh_token");
    assert_eq!(status_with(&ordo.api(), &latest_access).await, 200);
    let other_session = login(&ordo, "ada@example.com", CUSTOMER_PASSWORD).await;
    assert_eq!(other_session.status, 200);

    // The thief presents the spent token: refused, and the family is revoked.
    assert_eq!(refresh_with(&ordo, &stolen).await.status, 401);
    assert_eq!(refresh_with(&ordo, &latest_refresh).await.status, 401);
    assert_eq!(status_with(&ordo.api(), &latest_access).await, 401);
    assert_eq!(
        status_with(&ordo.api(), &token(&first, "access_token")).await,
        401
    );
    // Another session of the same account is not part of that family.
    assert_eq!(
        status_with(&ordo.api(), &token(&other_session.body, "access_token")).await,
        200
    );
    ordo.stop().await;
}

#[tokio::test]
async fn logout_kills_the_access_token_and_the_refresh_family() {
    let ordo = TestOrdo::start().await;
    let session = register(&ordo, "ada@example.com").await;
    let rotated = refresh_with(&ordo, &token(&session, "refresh_token")).await;
    assert_eq!(rotated.status, 200);
    let access = token(&rotated.body, "access_token");
    let refresh = token(&rotated.body, "refresh_token");
    let other_session = login(&ordo, "ada@example.com", CUSTOMER_PASSWORD).await;
    assert_eq!(other_session.status, 200);
    assert_eq!(status_with(&ordo.api(), &access).await, 200);
    // A second instance on the same database, which must honour a logout made on the first.
    let mut second_instance = ordo.spawn_another().await;
    assert_eq!(status_with(&second_instance.api(), &access).await, 200);

    // Without a bearer token, logout is refused and nothing changes.
    let anonymous = ordo
        .api()
        .post("/api/v1/auth/logout", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(status_with(&ordo.api(), &access).await, 200);

    let mut api = ordo.api();
    api.token = Some(access.clone());
    let logout = api
        .post("/api/v1/auth/logout", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);

    assert_eq!(status_with(&ordo.api(), &access).await, 401);
    assert_eq!(
        status_with(&second_instance.api(), &access).await,
        401,
        "every instance refuses a revoked token"
    );
    second_instance.kill().await;
    assert_eq!(
        status_with(&ordo.api(), &token(&session, "access_token")).await,
        401,
        "the access token issued before the rotation belongs to the family"
    );
    assert_eq!(refresh_with(&ordo, &refresh).await.status, 401);
    let again = api
        .post("/api/v1/auth/logout", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(again.status, 401, "a revoked token cannot log out again");
    assert_eq!(
        status_with(&ordo.api(), &token(&other_session.body, "access_token")).await,
        200,
        "other sessions live on"
    );
    ordo.stop().await;
}

#[tokio::test]
async fn failed_logins_for_one_email_back_off_with_retry_after_while_others_log_in() {
    // A long first lock, so that the test cannot outlive it.
    let ordo = TestOrdo::with_env(&[
        ("ORDO_LOGIN_FAILURES_BEFORE_BACKOFF", "3"),
        ("ORDO_LOGIN_BACKOFF", "60s"),
    ])
    .await;
    register(&ordo, "ada@example.com").await;
    register(&ordo, "grace@example.com").await;

    for attempt in 1..=3 {
        let answer = login(&ordo, "ada@example.com", "guess-number-1").await;
        assert_eq!(answer.status, 401, "attempt {attempt}: {:?}", answer.body);
    }
    // Locked: even the right password is refused, with a wait.
    let locked = login(&ordo, "ada@example.com", CUSTOMER_PASSWORD).await;
    assert_eq!(locked.status, 429, "{:?}", locked.body);
    let retry_after: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(locked.body["type"], "urn:ordo:problem:rate_limited");

    // Another email, from the same client, still logs in.
    let grace = login(&ordo, "grace@example.com", CUSTOMER_PASSWORD).await;
    assert_eq!(grace.status, 200, "{:?}", grace.body);
    ordo.stop().await;
}
