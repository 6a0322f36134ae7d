//! The provider console in a real browser (headless Chromium over WebDriver) against a
//! real `ordo serve`: two verified providers watch their matching orders; an order is
//! approved and appears on both screens without a reload; both accept at once, and one is
//! told it won while the other is told, in words, that another provider was first. A
//! provider opens an order they won and paid for, starts and completes it with the page's
//! buttons and sees its status follow, then its payout once the customer confirms. Each
//! page passes axe-core at desktop and phone width.

use std::time::Duration;

use ordo_tests::{eventually, Api, Browser, Customer, TestOrdo, CUSTOMER_PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

async fn verified_provider(ordo: &TestOrdo, admin: &Api, email: &str) -> Customer {
    let provider = ordo.provider(email).await;
    let profile = provider
        .send(
            Method::PUT,
            "/api/v1/providers/me/profile",
            Some(json!({"full_name": "张师傅", "phone": "+86 21 1234567",
                        "skills": ["plumbing"], "service_areas": ["NORTH"], "bio": "修水管"})),
            &[],
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let certified = provider
        .post(
            "/api/v1/providers/me/certifications",
            json!({"name": "高级水管工", "file_url": "https://files.example.com/cert.pdf"}),
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
    provider
}

/// A plumbing order of 80.00 CNY titled `title`, published by `customer` and approved by
/// `admin`, so that the matching providers see it; answers its id.
async fn approved_order(customer: &Api, admin: &Api, title: &str) -> String {
    let published = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": title, "description": "整夜滴水", "service_type": "plumbing",
                   "price": 8000, "currency": "CNY", "location": "NORTH", "address": "北京路 1 号"}),
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
    order_id
}

/// The service order `order_id` as `api` reads it, once `ready` holds of it.
async fn service_order_when(
    api: &Api,
    order_id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, Duration::from_secs(30), || async {
        let answer = api.get(&format!("/api/v1/service-orders/{order_id}")).await;
        (answer.status == 200 && ready(&answer.body)).then_some(answer.body)
    })
    .await
}

/// What the screen said of the acceptance: `won` or `lost`, and its words.
async fn outcome(browser: &Browser, item: &str) -> (String, String) {
    let element = browser.find(item).await;
    (
        element
            .attr("data-outcome")
            .await
            .unwrap()
            .unwrap_or_default(),
        element.text().await.unwrap_or_default(),
    )
}

async fn log_in(browser: &Browser, email: &str) {
    browser.goto("/provider#/login").await;
    browser.fill("#login-email", email).await;
    browser.fill("#login-password", CUSTOMER_PASSWORD).await;
    browser.click("#login-submit").await;
    browser.wait_text("#who", email).await;
}

#[tokio::test]
async fn two_providers_race_for_an_order_on_screen_and_the_loser_is_told_why() {
    let ordo = TestOrdo::with_env(&[("ORDO_SANDBOX_DELAY", "20ms")]).await;
    let admin = ordo.admin().await;
    let first = verified_provider(&ordo, &admin, "zhang@example.com").await;
    let second = verified_provider(&ordo, &admin, "wang@example.com").await;
    let customer = ordo.customer("customer@example.com").await;

    let left = Browser::open(ordo.base_url()).await;
    let right = Browser::open(ordo.base_url()).await;
    log_in(&left, &first.email).await;
    log_in(&right, &second.email).await;
    left.view("#/").await;
    left.wait_text("#verification-status", "已认证").await;
    left.check_accessibility("provider-profile").await;
    for browser in [&left, &right] {
        browser.view("#/matching").await;
        browser.find("#matching").await;
    }

    // A customer's order is approved: it arrives on both screens.
    let order_id = approved_order(&customer, &admin, "厨房水槽漏水").await;
    let button = format!("[data-accept='{order_id}']");
    left.find(&button).await;
    right.find(&button).await;
    left.check_accessibility("provider-matching").await;

    // Both accept at once: one wins, the other is told it lost the race.
    tokio::join!(left.click(&button), right.click(&button));
    let item = format!("[data-order='{order_id}'] [data-outcome]");
    let (left_outcome, left_text) = outcome(&left, &item).await;
    let (right_outcome, right_text) = outcome(&right, &item).await;
    let mut outcomes = vec![left_outcome.clone(), right_outcome.clone()];
    outcomes.sort();
    assert_eq!(outcomes, ["lost", "won"], "{left_text} / {right_text}");
    let (winner, loser_text) = if left_outcome == "won" {
        (&first, right_text)
    } else {
        (&second, left_text)
    };
    assert!(loser_text.contains("其他服务者"), "{loser_text}");
    let loser_browser = if left_outcome == "won" { &right } else { &left };
    loser_browser
        .check_accessibility("provider-race-lost")
        .await;

    // Ordo gave the order to the one whose screen said so.
    let order = customer
        .get(&format!("/api/v1/service-orders/{order_id}"))
        .await;
    assert_eq!(
        order.body["provider_id"],
        winner.user_id.as_str(),
        "{:?}",
        order.body
    );
    let winner_browser = if left_outcome == "won" { &left } else { &right };
    winner_browser.view("#/orders").await;
    winner_browser.wait_text("#my-orders", "厨房水槽漏水").await;
    winner_browser.check_accessibility("provider-orders").await;
    left.close().await;
    right.close().await;
    ordo.stop().await;
}

#[tokio::test]
async fn a_provider_starts_and_completes_a_won_order_on_its_page_and_sees_the_payout() {
    let ordo = TestOrdo::with_env(&[("ORDO_SANDBOX_DELAY", "20ms")]).await;
    let admin = ordo.admin().await;
    let provider = verified_provider(&ordo, &admin, "li@example.com").await;
    let customer = ordo.customer("customer@example.com").await;

    // The provider won the order and the customer paid for it.
    let order_id = approved_order(&customer, &admin, "卫生间换龙头").await;
    let accepted = provider
        .post(
            &format!("/api/v1/service-orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let paid = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    service_order_when(&provider, &order_id, "the order paid", |o| {
        o["status"] == "paid"
    })
    .await;

    // From the list of their orders, the provider opens it: paid, ready to start.
    let browser = Browser::open(ordo.base_url()).await;
    log_in(&browser, &provider.email).await;
    browser.view("#/orders").await;
    browser
        .click(&format!("#my-orders a[href='#/orders/{order_id}']"))
        .await;
    browser.wait_text("main h1", "卫生间换龙头").await;
    browser.find("#so-status[data-status='paid']").await;
    browser.wait_text("#so-status", "已支付").await;
    assert!(
        !browser.has("#so-complete").await,
        "nothing to complete yet"
    );
    browser.check_accessibility("provider-order-paid").await;

    // Start: the page says the work is in progress, and so does Ordo.
    browser.click("#so-start").await;
    browser.find("#so-status[data-status='in_progress']").await;
    browser.wait_text("#so-status", "服务中").await;
    assert!(!browser.has("#so-start").await, "started only once");
    let started = provider
        .get(&format!("/api/v1/service-orders/{order_id}"))
        .await;
    assert_eq!(started.body["status"], "in_progress", "{:?}", started.body);

    // Complete: the page says it waits for the customer, and so does Ordo.
    browser.click("#so-complete").await;
    browser.find("#so-status[data-status='done']").await;
    browser.wait_text("#so-status", "待客户确认").await;
    assert!(!browser.has("#so-complete").await, "completed only once");
    let completed = provider
        .get(&format!("/api/v1/service-orders/{order_id}"))
        .await;
    assert_eq!(completed.body["status"], "done", "{:?}", completed.body);
    browser.check_accessibility("provider-order-done").await;

    // The customer confirms: the order page shows the payout released to the provider.
    let confirmed = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let released = service_order_when(&provider, &order_id, "the payout", |o| {
        !o["payout"].is_null()
    })
    .await;
    assert_eq!(released["payout"]["amount"], 8000, "{released}");
    browser.view("#/orders").await;
    browser
        .click(&format!("#my-orders a[href='#/orders/{order_id}']"))
        .await;
    browser.find("#so-status[data-status='completed']").await;
    browser.wait_text("#payout", "80.00").await;
    browser.check_accessibility("provider-order-paid-out").await;
    browser.close().await;
    ordo.stop().await;
}
