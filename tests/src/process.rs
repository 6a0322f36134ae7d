//! Ordo processes of the tests: a real `ordo serve` on a free port, started with the test's
//! database and namespace, killed or stopped with SIGTERM, restarted with other settings,
//! and `ordo` subcommands run with the same environment.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http::{Api, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::nats::nats_url;

/// How long a process has to answer `/readyz`, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
/// How many of the last lines a process wrote to standard error are kept, to explain an
/// early exit.
const STDERR_TAIL_LINES: usize = 40;

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
    /// The last lines the current run wrote to standard error.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Whether a start waits for `/readyz` (processes without the gateway role serve no
    /// HTTP API).
    serves_http: bool,
}

/// Settings of a spawned process.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Extra environment variables (ORDO_PAYMENT_TIMEOUT...).
    pub env: Vec<(String, String)>,
}

/// The environment every test process starts with; the test's own variables come after and
/// win.
fn base_env(database_url: &str, namespace: &str, port: u16) -> Vec<(String, String)> {
    vec![
        ("ORDO_DATABASE_URL".to_string(), database_url.to_string()),
        ("ORDO_NATS_URL".into(), nats_url()),
        ("ORDO_NATS_NAMESPACE".into(), namespace.to_string()),
        ("ORDO_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
        (
            "ORDO_JWT_SECRET".into(),
            "test-secret-test-secret-test-secret-0123".into(),
        ),
        // A restarted process must open the payment tokens its predecessor sealed.
        (
            "ORDO_PAYMENT_SECRET".into(),
            "test-payment-secret-0123456789".into(),
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
    ]
}

impl OrdoProcess {
    /// Starts `ordo serve` on a free port and waits until it is ready.
    pub async fn spawn(
        database_url: &str,
        namespace: &str,
        options: SpawnOptions,
    ) -> anyhow::Result<Self> {
        Self::launch(database_url, namespace, options.env, true).await
    }

    /// Starts `ordo serve` without waiting for an HTTP API: for processes whose roles
    /// (`ORDO_ROLES=relay`, `workers`) serve none.
    pub async fn spawn_without_http(
        database_url: &str,
        namespace: &str,
        options: SpawnOptions,
    ) -> anyhow::Result<Self> {
        Self::launch(database_url, namespace, options.env, false).await
    }

    async fn launch(
        database_url: &str,
        namespace: &str,
        extra_env: Vec<(String, String)>,
        serves_http: bool,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut env = base_env(database_url, namespace, port);
        // The test's own value wins; an empty one unsets the variable (Ordo's default).
        for (key, value) in extra_env {
            env.retain(|(k, _)| *k != key);
            if !value.is_empty() {
                env.push((key, value));
            }
        }
        let mut process = Self {
            child: None,
            base_url: format!("http://127.0.0.1:{port}"),
            database_url: database_url.to_string(),
            namespace: namespace.to_string(),
            env,
            port,
            stderr_tail: Arc::default(),
            serves_http,
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
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        self.stderr_tail = Arc::default();
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(keep_stderr_tail(stderr, self.stderr_tail.clone()));
        }
        self.child = Some(child);
        if !self.serves_http {
            return Ok(());
        }
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
                    // The reader may still hold the last lines.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let tail = self.stderr_tail();
                    anyhow::bail!("ordo serve exited early with {status}; it wrote:\n{tail}");
                }
            }
            if started.elapsed() > START_TIMEOUT {
                anyhow::bail!(
                    "ordo serve did not become ready on port {}; it wrote:\n{}",
                    self.port,
                    self.stderr_tail()
                );
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

    /// Sends SIGKILL without waiting for the exit (for `Drop`, which cannot await).
    pub(crate) fn start_kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow::anyhow!("not running"))?;
        let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
        let pid = Pid::from_raw(i32::try_from(pid)?);
        kill(pid, Signal::SIGTERM)?;
        Ok(tokio::time::timeout(STOP_TIMEOUT, child.wait()).await??)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The most memory it has held resident since it started (`VmHWM` of
    /// `/proc/<pid>/status`), in bytes; `None` when it is not running or the kernel does not
    /// say.
    pub fn peak_resident_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Sets (or, with an empty value, clears) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            self.env.push((key.to_string(), value.to_string()));
        }
    }

    /// The environment it starts with (the test's own variables last).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The last lines the current run wrote to standard error.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock().expect("stderr tail lock");
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs an `ordo` subcommand against this process's database and namespace; answers
    /// its exit success, standard output and standard error.
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

/// Reads a process's standard error to its end, keeping the last lines (and echoing every
/// line when `ORDO_TEST_LOG` asks for the processes' logs).
async fn keep_stderr_tail(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let echo = std::env::var("ORDO_TEST_LOG").is_ok();
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("{line}");
        }
        let mut tail = tail.lock().expect("stderr tail lock");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// The first port handed out; ports come from below the kernel's ephemeral range
/// (32768-60999), so no outgoing connection of another process (a Postgres or NATS client)
/// can take one between this check and the process's own bind.
const FIRST_TEST_PORT: u16 = 20_000;
const LAST_TEST_PORT: u16 = 32_000;

/// A port no one listens on, different in every test binary running at once (each starts
/// at an offset of its own process id and walks up).
pub fn free_port() -> anyhow::Result<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = LAST_TEST_PORT - FIRST_TEST_PORT;
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST_TEST_PORT + (offset + step) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port between {FIRST_TEST_PORT} and {LAST_TEST_PORT}")
}
