//! End to end: paying an order to the end. A declined card leaves the order awaiting
//! payment so the customer pays again (one attempt in progress at a time), and a payment
//! still in flight at the deadline holds the order until the provider answers.

use std::time::Duration;

use ordo_tests::{assert_problem, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
];

async fn shop(ordo: &TestOrdo) -> (Api, Api) {
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "LAMP", "name": "Lamp", "category": "test", "price": 1500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/LAMP/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = ordo.api().register("dora@example.com").await;
    (admin, customer)
}

async fn place(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "LAMP", "quantity": 2}]})),
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

async fn pay(customer: &Api, order_id: &str, token: &str, wait: bool) -> ordo_tests::Answer {
    let headers: &[(&str, &str)] = if wait { &[("prefer", "wait=15")] } else { &[] };
    customer
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": token})),
            headers,
        )
        .await
}

async fn status_of(api: &Api, path: &str, status: &str) -> Value {
    eventually(
        &format!("{path} {status}"),
        Duration::from_secs(20),
        || async {
            let body = api.get(path).await.body;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

fn steps(saga: &Value) -> Vec<String> {
    saga["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_is_retried_and_the_order_paid() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = place(&customer).await;

    let declined = pay(&customer, &order_id, "tok_decline", true).await;
    assert_eq!(declined.status, 202, "{:?}", declined.body);
    assert_eq!(declined.body["status"], "failed", "{:?}", declined.body);
    assert_eq!(declined.body["order_status"], "awaiting_payment");
    let first = declined.body["payment_id"].as_str().unwrap().to_string();
    status_of(
        &customer,
        &format!("/api/v1/orders/{order_id}"),
        "awaiting_payment",
    )
    .await;

    let paid = pay(&customer, &order_id, "tok_success", true).await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let second = paid.body["payment_id"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    status_of(&customer, &format!("/api/v1/orders/{order_id}"), "paid").await;
    status_of(&customer, &format!("/api/v1/payments/{second}"), "captured").await;
    assert_eq!(
        customer
            .get(&format!("/api/v1/payments/{first}"))
            .await
            .body["status"],
        "failed"
    );
    // Paid once: one capture, nothing refunded, the stock committed.
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &second).await,
        ["PaymentCreated", "PaymentCaptured"]
    );
    eventually("stock committed", Duration::from_secs(10), || async {
        let body = ordo.api().get("/api/v1/inventory/LAMP").await.body;
        (body["on_hand"] == 8 && body["reserved"] == 0).then_some(())
    })
    .await;
    let saga = admin.get(&format!("/api/v1/admin/sagas/{order_id}")).await;
    assert!(steps(&saga.body).contains(&"payment_failed".to_string()));
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_payment_attempt_is_in_progress_at_a_time() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (_, customer) = shop(&ordo).await;
    let order_id = place(&customer).await;
    let pending = pay(&customer, &order_id, "tok_timeout", false).await;
    assert_eq!(pending.status, 202, "{:?}", pending.body);
    let again = pay(&customer, &order_id, "tok_success", false).await;
    assert_problem(&again, 409, "payment_in_progress");
    assert_eq!(
        customer
            .get(&format!("/api/v1/orders/{order_id}"))
            .await
            .body["status"],
        "awaiting_payment"
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_in_flight_at_the_deadline_holds_the_order_until_the_provider_captures_it() {
    // The deadline passes after 1 s; the provider answers after 4 s, within the grace.
    let ordo = TestOrdo::with_env(&[
        ("ORDO_PAYMENT_TIMEOUT", "1s"),
        ("ORDO_PAYMENT_GRACE", "60s"),
        ("ORDO_SANDBOX_DELAY", "4s"),
        ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ])
    .await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = place(&customer).await;
    let paying = pay(&customer, &order_id, "tok_success", false).await;
    assert_eq!(paying.status, 202, "{:?}", paying.body);
    let payment_id = paying.body["payment_id"].as_str().unwrap().to_string();

    let held = status_of(
        &admin,
        &format!("/api/v1/admin/sagas/{order_id}"),
        "payment_held",
    )
    .await;
    assert!(held["deadline"].is_string(), "{held:?}");
    assert_eq!(
        customer
            .get(&format!("/api/v1/orders/{order_id}"))
            .await
            .body["status"],
        "awaiting_payment"
    );

    status_of(&customer, &format!("/api/v1/orders/{order_id}"), "paid").await;
    status_of(
        &customer,
        &format!("/api/v1/payments/{payment_id}"),
        "captured",
    )
    .await;
    let saga = status_of(&admin, &format!("/api/v1/admin/sagas/{order_id}"), "paid").await;
    let steps = steps(&saga);
    assert!(steps.contains(&"payment_held".to_string()), "{steps:?}");
    assert!(
        !steps
            .iter()
            .any(|s| s == "refund_payment" || s == "void_payment"),
        "{steps:?}"
    );
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
async fn a_payment_unanswered_past_the_grace_is_voided_and_the_order_expires() {
    let ordo = TestOrdo::with_env(&[
        ("ORDO_PAYMENT_TIMEOUT", "1s"),
        ("ORDO_PAYMENT_GRACE", "2s"),
        ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ])
    .await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = place(&customer).await;
    let paying = pay(&customer, &order_id, "tok_timeout", false).await;
    let payment_id = paying.body["payment_id"].as_str().unwrap().to_string();
    status_of(
        &admin,
        &format!("/api/v1/admin/sagas/{order_id}"),
        "payment_held",
    )
    .await;
    status_of(&customer, &format!("/api/v1/orders/{order_id}"), "expired").await;
    status_of(
        &customer,
        &format!("/api/v1/payments/{payment_id}"),
        "voided",
    )
    .await;
    let saga = status_of(
        &admin,
        &format!("/api/v1/admin/sagas/{order_id}"),
        "expired",
    )
    .await;
    let steps = steps(&saga);
    let held = steps
        .iter()
        .position(|s| s == "payment_held")
        .expect("held");
    let voided = steps
        .iter()
        .position(|s| s == "void_payment")
        .expect("voided");
    assert!(held < voided, "{steps:?}");
    eventually("stock released", Duration::from_secs(10), || async {
        let body = ordo.api().get("/api/v1/inventory/LAMP").await.body;
        (body["on_hand"] == 10 && body["reserved"] == 0).then_some(())
    })
    .await;
    ordo.stop().await;
}
