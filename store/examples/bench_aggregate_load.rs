//! Benchmark: how long the command bus takes to load an aggregate with a long history, from
//! its whole history and from its snapshot (plus the events after it).
//!
//! Makes a fresh database, gives one inventory item 100,000 events through the bus (a
//! restock, then one-unit reservations: a SKU sold a hundred thousand times, whose state
//! keeps every reservation; or, with `--history restocks`, restocks only, whose state stays
//! a few fields), then loads it
//! repeatedly with a fresh bus each time: replaying every event, from a snapshot taken at the
//! last event, and from that snapshot with `--after` events written after it (the most a load
//! reads between two snapshots is the snapshot interval). It also times the parts of a load
//! from the snapshot on their own (reading the row, parsing it) and turning the item into a
//! snapshot's JSON value. Talks only to the test database
//! (`ORDO_TEST_DATABASE_URL`).

use std::time::{Duration, Instant};

use futures::future::join_all;
use ordo_aggregates::common::{Quantity, ReservationId, Sku};
use ordo_aggregates::inventory::{InventoryCommand, InventoryItem};
use ordo_store::{CommandBus, CommandMetadata};
use ordo_tests::TestDatabase;

struct Args {
    /// `reservations` or `restocks`.
    history: String,
    events: usize,
    after: usize,
    loads: usize,
}

fn args() -> Args {
    let mut args = Args {
        history: "reservations".into(),
        events: 100_000,
        after: 499,
        loads: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let raw = it.next();
        if flag == "--history" && matches!(raw.as_deref(), Some("reservations" | "restocks")) {
            args.history = raw.unwrap_or_default();
            continue;
        }
        let value = raw.and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--events", Some(v)) => args.events = v,
            ("--after", Some(v)) => args.after = v,
            ("--loads", Some(v)) => args.loads = v,
            _ => {
                eprintln!("usage: bench_aggregate_load [--history reservations|restocks] [--events N] [--after N] [--loads N]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn metadata() -> CommandMetadata {
    CommandMetadata::from_request("bench-aggregate-load", None)
}

fn restock(sku: &str) -> InventoryCommand {
    InventoryCommand::Restock {
        sku: Sku::parse(sku).expect("a sku"),
        quantity: Quantity::parse(1).expect("a quantity"),
    }
}

fn reserve() -> InventoryCommand {
    InventoryCommand::Reserve {
        reservation_id: ReservationId::new_v4(),
        quantity: Quantity::parse(1).expect("a quantity"),
        booking: None,
    }
}

/// Appends `count` events (reservations, or restocks with `restocks`), many in flight, so
/// the bus batches them.
async fn append_many(bus: &CommandBus<InventoryItem>, item: &str, count: usize, restocks: bool) {
    let mut left = count;
    while left > 0 {
        let chunk = left.min(2_000);
        let command = || if restocks { restock(item) } else { reserve() };
        let answers = join_all((0..chunk).map(|_| bus.execute(item, command(), metadata()))).await;
        assert!(answers.iter().all(Result::is_ok), "every reservation taken");
        left -= chunk;
    }
}

/// Loads the item `loads` times, each with a fresh bus made by `bus`; the durations sorted.
async fn time_loads(
    item: &str,
    loads: usize,
    expected_version: i64,
    bus: impl Fn() -> CommandBus<InventoryItem>,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(loads);
    for _ in 0..loads {
        let bus = bus();
        let started = Instant::now();
        let (_, version) = bus.load(item).await.expect("loaded");
        times.push(started.elapsed());
        assert_eq!(version, expected_version);
    }
    times.sort();
    times
}

/// The parts of a load from the snapshot, each timed `loads` times on its own: reading the
/// snapshot row (its JSON as text) and parsing that text into the item; and, for writing
/// one, turning the item into the snapshot's JSON value. Each sorted.
async fn time_snapshot_parts(
    pool: &sqlx::PgPool,
    item: &str,
    loads: usize,
) -> anyhow::Result<[Vec<Duration>; 3]> {
    let mut fetches = Vec::with_capacity(loads);
    let mut parses = Vec::with_capacity(loads);
    let mut serializations = Vec::with_capacity(loads);
    for _ in 0..loads {
        let started = Instant::now();
        let (payload,): (String,) = sqlx::query_as(
            "SELECT payload::text FROM aggregate_snapshots
             WHERE aggregate_type = 'inventory' AND aggregate_id = $1",
        )
        .bind(item)
        .fetch_one(pool)
        .await?;
        fetches.push(started.elapsed());
        let started = Instant::now();
        let parsed: InventoryItem = serde_json::from_str(&payload)?;
        parses.push(started.elapsed());
        let started = Instant::now();
        let payload = ordo_store::snapshots::payload_of(&parsed);
        serializations.push(started.elapsed());
        anyhow::ensure!(payload.is_some(), "the item makes a snapshot");
    }
    fetches.sort();
    parses.sort();
    serializations.sort();
    Ok([fetches, parses, serializations])
}

fn report(name: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: p50 {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms ({} loads)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let database = TestDatabase::create().await?;
    let pool = database.pool_of(8).await?;
    ordo_store::database::migrate(&pool).await?;
    let item = "BENCH-HOT-SKU";
    let plain = CommandBus::<InventoryItem>::new(pool.clone(), ());
    let started = Instant::now();
    plain
        .execute(
            item,
            InventoryCommand::Restock {
                sku: Sku::parse(item).expect("a sku"),
                quantity: Quantity::parse(1_000_000).expect("a quantity"),
            },
            metadata(),
        )
        .await
        .expect("restocked");
    let restocks = args.history == "restocks";
    append_many(&plain, item, args.events - 1, restocks).await;
    println!(
        "wrote {} events ({}) in {:.1} s",
        args.events,
        args.history,
        started.elapsed().as_secs_f64()
    );
    let events = args.events as i64;

    let replayed = time_loads(item, args.loads.min(10), events, || {
        CommandBus::new(pool.clone(), ())
    })
    .await;
    report("whole history replayed", &replayed);

    // One more reservation through a bus with snapshots makes one due: it is written with it.
    let snapshotting = CommandBus::<InventoryItem>::new(pool.clone(), ()).with_snapshots(500);
    snapshotting
        .execute(item, reserve(), metadata())
        .await
        .expect("reserved");
    let (size,): (i64,) = sqlx::query_as(
        "SELECT octet_length(payload::text)::bigint FROM aggregate_snapshots WHERE aggregate_id = $1",
    )
    .bind(item)
    .fetch_one(&pool)
    .await?;
    println!("snapshot at {} events: {} bytes of JSON", events + 1, size);
    let from_snapshot = time_loads(item, args.loads, events + 1, || {
        CommandBus::new(pool.clone(), ()).with_snapshots(500)
    })
    .await;
    report("from the snapshot", &from_snapshot);
    let [fetches, parses, serializations] = time_snapshot_parts(&pool, item, args.loads).await?;
    report("  of which: reading the snapshot row", &fetches);
    report("  of which: parsing its JSON into the item", &parses);
    report(
        "writing a snapshot: the item to its JSON value",
        &serializations,
    );

    append_many(&plain, item, args.after, restocks).await;
    let with_tail = time_loads(item, args.loads, events + 1 + args.after as i64, || {
        CommandBus::new(pool.clone(), ()).with_snapshots(500)
    })
    .await;
    report(
        &format!("from the snapshot and {} events after it", args.after),
        &with_tail,
    );
    drop(pool);
    drop(database);
    Ok(())
}
