//! Reviews, after-sales and refund requests in a real browser (headless Chromium over
//! WebDriver) against a real `ordo serve`: a customer reviews a line of a delivered order
//! and sees the product's rating follow, writes a follow-up, reports a review, asks for a
//! return of one unit, withdraws another request and, once the return is approved, sends
//! the goods back; a fan asks for a refund of a paid booking and withdraws it; a provider
//! reads their rating. Each page passes axe-core at desktop and phone width.

use std::time::Duration;

use ordo_tests::{eventually, Api, Browser, TestOrdo, CUSTOMER_PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_SANDBOX_CARRIER_DELAY", "200ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
    ("ORDO_REVIEW_HIDE_AFTER_REPORTS", "3"),
];

async fn order(api: &Api, order_id: &str) -> Value {
    api.get(&format!("/api/v1/orders/{order_id}")).await.body
}

/// A delivered order of two MUGs by `customer`: placed, paid, picked and shipped with the
/// sandbox carrier, which then delivers it.
async fn delivered_order(admin: &Api, customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "MUG", "quantity": 2}]})),
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
    for (step, body) in [
        ("pick", json!({})),
        (
            "ship",
            json!({"carrier": "sandbox", "tracking_no": "SBX-WEB"}),
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
    eventually("the order delivered", Duration::from_secs(30), || async {
        (order(customer, &order_id).await["status"] == "delivered").then_some(())
    })
    .await;
    order_id
}

async fn log_in(browser: &Browser, page: &str, email: &str) {
    browser.goto(&format!("{page}#/login")).await;
    browser.fill("#login-email", email).await;
    browser.fill("#login-password", CUSTOMER_PASSWORD).await;
    browser.click("#login-submit").await;
    browser.wait_text("#who", email).await;
}

/// Chooses `value` in the select `css`.
async fn choose(browser: &Browser, css: &str, value: &str) {
    browser.find(css).await;
    browser
        .script(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change')); return s.value;",
            vec![json!(css), json!(value)],
        )
        .await;
}

/// The statuses the after-sales list shows, newest first.
async fn aftersale_statuses(browser: &Browser) -> Vec<String> {
    let answer = browser
        .script(
            "return [...document.querySelectorAll('#aftersales-list .aftersale-status')]\
             .map((n) => n.dataset.status);",
            vec![],
        )
        .await;
    serde_json::from_value(answer).unwrap_or_default()
}

#[tokio::test]
async fn a_customer_reviews_follows_up_and_asks_for_after_sales_on_screen() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "MUG", "name": "青花瓷杯", "category": "kitchen", "price": 1200, "currency": "CNY"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/MUG/restock", json!({"quantity": 20}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let buyer = ordo.customer("buyer@example.com").await;
    let order_id = delivered_order(&admin, &buyer.api).await;

    let shop = Browser::open(ordo.base_url()).await;
    log_in(&shop, "/", &buyer.email).await;

    // Before any review the product says so.
    shop.view("#/product/MUG").await;
    shop.wait_text("#rating-total", "0").await;
    shop.wait_text("#product-reviews", "暂无评价").await;
    shop.check_accessibility("shop-product-no-reviews").await;

    // The delivered order offers confirming receipt, a review of its line and after-sales.
    shop.view(&format!("#/orders/{order_id}")).await;
    shop.find("#confirm-receipt").await;
    shop.find("#review-submit-MUG").await;
    shop.find("#aftersale-form").await;
    shop.wait_text("#aftersales-list", "暂无售后申请").await;
    shop.check_accessibility("shop-order-delivered").await;

    choose(&shop, "#review-rating-MUG", "4").await;
    shop.fill("#review-comment-MUG", "杯子很好看, 就是有点小")
        .await;
    shop.click("#review-submit-MUG").await;
    shop.wait_text("#review-status-MUG", "已发布").await;

    // The follow-up, once; then the form is gone.
    shop.fill("#follow-up-comment-MUG", "用了一个月, 依然很好")
        .await;
    shop.click("#follow-up-submit-MUG").await;
    shop.find("#followed-up-MUG").await;
    assert!(!shop.has("#follow-up-MUG").await, "one follow-up only");
    shop.check_accessibility("shop-order-reviewed").await;

    // The product page shows the review and the rating it makes.
    shop.view("#/product/MUG").await;
    shop.wait_text("#rating-total", "1").await;
    shop.wait_text("#rating-average", "4").await;
    shop.wait_text("#rating-distribution [data-stars='4']", ": 1")
        .await;
    shop.wait_text("#product-reviews", "杯子很好看").await;
    shop.check_accessibility("shop-product-reviewed").await;
    let review_id = buyer.get("/api/v1/products/MUG/reviews").await.body["reviews"][0]["review_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the follow-up listed", Duration::from_secs(20), || async {
        let page = buyer.get("/api/v1/products/MUG/reviews").await.body;
        (page["reviews"][0]["follow_up"] == "用了一个月, 依然很好").then_some(())
    })
    .await;

    // A report is taken and said.
    shop.click(&format!("[data-report='{review_id}']")).await;
    shop.wait_text(&format!("[data-reported='{review_id}']"), "已举报")
        .await;

    // A return of one unit, and a refund of the other that is then withdrawn.
    shop.view(&format!("#/orders/{order_id}")).await;
    choose(&shop, "#aftersale-kind", "return_refund").await;
    shop.fill("#aftersale-quantity-MUG", "1").await;
    shop.fill("#aftersale-reason", "杯口有裂纹").await;
    shop.click("#aftersale-submit").await;
    shop.wait_text("#aftersales-list", "退货退款").await;
    shop.wait_text("#aftersales-list", "已申请").await;
    choose(&shop, "#aftersale-kind", "refund_only").await;
    shop.fill("#aftersale-quantity-MUG", "1").await;
    shop.fill("#aftersale-reason", "买多了").await;
    shop.click("#aftersale-submit").await;
    shop.wait_text("#aftersales-list", "仅退款").await;
    eventually("two requests listed", Duration::from_secs(20), || async {
        (aftersale_statuses(&shop).await.len() == 2).then_some(())
    })
    .await;
    shop.check_accessibility("shop-order-aftersales").await;
    let requests = buyer.get("/api/v1/aftersales").await.body;
    let listed = requests["aftersales"].as_array().unwrap();
    let refund_only = listed.iter().find(|r| r["kind"] == "refund_only").unwrap()["aftersale_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let return_refund = listed
        .iter()
        .find(|r| r["kind"] == "return_refund")
        .unwrap()["aftersale_id"]
        .as_str()
        .unwrap()
        .to_owned();
    shop.click(&format!("[data-withdraw='{refund_only}']"))
        .await;
    shop.wait_text(
        &format!("[data-aftersale='{refund_only}'] .aftersale-status"),
        "已撤销",
    )
    .await;
    assert!(
        !shop.has(&format!("[data-withdraw='{refund_only}']")).await,
        "a withdrawn request cannot be withdrawn again"
    );

    // The shop approves the return: the page, still open, asks for the parcel.
    let approved = admin
        .post(
            &format!("/api/v1/admin/aftersales/{return_refund}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let parcel = format!("[data-return='{return_refund}']");
    shop.find(&parcel).await;
    shop.wait_text(
        &format!("[data-aftersale='{return_refund}'] .aftersale-status"),
        "待寄回",
    )
    .await;
    shop.check_accessibility("shop-order-awaiting-return").await;
    shop.fill(&format!("{parcel} input[id^='return-carrier']"), "sandbox")
        .await;
    shop.fill(&format!("{parcel} input[id^='return-tracking']"), "RET-1")
        .await;
    shop.click(&format!("{parcel} button[type='submit']")).await;
    shop.wait_text(
        &format!("[data-aftersale='{return_refund}']"),
        "已寄回: sandbox RET-1",
    )
    .await;
    shop.screenshot("shop-order-return-sent").await;

    // Confirming receipt completes the order.
    shop.click("#confirm-receipt").await;
    shop.wait_text("#order-status", "已完成").await;
    shop.find("#receipt-confirmed").await;
    shop.close().await;
    ordo.stop().await;
}

#[tokio::test]
async fn a_fan_requests_a_refund_of_a_paid_booking_and_withdraws_it_on_screen() {
    let ordo = TestOrdo::with_env(FAST).await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/shows",
            json!({
                "title": "五月天 2027 巡回演唱会", "category": "演唱会", "city": "北京",
                "venue": "国家体育场", "description": "夏日",
                "sessions": [{"starts_at": "2027-07-01T11:30:00Z", "seat_areas": [
                    {"area_id": "vip-a", "name": "VIP A区", "price": 88000, "currency": "CNY", "capacity": 20}
                ]}]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let session_id = created.body["session_ids"][0].as_str().unwrap().to_owned();
    let fan = ordo.customer("fan@example.com").await;
    let booked = fan
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "vip-a", "quantity": 1})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(booked.status, 202, "{:?}", booked.body);
    let booking_id = booked.body["booking_id"].as_str().unwrap().to_owned();
    eventually("the seat held", Duration::from_secs(20), || async {
        let b = fan
            .get(&format!("/api/v1/bookings/{booking_id}"))
            .await
            .body;
        (b["status"] == "pending_payment").then_some(())
    })
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
    eventually("the booking paid", Duration::from_secs(20), || async {
        let b = fan
            .get(&format!("/api/v1/bookings/{booking_id}"))
            .await
            .body;
        (b["status"] == "paid").then_some(())
    })
    .await;

    let browser = Browser::open(ordo.base_url()).await;
    log_in(&browser, "/", &fan.email).await;
    browser.view(&format!("#/bookings/{booking_id}")).await;
    browser.wait_text("#booking-status", "已支付").await;
    browser.find("#refund-form").await;
    browser.check_accessibility("box-office-refund-form").await;
    browser.fill("#refund-reason", "临时出差, 去不了").await;
    browser.click("#refund-submit").await;
    browser.wait_text("#refund-status", "已申请").await;
    browser.wait_text("#refund-request", "临时出差").await;
    browser.find("#refund-withdraw").await;
    browser
        .check_accessibility("box-office-refund-requested")
        .await;
    browser.click("#refund-withdraw").await;
    browser.wait_text("#refund-status", "已撤销").await;
    // Withdrawn, the booking may be asked about again.
    browser.find("#refund-form").await;
    browser.screenshot("box-office-refund-withdrawn").await;
    let now = fan
        .get(&format!("/api/v1/bookings/{booking_id}"))
        .await
        .body;
    assert_eq!(now["status"], "paid", "{now}");
    assert_eq!(now["refund_request"]["status"], "withdrawn", "{now}");
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test]
async fn a_provider_reads_their_rating_and_reviews() {
    let ordo = TestOrdo::with_env(FAST).await;
    let provider = ordo.provider("rated@example.com").await;
    let browser = Browser::open(ordo.base_url()).await;
    log_in(&browser, "/provider", &provider.email).await;

    // Before the profile is saved there is nothing rated yet, and the view says so.
    browser.click("#nav-my_rating").await;
    browser.wait_text("#pr-total", "0").await;
    browser.wait_text("#pr-average", "暂无评分").await;

    // A verified provider does a job; the customer confirms it and reviews it.
    let admin = ordo.admin().await;
    let profile = provider
        .send(
            Method::PUT,
            "/api/v1/providers/me/profile",
            Some(json!({"full_name": "王师傅", "phone": "+86 21 7654321",
                        "skills": ["cleaning"], "service_areas": ["EAST"], "bio": "保洁"})),
            &[],
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let certified = provider
        .post(
            "/api/v1/providers/me/certifications",
            json!({"name": "保洁师", "file_url": "https://files.example.com/cert.pdf"}),
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
    let customer = ordo.customer("household@example.com").await;
    let published = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": "厨房深度保洁", "description": "油烟机和灶台",
                   "service_type": "cleaning", "price": 30000, "currency": "CNY",
                   "location": "EAST", "address": "1 号"}),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let job = published.body["order_id"].as_str().unwrap().to_owned();
    let path = |action: &str| format!("/api/v1/service-orders/{job}/{action}");
    let approved = admin
        .post(
            &format!("/api/v1/admin/service-orders/{job}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let accepted = provider.post(&path("accept"), json!({})).await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let paid = customer
        .post(
            &path("pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    eventually("the job paid", Duration::from_secs(30), || async {
        let o = customer.get(&format!("/api/v1/service-orders/{job}")).await;
        (o.body["status"] == "paid").then_some(())
    })
    .await;
    for (api, action) in [
        (&provider.api, "start"),
        (&provider.api, "complete"),
        (&customer.api, "confirm"),
    ] {
        let answer = api.post(&path(action), json!({})).await;
        assert_eq!(answer.status, 200, "{action}: {:?}", answer.body);
    }
    let reviewed = customer
        .post(
            &path("review"),
            json!({"rating": 4, "comment": "干净利落",
                   "dimensions": {"professionalism": 5, "attitude": 4, "punctuality": 3}}),
        )
        .await;
    assert_eq!(reviewed.status, 200, "{:?}", reviewed.body);
    eventually("the review counted", Duration::from_secs(20), || async {
        let shown = ordo
            .api()
            .get(&format!("/api/v1/providers/{}", provider.user_id))
            .await;
        (shown.body["rating"]["total_reviews"] == 1).then_some(())
    })
    .await;

    browser.view("#/").await;
    browser.find("#verification-status").await;
    browser.click("#nav-my_rating").await;
    browser.wait_text("#pr-total", "1").await;
    browser.wait_text("#pr-average", "4").await;
    browser.wait_text("#pr-professionalism", "5").await;
    browser.wait_text("#pr-attitude", "4").await;
    browser.wait_text("#pr-punctuality", "3").await;
    browser.wait_text("#pr-completed", "1").await;
    browser
        .wait_text("#pr-distribution [data-stars='4']", ": 1")
        .await;
    browser.check_accessibility("provider-rating").await;
    browser.close().await;
    ordo.stop().await;
}
