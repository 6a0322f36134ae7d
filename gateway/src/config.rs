//! Configuration: every setting comes from an environment variable (or the matching flag),
//! with defaults that run a single machine. The README lists them all.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Settings shared by every role of the `ordo` binary.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Postgres URL of the event store and read models.
    #[arg(
        long,
        env = "ORDO_DATABASE_URL",
        default_value = "postgres://ordo:ordo@127.0.0.1:5432/ordo"
    )]
    pub database_url: String,

    /// Largest number of Postgres connections this process opens.
    #[arg(long, env = "ORDO_DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,

    /// NATS server URL (JetStream must be enabled).
    #[arg(long, env = "ORDO_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Prefix of every stream and subject: streams are `<NS>_ORDER`..., subjects
    /// `<ns>.events.<type>.<id>.<Event>`. Two Ordo instances on one NATS server need two
    /// namespaces.
    #[arg(long, env = "ORDO_NATS_NAMESPACE", default_value = "ordo")]
    pub nats_namespace: String,

    /// Address the HTTP API listens on.
    #[arg(long, env = "ORDO_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Secret (at least 32 bytes) signing JWTs. Without it a random key is made at start.
    #[arg(long, env = "ORDO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Email of the admin created at start when missing.
    #[arg(long, env = "ORDO_BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,

    /// Password of that admin.
    #[arg(long, env = "ORDO_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<String>,

    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `ordo=debug,info`.
    #[arg(long, env = "ORDO_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// The longest a client may ask to wait with `Prefer: wait=N`.
    pub fn max_prefer_wait(&self) -> Duration {
        Duration::from_secs(30)
    }
}
