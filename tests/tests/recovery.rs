//! Recovery after a crash: with Ordo's default ack wait, the events a SIGKILLed process
//! held come back within seconds, so every read model is current within 10 s of the
//! restart.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use ordo_tests::{eventually, TestOrdo};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

/// Every durable consumer of the namespace, as (stream, consumer) names.
async fn consumers(js: &jetstream::Context, namespace: &str) -> Vec<(String, String)> {
    let prefix = format!("{}_", namespace.to_uppercase());
    let mut all = Vec::new();
    let mut names = js.stream_names();
    while let Some(name) = names.next().await {
        let name = name.expect("a stream name");
        if !name.starts_with(&prefix) || name.ends_with("_DLQ") {
            continue;
        }
        let stream = js.get_stream(&name).await.expect("the stream");
        let mut consumer_names = stream.consumer_names();
        while let Some(consumer) = consumer_names.next().await {
            all.push((name.clone(), consumer.expect("a consumer name")));
        }
    }
    all
}

/// Events delivered and not yet acknowledged, over every consumer; `None` when some
/// consumer also has events not yet delivered.
async fn in_flight(js: &jetstream::Context, consumers: &[(String, String)]) -> Option<usize> {
    let mut held = 0;
    let mut waiting = 0;
    for (stream, consumer) in consumers {
        let stream = js.get_stream(stream).await.ok()?;
        let info = stream.consumer_info(consumer).await.ok()?;
        held += info.num_ack_pending;
        waiting += info.num_pending;
    }
    (waiting == 0).then_some(held)
}

/// What still keeps the read models from being current, or `None` when they are: the
/// outbox is empty, no consumer has anything to deliver or acknowledge, every order placed
/// is in the orders read model awaiting payment, and the inventory read model reserved one
/// item per order.
async fn behind(
    pool: &PgPool,
    js: &jetstream::Context,
    consumers: &[(String, String)],
) -> Option<String> {
    let (outbox, orders, listed, reserved, dead): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox),
                (SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'order'),
                (SELECT count(*) FROM orders WHERE status = 'awaiting_payment'),
                (SELECT coalesce(sum(reserved), 0)::bigint FROM inventory_levels WHERE sku = 'KETTLE'),
                (SELECT count(*) FROM dead_letter_parks)",
    )
    .fetch_one(pool)
    .await
    .expect("read models read");
    let in_flight = in_flight(js, consumers).await;
    let current =
        outbox == 0 && orders > 0 && listed == orders && reserved == orders && in_flight == Some(0);
    (!current).then(|| {
        format!(
            "outbox {outbox}, orders {orders}, awaiting payment {listed}, reserved {reserved}, \
             parked aggregates {dead}, unacknowledged {in_flight:?}"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_are_current_within_ten_seconds_of_a_restart_after_sigkill() {
    // Ordo's own ack wait, not the harness's shorter one.
    let mut ordo = TestOrdo::builder()
        .env("ORDO_CONSUMER_ACK_WAIT", "")
        .start()
        .await;
    let api = ordo.api();
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "KETTLE", "name": "Kettle", "category": "kitchen", "price": 3000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            "/api/v1/inventory/KETTLE/restock",
            json!({"quantity": 1000}),
        )
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = api.register("rita@example.com").await;
    let js = jetstream::new(ordo.nats().await);

    // Checkouts keep arriving; the process is killed while it holds some of their events.
    let placing: Vec<_> = (0..40)
        .map(|_| {
            let customer = customer.clone();
            tokio::spawn(async move {
                customer
                    .try_send(
                        Method::POST,
                        "/api/v1/orders",
                        Some(json!({"items": [{"sku": "KETTLE", "quantity": 1}]})),
                        &[],
                    )
                    .await
            })
        })
        .collect();
    let consumers = eventually("the consumers", Duration::from_secs(10), || async {
        let all = consumers(&js, ordo.namespace()).await;
        (all.len() >= 10).then_some(all)
    })
    .await;
    let pool = ordo.pool().clone();
    let held = eventually(
        "orders placed and events held by the process",
        Duration::from_secs(20),
        || async {
            // Killed only once some checkouts are in: before that it would hold only the
            // catalog's events, and there would be nothing to recover.
            let placed: i64 =
                sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'order'")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            if placed == 0 {
                return None;
            }
            let mut held = 0;
            for (stream, consumer) in &consumers {
                let info = js
                    .get_stream(stream)
                    .await
                    .ok()?
                    .consumer_info(consumer)
                    .await
                    .ok()?;
                held += info.num_ack_pending;
            }
            (held > 0).then_some(held)
        },
    )
    .await;
    ordo.kill().await;
    let killed = Instant::now();
    for placed in placing {
        let _ = placed.await;
    }
    // The events held are still unacknowledged on the server: they wait for the ack wait.
    assert!(held > 0);

    ordo.restart().await.expect("restarts");
    let restarted = Instant::now();
    let mut last = String::new();
    let deadline = restarted + Duration::from_secs(60);
    while let Some(state) = behind(&pool, &js, &consumers).await {
        assert!(
            Instant::now() < deadline,
            "read models still behind 60 s after the restart: {state}"
        );
        if state != last {
            eprintln!("{:?} after the restart: {state}", restarted.elapsed());
            last = state;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let recovered = restarted.elapsed();
    eprintln!(
        "recovery: {held} events held at the kill; process back {:?} after it; read models \
         current {recovered:?} after the restart",
        restarted - killed
    );
    assert!(
        recovered < Duration::from_secs(10),
        "read models current only {recovered:?} after the restart"
    );
    ordo.stop().await;
}
