//! End to end: the processes of ticketing killed between their steps. Adding a session is
//! one command on the Show, and the seat stock policy opens each seat area's inventory
//! from its event; booking is decided by one step on the seat area, the reservation, which
//! carries the booking, and the booking saga records the booking from the reservation's
//! event when the gateway died before it did; paying is one command,
//! the payment, which the saga attaches and charges. `ordo serve` aborts itself at a crash
//! point (`ORDO_CRASH_AFTER_STEP`), is restarted, and every seat ends sellable, every
//! booking held, paid or released, and nothing happened twice.

use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const CRASH_AFTER_STEP: &str = "ORDO_CRASH_AFTER_STEP";

/// Starts Ordo with short delays, deadline scans and ack waits, so that crashed steps are
/// picked up again quickly.
async fn start() -> TestOrdo {
    TestOrdo::with_env(&[
        ("ORDO_SANDBOX_DELAY", "20ms"),
        ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
        ("ORDO_CONSUMER_ACK_WAIT", "2s"),
    ])
    .await
}

/// Restarts the process so that it crashes at `point` (`<process>:<step>`), or never.
async fn restart_crashing_at(ordo: &mut TestOrdo, point: Option<&str>) {
    ordo.set_env(CRASH_AFTER_STEP, point.unwrap_or_default());
    if let Err(err) = ordo.restart().await {
        // It may reach its crash point while it is still starting.
        assert!(
            point.is_some() && !ordo.is_running(),
            "ordo restarts: {err}"
        );
    }
}

/// Waits until the process died at its crash point.
async fn wait_for_crash(ordo: &mut TestOrdo, point: &str) {
    eventually(
        &format!("the process crashed at {point}"),
        Duration::from_secs(30),
        || {
            let alive = ordo.is_running();
            async move { (!alive).then_some(()) }
        },
    )
    .await;
}

/// The inventory item of a seat area whose id is uppercase and short (kept readable).
fn seat_item(session_id: Uuid, area_id: &str) -> String {
    format!(
        "S{}-{area_id}",
        session_id.simple().to_string().to_ascii_uppercase()
    )
}

/// The booking whose seats of `item` were reserved last.
async fn last_reservation(pool: &PgPool, item: &str) -> String {
    sqlx::query_as::<_, (String,)>(
        "SELECT payload::jsonb -> 'StockReserved' ->> 'reservation_id' FROM events
         WHERE aggregate_type = 'inventory' AND aggregate_id = $1
           AND event_type = 'StockReserved'
         ORDER BY sequence DESC LIMIT 1",
    )
    .bind(item)
    .fetch_one(pool)
    .await
    .unwrap()
    .0
}

async fn wait_events(pool: &PgPool, aggregate_type: &str, id: &str, expected: &[&str]) {
    eventually(
        &format!("{aggregate_type} {id}: {expected:?}"),
        Duration::from_secs(30),
        || async {
            (ordo_tests::event_types(pool, aggregate_type, id).await == expected).then_some(())
        },
    )
    .await;
}

/// The seats available in each area of the show's first session, by area id.
async fn available(api: &Api, show_id: &str) -> Vec<(String, i64)> {
    let sessions = api.get(&format!("/api/v1/shows/{show_id}/sessions")).await;
    sessions.body["sessions"][0]["seat_areas"]
        .as_array()
        .map(|areas| {
            areas
                .iter()
                .map(|a| {
                    (
                        a["area_id"].as_str().unwrap_or_default().to_string(),
                        a["available"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_available(api: &Api, show_id: &str, expected: &[(&str, i64)]) {
    let expected: Vec<(String, i64)> = expected.iter().map(|(a, n)| (a.to_string(), *n)).collect();
    eventually(
        &format!("seats available: {expected:?}"),
        Duration::from_secs(30),
        || async { (available(api, show_id).await == expected).then_some(()) },
    )
    .await;
}

async fn booking(api: &Api, booking_id: &str, status: &str) -> Value {
    eventually(
        &format!("booking {booking_id} {status}"),
        Duration::from_secs(30),
        || async {
            let body = api
                .get(&format!("/api/v1/bookings/{booking_id}"))
                .await
                .body;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

fn session_body(session_id: Uuid, areas: &[(&str, i64)]) -> Value {
    json!({
        "session_id": session_id,
        "starts_at": "2027-09-01T12:00:00Z",
        // No currency: ORDO_DEFAULT_CURRENCY (CNY) applies.
        "seat_areas": areas.iter().map(|(id, capacity)| json!({
            "area_id": id, "name": id, "price": 880, "capacity": capacity
        })).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_added_through_a_crash_opens_each_area_once() {
    let mut ordo = start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/shows",
            json!({"title": "Crash opera", "category": "opera", "city": "Beijing", "venue": "NCPA"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let show_id = created.body["show_id"].as_str().unwrap().to_string();
    let session_id = Uuid::new_v4();
    let body = session_body(session_id, &[("VIP", 3), ("STALLS", 5)]);
    let (vip, stalls) = (
        seat_item(session_id, "VIP"),
        seat_item(session_id, "STALLS"),
    );

    // The policy dies after opening the first area, before the second.
    restart_crashing_at(&mut ordo, Some("seat_stock:seats_opened")).await;
    let answer = admin
        .try_send(
            Method::POST,
            &format!("/api/v1/shows/{show_id}/sessions"),
            Some(body.clone()),
            &[],
        )
        .await;
    assert!(answer.is_none(), "answered despite the crash: {answer:?}");
    wait_for_crash(&mut ordo, "seat_stock:seats_opened").await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "inventory", &vip).await,
        ["Restocked"]
    );
    assert!(ordo_tests::event_types(ordo.pool(), "inventory", &stalls)
        .await
        .is_empty());

    // Started again, the policy takes the event up again and opens what is missing.
    restart_crashing_at(&mut ordo, None).await;
    wait_events(ordo.pool(), "inventory", &stalls, &["Restocked"]).await;
    wait_available(&admin, &show_id, &[("VIP", 3), ("STALLS", 5)]).await;

    // Repeating the request changes nothing and answers 201: the seats are open.
    let repeated = admin
        .post(&format!("/api/v1/shows/{show_id}/sessions"), body)
        .await;
    assert_eq!(repeated.status, 201, "{:?}", repeated.body);
    assert_eq!(repeated.body["session_ids"][0], session_id.to_string());
    assert_eq!(
        repeated.header("location").as_deref(),
        Some(format!("/api/v1/shows/{show_id}/sessions").as_str())
    );
    for item in [&vip, &stalls] {
        assert_eq!(
            ordo_tests::event_types(ordo.pool(), "inventory", item).await,
            ["Restocked"],
            "{item} opened once"
        );
    }

    // The seats are sellable, in the default currency, and never more than the area has.
    let (fan, _) = api.register("opener@example.com").await;
    let booked = fan
        .post(
            "/api/v1/bookings",
            json!({"session_id": session_id, "seat_area_id": "STALLS", "quantity": 5}),
        )
        .await;
    assert_eq!(booked.status, 202, "{:?}", booked.body);
    assert_eq!(booked.body["status"], "pending_payment");
    assert_eq!(booked.body["currency"], "CNY");
    assert_eq!(booked.body["total_amount"], 5 * 880);
    let sold_out = fan
        .post(
            "/api/v1/bookings",
            json!({"session_id": session_id, "seat_area_id": "STALLS", "quantity": 1}),
        )
        .await;
    assert_eq!(sold_out.status, 409, "{:?}", sold_out.body);
    assert_eq!(sold_out.body["type"], "urn:ordo:problem:sold_out");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_through_crashes_is_held_then_paid_once() {
    let mut ordo = start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    let session_id = Uuid::new_v4();
    let created = admin
        .post(
            "/api/v1/shows",
            json!({"title": "Crash concert", "category": "concert", "city": "Shanghai",
                   "venue": "Stadium", "sessions": [session_body(session_id, &[("VIP", 2)])]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let show_id = created.body["show_id"].as_str().unwrap().to_string();
    let item = seat_item(session_id, "VIP");
    let (fan, _) = api.register("survivor@example.com").await;
    wait_available(&fan, &show_id, &[("VIP", 2)]).await;

    // The gateway dies right after reserving the seats (the reservation carries the
    // booking), before recording the booking.
    restart_crashing_at(&mut ordo, Some("booking:seats_reserved")).await;
    let answer = fan
        .try_send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "VIP", "quantity": 2})),
            &[],
        )
        .await;
    assert!(answer.is_none(), "answered despite the crash: {answer:?}");
    wait_for_crash(&mut ordo, "booking:seats_reserved").await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "inventory", &item).await,
        ["Restocked", "StockReserved"]
    );
    let booking_id = last_reservation(ordo.pool(), &item).await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "booking", &booking_id).await,
        Vec::<String>::new()
    );

    // The saga records the booking, its seats held, from the reservation's event.
    restart_crashing_at(&mut ordo, None).await;
    let held = booking(&fan, &booking_id, "pending_payment").await;
    assert_eq!(held["total_amount"], 2 * 880);
    assert_eq!(held["currency"], "CNY");
    assert!(held["expires_at"].is_string(), "{held:?}");
    wait_events(
        ordo.pool(),
        "booking",
        &booking_id,
        &["BookingRequested", "SeatsHeld"],
    )
    .await;
    wait_events(
        ordo.pool(),
        "inventory",
        &item,
        &["Restocked", "StockReserved"],
    )
    .await;
    // Every seat is taken: the next fan is told so at once.
    let (late, _) = api.register("late@example.com").await;
    let refused = late
        .post(
            "/api/v1/bookings",
            json!({"session_id": session_id, "seat_area_id": "VIP", "quantity": 1}),
        )
        .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["type"], "urn:ordo:problem:sold_out");

    // Paying: the saga dies after attaching the payment, before charging it.
    restart_crashing_at(&mut ordo, Some("booking:attach_payment")).await;
    let paying = fan
        .try_send(
            Method::POST,
            &format!("/api/v1/bookings/{booking_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[],
        )
        .await;
    if let Some(paying) = paying {
        assert_eq!(paying.status, 202, "{:?}", paying.body);
    }
    wait_for_crash(&mut ordo, "booking:attach_payment").await;
    restart_crashing_at(&mut ordo, None).await;
    let paid = booking(&fan, &booking_id, "paid").await;
    assert_eq!(paid["tickets"].as_array().map(Vec::len), Some(2));
    wait_events(
        ordo.pool(),
        "booking",
        &booking_id,
        &[
            "BookingRequested",
            "SeatsHeld",
            "PaymentAttached",
            "BookingPaid",
        ],
    )
    .await;
    wait_events(
        ordo.pool(),
        "inventory",
        &item,
        &["Restocked", "StockReserved", "StockCommitted"],
    )
    .await;
    let payments = ordo_tests::payments_of(ordo.pool(), &booking_id).await;
    assert_eq!(payments.len(), 1, "one payment: {payments:?}");
    wait_events(
        ordo.pool(),
        "payment",
        &payments[0],
        &["PaymentCreated", "PaymentCaptured"],
    )
    .await;
    ordo.stop().await;
}
