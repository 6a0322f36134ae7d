//! The box office and ticket check-in in a real browser (headless Chromium over WebDriver)
//! against a real `ordo serve`: a fan finds a show, watches the seats available change as
//! others book, books a seat, pays before the countdown ends and sees the ticket's QR code;
//! an admin checks the ticket in from the admin console, and a second check-in is refused
//! on screen in words. Each page passes axe-core at desktop and phone width.

use ordo_tests::{Browser, TestOrdo, CUSTOMER_PASSWORD};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_fan_books_and_sees_the_qr_code_and_an_admin_checks_it_in_once() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/shows",
            json!({
                "title": "周杰伦 2027 世界巡回演唱会", "category": "演唱会", "city": "上海",
                "venue": "上海体育场", "description": "嘉年华",
                "sessions": [{"starts_at": "2027-08-15T11:30:00Z", "seat_areas": [
                    {"area_id": "vip-a", "name": "VIP A区", "price": 128000, "currency": "CNY", "capacity": 50}
                ]}]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let session_id = created.body["session_ids"][0].as_str().unwrap().to_owned();

    // The fan registers and finds the show by city.
    let fan = Browser::open(ordo.base_url()).await;
    fan.goto("/#/register").await;
    fan.fill("#register-name", "李华").await;
    fan.fill("#register-email", "lihua@example.com").await;
    fan.fill("#register-password", CUSTOMER_PASSWORD).await;
    fan.click("#register-submit").await;
    fan.wait_text("#who", "lihua@example.com").await;
    fan.view("#/shows").await;
    fan.fill("#show-city", "上海").await;
    fan.click("#show-filter").await;
    fan.wait_text("#show-list", "周杰伦").await;
    fan.check_accessibility("box-office-shows").await;
    fan.click("#show-list a").await;
    fan.wait_text("#sessions [data-area='vip-a']", "50").await;
    fan.check_accessibility("box-office-show").await;

    // Another fan books two seats: the count on the page follows without a reload.
    let other = ordo.customer("other@example.com").await;
    let booked = other
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": 2})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(booked.status, 202, "{:?}", booked.body);
    fan.wait_text("#sessions [data-area='vip-a']", "48").await;

    // The fan books one seat, sees the countdown, pays and gets the ticket's QR code.
    fan.click("[data-book='vip-a']").await;
    fan.find("#booking-status[data-status='pending_payment']")
        .await;
    fan.find("#countdown").await;
    fan.check_accessibility("box-office-booking").await;
    fan.click("#pay-booking").await;
    fan.find("#tickets img").await;
    let loaded = ordo_tests::eventually(
        "the QR code image decoded",
        std::time::Duration::from_secs(20),
        || async {
            let width = fan
                .script(
                    "const i = document.querySelector('#tickets img'); return i && i.complete ? i.naturalWidth : 0;",
                    vec![],
                )
                .await;
            (width.as_u64().unwrap_or(0) > 0).then_some(width)
        },
    )
    .await;
    assert!(
        loaded.as_u64().unwrap() >= 21,
        "a QR code is at least 21 modules wide"
    );
    fan.wait_text("#tickets", "未检票").await;
    fan.check_accessibility("box-office-tickets").await;
    let payload = fan
        .script(
            "return document.querySelector('#tickets .payload').textContent;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(payload.split('|').count(), 4, "{payload}");

    // The admin checks the ticket in by pasting the payload; a second time is refused.
    let door = Browser::open(ordo.base_url()).await;
    door.goto("/admin#/check-in").await;
    door.fill("#login-email", ordo_tests::ADMIN_EMAIL).await;
    door.fill("#login-password", ordo_tests::ADMIN_PASSWORD)
        .await;
    door.click("#login-submit").await;
    door.wait_text("#who", ordo_tests::ADMIN_EMAIL).await;
    door.view("#/check-in").await;
    door.fill("#qr-payload", &payload).await;
    door.click("#check-in-form-submit").await;
    door.find("#admitted").await;
    door.check_accessibility("admin-check-in").await;
    door.click("#check-in-form-submit").await;
    let refused = door
        .wait_text(
            "#check-in-form .problem[data-code='already_checked_in']",
            "",
        )
        .await;
    assert!(!refused.trim().is_empty(), "the refusal is said in words");
    door.screenshot("admin-check-in-refused").await;

    // The fan's page, opened again, shows the ticket admitted.
    fan.client.refresh().await.unwrap();
    fan.wait_text("#tickets", "已检票").await;
    door.close().await;
    fan.close().await;
    ordo.stop().await;
}
