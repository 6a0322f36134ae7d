//! End to end: `ordo replay` from Postgres and JetStream to JSON Lines and CSV, its filters
//! and time range, its refusals, and a replay into a fresh read model database that must
//! equal the live one.

use std::path::PathBuf;
use std::time::Duration;

use ordo_tests::{
    delete_streams, eventually, unique_namespace, Api, OrdoProcess, SpawnOptions, TestDatabase,
};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

struct World {
    _db: TestDatabase,
    ordo: OrdoProcess,
    namespace: String,
    pool: PgPool,
    dir: PathBuf,
}

impl World {
    async fn start() -> Self {
        let db = TestDatabase::create().await.expect("database");
        let namespace = unique_namespace();
        let ordo = OrdoProcess::spawn(&db.url, &namespace, SpawnOptions::default())
            .await
            .expect("ordo serve starts");
        let pool = db.pool().await.expect("pool");
        let dir = std::env::temp_dir().join(format!("ordo-replay-{namespace}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            _db: db,
            ordo,
            namespace,
            pool,
            dir,
        }
    }

    async fn stop(mut self) {
        self.pool.close().await;
        self.ordo.kill().await;
        delete_streams(&self.namespace).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Runs `ordo replay <args>`, expecting success.
    async fn replay(&self, args: &[&str]) -> String {
        let mut all = vec!["replay"];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = self.ordo.cli(&all).await;
        assert!(ok, "ordo {all:?} failed: {stderr}");
        stdout
    }
}

/// Some history: two products with stock, an order confirmed and one rejected.
async fn history(api: &Api) -> Vec<String> {
    let admin = api.admin().await;
    for (sku, stock) in [("WIDGET", 10), ("GADGET", 1)] {
        let created = admin
            .post("/api/v1/products", json!({"sku": sku, "name": sku, "category": "test", "price": 700, "currency": "EUR"}))
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{sku}/restock"),
                json!({"quantity": stock}),
            )
            .await;
        assert_eq!(restocked.status, 200);
    }
    let (customer, _) = api.register("ann@example.com").await;
    let mut orders = Vec::new();
    for (sku, quantity, status) in [("WIDGET", 2, "awaiting_payment"), ("GADGET", 5, "rejected")] {
        let placed = customer
            .send(
                Method::POST,
                "/api/v1/orders",
                Some(json!({"items": [{"sku": sku, "quantity": quantity}]})),
                &[("prefer", "wait=15")],
            )
            .await;
        assert_eq!(placed.status, 202, "{:?}", placed.body);
        let id = placed.body["order_id"].as_str().unwrap().to_string();
        eventually(
            &format!("order {id} {status}"),
            Duration::from_secs(20),
            || async {
                (customer.get(&format!("/api/v1/orders/{id}")).await.body["status"] == status)
                    .then_some(())
            },
        )
        .await;
        orders.push(id);
    }
    orders
}

/// Waits until the relay has published every committed event.
async fn published(pool: &PgPool) {
    eventually("the outbox drained", Duration::from_secs(20), || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
}

fn json_lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn csv_rows(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

const FIELDS: &[&str] = &[
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "event_version",
    "event_id",
    "correlation_id",
    "causation_id",
    "user_id",
    "recorded_at",
    "payload",
];

#[tokio::test]
async fn replays_write_every_event_in_order_from_both_sources_in_both_formats() {
    let world = World::start().await;
    let orders = history(&world.ordo.api()).await;
    published(&world.pool).await;
    let total = count(&world.pool, "SELECT count(*) FROM events").await;
    let order_events = count(
        &world.pool,
        "SELECT count(*) FROM events WHERE aggregate_type = 'order'",
    )
    .await;

    // Postgres, JSON Lines: every event, by position, with the published payload.
    let path = world.file("all.jsonl");
    world.replay(&["--output", &path]).await;
    let records = json_lines(&path);
    assert_eq!(records.len() as i64, total);
    let positions: Vec<i64> = records
        .iter()
        .map(|r| r["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    for field in FIELDS {
        assert!(
            records[0].get(*field).is_some(),
            "{field} missing in {}",
            records[0]
        );
    }
    let placed = records
        .iter()
        .find(|r| r["event_type"] == "OrderPlaced" && r["aggregate_id"] == orders[0].as_str())
        .expect("OrderPlaced replayed");
    assert_eq!(
        placed["payload"]["order_id"],
        orders[0].as_str(),
        "payload is untagged: {placed}"
    );
    assert_eq!(placed["event_version"], "1");

    // Standard output is the default destination.
    let stdout = world.replay(&["--aggregate-type", "product"]).await;
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    // Postgres, CSV.
    let path = world.file("all.csv");
    world.replay(&["--format", "csv", "--output", &path]).await;
    let (header, rows) = csv_rows(&path);
    assert_eq!(header[0], "position");
    assert_eq!(&header[1..], FIELDS);
    assert_eq!(rows.len() as i64, total);
    let payload: Value = serde_json::from_str(rows.last().unwrap().last().unwrap()).unwrap();
    assert!(payload.is_object());

    // JetStream, JSON Lines: the order stream to its end, in stream order, described
    // exactly as the event store describes it.
    let stream = format!("{}_ORDER", world.namespace.to_uppercase());
    let path = world.file("orders.jsonl");
    world
        .replay(&[
            "--source",
            "jetstream",
            "--stream",
            &stream,
            "--output",
            &path,
        ])
        .await;
    let from_stream = json_lines(&path);
    assert_eq!(from_stream.len() as i64, order_events);
    let sequences: Vec<u64> = from_stream
        .iter()
        .map(|r| r["stream_sequence"].as_u64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    let from_store: Vec<&Value> = records
        .iter()
        .filter(|r| r["aggregate_type"] == "order")
        .collect();
    for (a, b) in from_stream.iter().zip(from_store) {
        for field in FIELDS {
            assert_eq!(a[*field], b[*field], "{field}");
        }
    }

    // JetStream, CSV.
    let path = world.file("orders.csv");
    world
        .replay(&[
            "--source",
            "jetstream",
            "--aggregate-type",
            "order",
            "--format",
            "csv",
            "--output",
            &path,
        ])
        .await;
    let (header, rows) = csv_rows(&path);
    assert_eq!(header[0], "stream_sequence");
    assert_eq!(rows.len() as i64, order_events);

    world.stop().await;
}

#[tokio::test]
async fn replays_filter_by_aggregate_event_type_and_time() {
    let world = World::start().await;
    let orders = history(&world.ordo.api()).await;
    published(&world.pool).await;

    for source in ["postgres", "jetstream"] {
        let path = world.file(&format!("confirmed-{source}.jsonl"));
        world
            .replay(&[
                "--source",
                source,
                "--aggregate-type",
                "order",
                "--event-type",
                "OrderConfirmed",
                "--event-type",
                "OrderRejected",
                "--output",
                &path,
            ])
            .await;
        let types: Vec<String> = json_lines(&path)
            .iter()
            .map(|r| r["event_type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, vec!["OrderConfirmed", "OrderRejected"], "{source}");

        let path = world.file(&format!("one-{source}.jsonl"));
        world
            .replay(&[
                "--source",
                source,
                "--aggregate-type",
                "order",
                "--aggregate-id",
                &orders[1],
                "--output",
                &path,
            ])
            .await;
        let records = json_lines(&path);
        assert!(!records.is_empty());
        assert!(
            records
                .iter()
                .all(|r| r["aggregate_id"] == orders[1].as_str()),
            "{source}"
        );
        let sequences: Vec<i64> = records
            .iter()
            .map(|r| r["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(sequences, (1..=records.len() as i64).collect::<Vec<_>>());
    }

    // Time range: since is inclusive, until exclusive.
    let (second_order_at,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as(
        "SELECT recorded_at FROM events WHERE aggregate_type = 'order' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(&orders[1])
    .fetch_one(&world.pool)
    .await
    .unwrap();
    let at = second_order_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let expected_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE recorded_at >= $1")
            .bind(second_order_at)
            .fetch_one(&world.pool)
            .await
            .unwrap();
    let total = count(&world.pool, "SELECT count(*) FROM events").await;
    for source in ["postgres", "jetstream"] {
        let after = world.file(&format!("after-{source}.jsonl"));
        let before = world.file(&format!("before-{source}.jsonl"));
        world
            .replay(&["--source", source, "--since", &at, "--output", &after])
            .await;
        world
            .replay(&["--source", source, "--until", &at, "--output", &before])
            .await;
        let after = json_lines(&after);
        let before = json_lines(&before);
        assert_eq!(after.len() as i64, expected_after, "{source}");
        assert_eq!((after.len() + before.len()) as i64, total, "{source}");
        assert!(after
            .iter()
            .any(|r| r["event_type"] == "OrderPlaced" && r["aggregate_id"] == orders[1].as_str()));
    }
    world.stop().await;
}

#[tokio::test]
async fn bad_replay_input_is_one_line_and_writes_nothing() {
    let world = World::start().await;
    for args in [
        vec!["--stream", "ORDO_NOPE"],
        vec!["--aggregate-type", "spaceship"],
        vec![
            "--since",
            "2024-05-02T00:00:00Z",
            "--until",
            "2024-05-01T00:00:00Z",
        ],
        vec![
            "--since",
            "2024-05-01T00:00:00Z",
            "--until",
            "2024-05-01T00:00:00Z",
        ],
        vec!["--since", "last tuesday"],
        vec!["--format", "xml"],
        vec!["--source", "kafka"],
    ] {
        let path = world.file("never.jsonl");
        let mut all = vec!["replay", "--output", &path];
        all.extend(args.iter().copied());
        let (ok, stdout, stderr) = world.ordo.cli(&all).await;
        assert!(!ok, "{args:?} should fail");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ordo: "), "{args:?}: {stderr}");
        assert!(
            !std::path::Path::new(&path).exists(),
            "{args:?} created the output file"
        );
    }
    world.stop().await;
}

async fn rows(pool: &PgPool, sql: &str) -> Vec<Value> {
    let wrapped = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t");
    let value: Value = sqlx::query_scalar(&wrapped).fetch_one(pool).await.unwrap();
    value.as_array().unwrap().clone()
}

const READ_MODELS: &[&str] = &[
    "SELECT order_id, customer_id, status, total_minor, currency, reason, short_skus, payment_id, version, placed_at, updated_at FROM orders ORDER BY order_id",
    "SELECT * FROM order_lines ORDER BY order_id, line_no",
    "SELECT sku, name, description, category, price_minor, currency, version, created_at, updated_at FROM products ORDER BY sku",
    "SELECT sku, on_hand, reserved, available, version, updated_at FROM inventory_levels ORDER BY sku",
];

#[tokio::test]
async fn a_replay_into_a_fresh_database_rebuilds_the_live_read_models() {
    let world = World::start().await;
    history(&world.ordo.api()).await;
    published(&world.pool).await;

    let fresh = TestDatabase::create().await.unwrap();
    world.replay(&["--into-read-model", &fresh.url]).await;
    let rebuilt = fresh.pool().await.unwrap();
    for sql in READ_MODELS {
        let replayed = rows(&rebuilt, sql).await;
        assert!(!replayed.is_empty(), "{sql}");
        // The live projections may still be applying the last events.
        eventually(
            &format!("live read model equal to the replay: {sql}"),
            Duration::from_secs(20),
            || {
                let pool = world.pool.clone();
                let replayed = replayed.clone();
                async move { (rows(&pool, sql).await == replayed).then_some(()) }
            },
        )
        .await;
    }

    // The target is no longer fresh: a second replay into it is refused.
    let (ok, _, stderr) = world
        .ordo
        .cli(&["replay", "--into-read-model", &fresh.url])
        .await;
    assert!(!ok);
    assert!(stderr.contains("fresh database"), "{stderr}");

    // The same from JetStream, into another fresh database.
    let fresh2 = TestDatabase::create().await.unwrap();
    world
        .replay(&["--source", "jetstream", "--into-read-model", &fresh2.url])
        .await;
    let rebuilt2 = fresh2.pool().await.unwrap();
    for sql in READ_MODELS {
        assert_eq!(
            rows(&rebuilt2, sql).await,
            rows(&rebuilt, sql).await,
            "{sql}"
        );
    }
    rebuilt.close().await;
    rebuilt2.close().await;
    world.stop().await;
}
