//! Benchmark of single commands through HTTP, beside the Postgres ceiling of the same run.
//!
//! Starts its own `ordo serve` (set ORDO_BIN to the release binary) on a fresh database and
//! namespace, creates 256 products with stock, then sends `--commands` restocks
//! (`POST /api/v1/inventory/{sku}/restock`, one unit each, as the admin), `--concurrency` in
//! flight over the SKUs round-robin: one simple command per request. It reports commands per
//! second, the latency p50/p99/max, every answer that was not 2xx, the CPU time of `ordo
//! serve`, of the Postgres backends of the database and of this generator over the run, and
//! the peak resident memory of `ordo serve`. Then, in the same database with Ordo stopped, the
//! ceiling: pgbench inserting one event row per transaction into `plain_events`, a table of
//! the events table's shape without triggers (as `tests/pgbench/setup.sh` makes it), with
//! `tests/pgbench/insert_plain.sql`; and the ratio of the two.
//!
//! Talks only to 127.0.0.1; bounded in count and time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ordo_tests::{unique_namespace, OrdoProcess, SpawnOptions, TestDatabase};
use serde_json::json;
use tokio::sync::Semaphore;

/// How many SKUs the restocks go round.
const SKUS: usize = 256;
/// Units each SKU starts with.
const INITIAL_STOCK: u64 = 1000;
/// How long a restock may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    commands: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut args = Args {
        commands: 20_000,
        concurrency: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--commands", Some(v)) if v > 0 => args.commands = v,
            ("--concurrency", Some(v)) if v > 0 => args.concurrency = v,
            _ => {
                eprintln!("usage: bench_commands [--commands N] [--concurrency N]");
                std::process::exit(2);
            }
        }
    }
    args
}

/// What one restock got back: its latency and, unless it was 2xx, what it was.
struct Outcome {
    latency: Duration,
    failure: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let pgbench = pgbench_binary()?;
    let insert_plain = pgbench_dir().join("insert_plain.sql");
    anyhow::ensure!(
        insert_plain.exists(),
        "{} is missing",
        insert_plain.display()
    );
    println!("load average at start: {}", load_average());

    let db = TestDatabase::create().await?;
    let namespace = unique_namespace();
    let mut ordo = OrdoProcess::spawn(
        &db.url,
        &namespace,
        SpawnOptions {
            env: vec![
                ("ORDO_DATABASE_MAX_CONNECTIONS".into(), "32".into()),
                ("ORDO_RATE_LIMIT_PER_IP".into(), "0".into()),
                ("ORDO_RATE_LIMIT_PER_USER".into(), "0".into()),
                ("ORDO_LOG".into(), "warn".into()),
            ],
        },
    )
    .await?;
    let ordo_pid = ordo
        .pid()
        .ok_or_else(|| anyhow::anyhow!("ordo serve has no pid"))?;
    let admin = ordo.api().admin().await;
    for i in 0..SKUS {
        let sku = sku_name(i);
        let created = admin
            .post(
                "/api/v1/products",
                json!({"sku": sku, "name": sku, "category": "bench", "price": 1000 + i, "currency": "EUR"}),
            )
            .await;
        anyhow::ensure!(created.status == 201, "product: {:?}", created.body);
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{sku}/restock"),
                json!({"quantity": INITIAL_STOCK}),
            )
            .await;
        anyhow::ensure!(restocked.status == 200, "restock: {:?}", restocked.body);
    }
    println!(
        "machine: {} cores; {} restock commands, concurrency {}, {} SKUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.commands,
        args.concurrency,
        SKUS
    );

    // The commands.
    let ticks = clock_ticks_per_second().await;
    let cpu_before = CpuTimes::sample(ordo_pid, &db.name);
    let semaphore = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.commands {
        let permit = semaphore.clone().acquire_owned().await?;
        let admin = admin.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let began = Instant::now();
            let sku = sku_name(i % SKUS);
            let mut request = admin
                .client
                .post(format!("{}/api/v1/inventory/{sku}/restock", admin.base))
                .timeout(REQUEST_TIMEOUT)
                .json(&json!({"quantity": 1}));
            if let Some(token) = &admin.token {
                request = request.bearer_auth(token);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    // The answer is read to its end, as a client would.
                    match response.bytes().await {
                        Ok(_) => None,
                        Err(err) => Some(format!("body not read: {err}")),
                    }
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    Some(format!("{status} {body}"))
                }
                Err(err) => Some(format!("no answer: {err}")),
            };
            Outcome {
                latency: began.elapsed(),
                failure,
            }
        });
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(outcome) = tasks.join_next().await {
        let outcome = outcome?;
        match outcome.failure {
            None => histogram.record(outcome.latency.as_micros() as u64)?,
            Some(failure) => *failures.entry(failure).or_default() += 1,
        }
    }
    let elapsed = started.elapsed();
    let cpu_after = CpuTimes::sample(ordo_pid, &db.name);
    let peak_resident = ordo.peak_resident_bytes();

    let succeeded = histogram.len() as usize;
    let failed: usize = failures.values().sum();
    let rate = succeeded as f64 / elapsed.as_secs_f64();
    println!(
        "restock commands: {succeeded} answered 2xx in {:.2}s = {rate:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
    println!("answers not 2xx (must be 0): {failed}");
    for (failure, count) in &failures {
        println!("  {count} x {failure}");
    }
    let seconds = |ticks_used: u64| ticks_used as f64 / ticks as f64;
    println!(
        "CPU over the run ({:.2}s wall): ordo serve {:.1} s, Postgres backends of the database {:.1} s, this generator {:.1} s",
        elapsed.as_secs_f64(),
        seconds(cpu_after.ordo.saturating_sub(cpu_before.ordo)),
        seconds(cpu_after.postgres.saturating_sub(cpu_before.postgres)),
        seconds(cpu_after.generator.saturating_sub(cpu_before.generator)),
    );
    match peak_resident {
        Some(bytes) => println!(
            "peak resident memory of ordo serve (VmHWM): {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        ),
        None => println!("peak resident memory of ordo serve (VmHWM): unknown"),
    }

    // Every command that answered 2xx is in the store.
    let pool = db.pool().await?;
    let restocks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'inventory' AND event_type = 'Restocked'",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "Restocked events in the store: {restocks} (= {SKUS} initial + {} commands)",
        restocks - SKUS as i64
    );
    ordo.kill().await;
    ordo_tests::delete_streams(&namespace).await;

    // The ceiling, in the same database with Ordo stopped.
    sqlx::query("CREATE TABLE plain_events (LIKE events INCLUDING ALL)")
        .execute(&pool)
        .await?;
    pool.close().await;
    let ceiling = run_pgbench(&pgbench, &insert_plain, &db).await?;
    println!("ratio: commands/s / ceiling = {:.3}", rate / ceiling);
    anyhow::ensure!(failed == 0, "{failed} restocks were not answered 2xx");
    Ok(())
}

fn sku_name(i: usize) -> String {
    format!("CMD-{i}")
}

/// `tests/pgbench`, beside this crate.
fn pgbench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pgbench")
}

/// pgbench on PATH, or where Debian's PostgreSQL 15 puts it.
fn pgbench_binary() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("pgbench"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_default();
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin/pgbench");
    on_path
        .or_else(|| debian.is_file().then_some(debian))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "pgbench is missing (not on PATH, not in /usr/lib/postgresql/15/bin): install it \
                 (Debian: apt-get install postgresql-contrib) and run this again"
            )
        })
}

/// Runs pgbench as BENCHMARKS.md's pgbench section does (32 clients, 2 threads, 10 s) and
/// answers its transactions per second.
async fn run_pgbench(pgbench: &Path, script: &Path, db: &TestDatabase) -> anyhow::Result<f64> {
    let url = reqwest::Url::parse(&db.url)?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let user = match url.username() {
        "" => "postgres".to_string(),
        user => user.to_string(),
    };
    let mut command = tokio::process::Command::new(pgbench);
    command
        .args([
            "-h", &host, "-U", &user, "-n", "-c", "32", "-j", "2", "-T", "10", "-f",
        ])
        .arg(script)
        .arg(&db.name);
    if let Some(port) = url.port() {
        command.args(["-p", &port.to_string()]);
    }
    if let Some(password) = url.password() {
        command.env("PGPASSWORD", password);
    }
    println!(
        "ceiling: pgbench -h {host} -U {user} -n -c 32 -j 2 -T 10 -f {} {}",
        script.display(),
        db.name
    );
    let output = command.output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed with {}: {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for line in stdout.lines().filter(|line| {
        line.starts_with("number of transactions actually processed")
            || line.starts_with("latency average")
            || line.starts_with("tps")
    }) {
        println!("  {line}");
    }
    let tps = stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench's output: {stdout}"))?;
    println!("ceiling: {tps:.0} single-row insert transactions/s");
    Ok(tps)
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// The unit of the CPU times of /proc/<pid>/stat.
async fn clock_ticks_per_second() -> u64 {
    let answer = tokio::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .await;
    answer
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// CPU time (user + system, in clock ticks) used so far by `ordo serve`, by the Postgres
/// backends connected to the bench database, and by this process.
struct CpuTimes {
    ordo: u64,
    postgres: u64,
    generator: u64,
}

impl CpuTimes {
    fn sample(ordo_pid: u32, database: &str) -> Self {
        let mut postgres = 0;
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                // A backend's command line names its database: `postgres: user db host(port) ...`.
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    continue;
                };
                let cmdline = String::from_utf8_lossy(&cmdline);
                if cmdline.starts_with("postgres: ")
                    && cmdline.split_whitespace().any(|word| word == database)
                {
                    postgres += cpu_ticks(pid).unwrap_or(0);
                }
            }
        }
        Self {
            ordo: cpu_ticks(ordo_pid).unwrap_or(0),
            postgres,
            generator: cpu_ticks(std::process::id()).unwrap_or(0),
        }
    }
}

/// User + system CPU time of a process so far, in clock ticks (fields 14 and 15 of
/// /proc/<pid>/stat, counted after the command name in parentheses).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}
