//! The storefront in a real browser (headless Chromium over WebDriver) against a real
//! `ordo serve`: the pages are served with their policy and switch language; a guest adds
//! to the cart, registers, sees the cart merged, claims a coupon, adds an address, checks
//! out with both, pays
//! with the sandbox provider, sees the order paid and its notifications arrive live with an
//! unread count; a customer searches and narrows the results to one category with a facet
//! link. Every page passes axe-core at desktop and phone width; screenshots land in the
//! target directory.

use std::time::Duration;

use ordo_tests::{eventually, Api, Browser, TestOrdo};
use serde_json::json;

async fn product(admin: &Api, sku: &str, name: &str, category: &str, price: i64, stock: i64) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": name, "description": "一件好东西", "category": category,
                   "price": price, "currency": "CNY"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            &format!("/api/v1/inventory/{sku}/restock"),
            json!({"quantity": stock}),
        )
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
}

#[tokio::test]
async fn pages_are_served_with_their_policy_and_speak_chinese_then_english() {
    let ordo = TestOrdo::start().await;
    let client = reqwest::Client::new();
    for path in ["/", "/provider", "/admin"] {
        let page = client
            .get(format!("{}{path}", ordo.base_url()))
            .send()
            .await
            .expect("page answered");
        assert_eq!(page.status(), 200, "{path}");
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(
            page.text().await.unwrap().contains("<main id=\"main\""),
            "{path}"
        );
    }
    // The API and the probes are not shadowed by the pages.
    let missing = client
        .get(format!("{}/api/v1/no-such-route", ordo.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let health = client
        .get(format!("{}/healthz", ordo.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let browser = Browser::open(ordo.base_url()).await;
    browser.goto("/#/login").await;
    browser.wait_text("#login-heading", "登录").await;
    assert_eq!(
        browser
            .script("return document.documentElement.lang;", vec![])
            .await,
        json!("zh-CN")
    );
    browser.click("#lang").await;
    browser.wait_text("#login-heading", "Log in").await;
    assert_eq!(
        browser
            .script("return document.documentElement.lang;", vec![])
            .await,
        json!("en")
    );
    // A wrong password is told in words, on the page.
    browser.fill("#login-email", "nobody@example.com").await;
    browser.fill("#login-password", "Wrong-pass-123").await;
    browser.click("#login-submit").await;
    browser.find("#login-form .problem").await;
    browser.check_accessibility("shop-login").await;
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test]
async fn a_guest_shops_registers_merges_the_cart_and_pays_with_a_coupon() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "MUG-BLUE", "蓝色马克杯", "家居", 1000, 10).await;
    let batch = admin
        .post(
            "/api/v1/admin/coupon-batches",
            json!({"name": "新人券", "kind": "amount_off", "value": 500, "min_spend": 1000,
                   "quota": 10, "per_user_limit": 1, "currency": "CNY",
                   "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(batch.status, 201, "{:?}", batch.body);
    let batch_id = batch.body["batch_id"].as_str().unwrap().to_owned();

    let browser = Browser::open(ordo.base_url()).await;
    // A guest browses the catalog and adds two mugs.
    browser.goto("/").await;
    browser.wait_text("#products", "蓝色马克杯").await;
    browser.check_accessibility("shop-catalog").await;
    browser.click("#products [data-sku='MUG-BLUE'] a").await;
    browser.wait_text("#stock", "10").await;
    browser.fill("#quantity", "2").await;
    browser.click("#add-to-cart").await;
    browser.find("#added").await;
    browser.check_accessibility("shop-product").await;
    browser.view("#/cart").await;
    browser.wait_text("#cart-lines", "MUG-BLUE").await;
    browser.wait_text("#total", "20.00").await;
    browser.check_accessibility("shop-cart-guest").await;

    // The guest registers from the cart; the guest cart joins the new account's.
    browser.click("#cart-register").await;
    browser.fill("#register-name", "王小明").await;
    browser
        .fill("#register-email", "xiaoming@example.com")
        .await;
    browser.fill("#register-password", "Secure-pass-123").await;
    browser.check_accessibility("shop-register").await;
    browser.click("#register-submit").await;
    browser.wait_text("#status", "已合并").await;
    browser.wait_text("#who", "xiaoming@example.com").await;
    browser.wait_text("#cart-lines", "MUG-BLUE").await;
    let customer = ordo.api();
    let login = customer
        .post(
            "/api/v1/auth/login",
            json!({"email": "xiaoming@example.com", "password": "Secure-pass-123"}),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let mut customer = customer.clone();
    customer.token = login.body["access_token"].as_str().map(str::to_owned);
    let cart = customer.get("/api/v1/cart").await;
    assert_eq!(cart.body["items"][0]["sku"], "MUG-BLUE", "{:?}", cart.body);
    assert_eq!(cart.body["items"][0]["quantity"], 2, "{:?}", cart.body);

    // A coupon is claimed on the coupons page.
    browser.view("#/coupons").await;
    browser.fill("#claim-batch", &batch_id).await;
    browser.click("#claim").await;
    browser.find("#claimed").await;
    browser.wait_text("#coupon-list", "新人券").await;
    browser.check_accessibility("shop-coupons").await;

    // Checkout: the preview shows the coupon taken off; the order is placed and paid.
    browser.view("#/checkout").await;
    browser.click("main details summary").await;
    browser.fill("#addr-recipient", "王小明").await;
    browser.fill("#addr-phone", "+86 21 5555 0000").await;
    browser.fill("#addr-province", "上海").await;
    browser.fill("#addr-city", "上海").await;
    browser.fill("#addr-detail", "南京西路 1 号").await;
    browser.click("#addr-save").await;
    browser.wait_text("#address", "南京西路 1 号").await;
    browser
        .script(
            "const s = document.querySelector('#address'); s.selectedIndex = 1; return s.value;",
            vec![],
        )
        .await;
    browser
        .click("#coupon-choices input[type='checkbox']")
        .await;
    browser.click("#preview").await;
    browser.wait_text("#quote #total", "15.00").await;
    browser.check_accessibility("shop-checkout").await;
    browser.click("#place-order").await;
    browser
        .find("#order-status[data-status='awaiting_payment']")
        .await;
    browser
        .check_accessibility("shop-order-awaiting-payment")
        .await;
    browser.click("#pay").await;
    browser.find("#order-status[data-status='paid']").await;
    browser.wait_text("#order-status", "已支付").await;
    browser.screenshot("shop-order-paid").await;

    // What the page showed is what Ordo holds.
    let orders = customer.get("/api/v1/orders").await;
    let order = &orders.body["orders"][0];
    assert_eq!(order["status"], "paid", "{:?}", orders.body);
    assert_eq!(order["total"], 1500, "{:?}", orders.body);
    assert_eq!(
        order["delivery_address"]["detail"], "南京西路 1 号",
        "{:?}",
        orders.body
    );
    eventually("the coupon redeemed", Duration::from_secs(20), || async {
        let coupons = customer.get("/api/v1/coupons?status=redeemed").await;
        (coupons.body["coupons"].as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
    // The order's notifications arrive live: the unread count shows in the navigation.
    browser.wait_text("#nav-notifications", "未读").await;
    browser.view("#/notifications").await;
    browser.find("#notification-list li.card").await;
    browser
        .check_accessibility("shop-notifications-unread")
        .await;
    browser.view("#/orders").await;
    browser.wait_text("#order-list", "已支付").await;
    browser.check_accessibility("shop-orders").await;
    browser.close().await;
    ordo.stop().await;
}

/// The titles of the search results on the page, in order.
async fn result_titles(browser: &Browser) -> Vec<String> {
    let titles = browser
        .script(
            "return [...document.querySelectorAll('#results li h2')].map((h) => h.textContent);",
            vec![],
        )
        .await;
    serde_json::from_value(titles).unwrap_or_default()
}

/// Waits until the page lists exactly `titles` (in any order) as its results.
async fn wait_results(browser: &Browser, titles: &[&str]) {
    let mut wanted: Vec<String> = titles.iter().map(|t| t.to_string()).collect();
    wanted.sort();
    eventually(
        &format!("the results {wanted:?}"),
        Duration::from_secs(30),
        || async {
            let mut shown = result_titles(browser).await;
            shown.sort();
            (shown == wanted).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_customer_searches_and_narrows_the_results_to_one_category_with_a_facet() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    product(&admin, "TEA-MUG", "Tea mug 茶杯", "家居", 1500, 5).await;
    product(&admin, "TEA-GREEN", "Green tea 绿茶", "茶叶", 3000, 5).await;
    product(&admin, "TEA-BLACK", "Black tea 红茶", "茶叶", 2800, 5).await;
    eventually("all three searchable", Duration::from_secs(30), || async {
        let found = admin.get("/api/v1/search?q=tea").await.body;
        (found["results"].as_array().map(Vec::len) == Some(3)).then_some(())
    })
    .await;

    // The search box on the catalog finds all three, with a link per category.
    let browser = Browser::open(ordo.base_url()).await;
    browser.goto("/").await;
    browser.fill("#search-q", "tea").await;
    browser
        .click("form[role='search'] button[type='submit']")
        .await;
    wait_results(
        &browser,
        &["Tea mug 茶杯", "Green tea 绿茶", "Black tea 红茶"],
    )
    .await;

    // The category link keeps only what is in that category and is shown as the one
    // chosen; the facets still count every match.
    browser.click_link("家居 (1)").await;
    wait_results(&browser, &["Tea mug 茶杯"]).await;
    let hash = browser
        .script("return decodeURIComponent(location.hash);", vec![])
        .await;
    assert_eq!(hash, json!("#/search/tea/category=家居"));
    browser
        .wait_text("main nav a[aria-current='page']", "家居 (1)")
        .await;
    browser.wait_text("main h1", "tea").await;
    browser.check_accessibility("shop-search-facet").await;
    browser.click_link("茶叶 (2)").await;
    wait_results(&browser, &["Green tea 绿茶", "Black tea 红茶"]).await;
    browser
        .wait_text("main nav a[aria-current='page']", "茶叶 (2)")
        .await;
    // What the page kept is what Ordo answers for that category.
    let filtered = admin.get("/api/v1/search?q=tea&category=茶叶").await.body;
    let mut answered: Vec<String> = filtered["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    answered.sort();
    let mut shown = result_titles(&browser).await;
    shown.sort();
    assert_eq!(shown, answered, "{filtered}");
    browser.close().await;
    ordo.stop().await;
}
