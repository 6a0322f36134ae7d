//! End to end: the catalog on a real `ordo serve` against real Postgres and NATS. Products
//! with several SKUs, the single-SKU form, price changes followed by reads and search,
//! listing and delisting, purchase limits counted over a customer's orders, the category
//! tree and its refusals, and a product stored before products had several SKUs.

use std::time::Duration;

use ordo_tests::{assert_problem, event_types, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn tee(sku: &str, size: &str, price: i64, limit: Option<i64>) -> Value {
    json!({"sku": sku, "spec": {"colour": "black", "size": size}, "price": price,
           "currency": "EUR", "weight_grams": 180, "max_per_customer": limit})
}

async fn create_tee(admin: &Api) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({
                "product_id": "TEE-CLASSIC", "name": "Classic tee", "description": "Cotton",
                "category": "apparel",
                "media": ["https://img.example/tee-front.jpg", "https://img.example/tee-back.jpg"],
                "skus": [tee("TEE-BLK-M", "M", 2000, Some(3)), tee("TEE-BLK-L", "L", 2200, None)],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["product_id"], "TEE-CLASSIC");
    assert_eq!(created.body["sku"], "TEE-BLK-M");
    for sku in ["TEE-BLK-M", "TEE-BLK-L"] {
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{sku}/restock"),
                json!({"quantity": 50}),
            )
            .await;
        assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    }
}

/// The SKU's read model once `check` holds for it.
async fn product_when(api: &Api, sku: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(what, WAIT, || async {
        let answer = api.get(&format!("/api/v1/products/{sku}")).await;
        (answer.status == 200 && check(&answer.body)).then_some(answer.body)
    })
    .await
}

async fn place(customer: &Api, sku: &str, quantity: i64) -> ordo_tests::Answer {
    customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": sku, "quantity": quantity}]})),
            &[("prefer", "wait=10")],
        )
        .await
}

async fn event_count(ordo: &TestOrdo) -> i64 {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(ordo.pool())
        .await
        .unwrap();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_with_several_skus_is_browsed_per_sku_with_its_spec_media_and_limit() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = ordo.admin().await;
    create_tee(&admin).await;

    let medium = product_when(&api, "TEE-BLK-M", "the tee in the read model", |_| true).await;
    assert_eq!(medium["product_id"], "TEE-CLASSIC");
    assert_eq!(medium["name"], "Classic tee");
    assert_eq!(medium["spec"], json!({"colour": "black", "size": "M"}));
    assert_eq!(medium["price"], 2000);
    assert_eq!(medium["weight_grams"], 180);
    assert_eq!(medium["max_per_customer"], 3);
    assert_eq!(medium["on_sale"], true);
    assert_eq!(
        medium["media"],
        json!([
            "https://img.example/tee-front.jpg",
            "https://img.example/tee-back.jpg"
        ])
    );
    let large = api.get("/api/v1/products/TEE-BLK-L").await.body;
    assert_eq!(large["price"], 2200);
    assert_eq!(large["max_per_customer"], Value::Null);
    let listed = api.get("/api/v1/products?category=apparel").await.body;
    let skus: Vec<&str> = listed["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["TEE-BLK-L", "TEE-BLK-M"]);
    // One aggregate, one creation event, for the two SKUs.
    assert_eq!(
        event_types(ordo.pool(), "product", "TEE-CLASSIC").await,
        ["ProductCreated"]
    );

    // The media are replaced as a whole, in their new order.
    let reordered = admin
        .send(
            Method::PATCH,
            "/api/v1/products/TEE-BLK-L",
            Some(json!({"media": ["https://img.example/tee-back.jpg", "https://img.example/tee-front.jpg"]})),
            &[],
        )
        .await;
    assert_eq!(reordered.status, 200, "{:?}", reordered.body);
    let medium = product_when(&api, "TEE-BLK-M", "the new media order", |p| {
        p["media"][0] == "https://img.example/tee-back.jpg"
    })
    .await;
    assert_eq!(medium["media"].as_array().unwrap().len(), 2);

    // A SKU may not be in two products, nor twice in one; prices are above zero; the two
    // forms do not mix; and none of it writes anything.
    let before = event_count(&ordo).await;
    let taken = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-V", "name": "V tee", "category": "apparel",
                   "skus": [tee("TEE-V-M", "M", 2000, None), tee("tee-blk-l", "L", 2200, None)]}),
        )
        .await;
    assert_problem(&taken, 409, "sku_taken");
    let twice = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-V", "name": "V tee", "category": "apparel",
                   "skus": [tee("TEE-V-M", "M", 2000, None), tee("tee-v-m", "L", 2200, None)]}),
        )
        .await;
    assert_problem(&twice, 422, "duplicate_sku");
    let free = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-V", "name": "V tee", "category": "apparel",
                   "skus": [tee("TEE-V-M", "M", 0, None)]}),
        )
        .await;
    assert_problem(&free, 422, "validation_failed");
    assert_eq!(free.body["field"], "skus[0].price", "{:?}", free.body);
    let mixed = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-V", "name": "V tee", "category": "apparel", "sku": "TEE-V-S",
                   "price": 100, "currency": "EUR", "skus": [tee("TEE-V-M", "M", 100, None)]}),
        )
        .await;
    assert_problem(&mixed, 422, "validation_failed");
    let bad_media = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-V", "name": "V tee", "category": "apparel",
                   "media": ["javascript:alert(1)"], "skus": [tee("TEE-V-M", "M", 100, None)]}),
        )
        .await;
    assert_problem(&bad_media, 422, "validation_failed");
    let no_skus = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-V", "name": "V tee", "category": "apparel", "skus": []}),
        )
        .await;
    assert_problem(&no_skus, 422, "validation_failed");
    let again = admin
        .post(
            "/api/v1/products",
            json!({"product_id": "TEE-CLASSIC", "name": "Classic tee", "category": "apparel",
                   "skus": [tee("TEE-BLK-S", "S", 2000, None)]}),
        )
        .await;
    assert_problem(&again, 409, "product_exists");
    assert_eq!(event_count(&ordo).await, before, "a refusal wrote an event");
    assert_eq!(
        api.get("/api/v1/products/TEE-V-M").await.status,
        404,
        "a refused product is in the catalog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_sku_form_keeps_working_and_search_follows_its_price_changes() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "lamp-brass", "name": "Brass lamp", "description": "A desk lamp",
                   "category": "home", "price": 4900, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["product_id"], "LAMP-BRASS");
    let lamp = product_when(&api, "LAMP-BRASS", "the lamp in the read model", |_| true).await;
    assert_eq!(lamp["product_id"], "LAMP-BRASS");
    assert_eq!(lamp["spec"], json!({}));

    let changed = admin
        .send(
            Method::PATCH,
            "/api/v1/products/LAMP-BRASS",
            Some(json!({"price": 3900, "currency": "EUR", "description": "A brass desk lamp"})),
            &[],
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(
        event_types(ordo.pool(), "product", "LAMP-BRASS").await,
        ["ProductCreated", "ProductUpdated", "SkuPriceChanged"]
    );
    let lamp = product_when(&api, "LAMP-BRASS", "the new price read", |p| {
        p["price"] == 3900
    })
    .await;
    assert_eq!(lamp["description"], "A brass desk lamp");
    let hit = eventually("search shows the new price", WAIT, || async {
        let page = api.get("/api/v1/search?q=brass%20lamp").await.body;
        page["results"]
            .as_array()
            .and_then(|r| r.iter().find(|h| h["id"] == "LAMP-BRASS").cloned())
            .filter(|h| h["price"] == 3900)
    })
    .await;
    assert_eq!(hit["title"], "Brass lamp");

    // A price of zero is refused and changes nothing; an unknown SKU is 404.
    let zero = admin
        .send(
            Method::PATCH,
            "/api/v1/products/LAMP-BRASS",
            Some(json!({"price": 0, "currency": "EUR"})),
            &[],
        )
        .await;
    assert_problem(&zero, 422, "validation_failed");
    let unknown = admin
        .send(
            Method::PATCH,
            "/api/v1/products/NO-SUCH",
            Some(json!({"price": 10, "currency": "EUR"})),
            &[],
        )
        .await;
    assert_problem(&unknown, 404, "not_found");
    assert_eq!(
        event_types(ordo.pool(), "product", "LAMP-BRASS")
            .await
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delisted_sku_is_not_sold_browsed_or_found_until_it_is_listed_again() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = ordo.admin().await;
    create_tee(&admin).await;
    let customer = ordo.customer("delist@example.com").await;

    let delisted = admin
        .post("/api/v1/products/tee-blk-l/delist", json!({}))
        .await;
    assert_eq!(delisted.status, 200, "{:?}", delisted.body);
    assert_eq!(delisted.body["product_id"], "TEE-CLASSIC");
    // Delisting again changes nothing.
    let again = admin
        .post("/api/v1/products/TEE-BLK-L/delist", json!({}))
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["version"], delisted.body["version"]);

    let refused = place(&customer, "TEE-BLK-L", 1).await;
    assert_problem(&refused, 409, "not_on_sale");
    let (orders,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'order'")
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(orders, 0, "a refused order was stored");
    // The other SKU of the product is still sold.
    let medium = place(&customer, "TEE-BLK-M", 1).await;
    assert_eq!(medium.status, 202, "{:?}", medium.body);

    let large = product_when(&api, "TEE-BLK-L", "the SKU shown delisted", |p| {
        p["on_sale"] == false
    })
    .await;
    assert_eq!(large["price"], 2200);
    let listed = api.get("/api/v1/products?category=apparel").await.body;
    assert_eq!(listed["products"].as_array().unwrap().len(), 1);
    assert_eq!(listed["products"][0]["sku"], "TEE-BLK-M");
    eventually("search leaves the delisted SKU out", WAIT, || async {
        let page = api.get("/api/v1/search?q=classic%20tee").await.body;
        let ids: Vec<String> = page["results"]
            .as_array()?
            .iter()
            .map(|h| h["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        (ids == ["TEE-BLK-M"]).then_some(())
    })
    .await;

    let relisted = admin
        .post("/api/v1/products/TEE-BLK-L/list", json!({}))
        .await;
    assert_eq!(relisted.status, 200, "{:?}", relisted.body);
    let sold = place(&customer, "TEE-BLK-L", 1).await;
    assert_eq!(sold.status, 202, "{:?}", sold.body);
    product_when(&api, "TEE-BLK-L", "the SKU shown on sale", |p| {
        p["on_sale"] == true
    })
    .await;
    assert_eq!(
        event_types(ordo.pool(), "product", "TEE-CLASSIC").await,
        ["ProductCreated", "SkuDelisted", "SkuListed"]
    );

    assert_problem(
        &admin
            .post("/api/v1/products/NO-SUCH/delist", json!({}))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &customer
            .post("/api/v1/products/TEE-BLK-M/delist", json!({}))
            .await,
        403,
        "forbidden",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purchase_limit_counts_earlier_orders_that_were_not_cancelled() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    create_tee(&admin).await;
    let alice = ordo.customer("limit-a@example.com").await;
    let bob = ordo.customer("limit-b@example.com").await;

    // TEE-BLK-M allows 3 per customer.
    assert_problem(&place(&alice, "TEE-BLK-M", 4).await, 409, "purchase_limit");
    let first = place(&alice, "TEE-BLK-M", 2).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let first_id = first.body["order_id"].as_str().unwrap().to_owned();
    let beyond = place(&alice, "TEE-BLK-M", 2).await;
    assert_problem(&beyond, 409, "purchase_limit");
    assert!(
        beyond.body["detail"]
            .as_str()
            .unwrap()
            .contains("limited to 3"),
        "{:?}",
        beyond.body
    );
    let up_to = place(&alice, "TEE-BLK-M", 1).await;
    assert_eq!(up_to.status, 202, "{:?}", up_to.body);
    assert_problem(&place(&alice, "TEE-BLK-M", 1).await, 409, "purchase_limit");
    // Another customer has a limit of their own; a SKU without a limit has none.
    assert_eq!(place(&bob, "TEE-BLK-M", 3).await.status, 202);
    assert_eq!(place(&alice, "TEE-BLK-L", 20).await.status, 202);

    // A cancelled order no longer counts.
    let cancelled = alice
        .send(
            Method::POST,
            &format!("/api/v1/orders/{first_id}/cancel"),
            Some(json!({})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    let after = place(&alice, "TEE-BLK-M", 2).await;
    assert_eq!(after.status, 202, "{:?}", after.body);
    assert_problem(&place(&alice, "TEE-BLK-M", 1).await, 409, "purchase_limit");

    // The admin raises the limit, then lifts it; each change is an event of its own.
    let raised = admin
        .send(
            Method::PATCH,
            "/api/v1/products/TEE-BLK-M",
            Some(json!({"max_per_customer": 5})),
            &[],
        )
        .await;
    assert_eq!(raised.status, 200, "{:?}", raised.body);
    assert_eq!(place(&alice, "TEE-BLK-M", 2).await.status, 202);
    assert_problem(&place(&alice, "TEE-BLK-M", 1).await, 409, "purchase_limit");
    let lifted = admin
        .send(
            Method::PATCH,
            "/api/v1/products/TEE-BLK-M",
            Some(json!({"max_per_customer": null})),
            &[],
        )
        .await;
    assert_eq!(lifted.status, 200, "{:?}", lifted.body);
    assert_eq!(place(&alice, "TEE-BLK-M", 10).await.status, 202);
    assert_problem(
        &admin
            .send(
                Method::PATCH,
                "/api/v1/products/TEE-BLK-M",
                Some(json!({"max_per_customer": 0})),
                &[],
            )
            .await,
        422,
        "validation_failed",
    );
    assert_eq!(
        event_types(ordo.pool(), "product", "TEE-CLASSIC").await,
        ["ProductCreated", "SkuLimitChanged", "SkuLimitChanged"]
    );

    // Repeating a placed order with its idempotency key is not counted against itself.
    let keyed = |key: &'static str| {
        let bob = bob.clone();
        async move {
            bob.send(
                Method::POST,
                "/api/v1/orders",
                Some(json!({"items": [{"sku": "TEE-BLK-L", "quantity": 1}]})),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let once = keyed("bob-large").await;
    let twice = keyed("bob-large").await;
    assert_eq!((once.status, twice.status), (202, 202));
    assert_eq!(once.body["order_id"], twice.body["order_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_at_once_by_one_customer_cannot_both_slip_under_the_limit() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    create_tee(&admin).await;
    let alice = ordo.customer("race@example.com").await;
    let attempts = (0..6).map(|_| {
        let alice = alice.clone();
        async move { place(&alice, "TEE-BLK-M", 1).await.status }
    });
    let statuses = futures::future::join_all(attempts).await;
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((accepted, refused), (3, 3), "{statuses:?}");
}

async fn create_category(admin: &Api, name: &str, parent: Option<&str>) -> String {
    let created = admin
        .post(
            "/api/v1/categories",
            json!({"name": name, "parent_id": parent}),
        )
        .await;
    assert_eq!(created.status, 201, "{name}: {:?}", created.body);
    created.body["category_id"].as_str().unwrap().to_owned()
}

async fn patch(api: &Api, path: &str, body: Value) -> ordo_tests::Answer {
    api.send(Method::PATCH, path, Some(body), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categories_form_a_tree_that_refuses_cycles_and_deleting_what_is_not_empty() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = ordo.admin().await;
    let apparel = create_category(&admin, "Apparel", None).await;
    let tops = create_category(&admin, "Tops", Some(&apparel)).await;
    let tees = create_category(&admin, "Tees", Some(&tops)).await;
    let kitchen = create_category(&admin, "Kitchen", None).await;

    let tree = eventually("the tree is readable", WAIT, || async {
        let body = api.get("/api/v1/categories").await.body;
        (body["categories"].as_array()?.len() == 4).then_some(body)
    })
    .await;
    let parent_of = |tree: &Value, id: &str| {
        tree["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["category_id"] == id)
            .map(|c| c["parent_id"].clone())
    };
    assert_eq!(parent_of(&tree, &tees), Some(json!(tops)));
    assert_eq!(parent_of(&tree, &apparel), Some(Value::Null));
    assert_eq!(tree["categories"][0]["name"], "Apparel", "roots first");

    // Cycles: under itself, under its grandchild. Unknown parents. Nothing is written.
    let before = event_count(&ordo).await;
    let path = format!("/api/v1/categories/{apparel}");
    assert_problem(
        &patch(&admin, &path, json!({"parent_id": apparel})).await,
        409,
        "category_cycle",
    );
    assert_problem(
        &patch(&admin, &path, json!({"parent_id": tees})).await,
        409,
        "category_cycle",
    );
    let nowhere = "00000000-0000-4000-8000-000000000000";
    assert_problem(
        &patch(&admin, &path, json!({"parent_id": nowhere})).await,
        404,
        "unknown_category",
    );
    assert_problem(
        &admin
            .post(
                "/api/v1/categories",
                json!({"name": "Orphan", "parent_id": nowhere}),
            )
            .await,
        404,
        "unknown_category",
    );
    assert_problem(
        &admin
            .post("/api/v1/categories", json!({"name": "  "}))
            .await,
        422,
        "validation_failed",
    );
    // Not empty: a category with children, and one with a product.
    assert_problem(
        &admin.send(Method::DELETE, &path, None, &[]).await,
        409,
        "category_not_empty",
    );
    assert_eq!(event_count(&ordo).await, before, "a refusal wrote an event");
    let filed = admin
        .post(
            "/api/v1/products",
            json!({"sku": "TEE-PLAIN", "name": "Plain tee", "category": "apparel",
                   "category_id": tees, "price": 1500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(filed.status, 201, "{:?}", filed.body);
    assert_problem(
        &admin
            .send(
                Method::DELETE,
                &format!("/api/v1/categories/{tees}"),
                None,
                &[],
            )
            .await,
        409,
        "category_not_empty",
    );
    assert_problem(
        &admin
            .post(
                "/api/v1/products",
                json!({"sku": "TEE-LOST", "name": "Lost tee", "category": "apparel",
                       "category_id": nowhere, "price": 1500, "currency": "EUR"}),
            )
            .await,
        404,
        "unknown_category",
    );
    let by_tree = eventually("the product is browsed by category", WAIT, || async {
        let body = api
            .get(&format!("/api/v1/products?category_id={tees}"))
            .await
            .body;
        (body["products"].as_array()?.len() == 1).then_some(body)
    })
    .await;
    assert_eq!(by_tree["products"][0]["sku"], "TEE-PLAIN");

    // Moving the branch elsewhere and renaming is fine; then the emptied root is deleted.
    let moved = patch(
        &admin,
        &format!("/api/v1/categories/{tops}"),
        json!({"name": "Shirts and tops", "parent_id": kitchen}),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let deleted = admin.send(Method::DELETE, &path, None, &[]).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    // Now the root is gone: changing it is 404, deleting it again changes nothing.
    assert_problem(
        &patch(&admin, &path, json!({"name": "Back"})).await,
        404,
        "not_found",
    );
    assert_eq!(
        admin.send(Method::DELETE, &path, None, &[]).await.status,
        204
    );
    assert_eq!(
        event_types(ordo.pool(), "category", &apparel).await,
        ["CategoryCreated", "CategoryDeleted"]
    );
    assert_eq!(
        event_types(ordo.pool(), "category", &tops).await,
        ["CategoryCreated", "CategoryRenamed", "CategoryMoved"]
    );
    let tree = eventually("the tree follows", WAIT, || async {
        let body = api.get("/api/v1/categories").await.body;
        let moved = body["categories"]
            .as_array()?
            .iter()
            .any(|c| c["category_id"] == tops && c["parent_id"] == kitchen.as_str());
        (body["categories"].as_array()?.len() == 3 && moved).then_some(body)
    })
    .await;
    assert_eq!(parent_of(&tree, &tops), Some(json!(kitchen)));
    assert_eq!(parent_of(&tree, &apparel), None);

    // Customers may not change the tree, whatever they send.
    let customer = ordo.customer("tree@example.com").await;
    assert_problem(
        &customer
            .post("/api/v1/categories", json!({"name": 7}))
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &admin
            .send(Method::DELETE, "/api/v1/categories/not-a-uuid", None, &[])
            .await,
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_stored_before_products_had_several_skus_still_reads_and_sells() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = ordo.admin().await;
    // A version 1 creation as older builds stored it (one SKU, identified by it).
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('product', 'OLD-MUG', 1, 'ProductCreated', '1', $1, $2)",
    )
    .bind(
        json!({"ProductCreated": {"sku": "OLD-MUG", "name": "Old mug", "description": "",
                                     "category": "kitchen",
                                     "price": {"amount_minor": 800, "currency": "EUR"}}}),
    )
    .bind(json!({"correlation_id": "3b0c7a52-9f3e-4d8e-b5f1-2a6c1e0d9f47"}))
    .execute(ordo.pool())
    .await
    .unwrap();
    let mug = product_when(&api, "OLD-MUG", "the old product in the read model", |_| {
        true
    })
    .await;
    assert_eq!(mug["product_id"], "OLD-MUG");
    assert_eq!(mug["price"], 800);
    assert_eq!(mug["on_sale"], true);

    let restocked = admin
        .post("/api/v1/inventory/OLD-MUG/restock", json!({"quantity": 5}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let delisted = admin
        .post("/api/v1/products/OLD-MUG/delist", json!({}))
        .await;
    assert_eq!(delisted.status, 200, "{:?}", delisted.body);
    let customer = ordo.customer("old@example.com").await;
    assert_problem(&place(&customer, "OLD-MUG", 1).await, 409, "not_on_sale");
    admin.post("/api/v1/products/OLD-MUG/list", json!({})).await;
    let placed = place(&customer, "OLD-MUG", 2).await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(placed.body["status"], "awaiting_payment");
    let order = customer
        .get(&format!(
            "/api/v1/orders/{}",
            placed.body["order_id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(order["total_amount"], 1600, "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_products_created_at_once_with_one_sku_cannot_both_have_it() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = ordo.admin().await;
    let attempts = (0..4).map(|n| {
        let admin = admin.clone();
        async move {
            admin
                .post(
                    "/api/v1/products",
                    json!({"product_id": format!("RACE-{n}"), "name": "Race", "category": "race",
                           "skus": [tee("RACE-SKU", "M", 100, None)]}),
                )
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let created: Vec<&ordo_tests::Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for refused in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(refused.status, 409, "{:?}", refused.body);
    }
    let owner = created[0].body["product_id"].as_str().unwrap().to_owned();
    let (owners,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT aggregate_id) FROM events
         WHERE aggregate_type = 'product' AND event_type = 'ProductCreated'",
    )
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    assert_eq!(owners, 1, "a SKU was committed in two products");
    let sku = product_when(&api, "RACE-SKU", "the winner in the read model", |_| true).await;
    assert_eq!(sku["product_id"], owner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_moves_at_once_cannot_together_make_a_cycle() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    for _ in 0..3 {
        let a = create_category(&admin, "A", None).await;
        let b = create_category(&admin, "B", None).await;
        let (under_b, under_a) = futures::future::join(
            patch(
                &admin,
                &format!("/api/v1/categories/{a}"),
                json!({"parent_id": b}),
            ),
            patch(
                &admin,
                &format!("/api/v1/categories/{b}"),
                json!({"parent_id": a}),
            ),
        )
        .await;
        let mut statuses = [under_b.status, under_a.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 409],
            "{:?} {:?}",
            under_b.body,
            under_a.body
        );
    }
}
