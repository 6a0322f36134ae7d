//! End to end: ticketing through HTTP against real Postgres and NATS — browsing, booking,
//! paying, tickets and check-in; expiry, cancellation and refund returning seats; a fan's
//! refund request approved or rejected by an admin; the
//! per-booking limit; a flash sale that must never oversell; rate limits; and the booking
//! saga crashed at each of its steps, losing and repeating nothing.

use std::sync::Arc;
use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Settings of every ticketing test: a quick sandbox, deadline scans and redeliveries.
const TICKETING: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "20ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

/// Ordo with the ticketing settings, then `env`.
async fn start(env: &[(&str, &str)]) -> TestOrdo {
    TestOrdo::builder().envs(TICKETING).envs(env).start().await
}

/// Creates a show in Shanghai with one session and one area; answers (show, session).
async fn show(admin: &Api, capacity: i64, title: &str) -> (String, String) {
    show_on(admin, capacity, title, "2027-08-15T11:30:00Z").await
}

/// A show with one session starting at `starts_at` and one seat area of `capacity` seats.
async fn show_on(admin: &Api, capacity: i64, title: &str, starts_at: &str) -> (String, String) {
    let created = admin
        .post(
            "/api/v1/shows",
            json!({
                "title": title, "category": "演唱会", "city": "上海", "venue": "上海体育场",
                "description": "world tour",
                "sessions": [{"starts_at": starts_at, "seat_areas": [
                    {"area_id": "vip-a", "name": "VIP A区", "price": 1280, "currency": "CNY", "capacity": capacity}
                ]}]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let show_id = created.body["show_id"].as_str().unwrap().to_string();
    let session_id = created.body["session_ids"][0].as_str().unwrap().to_string();
    (show_id, session_id)
}

async fn available(api: &Api, show_id: &str) -> i64 {
    let sessions = api.get(&format!("/api/v1/shows/{show_id}/sessions")).await;
    sessions.body["sessions"][0]["seat_areas"][0]["available"]
        .as_i64()
        .unwrap_or(-1)
}

async fn wait_available(api: &Api, show_id: &str, expected: i64) {
    eventually(
        &format!("{expected} seats available"),
        Duration::from_secs(20),
        || async { (available(api, show_id).await == expected).then_some(()) },
    )
    .await
}

async fn book(fan: &Api, session_id: &str, quantity: i64) -> Value {
    let answer = fan
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": quantity})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    answer.body
}

async fn booking_status(api: &Api, booking_id: &str, status: &str) -> Value {
    eventually(
        &format!("booking {booking_id} {status}"),
        Duration::from_secs(20),
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

async fn pay(fan: &Api, booking_id: &str) -> Value {
    let paid = fan
        .send(
            Method::POST,
            &format!("/api/v1/bookings/{booking_id}/pay"),
            Some(json!({"payment_method": "alipay", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    paid.body
}

#[tokio::test]
async fn scenario_one_browse_book_pay_and_check_in_once() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, 50, "周杰伦 2026 世界巡回演唱会").await;
    let (fan, _) = api.register("alice@example.com").await;

    // Browse by city and category.
    let listed = eventually("show listed", Duration::from_secs(20), || async {
        let page = fan
            .get("/api/v1/shows?city=%E4%B8%8A%E6%B5%B7&category=%E6%BC%94%E5%94%B1%E4%BC%9A")
            .await
            .body;
        (page["shows"].as_array().map(Vec::len) == Some(1)).then_some(page)
    })
    .await;
    assert_eq!(listed["shows"][0]["show_id"], show_id.as_str());
    assert_eq!(listed["shows"][0]["venue"], "上海体育场");
    assert!(listed["shows"][0]["date"]
        .as_str()
        .unwrap()
        .starts_with("2027-08-15"));
    let elsewhere = fan.get("/api/v1/shows?city=Paris").await.body;
    assert_eq!(elsewhere["shows"].as_array().unwrap().len(), 0);
    wait_available(&fan, &show_id, 50).await;

    // Book two seats and wait for the decision.
    let booked = book(&fan, &session_id, 2).await;
    assert_eq!(booked["status"], "pending_payment", "{booked:?}");
    assert_eq!(booked["total_amount"], 2560);
    assert!(booked["expires_at"].is_string());
    let booking_id = booked["booking_id"].as_str().unwrap().to_string();
    wait_available(&fan, &show_id, 48).await;

    // Pay: the answer carries the tickets.
    let paid = pay(&fan, &booking_id).await;
    let paid = if paid["status"] == "paid" {
        paid
    } else {
        booking_status(&fan, &booking_id, "paid").await
    };
    let tickets = paid["tickets"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);
    wait_available(&fan, &show_id, 48).await;

    // The QR code is a PNG.
    let ticket_id = tickets[0]["ticket_id"].as_str().unwrap().to_string();
    let qr_url = tickets[0]["qr_code"].as_str().unwrap().to_string();
    assert!(qr_url.ends_with(&format!("/api/v1/tickets/{ticket_id}/qr.png")));
    let png = eventually("QR image", Duration::from_secs(20), || async {
        let response = fan
            .client
            .get(&qr_url)
            .bearer_auth(fan.token.as_deref().unwrap())
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let content_type = response.headers()["content-type"]
            .to_str()
            .ok()?
            .to_string();
        Some((content_type, response.bytes().await.ok()?))
    })
    .await;
    assert_eq!(png.0, "image/png");
    assert_eq!(&png.1[..8], b"\x89PNG\r\n\x1a\n");

    // Check in once; the second time is refused; a forged payload is refused.
    let payload = tickets[0]["qr_payload"].as_str().unwrap().to_string();
    let path = format!("/api/v1/tickets/{ticket_id}/check-in");
    let forged = admin
        .post(
            &path,
            json!({"qr_payload": format!(
                "{}{}",
                &payload[..payload.len() - 1],
                if payload.ends_with('0') { '1' } else { '0' }
            )}),
        )
        .await;
    assert_eq!(forged.status, 404, "{:?}", forged.body);
    assert_eq!(forged.body["type"], "urn:ordo:problem:invalid_ticket");
    let first = admin.post(&path, json!({"qr_payload": payload})).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = admin.post(&path, json!({"qr_payload": payload})).await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(second.body["type"], "urn:ordo:problem:already_checked_in");
    // Fans cannot check tickets in.
    let by_fan = fan.post(&path, json!({"qr_payload": payload})).await;
    assert_eq!(by_fan.status, 403);

    // The caller's list shows the booking; another fan does not see it.
    let mine = eventually("booking listed", Duration::from_secs(20), || async {
        let page = fan.get("/api/v1/bookings").await.body;
        (page["bookings"][0]["status"] == "paid").then_some(page)
    })
    .await;
    assert_eq!(mine["bookings"][0]["booking_id"], booking_id.as_str());
    let (other, _) = api.register("bob@example.com").await;
    assert_eq!(
        other
            .get(&format!("/api/v1/bookings/{booking_id}"))
            .await
            .status,
        404
    );
    ordo.stop().await;
}

#[tokio::test]
async fn unpaid_bookings_expire_and_their_seats_return() {
    let ordo = start(&[("ORDO_BOOKING_TIMEOUT", "1s")]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, 10, "Expiring").await;
    let (fan, _) = api.register("late@example.com").await;
    wait_available(&fan, &show_id, 10).await;
    let booked = book(&fan, &session_id, 3).await;
    assert_eq!(booked["status"], "pending_payment");
    let booking_id = booked["booking_id"].as_str().unwrap();
    booking_status(&fan, booking_id, "expired").await;
    wait_available(&fan, &show_id, 10).await;
    let late = fan
        .post(
            &format!("/api/v1/bookings/{booking_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(late.status, 409, "{:?}", late.body);
    ordo.stop().await;
}

#[tokio::test]
async fn a_paid_booking_is_completed_seven_days_after_its_session() {
    let ordo = start(&[("ORDO_DEADLINE_SCAN_INTERVAL", "200ms")]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    // A session that took place eight days ago: its paid bookings are due for completion.
    let eight_days_ago = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
    let (show_id, session_id) = show_on(&admin, 10, "Last season", &eight_days_ago).await;
    let (fan, _) = api.register("memories@example.com").await;
    wait_available(&fan, &show_id, 10).await;
    let booked = book(&fan, &session_id, 2).await;
    let booking_id = booked["booking_id"].as_str().unwrap().to_string();
    pay(&fan, &booking_id).await;
    let completed = booking_status(&fan, &booking_id, "completed").await;
    assert_eq!(completed["tickets"].as_array().map(Vec::len), Some(2));
    ordo.stop().await;
}

#[tokio::test]
async fn cancel_and_refund_return_seats_and_invalidate_tickets() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, 10, "Returns").await;
    let (fan, _) = api.register("changes@example.com").await;
    wait_available(&fan, &show_id, 10).await;

    let cancelled = book(&fan, &session_id, 4).await;
    let cancelled_id = cancelled["booking_id"].as_str().unwrap();
    wait_available(&fan, &show_id, 6).await;
    let answer = fan
        .post(
            &format!("/api/v1/bookings/{cancelled_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "cancelled");
    wait_available(&fan, &show_id, 10).await;

    let refunded = book(&fan, &session_id, 2).await;
    let refunded_id = refunded["booking_id"].as_str().unwrap().to_string();
    pay(&fan, &refunded_id).await;
    let paid = booking_status(&fan, &refunded_id, "paid").await;
    wait_available(&fan, &show_id, 8).await;
    // Only admins refund.
    let by_fan = fan
        .post(&format!("/api/v1/bookings/{refunded_id}/refund"), json!({}))
        .await;
    assert_eq!(by_fan.status, 403);
    let answer = admin
        .post(
            &format!("/api/v1/bookings/{refunded_id}/refund"),
            json!({"reason": "show moved"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "refunded");
    wait_available(&fan, &show_id, 10).await;
    // Its tickets no longer admit anyone.
    let ticket = &paid["tickets"][0];
    let check = admin
        .post(
            &format!(
                "/api/v1/tickets/{}/check-in",
                ticket["ticket_id"].as_str().unwrap()
            ),
            json!({"qr_payload": ticket["qr_payload"]}),
        )
        .await;
    assert_eq!(check.status, 409, "{:?}", check.body);
    // The payment was refunded.
    let payment_id = paid["payment_id"].as_str().unwrap();
    eventually("payment refunded", Duration::from_secs(20), || async {
        let p = fan
            .get(&format!("/api/v1/payments/{payment_id}"))
            .await
            .body;
        (p["status"] == "refunded").then_some(())
    })
    .await;
    ordo.stop().await;
}

async fn notification_kinds(api: &Api) -> Vec<String> {
    api.get("/api/v1/notifications").await.body["notifications"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|n| n["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The booking ids in the admins' queue of open refund requests.
async fn open_refund_requests(admin: &Api) -> Vec<String> {
    let queue = admin.get("/api/v1/admin/bookings/refund-requests").await;
    assert_eq!(queue.status, 200, "{:?}", queue.body);
    queue.body["refund_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["booking_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_fan_asks_for_a_refund_and_an_admin_approves_or_rejects_it() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, 10, "Second thoughts").await;
    let (fan, _) = api.register("second-thoughts@example.com").await;
    let (stranger, _) = api.register("stranger@example.com").await;
    wait_available(&fan, &show_id, 10).await;

    // Only a paid booking may be refunded on request.
    let rejected = book(&fan, &session_id, 2).await;
    let rejected_id = rejected["booking_id"].as_str().unwrap().to_string();
    let request_path = format!("/api/v1/bookings/{rejected_id}/refund-request");
    let early = fan
        .post(&request_path, json!({"reason": "cannot come"}))
        .await;
    assert_eq!(early.status, 409, "{:?}", early.body);
    pay(&fan, &rejected_id).await;
    booking_status(&fan, &rejected_id, "paid").await;

    // Someone else's booking is not found, for another fan and for an admin (who decides
    // requests, never makes them); a blank reason is refused.
    for caller in [&stranger, &admin] {
        let foreign = caller
            .post(&request_path, json!({"reason": "cannot come"}))
            .await;
        assert_eq!(foreign.status, 404, "{:?}", foreign.body);
    }
    let blank = fan.post(&request_path, json!({"reason": "  "})).await;
    assert_eq!(blank.status, 422, "{:?}", blank.body);
    assert!(fan
        .get(&format!("/api/v1/bookings/{rejected_id}"))
        .await
        .body
        .get("refund_request")
        .is_none());

    let asked = fan
        .post(&request_path, json!({"reason": "cannot come"}))
        .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    assert_eq!(asked.body["status"], "paid");
    assert_eq!(asked.body["refund_request"]["status"], "requested");
    assert_eq!(asked.body["refund_request"]["reason"], "cannot come");
    let version = asked.body["version"].as_i64().unwrap();
    // The same request again changes nothing; another one while it is open is refused.
    let again = fan
        .post(&request_path, json!({"reason": "cannot come"}))
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["version"].as_i64(), Some(version));
    let other = fan
        .post(&request_path, json!({"reason": "another reason"}))
        .await;
    assert_eq!(other.status, 409, "{:?}", other.body);
    assert_eq!(
        other.body["type"],
        "urn:ordo:problem:refund_already_requested"
    );

    // The admins see it in their queue and their inbox; a fan does not see the queue.
    assert_eq!(
        fan.get("/api/v1/admin/bookings/refund-requests")
            .await
            .status,
        403
    );
    eventually("the request queued", Duration::from_secs(20), || async {
        open_refund_requests(&admin)
            .await
            .contains(&rejected_id)
            .then_some(())
    })
    .await;
    eventually("the admins told", Duration::from_secs(20), || async {
        notification_kinds(&admin)
            .await
            .iter()
            .any(|k| k == "booking_refund_requested")
            .then_some(())
    })
    .await;

    // Withdrawn, it leaves the queue and cannot be approved; asked again, it is rejected.
    let withdrawn = fan
        .post(&format!("{request_path}/withdraw"), json!({}))
        .await;
    assert_eq!(withdrawn.status, 200, "{:?}", withdrawn.body);
    assert_eq!(withdrawn.body["refund_request"]["status"], "withdrawn");
    let approve_path = format!("/api/v1/admin/bookings/{rejected_id}/refund-request/approve");
    let nothing_open = admin.post(&approve_path, json!({})).await;
    assert_eq!(nothing_open.status, 409, "{:?}", nothing_open.body);
    eventually("the request unqueued", Duration::from_secs(20), || async {
        (!open_refund_requests(&admin).await.contains(&rejected_id)).then_some(())
    })
    .await;
    let asked = fan
        .post(&request_path, json!({"reason": "really cannot come"}))
        .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    let reject_path = format!("/api/v1/admin/bookings/{rejected_id}/refund-request/reject");
    assert_eq!(
        fan.post(&reject_path, json!({"reason": "too late"}))
            .await
            .status,
        403
    );
    let refused = admin
        .post(&reject_path, json!({"reason": "too late"}))
        .await;
    assert_eq!(refused.status, 200, "{:?}", refused.body);
    assert_eq!(refused.body["status"], "paid");
    assert_eq!(refused.body["refund_request"]["status"], "rejected");
    assert_eq!(
        refused.body["refund_request"]["rejection_reason"],
        "too late"
    );
    let after_rejection = fan.post(&request_path, json!({"reason": "please"})).await;
    assert_eq!(after_rejection.status, 409, "{:?}", after_rejection.body);
    assert_eq!(
        after_rejection.body["type"],
        "urn:ordo:problem:refund_request_rejected"
    );
    // The rejected booking keeps its seats.
    wait_available(&fan, &show_id, 8).await;

    // An approved request refunds the booking: seats back, money back, tickets void.
    let approved = book(&fan, &session_id, 3).await;
    let approved_id = approved["booking_id"].as_str().unwrap().to_string();
    pay(&fan, &approved_id).await;
    let paid = booking_status(&fan, &approved_id, "paid").await;
    wait_available(&fan, &show_id, 5).await;
    let asked = fan
        .post(
            &format!("/api/v1/bookings/{approved_id}/refund-request"),
            json!({"reason": "ill"}),
        )
        .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    let approve_path = format!("/api/v1/admin/bookings/{approved_id}/refund-request/approve");
    let granted = admin.post(&approve_path, json!({})).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    assert_eq!(granted.body["status"], "refunded");
    assert_eq!(granted.body["refund_request"]["status"], "approved");
    let repeat = admin.post(&approve_path, json!({})).await;
    assert_eq!(repeat.status, 200, "{:?}", repeat.body);
    assert_eq!(repeat.body["version"], granted.body["version"]);
    wait_available(&fan, &show_id, 8).await;
    let payment_id = paid["payment_id"].as_str().unwrap();
    eventually("payment refunded", Duration::from_secs(20), || async {
        let p = fan
            .get(&format!("/api/v1/payments/{payment_id}"))
            .await
            .body;
        (p["status"] == "refunded").then_some(())
    })
    .await;
    let ticket = &paid["tickets"][0];
    let check = admin
        .post(
            &format!(
                "/api/v1/tickets/{}/check-in",
                ticket["ticket_id"].as_str().unwrap()
            ),
            json!({"qr_payload": ticket["qr_payload"]}),
        )
        .await;
    assert_eq!(check.status, 409, "{:?}", check.body);

    // The fan hears of both decisions.
    eventually("the fan told", Duration::from_secs(20), || async {
        let kinds = notification_kinds(&fan).await;
        (kinds.iter().any(|k| k == "booking_refund_rejected")
            && kinds.iter().any(|k| k == "booking_refunded"))
        .then_some(())
    })
    .await;
    ordo.stop().await;
}

#[tokio::test]
async fn a_booking_of_more_than_six_seats_is_refused() {
    let ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, 10, "Limits").await;
    let (fan, _) = api.register("greedy@example.com").await;
    wait_available(&fan, &show_id, 10).await;
    let answer = fan
        .post(
            "/api/v1/bookings",
            json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": 7}),
        )
        .await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    assert_eq!(answer.body["type"], "urn:ordo:problem:too_many_tickets");
    let unknown = fan
        .post(
            "/api/v1/bookings",
            json!({"session_id": session_id, "seat_area_id": "nope", "quantity": 1}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    assert_eq!(unknown.body["type"], "urn:ordo:problem:unknown_seat_area");
    assert_eq!(available(&fan, &show_id).await, 10);
    ordo.stop().await;
}

#[tokio::test]
async fn a_flash_sale_of_two_thousand_fans_for_fifty_seats_never_oversells() {
    const FANS: usize = 2_000;
    const SEATS: i64 = 50;
    let ordo = start(&[
        ("ORDO_RATE_LIMIT_PER_IP", "0"),
        ("ORDO_RATE_LIMIT_PER_USER", "0"),
        ("ORDO_DATABASE_MAX_CONNECTIONS", "32"),
    ])
    .await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, SEATS, "Flash").await;
    wait_available(&admin, &show_id, SEATS).await;
    // A few hundred fans, each booking several times: the contention is on the one area.
    let mut fans = Vec::new();
    for i in 0..200 {
        fans.push(api.register(&format!("fan{i}@example.com")).await.0);
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..FANS {
        let fan = fans[i % fans.len()].clone();
        let session_id = session_id.clone();
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let answer = fan
                .send(
                    Method::POST,
                    "/api/v1/bookings",
                    Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": 1})),
                    &[("prefer", "wait=30")],
                )
                .await;
            // Late fans are turned away as sold out before any booking is recorded.
            let decision =
                if answer.status == 409 && answer.body["type"] == "urn:ordo:problem:sold_out" {
                    "rejected".to_string()
                } else {
                    answer.body["status"].as_str().unwrap_or("").to_string()
                };
            (
                if answer.status == 409 {
                    202
                } else {
                    answer.status
                },
                decision,
            )
        });
    }
    let (mut held, mut rejected, mut other) = (0, 0, Vec::new());
    while let Some(result) = set.join_next().await {
        let (status, decision) = result.unwrap();
        match (status, decision.as_str()) {
            (202, "pending_payment") => held += 1,
            (202, "rejected") => rejected += 1,
            (status, decision) => other.push((status, decision.to_string())),
        }
    }
    assert!(other.is_empty(), "undecided answers: {other:?}");
    assert_eq!(held, SEATS, "exactly the seats are held");
    assert_eq!(held + rejected, FANS as i64);
    // The write side agrees: never more reserved or sold than the capacity.
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT e.event_type, count(*) FROM events e
         JOIN seat_areas a ON a.inventory_id = e.aggregate_id
         WHERE e.aggregate_type = 'inventory' AND a.session_id = $1::uuid
         GROUP BY e.event_type",
    )
    .bind(&session_id)
    .fetch_all(ordo.pool())
    .await
    .unwrap();
    let reserved = events
        .iter()
        .find(|e| e.0 == "StockReserved")
        .map(|e| e.1)
        .unwrap_or(0);
    let released = events
        .iter()
        .find(|e| e.0 == "StockReleased")
        .map(|e| e.1)
        .unwrap_or(0);
    assert!(reserved - released <= SEATS, "{events:?}");
    assert_eq!(reserved, SEATS, "{events:?}");
    // And so does the read model, once it has caught up.
    wait_available(&admin, &show_id, 0).await;
    let pool = ordo.pool().clone();
    let session = session_id.clone();
    eventually(
        "bookings read model decided",
        Duration::from_secs(90),
        || {
            let pool = pool.clone();
            let session = session.clone();
            async move {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT status, count(*) FROM bookings WHERE session_id = $1::uuid
                 GROUP BY status ORDER BY status",
                )
                .bind(&session)
                .fetch_all(&pool)
                .await
                .ok()?;
                // Only the seats' holders are recorded: the reservation decided every
                // other buyer before anything was written for them.
                (rows == [("pending_payment".to_string(), SEATS)]).then_some(())
            }
        },
    )
    .await;
    ordo.stop().await;
}

/// How many events of `event_type` the test's database holds.
async fn count_events(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sale_over_two_processes_books_each_seat_once_and_decides_every_buyer() {
    const FANS: usize = 1_000;
    const SEATS: i64 = 30;
    let env = [
        ("ORDO_RATE_LIMIT_PER_IP", "0"),
        ("ORDO_RATE_LIMIT_PER_USER", "0"),
        ("ORDO_DATABASE_MAX_CONNECTIONS", "16"),
    ];
    let ordo = start(&env).await;
    let second = ordo.spawn_another_with(&env).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, SEATS, "Two doors").await;
    wait_available(&admin, &show_id, SEATS).await;
    // Each fan books through both processes: the two single writers of the one seat area
    // race for it.
    let mut fans = Vec::new();
    for i in 0..100 {
        let (fan, _) = api.register(&format!("door{i}@example.com")).await;
        let through_second = Api {
            base: second.api().base,
            ..fan.clone()
        };
        fans.push([fan, through_second]);
    }
    // Watches the read model while the sale runs: when it first shows every seat gone.
    let watcher = {
        let admin = admin.clone();
        let show_id = show_id.clone();
        tokio::spawn(async move {
            eventually(
                "every seat shown as gone",
                Duration::from_secs(60),
                || async { (available(&admin, &show_id).await == 0).then(chrono::Utc::now) },
            )
            .await
        })
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..FANS {
        let fan = fans[i % fans.len()][i % 2].clone();
        let session_id = session_id.clone();
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let answer = fan
                .send(
                    Method::POST,
                    "/api/v1/bookings",
                    Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": 1})),
                    &[("prefer", "wait=30")],
                )
                .await;
            match (answer.status, answer.body["status"].as_str()) {
                (202, Some("pending_payment")) => {
                    Ok(answer.body["booking_id"].as_str().unwrap().to_string())
                }
                (409, _) if answer.body["type"] == "urn:ordo:problem:sold_out" => Err(None),
                _ => Err(Some(format!("{} {}", answer.status, answer.body))),
            }
        });
    }
    let (mut held, mut sold_out, mut undecided) = (Vec::new(), 0, Vec::new());
    while let Some(result) = set.join_next().await {
        match result.unwrap() {
            Ok(booking_id) => held.push(booking_id),
            Err(None) => sold_out += 1,
            Err(Some(other)) => undecided.push(other),
        }
    }
    assert!(undecided.is_empty(), "every buyer decided: {undecided:?}");
    assert_eq!(held.len() as i64, SEATS, "never oversold, never undersold");
    assert_eq!(held.len() + sold_out, FANS);
    // The read side follows within a second of the hot seat area's last event: its events
    // reach the one process that runs each consumer, in order, so none waits for another
    // process to apply the one before it.
    let visible = watcher.await.unwrap();
    let pool = ordo.pool();
    let last_reserved: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT max(recorded_at) FROM events WHERE event_type = 'StockReserved'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let behind = visible - last_reserved;
    eprintln!("two processes: every seat shown as gone {behind} after the hot area's last event");
    assert!(
        behind <= chrono::Duration::seconds(1),
        "the read model is current within a second of the last event, not {behind}"
    );
    // The write side agrees: one reservation and one booking per seat, nothing recorded
    // for the buyers turned away.
    assert_eq!(count_events(pool, "StockReserved").await, SEATS);
    assert_eq!(count_events(pool, "StockReleased").await, 0);
    assert_eq!(count_events(pool, "BookingRequested").await, SEATS);
    assert_eq!(count_events(pool, "SeatsHeld").await, SEATS);
    assert_eq!(count_events(pool, "BookingRejected").await, 0);
    let mut reserved: Vec<String> = sqlx::query_as::<_, (String,)>(
        "SELECT payload::jsonb -> 'StockReserved' ->> 'reservation_id' FROM events
         WHERE event_type = 'StockReserved'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.0)
    .collect();
    reserved.sort();
    held.sort();
    assert_eq!(
        reserved, held,
        "each seat reserved for the booking that holds it"
    );
    drop(second);
    ordo.stop().await;
}

#[tokio::test]
async fn clients_over_their_rate_limit_get_429_with_retry_after() {
    let ordo = start(&[
        ("ORDO_RATE_LIMIT_PER_IP", "10"),
        ("ORDO_RATE_LIMIT_PER_IP_BURST", "20"),
    ])
    .await;
    let api = ordo.api();
    let mut limited = None;
    for _ in 0..60 {
        let answer = api.get("/api/v1/shows").await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a 429 within 60 quick requests");
    assert!(limited
        .header("retry-after")
        .is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    assert_eq!(
        limited.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(limited.body["type"], "urn:ordo:problem:rate_limited");
    ordo.stop().await;
}

// Crashes at each step of the booking saga. The process is started with
// ORDO_CRASH_AFTER_STEP=booking:<step> and aborts itself at that step, right after the
// step's command committed and before the saga recorded it; it is then restarted without
// the crash point and the booking must end as if nothing had happened: seats reserved,
// sold or given back exactly once, one capture per payment, one refund, one set of tickets.

/// The environment variable naming the step to crash after.
const CRASH_AFTER_STEP: &str = "ORDO_CRASH_AFTER_STEP";
/// Seats each booking of the crash tests takes.
const SEATS_PER_BOOKING: i64 = 2;

/// Restarts the process so that it crashes after `step` of the booking saga, or never.
async fn restart_crashing_after(ordo: &mut TestOrdo, step: Option<&str>) {
    let value = step.map(|s| format!("booking:{s}")).unwrap_or_default();
    ordo.set_env(CRASH_AFTER_STEP, &value);
    ordo.restart().await.expect("ordo restarts");
}

/// Waits until the process died: it aborts itself at its crash point.
async fn wait_for_crash(ordo: &mut TestOrdo, step: &str) {
    eventually(
        &format!("the process crashed after {step}"),
        Duration::from_secs(30),
        || {
            let alive = ordo.is_running();
            async move { (!alive).then_some(()) }
        },
    )
    .await;
}

/// Books `SEATS_PER_BOOKING` seats and answers the booking id; the seats are held.
async fn book_held(fan: &Api, session_id: &str) -> String {
    let booked = book(fan, session_id, SEATS_PER_BOOKING).await;
    assert_eq!(booked["status"], "pending_payment", "{booked:?}");
    booked["booking_id"].as_str().unwrap().to_string()
}

/// Pays a booking without waiting for the outcome, with the sandbox token `token`.
async fn start_paying(fan: &Api, booking_id: &str, token: &str) -> Option<ordo_tests::Answer> {
    fan.try_send(
        Method::POST,
        &format!("/api/v1/bookings/{booking_id}/pay"),
        Some(json!({"payment_method": "card", "payment_token": token})),
        &[],
    )
    .await
}

/// The inventory item holding the seats of the session's area.
async fn seat_item(pool: &PgPool, session_id: &str) -> String {
    sqlx::query_as::<_, (String,)>(
        "SELECT inventory_id FROM seat_areas WHERE session_id = $1::uuid AND area_id = 'vip-a'",
    )
    .bind(session_id)
    .fetch_one(pool)
    .await
    .unwrap()
    .0
}

/// The seats of an item as the inventory_levels read model counts them: (on hand, reserved).
async fn seat_levels(pool: &PgPool, item: &str) -> Option<(i64, i64)> {
    sqlx::query_as("SELECT on_hand, reserved FROM inventory_levels WHERE sku = $1")
        .bind(item)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// The events of one booking's reservation of seats, in order.
async fn reservation_events(pool: &PgPool, item: &str, booking_id: &str) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT event_type FROM events
         WHERE aggregate_type = 'inventory' AND aggregate_id = $1
           AND payload::jsonb -> event_type ->> 'reservation_id' = $2
         ORDER BY sequence",
    )
    .bind(item)
    .bind(booking_id)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.0)
    .collect()
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

/// The booking saga's status, `None` before it started.
async fn saga_status(pool: &PgPool, booking_id: &str) -> Option<String> {
    sqlx::query_as::<_, (String,)>("SELECT status FROM sagas WHERE saga_id = $1::uuid")
        .bind(booking_id)
        .fetch_optional(pool)
        .await
        .unwrap()
        .map(|r| r.0)
}

/// The booking saga's step log, oldest first.
async fn saga_steps(pool: &PgPool, booking_id: &str) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT step FROM saga_steps WHERE saga_id = $1::uuid ORDER BY step_no",
    )
    .bind(booking_id)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.0)
    .collect()
}

/// Checks that the crash cut the step short: its command committed (the caller checks
/// what it did) but the saga did not record it.
async fn assert_cut_before_recording(pool: &PgPool, booking_id: &str, step: &str) {
    let steps = saga_steps(pool, booking_id).await;
    assert!(
        !steps.iter().any(|s| s == step),
        "the crash after {step} left it unrecorded: {steps:?}"
    );
}

/// What a booking must end as.
struct Outcome {
    /// Its status, as the API shows it.
    status: &'static str,
    /// Its saga's status.
    saga: &'static str,
    /// The saga's step log, in any order. The reserve step is left out: the gateway runs it
    /// inline and the saga repeats it only when it finds the booking still pending.
    steps: &'static [&'static str],
    /// Its events, in order.
    events: &'static [&'static str],
    /// The events of its reservation of seats, in order.
    seats: &'static [&'static str],
    /// The events of each of its payments, oldest payment first.
    payments: &'static [&'static [&'static str]],
}

const HELD: Outcome = Outcome {
    status: "pending_payment",
    saga: "awaiting_payment",
    steps: &[],
    events: &["BookingRequested", "SeatsHeld"],
    seats: &["StockReserved"],
    payments: &[],
};

const PAID: Outcome = Outcome {
    status: "paid",
    saga: "paid",
    steps: &[
        "attach_payment",
        "charge_requested",
        "mark_paid",
        "commit_seats",
    ],
    events: &[
        "BookingRequested",
        "SeatsHeld",
        "PaymentAttached",
        "BookingPaid",
    ],
    seats: &["StockReserved", "StockCommitted"],
    payments: &[&["PaymentCreated", "PaymentCaptured"]],
};

/// Waits until the saga of a booking logged every step expected (in any order) and
/// reached its status, then checks that no step was logged twice.
async fn wait_saga(pool: &PgPool, booking_id: &str, saga: &str, steps: &[&str]) {
    let mut expected: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let logged = eventually(
        &format!("booking {booking_id}'s saga {saga} after {steps:?}"),
        Duration::from_secs(30),
        || async {
            let status = saga_status(pool, booking_id).await;
            let mut logged: Vec<String> = saga_steps(pool, booking_id)
                .await
                .into_iter()
                .filter(|s| s != "reserve_seats" || expected.contains(s))
                .collect();
            logged.sort();
            let all_logged = expected.iter().all(|step| {
                logged.iter().filter(|s| *s == step).count()
                    >= expected.iter().filter(|s| *s == step).count()
            });
            (status.as_deref() == Some(saga) && all_logged).then_some(logged)
        },
    )
    .await;
    assert_eq!(logged, expected, "booking {booking_id}: each step once");
}

/// Waits for a booking to settle and checks it ended as `outcome`, every effect once.
async fn assert_outcome(
    ordo: &TestOrdo,
    fan: &Api,
    item: &str,
    booking_id: &str,
    outcome: &Outcome,
) {
    let pool = ordo.pool();
    let booking = booking_status(fan, booking_id, outcome.status).await;
    wait_saga(pool, booking_id, outcome.saga, outcome.steps).await;
    assert_eq!(
        ordo_tests::event_types(pool, "booking", booking_id).await,
        outcome.events,
        "booking {booking_id}'s events"
    );
    assert_eq!(
        reservation_events(pool, item, booking_id).await,
        outcome.seats,
        "booking {booking_id}'s seats"
    );
    let payments = ordo_tests::payments_of(pool, booking_id).await;
    assert_eq!(
        payments.len(),
        outcome.payments.len(),
        "booking {booking_id}'s payments"
    );
    for (payment_id, events) in payments.iter().zip(outcome.payments) {
        assert_eq!(
            ordo_tests::event_types(pool, "payment", payment_id).await,
            *events,
            "booking {booking_id}'s payment {payment_id}"
        );
    }
    if outcome.seats.contains(&"StockCommitted") {
        // One ticket per seat, issued once.
        let tickets: Vec<&str> = booking["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["ticket_id"].as_str().unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<&str> = tickets.iter().copied().collect();
        assert_eq!(tickets.len() as i64, SEATS_PER_BOOKING, "{booking:?}");
        assert_eq!(distinct.len(), tickets.len(), "{booking:?}");
        eventually(
            "tickets in the read model",
            Duration::from_secs(20),
            || async {
                let (count,): (i64,) =
                    sqlx::query_as("SELECT count(*) FROM tickets WHERE booking_id = $1::uuid")
                        .bind(booking_id)
                        .fetch_one(pool)
                        .await
                        .ok()?;
                (count == SEATS_PER_BOOKING).then_some(())
            },
        )
        .await;
    }
}

/// Waits until the read models count the seats of `item`: `sold` sold and `held` held.
async fn assert_seats(
    ordo: &TestOrdo,
    fan: &Api,
    show_id: &str,
    item: &str,
    capacity: i64,
    sold: i64,
    held: i64,
) {
    eventually(
        &format!("{sold} seats sold and {held} held"),
        Duration::from_secs(20),
        || async {
            (seat_levels(ordo.pool(), item).await == Some((capacity - sold, held))).then_some(())
        },
    )
    .await;
    wait_available(fan, show_id, capacity - sold - held).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_step_of_booking_and_paying_sells_each_seat_once() {
    const CAPACITY: i64 = 20;
    let mut ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, CAPACITY, "Crash course").await;
    let (fan, _) = api.register("phoenix@example.com").await;
    wait_available(&fan, &show_id, CAPACITY).await;
    let item = seat_item(ordo.pool(), &session_id).await;
    let mut settled: Vec<(String, &Outcome)> = Vec::new();

    // Booking. The gateway dies between reserving the seats (the reservation carries the
    // booking) and recording the booking, so it never answers.
    restart_crashing_after(&mut ordo, Some("seats_reserved")).await;
    let answer = fan
        .try_send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": SEATS_PER_BOOKING})),
            &[],
        )
        .await;
    assert!(answer.is_none(), "answered despite the crash: {answer:?}");
    wait_for_crash(&mut ordo, "seats_reserved").await;
    let reserved = last_reservation(ordo.pool(), &item).await;
    assert_eq!(
        reservation_events(ordo.pool(), &item, &reserved).await,
        ["StockReserved"]
    );
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "booking", &reserved).await,
        Vec::<String>::new()
    );
    // The saga records the booking held from the reservation's event, and dies right
    // after, before acknowledging the event (possibly while the process is still starting).
    ordo.set_env(CRASH_AFTER_STEP, "booking:held_booking_recorded");
    if let Err(err) = ordo.restart().await {
        assert!(!ordo.is_running(), "{err}");
    }
    wait_for_crash(&mut ordo, "held_booking_recorded").await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "booking", &reserved).await,
        ["BookingRequested", "SeatsHeld"]
    );
    // Handled again, the reservation finds its booking recorded and leaves it.
    restart_crashing_after(&mut ordo, None).await;
    assert_outcome(&ordo, &fan, &item, &reserved, &HELD).await;
    settled.push((reserved, &HELD));

    // Paying: one booking paid through a crash at each step.
    for step in [
        "attach_payment",
        "charge_requested",
        "mark_paid",
        "commit_seats",
    ] {
        let booking_id = book_held(&fan, &session_id).await;
        restart_crashing_after(&mut ordo, Some(step)).await;
        start_paying(&fan, &booking_id, "tok_success").await;
        wait_for_crash(&mut ordo, step).await;
        assert_cut_before_recording(ordo.pool(), &booking_id, step).await;
        restart_crashing_after(&mut ordo, None).await;
        assert_outcome(&ordo, &fan, &item, &booking_id, &PAID).await;
        settled.push((booking_id, &PAID));
    }

    // A declined payment recorded through a crash; the seats stay held and the fan pays again.
    const PAID_SECOND_TIME: Outcome = Outcome {
        status: "paid",
        saga: "paid",
        steps: &[
            "attach_payment",
            "charge_requested",
            "payment_failed",
            "attach_payment",
            "charge_requested",
            "mark_paid",
            "commit_seats",
        ],
        events: &[
            "BookingRequested",
            "SeatsHeld",
            "PaymentAttached",
            "PaymentAttached",
            "BookingPaid",
        ],
        seats: &["StockReserved", "StockCommitted"],
        payments: &[
            &["PaymentCreated", "PaymentFailed"],
            &["PaymentCreated", "PaymentCaptured"],
        ],
    };
    let declined = book_held(&fan, &session_id).await;
    restart_crashing_after(&mut ordo, Some("payment_failed")).await;
    start_paying(&fan, &declined, "tok_decline").await;
    wait_for_crash(&mut ordo, "payment_failed").await;
    assert_cut_before_recording(ordo.pool(), &declined, "payment_failed").await;
    restart_crashing_after(&mut ordo, None).await;
    wait_saga(
        ordo.pool(),
        &declined,
        "awaiting_payment",
        &["attach_payment", "charge_requested", "payment_failed"],
    )
    .await;
    pay(&fan, &declined).await;
    assert_outcome(&ordo, &fan, &item, &declined, &PAID_SECOND_TIME).await;
    settled.push((declined, &PAID_SECOND_TIME));

    // Completing: a paid booking of a session eight days ago completes through a crash
    // in the deadline scan, after the booking completed and before the deadline is cleared.
    const COMPLETED: Outcome = Outcome {
        status: "completed",
        saga: "completed",
        steps: PAID.steps,
        events: &[
            "BookingRequested",
            "SeatsHeld",
            "PaymentAttached",
            "BookingPaid",
            "BookingCompleted",
        ],
        seats: PAID.seats,
        payments: PAID.payments,
    };
    let eight_days_ago = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
    let (past_show, past_session) = show_on(&admin, 10, "Last season", &eight_days_ago).await;
    wait_available(&fan, &past_show, 10).await;
    let past_item = seat_item(ordo.pool(), &past_session).await;
    let completed = book_held(&fan, &past_session).await;
    restart_crashing_after(&mut ordo, Some("complete")).await;
    start_paying(&fan, &completed, "tok_success").await;
    wait_for_crash(&mut ordo, "complete").await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "booking", &completed)
            .await
            .last()
            .map(String::as_str),
        Some("BookingCompleted")
    );
    restart_crashing_after(&mut ordo, None).await;
    assert_outcome(&ordo, &fan, &past_item, &completed, &COMPLETED).await;

    // Each seat counted once: five bookings sold, one held.
    assert_seats(
        &ordo,
        &fan,
        &show_id,
        &item,
        CAPACITY,
        5 * SEATS_PER_BOOKING,
        SEATS_PER_BOOKING,
    )
    .await;
    assert_seats(
        &ordo,
        &fan,
        &past_show,
        &past_item,
        10,
        SEATS_PER_BOOKING,
        0,
    )
    .await;
    // Nothing arrived late and twice.
    for (booking_id, outcome) in &settled {
        assert_outcome(&ordo, &fan, &item, booking_id, outcome).await;
    }
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_step_of_cancelling_or_expiring_gives_the_seats_back_once() {
    const CAPACITY: i64 = 10;
    const CANCELLED: Outcome = Outcome {
        status: "cancelled",
        saga: "cancelled",
        steps: &[
            "attach_payment",
            "charge_requested",
            "release_seats",
            "void_payment",
            "provider_void",
        ],
        events: &[
            "BookingRequested",
            "SeatsHeld",
            "PaymentAttached",
            "BookingCancelled",
        ],
        seats: &["StockReserved", "StockReleased"],
        payments: &[&["PaymentCreated", "PaymentVoided"]],
    };
    const EXPIRED: Outcome = Outcome {
        status: "expired",
        saga: "expired",
        steps: &["release_seats"],
        events: &["BookingRequested", "SeatsHeld", "BookingExpired"],
        seats: &["StockReserved", "StockReleased"],
        payments: &[],
    };
    const CAPTURED_TOO_LATE: Outcome = Outcome {
        status: "expired",
        saga: "expired",
        steps: &[
            "attach_payment",
            "charge_requested",
            "release_seats",
            "capture_not_wanted",
            "refund_payment",
            "provider_refund",
        ],
        events: &[
            "BookingRequested",
            "SeatsHeld",
            "PaymentAttached",
            "BookingExpired",
        ],
        seats: &["StockReserved", "StockReleased"],
        payments: &[&["PaymentCreated", "PaymentCaptured", "PaymentRefunded"]],
    };
    let mut ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, CAPACITY, "Second thoughts").await;
    let (fan, _) = api.register("hesitant@example.com").await;
    wait_available(&fan, &show_id, CAPACITY).await;
    let item = seat_item(ordo.pool(), &session_id).await;
    let mut settled: Vec<(String, &Outcome)> = Vec::new();

    // Cancelling while a payment is in progress (the provider never answers it): the seats
    // go back and the payment is voided, through a crash at each step.
    for step in ["release_seats", "void_payment", "provider_void"] {
        let booking_id = book_held(&fan, &session_id).await;
        let paying = start_paying(&fan, &booking_id, "tok_timeout").await;
        assert_eq!(paying.map(|a| a.status), Some(202));
        wait_saga(
            ordo.pool(),
            &booking_id,
            "awaiting_payment",
            &["attach_payment", "charge_requested"],
        )
        .await;
        restart_crashing_after(&mut ordo, Some(step)).await;
        fan.try_send(
            Method::POST,
            &format!("/api/v1/bookings/{booking_id}/cancel"),
            Some(json!({})),
            &[],
        )
        .await;
        wait_for_crash(&mut ordo, step).await;
        assert_cut_before_recording(ordo.pool(), &booking_id, step).await;
        restart_crashing_after(&mut ordo, None).await;
        assert_outcome(&ordo, &fan, &item, &booking_id, &CANCELLED).await;
        settled.push((booking_id, &CANCELLED));
    }

    // Expiring: the deadline scan dies after the booking expired, before clearing the
    // deadline; the next process scans it again.
    ordo.set_env("ORDO_BOOKING_TIMEOUT", "1s");
    restart_crashing_after(&mut ordo, Some("expire")).await;
    let expired = book_held(&fan, &session_id).await;
    wait_for_crash(&mut ordo, "expire").await;
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "booking", &expired).await,
        EXPIRED.events
    );
    ordo.set_env("ORDO_BOOKING_TIMEOUT", "");
    restart_crashing_after(&mut ordo, None).await;
    assert_outcome(&ordo, &fan, &item, &expired, &EXPIRED).await;
    settled.push((expired, &EXPIRED));

    // A capture arriving after the booking expired is refunded, through a crash as the
    // saga turns it down.
    ordo.set_env("ORDO_BOOKING_TIMEOUT", "2s");
    ordo.set_env("ORDO_SANDBOX_DELAY", "5s");
    restart_crashing_after(&mut ordo, Some("capture_not_wanted")).await;
    let late = book_held(&fan, &session_id).await;
    let paying = start_paying(&fan, &late, "tok_success").await;
    assert_eq!(paying.map(|a| a.status), Some(202));
    wait_for_crash(&mut ordo, "capture_not_wanted").await;
    assert_cut_before_recording(ordo.pool(), &late, "capture_not_wanted").await;
    ordo.set_env("ORDO_BOOKING_TIMEOUT", "");
    ordo.set_env("ORDO_SANDBOX_DELAY", "20ms");
    restart_crashing_after(&mut ordo, None).await;
    assert_outcome(&ordo, &fan, &item, &late, &CAPTURED_TOO_LATE).await;
    settled.push((late, &CAPTURED_TOO_LATE));

    // Every seat is back, given back once.
    assert_seats(&ordo, &fan, &show_id, &item, CAPACITY, 0, 0).await;
    for (booking_id, outcome) in &settled {
        assert_outcome(&ordo, &fan, &item, booking_id, outcome).await;
    }
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_step_of_a_refund_returns_the_seats_and_the_money_once() {
    const CAPACITY: i64 = 10;
    const REFUNDED: Outcome = Outcome {
        status: "refunded",
        saga: "refunded",
        steps: &[
            "attach_payment",
            "charge_requested",
            "mark_paid",
            "commit_seats",
            "refund_payment",
            "return_seats",
            "provider_refund",
        ],
        events: &[
            "BookingRequested",
            "SeatsHeld",
            "PaymentAttached",
            "BookingPaid",
            "BookingRefunded",
        ],
        seats: &["StockReserved", "StockCommitted", "StockReturned"],
        payments: &[&["PaymentCreated", "PaymentCaptured", "PaymentRefunded"]],
    };
    let mut ordo = start(&[]).await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, CAPACITY, "Postponed").await;
    let (fan, _) = api.register("refunded@example.com").await;
    wait_available(&fan, &show_id, CAPACITY).await;
    let item = seat_item(ordo.pool(), &session_id).await;
    let mut settled: Vec<(String, &Outcome)> = Vec::new();

    for step in ["refund_payment", "return_seats", "provider_refund"] {
        let booking_id = book_held(&fan, &session_id).await;
        pay(&fan, &booking_id).await;
        assert_outcome(&ordo, &fan, &item, &booking_id, &PAID).await;
        restart_crashing_after(&mut ordo, Some(step)).await;
        admin
            .try_send(
                Method::POST,
                &format!("/api/v1/bookings/{booking_id}/refund"),
                Some(json!({"reason": "show postponed"})),
                &[],
            )
            .await;
        wait_for_crash(&mut ordo, step).await;
        assert_cut_before_recording(ordo.pool(), &booking_id, step).await;
        restart_crashing_after(&mut ordo, None).await;
        assert_outcome(&ordo, &fan, &item, &booking_id, &REFUNDED).await;
        settled.push((booking_id, &REFUNDED));
    }

    // Every seat is back on sale, returned once; every payment refunded once.
    assert_seats(&ordo, &fan, &show_id, &item, CAPACITY, 0, 0).await;
    for (booking_id, outcome) in &settled {
        assert_outcome(&ordo, &fan, &item, booking_id, outcome).await;
    }
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_whose_reserve_step_keeps_failing_is_stuck_and_resumes_after_the_fix() {
    let ordo = start(&[
        ("ORDO_CONSUMER_MAX_DELIVER", "2"),
        ("ORDO_CONSUMER_BACKOFF", "100ms"),
    ])
    .await;
    let api = ordo.api();
    let admin = api.admin().await;
    let (show_id, session_id) = show(&admin, 10, "Stuck").await;
    let (fan, _) = api.register("patient@example.com").await;
    wait_available(&fan, &show_id, 10).await;
    let item = seat_item(ordo.pool(), &session_id).await;
    // The event store refuses every reservation: the reserve step fails, inline and in the
    // saga, until an operator fixes it.
    sqlx::query(
        "CREATE FUNCTION refuse_reservation() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'the seat inventory is broken'; END; $$",
    )
    .execute(ordo.pool())
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_reservation BEFORE INSERT ON events FOR EACH ROW
         WHEN (NEW.event_type = 'StockReserved') EXECUTE FUNCTION refuse_reservation()",
    )
    .execute(ordo.pool())
    .await
    .unwrap();
    let booked = book(&fan, &session_id, SEATS_PER_BOOKING).await;
    assert_eq!(booked["status"], "pending", "{booked:?}");
    let booking_id = booked["booking_id"].as_str().unwrap().to_string();

    // The saga shows the step's error and, once the event is dead-lettered, is stuck.
    let stuck = eventually("the saga stuck", Duration::from_secs(30), || async {
        let saga = admin
            .get(&format!("/api/v1/admin/sagas/{booking_id}"))
            .await
            .body;
        (saga["status"] == "stuck").then_some(saga)
    })
    .await;
    assert!(
        stuck["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("the seat inventory is broken"),
        "{stuck:?}"
    );
    assert_eq!(
        reservation_events(ordo.pool(), &item, &booking_id).await,
        Vec::<String>::new()
    );

    // Fixed and resumed, the booking holds its seats, once.
    sqlx::query("DROP TRIGGER refuse_reservation ON events")
        .execute(ordo.pool())
        .await
        .unwrap();
    let resumed = admin
        .post(
            &format!("/api/v1/admin/sagas/{booking_id}/resume"),
            json!({}),
        )
        .await;
    assert_eq!(resumed.status, 200, "{:?}", resumed.body);
    const RESUMED_AND_HELD: Outcome = Outcome {
        steps: &["stuck", "resumed", "reserve_seats"],
        ..HELD
    };
    assert_outcome(&ordo, &fan, &item, &booking_id, &RESUMED_AND_HELD).await;
    assert_seats(&ordo, &fan, &show_id, &item, 10, 0, SEATS_PER_BOOKING).await;
    ordo.stop().await;
}
