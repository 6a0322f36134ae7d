//! The box office and ticket check-in in a real browser (headless Chromium over WebDriver)
//! against a real `ordo serve`: a fan finds a show, watches the seats available change as
//! others book, books a seat, pays before the countdown ends and sees the ticket's QR code;
//! an admin checks the ticket in from the admin console, and a second check-in is refused
//! on screen in words. An admin at the door with a camera (Chromium's fake camera playing
//! a picture of the ticket's QR code) opens the scanner, sees the camera view, and the
//! ticket is checked in from what the camera shows. Each page passes axe-core at desktop and
//! phone width.

use std::time::Duration;

use ordo_tests::browser::write_y4m;
use ordo_tests::{eventually, Browser, TestOrdo, CUSTOMER_PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

/// Creates a show through the API and answers its first session's id.
async fn create_show(admin: &ordo_tests::Api, show: Value) -> String {
    let created = admin.post("/api/v1/shows", show).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["session_ids"][0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_fan_books_and_sees_the_qr_code_and_an_admin_checks_it_in_once() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let session_id = create_show(
        &admin,
        json!({
            "title": "周杰伦 2027 世界巡回演唱会", "category": "演唱会", "city": "上海",
            "venue": "上海体育场", "description": "嘉年华",
            "sessions": [{"starts_at": "2027-08-15T11:30:00Z", "seat_areas": [
                {"area_id": "vip-a", "name": "VIP A区", "price": 128000, "currency": "CNY", "capacity": 50}
            ]}]
        }),
    )
    .await;

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

/// The fake camera's picture size.
const CAMERA: (usize, usize) = (640, 480);

/// Chromium on Linux has a `BarcodeDetector` with no QR format, so the page's scanner never
/// shows there. This stands in for the platform's detector: it draws each frame the page
/// hands it at the camera's size and answers `arguments[3]` (the ticket's payload) only
/// when the square at (`arguments[1]`, `arguments[2]`) shows, pixel for pixel (98% at
/// least), the dark and light of `arguments[0]` (the QR image, '1' dark, row by row).
/// `window.detectorLooks` counts the frames it was given, `window.detectorMatch` is the
/// share of the last one that matched.
const QR_DETECTOR_STAND_IN: &str = r#"
const [dark, left, top, payload, width, height] = arguments;
const side = Math.round(Math.sqrt(dark.length));
window.detectorLooks = 0;
window.detectorMatch = 0;
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ['qr_code']; }
  constructor(options) { this.formats = options.formats; }
  async detect(video) {
    if (!video.videoWidth || !this.formats.includes('qr_code')) return [];
    const canvas = new OffscreenCanvas(width, height);
    const paint = canvas.getContext('2d', { willReadFrequently: true });
    paint.drawImage(video, 0, 0, width, height);
    const pixels = paint.getImageData(left, top, side, side).data;
    let same = 0;
    for (let i = 0; i < side * side; i += 1) {
      if ((pixels[i * 4] < 128 ? '1' : '0') === dark[i]) same += 1;
    }
    window.detectorLooks += 1;
    window.detectorMatch = same / (side * side);
    return window.detectorMatch >= 0.98 ? [{ format: 'qr_code', rawValue: payload }] : [];
  }
};
return true;
"#;

/// Whether the camera view plays a live camera at the camera's size.
const CAMERA_VIEW_PLAYING: &str = r#"
const video = document.querySelector('#qr-video');
const track = video && video.srcObject && video.srcObject.getVideoTracks()[0];
return !!track && track.readyState === 'live' && !video.hidden && !video.paused
  && video.readyState >= 2 && video.videoWidth === arguments[0] && video.videoHeight === arguments[1];
"#;

#[tokio::test]
async fn an_admin_checks_a_ticket_in_from_the_camera() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let session_id = create_show(
        &admin,
        json!({
            "title": "五月天 诺亚方舟", "category": "演唱会", "city": "北京",
            "venue": "国家体育场", "description": "",
            "sessions": [{"starts_at": "2027-09-01T12:00:00Z", "seat_areas": [
                {"area_id": "stand-b", "name": "看台 B区", "price": 68000, "currency": "CNY", "capacity": 10}
            ]}]
        }),
    )
    .await;

    // A fan books and pays through the API; the ticket's QR code is a PNG.
    let (fan, _) = ordo.api().register("wangfang@example.com").await;
    let booked = fan
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "stand-b", "quantity": 1})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(booked.status, 202, "{:?}", booked.body);
    let booking_id = booked.body["booking_id"].as_str().unwrap().to_owned();
    eventually(
        "the booking waits for payment",
        Duration::from_secs(20),
        || async {
            let body = fan
                .get(&format!("/api/v1/bookings/{booking_id}"))
                .await
                .body;
            (body["status"] == "pending_payment").then_some(())
        },
    )
    .await;
    let paid = fan
        .send(
            Method::POST,
            &format!("/api/v1/bookings/{booking_id}/pay"),
            Some(json!({"payment_method": "alipay", "payment_token": "tok_success"})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let ticket = eventually("the booking paid", Duration::from_secs(20), || async {
        let body = fan
            .get(&format!("/api/v1/bookings/{booking_id}"))
            .await
            .body;
        (body["status"] == "paid").then(|| body["tickets"][0].clone())
    })
    .await;
    let ticket_id = ticket["ticket_id"].as_str().unwrap().to_owned();
    let payload = ticket["qr_payload"].as_str().unwrap().to_owned();
    let qr_url = ticket["qr_code"].as_str().unwrap().to_owned();
    let png = eventually("the QR image", Duration::from_secs(20), || async {
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
        Some(response.bytes().await.ok()?.to_vec())
    })
    .await;

    // The door's browser has a camera; it first shows an empty white picture.
    let (width, height) = CAMERA;
    let video = std::env::temp_dir().join(format!("ordo-camera-{}.y4m", uuid::Uuid::new_v4()));
    write_y4m(&video, width, height, &vec![255; width * height]);
    let door = Browser::open_with_camera(ordo.base_url(), &video).await;
    door.log_in_to_admin_console().await;

    // The QR image's grey levels, as the browser decodes the PNG.
    let decoded = door
        .client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            createImageBitmap(new Blob([Uint8Array.from(arguments[0])], { type: 'image/png' }))
              .then((image) => {
                const canvas = new OffscreenCanvas(image.width, image.height);
                const paint = canvas.getContext('2d');
                paint.drawImage(image, 0, 0);
                const rgba = paint.getImageData(0, 0, image.width, image.height).data;
                const grey = [];
                for (let i = 0; i < rgba.length; i += 4) grey.push(rgba[i]);
                done({ width: image.width, height: image.height, grey });
              })
              .catch((err) => done({ error: String(err) }));"#,
            vec![json!(png)],
        )
        .await
        .expect("the QR image decodes");
    let side = decoded["width"].as_u64().unwrap_or(0) as usize;
    assert!(
        side > 0 && decoded["height"] == decoded["width"],
        "the QR image is a square: {}",
        decoded["error"]
    );
    assert!(
        side <= height,
        "a {side}px QR image fits the camera's {height}px picture"
    );
    let grey: Vec<u8> = decoded["grey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|level| level.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(grey.len(), side * side);
    let dark: String = grey
        .iter()
        .map(|&level| if level < 128 { '1' } else { '0' })
        .collect();
    assert!(
        dark.contains('1') && dark.contains('0'),
        "the QR image has dark and light"
    );
    let (left, top) = ((width - side) / 2, (height - side) / 2);
    let mut picture = vec![255u8; width * height];
    for row in 0..side {
        let start = (top + row) * width + left;
        picture[start..start + side].copy_from_slice(&grey[row * side..(row + 1) * side]);
    }

    assert_eq!(
        door.script(
            QR_DETECTOR_STAND_IN,
            vec![
                json!(dark),
                json!(left),
                json!(top),
                json!(payload),
                json!(width),
                json!(height)
            ],
        )
        .await,
        json!(true)
    );
    door.view("#/check-in").await;

    // The scanner opens on the camera and looks at its frames; an empty picture reads nothing.
    door.wait_text("#qr-scan", "扫码").await;
    door.click("#qr-scan").await;
    door.wait_text("#qr-scan", "停止扫码").await;
    let size = vec![json!(width), json!(height)];
    eventually("the camera view plays", Duration::from_secs(20), || async {
        (door.script(CAMERA_VIEW_PLAYING, size.clone()).await == json!(true)).then_some(())
    })
    .await;
    eventually(
        "the scanner looks at frames",
        Duration::from_secs(20),
        || async {
            let looks = door.script("return window.detectorLooks;", vec![]).await;
            (looks.as_u64().unwrap_or(0) >= 3).then_some(())
        },
    )
    .await;
    let field = door
        .script(
            "return document.querySelector('#qr-payload').value;",
            vec![],
        )
        .await;
    assert_eq!(field, json!(""), "an empty picture fills in nothing");
    assert!(!door.has("#admitted").await, "nothing was checked in");
    door.check_accessibility("admin-check-in-camera").await;

    // Stopping the scanner ends the camera.
    door.click("#qr-scan").await;
    door.wait_text("#qr-scan", "扫码").await;
    let ended = door
        .script(
            "const v = document.querySelector('#qr-video'); \
             return v.hidden && v.srcObject.getTracks().every((t) => t.readyState === 'ended');",
            vec![],
        )
        .await;
    assert_eq!(
        ended,
        json!(true),
        "the camera view is hidden and its camera ended"
    );

    // The camera now shows the ticket's QR code: scanning again checks the ticket in.
    write_y4m(&video, width, height, &picture);
    door.click("#qr-scan").await;
    door.find("#qr-scanned").await;
    let admitted = door.wait_text("#admitted", "").await;
    assert!(
        admitted.contains(&ticket_id[..8]),
        "the page says which ticket was admitted: {admitted}"
    );
    let matched: Value = door.script("return window.detectorMatch;", vec![]).await;
    assert!(matched.as_f64().unwrap() >= 0.98, "{matched}");
    let field = door
        .script(
            "return document.querySelector('#qr-payload').value;",
            vec![],
        )
        .await;
    assert_eq!(
        field,
        json!(payload),
        "the field holds what the camera read"
    );
    let hidden = door
        .script("return document.querySelector('#qr-video').hidden;", vec![])
        .await;
    assert_eq!(hidden, json!(true), "the camera stops once a code is read");
    door.screenshot("admin-check-in-camera-admitted").await;

    // The ticket is checked in: checking it in again is refused.
    let again = admin
        .post(
            &format!("/api/v1/tickets/{ticket_id}/check-in"),
            json!({"qr_payload": payload}),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["type"], "urn:ordo:problem:already_checked_in");

    door.close().await;
    let _ = std::fs::remove_file(&video);
    ordo.stop().await;
}
