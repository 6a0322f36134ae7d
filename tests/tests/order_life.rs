//! The whole life of an order, through HTTP only: placed and paid, shipped with the
//! sandbox carrier's tracking updates, delivered, partly returned and refunded to its
//! payment, the returned unit back in stock, and reviewed with the product's rating updated.

use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

async fn get(api: &Api, path: &str) -> Value {
    api.get(path).await.body
}

async fn until(api: &Api, what: &str, path: &str, pointer: &str, expected: Value) -> Value {
    eventually(what, Duration::from_secs(60), || async {
        let body = get(api, path).await;
        (body.pointer(pointer) == Some(&expected)).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_paid_shipped_delivered_partly_returned_refunded_and_reviewed() {
    let ordo = TestOrdo::with_env(&[
        ("ORDO_SANDBOX_DELAY", "50ms"),
        ("ORDO_SANDBOX_CARRIER_DELAY", "200ms"),
    ])
    .await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "KETTLE", "name": "Kettle", "category": "kitchen", "price": 2500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/KETTLE/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = ordo.api().register("life@example.com").await;

    // Placed and paid.
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "KETTLE", "quantity": 2}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let order_path = format!("/api/v1/orders/{order_id}");
    let paid = customer
        .post(
            &format!("{order_path}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    until(&customer, "paid", &order_path, "/status", json!("paid")).await;
    until(
        &admin,
        "8 on hand",
        "/api/v1/inventory/KETTLE",
        "/on_hand",
        json!(8),
    )
    .await;

    // Shipped, tracked in transit, delivered.
    let shipment_id = eventually("the shipment", Duration::from_secs(30), || async {
        get(&customer, &order_path).await["shipments"][0]["shipment_id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    for (step, body) in [
        ("pick", json!({})),
        (
            "ship",
            json!({"carrier": "sandbox", "tracking_no": "SBX-LIFE"}),
        ),
    ] {
        let answer = admin
            .post(
                &format!("/api/v1/admin/shipments/{shipment_id}/{step}"),
                body,
            )
            .await;
        assert_eq!(answer.status, 200, "{step}: {:?}", answer.body);
    }
    let delivered = until(
        &customer,
        "delivered",
        &order_path,
        "/status",
        json!("delivered"),
    )
    .await;
    let tracking: Vec<&str> = delivered["shipments"][0]["tracking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(tracking, ["in_transit", "delivered"]);

    // One of the two kettles goes back and is refunded to the payment.
    let asked = customer
        .post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "return_refund",
                   "lines": [{"sku": "KETTLE", "quantity": 1}], "reason": "It leaks."}),
        )
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    assert_eq!(asked.body["refund_amount"], 2500);
    let aftersale = asked.body["aftersale_id"].as_str().unwrap().to_owned();
    let approved = admin
        .post(
            &format!("/api/v1/admin/aftersales/{aftersale}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(
        approved.body["status"], "awaiting_return",
        "{:?}",
        approved.body
    );
    let sent = customer
        .post(
            &format!("/api/v1/aftersales/{aftersale}/return-shipment"),
            json!({"carrier": "sf-express", "tracking_no": "SF-LIFE-1"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let received = admin
        .post(
            &format!("/api/v1/admin/aftersales/{aftersale}/receive"),
            json!({}),
        )
        .await;
    assert_eq!(received.status, 200, "{:?}", received.body);
    until(
        &customer,
        "the request closed",
        &format!("/api/v1/aftersales/{aftersale}"),
        "/status",
        json!("closed"),
    )
    .await;
    let payment_id = get(&customer, &order_path).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    until(
        &customer,
        "the payment refunded by 25.00",
        &format!("/api/v1/payments/{payment_id}"),
        "/refunded",
        json!(2500),
    )
    .await;
    until(
        &admin,
        "9 on hand",
        "/api/v1/inventory/KETTLE",
        "/on_hand",
        json!(9),
    )
    .await;

    // Reviewed: the product's rating shows it.
    let reviewed = customer
        .post(
            "/api/v1/reviews",
            json!({"order_id": order_id, "sku": "KETTLE", "rating": 4,
                   "comment": "The second one works well.", "dimensions": {"quality": 4}}),
        )
        .await;
    assert_eq!(reviewed.status, 201, "{:?}", reviewed.body);
    assert_eq!(reviewed.body["status"], "published");
    let rating = until(
        &customer,
        "the product's rating",
        "/api/v1/products/KETTLE/rating",
        "/total_reviews",
        json!(1),
    )
    .await;
    assert_eq!(rating["average_rating"], 4.0);
    assert_eq!(rating["rating_distribution"]["4"], 1);
    let reviews = get(&ordo.api(), "/api/v1/products/KETTLE/reviews").await;
    assert_eq!(
        reviews["reviews"][0]["comment"],
        "The second one works well."
    );
    ordo.stop().await;
}
