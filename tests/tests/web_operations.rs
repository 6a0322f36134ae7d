//! The admin console's commerce decisions and operations in a real browser (headless
//! Chromium over WebDriver) against a real `ordo serve`: an admin picks and ships a
//! shipment on the order page and sees its tracking, follows the order's link to its
//! checkout saga and reads the saga's steps, then approves an after-sales return
//! and receives the goods; publishes a held product review and rejects another in the
//! moderation queue, publishes a provider's held review, and approves a fan's booking
//! refund request; rebuilds a projection from the console and sees it live again; reads
//! the streams and sees the metrics drawn as charts.
//! Every page passes axe-core at desktop and phone width.

use std::time::Duration;

use ordo_tests::{eventually, Api, Browser, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_SANDBOX_CARRIER_DELAY", "200ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
    ("ORDO_REVIEW_BLOCKED_WORDS", "scam, rubbish"),
];

async fn product(admin: &Api, sku: &str) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": sku, "category": "test", "price": 900, "currency": "CNY"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            &format!("/api/v1/inventory/{sku}/restock"),
            json!({"quantity": 50}),
        )
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
}

async fn order(api: &Api, order_id: &str) -> Value {
    api.get(&format!("/api/v1/orders/{order_id}")).await.body
}

async fn wait_order(api: &Api, order_id: &str, status: &str) -> Value {
    eventually(
        &format!("order {order_id} {status}"),
        Duration::from_secs(30),
        || async {
            let body = order(api, order_id).await;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

/// Places and pays an order of one `sku`; answers (order, shipment) once it has its shipment.
async fn paid_order(customer: &Api, sku: &str) -> (String, String) {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": sku, "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let paid = customer
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let shipment_id = eventually("the shipment", Duration::from_secs(30), || async {
        order(customer, &order_id).await["shipments"][0]["shipment_id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    (order_id, shipment_id)
}

/// A delivered order of one `sku`, shipped over HTTP with the sandbox carrier.
async fn delivered_order(admin: &Api, customer: &Api, sku: &str, tracking_no: &str) -> String {
    let (order_id, shipment_id) = paid_order(customer, sku).await;
    for (step, body) in [
        ("pick", json!({})),
        (
            "ship",
            json!({"carrier": "sandbox", "tracking_no": tracking_no}),
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
    wait_order(customer, &order_id, "delivered").await;
    order_id
}

/// Moves a service order through `action` (as `api`) and checks the status it reached.
async fn service_step(api: &Api, order_id: &str, action: &str, status: &str) {
    let answer = api
        .post(
            &format!("/api/v1/service-orders/{order_id}/{action}"),
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{action}: {:?}", answer.body);
    assert_eq!(answer.body["status"], status, "{action}");
}

async fn service_status(api: &Api, order_id: &str, status: &str) {
    eventually(
        &format!("service order {order_id} {status}"),
        Duration::from_secs(30),
        || async {
            let answer = api.get(&format!("/api/v1/service-orders/{order_id}")).await;
            (answer.status == 200 && answer.body["status"] == status).then_some(())
        },
    )
    .await
}

/// A verified plumber's completed service order of `customer`, reviewed with a sensitive
/// word (held for an admin); answers (the order, the provider's user id).
async fn held_provider_review(ordo: &TestOrdo, admin: &Api, customer: &Api) -> (String, String) {
    let provider = ordo.provider("plumber@example.com").await;
    let profile = provider
        .send(
            Method::PUT,
            "/api/v1/providers/me/profile",
            Some(json!({"full_name": "Pat Fixer", "phone": "+49 30 1234567",
                        "skills": ["plumbing"], "service_areas": ["NORTH"], "bio": "Pipes and taps."})),
            &[],
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let certified = provider
        .post(
            "/api/v1/providers/me/certifications",
            json!({"name": "Master plumber", "file_url": "https://files.example.com/cert.pdf"}),
        )
        .await;
    assert_eq!(certified.status, 201, "{:?}", certified.body);
    let verified = admin
        .post(
            &format!("/api/v1/admin/providers/{}/verify", provider.user_id),
            json!({}),
        )
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    let published = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": "Fix the kitchen sink", "description": "It drips all night.",
                   "service_type": "plumbing", "price": 8000, "currency": "EUR",
                   "location": "NORTH", "address": "1 Main Street"}),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let order_id = published.body["order_id"].as_str().unwrap().to_owned();
    let approved = admin
        .post(
            &format!("/api/v1/admin/service-orders/{order_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    service_step(&provider, &order_id, "accept", "accepted").await;
    let paid = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    service_status(customer, &order_id, "paid").await;
    service_step(&provider, &order_id, "start", "in_progress").await;
    service_step(&provider, &order_id, "complete", "done").await;
    service_step(customer, &order_id, "confirm", "completed").await;
    let reviewed = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/review"),
            json!({"rating": 1, "comment": "A total scam.",
                   "dimensions": {"professionalism": 1, "attitude": 1, "punctuality": 1}}),
        )
        .await;
    assert_eq!(reviewed.status, 200, "{:?}", reviewed.body);
    assert_eq!(reviewed.body["review"]["status"], "pending_moderation");
    (order_id, provider.user_id.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_ships_an_order_and_approves_and_receives_an_after_sales_return() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "PARCEL").await;
    let customer = ordo.customer("dora@example.com").await;
    let (order_id, shipment_id) = paid_order(&customer, "PARCEL").await;

    // The order page picks and ships the shipment; the tracking is shown.
    let browser = Browser::admin_console(ordo.base_url()).await;
    browser.view(&format!("#/orders/{order_id}")).await;
    browser
        .find(&format!(
            "[data-shipment-status='{shipment_id}'][data-status='created']"
        ))
        .await;
    browser.check_accessibility("operations-order").await;
    browser.click(&format!("[data-pick='{shipment_id}']")).await;
    browser
        .find(&format!(
            "[data-shipment-status='{shipment_id}'][data-status='picked']"
        ))
        .await;
    browser
        .fill(&format!("#tracking-{shipment_id}"), "SBX-WEB-1")
        .await;
    browser.click(&format!("[data-ship='{shipment_id}']")).await;
    browser
        .wait_text(&format!("#shipment-tracking-{shipment_id}"), "SBX-WEB-1")
        .await;
    browser
        .wait_text(&format!("#shipment-tracking-{shipment_id}"), "sandbox")
        .await;
    let delivered = wait_order(&customer, &order_id, "delivered").await;
    assert_eq!(delivered["shipments"][0]["tracking_no"], "SBX-WEB-1");
    browser
        .check_accessibility("operations-order-shipped")
        .await;

    // The order page links to the order's checkout saga: its status and every step it took.
    let saga = eventually("the saga paid", Duration::from_secs(30), || async {
        let saga = admin
            .get(&format!("/api/v1/admin/sagas/{order_id}"))
            .await
            .body;
        (saga["status"] == "paid").then_some(saga)
    })
    .await;
    let steps: Vec<String> = saga["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect();
    assert!(!steps.is_empty(), "{saga}");
    browser
        .click(&format!("main a[href='#/sagas/{order_id}']"))
        .await;
    browser.find("#saga-status[data-status='paid']").await;
    browser.wait_text("#saga-status", "已支付").await;
    let saga_id = browser
        .script("return document.querySelector('#saga-id').value;", vec![])
        .await;
    assert_eq!(saga_id, json!(order_id));
    let shown = browser
        .script(
            "return [...document.querySelectorAll('#saga-steps tbody tr')]
                .map((row) => row.cells[0].textContent);",
            vec![],
        )
        .await;
    assert_eq!(shown, json!(steps), "{saga}");
    browser.check_accessibility("operations-saga").await;

    // The customer asks to return the parcel; the admin approves it from the list.
    let asked = customer
        .post(
            "/api/v1/aftersales",
            json!({
                "order_id": order_id, "kind": "return_refund",
                "lines": [{"sku": "PARCEL", "quantity": 1}],
                "reason": "The box was crushed.",
            }),
        )
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let aftersale_id = asked.body["aftersale_id"].as_str().unwrap().to_string();
    eventually("the request listed", Duration::from_secs(20), || async {
        let listed = admin.get("/api/v1/aftersales").await.body;
        listed["aftersales"]
            .as_array()?
            .iter()
            .any(|a| a["aftersale_id"] == aftersale_id.as_str())
            .then_some(())
    })
    .await;
    browser.view("#/aftersales").await;
    browser
        .wait_text("#aftersales", "The box was crushed.")
        .await;
    browser.check_accessibility("operations-aftersales").await;
    browser
        .click(&format!("[data-aftersale='{aftersale_id}']"))
        .await;
    browser
        .find("#aftersale-status[data-status='requested']")
        .await;
    browser.check_accessibility("operations-aftersale").await;
    browser.click("#aftersale-approve").await;
    browser
        .find("#aftersale-status[data-status='awaiting_return']")
        .await;

    // The goods go back; the admin receives them and the refund follows.
    let sent = customer
        .post(
            &format!("/api/v1/aftersales/{aftersale_id}/return-shipment"),
            json!({"carrier": "sf-express", "tracking_no": "SF-RET-1"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    eventually(
        "the parcel in the read model",
        Duration::from_secs(20),
        || async {
            let body = customer
                .get(&format!("/api/v1/aftersales/{aftersale_id}"))
                .await
                .body;
            body["return_shipment"]["tracking_no"].as_str().map(|_| ())
        },
    )
    .await;
    browser.view("#/aftersales").await;
    browser
        .click(&format!("[data-aftersale='{aftersale_id}']"))
        .await;
    browser.wait_text("#aftersale-parcel", "SF-RET-1").await;
    browser.click("#aftersale-receive").await;
    browser.find("#aftersale-decided").await;
    browser
        .find(
            "#aftersale-status[data-status='received'], #aftersale-status[data-status='refunded'], \
             #aftersale-status[data-status='closed']",
        )
        .await;
    eventually("the request closed", Duration::from_secs(30), || async {
        let body = customer
            .get(&format!("/api/v1/aftersales/{aftersale_id}"))
            .await
            .body;
        (body["status"] == "closed").then_some(())
    })
    .await;
    browser
        .check_accessibility("operations-aftersale-received")
        .await;
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_moderates_held_reviews_and_approves_a_booking_refund_request() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "MUG").await;
    let customer = ordo.customer("rita@example.com").await;

    // Two reviews with a sensitive word are held for an admin.
    let mut held = Vec::new();
    for (tracking_no, comment) in [
        ("SBX-R1", "Looks like a scam but it works"),
        ("SBX-R2", "Total rubbish, do not buy"),
    ] {
        let order_id = delivered_order(&admin, &customer, "MUG", tracking_no).await;
        let reviewed = customer
            .post(
                "/api/v1/reviews",
                json!({"order_id": order_id, "sku": "MUG", "rating": 2, "comment": comment}),
            )
            .await;
        assert_eq!(reviewed.status, 201, "{:?}", reviewed.body);
        assert_eq!(reviewed.body["status"], "pending_moderation");
        held.push(reviewed.body["review_id"].as_str().unwrap().to_string());
    }
    eventually("both reviews queued", Duration::from_secs(20), || async {
        let queue = admin.get("/api/v1/admin/reviews").await.body;
        (queue["reviews"].as_array()?.len() == 2).then_some(())
    })
    .await;

    // A fan asks for a refund of a paid booking.
    let created = admin
        .post(
            "/api/v1/shows",
            json!({
                "title": "Second thoughts", "category": "演唱会", "city": "上海", "venue": "上海体育场",
                "description": "", "sessions": [{"starts_at": "2027-08-15T11:30:00Z", "seat_areas": [
                    {"area_id": "vip-a", "name": "VIP A区", "price": 1280, "currency": "CNY", "capacity": 10}
                ]}]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let session_id = created.body["session_ids"][0].as_str().unwrap().to_string();
    let fan = ordo.customer("fan@example.com").await;
    let booked = eventually("the booking", Duration::from_secs(20), || async {
        let answer = fan
            .send(
                Method::POST,
                "/api/v1/bookings",
                Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": 2})),
                &[("prefer", "wait=10")],
            )
            .await;
        (answer.status == 202).then_some(answer.body)
    })
    .await;
    let booking_id = booked["booking_id"].as_str().unwrap().to_string();
    let paid = fan
        .send(
            Method::POST,
            &format!("/api/v1/bookings/{booking_id}/pay"),
            Some(json!({"payment_method": "alipay", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let asked = eventually("the refund request", Duration::from_secs(20), || async {
        let answer = fan
            .post(
                &format!("/api/v1/bookings/{booking_id}/refund-request"),
                json!({"reason": "cannot come"}),
            )
            .await;
        (answer.status == 200).then_some(answer.body)
    })
    .await;
    assert_eq!(asked["refund_request"]["status"], "requested");

    // A provider's review with a sensitive word waits too.
    let (service_order, provider_id) = held_provider_review(&ordo, &admin, &customer).await;
    eventually(
        "the provider's review queued",
        Duration::from_secs(20),
        || async {
            let queue = admin.get("/api/v1/admin/service-reviews").await.body;
            (queue["reviews"].as_array()?.len() == 1).then_some(())
        },
    )
    .await;

    // The queue: one review published, the other rejected with a reason.
    let browser = Browser::admin_console(ordo.base_url()).await;
    browser.view("#/reviews").await;
    browser.wait_text("#reviews", "Looks like a scam").await;
    browser.wait_text("#reviews", "Total rubbish").await;
    browser
        .wait_text("#service-reviews", &service_order[..8])
        .await;
    browser.check_accessibility("operations-reviews").await;
    browser
        .click(&format!("[data-publish='{}']", held[0]))
        .await;
    browser.find("#review-decided").await;
    eventually(
        "the published review gone from the queue",
        Duration::from_secs(20),
        || async { (!browser.has(&format!("[data-publish='{}']", held[0])).await).then_some(()) },
    )
    .await;
    browser
        .fill(&format!("#review-reason-{}", held[1]), "abusive language")
        .await;
    browser.click(&format!("[data-reject='{}']", held[1])).await;
    eventually("the queue emptied", Duration::from_secs(20), || async {
        (!browser.has(&format!("[data-reject='{}']", held[1])).await).then_some(())
    })
    .await;
    let rating = admin.get("/api/v1/products/MUG/rating").await.body;
    let published = eventually(
        "the rating counts one review",
        Duration::from_secs(20),
        || async {
            let body = admin.get("/api/v1/products/MUG/rating").await.body;
            (body["total_reviews"] == 1).then_some(body)
        },
    )
    .await;
    assert_eq!(published["average_rating"], 2.0, "{rating} {published}");
    let rejected = admin
        .get("/api/v1/admin/reviews?status=rejected")
        .await
        .body;
    assert_eq!(rejected["reviews"][0]["review_id"], held[1].as_str());

    // The provider's held review is published: it counts in the provider's rating.
    browser
        .click(&format!("[data-publish-service='{service_order}']"))
        .await;
    eventually(
        "the provider's review decided",
        Duration::from_secs(20),
        || async {
            (!browser
                .has(&format!("[data-publish-service='{service_order}']"))
                .await)
                .then_some(())
        },
    )
    .await;
    eventually(
        "the provider's rating counts it",
        Duration::from_secs(20),
        || async {
            let profile = ordo
                .api()
                .get(&format!("/api/v1/providers/{provider_id}"))
                .await
                .body;
            (profile["rating"]["total_reviews"] == 1).then_some(())
        },
    )
    .await;
    browser
        .check_accessibility("operations-reviews-decided")
        .await;

    // The refund request is approved: the booking is refunded.
    eventually(
        "the refund request queued",
        Duration::from_secs(20),
        || async {
            let queue = admin
                .get("/api/v1/admin/bookings/refund-requests")
                .await
                .body;
            queue["refund_requests"]
                .as_array()?
                .iter()
                .any(|r| r["booking_id"] == booking_id.as_str())
                .then_some(())
        },
    )
    .await;
    browser.view("#/booking-refunds").await;
    browser.wait_text("#refund-requests", "cannot come").await;
    browser
        .check_accessibility("operations-booking-refunds")
        .await;
    browser
        .click(&format!("[data-approve-refund='{booking_id}']"))
        .await;
    browser.find("#refund-decided").await;
    browser.find("#no-refund-requests").await;
    let booking = fan.get(&format!("/api/v1/bookings/{booking_id}")).await;
    assert_eq!(booking.body["status"], "refunded", "{:?}", booking.body);
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rebuilds_a_projection_reads_the_streams_and_sees_the_metrics_charts() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    product(&admin, "LAMP").await;
    let customer = ordo.customer("otto@example.com").await;
    paid_order(&customer, "LAMP").await;

    let browser = Browser::admin_console(ordo.base_url()).await;
    browser.view("#/projections").await;
    browser
        .find("[data-projection-state='projection-orders'][data-state='live']")
        .await;
    browser.check_accessibility("operations-projections").await;
    // The rebuild button starts it; the console follows it until it is live again.
    let before = admin.get("/api/v1/admin/projections").await.body;
    let finished_before = before["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "projection-orders")
        .map(|p| p["rebuild_finished_at"].clone())
        .unwrap();
    browser.click("[data-rebuild='projection-orders']").await;
    browser.find("#rebuild-started").await;
    eventually("the rebuild finished", Duration::from_secs(30), || async {
        let listed = admin.get("/api/v1/admin/projections").await.body;
        let orders = listed["projections"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "projection-orders")?
            .clone();
        (orders["state"] == "live"
            && !orders["rebuild_finished_at"].is_null()
            && orders["rebuild_finished_at"] != finished_before)
            .then_some(orders)
    })
    .await;
    eventually("the rebuild shown", Duration::from_secs(30), || async {
        let text = browser
            .wait_text("[data-rebuilt='projection-orders']", "")
            .await;
        (text.trim() != "-" && !text.contains('…')).then_some(())
    })
    .await;
    browser
        .find("[data-projection-state='projection-orders'][data-state='live']")
        .await;
    // The order is still there, read from the rebuilt tables.
    let listed = customer.get("/api/v1/orders").await;
    assert_eq!(listed.body["orders"].as_array().map(Vec::len), Some(1));
    // An unknown projection is not found.
    let unknown = admin
        .post(
            "/api/v1/admin/projections/projection-nothing/rebuild",
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);

    // The streams view lists the deployment's streams with their messages.
    browser.view("#/streams").await;
    let orders_stream = format!("{}_ORDER", ordo.namespace().to_ascii_uppercase());
    let shown = browser
        .wait_text(&format!("[data-stream-messages='{orders_stream}']"), "")
        .await;
    assert!(
        shown.trim().parse::<u64>().unwrap_or(0) > 0,
        "{orders_stream}: {shown}"
    );
    browser.check_accessibility("operations-streams").await;

    // The metrics view samples /metrics and draws a chart of each series.
    browser.view("#/metrics").await;
    for chart in ["#svg-orders", "#svg-lag", "#svg-dead-letters"] {
        browser.find(chart).await;
    }
    eventually(
        "the charts drawn from two samples",
        Duration::from_secs(30),
        || async {
            let mut all = true;
            for chart in ["#svg-orders", "#svg-lag", "#svg-dead-letters"] {
                all &= browser.has(&format!("{chart} polyline")).await;
            }
            all.then_some(())
        },
    )
    .await;
    assert!(!browser.has("#metrics-out .problem").await);
    let charts = browser
        .script(
            "return document.querySelectorAll('#metrics-charts svg').length;",
            vec![],
        )
        .await;
    assert_eq!(charts, json!(3));
    browser.check_accessibility("operations-metrics").await;
    browser.close().await;
    ordo.stop().await;
}
