//! The test harness of Ordo's end-to-end tests: a fresh database and NATS namespace per
//! test, a real `ordo serve` process on a free port, typed HTTP helpers, and bounded polls
//! for conditions (never a bare sleep as proof).
#![forbid(unsafe_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// Admin credentials every spawned Ordo bootstraps.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// The admin's password.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The server URL tests create databases on (a role with CREATEDB).
pub fn admin_database_url() -> String {
    std::env::var("ORDO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The NATS server of the tests.
pub fn nats_url() -> String {
    std::env::var("ORDO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A database made for one test, dropped when the test ends.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database.
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = admin_database_url();
        let name = format!("ordo_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let mut url = url_with_database(&admin_url, &name);
        if !url.contains('?') {
            url.push_str("?application_name=ordo-test");
        }
        Ok(Self { name, url })
    }

    /// A pool on it.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        self.pool_of(5).await
    }

    /// A pool on it with at most `max_connections` connections.
    pub async fn pool_of(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&self.url)
            .await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = admin_database_url();
        // Dropped from a plain thread: Drop may run inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The URL of database `database` on the test server.
pub fn database_url(database: &str) -> String {
    url_with_database(&admin_database_url(), database)
}

fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A NATS namespace no other test uses.
pub fn unique_namespace() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// Deletes every stream of a namespace (end-of-test cleanup).
pub async fn delete_streams(namespace: &str) {
    let Ok(client) = async_nats::connect(nats_url()).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let prefix = format!("{}_", namespace.to_uppercase());
    use futures::StreamExt;
    let mut names = js.stream_names();
    let mut doomed = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        if name.starts_with(&prefix) {
            doomed.push(name);
        }
    }
    for name in doomed {
        let _ = js.delete_stream(&name).await;
    }
}

/// Polls `check` until it answers `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `ordo` binary built beside the test executable.
pub fn ordo_binary() -> PathBuf {
    if let Ok(path) = std::env::var("ORDO_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/ordo
    let profile_dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let candidate = profile_dir.join("ordo");
    assert!(
        candidate.exists(),
        "{} is missing: build it first (cargo build -p ordo-gateway --bin ordo)",
        candidate.display()
    );
    candidate
}

/// A running `ordo serve` process with its own database and namespace.
pub struct OrdoProcess {
    child: Option<Child>,
    /// Base URL of its HTTP API, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    /// Its database (shared by processes of the same test).
    pub database_url: String,
    /// Its NATS namespace.
    pub namespace: String,
    env: Vec<(String, String)>,
    port: u16,
}

/// Settings of a spawned process.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Extra environment variables (ORDO_PAYMENT_TIMEOUT...).
    pub env: Vec<(String, String)>,
}

impl OrdoProcess {
    /// Starts `ordo serve` on a free port and waits until it is ready.
    pub async fn spawn(
        database_url: &str,
        namespace: &str,
        options: SpawnOptions,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut env = vec![
            ("ORDO_DATABASE_URL".to_string(), database_url.to_string()),
            ("ORDO_NATS_URL".into(), nats_url()),
            ("ORDO_NATS_NAMESPACE".into(), namespace.to_string()),
            ("ORDO_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            (
                "ORDO_JWT_SECRET".into(),
                "test-secret-test-secret-test-secret-0123".into(),
            ),
            ("ORDO_BOOTSTRAP_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
            (
                "ORDO_BOOTSTRAP_ADMIN_PASSWORD".into(),
                ADMIN_PASSWORD.into(),
            ),
            ("ORDO_DATABASE_MAX_CONNECTIONS".into(), "20".into()),
            // Tests run several processes at once on one Postgres: fewer lanes each.
            ("ORDO_CONSUMER_LANES".into(), "4".into()),
            // Every test client is 127.0.0.1 and polls; tests of the limits set their own.
            ("ORDO_RATE_LIMIT_PER_IP".into(), "0".into()),
            ("ORDO_RATE_LIMIT_PER_USER".into(), "0".into()),
            // Events in flight when a test kills the process come back quickly.
            ("ORDO_CONSUMER_ACK_WAIT".into(), "3s".into()),
            // The sandbox payment provider is off unless asked for; the tests pay with it.
            ("ORDO_SANDBOX_PROVIDER".into(), "true".into()),
            (
                "ORDO_LOG".into(),
                std::env::var("ORDO_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        env.extend(options.env);
        let mut process = Self {
            child: None,
            base_url: format!("http://127.0.0.1:{port}"),
            database_url: database_url.to_string(),
            namespace: namespace.to_string(),
            env,
            port,
        };
        process.start().await?;
        Ok(process)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(ordo_binary());
        command
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(if std::env::var("ORDO_TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        self.child = Some(command.spawn()?);
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.base_url);
        let started = Instant::now();
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("ordo serve exited early with {status}");
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("ordo serve did not become ready on port {}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow::anyhow!("not running"))?;
        let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))? as i32;
        // The kill command avoids unsafe libc calls.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        Ok(tokio::time::timeout(Duration::from_secs(40), child.wait()).await??)
    }

    /// Sets (or, with an empty value, clears) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            self.env.push((key.to_string(), value.to_string()));
        }
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs an `ordo` subcommand against this process's database and namespace; answers
    /// its exit success and standard output.
    pub async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(ordo_binary())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .expect("ordo runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    }

    /// Starts it again on the same port, database and namespace.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.start().await
    }

    /// An HTTP client bound to this process.
    pub fn api(&self) -> Api {
        Api {
            base: self.base_url.clone(),
            client: reqwest::Client::new(),
            token: None,
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

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
        let answer = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": "Secure-pass-123", "full_name": "Test Customer"}),
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
