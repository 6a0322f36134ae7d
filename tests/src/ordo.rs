//! [`TestOrdo`]: a real `ordo serve` on a fresh database and NATS namespace, the one entry
//! point of every end-to-end test. It hands out HTTP clients (anonymous, admin, a
//! registered customer), runs `ordo` subcommands, starts more processes on the same
//! database and namespace, kills, stops and restarts them, and cleans up on `Drop`: the
//! processes are killed, the namespace's streams deleted, the scratch directory removed and
//! the database dropped, also when the test panics.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use sqlx::PgPool;

use crate::database::TestDatabase;
use crate::http::Api;
use crate::nats::{delete_streams_on, nats_url, stream_name, unique_namespace};
use crate::process::{OrdoProcess, SpawnOptions};

/// A running Ordo of one test: its process, database, namespace and scratch directory.
pub struct TestOrdo {
    process: OrdoProcess,
    pool: PgPool,
    namespace: String,
    nats_url: String,
    /// Whether the harness made the namespace up on the shared server, and so deletes its
    /// streams; a test bringing its own server and namespace cleans them itself.
    deletes_streams: bool,
    /// The test's own variables, for processes started beside the first one.
    env: Vec<(String, String)>,
    scratch_dir: PathBuf,
    cleaned_up: bool,
    nats: tokio::sync::OnceCell<async_nats::Client>,
    /// Declared last: dropped after `Drop::drop` has killed the processes.
    database: TestDatabase,
}

/// Settings of a [`TestOrdo`] before it starts.
pub struct TestOrdoBuilder {
    env: Vec<(String, String)>,
    namespace: String,
    nats: Option<String>,
    scratch_dir: PathBuf,
}

/// A registered customer, logged in: derefs to its [`Api`].
#[derive(Clone)]
pub struct Customer {
    /// The client logged in as the customer.
    pub api: Api,
    /// The customer's user id.
    pub user_id: String,
    /// The email the customer registered with.
    pub email: String,
}

impl Deref for Customer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestOrdoBuilder {
    /// Sets an environment variable of `ordo serve` (and of its CLI runs); an empty value
    /// unsets one the harness sets, leaving Ordo's default.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets several environment variables (later ones win).
    pub fn envs(mut self, variables: &[(&str, &str)]) -> Self {
        self.env.extend(
            variables
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self
    }

    /// The roles the process runs (`ORDO_ROLES`: `gateway`, `relay`, `workers`...).
    pub fn roles(self, roles: &str) -> Self {
        self.env("ORDO_ROLES", roles)
    }

    /// Uses a NATS server of the test's own and a namespace on it. The test owns both: the
    /// harness deletes no stream there.
    pub fn nats(mut self, url: &str, namespace: &str) -> Self {
        self.nats = Some(url.to_string());
        self.namespace = namespace.to_string();
        self
    }

    /// The namespace the process will use (settings may be derived from it).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A directory of the test's own (created at start, removed at the end) for files the
    /// process writes: mail spools, replay output...
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch_dir
    }

    /// Creates the database and starts `ordo serve`, waiting until it is ready.
    pub async fn start(self) -> TestOrdo {
        let database = TestDatabase::create().await.expect("test database created");
        let deletes_streams = self.nats.is_none();
        let nats_url = self.nats.unwrap_or_else(nats_url);
        let mut env = vec![("ORDO_NATS_URL".to_string(), nats_url.clone())];
        env.extend(self.env);
        std::fs::create_dir_all(&self.scratch_dir).expect("scratch directory created");
        let spawned = OrdoProcess::spawn(
            &database.url,
            &self.namespace,
            SpawnOptions { env: env.clone() },
        )
        .await;
        let process = match spawned {
            Ok(process) => process,
            Err(err) => {
                // What a process that failed to start left behind goes too.
                if deletes_streams {
                    delete_streams_on(&nats_url, &self.namespace).await;
                }
                let _ = std::fs::remove_dir_all(&self.scratch_dir);
                panic!("ordo serve starts: {err:#}");
            }
        };
        TestOrdo {
            process,
            pool: database.pool().await.expect("database pool"),
            namespace: self.namespace,
            nats_url,
            deletes_streams,
            env,
            scratch_dir: self.scratch_dir,
            cleaned_up: false,
            nats: tokio::sync::OnceCell::new(),
            database,
        }
    }
}

impl TestOrdo {
    /// Starts Ordo with the default settings.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Starts Ordo with these environment variables (`ORDO_BOOKING_TIMEOUT`...).
    pub async fn with_env(env: &[(&str, &str)]) -> Self {
        Self::builder().envs(env).start().await
    }

    /// Settings first, then [`TestOrdoBuilder::start`].
    pub fn builder() -> TestOrdoBuilder {
        let namespace = unique_namespace();
        let scratch_dir = std::env::temp_dir().join(format!("ordo-test-{namespace}"));
        TestOrdoBuilder {
            env: Vec::new(),
            namespace,
            nats: None,
            scratch_dir,
        }
    }

    /// An anonymous HTTP client.
    pub fn api(&self) -> Api {
        self.process.api()
    }

    /// A client logged in as the bootstrap admin.
    pub async fn admin(&self) -> Api {
        self.api().admin().await
    }

    /// Registers a customer with `email` and answers it logged in.
    pub async fn customer(&self, email: &str) -> Customer {
        let (api, user_id) = self.api().register(email).await;
        Customer {
            api,
            user_id,
            email: email.to_string(),
        }
    }

    /// A service provider registered with `email` (not verified yet), logged in.
    pub async fn provider(&self, email: &str) -> Customer {
        let (api, user_id) = self.api().register_as(email, "provider").await;
        Customer {
            api,
            user_id,
            email: email.to_string(),
        }
    }

    /// The base URL of the HTTP API.
    pub fn base_url(&self) -> &str {
        &self.process.base_url
    }

    /// The NATS namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The URL of the NATS server the process uses.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// A client of the NATS server the process uses (connected on first use).
    pub async fn nats(&self) -> async_nats::Client {
        self.nats
            .get_or_init(|| async {
                // A cluster's URLs are comma-separated, as ORDO_NATS_URL takes them.
                async_nats::connect(self.nats_url.split(',').collect::<Vec<_>>())
                    .await
                    .expect("connected to NATS")
            })
            .await
            .clone()
    }

    /// The name of the stream of `kind` (`ORDER`, `PAYMENT`...) in the namespace.
    pub fn stream_name(&self, kind: &str) -> String {
        stream_name(&self.namespace, kind)
    }

    /// The database.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// The database URL.
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// A pool on the database (five connections).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The test's scratch directory, removed at the end.
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch_dir
    }

    /// A path in the scratch directory, as text (for CLI arguments).
    pub fn scratch_file(&self, name: &str) -> String {
        self.scratch_dir.join(name).display().to_string()
    }

    /// Runs an `ordo` subcommand with the process's environment; answers its exit success,
    /// standard output and standard error.
    pub async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.process.cli(args).await
    }

    /// The first process.
    pub fn process(&self) -> &OrdoProcess {
        &self.process
    }

    /// The first process, to change and restart.
    pub fn process_mut(&mut self) -> &mut OrdoProcess {
        &mut self.process
    }

    /// Starts a second `ordo serve` on the same database and namespace with the test's
    /// settings, on a port of its own; it is killed when dropped.
    pub async fn spawn_another(&self) -> OrdoProcess {
        self.spawn_another_with(&[]).await
    }

    /// Like [`Self::spawn_another`], with more variables (which win over the test's).
    pub async fn spawn_another_with(&self, env: &[(&str, &str)]) -> OrdoProcess {
        self.try_spawn_another_with(env)
            .await
            .expect("another ordo serve starts")
    }

    /// Like [`Self::spawn_another_with`], answering the error when the process does not
    /// become ready: for a test that must see Ordo refuse to start with some settings.
    pub async fn try_spawn_another_with(
        &self,
        env: &[(&str, &str)],
    ) -> anyhow::Result<OrdoProcess> {
        OrdoProcess::spawn(
            &self.database.url,
            &self.namespace,
            SpawnOptions {
                env: self.env_with(env),
            },
        )
        .await
    }

    /// Starts `ordo serve` with `roles` that serve no HTTP API (`relay`, `workers`) on the
    /// same database and namespace, without waiting for readiness; killed when dropped.
    pub async fn spawn_role(&self, roles: &str, env: &[(&str, &str)]) -> OrdoProcess {
        let mut env = self.env_with(env);
        env.push(("ORDO_ROLES".into(), roles.into()));
        OrdoProcess::spawn_without_http(&self.database.url, &self.namespace, SpawnOptions { env })
            .await
            .expect("ordo serve starts")
    }

    /// Runs another `ordo serve` on the same database and namespace, on a free port, with
    /// only `env` beside those (none of the harness's defaults), and waits up to a minute for
    /// it to exit: for a test that must see Ordo refuse to start. Panics if it keeps serving.
    pub async fn serve_until_exit(&self, env: &[(&str, &str)]) -> std::process::Output {
        let port = crate::process::free_port().expect("a free port");
        let serve = tokio::process::Command::new(crate::process::ordo_binary())
            .arg("serve")
            .env("ORDO_DATABASE_URL", &self.database.url)
            .env("ORDO_NATS_URL", &self.nats_url)
            .env("ORDO_NATS_NAMESPACE", &self.namespace)
            .env("ORDO_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(std::time::Duration::from_secs(60), serve)
            .await
            .expect("ordo serve refuses to start instead of serving")
            .expect("ordo runs")
    }

    fn env_with(&self, env: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        all
    }

    /// Sets (or, with an empty value, clears) a variable for the next restart.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.process.set_env(key, value);
    }

    /// Kills the process with SIGKILL.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Stops the process with SIGTERM and answers its exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.process.terminate().await
    }

    /// Kills the process and starts it again on the same port, database and namespace.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart().await
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Ends the test: kills the process, deletes the streams, removes the scratch directory
    /// and drops the database.
    pub async fn stop(mut self) {
        self.pool.close().await;
        self.process.kill().await;
        if self.deletes_streams {
            delete_streams_on(&self.nats_url, &self.namespace).await;
        }
        let _ = std::fs::remove_dir_all(&self.scratch_dir);
        self.cleaned_up = true;
    }
}

impl Drop for TestOrdo {
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        self.process.start_kill();
        let _ = std::fs::remove_dir_all(&self.scratch_dir);
        if self.deletes_streams {
            let url = self.nats_url.clone();
            let namespace = self.namespace.clone();
            crate::run_detached(async move { delete_streams_on(&url, &namespace).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use sqlx::Connection;

    use super::*;
    use crate::database::admin_database_url;
    use crate::wait::eventually;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_test_that_panics_still_drops_its_database_streams_and_scratch_directory() {
        let (leftovers, left) = tokio::sync::oneshot::channel();
        let outcome = tokio::spawn(async move {
            let ordo = TestOrdo::start().await;
            let jetstream = async_nats::jetstream::new(ordo.nats().await);
            let stream = ordo.stream_name("ORDER");
            eventually("the order stream", Duration::from_secs(10), || async {
                jetstream.get_stream(&stream).await.ok().map(|_| ())
            })
            .await;
            assert!(ordo.scratch_dir().exists());
            let _ = leftovers.send((
                ordo.database().name.clone(),
                ordo.namespace().to_owned(),
                ordo.scratch_dir().to_owned(),
            ));
            panic!("the test fails with its Ordo running");
        })
        .await;
        assert!(outcome.expect_err("the test panicked").is_panic());
        let (database, namespace, scratch_dir) = left.await.expect("the test got that far");

        let mut conn = sqlx::PgConnection::connect(&admin_database_url())
            .await
            .unwrap();
        let databases: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
                .bind(&database)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(databases, 0, "database {database} dropped");

        let jetstream = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
        let prefix = format!("{}_", namespace.to_uppercase());
        let mut names = jetstream.stream_names();
        while let Some(name) = names.next().await {
            let name = name.unwrap();
            assert!(!name.starts_with(&prefix), "stream {name} deleted");
        }
        assert!(!scratch_dir.exists(), "{} removed", scratch_dir.display());
    }
}
