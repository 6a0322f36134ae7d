//! The HTTP side of the tests: a small client of the Ordo API (bearer token, JSON bodies,
//! headers) whose answers carry status, headers and a JSON body.

use serde_json::{json, Value};

/// Admin credentials every spawned Ordo bootstraps.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// The admin's password.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The password of every customer the tests register.
pub const CUSTOMER_PASSWORD: &str = "Secure-pass-123";

/// A small typed HTTP client of the Ordo API.
#[derive(Clone)]
pub struct Api {
    /// Base URL.
    pub base: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The bearer token, once logged in.
    pub token: Option<String>,
}

/// An HTTP answer: status, headers and JSON body (Null when empty).
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub body: Value,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl Api {
    /// Sends a request; `body` as JSON when given.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_send(method, path, body, headers)
            .await
            .expect("request sent")
    }

    /// Sends a request that the process may not live to answer (it is set to crash on the
    /// way): `None` when the connection broke before an answer came.
    pub async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Option<Answer> {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(Answer {
            status,
            headers,
            body,
        })
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    /// Registers a customer and returns a client logged in as them.
    pub async fn register(&self, email: &str) -> (Api, String) {
        self.register_as(email, "customer").await
    }

    /// Registers an account with `role` (`customer` or `provider`) and answers a client
    /// logged in as it, with its user id.
    pub async fn register_as(&self, email: &str, role: &str) -> (Api, String) {
        let full_name = if role == "provider" {
            "Test Provider"
        } else {
            "Test Customer"
        };
        let answer = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": CUSTOMER_PASSWORD, "full_name": full_name, "role": role}),
            )
            .await;
        assert_eq!(answer.status, 201, "register: {:?}", answer.body);
        let mut api = self.clone();
        api.token = answer.body["access_token"].as_str().map(str::to_string);
        (
            api,
            answer.body["user_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// A client logged in as the bootstrap admin.
    pub async fn admin(&self) -> Api {
        let answer = self
            .post(
                "/api/v1/auth/login",
                json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(answer.status, 200, "admin login: {:?}", answer.body);
        let mut api = self.clone();
        api.token = answer.body["access_token"].as_str().map(str::to_string);
        api
    }
}

/// Asserts that `answer` is a problem document (RFC 9457) with `status` and the type
/// `urn:ordo:problem:<code>`.
pub fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{:?}",
        answer.body
    );
    assert_eq!(
        answer.body["type"],
        format!("urn:ordo:problem:{code}"),
        "{:?}",
        answer.body
    );
}
