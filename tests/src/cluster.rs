//! Servers a fault run owns: a three-node nats-server cluster with JetStream on localhost,
//! and a private PostgreSQL cluster (initdb/pg_ctl on a port of its own), both in a scratch
//! directory removed at the end. They are started, killed and restarted at will, which the
//! shared servers of the other tests must never be.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::wait::eventually;

use crate::process::free_port;

/// The nats-server binary: `NATS_SERVER`, else Debian's, else the one on the PATH.
pub fn nats_server_binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| {
        if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".into()
        } else {
            "nats-server".into()
        }
    })
}

struct Node {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A three-node JetStream cluster on 127.0.0.1, killed and removed when dropped.
pub struct NatsCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts three nodes and waits until JetStream is healthy on each.
    pub async fn start() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("ordo-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut ports = Vec::new();
        for _ in 0..3 {
            ports.push((free_port()?, free_port()?, free_port()?));
        }
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route, _)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, route, monitor)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.join(&name);
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: ordo-faults, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )?;
            nodes.push(Node {
                log: dir.join(format!("{name}.log")),
                name,
                client_port: *client,
                monitor_port: *monitor,
                config,
                store,
                child: None,
            });
        }
        let mut cluster = Self { dir, nodes };
        for i in 0..3 {
            cluster.spawn(i)?;
        }
        cluster.wait_healthy().await;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting nats-server {}", node.name))?;
        node.child = Some(child);
        Ok(())
    }

    /// The client URLs of the three nodes, comma-separated (`ORDO_NATS_URL`).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URL of node `i` alone.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The node with the most client connections (the one Ordo is on, when it runs alone).
    pub async fn busiest_node(&self) -> usize {
        let mut best = (0, 0);
        for (i, node) in self.nodes.iter().enumerate() {
            let url = format!("http://127.0.0.1:{}/varz", node.monitor_port);
            let connections = match reqwest::get(&url).await {
                Ok(response) => response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["connections"].as_u64())
                    .unwrap_or(0),
                Err(_) => 0,
            };
            if connections > best.1 {
                best = (i, connections);
            }
        }
        best.0
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again (with whatever its store holds) and waits until it is healthy.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_healthy().await;
        Ok(())
    }

    /// Kills every node, deletes every JetStream store, and starts the cluster again: all
    /// streams and consumers are gone.
    pub async fn restart_wiped(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        for node in &self.nodes {
            let _ = std::fs::remove_dir_all(&node.store);
        }
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        self.wait_healthy().await;
        Ok(())
    }

    /// Waits until every running node reports JetStream healthy (`/healthz`).
    pub async fn wait_healthy(&self) {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let url = format!("http://127.0.0.1:{}/healthz", node.monitor_port);
            let what = format!("nats-server {} healthy", node.name);
            eventually(&what, Duration::from_secs(60), || {
                let url = url.clone();
                async move {
                    let response = reqwest::get(&url).await.ok()?;
                    response.status().is_success().then_some(())
                }
            })
            .await;
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::env::var_os("ORDO_FAULTS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A PostgreSQL cluster of its own (initdb, pg_ctl) on a free port, owned by the
/// `postgres` user when run as root; stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
}

/// The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`).
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return dir.into();
    }
    for version in ["17", "16", "15", "14", "13"] {
        let dir = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    PathBuf::new()
}

fn is_root() -> bool {
    nix_like_uid() == 0
}

fn nix_like_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1)
}

impl PrivatePostgres {
    /// Creates and starts the cluster (trust authentication, superuser `postgres`).
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ordo-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let data = dir.join("data");
        let port = free_port()?;
        let pg = Self { dir, data, port };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&pg.dir)
                .status()?;
            anyhow::ensure!(status.success(), "chown of {} failed", pg.dir.display());
        }
        pg.pg(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        std::fs::write(
            pg.data.join("postgresql.auto.conf"),
            format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 max_connections = 200\nfsync = off\n",
                pg.dir.display()
            ),
        )?;
        pg.start_server().await?;
        Ok(pg)
    }

    /// The superuser URL of its `postgres` database (`ORDO_TEST_DATABASE_URL`).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = pg_bin().join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = command
            .status()
            .with_context(|| format!("running {}", path.display()))?;
        anyhow::ensure!(status.success(), "{} {args:?} failed", path.display());
        Ok(())
    }

    async fn start_server(&self) -> anyhow::Result<()> {
        let log = self.dir.join("postgres.log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-l",
                &log,
                "-w",
                "start",
            ],
        )?;
        Ok(())
    }

    /// Stops the server at once (`-m immediate`: no shutdown checkpoint, as in a crash).
    pub fn crash(&self) -> anyhow::Result<()> {
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
    }

    /// Starts it again after [`crash`](Self::crash) (crash recovery runs first).
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.start_server().await
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
