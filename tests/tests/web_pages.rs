//! Every page of the web consoles in a real browser (headless Chromium over WebDriver)
//! against a real `ordo serve`, each checked by axe-core at desktop and phone width with a
//! screenshot: the admin creates a product, restocks it, creates a coupon batch and a show
//! from the console; a customer finds the product by search and looks at the
//! notifications, bookings, coupons and orders; a provider's login, profile and payouts.

use std::time::Duration;

use ordo_tests::{eventually, Browser, TestOrdo, ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD};
use reqwest::Method;
use serde_json::json;

async fn log_in(browser: &Browser, page: &str, email: &str, password: &str) {
    browser.goto(&format!("{page}#/login")).await;
    browser.fill("#login-email", email).await;
    browser.fill("#login-password", password).await;
    browser.click("#login-submit").await;
    browser.wait_text("#who", email).await;
}

#[tokio::test]
async fn every_page_passes_the_accessibility_check_at_both_widths() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();

    // The admin works from the console.
    let desk = Browser::open(ordo.base_url()).await;
    log_in(&desk, "/admin", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    desk.view("#/catalog").await;
    desk.fill("#new-sku", "TEA-GREEN").await;
    desk.fill("#new-name", "Longjing 西湖龙井").await;
    desk.fill("#new-category", "茶叶").await;
    desk.fill("#new-price", "8800").await;
    desk.fill("#new-description", "明前龙井").await;
    desk.click("#product-form-submit").await;
    desk.wait_text("#product-form", "已创建").await;
    desk.wait_text("#catalog", "TEA-GREEN").await;
    desk.click("#catalog button.secondary").await;
    desk.wait_text("#catalog", "10 / 10").await;
    desk.check_accessibility("admin-catalog").await;
    desk.view("#/promotions").await;
    desk.fill("#batch-name", "茶叶券").await;
    desk.fill("#batch-value", "1000").await;
    desk.script(
        "document.querySelector('#batch-until').value = '2099-12-31'; return true;",
        vec![],
    )
    .await;
    desk.click("#batch-form-submit").await;
    desk.wait_text("#batches", "茶叶券").await;
    desk.check_accessibility("admin-promotions").await;
    desk.view("#/shows").await;
    desk.fill("#show-title", "天鹅湖").await;
    desk.fill("#show-category", "芭蕾").await;
    desk.fill("#show-city", "北京").await;
    desk.fill("#show-venue", "国家大剧院").await;
    desk.script(
        "document.querySelector('#show-starts').value = '2027-05-01T19:30'; return true;",
        vec![],
    )
    .await;
    desk.fill("#show-price", "38000").await;
    desk.click("#show-form-submit").await;
    desk.wait_text("#show-form", "已创建").await;
    desk.check_accessibility("admin-shows").await;
    eventually("the show listed", Duration::from_secs(30), || async {
        let shows = api.get("/api/v1/shows?city=%E5%8C%97%E4%BA%AC").await;
        (shows.body["shows"][0]["title"] == "天鹅湖").then_some(())
    })
    .await;

    // A customer has an order placed through the API; they search, then read
    // each page.
    let (customer, _) = api.register("reader@example.com").await;
    eventually(
        "the product searchable",
        Duration::from_secs(30),
        || async {
            let found = api.get("/api/v1/search?q=longjing").await;
            (found.body["results"].as_array().map(Vec::len).unwrap_or(0) > 0).then_some(())
        },
    )
    .await;
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "TEA-GREEN", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let shop = Browser::open(ordo.base_url()).await;
    log_in(&shop, "/", "reader@example.com", CUSTOMER_PASSWORD).await;
    shop.view("#/search/longjing").await;
    shop.wait_text("#results", "西湖龙井").await;
    shop.check_accessibility("shop-search").await;
    shop.view("#/shows").await;
    shop.wait_text("#show-list", "天鹅湖").await;
    shop.check_accessibility("shop-shows").await;
    for (view, name) in [
        ("#/notifications", "shop-notifications"),
        ("#/bookings", "shop-bookings"),
        ("#/coupons", "shop-coupons-empty"),
        ("#/cart", "shop-cart-empty"),
    ] {
        shop.view(view).await;
        shop.find("main h1").await;
        shop.check_accessibility(name).await;
    }
    shop.view(&format!("#/orders/{order_id}")).await;
    shop.find("#order-status[data-status='awaiting_payment']")
        .await;
    shop.click("#lang").await;
    shop.wait_text("#order-status", "awaiting payment").await;
    shop.check_accessibility("shop-order-english").await;
    desk.view(&format!("#/orders/{order_id}")).await;
    desk.wait_text("#admin-order-status", "待支付").await;
    desk.check_accessibility("admin-order").await;

    // A provider registers from the console and reads its pages.
    let provider = Browser::open(ordo.base_url()).await;
    provider.goto("/provider#/login").await;
    provider.find("#register-form").await;
    provider.check_accessibility("provider-login").await;
    provider.fill("#register-name", "赵师傅").await;
    provider.fill("#register-email", "zhao@example.com").await;
    provider.fill("#register-password", CUSTOMER_PASSWORD).await;
    provider.click("#register-submit").await;
    provider.wait_text("#who", "zhao@example.com").await;
    provider.view("#/").await;
    provider.wait_text("#verification-status", "未认证").await;
    provider.fill("#p-name", "赵师傅").await;
    provider.fill("#p-phone", "+86 10 1234567").await;
    provider.fill("#p-skills", "plumbing").await;
    provider.fill("#p-areas", "NORTH").await;
    provider.click("#p-save").await;
    provider.find("#p-saved").await;
    provider.fill("#c-name", "水管工证").await;
    provider
        .fill("#c-url", "https://files.example.com/zhao.pdf")
        .await;
    provider.click("#c-submit").await;
    provider.wait_text("main", "待审核").await;
    provider.view("#/payouts").await;
    provider.find("main h1").await;
    provider.check_accessibility("provider-payouts").await;
    let admin = ordo.admin().await;
    eventually(
        "the provider awaiting verification",
        Duration::from_secs(30),
        || async {
            let listed = admin
                .get("/api/v1/admin/providers?status=pending_verification")
                .await;
            (listed.body["providers"].as_array().map(Vec::len) == Some(1)).then_some(())
        },
    )
    .await;
    desk.view("#/providers").await;
    desk.wait_text("#providers", "plumbing").await;
    desk.check_accessibility("admin-providers").await;
    // The admin verifies the provider and approves a service order from the console.
    let provider_id = admin
        .get("/api/v1/admin/providers?status=pending_verification")
        .await
        .body["providers"][0]["provider_id"]
        .as_str()
        .unwrap()
        .to_owned();
    desk.click(&format!("[data-verify='{provider_id}']")).await;
    eventually("the provider verified", Duration::from_secs(30), || async {
        let shown = api.get(&format!("/api/v1/providers/{provider_id}")).await;
        (shown.body["verification_status"] == "verified").then_some(())
    })
    .await;
    let published = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": "修水龙头", "description": "滴水", "service_type": "plumbing",
                   "price": 5000, "currency": "CNY", "location": "NORTH", "address": "北京路 2 号"}),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let service_order = published.body["order_id"].as_str().unwrap().to_owned();
    // The admins' list of orders waiting for review is a read model: once it holds the
    // order, the page lists it with its buttons.
    eventually(
        "the order waiting for review",
        Duration::from_secs(30),
        || async {
            let listed = admin
                .get("/api/v1/admin/service-orders?status=pending_review")
                .await
                .body;
            listed["service_orders"]
                .as_array()?
                .iter()
                .any(|o| o["order_id"] == service_order.as_str())
                .then_some(())
        },
    )
    .await;
    desk.view("#/").await;
    desk.view("#/providers").await;
    desk.click(&format!("[data-approve-order='{service_order}']"))
        .await;
    desk.wait_text("#so-decided", "完成").await;
    let approved = customer
        .get(&format!("/api/v1/service-orders/{service_order}"))
        .await;
    assert_eq!(approved.body["status"], "pending", "{:?}", approved.body);
    // Delisting from the catalog.
    desk.view("#/catalog").await;
    desk.wait_text("#catalog", "在售").await;
    desk.click("#catalog tbody button.secondary:nth-of-type(2)")
        .await;
    eventually("the product delisted", Duration::from_secs(30), || async {
        let shown = api.get("/api/v1/products/TEA-GREEN").await;
        (shown.body["on_sale"] == false).then_some(())
    })
    .await;
    provider.close().await;
    shop.close().await;
    desk.close().await;
    ordo.stop().await;
}
