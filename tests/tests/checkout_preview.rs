//! End to end: the checkout preview (`POST /api/v1/orders/prepare`) and orders placed from
//! it, through HTTP only against a real `ordo serve`, Postgres and NATS. A guest cart merged
//! at login, previewed with a promotion and a coupon, ordered with an address and paid (the
//! coupon redeemed, the cart lines gone); every refusal as problem+json; a quote whose
//! prices changed refused with the new quote; one coupon in two racing orders.

use std::time::Duration;

use ordo_tests::{assert_problem, eventually, Answer, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

/// A product `sku` at `price` EUR with `stock` units.
async fn product(admin: &Api, sku: &str, price: i64, stock: i64) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": format!("Product {sku}"), "category": "test",
                   "price": price, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            &format!("/api/v1/inventory/{sku}/restock"),
            json!({"quantity": stock}),
        )
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
}

/// A promotion taking `amount_off` off every unit of `sku`.
async fn price_cut(admin: &Api, sku: &str, amount_off: i64) -> String {
    let created = admin
        .post(
            "/api/v1/admin/promotions",
            json!({"name": format!("cut {sku}"), "kind": "direct_price_cut", "currency": "EUR",
                   "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
                   "priority": 1, "exclusive": false, "skus": [sku], "amount_off": amount_off}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["promotion_id"].as_str().unwrap().to_owned()
}

/// A coupon of `value` off above `min_spend`, claimed by `customer`.
async fn coupon(admin: &Api, customer: &Api, value: i64, min_spend: i64) -> String {
    let created = admin
        .post(
            "/api/v1/admin/coupon-batches",
            json!({"name": "Coupons", "kind": "amount_off", "value": value,
                   "min_spend": min_spend, "quota": 10, "per_user_limit": 5, "currency": "EUR",
                   "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let claimed = customer
        .post(
            "/api/v1/coupons/claim",
            json!({"batch_id": created.body["batch_id"]}),
        )
        .await;
    assert_eq!(claimed.status, 201, "{:?}", claimed.body);
    claimed.body["coupon_id"].as_str().unwrap().to_owned()
}

async fn address(customer: &Api) -> String {
    let added = customer
        .post(
            "/api/v1/users/me/addresses",
            json!({"recipient": "Dana Doe", "phone": "+33 1 23 45 67 89", "province": "IDF",
                   "city": "Paris", "detail": "1 rue de la Paix"}),
        )
        .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    added.body["address_id"].as_str().unwrap().to_owned()
}

async fn prepare(customer: &Api, body: Value) -> Answer {
    customer.post("/api/v1/orders/prepare", body).await
}

async fn place(customer: &Api, body: Value) -> Answer {
    customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(body),
            &[("prefer", "wait=15")],
        )
        .await
}

/// The caller's coupons with `status` (after their last write is in the read model).
async fn coupons_with(customer: &Api, status: &str) -> Vec<String> {
    let answer = customer
        .send(
            Method::GET,
            &format!("/api/v1/coupons?status={status}"),
            None,
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["coupons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["coupon_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_coupon(customer: &Api, coupon_id: &str, status: &str) {
    eventually(&format!("coupon {coupon_id} {status}"), WAIT, || async {
        coupons_with(customer, status)
            .await
            .contains(&coupon_id.to_owned())
            .then_some(())
    })
    .await
}

async fn wait_order(customer: &Api, order_id: &str, status: &str) -> Value {
    eventually(&format!("order {order_id} {status}"), WAIT, || async {
        let body = customer
            .get(&format!("/api/v1/orders/{order_id}"))
            .await
            .body;
        (body["status"] == status).then_some(body)
    })
    .await
}

fn adds_up(quote: &Value) {
    let discounts: i64 = quote["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(
        quote["total"].as_i64().unwrap(),
        quote["subtotal"].as_i64().unwrap() - discounts + quote["shipping_fee"].as_i64().unwrap(),
        "{quote:?}"
    );
}

#[tokio::test]
async fn a_guest_cart_is_previewed_ordered_with_an_address_and_paid_redeeming_its_coupon() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    product(&admin, "TEA", 2500, 10).await;
    product(&admin, "SPOON", 300, 10).await;
    let cut = price_cut(&admin, "MUG", 200).await;

    // A guest fills a cart, then logs in and merges it.
    let guest = ordo.api();
    let created = guest.post("/api/v1/carts", json!({})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let token = created.body["cart_token"].as_str().unwrap().to_owned();
    for (sku, quantity) in [("MUG", 2), ("TEA", 1)] {
        let put = guest
            .send(
                Method::PUT,
                &format!("/api/v1/cart/items/{sku}"),
                Some(json!({"quantity": quantity})),
                &[("ordo-cart", token.as_str())],
            )
            .await;
        assert_eq!(put.status, 200, "{:?}", put.body);
    }
    let dana = ordo.customer("dana@example.com").await;
    let merged = dana
        .api
        .post("/api/v1/cart/merge", json!({"cart_token": token}))
        .await;
    assert_eq!(merged.status, 200, "{:?}", merged.body);
    let coupon_id = coupon(&admin, &dana.api, 500, 3000).await;
    let address_id = address(&dana.api).await;

    let preview = prepare(
        &dana.api,
        json!({"from_cart": true, "coupon_ids": [coupon_id], "address_id": address_id}),
    )
    .await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let quote = &preview.body;
    adds_up(quote);
    // 2 x 1000 + 2500 = 4500; the cut takes 2 x 200, the coupon 500.
    assert_eq!(quote["subtotal"], 4500);
    assert_eq!(quote["shipping_fee"], 0);
    assert_eq!(quote["total"], 3600);
    assert_eq!(quote["currency"], "EUR");
    assert_eq!(
        quote["discounts"],
        json!([{"source": "promotion", "id": cut, "amount": 400},
               {"source": "coupon", "id": coupon_id, "amount": 500}])
    );
    let mug = quote["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku"] == "MUG")
        .unwrap();
    assert_eq!(mug["unit_price"], 1000);
    assert!(mug["discount"].as_i64().unwrap() >= 400, "{mug:?}");
    assert!(quote["expires_at"].is_string());

    let placed = place(&dana.api, json!({"quote_id": quote["quote_id"]})).await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(
        placed.body["status"], "awaiting_payment",
        "{:?}",
        placed.body
    );
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let order = wait_order(&dana.api, &order_id, "awaiting_payment").await;
    assert_eq!(order["total_amount"], 3600, "{order:?}");
    // The order shows the breakdown it was placed with, as the quote showed it, and the
    // address opened for its owner.
    assert_eq!(order["subtotal"], quote["subtotal"], "{order:?}");
    assert_eq!(order["discounts"], quote["discounts"], "{order:?}");
    assert_eq!(order["shipping_fee"], quote["shipping_fee"], "{order:?}");
    assert_eq!(order["total"], quote["total"], "{order:?}");
    for line in quote["lines"].as_array().unwrap() {
        let shown = order["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["sku"] == line["sku"])
            .unwrap_or_else(|| panic!("{} in {order:?}", line["sku"]));
        for field in ["quantity", "unit_price", "discount", "line_total"] {
            assert_eq!(
                shown[field], line[field],
                "{field} of {line:?} in {order:?}"
            );
        }
    }
    assert_eq!(
        order["delivery_address"],
        json!({"recipient": "Dana Doe", "phone": "+33 1 23 45 67 89", "province": "IDF",
               "city": "Paris", "district": null, "detail": "1 rue de la Paix",
               "postal_code": null}),
        "{order:?}"
    );
    let listed = dana.api.get("/api/v1/orders").await;
    assert_eq!(
        listed.body["orders"][0]["delivery_address"]["city"], "Paris",
        "{:?}",
        listed.body
    );
    wait_coupon(&dana.api, &coupon_id, "locked").await;

    // The ordered lines left the cart.
    let cart = dana.api.get("/api/v1/cart").await;
    assert_eq!(cart.status, 200, "{:?}", cart.body);
    assert_eq!(cart.body["items"], json!([]), "{:?}", cart.body);

    let paid = dana
        .api
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    assert_eq!(paid.body["order_status"], "paid", "{:?}", paid.body);
    wait_coupon(&dana.api, &coupon_id, "redeemed").await;
    let payment = dana
        .api
        .get(&format!(
            "/api/v1/payments/{}",
            paid.body["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(payment.body["amount"], 3600, "{:?}", payment.body);

    // The order's events record the breakdown and the address, sealed.
    let (payload,): (Value,) = sqlx::query_as(
        "SELECT payload FROM events WHERE aggregate_type = 'order' AND aggregate_id = $1
           AND event_type = 'OrderPlaced'",
    )
    .bind(&order_id)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    let placed_event = &payload["OrderPlaced"];
    assert_eq!(placed_event["total"]["amount_minor"], 3600);
    assert_eq!(placed_event["pricing"]["subtotal"]["amount_minor"], 4500);
    assert_eq!(
        placed_event["pricing"]["discounts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let recipient = &placed_event["delivery_address"]["recipient"]["$personal"];
    assert!(recipient["sealed"].is_string(), "{placed_event:?}");
    assert!(!payload.to_string().contains("Dana Doe"), "{payload}");
}

#[tokio::test]
async fn every_checkout_refusal_is_a_problem_and_places_nothing() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    product(&admin, "GONE", 1000, 10).await;
    let delisted = admin.post("/api/v1/products/GONE/delist", json!({})).await;
    assert!(delisted.status < 300, "{:?}", delisted.body);
    let eve = ordo.customer("eve@example.com").await;
    let frank = ordo.customer("frank@example.com").await;
    let small = coupon(&admin, &eve.api, 500, 100_000).await;
    let franks = coupon(&admin, &frank.api, 500, 0).await;

    let mug = json!([{"sku": "MUG", "quantity": 1}]);
    let cases = [
        (json!({"items": []}), 422, "validation_failed"),
        (json!({}), 422, "validation_failed"),
        (
            json!({"items": mug, "from_cart": true}),
            422,
            "validation_failed",
        ),
        (
            json!({"items": [{"sku": "NOPE", "quantity": 1}]}),
            404,
            "unknown_sku",
        ),
        (
            json!({"items": [{"sku": "MUG", "quantity": 0}]}),
            422,
            "validation_failed",
        ),
        (json!({"from_cart": true}), 409, "empty_cart"),
        (
            json!({"items": mug, "address_id": uuid::Uuid::new_v4()}),
            404,
            "unknown_address",
        ),
    ];
    for (body, status, code) in cases.iter() {
        let answer = prepare(&eve.api, body.clone()).await;
        assert_problem(&answer, *status, code);
        let answer = place(&eve.api, body.clone()).await;
        assert_problem(&answer, *status, code);
    }
    let body = json!({"items": [{"sku": "GONE", "quantity": 1}]});
    assert_problem(&prepare(&eve.api, body.clone()).await, 409, "not_on_sale");
    assert_problem(&place(&eve.api, body).await, 409, "not_on_sale");

    // Coupons that do not apply are explained in the preview and refuse the order.
    let preview = prepare(
        &eve.api,
        json!({"items": mug, "coupon_ids": [small, franks]}),
    )
    .await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(
        preview.body["refusals"],
        json!([{"source": "coupon", "id": small, "reason": "min_spend_not_met"},
               {"source": "coupon", "id": franks, "reason": "not_yours"}])
    );
    let refused = place(&eve.api, json!({"items": mug, "coupon_ids": [small]})).await;
    assert_problem(&refused, 409, "coupon_not_applicable");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("min_spend_not_met"),
        "{:?}",
        refused.body
    );

    // Someone else's quote does not exist for the caller.
    let frank_quote = prepare(&frank.api, json!({"items": mug})).await;
    assert_eq!(frank_quote.status, 200, "{:?}", frank_quote.body);
    let foreign = place(&eve.api, json!({"quote_id": frank_quote.body["quote_id"]})).await;
    assert_problem(&foreign, 404, "not_found");
    let unknown = place(&eve.api, json!({"quote_id": uuid::Uuid::new_v4()})).await;
    assert_problem(&unknown, 404, "not_found");

    // A guest cannot preview.
    assert_problem(
        &prepare(&ordo.api(), json!({"items": mug})).await,
        401,
        "unauthorized",
    );

    let orders: (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'order'")
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(orders.0, 0, "no refused checkout placed an order");
}

#[tokio::test]
async fn a_quote_whose_prices_changed_is_refused_with_the_new_quote() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    let gus = ordo.customer("gus@example.com").await;
    let preview = prepare(&gus.api, json!({"items": [{"sku": "MUG", "quantity": 2}]})).await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(preview.body["total"], 2000);

    let cut = price_cut(&admin, "MUG", 100).await;
    let changed = place(&gus.api, json!({"quote_id": preview.body["quote_id"]})).await;
    assert_problem(&changed, 409, "price_changed");
    let new_quote = &changed.body["new_quote"];
    assert_eq!(new_quote["total"], 1800, "{:?}", changed.body);
    assert_eq!(new_quote["discounts"][0]["id"], cut);
    assert_ne!(new_quote["quote_id"], preview.body["quote_id"]);
    let orders: (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'order'")
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(orders.0, 0);

    // The new quote orders at its prices.
    let placed = place(&gus.api, json!({"quote_id": new_quote["quote_id"]})).await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap();
    let order = wait_order(&gus.api, order_id, "awaiting_payment").await;
    assert_eq!(order["total_amount"], 1800, "{order:?}");
}

/// Units of `sku` in stock and reserved, as the inventory list shows them.
async fn reserved(admin: &Api, sku: &str) -> i64 {
    let answer = admin
        .send(
            Method::GET,
            &format!("/api/v1/inventory/{sku}"),
            None,
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["reserved"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_orders_racing_for_one_coupon_exactly_one_gets_it_and_the_other_is_rejected() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    let hal = ordo.customer("hal@example.com").await;
    let coupon_id = coupon(&admin, &hal.api, 300, 0).await;
    let body = json!({"items": [{"sku": "MUG", "quantity": 2}], "coupon_ids": [coupon_id]});
    // Both are placed while the coupon is still only claimed when each is priced, and the
    // saga locks it once; or one is priced after the other's saga locked it, and is
    // refused at once.
    let (first, second) = tokio::join!(place(&hal.api, body.clone()), place(&hal.api, body));
    let answers = [first, second];
    let refused = answers.iter().filter(|a| a.status == 409).count();
    for answer in &answers {
        match answer.status {
            202 => {}
            409 => assert_eq!(
                answer.body["type"], "urn:ordo:problem:coupon_not_applicable",
                "{:?}",
                answer.body
            ),
            _ => panic!("placed or refused for the coupon: {:?}", answer.body),
        }
    }
    assert!(refused <= 1, "one of them gets the coupon: {answers:?}");
    let ids: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.body["order_id"].as_str().unwrap().to_owned())
        .collect();
    let mut statuses = Vec::new();
    for id in &ids {
        let decided = eventually(&format!("order {id} decided"), WAIT, || async {
            let body = hal.api.get(&format!("/api/v1/orders/{id}")).await.body;
            (body["status"] != "pending").then_some(body)
        })
        .await;
        statuses.push(decided);
    }
    let winners: Vec<&Value> = statuses
        .iter()
        .filter(|o| o["status"] == "awaiting_payment")
        .collect();
    let losers: Vec<&Value> = statuses
        .iter()
        .filter(|o| o["status"] == "rejected")
        .collect();
    assert_eq!(
        (winners.len(), losers.len()),
        (1, 1 - refused),
        "{statuses:?}"
    );
    for loser in &losers {
        assert_eq!(loser["reason"], "coupon_in_use", "{loser:?}");
    }
    wait_coupon(&hal.api, &coupon_id, "locked").await;
    // The loser's stock went back: only the winner's two units are reserved.
    eventually("only the winner's stock reserved", WAIT, || async {
        (reserved(&admin, "MUG").await == 2).then_some(())
    })
    .await;

    // Cancelling the winner gives the coupon back.
    let winner = winners[0]["order_id"].as_str().unwrap();
    let cancelled = hal
        .api
        .post(&format!("/api/v1/orders/{winner}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    wait_coupon(&hal.api, &coupon_id, "claimed").await;
}

/// Waits until the process died (it aborts itself at the crash point).
async fn wait_for_crash(ordo: &mut TestOrdo) {
    eventually("the process crashed at its crash point", WAIT, || {
        let alive = ordo.is_running();
        async move { (!alive).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_locking_or_releasing_a_coupon_leaves_none_locked_for_a_dead_order() {
    let mut ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    let ivy = ordo.customer("ivy@example.com").await;
    let coupon_id = coupon(&admin, &ivy.api, 300, 0).await;

    // The process dies right after the coupon is locked, before the saga records it.
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "lock_coupon");
    ordo.restart().await.unwrap();
    let placed = ivy
        .api
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "MUG", "quantity": 1}], "coupon_ids": [coupon_id]}),
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    wait_for_crash(&mut ordo).await;
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
    ordo.restart().await.unwrap();
    // The repeated step finds the coupon already locked by this order and goes on.
    wait_order(&ivy.api, &order_id, "awaiting_payment").await;
    wait_coupon(&ivy.api, &coupon_id, "locked").await;

    // The process dies again while the cancelled order gives its coupon back.
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "release_coupon");
    ordo.restart().await.unwrap();
    let cancelled = ivy
        .api
        .post(&format!("/api/v1/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    wait_for_crash(&mut ordo).await;
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
    ordo.restart().await.unwrap();
    wait_order(&ivy.api, &order_id, "cancelled").await;
    wait_coupon(&ivy.api, &coupon_id, "claimed").await;
    assert!(coupons_with(&ivy.api, "locked").await.is_empty());
    ordo.stop().await;
}

#[tokio::test]
async fn erasing_the_customer_erases_the_address_an_order_recorded() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    let jo = ordo.customer("jo@example.com").await;
    let address_id = address(&jo.api).await;
    let placed = place(
        &jo.api,
        json!({"items": [{"sku": "MUG", "quantity": 1}], "address_id": address_id}),
    )
    .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let shown = wait_order(&jo.api, &order_id, "awaiting_payment").await;
    assert_eq!(shown["delivery_address"]["detail"], "1 rue de la Paix");

    let erased = jo
        .api
        .send(Method::DELETE, "/api/v1/users/me", None, &[])
        .await;
    assert_eq!(erased.status, 204, "{:?}", erased.body);

    // The order's address was sealed with the customer's key, which is gone.
    let (payload,): (Value,) = sqlx::query_as(
        "SELECT payload FROM events WHERE aggregate_type = 'order' AND aggregate_id = $1
           AND event_type = 'OrderPlaced'",
    )
    .bind(&order_id)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    let detail = &payload["OrderPlaced"]["delivery_address"]["detail"]["$personal"];
    assert_eq!(detail["subject"], jo.user_id.as_str(), "{payload}");
    assert!(detail["sealed"].is_string(), "{payload}");
    assert!(!payload.to_string().contains("rue de la Paix"), "{payload}");
    let (key,): (Option<Vec<u8>>,) =
        sqlx::query_as("SELECT key FROM personal_data_keys WHERE subject_id = $1::uuid")
            .bind(&jo.user_id)
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(
        key, None,
        "the key that sealed the order's address is deleted"
    );
    // The order still shows where it went, with every value erased.
    let shown = admin.get(&format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(
        shown.body["delivery_address"],
        json!({"recipient": null, "phone": null, "province": null, "city": null,
               "district": null, "detail": null, "postal_code": null}),
        "{:?}",
        shown.body
    );
}

#[tokio::test]
async fn an_expired_quote_is_refused_with_a_fresh_one() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    let kim = ordo.customer("kim@example.com").await;
    let preview = prepare(&kim.api, json!({"items": [{"sku": "MUG", "quantity": 1}]})).await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let quote_id = preview.body["quote_id"].as_str().unwrap().to_owned();
    // Fifteen minutes pass.
    sqlx::query(
        "UPDATE checkout_quotes SET expires_at = now() - interval '1 second'
          WHERE quote_id = $1::uuid",
    )
    .bind(&quote_id)
    .execute(ordo.pool())
    .await
    .unwrap();
    let refused = place(&kim.api, json!({"quote_id": quote_id})).await;
    assert_problem(&refused, 409, "price_changed");
    let fresh = &refused.body["new_quote"];
    assert_eq!(fresh["total"], 1000);
    assert_ne!(fresh["quote_id"].as_str(), Some(quote_id.as_str()));
    let placed = place(&kim.api, json!({"quote_id": fresh["quote_id"]})).await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_coupon_is_locked_ends_with_it_claimed_when_expired_or_redeemed_when_paid()
{
    let mut ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    let max = ordo.customer("max@example.com").await;
    let body = |coupon_id: &str| json!({"items": [{"sku": "MUG", "quantity": 1}], "coupon_ids": [coupon_id]});

    // Crashes on the way to awaiting payment, then the order is not paid in time: the
    // coupon it locked is claimed again.
    for step in ["lock_coupon", "confirm_order"] {
        let coupon_id = coupon(&admin, &max.api, 300, 0).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", step);
        ordo.set_env("ORDO_PAYMENT_TIMEOUT", "1s");
        ordo.restart().await.unwrap();
        let placed = max.api.post("/api/v1/orders", body(&coupon_id)).await;
        assert_eq!(placed.status, 202, "{:?}", placed.body);
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        wait_for_crash(&mut ordo).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
        ordo.restart().await.unwrap();
        wait_order(&max.api, &order_id, "expired").await;
        wait_coupon(&max.api, &coupon_id, "claimed").await;
    }

    // Crashes while the paid order settles: the coupon ends redeemed.
    ordo.set_env("ORDO_PAYMENT_TIMEOUT", "15m");
    for step in ["mark_order_paid", "commit_stock", "redeem_coupon"] {
        let coupon_id = coupon(&admin, &max.api, 300, 0).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
        ordo.restart().await.unwrap();
        let placed = place(&max.api, body(&coupon_id)).await;
        assert_eq!(
            placed.body["status"], "awaiting_payment",
            "{:?}",
            placed.body
        );
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        wait_coupon(&max.api, &coupon_id, "locked").await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", step);
        ordo.restart().await.unwrap();
        let paid = max
            .api
            .post(
                &format!("/api/v1/orders/{order_id}/pay"),
                json!({"payment_method": "card", "payment_token": "tok_success"}),
            )
            .await;
        assert_eq!(paid.status, 202, "{:?}", paid.body);
        wait_for_crash(&mut ordo).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
        ordo.restart().await.unwrap();
        wait_order(&max.api, &order_id, "paid").await;
        wait_coupon(&max.api, &coupon_id, "redeemed").await;
    }

    // No coupon is left locked for an order that is over. The read model may still be
    // applying what a crash left in flight (a delivery unacknowledged when the process
    // died comes again only after its acknowledgement deadline), so this is awaited.
    eventually(
        "two coupons claimed, three redeemed, none locked",
        WAIT,
        || async {
            let counts = (
                coupons_with(&max.api, "locked").await.len(),
                coupons_with(&max.api, "claimed").await.len(),
                coupons_with(&max.api, "redeemed").await.len(),
            );
            (counts == (0, 2, 3)).then_some(())
        },
    )
    .await;
    ordo.stop().await;
}

/// The quantities of the caller's cart, by SKU.
async fn cart_lines(customer: &Api) -> Vec<(String, i64)> {
    let cart = customer.get("/api/v1/cart").await;
    assert_eq!(cart.status, 200, "{:?}", cart.body);
    cart.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().unwrap().to_owned(),
                i["quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn put_in_cart(customer: &Api, sku: &str, quantity: i64) {
    let put = customer
        .send(
            Method::PUT,
            &format!("/api/v1/cart/items/{sku}"),
            Some(json!({"quantity": quantity})),
            &[],
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
}

/// Publishes every message of the order stream again under a new message id, as a
/// redelivery would look to its consumers.
async fn deliver_orders_again(ordo: &TestOrdo) -> usize {
    use futures::StreamExt;
    let js = async_nats::jetstream::new(ordo.nats().await);
    let stream = js
        .get_stream(ordo_tests::stream_name(ordo.namespace(), "ORDER"))
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
    let count = copies.len();
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
    }
    count
}

/// Waits until the checkout saga has handled every message of the order stream.
async fn checkout_idle(ordo: &TestOrdo) {
    let js = async_nats::jetstream::new(ordo.nats().await);
    let stream_name = ordo_tests::stream_name(ordo.namespace(), "ORDER");
    eventually("the checkout saga is idle", WAIT, || {
        let js = js.clone();
        let stream_name = stream_name.clone();
        async move {
            let stream = js.get_stream(stream_name).await.ok()?;
            let info = stream.consumer_info("saga-checkout").await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_from_the_cart_takes_its_units_out_once_through_a_crash_and_redelivery() {
    let mut ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "MUG", 1000, 10).await;
    product(&admin, "TEA", 2500, 10).await;
    let lea = ordo.customer("lea@example.com").await;
    put_in_cart(&lea.api, "MUG", 2).await;
    put_in_cart(&lea.api, "TEA", 1).await;

    // The process dies right after the cart gave up the lines, before the saga recorded it;
    // the step repeated after the restart takes nothing more.
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "remove_from_cart");
    ordo.restart().await.unwrap();
    let placed = lea
        .api
        .post("/api/v1/orders", json!({"from_cart": true}))
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    wait_for_crash(&mut ordo).await;
    ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
    ordo.restart().await.unwrap();
    wait_order(&lea.api, &order_id, "awaiting_payment").await;
    assert_eq!(cart_lines(&lea.api).await, vec![]);

    // Lea puts a mug back; every order event delivered again leaves it there.
    put_in_cart(&lea.api, "MUG", 1).await;
    assert!(deliver_orders_again(&ordo).await >= 2);
    checkout_idle(&ordo).await;
    assert_eq!(cart_lines(&lea.api).await, vec![("MUG".to_owned(), 1)]);

    // A second order from the cart takes the mug out too.
    let second = place(&lea.api, json!({"from_cart": true})).await;
    assert_eq!(second.status, 202, "{:?}", second.body);
    eventually("the second order's mug left the cart", WAIT, || async {
        cart_lines(&lea.api).await.is_empty().then_some(())
    })
    .await;

    let (removals,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events WHERE aggregate_type = 'cart'
           AND event_type = 'OrderedLinesRemoved'",
    )
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    assert_eq!(removals, 2, "one removal per order");
    ordo.stop().await;
}
