//! End to end: reconciliation (对账) of a day's payments with the sandbox provider's daily
//! statement. A charge with `tok_lost_callback` is captured at the provider whose callback
//! never comes; reconciling the day finds it and applies it through the normal checkout, once.

use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
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
            json!({"sku": "KETTLE", "name": "Kettle", "category": "test", "price": 2000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/KETTLE/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = ordo.api().register("erin@example.com").await;
    (admin, customer)
}

/// Places an order of one kettle and pays it with `token`; answers the order and payment.
async fn order_paid_with(customer: &Api, token: &str) -> (String, String) {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "KETTLE", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let paid = customer
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": token}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    (
        order_id,
        paid.body["payment_id"].as_str().unwrap().to_string(),
    )
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

/// The sandbox provider's statement of `date` (it is served unauthenticated).
async fn statement(ordo: &TestOrdo, date: &str) -> Vec<Value> {
    let body: Value = reqwest::get(format!(
        "{}/sandbox/provider/statements/{date}",
        ordo.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_applies_a_capture_whose_callback_was_lost_once() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let today = chrono::Utc::now().date_naive().to_string();

    // A payment that went well, partly refunded; and one whose callback is lost.
    let (paid_order, paid_payment) = order_paid_with(&customer, "tok_success").await;
    status_of(&customer, &format!("/api/v1/orders/{paid_order}"), "paid").await;
    let refund = admin
        .post(
            &format!("/api/v1/payments/{paid_payment}/refund"),
            json!({"amount": 500, "reason": "dented"}),
        )
        .await;
    assert_eq!(refund.status, 202, "{:?}", refund.body);
    let (lost_order, lost_payment) = order_paid_with(&customer, "tok_lost_callback").await;
    eventually(
        "the provider's statement",
        Duration::from_secs(20),
        || async {
            let entries = statement(&ordo, &today).await;
            let lost = entries
                .iter()
                .any(|e| e["payment_id"] == lost_payment.as_str());
            let refunded = entries.iter().any(|e| e["kind"] == "refund");
            (lost && refunded).then_some(())
        },
    )
    .await;
    // The provider took the money; Ordo never heard.
    assert_eq!(
        customer
            .get(&format!("/api/v1/payments/{lost_payment}"))
            .await
            .body["status"],
        "created"
    );
    assert_eq!(
        customer
            .get(&format!("/api/v1/orders/{lost_order}"))
            .await
            .body["status"],
        "awaiting_payment"
    );

    let run = admin
        .post(&format!("/api/v1/admin/reconciliations/{today}"), json!({}))
        .await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert_eq!(run.body["applied"], 1, "{:?}", run.body);
    assert_eq!(run.body["provider_entries"], 3, "{:?}", run.body);
    assert_eq!(run.body["matched"], 2, "{:?}", run.body);
    let discrepancies = run.body["discrepancies"].as_array().unwrap();
    assert_eq!(discrepancies.len(), 1, "{discrepancies:?}");
    assert_eq!(discrepancies[0]["kind"], "missed_capture");
    assert_eq!(discrepancies[0]["payment_id"], lost_payment.as_str());
    assert_eq!(discrepancies[0]["applied"], true);
    assert_eq!(discrepancies[0]["provider_amount"], 2000);

    // Applied through the normal checkout: the order is paid and its stock committed.
    status_of(&customer, &format!("/api/v1/orders/{lost_order}"), "paid").await;
    status_of(
        &customer,
        &format!("/api/v1/payments/{lost_payment}"),
        "captured",
    )
    .await;

    // Run again, from the command line: nothing is applied twice, nothing disagrees.
    let (ok, stdout, stderr) = ordo.cli(&["reconcile", "--date", &today, "--json"]).await;
    assert!(ok, "ordo reconcile failed: {stderr}");
    let second: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(second["applied"], 0, "{second:?}");
    assert_eq!(second["matched"], 3, "{second:?}");
    assert_eq!(second["discrepancies"], json!([]), "{second:?}");
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &lost_payment).await,
        ["PaymentCreated", "PaymentCaptured"]
    );

    let read = admin
        .get(&format!("/api/v1/admin/reconciliations/{today}"))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["runs"], 2);
    assert_eq!(read.body["applied"], 0);
    assert_eq!(read.body["run_id"], second["run_id"]);
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_lists_what_the_provider_does_not_show() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let (order_id, payment_id) = order_paid_with(&customer, "tok_timeout").await;
    // A capture the provider never booked: signed as the provider would, but the sandbox
    // itself never charged it.
    let body = json!({"payment_id": payment_id, "provider_ref": "elsewhere", "status": "captured",
                      "amount": 2000, "currency": "EUR"});
    let bytes = serde_json::to_vec(&body).unwrap();
    let signature = ordo_payments::signature::sign(
        b"test-payment-secret-0123456789",
        ordo_payments::signature::now(),
        &bytes,
    );
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/payments/{payment_id}/callbacks",
            ordo.base_url()
        ))
        .header("content-type", "application/json")
        .header(ordo_payments::signature::SIGNATURE_HEADER, signature)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    status_of(&customer, &format!("/api/v1/orders/{order_id}"), "paid").await;

    let run = admin
        .post(&format!("/api/v1/admin/reconciliations/{today}"), json!({}))
        .await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert_eq!(run.body["applied"], 0);
    let discrepancies = run.body["discrepancies"].as_array().unwrap();
    assert_eq!(discrepancies.len(), 1, "{discrepancies:?}");
    assert_eq!(discrepancies[0]["kind"], "capture_missing_at_provider");
    assert_eq!(discrepancies[0]["payment_id"], payment_id.as_str());
    assert_eq!(discrepancies[0]["ordo_amount"], 2000);

    // A day never reconciled, and one that is no day.
    let never = admin.get("/api/v1/admin/reconciliations/2001-01-01").await;
    assert_eq!(never.status, 404);
    let no_day = admin
        .post("/api/v1/admin/reconciliations/2026-02-30", json!({}))
        .await;
    assert_eq!(no_day.status, 404);
    ordo.stop().await;
}
