//! End to end: the read side's lists page through their rows once each, in their order,
//! with opaque cursors, and refuse cursors and page sizes they did not give out.

use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

/// Every page of `path` (which already has a query string) at `limit` rows a page: the
/// rows of the `items` field of each page, page by page.
async fn pages(api: &Api, path: &str, items: &str, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}&limit={limit}&cursor={cursor}"),
            None => format!("{path}&limit={limit}"),
        };
        let answer = api.get(&url).await;
        assert_eq!(answer.status, 200, "{url}: {:?}", answer.body);
        let rows = answer.body[items].as_array().cloned().unwrap_or_default();
        assert!(rows.len() <= limit, "{url}: {} rows", rows.len());
        pages.push(rows);
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
        assert!(pages.len() < 20, "{path} never ends");
    }
}

fn field(rows: &[Vec<Value>], name: &str) -> Vec<String> {
    rows.iter()
        .flatten()
        .map(|row| row[name].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether the times in field `name` never increase from one row to the next.
fn newest_first(rows: &[Vec<Value>], name: &str) -> bool {
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = field(rows, name)
        .iter()
        .map(|text| chrono::DateTime::parse_from_rfc3339(text).expect("a time"))
        .collect();
    times.windows(2).all(|pair| pair[0] >= pair[1])
}

fn sizes(rows: &[Vec<Value>]) -> Vec<usize> {
    rows.iter().map(Vec::len).collect()
}

async fn count(api: &Api, path: &str, items: &str) -> usize {
    api.get(path).await.body[items]
        .as_array()
        .map_or(0, Vec::len)
}

async fn create_show(admin: &Api, body: Value) -> String {
    let created = admin.post("/api/v1/shows", body).await;
    assert!(
        created.status == 201 || created.status == 202,
        "{:?}",
        created.body
    );
    created.body["show_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn products_and_shows_page_in_their_order_and_filter_as_asked() {
    let ordo = TestOrdo::start().await;
    let anonymous = ordo.api();
    let admin = anonymous.admin().await;

    for sku in ["PG-4", "PG-1", "PG-5", "PG-3", "PG-2"] {
        let created = admin
            .post(
                "/api/v1/products",
                json!({"sku": sku, "name": sku, "category": "paged", "price": 100, "currency": "EUR"}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let other = admin
        .post(
            "/api/v1/products",
            json!({"sku": "OTHER-1", "name": "Other", "category": "other", "price": 100, "currency": "EUR"}),
        )
        .await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    eventually("products listed", Duration::from_secs(20), || async {
        (count(&anonymous, "/api/v1/products?limit=100", "products").await == 6).then_some(())
    })
    .await;
    let products = pages(&anonymous, "/api/v1/products?category=paged", "products", 2).await;
    assert_eq!(sizes(&products), [2, 2, 1]);
    assert_eq!(
        field(&products, "sku"),
        ["PG-1", "PG-2", "PG-3", "PG-4", "PG-5"]
    );

    // A product never restocked has an empty stock; an unknown one has none.
    let stock = anonymous.get("/api/v1/inventory/PG-1").await;
    assert_eq!(stock.status, 200, "{:?}", stock.body);
    assert_eq!(
        (
            stock.body["on_hand"].as_i64(),
            stock.body["version"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(anonymous.get("/api/v1/inventory/NOPE-1").await.status, 404);

    let mut show_ids = Vec::new();
    for title in ["First Night", "100% Live", "1000 Nights"] {
        show_ids.push(
            create_show(
                &admin,
                json!({"title": title, "category": "concert", "city": "Pageville", "venue": "Hall"}),
            )
            .await,
        );
    }
    eventually("shows listed", Duration::from_secs(20), || async {
        (count(
            &anonymous,
            "/api/v1/shows?city=pageville&limit=100",
            "shows",
        )
        .await
            == 3)
            .then_some(())
    })
    .await;
    // Newest first; the city matches whatever its case.
    let shows = pages(&anonymous, "/api/v1/shows?city=PAGEVILLE", "shows", 2).await;
    assert_eq!(sizes(&shows), [2, 1]);
    let newest_first: Vec<String> = show_ids.iter().rev().cloned().collect();
    assert_eq!(field(&shows, "show_id"), newest_first);
    // `%` in the words is a character, not a wildcard.
    let literal = anonymous.get("/api/v1/shows?q=100%25").await;
    assert_eq!(
        field(
            &[literal.body["shows"]
                .as_array()
                .cloned()
                .unwrap_or_default()],
            "title"
        ),
        ["100% Live"]
    );

    let sessions = anonymous
        .get(&format!("/api/v1/shows/{}/sessions", show_ids[0]))
        .await;
    assert_eq!(sessions.status, 200, "{:?}", sessions.body);
    assert_eq!(sessions.body["sessions"], json!([]));
    let unknown = anonymous
        .get("/api/v1/shows/00000000-0000-0000-0000-000000000000/sessions")
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);

    // Cursors and sizes this API did not give out are refused, naming the parameter.
    let product_cursor = products_cursor(&anonymous).await;
    for (path, parameter) in [
        ("/api/v1/products?limit=0".to_string(), "limit"),
        ("/api/v1/products?limit=101".to_string(), "limit"),
        ("/api/v1/shows?cursor=zz".to_string(), "cursor"),
        (format!("/api/v1/shows?cursor={product_cursor}"), "cursor"),
    ] {
        let refused = anonymous.get(&path).await;
        assert_eq!(refused.status, 422, "{path}: {:?}", refused.body);
        assert_eq!(
            refused.body["field"], parameter,
            "{path}: {:?}",
            refused.body
        );
    }
    ordo.stop().await;
}

/// A cursor of the product list (a SKU), which no newest-first list accepts.
async fn products_cursor(api: &Api) -> String {
    let page = api.get("/api/v1/products?limit=1").await;
    page.body["next_cursor"]
        .as_str()
        .expect("more than one product")
        .to_string()
}

#[tokio::test]
async fn a_customers_orders_and_bookings_page_newest_first_and_only_their_own() {
    let ordo = TestOrdo::start().await;
    let anonymous = ordo.api();
    let admin = anonymous.admin().await;
    let (customer, _) = anonymous.register("pager@example.com").await;
    let (someone_else, _) = anonymous.register("other-pager@example.com").await;

    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "PAGED", "name": "Paged", "category": "paged", "price": 250, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/PAGED/restock", json!({"quantity": 100}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);

    let mut order_ids = Vec::new();
    for _ in 0..3 {
        let placed = customer
            .post(
                "/api/v1/orders",
                json!({"items": [{"sku": "PAGED", "quantity": 1}]}),
            )
            .await;
        assert_eq!(placed.status, 202, "{:?}", placed.body);
        order_ids.push(placed.body["order_id"].as_str().unwrap().to_string());
    }
    let foreign = someone_else
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "PAGED", "quantity": 1}]}),
        )
        .await;
    assert_eq!(foreign.status, 202, "{:?}", foreign.body);
    eventually("orders listed", Duration::from_secs(20), || async {
        (count(&customer, "/api/v1/orders?limit=100", "orders").await == 3).then_some(())
    })
    .await;
    let orders = pages(&customer, "/api/v1/orders?", "orders", 2).await;
    assert_eq!(sizes(&orders), [2, 1]);
    let mut listed = field(&orders, "order_id");
    assert!(newest_first(&orders, "placed_at"), "{orders:?}");
    listed.sort();
    order_ids.sort();
    assert_eq!(listed, order_ids);
    // One order has its lines; another customer's is not found.
    let one = customer
        .get(&format!("/api/v1/orders/{}", order_ids[0]))
        .await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.body["items"][0]["sku"], "PAGED");
    assert_eq!(one.body["total_amount"], 250);
    let foreign_id = foreign.body["order_id"].as_str().unwrap();
    assert_eq!(
        customer
            .get(&format!("/api/v1/orders/{foreign_id}"))
            .await
            .status,
        404
    );

    let show = create_show(
        &admin,
        json!({
            "title": "Paged Show", "category": "concert", "city": "Pageville", "venue": "Hall",
            "sessions": [{"starts_at": "2031-05-01T19:00:00Z", "seat_areas": [
                {"area_id": "floor", "name": "Floor", "price": 900, "currency": "EUR", "capacity": 10}
            ]}]
        }),
    )
    .await;
    let session_id = eventually("seats open", Duration::from_secs(20), || async {
        let sessions = customer
            .get(&format!("/api/v1/shows/{show}/sessions"))
            .await
            .body;
        let session = &sessions["sessions"][0];
        (session["seat_areas"][0]["available"] == 10).then(|| {
            session["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    })
    .await;
    let mut booking_ids = Vec::new();
    for _ in 0..3 {
        let booked = customer
            .send(
                Method::POST,
                "/api/v1/bookings",
                Some(json!({"session_id": session_id, "seat_area_id": "floor", "quantity": 1})),
                &[],
            )
            .await;
        assert_eq!(booked.status, 202, "{:?}", booked.body);
        booking_ids.push(booked.body["booking_id"].as_str().unwrap().to_string());
    }
    eventually("bookings listed", Duration::from_secs(20), || async {
        (count(&customer, "/api/v1/bookings?limit=100", "bookings").await == 3).then_some(())
    })
    .await;
    let bookings = pages(&customer, "/api/v1/bookings?", "bookings", 2).await;
    assert_eq!(sizes(&bookings), [2, 1]);
    assert!(newest_first(&bookings, "requested_at"), "{bookings:?}");
    let mut listed = field(&bookings, "booking_id");
    listed.sort();
    booking_ids.sort();
    assert_eq!(listed, booking_ids);
    assert_eq!(
        count(&someone_else, "/api/v1/bookings?limit=100", "bookings").await,
        0
    );

    let refused = customer.get("/api/v1/orders?cursor=zz").await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["field"], "cursor");
    ordo.stop().await;
}

#[tokio::test]
async fn the_marketplace_lists_page_once_through_their_rows() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let customer = ordo.customer("publisher@example.com").await;
    let mut published = Vec::new();
    for n in 0..5 {
        let answer = customer
            .api
            .post(
                "/api/v1/service-orders",
                json!({"title": format!("Job {n}"), "description": "Something to fix.",
                       "service_type": "plumbing", "price": 1000 + n, "currency": "EUR",
                       "location": "NORTH", "address": "1 Main Street"}),
            )
            .await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        published.push(answer.body["order_id"].as_str().unwrap().to_string());
    }
    let mut providers = Vec::new();
    for n in 0..3 {
        let provider = ordo.provider(&format!("fixer{n}@example.com")).await;
        let profile = provider
            .api
            .send(
                Method::PUT,
                "/api/v1/providers/me/profile",
                Some(json!({"full_name": "Fixer", "phone": "+49 30 1234567",
                            "skills": ["plumbing"], "service_areas": ["NORTH"]})),
                &[],
            )
            .await;
        assert_eq!(profile.status, 200, "{:?}", profile.body);
        providers.push(provider.user_id);
    }

    // The customer's own orders, newest first, each once.
    eventually(
        "the orders are in the read model",
        Duration::from_secs(20),
        || async {
            (count(
                &customer.api,
                "/api/v1/service-orders?limit=100",
                "service_orders",
            )
            .await
                == 5)
                .then_some(())
        },
    )
    .await;
    let rows = pages(
        &customer.api,
        "/api/v1/service-orders?",
        "service_orders",
        2,
    )
    .await;
    assert_eq!(sizes(&rows), vec![2, 2, 1]);
    assert!(newest_first(&rows, "created_at"));
    let mut listed = field(&rows, "order_id");
    listed.reverse();
    assert_eq!(listed, published);

    // The admins' provider list, the longest waiting first, each once.
    eventually(
        "the providers are in the directory",
        Duration::from_secs(20),
        || async {
            (count(
                &admin,
                "/api/v1/admin/providers?status=unverified",
                "providers",
            )
            .await
                == 3)
                .then_some(())
        },
    )
    .await;
    let rows = pages(
        &admin,
        "/api/v1/admin/providers?status=unverified",
        "providers",
        2,
    )
    .await;
    assert_eq!(sizes(&rows), vec![2, 1]);
    let mut listed = field(&rows, "provider_id");
    listed.sort();
    providers.sort();
    assert_eq!(listed, providers);

    // A cursor of another shape is refused.
    let foreign = customer.api.get("/api/v1/service-orders?cursor=zz").await;
    assert_eq!(foreign.status, 422, "{:?}", foreign.body);
    assert_eq!(foreign.body["field"], "cursor");
    ordo.stop().await;
}
