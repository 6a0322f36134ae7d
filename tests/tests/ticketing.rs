//! End to end: ticketing through HTTP against real Postgres and NATS — browsing, booking,
//! paying, tickets and check-in; expiry, cancellation and refund returning seats; the
//! per-booking limit; a flash sale that must never oversell; rate limits.

use std::sync::Arc;
use std::time::Duration;

use ordo_tests::{
    delete_streams, eventually, unique_namespace, Api, OrdoProcess, SpawnOptions, TestDatabase,
};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

struct World {
    _db: TestDatabase,
    ordo: OrdoProcess,
    namespace: String,
    pool: PgPool,
}

impl World {
    async fn start(env: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create().await.expect("database");
        let namespace = unique_namespace();
        let mut all: Vec<(String, String)> = [
            ("ORDO_SANDBOX_DELAY", "20ms"),
            ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
            ("ORDO_CONSUMER_ACK_WAIT", "2s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let ordo = OrdoProcess::spawn(&db.url, &namespace, SpawnOptions { env: all })
            .await
            .expect("ordo serve starts");
        let pool = db.pool().await.expect("pool");
        Self {
            _db: db,
            ordo,
            namespace,
            pool,
        }
    }

    async fn stop(mut self) {
        self.pool.close().await;
        self.ordo.kill().await;
        delete_streams(&self.namespace).await;
    }
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
    let world = World::start(&[]).await;
    let api = world.ordo.api();
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
    assert_eq!(forged.status, 422, "{:?}", forged.body);
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
    world.stop().await;
}

#[tokio::test]
async fn unpaid_bookings_expire_and_their_seats_return() {
    let world = World::start(&[("ORDO_BOOKING_TIMEOUT", "1s")]).await;
    let api = world.ordo.api();
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
    world.stop().await;
}

#[tokio::test]
async fn a_paid_booking_is_completed_seven_days_after_its_session() {
    let world = World::start(&[("ORDO_DEADLINE_SCAN_INTERVAL", "200ms")]).await;
    let api = world.ordo.api();
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
    world.stop().await;
}

#[tokio::test]
async fn cancel_and_refund_return_seats_and_invalidate_tickets() {
    let world = World::start(&[]).await;
    let api = world.ordo.api();
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
    world.stop().await;
}

#[tokio::test]
async fn a_booking_of_more_than_six_seats_is_refused() {
    let world = World::start(&[]).await;
    let api = world.ordo.api();
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
    assert_eq!(unknown.status, 422);
    assert_eq!(available(&fan, &show_id).await, 10);
    world.stop().await;
}

#[tokio::test]
async fn a_flash_sale_of_two_thousand_fans_for_fifty_seats_never_oversells() {
    const FANS: usize = 2_000;
    const SEATS: i64 = 50;
    let world = World::start(&[
        ("ORDO_RATE_LIMIT_PER_IP", "0"),
        ("ORDO_RATE_LIMIT_PER_USER", "0"),
        ("ORDO_DATABASE_MAX_CONNECTIONS", "32"),
    ])
    .await;
    let api = world.ordo.api();
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
    .fetch_all(&world.pool)
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
    let pool = world.pool.clone();
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
                // Every recorded booking is decided: the seats' holders, and those refused
                // by the reservation itself after passing the sold-out check.
                let held = rows.iter().find(|r| r.0 == "pending_payment").map(|r| r.1);
                let undecided = rows.iter().any(|r| r.0 == "pending");
                let recorded_rejections: i64 =
                    rows.iter().filter(|r| r.0 == "rejected").map(|r| r.1).sum();
                (held == Some(SEATS) && !undecided && recorded_rejections <= FANS as i64 - SEATS)
                    .then_some(())
            }
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test]
async fn clients_over_their_rate_limit_get_429_with_retry_after() {
    let world = World::start(&[
        ("ORDO_RATE_LIMIT_PER_IP", "10"),
        ("ORDO_RATE_LIMIT_PER_IP_BURST", "20"),
    ])
    .await;
    let api = world.ordo.api();
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
    world.stop().await;
}
