//! Benchmark of the commerce pipeline, end to end through HTTP on one machine.
//!
//! Starts its own `ordo serve` (set ORDO_BIN to the release binary) on a fresh database and
//! namespace, then measures, in one run:
//! 1. confirmed orders per second: POST /orders with `Prefer: wait=30`, answered once the
//!    checkout saga confirmed the order (stock reserved) — p50/p99 from POST to confirmed;
//! 2. completed checkouts per second: place, then pay with the sandbox provider answering at
//!    once — p50/p99 from placement to paid;
//! 3. the raw ceiling: plain Postgres inserts of the same number of event rows, one
//!    transaction per command as the write side does, at the same concurrency.
//!
//! At the end it prints the peak resident memory of `ordo serve` (`VmHWM`).
//!
//! Talks only to 127.0.0.1; bounded in count and time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ordo_tests::{unique_namespace, Api, OrdoProcess, SpawnOptions, TestDatabase};
use reqwest::Method;
use serde_json::json;
use tokio::sync::Semaphore;

const SKUS: usize = 20;

struct Args {
    orders: usize,
    concurrency: usize,
    customers: usize,
}

fn args() -> Args {
    let mut args = Args {
        orders: 2000,
        concurrency: 64,
        customers: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--orders", Some(v)) => args.orders = v,
            ("--concurrency", Some(v)) => args.concurrency = v,
            ("--customers", Some(v)) => args.customers = v,
            _ => {
                eprintln!("usage: bench_checkout [--orders N] [--concurrency N] [--customers N]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn report(name: &str, count: usize, elapsed: Duration, histogram: &Histogram<u64>) -> f64 {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "{name}: {count} in {:.2}s = {rate:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
    rate
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let db = TestDatabase::create().await?;
    let namespace = unique_namespace();
    let ordo = OrdoProcess::spawn(
        &db.url,
        &namespace,
        SpawnOptions {
            env: vec![
                ("ORDO_SANDBOX_DELAY".into(), "0".into()),
                ("ORDO_DATABASE_MAX_CONNECTIONS".into(), "32".into()),
                ("ORDO_RATE_LIMIT_PER_IP".into(), "0".into()),
                ("ORDO_RATE_LIMIT_PER_USER".into(), "0".into()),
                ("ORDO_LOG".into(), "warn".into()),
            ],
        },
    )
    .await?;
    let api = ordo.api();
    let admin = api.admin().await;
    for i in 0..SKUS {
        let sku = format!("BENCH-{i}");
        let created = admin
            .post("/api/v1/products", json!({"sku": sku, "name": sku, "category": "bench", "price": 1000 + i, "currency": "EUR"}))
            .await;
        anyhow::ensure!(created.status == 201, "product: {:?}", created.body);
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{sku}/restock"),
                json!({"quantity": 1_000_000}),
            )
            .await;
        anyhow::ensure!(restocked.status == 200, "restock: {:?}", restocked.body);
    }
    let mut customers = Vec::new();
    for i in 0..args.customers {
        customers.push(api.register(&format!("bench{i}@example.com")).await.0);
    }
    let customers = Arc::new(customers);
    println!(
        "machine: {} cores; {} orders, concurrency {}, {} customers, {} SKUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.orders,
        args.concurrency,
        args.customers,
        SKUS
    );

    // 1. Confirmed orders.
    let (confirmed, confirm_elapsed, confirm_latency, order_ids) =
        run(&args, &customers, false).await?;
    let confirm_rate = report(
        "confirmed orders",
        confirmed,
        confirm_elapsed,
        &confirm_latency,
    );
    drop(order_ids);
    // 2. Completed checkouts (placed -> paid).
    let (paid, paid_elapsed, paid_latency, _) = run(&args, &customers, true).await?;
    let paid_rate = report("completed checkouts", paid, paid_elapsed, &paid_latency);
    println!(
        "checkout / confirmed ratio: {:.2}",
        paid_rate / confirm_rate
    );

    // 3. The ceiling: the same number of event rows, one transaction per command.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        .connect(&db.url)
        .await?;
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        .execute(&pool)
        .await?;
    // A confirmed order is 3 events in 3 commands (OrderPlaced, StockReserved, OrderConfirmed).
    let commands = args.orders * 3;
    let semaphore = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..commands {
        let pool = pool.clone();
        let permit = semaphore.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            let payload = json!({"OrderPlaced": {"order_id": uuid::Uuid::new_v4(), "lines": [{"sku": "BENCH-1", "quantity": 1}]}});
            sqlx::query(
                "INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 VALUES ('order', $1, 1, 'OrderPlaced', '1', $2, '{}')",
            )
            .bind(format!("agg-{i}"))
            .bind(payload)
            .execute(&pool)
            .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let elapsed = started.elapsed();
    let inserts = commands as f64 / elapsed.as_secs_f64();
    println!(
        "ceiling: {commands} single-event insert transactions in {:.2}s = {inserts:.0}/s (= {:.0} confirmed orders/s at 3 commands per order)",
        elapsed.as_secs_f64(),
        inserts / 3.0
    );
    pool.close().await;
    match ordo.peak_resident_bytes() {
        Some(bytes) => println!(
            "peak resident memory of ordo serve (VmHWM): {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        ),
        None => println!("peak resident memory of ordo serve (VmHWM): unknown"),
    }
    drop(ordo);
    ordo_tests::delete_streams(&namespace).await;
    Ok(())
}

/// Places `orders` orders (and pays them when `pay`), `concurrency` at a time.
async fn run(
    args: &Args,
    customers: &Arc<Vec<Api>>,
    pay: bool,
) -> anyhow::Result<(usize, Duration, Histogram<u64>, Vec<String>)> {
    let semaphore = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.orders {
        let permit = semaphore.clone().acquire_owned().await?;
        let customer = customers[i % customers.len()].clone();
        tasks.spawn(async move {
            let _permit = permit;
            let began = Instant::now();
            let sku = format!("BENCH-{}", i % SKUS);
            let placed = customer
                .send(
                    Method::POST,
                    "/api/v1/orders",
                    Some(json!({"items": [{"sku": sku, "quantity": 1}]})),
                    &[("prefer", "wait=30")],
                )
                .await;
            if placed.body["status"] != "awaiting_payment" {
                return Err(anyhow::anyhow!("order not confirmed: {:?}", placed.body));
            }
            let order_id = placed.body["order_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if pay {
                let paid = customer
                    .send(
                        Method::POST,
                        &format!("/api/v1/orders/{order_id}/pay"),
                        Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
                        &[("prefer", "wait=30")],
                    )
                    .await;
                if paid.body["order_status"] != "paid" {
                    return Err(anyhow::anyhow!("order not paid: {:?}", paid.body));
                }
            }
            Ok((began.elapsed(), order_id))
        });
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut ids = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (latency, id) = result??;
        histogram.record(latency.as_micros() as u64)?;
        ids.push(id);
    }
    Ok((ids.len(), started.elapsed(), histogram, ids))
}
