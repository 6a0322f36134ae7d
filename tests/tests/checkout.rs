//! End to end: the checkout saga through HTTP against real Postgres and NATS — every path,
//! crashes at each step, duplicate deliveries, dead letters.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ordo_aggregates::inventory::InventoryEvent;
use ordo_nats::envelope::ReceivedEvent;
use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

async fn shop(api: &Api) -> (Api, Api) {
    let admin = api.admin().await;
    for (sku, price, stock) in [("WIDGET", 500, 10), ("GADGET", 2500, 5)] {
        let created = admin
            .post("/api/v1/products", json!({"sku": sku, "name": sku, "category": "test", "price": price, "currency": "EUR"}))
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
    let (customer, _) = api.register("carol@example.com").await;
    (admin, customer)
}

/// Places an order for 2 widgets and 1 gadget and waits until it awaits payment.
async fn place(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 2}, {"sku": "GADGET", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(
        placed.body["status"], "awaiting_payment",
        "{:?}",
        placed.body
    );
    placed.body["order_id"].as_str().unwrap().to_string()
}

async fn pay(customer: &Api, order_id: &str, token: &str, wait: bool) -> Value {
    let headers: &[(&str, &str)] = if wait { &[("prefer", "wait=15")] } else { &[] };
    let answer = customer
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": token})),
            headers,
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    answer.body
}

async fn order(customer: &Api, order_id: &str) -> Value {
    customer
        .get(&format!("/api/v1/orders/{order_id}"))
        .await
        .body
}

async fn wait_order_status(customer: &Api, order_id: &str, status: &str) -> Value {
    eventually(
        &format!("order {order_id} {status}"),
        Duration::from_secs(20),
        || async {
            let body = order(customer, order_id).await;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

async fn wait_payment_status(customer: &Api, payment_id: &str, status: &str) -> Value {
    eventually(
        &format!("payment {payment_id} {status}"),
        Duration::from_secs(20),
        || async {
            let body = customer
                .get(&format!("/api/v1/payments/{payment_id}"))
                .await
                .body;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

/// The events of inventory item `sku` as the event store holds them, decoded through the
/// inventory stream's contract (upcast and typed as a consumer reads them).
async fn inventory_events(pool: &PgPool, sku: &str) -> Vec<InventoryEvent> {
    let rows: Vec<(i64, String, String, Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT sequence, event_type, event_version, payload::jsonb, recorded_at FROM events \
         WHERE aggregate_type = 'inventory' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(sku)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(
            |(sequence, event_type, event_version, payload, recorded_at)| {
                let message = ReceivedEvent {
                    stream: String::new(),
                    stream_sequence: 0,
                    subject: String::new(),
                    aggregate_type: "inventory".into(),
                    aggregate_id: sku.to_string(),
                    sequence,
                    payload: payload[&event_type].clone(),
                    event_type,
                    event_version,
                    event_id: uuid::Uuid::nil(),
                    correlation_id: String::new(),
                    causation_id: String::new(),
                    user_id: None,
                    recorded_at,
                    delivered: 1,
                };
                ordo_contracts::inventory(&message)
                    .unwrap_or_else(|err| panic!("a stored inventory event decodes: {err}"))
                    .event
            },
        )
        .collect()
}

/// Stock as the write side's events say, per SKU: (on_hand, reserved).
async fn stock(pool: &PgPool, sku: &str) -> (i64, i64) {
    let (mut on_hand, mut reserved) = (0i64, 0i64);
    for event in inventory_events(pool, sku).await {
        match event {
            InventoryEvent::Restocked {
                on_hand: after_restock,
                ..
            } => on_hand = i64::try_from(after_restock).unwrap(),
            InventoryEvent::StockReserved { quantity, .. } => reserved += i64::from(quantity),
            InventoryEvent::StockReleased { quantity, .. } => reserved -= i64::from(quantity),
            InventoryEvent::StockCommitted { quantity, .. } => {
                reserved -= i64::from(quantity);
                on_hand -= i64::from(quantity);
            }
            InventoryEvent::StockReturned { quantity, .. } => on_hand += i64::from(quantity),
            InventoryEvent::SafetyThresholdSet { .. }
            | InventoryEvent::StockBelowThreshold { .. } => {}
        }
    }
    (on_hand, reserved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_commits_its_stock() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (admin, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    let paid = pay(&customer, &order_id, "tok_success", true).await;
    assert_eq!(paid["order_status"], "paid", "{paid:?}");
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    let payment = wait_payment_status(&customer, &payment_id, "captured").await;
    assert_eq!(payment["amount"], 2 * 500 + 2500);
    eventually("stock committed", Duration::from_secs(10), || async {
        (stock(ordo.pool(), "WIDGET").await == (8, 0)
            && stock(ordo.pool(), "GADGET").await == (4, 0))
            .then_some(())
    })
    .await;
    let saga = admin.get(&format!("/api/v1/admin/sagas/{order_id}")).await;
    assert_eq!(saga.status, 200);
    assert_eq!(saga.body["status"], "paid");
    let steps: Vec<String> = saga.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "reserve_stock",
        "confirm_order",
        "charge_requested",
        "mark_order_paid",
        "commit_stock",
    ] {
        assert!(
            steps.iter().any(|s| s == expected),
            "{expected} missing from {steps:?}"
        );
    }
    // Customers may not see sagas; a paid order cannot be cancelled.
    assert_eq!(
        customer
            .get(&format!("/api/v1/admin/sagas/{order_id}"))
            .await
            .status,
        403
    );
    assert_eq!(
        customer
            .post(&format!("/api/v1/orders/{order_id}/cancel"), json!({}))
            .await
            .status,
        409
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_refund_of_a_paid_order_refunds_its_payment() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (admin, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    // Not paid yet: nothing to refund.
    assert_eq!(
        admin
            .post(&format!("/api/v1/orders/{order_id}/refund"), json!({}))
            .await
            .status,
        409
    );
    let paid = pay(&customer, &order_id, "tok_success", true).await;
    assert_eq!(paid["order_status"], "paid");
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    assert_eq!(
        customer
            .post(&format!("/api/v1/orders/{order_id}/refund"), json!({}))
            .await
            .status,
        403
    );
    let refunded = admin
        .post(&format!("/api/v1/orders/{order_id}/refund"), json!({}))
        .await;
    assert_eq!(refunded.status, 202, "{:?}", refunded.body);
    let order = wait_order_status(&customer, &order_id, "refunded").await;
    assert_eq!(order["reason"], "refunded_by_admin");
    let payment = wait_payment_status(&customer, &payment_id, "refunded").await;
    assert_eq!(payment["refunded"], payment["amount"]);
    // A second refund changes nothing.
    assert_eq!(
        admin
            .post(&format!("/api/v1/orders/{order_id}/refund"), json!({}))
            .await
            .status,
        202
    );
    eventually("one refund only", Duration::from_secs(10), || async {
        let types = ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await;
        (types == ["PaymentCreated", "PaymentCaptured", "PaymentRefunded"]).then_some(())
    })
    .await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_keeps_the_order_payable_until_it_is_cancelled() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    let paid = pay(&customer, &order_id, "tok_decline", true).await;
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    assert_eq!(paid["order_status"], "awaiting_payment", "{paid:?}");
    wait_payment_status(&customer, &payment_id, "failed").await;
    // The stock stays held for the order, which may still be paid before its deadline.
    assert_eq!(
        order(&customer, &order_id).await["status"],
        "awaiting_payment"
    );
    assert_eq!(stock(ordo.pool(), "WIDGET").await, (10, 2));
    let cancelled = customer
        .post(&format!("/api/v1/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    wait_order_status(&customer, &order_id, "cancelled").await;
    eventually("stock released", Duration::from_secs(10), || async {
        (stock(ordo.pool(), "WIDGET").await == (10, 0)
            && stock(ordo.pool(), "GADGET").await == (5, 0))
            .then_some(())
    })
    .await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_paying_releases_the_stock_and_voids_the_payment() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    let paid = pay(&customer, &order_id, "tok_timeout", false).await;
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    wait_payment_status(&customer, &payment_id, "created").await;
    let cancelled = customer
        .post(&format!("/api/v1/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    let body = wait_order_status(&customer, &order_id, "cancelled").await;
    assert_eq!(body["reason"], "cancelled_by_customer");
    wait_payment_status(&customer, &payment_id, "voided").await;
    eventually("stock released", Duration::from_secs(10), || async {
        (stock(ordo.pool(), "WIDGET").await == (10, 0)).then_some(())
    })
    .await;
    // Someone else cannot cancel or pay it.
    let (other, _) = api.register("mallory@example.com").await;
    assert_eq!(
        other
            .post(&format!("/api/v1/orders/{order_id}/cancel"), json!({}))
            .await
            .status,
        404
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_not_paid_in_time_expires_and_releases_its_stock() {
    let ordo = TestOrdo::with_env(&[
        ("ORDO_PAYMENT_TIMEOUT", "1s"),
        ("ORDO_PAYMENT_GRACE", "1s"),
        ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ])
    .await;
    let api = ordo.api();
    let (admin, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    let paid = pay(&customer, &order_id, "tok_timeout", false).await;
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    let expired = wait_order_status(&customer, &order_id, "expired").await;
    assert_eq!(expired["reason"], "payment_timeout");
    // The provider never answered: the order was held for the grace, then the payment
    // voided before the order expired.
    wait_payment_status(&customer, &payment_id, "voided").await;

    eventually("stock released", Duration::from_secs(10), || async {
        (stock(ordo.pool(), "WIDGET").await == (10, 0)
            && stock(ordo.pool(), "GADGET").await == (5, 0))
            .then_some(())
    })
    .await;
    let saga = admin.get(&format!("/api/v1/admin/sagas/{order_id}")).await;
    assert_eq!(saga.body["status"], "expired");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_callbacks_capture_once() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    let paid = pay(&customer, &order_id, "tok_duplicate", true).await;
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    wait_order_status(&customer, &order_id, "paid").await;
    // The sandbox sends the capture three times; give the repeats time to arrive by waiting
    // for their effect on nothing: the payment's events stay Created, Captured.
    eventually("callbacks applied", Duration::from_secs(10), || async {
        let types = ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await;
        (types == ["PaymentCreated", "PaymentCaptured"]).then_some(())
    })
    .await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "order", &order_id).await,
        [
            "OrderPlaced",
            "OrderConfirmed",
            "PaymentAttached",
            "OrderPaid"
        ]
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_with_a_bad_signature_change_nothing() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let order_id = place(&customer).await;
    let paid = pay(&customer, &order_id, "tok_timeout", false).await;
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    let body = json!({"payment_id": payment_id, "provider_ref": "forged", "status": "captured", "amount": 3500, "currency": "EUR"});
    let unsigned = api
        .post(
            &format!("/api/v1/payments/{payment_id}/callbacks"),
            body.clone(),
        )
        .await;
    assert_eq!(unsigned.status, 401);
    let forged = api
        .send(
            Method::POST,
            &format!("/api/v1/payments/{payment_id}/callbacks"),
            Some(body),
            &[("ordo-signature", "sha256=00ff")],
        )
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        ["PaymentCreated"]
    );
    assert_eq!(
        order(&customer, &order_id).await["status"],
        "awaiting_payment"
    );
    ordo.stop().await;
}

/// Waits until the process died (it aborts itself at the crash point).
async fn wait_for_crash(ordo: &mut TestOrdo) {
    eventually(
        "the process crashed at its crash point",
        Duration::from_secs(20),
        || {
            let alive = ordo.is_running();
            async move { (!alive).then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_saga_step_still_ends_every_checkout_correctly() {
    let mut ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;

    // Steps on the way to an order awaiting payment.
    let mut awaiting = Vec::new();
    for step in ["reserve_stock", "confirm_order"] {
        ordo.set_env("ORDO_CRASH_AFTER_STEP", step);
        ordo.restart().await.unwrap();
        let placed = customer
            .post(
                "/api/v1/orders",
                json!({"items": [{"sku": "WIDGET", "quantity": 1}]}),
            )
            .await;
        assert_eq!(placed.status, 202);
        wait_for_crash(&mut ordo).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
        ordo.restart().await.unwrap();
        let order_id = placed.body["order_id"].as_str().unwrap().to_string();
        wait_order_status(&customer, &order_id, "awaiting_payment").await;
        awaiting.push(order_id);
    }
    assert_eq!(
        stock(ordo.pool(), "WIDGET").await,
        (10, 2),
        "each order reserved once"
    );

    // Steps of paying: one order paid through a crash at each payment step.
    let mut payment_ids = Vec::new();
    for step in ["charge_requested", "mark_order_paid", "commit_stock"] {
        let placed = customer
            .send(
                Method::POST,
                "/api/v1/orders",
                Some(json!({"items": [{"sku": "WIDGET", "quantity": 1}]})),
                &[("prefer", "wait=15")],
            )
            .await;
        assert_eq!(placed.body["status"], "awaiting_payment");
        let order_id = placed.body["order_id"].as_str().unwrap().to_string();
        ordo.set_env("ORDO_CRASH_AFTER_STEP", step);
        ordo.restart().await.unwrap();
        let payment = pay(&customer, &order_id, "tok_success", false).await;
        payment_ids.push(payment["payment_id"].as_str().unwrap().to_string());
        wait_for_crash(&mut ordo).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
        ordo.restart().await.unwrap();
        wait_order_status(&customer, &order_id, "paid").await;
    }

    // A compensation step: an order cancelled through a crash while releasing its stock.
    let cancelled_order = awaiting[0].clone();
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "release_stock");
    ordo.restart().await.unwrap();
    assert_eq!(
        customer
            .post(
                &format!("/api/v1/orders/{cancelled_order}/cancel"),
                json!({})
            )
            .await
            .status,
        202
    );
    wait_for_crash(&mut ordo).await;
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
    ordo.restart().await.unwrap();
    wait_order_status(&customer, &cancelled_order, "cancelled").await;

    // A rejection through a crash at the reject step.
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "reject_order");
    ordo.restart().await.unwrap();
    let too_many = customer
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "GADGET", "quantity": 50}]}),
        )
        .await;
    wait_for_crash(&mut ordo).await;
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
    ordo.restart().await.unwrap();
    wait_order_status(
        &customer,
        too_many.body["order_id"].as_str().unwrap(),
        "rejected",
    )
    .await;

    // Nothing applied twice: three widgets sold, one still reserved (awaiting[1]), one
    // capture per payment.
    eventually("stock settled", Duration::from_secs(15), || async {
        (stock(ordo.pool(), "WIDGET").await == (7, 1)
            && stock(ordo.pool(), "GADGET").await == (5, 0))
            .then_some(())
    })
    .await;
    for payment_id in &payment_ids {
        assert_eq!(
            ordo_tests::event_types(ordo.pool(), "payment", payment_id).await,
            ["PaymentCreated", "PaymentCaptured"]
        );
    }
    assert_eq!(
        order(&customer, &awaiting[1]).await["status"],
        "awaiting_payment"
    );
    ordo.stop().await;
}

/// Publishes every message of the namespace's order, payment and inventory streams again
/// under new message ids, as a redelivery of each would look to the consumers.
async fn deliver_everything_twice(namespace: &str) -> usize {
    use futures::StreamExt;
    let client = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut count = 0;
    for kind in ["ORDER", "PAYMENT", "INVENTORY"] {
        let stream = js
            .get_stream(ordo_tests::stream_name(namespace, kind))
            .await
            .unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut copies = Vec::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(500), messages.next()).await
        {
            copies.push((
                message.subject.clone(),
                message.headers.clone().unwrap_or_default(),
                message.payload.clone(),
            ));
        }
        for (subject, mut headers, payload) in copies {
            let id = headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            headers.insert("Nats-Msg-Id", format!("{id}:again").as_str());
            js.publish_with_headers(subject, headers, payload)
                .await
                .unwrap()
                .await
                .unwrap();
            count += 1;
        }
    }
    count
}

/// Waits until every durable consumer of the namespace has nothing pending.
async fn consumers_idle(namespace: &str) {
    let client = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    eventually("consumers idle", Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            for (kind, names) in [
                ("ORDER", &["projection-orders", "saga-checkout"][..]),
                (
                    "PAYMENT",
                    &["projection-payments", "saga-checkout-payments"][..],
                ),
                ("INVENTORY", &["projection-inventory"][..]),
            ] {
                let stream = js
                    .get_stream(ordo_tests::stream_name(namespace, kind))
                    .await
                    .ok()?;
                for name in names {
                    let info = stream.consumer_info(*name).await.ok()?;
                    if info.num_pending > 0 || info.num_ack_pending > 0 {
                        return None;
                    }
                }
            }
            Some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_twice_changes_nothing() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    // One paid, one declined, one expired-by-cancel with a late capture refunded.
    let paid = place(&customer).await;
    pay(&customer, &paid, "tok_success", true).await;
    let declined = place(&customer).await;
    let payment = pay(&customer, &declined, "tok_decline", true).await;
    wait_payment_status(&customer, payment["payment_id"].as_str().unwrap(), "failed").await;
    let cancelled = customer
        .post(&format!("/api/v1/orders/{declined}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    wait_order_status(&customer, &declined, "cancelled").await;
    consumers_idle(ordo.namespace()).await;

    let count_events = || async {
        sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM events")
            .fetch_one(ordo.pool())
            .await
            .unwrap()
            .0
    };
    let before = count_events().await;
    let inventory_before: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, on_hand, reserved FROM inventory_levels ORDER BY sku")
            .fetch_all(ordo.pool())
            .await
            .unwrap();
    let republished = deliver_everything_twice(ordo.namespace()).await;
    assert!(republished >= 15, "republished {republished}");
    consumers_idle(ordo.namespace()).await;

    assert_eq!(count_events().await, before, "no command ran twice");
    let inventory_after: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, on_hand, reserved FROM inventory_levels ORDER BY sku")
            .fetch_all(ordo.pool())
            .await
            .unwrap();
    assert_eq!(inventory_before, inventory_after, "read models unchanged");
    assert_eq!(stock(ordo.pool(), "WIDGET").await, (8, 0));
    assert_eq!(order(&customer, &paid).await["status"], "paid");
    ordo.stop().await;
}

const FAIL_FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_CONSUMER_MAX_DELIVER", "2"),
    ("ORDO_CONSUMER_BACKOFF", "100ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

/// The dead letters as `ordo dlq list --json` prints them.
async fn dead_letters(ordo: &TestOrdo) -> Vec<Value> {
    let (ok, stdout, stderr) = ordo.cli(&["dlq", "list", "--json"]).await;
    assert!(ok, "ordo dlq list failed: {stderr}");
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_parks_its_aggregate_and_is_redriven_after_the_fix() {
    let ordo = TestOrdo::with_env(FAIL_FAST).await;
    let api = ordo.api();
    let (_, victim) = shop(&api).await;
    let (bystander, _) = api.register("dave@example.com").await;
    let victim_id: String = sqlx::query_as::<_, (uuid::Uuid,)>(
        "SELECT user_id FROM users WHERE email = 'carol@example.com'",
    )
    .fetch_one(ordo.pool())
    .await
    .unwrap()
    .0
    .to_string();
    // The orders read model refuses this customer's rows: a fault in the projection.
    sqlx::query(
        "CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'orders read model is broken for this customer'; END; $$",
    )
    .execute(ordo.pool())
    .await
    .unwrap();
    sqlx::query(&format!(
        "CREATE TRIGGER refuse_order BEFORE INSERT ON orders FOR EACH ROW
         WHEN (NEW.customer_id = '{victim_id}') EXECUTE FUNCTION refuse_order()"
    ))
    .execute(ordo.pool())
    .await
    .unwrap();

    let placed = victim
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "WIDGET", "quantity": 1}]}),
        )
        .await;
    let poisoned = placed.body["order_id"].as_str().unwrap().to_string();
    // Its OrderPlaced is dead-lettered with the error; its OrderConfirmed parks behind it.
    let letters = eventually(
        "the order's events in the DLQ",
        Duration::from_secs(20),
        || async {
            let letters: Vec<Value> = dead_letters(&ordo)
                .await
                .into_iter()
                .filter(|l| l["aggregate_id"] == poisoned.as_str())
                .collect();
            (letters.len() == 2).then_some(letters)
        },
    )
    .await;
    assert_eq!(letters[0]["consumer"], "projection-orders");
    assert_eq!(letters[0]["event_type"], "OrderPlaced");
    assert!(
        letters[0]["error"].as_str().unwrap().contains("broken"),
        "{letters:?}"
    );
    assert_eq!(letters[0]["attempts"], 2);
    assert_eq!(letters[0]["parked"], false);
    assert_eq!(letters[1]["event_type"], "OrderConfirmed");
    assert_eq!(letters[1]["parked"], true);
    let (ok, shown, _) = ordo
        .cli(&["dlq", "show", &letters[0]["dlq_sequence"].to_string()])
        .await;
    assert!(ok);
    assert!(shown.contains("orders read model is broken"), "{shown}");

    // Other aggregates flow on meanwhile.
    let other = bystander
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "GADGET", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(other.body["status"], "awaiting_payment");
    assert_eq!(
        victim
            .get(&format!("/api/v1/orders/{poisoned}"))
            .await
            .status,
        404
    );

    // Fix the cause, re-drive: both events are applied, in order.
    sqlx::query("DROP TRIGGER refuse_order ON orders")
        .execute(ordo.pool())
        .await
        .unwrap();
    let (ok, out, err) = ordo
        .cli(&["dlq", "redrive", &letters[0]["dlq_sequence"].to_string()])
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("re-drove 2 dead letter(s)"), "{out}");
    wait_order_status(&victim, &poisoned, "awaiting_payment").await;
    assert!(dead_letters(&ordo).await.is_empty());
    // A bad sequence is a clear error, not a crash.
    let (ok, _, err) = ordo.cli(&["dlq", "show", "999999"]).await;
    assert!(!ok);
    assert!(err.contains("no dead letter 999999"), "{err}");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_whose_step_keeps_failing_is_stuck_and_resumes_after_the_fix() {
    let ordo = TestOrdo::with_env(FAIL_FAST).await;
    let api = ordo.api();
    let (admin, customer) = shop(&api).await;
    sqlx::query(
        "CREATE FUNCTION refuse_step() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'saga log is full'; END; $$",
    )
    .execute(ordo.pool())
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_step BEFORE INSERT ON saga_steps FOR EACH ROW
         WHEN (NEW.step = 'confirm_order') EXECUTE FUNCTION refuse_step()",
    )
    .execute(ordo.pool())
    .await
    .unwrap();
    let placed = customer
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "WIDGET", "quantity": 1}]}),
        )
        .await;
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let stuck = eventually("the saga stuck", Duration::from_secs(20), || async {
        let saga = admin
            .get(&format!("/api/v1/admin/sagas/{order_id}"))
            .await
            .body;
        (saga["status"] == "stuck").then_some(saga)
    })
    .await;
    assert!(
        stuck["last_error"]
            .as_str()
            .unwrap()
            .contains("saga log is full"),
        "{stuck:?}"
    );
    // Resuming while the cause is still there is possible but pointless; fix it first.
    sqlx::query("DROP TRIGGER refuse_step ON saga_steps")
        .execute(ordo.pool())
        .await
        .unwrap();
    let resumed = admin
        .post(&format!("/api/v1/admin/sagas/{order_id}/resume"), json!({}))
        .await;
    assert_eq!(resumed.status, 200, "{:?}", resumed.body);
    assert!(!resumed.body["redriven"].as_array().unwrap().is_empty());
    let saga = eventually("the saga resumed", Duration::from_secs(20), || async {
        let saga = admin
            .get(&format!("/api/v1/admin/sagas/{order_id}"))
            .await
            .body;
        (saga["status"] == "awaiting_payment" && saga["deadline"].is_string()).then_some(saga)
    })
    .await;
    assert!(saga["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["step"] == "resumed"));
    // Resuming a saga that is not stuck is refused; only admins may.
    assert_eq!(
        admin
            .post(&format!("/api/v1/admin/sagas/{order_id}/resume"), json!({}))
            .await
            .status,
        409
    );
    assert_eq!(
        customer
            .post(&format!("/api/v1/admin/sagas/{order_id}/resume"), json!({}))
            .await
            .status,
        403
    );
    assert_eq!(stock(ordo.pool(), "WIDGET").await, (10, 1), "reserved once");
    ordo.stop().await;
}

/// The customer's payment token is sealed before it enters an event: neither the event
/// store nor the payment stream shows it, and the payment is still charged with it (the
/// sandbox's outcome follows the token).
#[tokio::test]
async fn the_payment_token_never_enters_an_event_in_the_clear() {
    let ordo = TestOrdo::start().await;
    let (_admin, customer) = shop(&ordo.api()).await;
    let token = "tok_success";
    let order_id = place(&customer).await;
    pay(&customer, &order_id, token, false).await;
    wait_order_status(&customer, &order_id, "paid").await;

    let created: Vec<(Value,)> = sqlx::query_as(
        "SELECT payload FROM events WHERE aggregate_type = 'payment' AND event_type = 'PaymentCreated'",
    )
    .fetch_all(ordo.pool())
    .await
    .unwrap();
    assert_eq!(created.len(), 1);
    let sealed = created[0].0["PaymentCreated"]["sealed_token"]
        .as_str()
        .expect("a sealed token")
        .to_owned();
    assert!(sealed.starts_with("sealed:v1:"), "{sealed}");
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE payload::text LIKE $1")
        .bind(format!("%{token}%"))
        .fetch_one(ordo.pool())
        .await
        .unwrap();
    assert_eq!(clear, 0, "the token stands in the event store in the clear");

    // What a consumer of the payment stream reads holds the sealed form only.
    let (ok, replayed, err) = ordo
        .cli(&[
            "replay",
            "--source",
            "jetstream",
            "--aggregate-type",
            "payment",
        ])
        .await;
    assert!(ok, "{err}");
    assert!(replayed.contains(&sealed), "{replayed}");
    assert!(!replayed.contains(token), "{replayed}");
    ordo.stop().await;
}
