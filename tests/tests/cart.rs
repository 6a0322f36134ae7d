//! End to end: shopping carts on a real `ordo serve` against real Postgres and NATS. A
//! customer's cart, guest carts reached by their token, the refusals (unknown, delisted,
//! bounds, another's cart), quantities above stock shown with what is available, and the
//! merge of a guest cart after login, capped by stock and purchase limits, done once.

use ordo_tests::{assert_problem, event_types, Answer, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

/// A catalog of three SKUs: a mug (5 in stock), a tee limited to 2 per customer (10 in
/// stock), and a lamp priced in dollars.
async fn catalog(admin: &Api) {
    for (body, stock) in [
        (
            json!({"sku": "MUG", "name": "Mug", "category": "kitchen", "price": 1200, "currency": "EUR"}),
            5,
        ),
        (
            json!({"sku": "TEE", "name": "Tee", "category": "apparel", "price": 2000, "currency": "EUR",
                   "max_per_customer": 2}),
            10,
        ),
        (
            json!({"sku": "LAMP", "name": "Lamp", "category": "home", "price": 4000, "currency": "USD"}),
            3,
        ),
    ] {
        let created = admin.post("/api/v1/products", body).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let sku = created.body["sku"].as_str().unwrap().to_owned();
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{sku}/restock"),
                json!({"quantity": stock}),
            )
            .await;
        assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    }
}

async fn put_item(api: &Api, token: Option<&str>, sku: &str, quantity: Value) -> Answer {
    let headers: Vec<(&str, &str)> = token.map(|t| ("ordo-cart", t)).into_iter().collect();
    api.send(
        Method::PUT,
        &format!("/api/v1/cart/items/{sku}"),
        Some(json!({"quantity": quantity})),
        &headers,
    )
    .await
}

async fn get_cart(api: &Api, token: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = token.map(|t| ("ordo-cart", t)).into_iter().collect();
    api.send(Method::GET, "/api/v1/cart", None, &headers).await
}

async fn guest_cart(api: &Api) -> String {
    let created = api.post("/api/v1/carts", json!({})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let token = created.body["cart_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64, "256 bits, in hex");
    token
}

fn quantities(cart: &Value) -> Vec<(String, u64)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().unwrap().to_owned(),
                i["quantity"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_cart_is_priced_now_and_shows_what_is_available() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    catalog(&admin).await;
    let alice = ordo.customer("cart-a@example.com").await;

    let empty = get_cart(&alice, None).await;
    assert_eq!(empty.status, 200, "{:?}", empty.body);
    assert_eq!(
        empty.body,
        json!({"items": [], "subtotal": 0, "discounts": [], "total": 0, "currency": "EUR"})
    );

    let cart = put_item(&alice, None, "mug", json!(2)).await;
    assert_eq!(cart.status, 200, "{:?}", cart.body);
    // More than the stock is accepted and shown with what is available.
    let cart = put_item(&alice, None, "TEE", json!(12)).await;
    assert_eq!(cart.status, 200, "{:?}", cart.body);
    assert_eq!(
        cart.body["items"],
        json!([
            {"sku": "MUG", "name": "Mug", "quantity": 2, "unit_price": 1200, "line_total": 2400,
             "available": 5, "on_sale": true},
            {"sku": "TEE", "name": "Tee", "quantity": 12, "unit_price": 2000, "line_total": 24000,
             "available": 10, "on_sale": true},
        ])
    );
    assert_eq!(cart.body["subtotal"], 26400);
    assert_eq!(cart.body["discounts"], json!([]));
    assert_eq!(cart.body["total"], 26400);
    assert_eq!(cart.body["currency"], "EUR");

    // The cart follows the catalog's price of the moment.
    let repriced = admin
        .send(
            Method::PATCH,
            "/api/v1/products/MUG",
            Some(json!({"price": 1000, "currency": "EUR"})),
            &[],
        )
        .await;
    assert_eq!(repriced.status, 200, "{:?}", repriced.body);
    let cart = get_cart(&alice, None).await.body;
    assert_eq!(cart["items"][0]["unit_price"], 1000);
    assert_eq!(cart["subtotal"], 26000);

    // 0 removes; DELETE removes; both answer the cart.
    let cart = put_item(&alice, None, "TEE", json!(0)).await;
    assert_eq!(quantities(&cart.body), [("MUG".to_owned(), 2)]);
    let cart = alice
        .send(Method::DELETE, "/api/v1/cart/items/MUG", None, &[])
        .await;
    assert_eq!(cart.status, 200, "{:?}", cart.body);
    assert_eq!(cart.body["items"], json!([]));

    // Another customer has a cart of their own.
    let bob = ordo.customer("cart-b@example.com").await;
    put_item(&bob, None, "MUG", json!(1)).await;
    assert_eq!(get_cart(&alice, None).await.body["items"], json!([]));
    assert_eq!(
        quantities(&get_cart(&bob, None).await.body),
        [("MUG".to_owned(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_delisted_other_currency_and_out_of_bounds_lines_are_refused() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    catalog(&admin).await;
    let alice = ordo.customer("refusals@example.com").await;
    put_item(&alice, None, "MUG", json!(1)).await;
    let (count_before,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'cart'")
            .fetch_one(ordo.pool())
            .await
            .unwrap();

    assert_problem(
        &put_item(&alice, None, "NO-SUCH", json!(1)).await,
        404,
        "unknown_sku",
    );
    assert_problem(
        &put_item(&alice, None, "LAMP", json!(1)).await,
        409,
        "mixed_currencies",
    );
    for bad in [json!(101), json!(-1), json!("two")] {
        let answer = put_item(&alice, None, "MUG", bad.clone()).await;
        assert!(
            answer.status == 422 || answer.status == 400,
            "{bad}: {:?}",
            answer.body
        );
    }
    assert_problem(
        &put_item(&alice, None, "a.b", json!(1)).await,
        422,
        "validation_failed",
    );
    let delisted = admin.post("/api/v1/products/TEE/delist", json!({})).await;
    assert_eq!(delisted.status, 200, "{:?}", delisted.body);
    assert_problem(
        &put_item(&alice, None, "TEE", json!(1)).await,
        409,
        "not_on_sale",
    );
    let (count_after,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'cart'")
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(count_before, count_after, "a refusal wrote an event");

    // A line delisted after it was added is shown as not on sale.
    put_item(&alice, None, "MUG", json!(3)).await;
    admin.post("/api/v1/products/MUG/delist", json!({})).await;
    let cart = get_cart(&alice, None).await.body;
    assert_eq!(cart["items"][0]["on_sale"], false, "{cart:?}");
    // Removing it still works.
    assert_eq!(
        put_item(&alice, None, "MUG", json!(0)).await.body["items"],
        json!([])
    );

    // No token and no cart header: 401; a bad or unknown guest token: 404.
    assert_problem(&get_cart(&ordo.api(), None).await, 401, "unauthorized");
    assert_problem(
        &put_item(&ordo.api(), None, "MUG", json!(1)).await,
        401,
        "unauthorized",
    );
    assert_problem(
        &get_cart(&ordo.api(), Some("not-a-token")).await,
        404,
        "not_found",
    );
    assert_problem(
        &get_cart(&ordo.api(), Some(&"0".repeat(64))).await,
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_holds_a_bounded_number_of_lines() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    for n in 0..51 {
        let created = admin
            .post(
                "/api/v1/products",
                json!({"sku": format!("BULK-{n}"), "name": "Bulk", "category": "bulk", "price": 100,
                       "currency": "EUR"}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let guest = ordo.api();
    let token = guest_cart(&guest).await;
    for n in 0..50 {
        let answer = put_item(&guest, Some(&token), &format!("BULK-{n}"), json!(1)).await;
        assert_eq!(answer.status, 200, "{n}: {:?}", answer.body);
    }
    assert_problem(
        &put_item(&guest, Some(&token), "BULK-50", json!(1)).await,
        409,
        "cart_full",
    );
    let cart = get_cart(&guest, Some(&token)).await.body;
    assert_eq!(cart["items"].as_array().unwrap().len(), 50);
    assert_eq!(cart["items"][0]["available"], 0, "no stock, still held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cart_merges_into_the_customer_cart_capped_and_only_once() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    catalog(&admin).await;
    let guest = ordo.api();
    let token = guest_cart(&guest).await;
    let other_token = guest_cart(&guest).await;
    assert_ne!(token, other_token);
    // The token itself is not what the event store names the cart by.
    let (stored,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 OR payload::text LIKE '%' || $1 || '%'",
    )
    .bind(&token)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    assert_eq!(stored, 0, "the guest token is stored");

    assert_eq!(
        put_item(&guest, Some(&token), "MUG", json!(4)).await.status,
        200
    );
    assert_eq!(
        put_item(&guest, Some(&token), "TEE", json!(5)).await.status,
        200
    );
    assert_eq!(
        quantities(&get_cart(&guest, Some(&token)).await.body),
        [("MUG".to_owned(), 4), ("TEE".to_owned(), 5)]
    );
    // Guest carts are apart from each other.
    assert_eq!(
        get_cart(&guest, Some(&other_token)).await.body["items"],
        json!([])
    );

    // The customer already has 2 mugs, and one tee on an earlier order.
    let alice = ordo.customer("merge@example.com").await;
    put_item(&alice, None, "MUG", json!(2)).await;
    let placed = alice
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "TEE", "quantity": 1}]})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);

    let merged = alice
        .post("/api/v1/cart/merge", json!({"cart_token": token}))
        .await;
    assert_eq!(merged.status, 200, "{:?}", merged.body);
    // Mugs: 2 + 4 capped by the 5 in stock; tees: 5 capped by the limit of 2 less the 1
    // already ordered.
    assert_eq!(
        quantities(&merged.body),
        [("MUG".to_owned(), 5), ("TEE".to_owned(), 1)]
    );

    // The guest cart is retired; merging it again changes nothing.
    assert_problem(&get_cart(&guest, Some(&token)).await, 404, "not_found");
    assert_problem(
        &put_item(&guest, Some(&token), "MUG", json!(1)).await,
        404,
        "not_found",
    );
    let again = alice
        .post("/api/v1/cart/merge", json!({"cart_token": token}))
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body, merged.body);
    let cart_id = {
        let (id,): (String,) = sqlx::query_as(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'cart'
             AND event_type = 'GuestCartMerged'",
        )
        .fetch_one(ordo.pool())
        .await
        .unwrap();
        id
    };
    assert_eq!(
        event_types(ordo.pool(), "cart", &cart_id).await,
        ["CartOpened", "CartLineSet", "GuestCartMerged"]
    );

    // Another customer cannot take the retired cart; an unknown token is 404; guests may not
    // merge.
    let bob = ordo.customer("merge-b@example.com").await;
    assert_problem(
        &bob.post("/api/v1/cart/merge", json!({"cart_token": token}))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &bob.post("/api/v1/cart/merge", json!({"cart_token": "f".repeat(64)}))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &guest
            .send(
                Method::POST,
                "/api/v1/cart/merge",
                Some(json!({"cart_token": other_token})),
                &[("ordo-cart", other_token.as_str())],
            )
            .await,
        401,
        "unauthorized",
    );
}
