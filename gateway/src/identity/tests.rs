//! The identity routes against a real Postgres: each test gets a fresh database with every
//! migration applied, and drives the router in-process. These tests prove the HTTP side
//! (statuses, problem types, the extractor); the service's own rules are tested in the
//! `ordo-identity` crate.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tower::ServiceExt as _;
use uuid::Uuid;

use ordo_identity::{Claims, IdentityConfig, IdentityService, JwtKeys, TokenKind};

use super::*;
use crate::problem::ApiError;

const PASSWORD: &str = "correct horse 9";

/// The identity routes over a database of their own, plus two probe routes that use the
/// [`AuthUser`] extractor the way other modules will.
struct TestApp {
    db_name: String,
    pool: PgPool,
    /// The keys the app signs with, to build tokens it should accept but for one flaw.
    keys: JwtKeys,
    router: Router,
}

impl TestApp {
    async fn spawn() -> Self {
        let db_name = format!("ordo_test_{}", Uuid::new_v4().simple());
        let server = PgPool::connect(&ordo_tests::admin_database_url())
            .await
            .expect("connect to the Postgres server");
        sqlx::query(&format!("CREATE DATABASE {db_name}"))
            .execute(&server)
            .await
            .expect("create the test database");
        server.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect(&ordo_tests::database_url(&db_name))
            .await
            .expect("connect to the test database");
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
        let api = router::<Arc<IdentityService>>()
            .route("/me", get(me))
            .route("/admin-only", get(admin_only));
        let router = Router::new().nest("/api/v1", api).with_state(identity);
        TestApp {
            db_name,
            pool,
            keys,
            router,
        }
    }

    /// Drops the database; a failed test leaves it behind for inspection.
    async fn cleanup(self) {
        self.pool.close().await;
        let server = PgPool::connect(&ordo_tests::admin_database_url())
            .await
            .expect("connect to the Postgres server");
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.db_name))
            .execute(&server)
            .await
            .expect("drop the test database");
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Option<String>, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, content_type, body)
    }

    async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Option<String>, Value) {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1{path}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.post_raw(path, &body.to_string()).await;
        (status, body)
    }

    async fn get(&self, path: &str, authorization: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().uri(format!("/api/v1{path}"));
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let (status, _, body) = self.send(request.body(Body::empty()).unwrap()).await;
        (status, body)
    }

    async fn register(&self, email: &str) -> SessionResponse {
        let (status, body) = self
            .post(
                "/auth/register",
                json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        serde_json::from_value(body).unwrap()
    }
}

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({"user_id": user.user_id, "email": user.email, "role": user.role}))
}

async fn admin_only(user: AuthUser) -> Result<StatusCode, ApiError> {
    user.require_role(Role::Admin)?;
    Ok(StatusCode::NO_CONTENT)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn problem_type(body: &Value) -> &str {
    body["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn register_refuses_duplicate_email() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;

    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "  ADA@example.COM", "password": "another one 2", "full_name": "Ada"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem_type(&body), "urn:ordo:problem:email_taken");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn register_refuses_weak_password() {
    let app = TestApp::spawn().await;
    let (status, content_type, body) = app
        .post_raw(
            "/auth/register",
            &json!({"email": "ada@example.com", "password": "abcdefgh", "full_name": "Ada"})
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(problem_type(&body), "urn:ordo:problem:validation_failed");
    assert_eq!(body["field"], "password");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("one letter and one digit"),
        "{body}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn register_refuses_bad_email() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "ada-at-example.com", "password": PASSWORD, "full_name": "Ada"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "email");
    app.cleanup().await;
}

#[tokio::test]
async fn register_refuses_malformed_json() {
    let app = TestApp::spawn().await;
    let (status, content_type, body) = app
        .post_raw("/auth/register", r#"{"email": "ada@example.com","#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(problem_type(&body), "urn:ordo:problem:malformed_request");
    app.cleanup().await;
}

#[tokio::test]
async fn register_refuses_missing_field() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem_type(&body), "urn:ordo:problem:validation_failed");
    assert!(
        body["detail"].as_str().unwrap().contains("full_name"),
        "{body}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn login_opens_a_session_for_the_right_password() {
    let app = TestApp::spawn().await;
    let registered = app.register("ada@example.com").await;

    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session: SessionResponse = serde_json::from_value(body).unwrap();
    assert_eq!(session.user_id, registered.user_id);
    let (status, me) = app.get("/me", Some(&bearer(&session.access_token))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "ada@example.com");
    app.cleanup().await;
}

#[tokio::test]
async fn login_refuses_wrong_password() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "ada@example.com", "password": "wrong horse 9"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "invalid credentials");
    app.cleanup().await;
}

#[tokio::test]
async fn login_answers_unknown_email_like_wrong_password() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    let wrong_password = app
        .post(
            "/auth/login",
            json!({"email": "ada@example.com", "password": "wrong horse 9"}),
        )
        .await;
    let unknown_email = app
        .post(
            "/auth/login",
            json!({"email": "grace@example.com", "password": PASSWORD}),
        )
        .await;
    let malformed_email = app
        .post(
            "/auth/login",
            json!({"email": "grace", "password": PASSWORD}),
        )
        .await;
    assert_eq!(unknown_email.0, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email, wrong_password);
    assert_eq!(malformed_email, wrong_password);
    app.cleanup().await;
}

#[tokio::test]
async fn refresh_rotates_and_refuses_reuse() {
    let app = TestApp::spawn().await;
    let first = app.register("ada@example.com").await;

    let (status, body) = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": first.refresh_token}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second: SessionResponse = serde_json::from_value(body).unwrap();
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    let (status, _) = app.get("/me", Some(&bearer(&second.access_token))).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": first.refresh_token}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem_type(&body), "urn:ordo:problem:unauthorized");

    // The reuse revoked the family: the rotated tokens stop working too.
    let (status, _) = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": second.refresh_token}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/me", Some(&bearer(&second.access_token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[tokio::test]
async fn logout_asks_for_the_bearer_first_then_revokes_the_session() {
    let app = TestApp::spawn().await;
    let session = app.register("ada@example.com").await;

    // No bearer: 401, even with a body that would not parse.
    let (status, _) = app.post("/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/logout")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, bearer(&session.access_token))
        .body(Body::from(
            json!({"refresh_token": session.refresh_token}).to_string(),
        ))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, _) = app.get("/me", Some(&bearer(&session.access_token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": session.refresh_token}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[tokio::test]
async fn auth_user_refuses_missing_forged_expired_and_refresh_tokens() {
    let app = TestApp::spawn().await;
    let session = app.register("ada@example.com").await;

    let (status, body) = app.get("/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "missing bearer token");

    let (status, _) = app.get("/me", Some("Basic YWRhOnB3")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = app.get("/me", Some("Bearer garbage")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let now = chrono::Utc::now().timestamp();
    let forged = JwtKeys::random()
        .sign(&Claims::new(
            session.user_id,
            Role::Admin,
            "ada@example.com",
            TokenKind::Access,
            now,
            Duration::from_secs(600),
        ))
        .unwrap();
    let (status, _) = app.get("/admin-only", Some(&bearer(&forged))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = app.get("/me", Some(&bearer(&session.refresh_token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Signed with the right key, but an hour past its expiry.
    let expired = app
        .keys
        .sign(&Claims::new(
            session.user_id,
            Role::Customer,
            "ada@example.com",
            TokenKind::Access,
            now - 7200,
            Duration::from_secs(3600),
        ))
        .unwrap();
    let (status, _) = app.get("/me", Some(&bearer(&expired))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The same token, unexpired, passes: the refusals above are not an accident.
    let fine = app
        .keys
        .sign(&Claims::new(
            session.user_id,
            Role::Customer,
            "ada@example.com",
            TokenKind::Access,
            now,
            Duration::from_secs(3600),
        ))
        .unwrap();
    let (status, _) = app.get("/me", Some(&bearer(&fine))).await;
    assert_eq!(status, StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn require_role_forbids_customer_asking_for_admin() {
    let app = TestApp::spawn().await;
    let session = app.register("ada@example.com").await;
    let (status, body) = app
        .get("/admin-only", Some(&bearer(&session.access_token)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem_type(&body), "urn:ordo:problem:forbidden");
    app.cleanup().await;
}

#[test]
fn openapi_lists_the_auth_paths() {
    let doc = openapi();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
    ] {
        assert!(doc.paths.paths.contains_key(path), "{path} missing");
    }
    let components = doc.components.expect("components");
    assert!(components.schemas.contains_key("SessionResponse"));
    assert!(components.security_schemes.contains_key(BEARER_SCHEME));
}
