//! The monitoring that ships with Ordo (deploy/prometheus, deploy/grafana): `promtool`
//! checks and unit-tests the alert and recording rules, and Debian's Prometheus scrapes a
//! live `ordo serve`, fires the dead-letter alert when a dead letter is planted, and answers
//! every query of the Grafana dashboard with data.
//!
//! `prometheus` and `promtool` come from the Debian package prometheus (scripts/test.sh
//! installs it); `ORDO_PROMETHEUS` and `ORDO_PROMTOOL` name them, else they are looked up on
//! the PATH. A missing tool fails the tests: nothing is skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

/// The repository's root (the tests crate lives in `tests/`).
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn rules_file() -> PathBuf {
    repository().join("deploy/prometheus/ordo-rules.yml")
}

/// The path of a tool: `$variable` when set, else `name` found on the PATH.
fn tool(variable: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(variable) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing: scripts/test.sh installs it (Debian package prometheus), \
                 or set {variable} to its path"
            )
        })
}

/// Runs `promtool` with `args` in deploy/prometheus; answers its standard output and error.
fn promtool(args: &[&str]) -> String {
    let output = std::process::Command::new(tool("ORDO_PROMTOOL", "promtool"))
        .args(args)
        .current_dir(repository().join("deploy/prometheus"))
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The names of the rules of the rules file that start with `kind` (`record:`, `alert:`),
/// one per rule (a name recorded for several SLOs comes once per SLO).
fn rules_of_kind(kind: &str) -> Vec<String> {
    std::fs::read_to_string(rules_file())
        .expect("the rules file")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- ")?.strip_prefix(kind))
        .map(|name| name.trim().to_owned())
        .collect()
}

fn rule_names(kind: &str) -> BTreeSet<String> {
    rules_of_kind(kind).into_iter().collect()
}

#[test]
fn promtool_accepts_the_rules_and_the_example_configuration() {
    let checked = promtool(&["check", "rules", "ordo-rules.yml"]);
    let rules = rules_of_kind("record:").len() + rules_of_kind("alert:").len();
    assert!(
        checked.contains(&format!("SUCCESS: {rules} rules found")),
        "{checked}"
    );
    let config = promtool(&["check", "config", "prometheus.yml"]);
    assert!(config.contains("SUCCESS"), "{config}");
}

#[test]
fn the_rules_unit_tests_pass_and_cover_every_alert() {
    let tested = promtool(&["test", "rules", "ordo-rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert is seen firing in some test case.
    let tests = std::fs::read_to_string(repository().join("deploy/prometheus/ordo-rules.test.yml"))
        .expect("the rules tests");
    let mut fired = BTreeSet::new();
    let mut current = None;
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_owned());
        }
        if line.starts_with("- exp_labels:") {
            fired.extend(current.clone());
        }
    }
    let alerts = rule_names("alert:");
    assert!(alerts.len() >= 12, "{alerts:?}");
    let untested: Vec<_> = alerts.difference(&fired).collect();
    assert!(
        untested.is_empty(),
        "alerts never seen firing: {untested:?}"
    );
}

/// The panels of the Grafana dashboard with their queries, Grafana's `$__rate_interval`
/// as a minute.
fn dashboard_panels() -> Vec<(String, Vec<String>)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repository().join("deploy/grafana/ordo-dashboard.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let queries: Vec<String> = panel["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|target| {
                target["expr"]
                    .as_str()
                    .expect("a query")
                    .replace("$__rate_interval", "1m")
            })
            .collect();
        if !queries.is_empty() {
            panels.push((
                panel["title"].as_str().unwrap_or_default().to_owned(),
                queries,
            ));
        }
    }
    panels
}

#[test]
fn the_dashboard_reads_only_metrics_ordo_exports_and_series_the_rules_record() {
    let documented = std::fs::read_to_string(repository().join("gateway/src/metrics.rs"))
        .expect("the metrics module");
    let recorded = rule_names("record:");
    let panels = dashboard_panels();
    assert!(panels.len() >= 18, "{panels:?}");
    for (title, expr) in panels
        .iter()
        .flat_map(|(title, queries)| queries.iter().map(move |expr| (title, expr)))
    {
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|word| word.starts_with("ordo_") || word.starts_with("ordo:"));
        for name in names {
            if name.contains(':') {
                assert!(recorded.contains(name), "{title}: {name} is not recorded");
            } else {
                let base = name.trim_end_matches("_bucket");
                assert!(
                    documented.contains(&format!("| `{base}` |")),
                    "{title}: {name} is not one of the metrics Ordo exports"
                );
            }
        }
    }
}

/// A Prometheus of the test's own, on a free port, scraping `target` every second and
/// evaluating the repository's rules every second; killed when dropped.
struct TestPrometheus {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
}

impl TestPrometheus {
    async fn start(directory: &Path, target: &str) -> Self {
        let port = ordo_tests::free_port().expect("a free port");
        let config = directory.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: ordo\n    static_configs:\n      - targets: ['{target}']\n",
                rules = rules_file().display(),
            ),
        )
        .expect("the configuration written");
        let log = std::fs::File::create(directory.join("prometheus.log")).expect("a log file");
        let child = tokio::process::Command::new(tool("ORDO_PROMETHEUS", "prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                directory.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        eventually("Prometheus ready", Duration::from_secs(30), || async {
            let ready = prometheus
                .http
                .get(format!("{}/-/ready", prometheus.url))
                .send()
                .await
                .ok()?;
            ready.status().is_success().then_some(())
        })
        .await;
        prometheus
    }

    /// `GET /api/v1/<path>` with `query`; answers `data`, asserting a successful answer.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let answer: Value = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        assert_eq!(answer["status"], "success", "{path} {query:?}: {answer}");
        Some(answer["data"].clone())
    }

    /// The alerts named `name` in `state` (pending or firing).
    async fn alerts(&self, name: &str, state: &str) -> Vec<Value> {
        let Some(data) = self.api("alerts", &[]).await else {
            return Vec::new();
        };
        data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|alert| alert["labels"]["alertname"] == name && alert["state"] == state)
            .cloned()
            .collect()
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Products in stock and a registered customer who places and pays an order.
async fn place_and_pay_an_order(api: &Api) {
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "LAMP", "name": "Lamp", "category": "home", "price": 1500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/LAMP/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let (customer, _) = api.register("mona@example.com").await;
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "LAMP", "quantity": 1}]})),
            &[],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    eventually(
        "the order awaits payment",
        Duration::from_secs(20),
        || async {
            let order = customer.get(&format!("/api/v1/orders/{order_id}")).await;
            (order.body["status"] == "awaiting_payment").then_some(())
        },
    )
    .await;
    let paid = customer
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    eventually("the order is paid", Duration::from_secs(20), || async {
        let order = customer.get(&format!("/api/v1/orders/{order_id}")).await;
        (order.body["status"] == "paid").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scraping_a_live_ordo_fires_the_dead_letter_alert_and_answers_the_dashboard() {
    let ordo = TestOrdo::with_env(&[
        ("ORDO_METRICS_INTERVAL", "300ms"),
        ("ORDO_CONSUMER_MAX_DELIVER", "2"),
        ("ORDO_CONSUMER_BACKOFF", "100ms"),
        ("ORDO_SANDBOX_DELAY", "20ms"),
    ])
    .await;
    let target = ordo.base_url().trim_start_matches("http://").to_owned();
    let prometheus = TestPrometheus::start(ordo.scratch_dir(), &target).await;

    eventually("the ordo target up", Duration::from_secs(30), || async {
        let data = prometheus
            .api("query", &[("query", "up{job=\"ordo\"}")])
            .await?;
        (data["result"][0]["value"][1] == "1").then_some(())
    })
    .await;
    place_and_pay_an_order(&ordo.api()).await;
    // The dead letters are sampled and scraped, and none is there: the alert is quiet.
    eventually("dead letters scraped", Duration::from_secs(30), || async {
        let data = prometheus
            .api(
                "query",
                &[("query", "ordo_dead_letters{consumer=\"projection-orders\"}")],
            )
            .await?;
        (data["result"][0]["value"][1] == "0").then_some(())
    })
    .await;
    assert!(prometheus
        .alerts("OrdoDeadLetters", "firing")
        .await
        .is_empty());
    assert!(prometheus
        .alerts("OrdoDeadLetters", "pending")
        .await
        .is_empty());

    // An event nobody can read on the order stream: projection-orders dead-letters it.
    let jetstream = async_nats::jetstream::new(ordo.nats().await);
    jetstream
        .publish(
            format!(
                "{}.events.order.{}.Garbage",
                ordo.namespace(),
                uuid::Uuid::new_v4()
            ),
            "not an event".into(),
        )
        .await
        .expect("published")
        .await
        .expect("stored");
    let fired = eventually(
        "the dead-letter alert firing",
        Duration::from_secs(60),
        || async {
            let alerts = prometheus.alerts("OrdoDeadLetters", "firing").await;
            let fired: Vec<_> = alerts
                .into_iter()
                .filter(|alert| alert["labels"]["consumer"] == "projection-orders")
                .collect();
            (!fired.is_empty()).then_some(fired)
        },
    )
    .await;
    assert_eq!(fired.len(), 1, "one alert per consumer: {fired:?}");
    assert_eq!(fired[0]["labels"]["severity"], "ticket");
    assert_eq!(
        fired[0]["annotations"]["summary"],
        "Dead letters of consumer projection-orders: 1"
    );
    // The healthy pipeline fires nothing else: the relay leads, no saga is stuck.
    for quiet in [
        "OrdoRelayLeaderMissing",
        "OrdoSagasStuck",
        "OrdoProcessDown",
    ] {
        assert!(
            prometheus.alerts(quiet, "firing").await.is_empty(),
            "{quiet} fires"
        );
    }

    // Every panel of the dashboard has data to show: one of its queries answers a series.
    for (title, queries) in dashboard_panels() {
        eventually(
            &format!("data for the panel {title}: {queries:?}"),
            Duration::from_secs(30),
            || async {
                for expr in &queries {
                    let data = prometheus.api("query", &[("query", expr.as_str())]).await?;
                    if !data["result"].as_array()?.is_empty() {
                        return Some(());
                    }
                }
                None
            },
        )
        .await;
    }
    drop(prometheus);
    ordo.stop().await;
}
