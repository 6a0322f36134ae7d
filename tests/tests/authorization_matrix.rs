//! The authorization matrix, generated from the served OpenAPI document: every operation
//! it lists is called by an anonymous caller, by customer A (who owns the resources in the
//! paths), by customer B (to whom they are foreign), by a service provider (to whom they are
//! foreign too) and by an admin, and each answer is held against the operation's rule:
//!
//! - `public`: nobody is refused for who they are (no 401, no 403);
//! - `signed`: the caller is the payment provider or a carrier, proving itself by signature: an unsigned
//!   call is 401 whoever sends it;
//! - `any`: a bearer token is needed (401 without; a cart route takes a guest cart header
//!   instead, which this matrix does not send); owned resources answer 404 to a
//!   customer they are foreign to;
//! - `customer`: as `any`, and only customers (and admins) may: a provider is 403;
//! - `provider`: as `any`, and only providers (and admins) may: a customer is 403;
//! - `personal`: as `any`, and the resource is foreign to everyone but its owner, admins
//!   included (a user's inbox);
//! - `admin`: 401 without a token, 403 for a customer or a provider.
//!
//! Bodies are empty JSON objects, except where a valid body is needed for the ownership
//! check to be what decides (paying, reviewing, sending goods back, following up, asking for a
//! refund): an invalid body is refused alike for every resource,
//! foreign or not, so it tells nothing either way.
//!
//! Every operation of the document must have a rule here, so a route added without one fails
//! this test until its rule is written down.

use std::collections::BTreeMap;
use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Public,
    Signed,
    Any,
    Customer,
    Provider,
    Personal,
    Admin,
}

/// Each operation's rule, and whether its path names a resource of customer A.
fn rules() -> BTreeMap<&'static str, (Rule, bool)> {
    use Rule::*;
    BTreeMap::from([
        ("GET /api/v1/admin/coupon-batches", (Admin, false)),
        ("POST /api/v1/admin/coupon-batches", (Admin, false)),
        ("GET /api/v1/admin/promotions", (Admin, false)),
        ("POST /api/v1/admin/promotions", (Admin, false)),
        (
            "POST /api/v1/admin/promotions/{promotion_id}/end",
            (Admin, false),
        ),
        ("GET /api/v1/admin/sagas/{saga_id}", (Admin, false)),
        ("GET /api/v1/admin/reconciliations/{date}", (Admin, false)),
        ("POST /api/v1/admin/reconciliations/{date}", (Admin, false)),
        (
            "POST /api/v1/admin/shipments/{shipment_id}/pick",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/shipments/{shipment_id}/ship",
            (Admin, false),
        ),
        ("GET /api/v1/shipments/{shipment_id}", (Any, true)),
        ("GET /api/v1/admin/shipping/rules", (Admin, false)),
        (
            "PUT /api/v1/inventory/{sku}/safety-threshold",
            (Admin, false),
        ),
        ("PUT /api/v1/admin/shipping/rules", (Admin, false)),
        ("POST /api/v1/shipping/quote", (Customer, false)),
        (
            "POST /api/v1/shipments/{shipment_id}/tracking",
            (Signed, false),
        ),
        ("POST /api/v1/admin/sagas/{saga_id}/resume", (Admin, false)),
        ("GET /api/v1/admin/dead-letters", (Admin, false)),
        ("GET /api/v1/admin/dead-letters/{sequence}", (Admin, false)),
        (
            "POST /api/v1/admin/dead-letters/{sequence}/redrive",
            (Admin, false),
        ),
        ("GET /api/v1/admin/projections", (Admin, false)),
        (
            "POST /api/v1/admin/projections/{name}/rebuild",
            (Admin, false),
        ),
        ("GET /api/v1/admin/streams", (Admin, false)),
        ("POST /api/v1/auth/login", (Public, false)),
        ("POST /api/v1/auth/logout", (Any, false)),
        ("POST /api/v1/auth/refresh", (Public, false)),
        ("POST /api/v1/auth/register", (Public, false)),
        ("GET /api/v1/bookings", (Any, false)),
        ("POST /api/v1/bookings", (Customer, false)),
        ("GET /api/v1/bookings/{booking_id}", (Any, true)),
        ("POST /api/v1/bookings/{booking_id}/cancel", (Any, true)),
        ("POST /api/v1/bookings/{booking_id}/pay", (Any, true)),
        ("POST /api/v1/bookings/{booking_id}/refund", (Admin, false)),
        (
            "POST /api/v1/bookings/{booking_id}/refund-request",
            (Personal, true),
        ),
        (
            "POST /api/v1/bookings/{booking_id}/refund-request/withdraw",
            (Personal, true),
        ),
        ("GET /api/v1/admin/bookings/refund-requests", (Admin, false)),
        ("GET /api/v1/admin/reviews", (Admin, false)),
        ("GET /api/v1/admin/service-reviews", (Admin, false)),
        ("GET /api/v1/admin/service-orders", (Admin, false)),
        (
            "POST /api/v1/admin/service-orders/{service_order_id}/review/publish",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/service-orders/{service_order_id}/review/reject",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/bookings/{booking_id}/refund-request/approve",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/bookings/{booking_id}/refund-request/reject",
            (Admin, false),
        ),
        ("GET /api/v1/cart", (Any, false)),
        ("PUT /api/v1/cart/items/{sku}", (Any, false)),
        ("DELETE /api/v1/cart/items/{sku}", (Any, false)),
        ("POST /api/v1/cart/merge", (Customer, false)),
        ("POST /api/v1/carts", (Public, false)),
        ("GET /api/v1/categories", (Public, false)),
        ("POST /api/v1/categories", (Admin, false)),
        ("PATCH /api/v1/categories/{category_id}", (Admin, false)),
        ("DELETE /api/v1/categories/{category_id}", (Admin, false)),
        ("GET /api/v1/coupons", (Any, false)),
        ("POST /api/v1/coupons/claim", (Customer, false)),
        ("GET /api/v1/inventory/{sku}", (Public, false)),
        ("POST /api/v1/inventory/{sku}/restock", (Admin, false)),
        ("GET /api/v1/notifications", (Any, false)),
        ("GET /api/v1/notifications/stream", (Any, false)),
        ("POST /api/v1/notifications/{id}/read", (Personal, true)),
        ("GET /api/v1/orders", (Any, false)),
        ("POST /api/v1/orders", (Customer, false)),
        ("POST /api/v1/orders/prepare", (Customer, false)),
        ("GET /api/v1/orders/{order_id}", (Any, true)),
        ("POST /api/v1/orders/{order_id}/cancel", (Any, true)),
        (
            "POST /api/v1/orders/{order_id}/confirm-receipt",
            (Personal, true),
        ),
        ("POST /api/v1/orders/{order_id}/pay", (Any, true)),
        ("POST /api/v1/orders/{order_id}/refund", (Admin, false)),
        ("GET /api/v1/payments/{payment_id}", (Any, true)),
        ("POST /api/v1/payments/{payment_id}/refund", (Admin, false)),
        (
            "POST /api/v1/payments/{payment_id}/callbacks",
            (Signed, false),
        ),
        ("POST /api/v1/pricing/quote", (Customer, false)),
        ("GET /api/v1/products", (Public, false)),
        ("POST /api/v1/products", (Admin, false)),
        ("GET /api/v1/products/{sku}", (Public, false)),
        ("PATCH /api/v1/products/{sku}", (Admin, false)),
        ("POST /api/v1/products/{sku}/delist", (Admin, false)),
        ("POST /api/v1/products/{sku}/list", (Admin, false)),
        ("GET /api/v1/search", (Public, false)),
        ("GET /api/v1/shows", (Public, false)),
        ("POST /api/v1/shows", (Admin, false)),
        ("GET /api/v1/shows/{show_id}", (Public, false)),
        ("GET /api/v1/shows/{show_id}/sessions", (Public, false)),
        ("POST /api/v1/shows/{show_id}/sessions", (Admin, false)),
        ("POST /api/v1/tickets/{ticket_id}/check-in", (Admin, false)),
        ("GET /api/v1/tickets/{ticket_id}/qr.png", (Any, true)),
        ("GET /api/v1/users/me", (Customer, false)),
        ("PATCH /api/v1/users/me", (Customer, false)),
        ("DELETE /api/v1/users/me", (Any, false)),
        ("GET /api/v1/users/me/addresses", (Customer, false)),
        ("POST /api/v1/users/me/addresses", (Customer, false)),
        (
            "PATCH /api/v1/users/me/addresses/{address_id}",
            (Personal, true),
        ),
        (
            "DELETE /api/v1/users/me/addresses/{address_id}",
            (Personal, true),
        ),
        ("PUT /api/v1/providers/me/profile", (Provider, false)),
        (
            "POST /api/v1/providers/me/certifications",
            (Provider, false),
        ),
        (
            "GET /api/v1/providers/me/matching-orders",
            (Provider, false),
        ),
        ("GET /api/v1/providers/{provider_id}", (Public, false)),
        ("GET /api/v1/admin/providers", (Admin, false)),
        (
            "POST /api/v1/admin/providers/{provider_id}/verify",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/providers/{provider_id}/reject",
            (Admin, false),
        ),
        ("GET /api/v1/service-orders", (Any, false)),
        ("POST /api/v1/service-orders", (Customer, false)),
        ("GET /api/v1/service-orders/{service_order_id}", (Any, true)),
        (
            "POST /api/v1/service-orders/{service_order_id}/accept",
            (Provider, false),
        ),
        (
            "POST /api/v1/service-orders/{service_order_id}/pay",
            (Customer, true),
        ),
        (
            "POST /api/v1/service-orders/{service_order_id}/start",
            (Provider, true),
        ),
        (
            "POST /api/v1/service-orders/{service_order_id}/complete",
            (Provider, true),
        ),
        (
            "POST /api/v1/service-orders/{service_order_id}/confirm",
            (Customer, true),
        ),
        (
            "POST /api/v1/service-orders/{service_order_id}/cancel",
            (Any, true),
        ),
        (
            "POST /api/v1/service-orders/{service_order_id}/review",
            (Customer, true),
        ),
        (
            "POST /api/v1/admin/service-orders/{service_order_id}/approve",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/service-orders/{service_order_id}/reject",
            (Admin, false),
        ),
        ("GET /api/v1/aftersales", (Any, false)),
        ("POST /api/v1/aftersales", (Customer, false)),
        ("GET /api/v1/aftersales/{aftersale_id}", (Any, true)),
        (
            "POST /api/v1/aftersales/{aftersale_id}/return-shipment",
            (Customer, true),
        ),
        (
            "POST /api/v1/aftersales/{aftersale_id}/withdraw",
            (Customer, true),
        ),
        (
            "POST /api/v1/admin/aftersales/{aftersale_id}/approve",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/aftersales/{aftersale_id}/reject",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/aftersales/{aftersale_id}/receive",
            (Admin, false),
        ),
        ("POST /api/v1/reviews", (Customer, false)),
        (
            "POST /api/v1/reviews/{review_id}/follow-up",
            (Customer, true),
        ),
        ("POST /api/v1/reviews/{review_id}/report", (Any, false)),
        (
            "POST /api/v1/admin/reviews/{review_id}/publish",
            (Admin, false),
        ),
        (
            "POST /api/v1/admin/reviews/{review_id}/reject",
            (Admin, false),
        ),
        ("GET /api/v1/products/{sku}/reviews", (Public, false)),
        ("GET /api/v1/products/{sku}/rating", (Public, false)),
        ("GET /api/v1/admin/users/{user_id}", (Admin, false)),
        ("DELETE /api/v1/admin/users/{user_id}", (Admin, false)),
    ])
}

/// What customer A owns, and the catalog around it.
struct Fixture {
    params: BTreeMap<&'static str, String>,
}

async fn fixture(admin: &Api, a: &Api, erasable_user_id: &str, provider_id: &str) -> Fixture {
    let service_order = a
        .post(
            "/api/v1/service-orders",
            json!({"title": "Fix the sink", "description": "It drips.", "service_type": "plumbing",
                   "price": 8000, "currency": "EUR", "location": "NORTH", "address": "1 Main St"}),
        )
        .await;
    assert_eq!(service_order.status, 201, "{:?}", service_order.body);
    let service_order_id = service_order.body["order_id"].as_str().unwrap().to_owned();
    let address = a
        .post(
            "/api/v1/users/me/addresses",
            json!({"recipient": "A", "phone": "+49 30 1234567", "province": "Berlin",
                   "city": "Berlin", "detail": "Hauptstr. 1"}),
        )
        .await;
    assert_eq!(address.status, 201, "{:?}", address.body);
    let address_id = address.body["address_id"].as_str().unwrap().to_owned();
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "MATRIX-1", "name": "Matrix", "category": "test", "price": 500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            "/api/v1/inventory/MATRIX-1/restock",
            json!({"quantity": 10}),
        )
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let category = admin
        .post("/api/v1/categories", json!({"name": "Matrix"}))
        .await;
    assert_eq!(category.status, 201, "{:?}", category.body);
    let category_id = category.body["category_id"].as_str().unwrap().to_owned();
    // A subcategory keeps the admin's DELETE from removing the category the other calls use.
    let child = admin
        .post(
            "/api/v1/categories",
            json!({"name": "Matrix child", "parent_id": category_id}),
        )
        .await;
    assert_eq!(child.status, 201, "{:?}", child.body);
    let show = admin
        .post(
            "/api/v1/shows",
            json!({
                "title": "Matrix live", "category": "concert", "city": "Berlin", "venue": "Hall",
                "description": "d",
                "sessions": [{"starts_at": "2027-08-15T11:30:00Z", "seat_areas": [
                    {"area_id": "a", "name": "A", "price": 1000, "currency": "EUR", "capacity": 10}
                ]}]
            }),
        )
        .await;
    assert!(show.status == 201 || show.status == 202, "{:?}", show.body);
    let show_id = show.body["show_id"].as_str().unwrap().to_owned();
    let session_id = show.body["session_ids"][0].as_str().unwrap().to_owned();

    let placed = a
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "MATRIX-1", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let paid = a
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let payment_id = paid.body["payment_id"].as_str().unwrap().to_owned();
    // Once paid, the fulfilment process creates the order's shipment.
    let shipment_id = eventually("the order's shipment", Duration::from_secs(20), || async {
        let body = a.get(&format!("/api/v1/orders/{order_id}")).await.body;
        body["shipments"][0]["shipment_id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;

    // Shipped with the sandbox carrier and delivered, the order's line is reviewed.
    for step in ["pick", "ship"] {
        let answer = admin
            .post(
                &format!("/api/v1/admin/shipments/{shipment_id}/{step}"),
                json!({"carrier": "sandbox", "tracking_no": "SBX-MATRIX"}),
            )
            .await;
        assert_eq!(answer.status, 200, "{step}: {:?}", answer.body);
    }
    let review_id = eventually(
        "a review of the delivered order",
        Duration::from_secs(30),
        || async {
            let reviewed = a
            .post(
                "/api/v1/reviews",
                json!({"order_id": order_id, "sku": "MATRIX-1", "rating": 4, "comment": "Fine."}),
            )
            .await;
            (reviewed.status == 201)
                .then(|| reviewed.body["review_id"].as_str().map(str::to_owned))
                .flatten()
        },
    )
    .await;
    // A refund only of the delivered order.
    let aftersale_id = eventually(
        "an after-sales request",
        Duration::from_secs(20),
        || async {
            let asked = a
                .post(
                    "/api/v1/aftersales",
                    json!({"order_id": order_id, "kind": "refund_only",
                       "lines": [{"sku": "MATRIX-1", "quantity": 1}], "reason": "Not needed."}),
                )
                .await;
            (asked.status == 201)
                .then(|| asked.body["aftersale_id"].as_str().map(str::to_owned))
                .flatten()
        },
    )
    .await;

    let booked = eventually("a booking is taken", Duration::from_secs(20), || async {
        let booked = a
            .send(
                Method::POST,
                "/api/v1/bookings",
                Some(json!({"session_id": session_id, "seat_area_id": "a", "quantity": 1})),
                &[("prefer", "wait=10")],
            )
            .await;
        (booked.status == 202).then_some(booked.body)
    })
    .await;
    let booking_id = booked["booking_id"].as_str().unwrap().to_owned();
    let paid = a
        .send(
            Method::POST,
            &format!("/api/v1/bookings/{booking_id}/pay"),
            Some(json!({"payment_method": "alipay", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let ticket_id = eventually("the booking is paid", Duration::from_secs(20), || async {
        let body = a.get(&format!("/api/v1/bookings/{booking_id}")).await.body;
        body["tickets"][0]["ticket_id"].as_str().map(str::to_owned)
    })
    .await;
    let notification_id = eventually("a notification", Duration::from_secs(20), || async {
        let body = a.get("/api/v1/notifications").await.body;
        body["notifications"][0]["notification_id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let promotion = admin
        .post(
            "/api/v1/admin/promotions",
            json!({"name": "Matrix promotion", "kind": "threshold_amount_off", "currency": "EUR",
                   "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
                   "priority": 0, "threshold": 0, "amount_off": 1}),
        )
        .await;
    assert_eq!(promotion.status, 201, "{:?}", promotion.body);
    let promotion_id = promotion.body["promotion_id"].as_str().unwrap().to_owned();
    // A day reconciled once, so that reading it answers a run.
    let reconciled = admin
        .post("/api/v1/admin/reconciliations/2026-01-01", json!({}))
        .await;
    assert_eq!(reconciled.status, 200, "{:?}", reconciled.body);
    Fixture {
        params: BTreeMap::from([
            ("promotion_id", promotion_id),
            ("service_order_id", service_order_id),
            ("provider_id", provider_id.to_owned()),
            ("saga_id", order_id.clone()),
            ("order_id", order_id),
            ("payment_id", payment_id),
            ("shipment_id", shipment_id),
            ("aftersale_id", aftersale_id),
            ("review_id", review_id),
            ("booking_id", booking_id),
            ("ticket_id", ticket_id),
            ("id", notification_id),
            ("sku", "MATRIX-1".to_owned()),
            // The admin's rebuild of it runs beside the live tables: nothing else changes.
            ("name", "projection-orders".to_owned()),
            ("date", "2026-01-01".to_owned()),
            ("category_id", category_id),
            ("show_id", show_id),
            ("address_id", address_id),
            // The admin's erasure is tried on a user of its own, so that A and B stay.
            ("user_id", erasable_user_id.to_owned()),
        ]),
    }
}

/// An unreadable event, dead-lettered by the order projection: the sequence the dead-letter
/// routes are called with (the admin reads it, then re-drives it).
async fn dead_letter(ordo: &TestOrdo, admin: &Api) -> String {
    let js = async_nats::jetstream::new(ordo.nats().await);
    js.publish(
        format!(
            "{}.events.order.{}.Garbage",
            ordo.namespace(),
            uuid::Uuid::new_v4()
        ),
        "not an event".into(),
    )
    .await
    .expect("published")
    .await
    .expect("stored");
    eventually("a dead letter", Duration::from_secs(30), || async {
        let listed = admin.get("/api/v1/admin/dead-letters").await;
        listed.body["dead_letters"][0]["dlq_sequence"]
            .as_u64()
            .map(|sequence| sequence.to_string())
    })
    .await
}

/// The path with its parameters filled in from the fixture.
fn fill(template: &str, fixture: &Fixture) -> String {
    let mut path = template.to_owned();
    for (name, value) in &fixture.params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(
        !path.contains('{'),
        "no fixture value for a parameter of {template}"
    );
    path
}

/// Calls one operation as `token`'s owner (anonymous without) with an empty JSON body,
/// answering the status only (a stream's body is never read).
async fn status_of(ordo: &TestOrdo, method: &str, path: &str, token: Option<&str>) -> u16 {
    let body = if path.ends_with("/pay") {
        json!({"payment_method": "card", "payment_token": "tok_success"})
    } else if path.ends_with("/return-shipment") {
        json!({"carrier": "sandbox", "tracking_no": "RET-1"})
    } else if path.ends_with("/refund-request") {
        json!({"reason": "Cannot come."})
    } else if path.ends_with("/follow-up") {
        json!({"comment": "Still fine."})
    } else if path.ends_with("/review") {
        json!({"rating": 5, "dimensions": {"professionalism": 5, "attitude": 5, "punctuality": 5}})
    } else {
        json!({})
    };
    let client = reqwest::Client::new();
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client
        .request(method.clone(), format!("{}{path}", ordo.base_url()))
        .timeout(Duration::from_secs(20));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != Method::GET {
        request = request.json(&body);
    }
    request
        .send()
        .await
        .expect("ordo answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_operation_answers_each_caller_by_its_rule() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let a = ordo.customer("matrix-a@example.com").await;
    let b = ordo.customer("matrix-b@example.com").await;
    let erasable = ordo.customer("matrix-c@example.com").await;
    let provider = ordo.provider("matrix-p@example.com").await;
    let profile = provider
        .send(
            Method::PUT,
            "/api/v1/providers/me/profile",
            Some(
                json!({"full_name": "P", "phone": "+49 30 1234567", "skills": ["plumbing"],
                        "service_areas": ["NORTH"]}),
            ),
            &[],
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let mut fixture = fixture(&admin, &a, &erasable.user_id, &provider.user_id).await;
    fixture
        .params
        .insert("sequence", dead_letter(&ordo, &admin).await);

    let document = ordo.api().get("/api/v1/openapi.json").await.body;
    let rules = rules();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("an operation map") {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let documented: Vec<&str> = operations.iter().map(String::as_str).collect();
    let ruled: Vec<&str> = rules.keys().copied().collect();
    assert_eq!(
        {
            let mut d = documented.clone();
            d.sort();
            d
        },
        ruled,
        "every documented operation has a rule, and every rule an operation"
    );

    let tokens = [
        ("anonymous", None),
        ("customer A", a.token.clone()),
        ("customer B", b.token.clone()),
        ("provider", provider.token.clone()),
        ("admin", admin.token.clone()),
    ];
    let mut wrong = Vec::new();
    for operation in &operations {
        let (rule, owned) = rules[operation.as_str()];
        let (method, template) = operation.split_once(' ').unwrap();
        // Logging out or erasing oneself would end the callers' sessions: their rule is
        // checked anonymously (the erasure tests check the rest).
        if operation == "POST /api/v1/auth/logout" || operation == "DELETE /api/v1/users/me" {
            let status = status_of(&ordo, method, template, None).await;
            if status != 401 {
                wrong.push(format!("{operation} as anonymous: {status}, expected 401"));
            }
            continue;
        }
        let path = fill(template, &fixture);
        for (caller, token) in &tokens {
            // A's own address is removed only once the others have been refused.
            if operation == "DELETE /api/v1/users/me/addresses/{address_id}"
                && *caller == "customer A"
            {
                continue;
            }
            let status = status_of(&ordo, method, &path, token.as_deref()).await;
            let expected: Result<u16, &str> = match (rule, *caller) {
                (Rule::Signed, _) => Ok(401),
                (Rule::Public, _) => Err("neither 401 nor 403"),
                (_, "anonymous") => Ok(401),
                (Rule::Admin, "customer A" | "customer B" | "provider") => Ok(403),
                (Rule::Customer, "provider") => Ok(403),
                (Rule::Provider, "customer A" | "customer B") => Ok(403),
                (Rule::Any | Rule::Provider, "provider") if owned => Ok(404),
                // A customer's own resource: refused for the role, or not found.
                (Rule::Personal, "provider") if owned => Err("403 or 404"),
                (Rule::Any | Rule::Customer | Rule::Personal, "customer B") if owned => Ok(404),
                (Rule::Personal, "admin") if owned => Ok(404),
                _ => Err("neither 401 nor 403 nor 404"),
            };
            let fine = match expected {
                Ok(code) => status == code,
                Err("neither 401 nor 403") => status != 401 && status != 403,
                Err("403 or 404") => status == 403 || status == 404,
                Err(_) => ![401, 403, 404].contains(&status),
            };
            if !fine {
                wrong.push(format!(
                    "{operation} as {caller}: {status}, expected {}",
                    match expected {
                        Ok(code) => code.to_string(),
                        Err(what) => what.to_owned(),
                    }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "answers against the rules:\n{}",
        wrong.join("\n")
    );
    ordo.stop().await;
}
