//! End to end: promotions and the price of a cart on a real `ordo serve` against real
//! Postgres and NATS. Direct cuts, then thresholds in priority order judged after the cuts,
//! then coupons on what remains; an exclusive promotion applying alone; ending a promotion;
//! every refusal of a promotion (changing nothing) and every reason a coupon is not applied.

use std::time::Duration;

use ordo_tests::{assert_problem, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

async fn product(admin: &Api, sku: &str, price: i64, currency: &str) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": format!("Product {sku}"), "category": "test",
                   "price": price, "currency": currency}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

fn promotion(kind: &str, priority: i64, exclusive: bool, fields: Value) -> Value {
    let mut body = json!({
        "name": format!("{kind} {priority}"), "kind": kind, "currency": "EUR",
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
        "priority": priority, "exclusive": exclusive,
    });
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

async fn create_promotion(admin: &Api, body: Value) -> String {
    let created = admin.post("/api/v1/admin/promotions", body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["promotion_id"].as_str().unwrap().to_owned()
}

async fn coupon(admin: &Api, customer: &Api, batch: Value) -> String {
    let created = admin.post("/api/v1/admin/coupon-batches", batch).await;
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

fn batch(kind: &str, value: i64, min_spend: i64) -> Value {
    json!({
        "name": "Coupons", "kind": kind, "value": value, "min_spend": min_spend,
        "quota": 10, "per_user_limit": 5, "currency": "EUR",
        "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
    })
}

async fn quote(customer: &Api, items: Value, coupon_ids: Value) -> Value {
    let answer = customer
        .post(
            "/api/v1/pricing/quote",
            json!({"items": items, "coupon_ids": coupon_ids}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

/// `(source, id, amount)` of each discount, in order.
fn discounts(quote: &Value) -> Vec<(String, String, i64)> {
    quote["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["source"].as_str().unwrap().to_owned(),
                d["id"].as_str().unwrap().to_owned(),
                d["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `(id, reason)` of each refusal, in order.
fn refusals(quote: &Value) -> Vec<(String, String)> {
    quote["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The line totals add up to the total and the line discounts to the discounts.
fn assert_adds_up(quote: &Value) {
    let lines = quote["lines"].as_array().unwrap();
    let sum = |key: &str| lines.iter().map(|l| l[key].as_i64().unwrap()).sum::<i64>();
    let discounted: i64 = discounts(quote).iter().map(|d| d.2).sum();
    assert_eq!(
        sum("line_total"),
        quote["total"].as_i64().unwrap(),
        "{quote}"
    );
    assert_eq!(sum("discount"), discounted, "{quote}");
    assert_eq!(
        quote["subtotal"].as_i64().unwrap() - discounted,
        quote["total"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn a_cart_gets_direct_cuts_then_thresholds_in_priority_order_then_coupons() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let shopper = ordo.customer("stack@example.com").await;
    product(&admin, "MUG", 1000, "EUR").await;
    product(&admin, "TEA", 2500, "EUR").await;
    let cut = create_promotion(
        &admin,
        promotion(
            "direct_price_cut",
            1,
            false,
            json!({"skus": ["mug"], "amount_off": 200}),
        ),
    )
    .await;
    let amount = create_promotion(
        &admin,
        promotion(
            "threshold_amount_off",
            5,
            false,
            json!({"threshold": 5000, "amount_off": 500}),
        ),
    )
    .await;
    let percent = create_promotion(
        &admin,
        promotion(
            "threshold_percent_off",
            9,
            false,
            json!({"threshold": 5000, "percent_off": 10}),
        ),
    )
    .await;
    let coupon_id = coupon(&admin, &shopper, batch("amount_off", 500, 5000)).await;

    // 5,500 before the cut, 4,900 after: no threshold is met, and the coupon's minimum
    // spend (judged after promotions) is not either.
    let small = quote(
        &shopper,
        json!([{"sku": "MUG", "quantity": 3}, {"sku": "TEA", "quantity": 1}]),
        json!([coupon_id]),
    )
    .await;
    assert_adds_up(&small);
    assert_eq!(small["subtotal"], 5500);
    assert_eq!(small["total"], 4900);
    assert_eq!(
        discounts(&small),
        vec![("promotion".into(), cut.clone(), 600)]
    );
    assert_eq!(
        refusals(&small),
        vec![(coupon_id.clone(), "min_spend_not_met".into())]
    );
    assert_eq!(small["lines"][0]["discount"], 600);
    assert_eq!(small["lines"][1]["discount"], 0);

    // 7,000 before, 6,600 after the cut: 10 % (priority 9) = 660, then 500 (priority 5),
    // then the coupon's 500 on 5,440 >= its 5,000 minimum.
    let big = quote(
        &shopper,
        json!([{"sku": "MUG", "quantity": 2}, {"sku": "TEA", "quantity": 2}]),
        json!([coupon_id]),
    )
    .await;
    assert_adds_up(&big);
    assert_eq!(big["subtotal"], 7000);
    assert_eq!(
        discounts(&big),
        vec![
            ("promotion".into(), cut.clone(), 400),
            ("promotion".into(), percent.clone(), 660),
            ("promotion".into(), amount.clone(), 500),
            ("coupon".into(), coupon_id.clone(), 500),
        ]
    );
    assert_eq!(big["total"], 4940);
    assert!(refusals(&big).is_empty());
    assert_eq!(big["currency"], "EUR");

    // The shopper's cart shows the same promotions (coupons are chosen at checkout).
    for sku in ["MUG", "TEA"] {
        let put = shopper
            .send(
                Method::PUT,
                &format!("/api/v1/cart/items/{sku}"),
                Some(json!({"quantity": 2})),
                &[],
            )
            .await;
        assert_eq!(put.status, 200, "{:?}", put.body);
    }
    let cart = shopper.get("/api/v1/cart").await;
    assert_eq!(cart.status, 200, "{:?}", cart.body);
    assert_eq!(cart.body["subtotal"], 7000);
    assert_eq!(
        cart.body["discounts"],
        json!([
            {"label": "direct_price_cut 1", "amount": 400},
            {"label": "threshold_percent_off 9", "amount": 660},
            {"label": "threshold_amount_off 5", "amount": 500},
        ])
    );
    assert_eq!(cart.body["total"], 5440);

    // Ended, the percentage no longer applies, and the list says when it ended.
    let ended = admin
        .post(
            &format!("/api/v1/admin/promotions/{percent}/end"),
            json!({}),
        )
        .await;
    assert_eq!(ended.status, 200, "{:?}", ended.body);
    let again = admin
        .post(
            &format!("/api/v1/admin/promotions/{percent}/end"),
            json!({}),
        )
        .await;
    assert_eq!(
        again.body["version"], ended.body["version"],
        "ending twice is a no-op"
    );
    let after = quote(
        &shopper,
        json!([{"sku": "MUG", "quantity": 2}, {"sku": "TEA", "quantity": 2}]),
        json!([]),
    )
    .await;
    assert_adds_up(&after);
    assert_eq!(after["total"], 6100);
    assert!(!discounts(&after).iter().any(|d| d.1 == percent));
    let listed = eventually("the ended promotion in the list", WAIT, || async {
        let answer = admin.get("/api/v1/admin/promotions").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let rows = answer.body["promotions"].as_array().unwrap().clone();
        rows.iter()
            .any(|r| r["promotion_id"] == percent.as_str() && r["ended_at"].is_string())
            .then_some(rows)
    })
    .await;
    assert_eq!(listed.len(), 3);
    let cut_row = listed
        .iter()
        .find(|r| r["promotion_id"] == cut.as_str())
        .unwrap();
    assert_eq!(cut_row["kind"], "direct_price_cut");
    assert_eq!(cut_row["skus"], json!(["MUG"]));
    assert_eq!(cut_row["amount_off"], 200);
    ordo.stop().await;
}

#[tokio::test]
async fn an_exclusive_promotion_that_applies_excludes_the_others_and_the_total_stays_above_zero() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let shopper = ordo.customer("exclusive@example.com").await;
    product(&admin, "PEN", 333, "EUR").await;
    let stacked = create_promotion(
        &admin,
        promotion(
            "threshold_amount_off",
            9,
            false,
            json!({"threshold": 0, "amount_off": 100}),
        ),
    )
    .await;
    let exclusive = create_promotion(
        &admin,
        promotion(
            "threshold_percent_off",
            1,
            true,
            json!({"threshold": 500, "percent_off": 15}),
        ),
    )
    .await;
    // 333: the exclusive one's threshold is not met; the other applies.
    let one = quote(&shopper, json!([{"sku": "PEN", "quantity": 1}]), json!([])).await;
    assert_eq!(
        discounts(&one),
        vec![("promotion".into(), stacked.clone(), 100)]
    );
    assert_eq!(one["total"], 233);
    // 999: the exclusive one applies alone; 15 % of 999 rounds down to 149.
    let many = quote(&shopper, json!([{"sku": "PEN", "quantity": 3}]), json!([])).await;
    assert_adds_up(&many);
    assert_eq!(
        discounts(&many),
        vec![("promotion".into(), exclusive.clone(), 149)]
    );
    assert_eq!(many["total"], 850);
    assert_eq!(refusals(&many), vec![(stacked.clone(), "excluded".into())]);

    // A coupon worth more than what remains takes it to zero, not below.
    let coupon_id = coupon(&admin, &shopper, batch("amount_off", 5000, 0)).await;
    let free = quote(
        &shopper,
        json!([{"sku": "PEN", "quantity": 1}]),
        json!([coupon_id]),
    )
    .await;
    assert_adds_up(&free);
    assert_eq!(free["total"], 0);
    assert_eq!(discounts(&free)[1], ("coupon".into(), coupon_id, 233));
    ordo.stop().await;
}

#[tokio::test]
async fn every_reason_a_coupon_is_not_applied_is_told() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let ann = ordo.customer("reasons-ann@example.com").await;
    let bob = ordo.customer("reasons-bob@example.com").await;
    product(&admin, "BOOK", 4000, "EUR").await;
    let anns = coupon(&admin, &ann, batch("percent_off", 10, 0)).await;
    let future = coupon(
        &admin,
        &bob,
        json!({
            "name": "Next year", "kind": "amount_off", "value": 100, "quota": 5,
            "per_user_limit": 1, "currency": "EUR",
            "valid_from": "2098-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
        }),
    )
    .await;
    let dollars = coupon(&admin, &bob, {
        let mut b = batch("amount_off", 100, 0);
        b["currency"] = json!("USD");
        b
    })
    .await;
    let unknown = "00000000-0000-4000-8000-00000000beef";
    let good = coupon(&admin, &bob, batch("percent_off", 10, 0)).await;
    let q = quote(
        &bob,
        json!([{"sku": "BOOK", "quantity": 1}]),
        json!([anns, future, dollars, unknown, good, good]),
    )
    .await;
    assert_adds_up(&q);
    assert_eq!(
        refusals(&q),
        vec![
            (anns.clone(), "not_yours".into()),
            (future, "not_yet_valid".into()),
            (dollars, "other_currency".into()),
            (unknown.into(), "unknown_coupon".into()),
            (good.clone(), "one_per_batch".into()),
        ]
    );
    assert_eq!(discounts(&q), vec![("coupon".into(), good, 400)]);
    assert_eq!(q["total"], 3600);
    // Ann's own coupon applies for her.
    let hers = quote(&ann, json!([{"sku": "BOOK", "quantity": 1}]), json!([anns])).await;
    assert_eq!(hers["total"], 3600);

    // Carts that cannot be priced.
    let unknown_sku = ann
        .post(
            "/api/v1/pricing/quote",
            json!({"items": [{"sku": "NOPE", "quantity": 1}]}),
        )
        .await;
    assert_problem(&unknown_sku, 404, "unknown_sku");
    let empty = ann
        .post("/api/v1/pricing/quote", json!({"items": []}))
        .await;
    assert_problem(&empty, 422, "validation_failed");
    product(&admin, "DOLLAR-BOOK", 1000, "USD").await;
    let mixed = ann
        .post(
            "/api/v1/pricing/quote",
            json!({"items": [{"sku": "BOOK", "quantity": 1}, {"sku": "DOLLAR-BOOK", "quantity": 1}]}),
        )
        .await;
    assert_problem(&mixed, 422, "unpriceable_cart");
    ordo.stop().await;
}

#[tokio::test]
async fn every_refused_promotion_answers_its_problem_and_creates_nothing() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let shopper = ordo.customer("promo-refused@example.com").await;
    let invalid: [(&str, Value); 9] = [
        (
            "amount_off",
            promotion("threshold_amount_off", 0, false, json!({"threshold": 100})),
        ),
        (
            "threshold",
            promotion(
                "threshold_percent_off",
                0,
                false,
                json!({"percent_off": 10}),
            ),
        ),
        (
            "percent_off",
            promotion(
                "threshold_percent_off",
                0,
                false,
                json!({"threshold": 0, "percent_off": 0}),
            ),
        ),
        (
            "skus",
            promotion(
                "direct_price_cut",
                0,
                false,
                json!({"skus": [], "amount_off": 5}),
            ),
        ),
        (
            "skus[1]",
            promotion(
                "direct_price_cut",
                0,
                false,
                json!({"skus": ["A", "a"], "amount_off": 5}),
            ),
        ),
        (
            "amount_off",
            promotion(
                "direct_price_cut",
                0,
                false,
                json!({"skus": ["A"], "amount_off": 0}),
            ),
        ),
        (
            "priority",
            promotion(
                "threshold_amount_off",
                1001,
                false,
                json!({"threshold": 0, "amount_off": 5}),
            ),
        ),
        (
            "ends_at",
            promotion(
                "threshold_amount_off",
                0,
                false,
                json!({"threshold": 0, "amount_off": 5, "ends_at": "2020-01-01T00:00:00Z"}),
            ),
        ),
        (
            "currency",
            promotion(
                "threshold_amount_off",
                0,
                false,
                json!({"threshold": 0, "amount_off": 5, "currency": "E1R"}),
            ),
        ),
    ];
    for (field, body) in invalid {
        let answer = admin.post("/api/v1/admin/promotions", body).await;
        assert_problem(&answer, 422, "validation_failed");
        assert_eq!(answer.body["field"], field, "{:?}", answer.body);
    }
    let answer = admin
        .post(
            "/api/v1/admin/promotions",
            promotion("buy_one_get_one", 0, false, json!({})),
        )
        .await;
    assert!([400, 422].contains(&answer.status), "{:?}", answer.body);
    let valid = promotion(
        "threshold_amount_off",
        0,
        false,
        json!({"threshold": 0, "amount_off": 5}),
    );
    assert_problem(
        &shopper
            .post("/api/v1/admin/promotions", valid.clone())
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &ordo
            .api()
            .post("/api/v1/admin/promotions", valid.clone())
            .await,
        401,
        "unauthorized",
    );
    assert_problem(
        &admin
            .post(
                "/api/v1/admin/promotions/00000000-0000-4000-8000-000000000001/end",
                json!({}),
            )
            .await,
        404,
        "not_found",
    );
    let listed = admin.get("/api/v1/admin/promotions").await;
    assert_eq!(listed.body["promotions"], json!([]), "nothing was created");
    assert!(ordo_tests::event_types(
        ordo.pool(),
        "promotion",
        "00000000-0000-4000-8000-000000000001"
    )
    .await
    .is_empty());

    // The same key twice creates one promotion; with other terms it is refused.
    let keyed = |body: Value| {
        admin.send(
            Method::POST,
            "/api/v1/admin/promotions",
            Some(body),
            &[("idempotency-key", "promo-key")],
        )
    };
    let first = keyed(valid.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let repeat = keyed(valid.clone()).await;
    assert_eq!(repeat.body["promotion_id"], first.body["promotion_id"]);
    let mut other = valid;
    other["amount_off"] = json!(6);
    assert_problem(&keyed(other).await, 409, "promotion_exists");
    ordo.stop().await;
}
