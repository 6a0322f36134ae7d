//! End to end: `ordo replay` from Postgres and JetStream to JSON Lines and CSV, its filters
//! and time range, its refusals, and a replay into a fresh read model database that must
//! equal the live one.

use std::time::Duration;

use ordo_tests::{eventually, Api, TestDatabase, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Runs `ordo replay <args>` against `ordo`, expecting success; answers its standard output.
async fn replay(ordo: &TestOrdo, args: &[&str]) -> String {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = ordo.cli(&all).await;
    assert!(ok, "ordo {all:?} failed: {stderr}");
    stdout
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
    let ordo = TestOrdo::start().await;
    let orders = history(&ordo.api()).await;
    published(ordo.pool()).await;
    let total = count(ordo.pool(), "SELECT count(*) FROM events").await;
    let order_events = count(
        ordo.pool(),
        "SELECT count(*) FROM events WHERE aggregate_type = 'order'",
    )
    .await;

    // Postgres, JSON Lines: every event, by position, with the published payload.
    let path = ordo.scratch_file("all.jsonl");
    replay(&ordo, &["--output", &path]).await;
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
    let stdout = replay(&ordo, &["--aggregate-type", "product"]).await;
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    // Postgres, CSV.
    let path = ordo.scratch_file("all.csv");
    replay(&ordo, &["--format", "csv", "--output", &path]).await;
    let (header, rows) = csv_rows(&path);
    assert_eq!(header[0], "position");
    assert_eq!(&header[1..], FIELDS);
    assert_eq!(rows.len() as i64, total);
    let payload: Value = serde_json::from_str(rows.last().unwrap().last().unwrap()).unwrap();
    assert!(payload.is_object());

    // JetStream, JSON Lines: the order stream to its end, in stream order, described
    // exactly as the event store describes it.
    let stream = ordo.stream_name("ORDER");
    let path = ordo.scratch_file("orders.jsonl");
    replay(
        &ordo,
        &[
            "--source",
            "jetstream",
            "--stream",
            &stream,
            "--output",
            &path,
        ],
    )
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
    let path = ordo.scratch_file("orders.csv");
    replay(
        &ordo,
        &[
            "--source",
            "jetstream",
            "--aggregate-type",
            "order",
            "--format",
            "csv",
            "--output",
            &path,
        ],
    )
    .await;
    let (header, rows) = csv_rows(&path);
    assert_eq!(header[0], "stream_sequence");
    assert_eq!(rows.len() as i64, order_events);

    ordo.stop().await;
}

#[tokio::test]
async fn replays_filter_by_aggregate_event_type_and_time() {
    let ordo = TestOrdo::start().await;
    let orders = history(&ordo.api()).await;
    published(ordo.pool()).await;

    for source in ["postgres", "jetstream"] {
        let path = ordo.scratch_file(&format!("confirmed-{source}.jsonl"));
        replay(
            &ordo,
            &[
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
            ],
        )
        .await;
        let types: Vec<String> = json_lines(&path)
            .iter()
            .map(|r| r["event_type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, vec!["OrderConfirmed", "OrderRejected"], "{source}");

        let path = ordo.scratch_file(&format!("one-{source}.jsonl"));
        replay(
            &ordo,
            &[
                "--source",
                source,
                "--aggregate-type",
                "order",
                "--aggregate-id",
                &orders[1],
                "--output",
                &path,
            ],
        )
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
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    let at = second_order_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let expected_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE recorded_at >= $1")
            .bind(second_order_at)
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    let total = count(ordo.pool(), "SELECT count(*) FROM events").await;
    for source in ["postgres", "jetstream"] {
        let after = ordo.scratch_file(&format!("after-{source}.jsonl"));
        let before = ordo.scratch_file(&format!("before-{source}.jsonl"));
        replay(
            &ordo,
            &["--source", source, "--since", &at, "--output", &after],
        )
        .await;
        replay(
            &ordo,
            &["--source", source, "--until", &at, "--output", &before],
        )
        .await;
        let after = json_lines(&after);
        let before = json_lines(&before);
        assert_eq!(after.len() as i64, expected_after, "{source}");
        assert_eq!((after.len() + before.len()) as i64, total, "{source}");
        assert!(after
            .iter()
            .any(|r| r["event_type"] == "OrderPlaced" && r["aggregate_id"] == orders[1].as_str()));
    }
    ordo.stop().await;
}

#[tokio::test]
async fn bad_replay_input_is_one_line_and_writes_nothing() {
    let ordo = TestOrdo::start().await;
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
        let path = ordo.scratch_file("never.jsonl");
        let mut all = vec!["replay", "--output", &path];
        all.extend(args.iter().copied());
        let (ok, stdout, stderr) = ordo.cli(&all).await;
        assert!(!ok, "{args:?} should fail");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ordo: "), "{args:?}: {stderr}");
        assert!(
            !std::path::Path::new(&path).exists(),
            "{args:?} created the output file"
        );
    }
    ordo.stop().await;
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
    let ordo = TestOrdo::start().await;
    history(&ordo.api()).await;
    published(ordo.pool()).await;

    let fresh = TestDatabase::create().await.unwrap();
    replay(&ordo, &["--into-read-model", &fresh.url]).await;
    let rebuilt = fresh.pool().await.unwrap();
    for sql in READ_MODELS {
        let replayed = rows(&rebuilt, sql).await;
        assert!(!replayed.is_empty(), "{sql}");
        // The live projections may still be applying the last events.
        eventually(
            &format!("live read model equal to the replay: {sql}"),
            Duration::from_secs(20),
            || {
                let pool = ordo.pool().clone();
                let replayed = replayed.clone();
                async move { (rows(&pool, sql).await == replayed).then_some(()) }
            },
        )
        .await;
    }

    // The target is no longer fresh: a second replay into it is refused.
    let (ok, _, stderr) = ordo.cli(&["replay", "--into-read-model", &fresh.url]).await;
    assert!(!ok);
    assert!(stderr.contains("fresh database"), "{stderr}");

    // The same from JetStream, into another fresh database.
    let fresh2 = TestDatabase::create().await.unwrap();
    replay(
        &ordo,
        &["--source", "jetstream", "--into-read-model", &fresh2.url],
    )
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
    ordo.stop().await;
}
