//! End to end: the payment trust boundary against a real `ordo serve`. Each test is an
//! attack that must fail: the sandbox provider reached when it is off, a sandbox charge
//! sending its signed outcome elsewhere or for a payment Ordo never made, a provider
//! callback replayed after five minutes, a `PaymentCaptured` published by hand on NATS, and
//! a sandbox started next to a real provider.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ordo_nats::envelope::{EventRow, OutgoingEvent};
use ordo_nats::subjects::Namespace;
use ordo_payments::signature::{self, SIGNATURE_HEADER};
use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const PAYMENT_SECRET: &str = "payments-trust-test-secret-0123456789";

/// Starts Ordo with the payment secret, a short sandbox delay and ack wait, and `extra`.
async fn start(extra: &[(&str, &str)]) -> TestOrdo {
    TestOrdo::builder()
        .env("ORDO_PAYMENT_SECRET", PAYMENT_SECRET)
        .env("ORDO_SANDBOX_DELAY", "50ms")
        .env("ORDO_CONSUMER_ACK_WAIT", "2s")
        .envs(extra)
        .start()
        .await
}

/// A catalog of one product (WIDGET at 5.00 EUR, 10 in stock) and a customer.
async fn shop(api: &Api) -> Api {
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "WIDGET", "name": "Widget", "category": "test", "price": 500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/WIDGET/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    api.register("mallory@example.com").await.0
}

/// Places an order for 2 widgets (10.00 EUR) and waits until it awaits payment.
async fn place(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 2}]})),
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

/// Pays `order_id` with `token` without waiting; answers the payment id.
async fn pay(customer: &Api, order_id: &str, token: &str) -> String {
    let answer = customer
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": token}),
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    answer.body["payment_id"].as_str().unwrap().to_string()
}

async fn order_status(customer: &Api, order_id: &str) -> Value {
    customer
        .get(&format!("/api/v1/orders/{order_id}"))
        .await
        .body["status"]
        .clone()
}

/// Waits until the charge of `payment_id` was asked of the provider by the saga.
async fn wait_charge_requested(admin: &Api, order_id: &str) {
    eventually("charge requested", Duration::from_secs(30), || async {
        let saga = admin.get(&format!("/api/v1/admin/sagas/{order_id}")).await;
        saga.body["steps"]
            .as_array()
            .is_some_and(|steps| steps.iter().any(|s| s["step"] == "charge_requested"))
            .then_some(())
    })
    .await;
}

/// A plain HTTP listener on a free port that counts the connections it gets.
async fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/steal", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_is_off_unless_asked_for_and_charges_only_recorded_payments() {
    let mut ordo = start(&[]).await;
    let api = ordo.api();
    let charge = json!({
        "payment_id": uuid::Uuid::new_v4(), "amount": 1000, "currency": "EUR",
        "method": "card", "token": "tok_success",
    });
    // Asked for (as the tests and the demo do): a payment Ordo never made is refused.
    let unknown = api.post("/sandbox/provider/charges", charge.clone()).await;
    assert_eq!(unknown.status, 422, "{:?}", unknown.body);
    assert_eq!(unknown.body["error"], "unknown_payment");
    // Not asked for: the route does not exist.
    ordo.set_env("ORDO_SANDBOX_PROVIDER", "");
    ordo.restart().await.expect("ordo restarts");
    let off = api.post("/sandbox/provider/charges", charge).await;
    assert_eq!(off.status, 404, "{:?}", off.body);
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_charge_with_a_foreign_callback_url_or_amount_is_refused_and_nothing_is_called() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let customer = shop(&api).await;
    let admin = api.admin().await;
    let (foreign_url, hits) = counting_listener().await;
    let order_id = place(&customer).await;
    let payment_id = pay(&customer, &order_id, "tok_timeout").await;
    wait_charge_requested(&admin, &order_id).await;
    let charge = |amount: i64, currency: &str, callback_url: &str| {
        json!({
            "payment_id": payment_id, "amount": amount, "currency": currency,
            "method": "card", "token": "tok_success", "callback_url": callback_url,
        })
    };
    let own_url = format!("{}/api/v1/payments/{payment_id}/callbacks", ordo.base_url());
    let foreign = api
        .post(
            "/sandbox/provider/charges",
            charge(1000, "EUR", &foreign_url),
        )
        .await;
    assert_eq!(foreign.status, 422, "{:?}", foreign.body);
    assert_eq!(foreign.body["error"], "foreign_callback_url");
    let cheaper = api
        .post("/sandbox/provider/charges", charge(1, "EUR", &own_url))
        .await;
    assert_eq!(cheaper.status, 422, "{:?}", cheaper.body);
    let other_currency = api
        .post("/sandbox/provider/charges", charge(1000, "USD", &own_url))
        .await;
    assert_eq!(other_currency.status, 422, "{:?}", other_currency.body);

    // A real payment, charged after the attempts, is answered with the same delay: once it
    // is captured, any callback the refused charges had scheduled would have been sent.
    let second = place(&customer).await;
    pay(&customer, &second, "tok_success").await;
    eventually("the second order paid", Duration::from_secs(30), || async {
        (order_status(&customer, &second).await == "paid").then_some(())
    })
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the foreign URL was called");
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        ["PaymentCreated"]
    );
    assert_eq!(order_status(&customer, &order_id).await, "awaiting_payment");
    ordo.stop().await;
}

/// A provider callback of `payment_id` reporting a capture of `amount` EUR, signed at `at`.
async fn callback(api: &Api, payment_id: &str, amount: i64, at: i64) -> u16 {
    let body = serde_json::to_vec(&json!({
        "payment_id": payment_id, "provider_ref": "sbx_replayed", "status": "captured",
        "amount": amount, "currency": "EUR",
    }))
    .unwrap();
    let signed = signature::sign(PAYMENT_SECRET.as_bytes(), at, &body);
    reqwest::Client::new()
        .post(format!(
            "{}/api/v1/payments/{payment_id}/callbacks",
            api.base
        ))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signed)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_signed_more_than_five_minutes_ago_is_refused_and_the_order_stays_unpaid() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let customer = shop(&api).await;
    let order_id = place(&customer).await;
    let payment_id = pay(&customer, &order_id, "tok_timeout").await;
    wait_charge_requested(&api.admin().await, &order_id).await;
    let now = signature::now();
    assert_eq!(callback(&api, &payment_id, 1000, now - 6 * 60).await, 401);
    assert_eq!(callback(&api, &payment_id, 1000, now + 6 * 60).await, 401);
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        ["PaymentCreated"]
    );
    assert_eq!(order_status(&customer, &order_id).await, "awaiting_payment");
    assert!(!ordo_tests::event_types(ordo.pool(), "order", &order_id)
        .await
        .contains(&"OrderPaid".to_string()));
    // The same callback signed now is the provider's answer: it pays the order, and its
    // repeat changes nothing.
    assert_eq!(callback(&api, &payment_id, 1000, now).await, 200);
    assert_eq!(callback(&api, &payment_id, 1000, now).await, 200);
    eventually("the order paid", Duration::from_secs(30), || async {
        (order_status(&customer, &order_id).await == "paid").then_some(())
    })
    .await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        ["PaymentCreated", "PaymentCaptured"]
    );
    ordo.stop().await;
}

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
async fn a_payment_captured_published_by_hand_on_nats_does_not_pay_the_order() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let customer = shop(&api).await;
    let admin = api.admin().await;
    let order_id = place(&customer).await;
    // The provider never answers this payment.
    let payment_id = pay(&customer, &order_id, "tok_timeout").await;
    wait_charge_requested(&admin, &order_id).await;

    // The attacker publishes the capture the relay would publish, with the very message id
    // and headers of the payment's next event.
    let (metadata, amount): (Value, Value) = sqlx::query_as(
        "SELECT metadata::jsonb, payload::jsonb -> 'PaymentCreated' -> 'amount' FROM events
         WHERE aggregate_type = 'payment' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(&payment_id)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    let forged = OutgoingEvent::from_row(
        &Namespace::parse(ordo.namespace()).unwrap(),
        &EventRow {
            position: 0,
            aggregate_type: "payment".into(),
            aggregate_id: payment_id.clone(),
            sequence: 2,
            event_type: "PaymentCaptured".into(),
            event_version: "1".into(),
            payload: json!({"PaymentCaptured": {"provider_ref": "forged", "amount": amount}}),
            metadata,
            recorded_at: DateTime::<Utc>::from(std::time::SystemTime::now()),
        },
    );
    let nats = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(nats);
    jetstream
        .publish_with_headers(forged.subject, forged.headers, forged.payload)
        .await
        .unwrap()
        .await
        .expect("the stream took the forged event");

    let letter = eventually(
        "the forged capture dead-lettered by the checkout saga",
        Duration::from_secs(30),
        || async {
            dead_letters(&ordo).await.into_iter().find(|l| {
                l["aggregate_id"] == payment_id.as_str()
                    && l["consumer"] == "saga-checkout-payments"
            })
        },
    )
    .await;
    assert_eq!(letter["event_type"], "PaymentCaptured");
    let error = letter["error"].as_str().unwrap_or_default();
    assert!(error.contains("not captured"), "{letter:?}");
    // The payments read model does not show it as captured either.
    let projected = eventually(
        "the forged capture dead-lettered by the payments projection",
        Duration::from_secs(30),
        || async {
            dead_letters(&ordo).await.into_iter().find(|l| {
                l["aggregate_id"] == payment_id.as_str() && l["consumer"] == "projection-payments"
            })
        },
    )
    .await;
    assert!(
        projected["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not in the event store"),
        "{projected:?}"
    );
    let payment = customer
        .get(&format!("/api/v1/payments/{payment_id}"))
        .await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    assert_ne!(payment.body["status"], "captured", "{:?}", payment.body);
    assert_eq!(order_status(&customer, &order_id).await, "awaiting_payment");
    assert!(!ordo_tests::event_types(ordo.pool(), "order", &order_id)
        .await
        .contains(&"OrderPaid".to_string()));
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        ["PaymentCreated"]
    );
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "inventory", "WIDGET")
            .await
            .last()
            .map(String::as_str),
        Some("StockReserved"),
        "no stock committed"
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordo_refuses_to_start_with_the_sandbox_next_to_a_real_provider() {
    // A real provider with the sandbox off starts.
    let ordo = TestOrdo::builder()
        .env(
            "ORDO_PAYMENT_PROVIDER_URL",
            "https://payments.example.com/v1",
        )
        .env("ORDO_SANDBOX_PROVIDER", "false")
        .start()
        .await;
    // The same provider with the sandbox on is refused.
    let refused = ordo
        .try_spawn_another_with(&[("ORDO_SANDBOX_PROVIDER", "true")])
        .await;
    let error = refused.err().expect("ordo serve refuses to start");
    assert!(error.to_string().contains("exited early"), "{error:#}");
    ordo.stop().await;
}
