//! End to end: fulfilment through HTTP against real Postgres and NATS — a paid order is
//! picked, shipped with the sandbox carrier, tracked to delivery and completed (by its
//! customer, or by itself after the auto-confirm period); carrier updates need a valid
//! signature, repeat as no-ops and never move a shipment backwards; a crash at each step of
//! the process loses nothing and does nothing twice.

use std::time::Duration;

use ordo_tests::{assert_problem, event_types, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

/// The secret the test processes verify carrier updates with (ORDO_PAYMENT_SECRET, which
/// ORDO_CARRIER_SECRET defaults to).
const CARRIER_SECRET: &[u8] = b"test-payment-secret-0123456789";

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_SANDBOX_CARRIER_DELAY", "200ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

async fn shop(ordo: &TestOrdo) -> (Api, Api) {
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "PARCEL", "name": "Parcel", "category": "test", "price": 900, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/PARCEL/restock", json!({"quantity": 50}))
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = ordo.api().register("dora@example.com").await;
    (admin, customer)
}

/// Places an order of two parcels and waits until it awaits payment.
async fn place(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "PARCEL", "quantity": 2}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(
        placed.body["status"], "awaiting_payment",
        "{:?}",
        placed.body
    );
    placed.body["order_id"].as_str().unwrap().to_string()
}

async fn pay(customer: &Api, order_id: &str) {
    let paid = customer
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
}

async fn order(customer: &Api, order_id: &str) -> Value {
    customer
        .get(&format!("/api/v1/orders/{order_id}"))
        .await
        .body
}

async fn wait_order(customer: &Api, order_id: &str, status: &str) -> Value {
    eventually(
        &format!("order {order_id} {status}"),
        Duration::from_secs(30),
        || async {
            let body = order(customer, order_id).await;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

/// Waits until the paid order shows its shipment; answers the shipment's id.
async fn wait_shipment(customer: &Api, order_id: &str) -> String {
    eventually(
        &format!("order {order_id} has its shipment"),
        Duration::from_secs(30),
        || async {
            let body = order(customer, order_id).await;
            body["shipments"][0]["shipment_id"]
                .as_str()
                .map(str::to_owned)
        },
    )
    .await
}

async fn pick_and_ship(admin: &Api, shipment_id: &str, carrier: &str, tracking_no: &str) {
    let picked = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/pick"),
            json!({}),
        )
        .await;
    assert_eq!(picked.status, 200, "{:?}", picked.body);
    ship(admin, shipment_id, carrier, tracking_no).await;
}

async fn ship(admin: &Api, shipment_id: &str, carrier: &str, tracking_no: &str) {
    let shipped = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/ship"),
            json!({"carrier": carrier, "tracking_no": tracking_no}),
        )
        .await;
    assert_eq!(shipped.status, 200, "{:?}", shipped.body);
    assert_eq!(shipped.body["status"], "shipped");
}

/// Posts a tracking update of `shipment_id` signed with `secret` at `signed_at` (Unix s).
async fn post_tracking(
    ordo: &TestOrdo,
    shipment_id: &str,
    body: Value,
    secret: Option<(&[u8], i64)>,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/shipments/{shipment_id}/tracking",
            ordo.base_url()
        ))
        .header("content-type", "application/json")
        .body(bytes.clone());
    if let Some((secret, at)) = secret {
        request = request.header(
            ordo_payments::signature::SIGNATURE_HEADER,
            ordo_payments::signature::sign(secret, at, &bytes),
        );
    }
    let response = request.send().await.expect("ordo answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn count(events: &[String], event_type: &str) -> usize {
    events.iter().filter(|e| e.as_str() == event_type).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_is_picked_shipped_tracked_delivered_and_confirmed() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let other = ordo.customer("eve@example.com").await;
    let order_id = place(&customer).await;
    pay(&customer, &order_id).await;
    wait_order(&customer, &order_id, "paid").await;
    let shipment_id = wait_shipment(&customer, &order_id).await;
    let shipment = customer
        .get(&format!("/api/v1/shipments/{shipment_id}"))
        .await;
    assert_eq!(shipment.status, 200, "{:?}", shipment.body);
    assert_eq!(shipment.body["status"], "created");
    assert_eq!(shipment.body["order_id"], order_id.as_str());
    // Someone else's shipment does not exist for them.
    assert_eq!(
        other
            .api
            .get(&format!("/api/v1/shipments/{shipment_id}"))
            .await
            .status,
        404
    );

    // Nothing to confirm before it ships; no shipping before picking.
    let early = customer
        .post(
            &format!("/api/v1/orders/{order_id}/confirm-receipt"),
            json!({}),
        )
        .await;
    assert_problem(&early, 409, "invalid_transition");
    let unpicked = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/ship"),
            json!({"carrier": "sandbox", "tracking_no": "SBX-1"}),
        )
        .await;
    assert_problem(&unpicked, 409, "invalid_transition");
    let bad = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/ship"),
            json!({"carrier": "Sandbox Express", "tracking_no": "SBX-1"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);

    let picked = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/pick"),
            json!({}),
        )
        .await;
    assert_eq!(picked.status, 200, "{:?}", picked.body);
    assert_eq!(picked.body["status"], "picked");
    assert_eq!(picked.body["changed"], true);
    let again = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/pick"),
            json!({}),
        )
        .await;
    assert_eq!(again.body["changed"], false, "a repeated pick is a no-op");
    ship(&admin, &shipment_id, "sandbox", "SBX-1").await;
    let other_number = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/ship"),
            json!({"carrier": "sandbox", "tracking_no": "SBX-2"}),
        )
        .await;
    assert_problem(&other_number, 409, "already_shipped");

    // The sandbox carrier reports it in transit, then delivered.
    let delivered = wait_order(&customer, &order_id, "delivered").await;
    let parcel = &delivered["shipments"][0];
    assert_eq!(parcel["status"], "delivered", "{parcel}");
    assert_eq!(parcel["carrier"], "sandbox");
    assert_eq!(parcel["tracking_no"], "SBX-1");
    let tracking: Vec<&str> = parcel["tracking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(tracking, ["in_transit", "delivered"]);

    // Shipped and delivered reach the customer's inbox.
    eventually(
        "shipped and delivered notices",
        Duration::from_secs(20),
        || async {
            let body = customer.get("/api/v1/notifications").await.body;
            let kinds: Vec<String> = body["notifications"]
                .as_array()?
                .iter()
                .filter_map(|n| n["kind"].as_str().map(str::to_owned))
                .collect();
            (kinds.iter().any(|k| k == "order_shipped")
                && kinds.iter().any(|k| k == "order_delivered"))
            .then_some(())
        },
    )
    .await;

    // Only its customer confirms receipt; a repeat is a no-op.
    let foreign = other
        .api
        .post(
            &format!("/api/v1/orders/{order_id}/confirm-receipt"),
            json!({}),
        )
        .await;
    assert_eq!(foreign.status, 404);
    for _ in 0..2 {
        let confirmed = customer
            .post(
                &format!("/api/v1/orders/{order_id}/confirm-receipt"),
                json!({}),
            )
            .await;
        assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
        assert_eq!(confirmed.body["status"], "completed");
    }
    wait_order(&customer, &order_id, "completed").await;
    let saga = eventually(
        "the fulfilment is completed",
        Duration::from_secs(20),
        || async {
            let saga = admin
                .get(&format!("/api/v1/admin/sagas/{shipment_id}"))
                .await
                .body;
            (saga["status"] == "completed").then_some(saga)
        },
    )
    .await;
    assert_eq!(saga["saga_type"], "fulfilment");
    let events = event_types(ordo.pool(), "order", &order_id).await;
    assert_eq!(count(&events, "OrderShipped"), 1, "{events:?}");
    assert_eq!(count(&events, "OrderDelivered"), 1, "{events:?}");
    assert_eq!(count(&events, "OrderCompleted"), 1, "{events:?}");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_order_completes_by_itself_after_the_auto_confirm_period() {
    let mut env = FAST.to_vec();
    env.push(("ORDO_AUTO_CONFIRM_AFTER", "2s"));
    let ordo = TestOrdo::with_env(&env).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = place(&customer).await;
    pay(&customer, &order_id).await;
    let shipment_id = wait_shipment(&customer, &order_id).await;
    pick_and_ship(&admin, &shipment_id, "sandbox", "SBX-AUTO").await;
    wait_order(&customer, &order_id, "delivered").await;
    wait_order(&customer, &order_id, "completed").await;
    let events = event_types(ordo.pool(), "order", &order_id).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("OrderCompleted"),
        "{events:?}"
    );
    let completed_by: String = sqlx::query_scalar(
        "SELECT payload::jsonb -> 'OrderCompleted' ->> 'by' FROM events
         WHERE aggregate_type = 'order' AND aggregate_id = $1 AND event_type = 'OrderCompleted'",
    )
    .bind(&order_id)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    assert_eq!(completed_by, "auto_confirm");
    // Confirming afterwards changes nothing.
    let late = customer
        .post(
            &format!("/api/v1/orders/{order_id}/confirm-receipt"),
            json!({}),
        )
        .await;
    assert_eq!(late.status, 200, "{:?}", late.body);
    assert_eq!(
        count(
            &event_types(ordo.pool(), "order", &order_id).await,
            "OrderCompleted"
        ),
        1
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_updates_need_a_valid_signature_repeat_as_no_ops_and_never_go_backwards() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = place(&customer).await;
    pay(&customer, &order_id).await;
    let shipment_id = wait_shipment(&customer, &order_id).await;
    // A carrier without an integration: its updates come only from its webhook.
    pick_and_ship(&admin, &shipment_id, "post-nl", "3SABC123").await;
    wait_order(&customer, &order_id, "shipped").await;

    let now = ordo_payments::signature::now();
    let update = |status: &str, at: &str| json!({"shipment_id": shipment_id, "tracking_no": "3SABC123", "status": status, "at": at});
    let delivered = update("delivered", "2026-05-02T12:00:00Z");
    for (what, secret) in [
        ("unsigned", None),
        (
            "signed with another secret",
            Some((&b"not-the-carrier-secret"[..], now)),
        ),
        ("signed ten minutes ago", Some((CARRIER_SECRET, now - 600))),
    ] {
        let (status, body) = post_tracking(&ordo, &shipment_id, delivered.clone(), secret).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(
            body["type"], "urn:ordo:problem:unauthorized",
            "{what}: {body}"
        );
    }
    let events = event_types(ordo.pool(), "shipment", &shipment_id).await;
    assert_eq!(count(&events, "TrackingUpdated"), 0, "{events:?}");

    let (status, body) = post_tracking(
        &ordo,
        &shipment_id,
        json!({"shipment_id": shipment_id, "tracking_no": "OTHER1", "status": "delivered", "at": "2026-05-02T12:00:00Z"}),
        Some((CARRIER_SECRET, now)),
    )
    .await;
    assert_eq!(status, 422, "another tracking number: {body}");

    // Delivered arrives first; repeated, it changes nothing.
    for changed in [true, false] {
        let (status, body) = post_tracking(
            &ordo,
            &shipment_id,
            delivered.clone(),
            Some((CARRIER_SECRET, now)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["changed"], changed, "{body}");
        assert_eq!(body["status"], "delivered");
    }
    // The in-transit scan arrives late: recorded, the shipment stays delivered.
    let (status, body) = post_tracking(
        &ordo,
        &shipment_id,
        update("in_transit", "2026-05-01T08:00:00Z"),
        Some((CARRIER_SECRET, now)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["status"], "delivered", "never backwards");

    let delivered_order = wait_order(&customer, &order_id, "delivered").await;
    let parcel = eventually(
        "both updates in the read model",
        Duration::from_secs(20),
        || async {
            let parcel = order(&customer, &order_id).await["shipments"][0].clone();
            (parcel["tracking"].as_array().map(Vec::len) == Some(2)).then_some(parcel)
        },
    )
    .await;
    assert_eq!(parcel["status"], "delivered", "{delivered_order}");
    assert_eq!(parcel["tracking"][0]["status"], "delivered");
    assert_eq!(parcel["tracking"][1]["status"], "in_transit");
    let events = event_types(ordo.pool(), "order", &order_id).await;
    assert_eq!(count(&events, "OrderDelivered"), 1, "{events:?}");
    ordo.stop().await;
}

/// Waits until the process died (it aborts itself at the crash point).
async fn wait_for_crash(ordo: &mut TestOrdo) {
    eventually(
        "the process crashed at its crash point",
        Duration::from_secs(30),
        || {
            let alive = ordo.is_running();
            async move { (!alive).then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_fulfilment_step_loses_nothing_and_does_nothing_twice() {
    let mut env = FAST.to_vec();
    env.push(("ORDO_AUTO_CONFIRM_AFTER", "1s"));
    let mut ordo = TestOrdo::with_env(&env).await;
    let (admin, customer) = shop(&ordo).await;
    let mut orders = Vec::new();
    for step in [
        "create_shipment",
        "mark_order_shipped",
        "follow_tracking",
        "mark_order_delivered",
        "auto_complete",
    ] {
        let order_id = place(&customer).await;
        let crash = format!("fulfilment:{step}");
        ordo.set_env("ORDO_CRASH_AFTER_STEP", &crash);
        if step == "create_shipment" {
            ordo.restart().await.unwrap();
            pay(&customer, &order_id).await;
            wait_for_crash(&mut ordo).await;
            ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
            ordo.restart().await.unwrap();
            let shipment_id = wait_shipment(&customer, &order_id).await;
            pick_and_ship(&admin, &shipment_id, "sandbox", "SBX-CRASH").await;
        } else {
            pay(&customer, &order_id).await;
            let shipment_id = wait_shipment(&customer, &order_id).await;
            ordo.restart().await.unwrap();
            pick_and_ship(&admin, &shipment_id, "sandbox", "SBX-CRASH").await;
            wait_for_crash(&mut ordo).await;
            ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
            ordo.restart().await.unwrap();
        }
        // Restarts and redeliveries after the ack wait take their time on a busy machine.
        eventually(
            &format!("order {order_id} completed through a crash at {step}"),
            Duration::from_secs(60),
            || async { (order(&customer, &order_id).await["status"] == "completed").then_some(()) },
        )
        .await;
        orders.push(order_id);
    }
    for order_id in &orders {
        let events = event_types(ordo.pool(), "order", order_id).await;
        for once in [
            "OrderPaid",
            "OrderShipped",
            "OrderDelivered",
            "OrderCompleted",
        ] {
            assert_eq!(count(&events, once), 1, "{order_id} {once}: {events:?}");
        }
        let shipment_id = order(&customer, order_id).await["shipments"][0]["shipment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let shipment = event_types(ordo.pool(), "shipment", &shipment_id).await;
        assert_eq!(
            shipment,
            [
                "ShipmentCreated",
                "ShipmentPicked",
                "ShipmentShipped",
                "TrackingUpdated",
                "TrackingUpdated"
            ],
            "{order_id}"
        );
        assert_eq!(
            order(&customer, order_id).await["shipments"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "one shipment per order"
        );
    }
    ordo.stop().await;
}
