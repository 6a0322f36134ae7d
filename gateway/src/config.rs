//! Configuration: every setting comes from an environment variable (or the matching flag),
//! with defaults that run a single machine. The README lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;
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

    /// NATS server URL (JetStream must be enabled); for a cluster, several URLs separated
    /// by commas (`nats://10.0.0.11:4222,nats://10.0.0.12:4222,nats://10.0.0.13:4222`).
    #[arg(long, env = "ORDO_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Prefix of every stream and subject: streams are `<NS>_ORDER`..., subjects
    /// `<ns>.events.<type>.<id>.<Event>`. Two Ordo instances on one NATS server need two
    /// namespaces.
    #[arg(long, env = "ORDO_NATS_NAMESPACE", default_value = "ordo")]
    pub nats_namespace: String,

    /// NATS user name, with ORDO_NATS_PASSWORD (the users of nats/server/ordo.conf).
    /// Without any NATS credential Ordo connects anonymously.
    #[arg(long, env = "ORDO_NATS_USER", requires = "nats_password")]
    pub nats_user: Option<String>,

    /// Password of ORDO_NATS_USER.
    #[arg(
        long,
        env = "ORDO_NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub nats_password: Option<String>,

    /// File holding the nkey seed (`SU...`) of a NATS user the server knows by its public
    /// key, instead of a user and password.
    #[arg(long, env = "ORDO_NATS_NKEY_SEED_FILE", conflicts_with_all = ["nats_user", "nats_credentials"])]
    pub nats_nkey_seed_file: Option<PathBuf>,

    /// NATS credentials file (`.creds`: a user JWT and its seed), for servers that use
    /// decentralized (operator/account) authorization.
    #[arg(long, env = "ORDO_NATS_CREDENTIALS", conflicts_with = "nats_user")]
    pub nats_credentials: Option<PathBuf>,

    /// Address the HTTP API listens on.
    #[arg(long, env = "ORDO_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Secret (at least 32 bytes) signing JWTs. Without it a random key is made at start.
    #[arg(long, env = "ORDO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Email of the admin created at start when missing. An existing admin with it is left
    /// as it is; an existing account of another role stops the start (it is never
    /// promoted).
    #[arg(long, env = "ORDO_BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,

    /// Password of that admin.
    #[arg(long, env = "ORDO_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<String>,

    /// Secret the payment provider signs its callbacks with (HMAC-SHA256 over a timestamp
    /// and the body), as the provider issued it; at least 16 characters. Without it a
    /// random one is made at start (fine for one process with the sandbox).
    #[arg(long, env = "ORDO_PAYMENT_SECRET", hide_env_values = true)]
    pub payment_secret: Option<String>,

    /// The URL at which the payment provider reaches this gateway (callbacks); defaults to
    /// `http://<ORDO_HTTP_ADDR>`.
    #[arg(long, env = "ORDO_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Base URL of the payment provider's API; defaults to this gateway's sandbox provider
    /// (`<public url>/sandbox/provider`).
    #[arg(long, env = "ORDO_PAYMENT_PROVIDER_URL")]
    pub payment_provider_url: Option<String>,

    /// Serve the sandbox payment provider under /sandbox/provider (demos and tests only;
    /// off by default). Ordo refuses to start with it on and a provider URL that is
    /// neither this gateway nor a loopback address.
    #[arg(long, env = "ORDO_SANDBOX_PROVIDER", default_value_t = false, action = clap::ArgAction::Set)]
    pub sandbox_provider: bool,

    /// The secret the sandbox provider signs its callbacks with; it must be the one Ordo
    /// verifies them with (ORDO_PAYMENT_SECRET), which it defaults to.
    #[arg(long, env = "ORDO_SANDBOX_SECRET", hide_env_values = true)]
    pub sandbox_secret: Option<String>,

    /// How long the sandbox provider waits before answering a charge (e.g. 200ms, 0).
    #[arg(long, env = "ORDO_SANDBOX_DELAY", default_value = "200ms", value_parser = parse_duration)]
    pub sandbox_delay: Duration,

    /// Most charges the sandbox provider remembers; the oldest are forgotten first.
    #[arg(long, env = "ORDO_SANDBOX_MAX_CHARGES", default_value_t = 10_000)]
    pub sandbox_max_charges: usize,

    /// How long the sandbox carrier (on with ORDO_SANDBOX_PROVIDER) waits before each
    /// tracking update of a parcel it follows: in transit, then delivered (e.g. 1s, 200ms).
    #[arg(long, env = "ORDO_SANDBOX_CARRIER_DELAY", default_value = "1s", value_parser = parse_duration)]
    pub sandbox_carrier_delay: Duration,

    /// The secret carriers sign their tracking updates with (default: ORDO_PAYMENT_SECRET).
    #[arg(long, env = "ORDO_CARRIER_SECRET", hide_env_values = true)]
    pub carrier_secret: Option<String>,

    /// Elasticsearch (or OpenSearch) URL for search, e.g. `http://127.0.0.1:9200`; without
    /// it search is answered by Postgres.
    #[arg(long, env = "ORDO_ELASTICSEARCH_URL")]
    pub elasticsearch_url: Option<String>,
    /// First part of the Elasticsearch index and alias names: `<prefix>-products`,
    /// `<prefix>-shows` (lowercase letters, digits, `-` and `_`), so that several Ordo
    /// installations can share a cluster.
    #[arg(long, env = "ORDO_ELASTICSEARCH_INDEX_PREFIX", default_value = "ordo")]
    pub elasticsearch_index_prefix: String,

    /// Directory the email copies of notifications are written to
    /// (default `$HOME/.local/state/ordo/mail`).
    #[arg(long, env = "ORDO_MAIL_SPOOL_DIR")]
    pub mail_spool_dir: Option<std::path::PathBuf>,
    /// How long seats of a booking are held waiting for payment (e.g. 15m, 30s).
    #[arg(long, env = "ORDO_BOOKING_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    pub booking_timeout: Duration,
    /// How long a service order marked done waits for its customer's confirmation before
    /// it confirms itself and its escrow is paid out (e.g. 3d, 72h, 30s).
    #[arg(long, env = "ORDO_SERVICE_CONFIRM_AFTER", default_value = "3d", value_parser = parse_duration)]
    pub service_confirm_after: Duration,
    /// How long after delivery a customer may ask for a refund, a return or an exchange
    /// (e.g. 7d, 48h).
    #[arg(long, env = "ORDO_AFTERSALES_WINDOW", default_value = "7d", value_parser = parse_duration)]
    pub aftersales_window: Duration,
    /// Sensitive words, comma-separated: a review holding one waits for an admin.
    #[arg(long, env = "ORDO_REVIEW_BLOCKED_WORDS", default_value = "")]
    pub review_blocked_words: String,
    /// Reports that hide a published review until an admin decides.
    #[arg(long, env = "ORDO_REVIEW_HIDE_AFTER_REPORTS", default_value_t = 3)]
    pub review_hide_after_reports: u32,

    /// Events between two snapshots of an inventory item (a SKU or a seat area), which then
    /// loads from its latest snapshot and the events after it; 0 turns snapshots off.
    #[arg(long, env = "ORDO_SNAPSHOT_EVERY", default_value_t = 500)]
    pub snapshot_every: usize,

    /// Currency (ISO 4217) of a seat area whose request names none.
    #[arg(long, env = "ORDO_DEFAULT_CURRENCY", default_value = "CNY")]
    pub default_currency: String,

    /// Most seats (tickets) one booking may take.
    #[arg(long, env = "ORDO_MAX_TICKETS_PER_BOOKING", default_value_t = 6)]
    pub max_tickets_per_booking: u32,

    /// Secret (at least 16 bytes) signing the tickets' QR payloads (HMAC-SHA256). Without
    /// it a random one is made at start: tickets then only verify within this process.
    #[arg(long, env = "ORDO_TICKET_SECRET", hide_env_values = true)]
    pub ticket_secret: Option<String>,

    /// Requests per second allowed per client IP (0 disables). The default is generous
    /// because local tools and tests all come from 127.0.0.1; a public deployment behind
    /// no other limiter would choose about 10 with a burst of 20.
    #[arg(long, env = "ORDO_RATE_LIMIT_PER_IP", default_value_t = 1000)]
    pub rate_limit_per_ip: u32,

    /// Burst allowed per client IP above its rate.
    #[arg(long, env = "ORDO_RATE_LIMIT_PER_IP_BURST", default_value_t = 2000)]
    pub rate_limit_per_ip_burst: u32,

    /// Requests per second allowed per authenticated user (0 disables).
    #[arg(long, env = "ORDO_RATE_LIMIT_PER_USER", default_value_t = 50)]
    pub rate_limit_per_user: u32,

    /// Burst allowed per authenticated user above its rate.
    #[arg(long, env = "ORDO_RATE_LIMIT_PER_USER_BURST", default_value_t = 100)]
    pub rate_limit_per_user_burst: u32,

    /// Password hashes (Argon2id, about 19 MiB each) computed at once; the number of cores
    /// this process may use when unset.
    #[arg(long, env = "ORDO_PASSWORD_HASHING_CONCURRENCY")]
    pub password_hashing_concurrency: Option<usize>,

    /// Registrations and logins that may wait for a hashing slot; beyond them, 503 with
    /// `Retry-After`.
    #[arg(long, env = "ORDO_PASSWORD_HASHING_QUEUE", default_value_t = 32)]
    pub password_hashing_queue: usize,

    /// Failed logins in a row an email address may have before it is locked (0 disables
    /// the per-email back-off).
    #[arg(long, env = "ORDO_LOGIN_FAILURES_BEFORE_BACKOFF", default_value_t = 5)]
    pub login_failures_before_backoff: u32,

    /// The first lock of an email address after those failures; each further failure
    /// doubles it, up to 15 minutes. Logins for a locked address answer 429 with
    /// `Retry-After`, even with the right password.
    #[arg(long, env = "ORDO_LOGIN_BACKOFF", default_value = "1s", value_parser = parse_duration)]
    pub login_backoff: Duration,

    /// Proxies whose `X-Forwarded-For` names the client, comma separated (CIDR networks
    /// or addresses, e.g. `10.0.0.0/8,192.0.2.1`). Without any, the header is ignored and
    /// the peer address is the client.
    #[arg(long, env = "ORDO_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = crate::rate_limit::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Notification streams (SSE) one user may hold open at once.
    #[arg(long, env = "ORDO_SSE_PER_USER", default_value_t = 4)]
    pub sse_per_user: usize,

    /// Notification streams (SSE) this process holds open at once, all users together.
    #[arg(long, env = "ORDO_SSE_MAX", default_value_t = 1000)]
    pub sse_max: usize,

    /// Requests with `Prefer: wait` one user may have waiting at once; beyond it a request
    /// is answered at once, without waiting and without `Preference-Applied`.
    #[arg(long, env = "ORDO_PREFER_WAIT_PER_USER", default_value_t = 4)]
    pub prefer_wait_per_user: usize,

    /// Requests with `Prefer: wait` this process has waiting at once, all users together.
    #[arg(long, env = "ORDO_PREFER_WAIT_MAX", default_value_t = 1000)]
    pub prefer_wait_max: usize,

    /// Guest carts kept at most, all guests together; beyond it a new guest cart is refused
    /// (503 `guest_carts_full`) until idle ones are pruned.
    #[arg(long, env = "ORDO_GUEST_CART_MAX", default_value_t = 100_000)]
    pub guest_cart_max: i64,

    /// How long an access token is accepted (e.g. 15m); an SSE stream ends when the token
    /// that opened it expires.
    #[arg(long, env = "ORDO_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,

    /// Address of an internal listener serving only `/metrics`, `/healthz` and `/readyz`
    /// (e.g. `127.0.0.1:9464`), in every role, also relay and workers without the HTTP API;
    /// when set, the public address does not serve `/metrics`.
    #[arg(long, env = "ORDO_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `ordo=debug,info`; `info` for
    /// `ordo serve` and `warn` for the other subcommands when unset.
    #[arg(long, env = "ORDO_LOG")]
    pub log: Option<String>,

    /// Replicas of every JetStream stream Ordo creates or updates: 1 on a single server, 3
    /// on a three-node NATS cluster (streams survive the loss of a node).
    #[arg(long, env = "ORDO_STREAM_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,

    /// OpenTelemetry collector to send trace spans to over OTLP/HTTP (protobuf), e.g.
    /// `http://127.0.0.1:4318` (spans go to `<endpoint>/v1/traces`). Tracing is off unless set.
    #[arg(long, env = "ORDO_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// How long finished spans wait to be exported in one batch.
    #[arg(long, env = "ORDO_OTLP_FLUSH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub otlp_flush_interval: Duration,
}

impl Config {
    /// The NATS server URLs of `ORDO_NATS_URL`, one or several (comma-separated).
    pub fn nats_servers(&self) -> Vec<String> {
        self.nats_url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Where the email copies of notifications are written: `ORDO_MAIL_SPOOL_DIR`, else
    /// `$HOME/.local/state/ordo/mail`.
    pub fn mail_spool_dir(&self) -> PathBuf {
        self.mail_spool_dir.clone().unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
            PathBuf::from(home).join(".local/state/ordo/mail")
        })
    }

    /// The base URL the payment provider calls back.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http_addr))
            .trim_end_matches('/')
            .to_string()
    }

    /// The payment provider's API base URL.
    pub fn payment_provider_url(&self) -> String {
        self.payment_provider_url
            .clone()
            .unwrap_or_else(|| format!("{}/sandbox/provider", self.public_url()))
    }

    /// Refuses a sandbox provider next to a real provider: with the sandbox on, the
    /// provider URL must be this gateway's own or a loopback address, or a stand-in that
    /// anyone may call could sit beside real payments.
    pub fn check_sandbox(&self) -> anyhow::Result<()> {
        let Some(url) = &self.payment_provider_url else {
            return Ok(());
        };
        if !self.sandbox_provider || url.starts_with(&format!("{}/", self.public_url())) {
            return Ok(());
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|err| anyhow::anyhow!("ORDO_PAYMENT_PROVIDER_URL {url}: {err}"))?;
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        anyhow::ensure!(
            loopback,
            "ORDO_SANDBOX_PROVIDER=true with ORDO_PAYMENT_PROVIDER_URL={url}: the sandbox provider may only run when the provider is this gateway or on a loopback address; turn the sandbox off next to a real provider"
        );
        Ok(())
    }

    /// Options of a NATS connection named `name`, with the configured credentials.
    pub async fn nats_options(&self, name: &str) -> anyhow::Result<async_nats::ConnectOptions> {
        let options = if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        } else if let Some(path) = &self.nats_nkey_seed_file {
            let seed = std::fs::read_to_string(path).map_err(|err| {
                anyhow::anyhow!("ORDO_NATS_NKEY_SEED_FILE {}: {err}", path.display())
            })?;
            async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
        } else if let Some(path) = &self.nats_credentials {
            async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|err| anyhow::anyhow!("ORDO_NATS_CREDENTIALS {}: {err}", path.display()))?
        } else {
            async_nats::ConnectOptions::new()
        };
        // A refused publish or subscription is answered by the server alone: log it, so
        // that a permission missing from the server's configuration shows.
        Ok(options.name(name).event_callback(|event| async move {
            if let async_nats::Event::ServerError(error) = event {
                tracing::warn!(%error, "the NATS server reported an error");
            }
        }))
    }

    /// Token lifetimes and password-check limits of the identity service.
    pub fn identity_config(&self) -> ordo_identity::IdentityConfig {
        let defaults = ordo_identity::IdentityConfig::default();
        ordo_identity::IdentityConfig {
            hashing_permits: self
                .password_hashing_concurrency
                .unwrap_or(defaults.hashing_permits)
                .max(1),
            hashing_max_waiting: self.password_hashing_queue,
            login_free_failures: self.login_failures_before_backoff,
            login_first_lock: self.login_backoff,
            access_ttl: self.access_token_ttl,
            ..defaults
        }
    }

    /// The longest a client may ask to wait with `Prefer: wait=N`.
    pub fn max_prefer_wait(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// The roles one process can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// The HTTP API.
    Gateway,
    /// The outbox relay (one is active at a time across all processes).
    Relay,
    /// Sagas and projections (durable consumers share the work across processes).
    Workers,
}

/// Options of `ordo serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Roles to run, comma separated.
    #[arg(
        long,
        env = "ORDO_ROLES",
        value_delimiter = ',',
        default_value = "gateway,relay,workers"
    )]
    pub roles: Vec<Role>,

    /// How long an order confirmed by the checkout saga waits for payment (e.g. 15m, 30s).
    #[arg(long, env = "ORDO_PAYMENT_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    pub payment_timeout: Duration,

    /// How long past its deadline an order whose payment is still in flight (the provider
    /// has not answered) waits for the provider before the payment is voided and the order
    /// expired (e.g. 2m, 3s).
    #[arg(long, env = "ORDO_PAYMENT_GRACE", default_value = "2m", value_parser = parse_duration)]
    pub payment_grace: Duration,

    /// How long after delivery an order completes by itself when its customer does not
    /// confirm receipt (e.g. 7d, 2s).
    #[arg(long, env = "ORDO_AUTO_CONFIRM_AFTER", default_value = "7d", value_parser = parse_duration)]
    pub auto_confirm_after: Duration,

    /// Deliveries of a failing event before it is dead-lettered (default 8).
    #[arg(long, env = "ORDO_CONSUMER_MAX_DELIVER")]
    pub consumer_max_deliver: Option<i64>,

    /// Delays between redeliveries of a failing event, comma separated
    /// (default 200ms,1s,5s,15s,30s,60s; the last repeats).
    #[arg(long, env = "ORDO_CONSUMER_BACKOFF", value_delimiter = ',', value_parser = parse_duration)]
    pub consumer_backoff: Option<Vec<Duration>>,

    /// How long JetStream waits for an acknowledgement before redelivering (default 5s):
    /// after a crash, the events in flight come back after this long. Events a live
    /// process holds are kept from redelivery by progress acknowledgements, however long
    /// their handling takes.
    #[arg(long, env = "ORDO_CONSUMER_ACK_WAIT", value_parser = parse_duration)]
    pub consumer_ack_wait: Option<Duration>,

    /// Events each consumer handles at once, on different aggregates (events of one
    /// aggregate are always handled in order). Each lane may hold a database connection.
    #[arg(long, env = "ORDO_CONSUMER_LANES", default_value_t = 16)]
    pub consumer_lanes: usize,

    /// How often overdue payments are looked for.

    #[arg(long, env = "ORDO_DEADLINE_SCAN_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub deadline_scan_interval: Duration,

    /// How long a guest cart nobody changes is kept before it is pruned (e.g. 168h).
    #[arg(long, env = "ORDO_GUEST_CART_IDLE", default_value = "168h", value_parser = parse_duration)]
    pub guest_cart_idle: Duration,

    /// How often expired checkout quotes and idle guest carts are pruned.
    #[arg(long, env = "ORDO_PRUNE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub prune_interval: Duration,

    /// How often the gauges of /metrics (outbox, consumer lag, sagas, dead letters) are
    /// sampled.
    #[arg(long, env = "ORDO_METRICS_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub metrics_interval: Duration,
}

/// Parses `90s`, `15m`, `2h`, `7d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as 30s, 15m or 2h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(value)),
        "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        "d" => value * 86_400,
        _ => return Err(format!("'{text}' is not a duration such as 30s, 15m or 2h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Settings {
        #[command(flatten)]
        config: Config,
    }

    fn config(args: &[&str]) -> Config {
        Settings::try_parse_from(std::iter::once("ordo").chain(args.iter().copied()))
            .expect("settings parse")
            .config
    }

    fn sandbox_with(provider: &str) -> anyhow::Result<()> {
        config(&[
            "--sandbox-provider",
            "true",
            "--public-url",
            "https://shop.example.com",
            "--payment-provider-url",
            provider,
        ])
        .check_sandbox()
    }

    #[test]
    fn the_sandbox_is_off_by_default() {
        assert!(!config(&[]).sandbox_provider);
        assert!(
            config(&["--payment-provider-url", "https://payments.example.com"])
                .check_sandbox()
                .is_ok()
        );
    }

    #[test]
    fn the_sandbox_runs_beside_its_own_or_a_loopback_provider_only() {
        for allowed in [
            "https://shop.example.com/sandbox/provider",
            "http://127.0.0.1:9000/provider",
            "http://localhost:9000/",
            "http://[::1]:9000/",
        ] {
            assert!(sandbox_with(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "https://payments.example.com/v1",
            "https://shop.example.com.attacker.net/sandbox/provider",
            "http://127.0.0.1.attacker.net/",
            "not a url",
        ] {
            assert!(sandbox_with(refused).is_err(), "{refused}");
        }
        assert!(config(&["--sandbox-provider", "true"])
            .check_sandbox()
            .is_ok());
    }
}
