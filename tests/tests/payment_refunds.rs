//! End to end: an admin gives back part of a captured payment, as often as needed, never
//! more than was captured in total; a refund repeated with its id gives nothing twice; the
//! customer's inbox says so.

use std::time::Duration;

use ordo_tests::{assert_problem, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

async fn paid_order(ordo: &TestOrdo) -> (Api, Api, String, String) {
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "CHAIR", "name": "Chair", "category": "test", "price": 4000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    admin
        .post("/api/v1/inventory/CHAIR/restock", json!({"quantity": 5}))
        .await;
    let (customer, _) = ordo.api().register("finn@example.com").await;
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "CHAIR", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let paid = customer
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.body["order_status"], "paid", "{:?}", paid.body);
    let payment_id = paid.body["payment_id"].as_str().unwrap().to_string();
    (admin, customer, order_id, payment_id)
}

async fn refund(admin: &Api, payment_id: &str, body: Value) -> ordo_tests::Answer {
    admin
        .post(&format!("/api/v1/payments/{payment_id}/refund"), body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_never_give_back_more_than_was_captured() {
    let ordo = TestOrdo::with_env(&[("ORDO_SANDBOX_DELAY", "50ms")]).await;
    let (admin, customer, order_id, payment_id) = paid_order(&ordo).await;
    let first_id = uuid::Uuid::new_v4().to_string();

    let first = refund(
        &admin,
        &payment_id,
        json!({"amount": 1500, "reason": "scratched", "refund_id": first_id}),
    )
    .await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(first.body["total_refunded"], 1500);
    assert_eq!(first.body["status"], "partially_refunded");
    // The same refund again gives nothing more; the same id with another amount is refused.
    let repeated = refund(
        &admin,
        &payment_id,
        json!({"amount": 1500, "reason": "scratched", "refund_id": first_id}),
    )
    .await;
    assert_eq!(repeated.status, 202, "{:?}", repeated.body);
    assert_eq!(repeated.body["total_refunded"], 1500);
    let other = refund(
        &admin,
        &payment_id,
        json!({"amount": 100, "reason": "scratched", "refund_id": first_id}),
    )
    .await;
    assert_problem(&other, 409, "refund_mismatch");
    // Named by its Idempotency-Key, a refund is repeat-safe too.
    for _ in 0..2 {
        let keyed = admin
            .send(
                Method::POST,
                &format!("/api/v1/payments/{payment_id}/refund"),
                Some(json!({"amount": 1000, "reason": "late"})),
                &[("idempotency-key", "refund-late-1")],
            )
            .await;
        assert_eq!(keyed.status, 202, "{:?}", keyed.body);
        assert_eq!(keyed.body["total_refunded"], 2500);
    }
    // 1500 are left: 1501 is refused and changes nothing.
    let beyond = refund(
        &admin,
        &payment_id,
        json!({"amount": 1501, "reason": "too much"}),
    )
    .await;
    assert_problem(&beyond, 409, "refund_exceeds_captured");
    let rest = refund(
        &admin,
        &payment_id,
        json!({"amount": 1500, "reason": "returned"}),
    )
    .await;
    assert_eq!(rest.status, 202, "{:?}", rest.body);
    assert_eq!(rest.body["status"], "refunded");
    let more = refund(&admin, &payment_id, json!({"amount": 1, "reason": "again"})).await;
    assert_problem(&more, 409, "refund_exceeds_captured");
    // Refunded in full, the paid order is refunded too (once, whatever was partial before).
    eventually("the order refunded", Duration::from_secs(20), || async {
        let order = customer.get(&format!("/api/v1/orders/{order_id}")).await;
        (order.body["status"] == "refunded").then_some(())
    })
    .await;
    // Its goods no longer ship.
    let shipment_id = eventually("the order's shipment", Duration::from_secs(20), || async {
        let order = customer.get(&format!("/api/v1/orders/{order_id}")).await;
        order.body["shipments"][0]["shipment_id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    eventually(
        "the shipment cancelled",
        Duration::from_secs(20),
        || async {
            let shipment = customer
                .get(&format!("/api/v1/shipments/{shipment_id}"))
                .await;
            (shipment.body["status"] == "cancelled").then_some(())
        },
    )
    .await;
    let picked = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/pick"),
            json!({}),
        )
        .await;
    assert_problem(&picked, 409, "order_refunded");
    let orders = ordo_tests::event_types(ordo.pool(), "order", &order_id).await;
    assert_eq!(
        orders.iter().filter(|t| *t == "OrderRefunded").count(),
        1,
        "{orders:?}"
    );
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        [
            "PaymentCreated",
            "PaymentCaptured",
            "PaymentRefunded",
            "PaymentRefunded",
            "PaymentRefunded"
        ]
    );

    // Bad input changes nothing; a customer may not refund.
    let zero = refund(&admin, &payment_id, json!({"amount": 0, "reason": "x"})).await;
    assert_eq!(zero.status, 422, "{:?}", zero.body);
    let blank = refund(&admin, &payment_id, json!({"amount": 1, "reason": "  "})).await;
    assert_eq!(blank.status, 422, "{:?}", blank.body);
    let by_customer = refund(
        &customer,
        &payment_id,
        json!({"amount": 1, "reason": "mine"}),
    )
    .await;
    assert_eq!(by_customer.status, 403);
    let unknown = refund(
        &admin,
        &uuid::Uuid::new_v4().to_string(),
        json!({"amount": 1, "reason": "x"}),
    )
    .await;
    assert_eq!(unknown.status, 404);

    // The customer is told of each refund once.
    let refunds = eventually("three refund notices", Duration::from_secs(20), || async {
        let body = customer.get("/api/v1/notifications").await.body;
        let refunds: Vec<Value> = body["notifications"]
            .as_array()?
            .iter()
            .filter(|n| n["kind"] == "payment_refunded")
            .cloned()
            .collect();
        (refunds.len() == 3).then_some(refunds)
    })
    .await;
    assert!(
        refunds
            .iter()
            .all(|n| n["body"].as_str().unwrap().contains(&order_id[..8])),
        "{refunds:?}"
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_not_captured_cannot_be_refunded() {
    let ordo = TestOrdo::with_env(&[("ORDO_SANDBOX_DELAY", "50ms")]).await;
    let admin = ordo.admin().await;
    admin
        .post(
            "/api/v1/products",
            json!({"sku": "STOOL", "name": "Stool", "category": "test", "price": 900, "currency": "EUR"}),
        )
        .await;
    admin
        .post("/api/v1/inventory/STOOL/restock", json!({"quantity": 5}))
        .await;
    let (customer, _) = ordo.api().register("gus@example.com").await;
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "STOOL", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let paying = customer
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_timeout"}),
        )
        .await;
    let payment_id = paying.body["payment_id"].as_str().unwrap().to_string();
    let refused = refund(&admin, &payment_id, json!({"amount": 100, "reason": "x"})).await;
    assert_problem(&refused, 409, "invalid_transition");
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payment_id).await,
        ["PaymentCreated"]
    );
    ordo.stop().await;
}
