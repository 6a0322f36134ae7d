//! End to end: a SKU's safety threshold (安全库存). Falling below it adds one entry to every
//! admin's inbox per crossing: not again while it stays below, again after it came back to
//! the threshold or above and fell once more.

use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

async fn low_stock_notices(admin: &Api) -> Vec<Value> {
    let body = admin.get("/api/v1/notifications").await.body;
    body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "stock_below_threshold")
        .cloned()
        .collect()
}

async fn order(customer: &Api, quantity: u32) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "VASE", "quantity": quantity}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(
        placed.body["status"], "awaiting_payment",
        "{:?}",
        placed.body
    );
    placed.body["order_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falling_below_the_safety_threshold_notifies_the_admins_once_per_crossing() {
    let ordo = TestOrdo::with_env(&[("ORDO_SANDBOX_DELAY", "50ms")]).await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "VASE", "name": "Vase", "category": "test", "price": 1200, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    admin
        .post("/api/v1/inventory/VASE/restock", json!({"quantity": 10}))
        .await;
    let set = admin
        .send(
            Method::PUT,
            "/api/v1/inventory/VASE/safety-threshold",
            Some(json!({"threshold": 5})),
            &[],
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["safety_threshold"], 5);
    assert_eq!(set.body["below_threshold"], false);
    let (customer, _) = ordo.api().register("jo@example.com").await;

    // 10 -> 6 available: still at or above 5, nothing to say.
    order(&customer, 4).await;
    // 6 -> 4: below. Then 4 -> 3: still below, no second notice.
    let second = order(&customer, 2).await;
    order(&customer, 1).await;
    let notices = eventually("one low-stock notice", Duration::from_secs(20), || async {
        let notices = low_stock_notices(&admin).await;
        (!notices.is_empty()).then_some(notices)
    })
    .await;
    assert_eq!(notices[0]["data"]["sku"], "VASE");
    assert_eq!(notices[0]["data"]["available"], 4);
    assert_eq!(notices[0]["data"]["threshold"], 5);

    // Back to the threshold (the second order cancelled: 3 -> 5), then below again (5 -> 4).
    let cancelled = customer
        .post(&format!("/api/v1/orders/{second}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    eventually("stock released", Duration::from_secs(20), || async {
        let level = ordo.api().get("/api/v1/inventory/VASE").await.body;
        (level["available"] == 5).then_some(())
    })
    .await;
    order(&customer, 1).await;
    let notices = eventually(
        "a second low-stock notice",
        Duration::from_secs(20),
        || async {
            let notices = low_stock_notices(&admin).await;
            (notices.len() == 2).then_some(notices)
        },
    )
    .await;
    assert!(notices.iter().any(|n| n["data"]["available"] == 4));

    // The events agree: two crossings recorded, and a customer's inbox has none of them.
    let types = ordo_tests::event_types(ordo.pool(), "inventory", "VASE").await;
    assert_eq!(
        types.iter().filter(|t| *t == "StockBelowThreshold").count(),
        2,
        "{types:?}"
    );
    let body = customer.get("/api/v1/notifications").await.body;
    assert!(body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["kind"] != "stock_below_threshold"));
    // Only admins set thresholds; an unknown SKU is 404.
    let refused = customer
        .send(
            Method::PUT,
            "/api/v1/inventory/VASE/safety-threshold",
            Some(json!({"threshold": 1})),
            &[],
        )
        .await;
    assert_eq!(refused.status, 403);
    let unknown = admin
        .send(
            Method::PUT,
            "/api/v1/inventory/NOPE/safety-threshold",
            Some(json!({"threshold": 1})),
            &[],
        )
        .await;
    assert_eq!(unknown.status, 404);
    ordo.stop().await;
}
