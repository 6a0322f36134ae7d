//! End to end: shipping fees by province and weight with a free-shipping threshold, set by
//! an admin; the shipping quote, the checkout preview and the order placed charge the same
//! fee, and an order keeps the fee it was placed with when the rules change.

use ordo_tests::{Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

async fn product(admin: &Api, sku: &str, price: i64, weight_grams: u32) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": sku, "category": "test", "price": price,
                   "currency": "EUR", "weight_grams": weight_grams}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            &format!("/api/v1/inventory/{sku}/restock"),
            json!({"quantity": 50}),
        )
        .await;
    assert_eq!(restocked.status, 200);
}

async fn address(customer: &Api, province: &str) -> String {
    let added = customer
        .post(
            "/api/v1/users/me/addresses",
            json!({"recipient": "Hana Ito", "phone": "+33 1 23 45 67 89", "province": province,
                   "city": "Somewhere", "detail": "1 rue de la Paix"}),
        )
        .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    added.body["address_id"].as_str().unwrap().to_owned()
}

fn rules(paris_base_fee: i64) -> Value {
    json!({"currency": "EUR", "rules": [
        {"name": "Paris", "provinces": ["IDF"], "base_fee": paris_base_fee, "base_weight_grams": 1000,
         "fee_per_extra_kg": 200, "free_over": 10000},
        {"name": "Elsewhere", "provinces": [], "base_fee": 900, "base_weight_grams": 1000,
         "fee_per_extra_kg": 300}
    ]})
}

async fn quote(customer: &Api, boots: u32, address_id: &str) -> Value {
    let quoted = customer
        .post(
            "/api/v1/shipping/quote",
            json!({"items": [{"sku": "BOOT", "quantity": boots}], "address_id": address_id}),
        )
        .await;
    assert_eq!(quoted.status, 200, "{:?}", quoted.body);
    quoted.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quote_the_preview_and_the_order_charge_the_same_fee() {
    let ordo = TestOrdo::with_env(&[("ORDO_SANDBOX_DELAY", "50ms")]).await;
    let admin = ordo.admin().await;
    product(&admin, "BOOT", 3000, 1500).await;
    let set = admin
        .send(
            Method::PUT,
            "/api/v1/admin/shipping/rules",
            Some(rules(500)),
            &[],
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["rules"].as_array().unwrap().len(), 2);
    let (customer, _) = ordo.api().register("hana@example.com").await;
    let paris = address(&customer, "idf").await;
    let brest = address(&customer, "Bretagne").await;

    // 2 boots weigh 3 kg: the base kilogram and 2 more.
    let quoted = quote(&customer, 2, &paris).await;
    assert_eq!(quoted["shipping_fee"], 900, "{quoted:?}");
    assert_eq!(quoted["rule"], "Paris");
    assert_eq!(quoted["currency"], "EUR");
    assert_eq!(quoted["weight_grams"], 3000);
    let elsewhere = quote(&customer, 2, &brest).await;
    assert_eq!(elsewhere["shipping_fee"], 1500, "{elsewhere:?}");
    assert_eq!(elsewhere["rule"], "Elsewhere");
    // 4 boots reach the free-shipping threshold in Paris, not elsewhere.
    let free = quote(&customer, 4, &paris).await;
    assert_eq!(free["shipping_fee"], 0, "{free:?}");
    assert_eq!(free["rule"], "Paris");
    assert_eq!(quote(&customer, 4, &brest).await["shipping_fee"], 2400);

    let body = json!({"items": [{"sku": "BOOT", "quantity": 2}], "address_id": paris});
    let preview = customer.post("/api/v1/orders/prepare", body.clone()).await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(preview.body["shipping_fee"], quoted["shipping_fee"]);
    assert_eq!(preview.body["total"], 6900);
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"quote_id": preview.body["quote_id"]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();

    // New rules: the order keeps the fee it was placed with, and is paid with it.
    let changed = admin
        .send(
            Method::PUT,
            "/api/v1/admin/shipping/rules",
            Some(rules(100)),
            &[],
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(quote(&customer, 2, &paris).await["shipping_fee"], 500);
    let order = customer
        .get(&format!("/api/v1/orders/{order_id}"))
        .await
        .body;
    assert_eq!(order["shipping_fee"], 900, "{order:?}");
    assert_eq!(order["total"], 6900);
    let paid = customer
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.body["order_status"], "paid", "{:?}", paid.body);
    let payment = customer
        .get(&format!(
            "/api/v1/payments/{}",
            paid.body["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(payment.body["amount"], 6900);

    // A placed order without a preview is priced the same way.
    let direct = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "BOOT", "quantity": 2}], "address_id": brest})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(direct.status, 202, "{:?}", direct.body);
    let direct = customer
        .get(&format!(
            "/api/v1/orders/{}",
            direct.body["order_id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(direct["shipping_fee"], 1500, "{direct:?}");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_contradict_each_other_are_refused_and_change_nothing() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "BOOT", 3000, 1500).await;
    let (customer, _) = ordo.api().register("ivo@example.com").await;
    let paris = address(&customer, "IDF").await;
    // No rules yet: deliveries are free.
    let none = quote(&customer, 1, &paris).await;
    assert_eq!(none["shipping_fee"], 0);
    assert_eq!(none["rule"], Value::Null);

    let two_fallbacks = json!({"currency": "EUR", "rules": [
        {"name": "A", "provinces": [], "base_fee": 1},
        {"name": "B", "provinces": [], "base_fee": 2}]});
    let refused = admin
        .send(
            Method::PUT,
            "/api/v1/admin/shipping/rules",
            Some(two_fallbacks),
            &[],
        )
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["type"], "urn:ordo:problem:two_fallback_rules");
    let shared = json!({"currency": "EUR", "rules": [
        {"name": "A", "provinces": ["IDF"], "base_fee": 1},
        {"name": "B", "provinces": ["idf"], "base_fee": 2}]});
    let refused = admin
        .send(
            Method::PUT,
            "/api/v1/admin/shipping/rules",
            Some(shared),
            &[],
        )
        .await;
    assert_eq!(refused.body["type"], "urn:ordo:problem:duplicate_province");
    let read = admin.get("/api/v1/admin/shipping/rules").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["rules"], json!([]));
    assert_eq!(read.body["currency"], Value::Null);
    // Only admins set rules.
    let by_customer = customer
        .send(
            Method::PUT,
            "/api/v1/admin/shipping/rules",
            Some(rules(1)),
            &[],
        )
        .await;
    assert_eq!(by_customer.status, 403);
    ordo.stop().await;
}
