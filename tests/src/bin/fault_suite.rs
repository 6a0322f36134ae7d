//! The fault suite: for each fault, a fresh three-node NATS cluster (streams with three
//! replicas) and a private PostgreSQL, `ordo serve` under a steady load of checkouts, the
//! fault applied and healed mid-load, then the tally of every order placed.
//!
//! Faults (arguments; all of them when none is given):
//! - `nats-node-loss`: SIGKILL of the NATS node Ordo is connected to, restarted after the
//!   load has gone on without it.
//! - `postgres-restart`: PostgreSQL stopped at once (`pg_ctl stop -m immediate`, as in a
//!   crash), started again after a pause.
//! - `nats-wiped-store`: every NATS node killed, its JetStream store deleted, the cluster
//!   started empty; then `ordo streams rebuild` refills each stream from Postgres.
//!
//! Settings: `FAULT_SHOPPERS` (concurrent shoppers, default 4), `FAULT_HOLD` (seconds a
//! fault lasts, default 10). Run by `scripts/fault-suite.sh`, which builds Ordo first.
//! Prints one Markdown table row per fault and exits non-zero if an order was lost or
//! doubled or a read model disagrees.

use std::time::{Duration, Instant};

use ordo_tests::cluster::{NatsCluster, PrivatePostgres};
use ordo_tests::faults::{Load, Tally};
use ordo_tests::{unique_namespace, TestOrdo};

const FAULTS: &[&str] = &["nats-node-loss", "postgres-restart", "nats-wiped-store"];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(fault: &str, shoppers: usize, hold: Duration) -> anyhow::Result<Tally> {
    let mut cluster = NatsCluster::start().await?;
    let pg = PrivatePostgres::start().await?;
    // The harness makes its database on the private server.
    std::env::set_var("ORDO_TEST_DATABASE_URL", pg.admin_url());
    let ordo = TestOrdo::builder()
        .nats(&cluster.urls(), &unique_namespace())
        .env("ORDO_STREAM_REPLICAS", "3")
        .env("ORDO_SANDBOX_DELAY", "50ms")
        .start()
        .await;
    let load = Load::start(&ordo, shoppers).await;
    load.wait_for_orders(20, Duration::from_secs(120)).await;
    eprintln!(
        "{fault}: {} orders placed, applying the fault",
        load.placed()
    );
    match fault {
        "nats-node-loss" => {
            let node = cluster.busiest_node().await;
            cluster.kill(node);
            let during = load.placed();
            tokio::time::sleep(hold).await;
            eprintln!(
                "{fault}: node {} down, {} orders placed meanwhile",
                node + 1,
                load.placed() - during
            );
            cluster.restart(node).await?;
        }
        "postgres-restart" => {
            pg.crash()?;
            tokio::time::sleep(hold).await;
            pg.start_again().await?;
        }
        "nats-wiped-store" => {
            cluster.restart_wiped().await?;
            let types: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT aggregate_type FROM events ORDER BY 1")
                    .fetch_all(ordo.pool())
                    .await?;
            for aggregate_type in &types {
                let (ok, out, err) = ordo.cli(&["streams", "rebuild", aggregate_type]).await;
                anyhow::ensure!(ok, "refill of {aggregate_type} failed: {err}");
                eprintln!("{fault}: {}", out.trim());
            }
        }
        other => anyhow::bail!("unknown fault {other:?}; known: {FAULTS:?}"),
    }
    let healed = Instant::now();
    eprintln!("{fault}: healed, {} orders placed", load.placed());
    load.wait_for_orders(20, Duration::from_secs(180)).await;
    let tally = load.finish(fault, &ordo, ordo.pool(), healed).await;
    drop(ordo);
    drop(cluster);
    drop(pg);
    Ok(tally)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("ORDO_BIN").is_none() {
        // Built beside it: target/<profile>/ordo.
        let exe = std::env::current_exe()?;
        std::env::set_var("ORDO_BIN", exe.with_file_name("ordo"));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let faults: Vec<&str> = if args.is_empty() {
        FAULTS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let shoppers = setting("FAULT_SHOPPERS", 4) as usize;
    let hold = Duration::from_secs(setting("FAULT_HOLD", 10));
    let mut tallies = Vec::new();
    for fault in faults {
        let tally = run(fault, shoppers, hold).await?;
        eprintln!("{}", serde_json::to_string(&tally)?);
        tallies.push(tally);
    }
    println!("| fault | placed | completed | lost | doubled | time to recover | longest pause | read models agree |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for tally in &tallies {
        println!("{}", tally.line());
    }
    if tallies.iter().all(Tally::passed) {
        Ok(())
    } else {
        anyhow::bail!("a fault run lost or doubled orders, or left the read models wrong")
    }
}
