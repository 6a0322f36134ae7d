//! The admin console's catalog in a real browser (headless Chromium over WebDriver) against
//! a real `ordo serve`: an admin builds the category tree (creates, files under a parent,
//! renames, moves and deletes a category), edits a product's name, price and media, creates
//! a product with several SKUs and their specifications, and adds a session to a show; sets a
//! SKU's safety threshold and sees the low-stock alert arrive live when orders take the stock
//! below it. Each change is checked through the API. Every page passes axe-core at desktop and phone width.

use std::time::Duration;

use ordo_tests::{eventually, Api, Browser, TestOrdo};
use serde_json::{json, Value};

/// Sets a form control's value in the page (selects and date-time inputs).
async fn set_value(browser: &Browser, css: &str, value: &str) {
    browser.find(css).await;
    browser
        .script(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
             e.dispatchEvent(new Event('change')); return e.value;",
            vec![json!(css), json!(value)],
        )
        .await;
}

async fn categories(api: &Api) -> Vec<Value> {
    api.get("/api/v1/categories").await.body["categories"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn named<'a>(all: &'a [Value], name: &str) -> Option<&'a Value> {
    all.iter().find(|c| c["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_builds_the_category_tree_on_screen() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let browser = Browser::admin_console(ordo.base_url()).await;
    browser.view("#/categories").await;
    browser.find("#category-form").await;

    browser.fill("#category-name", "家居").await;
    browser.click("#category-submit").await;
    let home = eventually("家居 created", Duration::from_secs(20), || async {
        named(&categories(&admin).await, "家居").cloned()
    })
    .await;
    let home_id = home["category_id"].as_str().unwrap().to_owned();
    browser.find(&format!("[data-category='{home_id}']")).await;

    // Filed under 家居, then renamed, moved to the top and deleted.
    browser.fill("#category-name", "厨房").await;
    set_value(&browser, "#category-parent", &home_id).await;
    browser.click("#category-submit").await;
    let kitchen = eventually("厨房 under 家居", Duration::from_secs(20), || async {
        named(&categories(&admin).await, "厨房")
            .filter(|c| c["parent_id"] == home_id.as_str())
            .cloned()
    })
    .await;
    let kitchen_id = kitchen["category_id"].as_str().unwrap().to_owned();
    browser
        .wait_text(&format!("[data-category='{kitchen_id}']"), "家居 / 厨房")
        .await;
    browser.check_accessibility("catalog-categories").await;

    browser.fill(&format!("#rename-{kitchen_id}"), "厨具").await;
    browser
        .click(&format!("[data-rename='{kitchen_id}']"))
        .await;
    browser
        .wait_text(&format!("[data-category='{kitchen_id}']"), "家居 / 厨具")
        .await;
    set_value(&browser, &format!("#move-{kitchen_id}"), "").await;
    browser.click(&format!("[data-move='{kitchen_id}']")).await;
    eventually("厨具 at the top", Duration::from_secs(20), || async {
        named(&categories(&admin).await, "厨具")
            .filter(|c| c["parent_id"].is_null())
            .map(|_| ())
    })
    .await;
    browser
        .click(&format!("[data-delete='{kitchen_id}']"))
        .await;
    eventually("厨具 deleted", Duration::from_secs(20), || async {
        named(&categories(&admin).await, "厨具")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(named(&categories(&admin).await, "家居").is_some());
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_a_product_creates_one_with_several_skus_and_adds_a_session() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "MUG", "name": "Mug", "description": "A mug", "category": "家居",
                   "price": 1990, "currency": "CNY"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let browser = Browser::admin_console(ordo.base_url()).await;

    // The product's editor: name, price and media, in display order.
    browser.view("#/catalog").await;
    browser.click("[data-edit='MUG']").await;
    browser.find("#edit-form").await;
    browser.fill("#edit-name", "Big mug").await;
    browser.fill("#edit-price", "2490").await;
    browser
        .fill(
            "#edit-media",
            "https://img.example.com/mug-front.jpg\nhttps://img.example.com/mug-side.jpg",
        )
        .await;
    browser.click("#edit-submit").await;
    browser.find("#edit-saved").await;
    browser.wait_text("#shown-name", "Big mug").await;
    let mug = admin.get("/api/v1/products/MUG").await.body;
    assert_eq!(mug["name"], "Big mug", "{mug}");
    assert_eq!(mug["price"], 2490, "{mug}");
    assert_eq!(
        mug["media"],
        json!([
            "https://img.example.com/mug-front.jpg",
            "https://img.example.com/mug-side.jpg"
        ])
    );
    browser.check_accessibility("catalog-product-editor").await;

    // A product with two SKUs, each with its specification.
    browser.view("#/catalog").await;
    browser.fill("#spu-id", "TEE").await;
    browser.fill("#spu-name", "T-shirt").await;
    browser.fill("#spu-category", "服装").await;
    browser
        .fill(
            "#spu-skus",
            "TEE-S;1990;size=S\nTEE-M;2090;size=M,colour=black",
        )
        .await;
    browser.click("#spu-submit").await;
    browser.find("#spu-created").await;
    let medium = admin.get("/api/v1/products/TEE-M").await.body;
    assert_eq!(medium["product_id"], "TEE", "{medium}");
    assert_eq!(medium["price"], 2090, "{medium}");
    assert_eq!(medium["spec"], json!({"size": "M", "colour": "black"}));
    let small = admin.get("/api/v1/products/TEE-S").await.body;
    assert_eq!(small["spec"], json!({"size": "S"}), "{small}");
    browser.check_accessibility("catalog-products").await;

    // A second session for a show.
    let show = admin
        .post(
            "/api/v1/shows",
            json!({"title": "Tour", "category": "演唱会", "city": "上海", "venue": "体育场",
                   "description": "", "sessions": [{"starts_at": "2027-08-15T11:30:00Z",
                   "seat_areas": [{"area_id": "A", "name": "A区", "price": 1000, "capacity": 10}]}]}),
        )
        .await;
    assert!(show.status == 201 || show.status == 202, "{:?}", show.body);
    let show_id = show.body["show_id"].as_str().unwrap().to_owned();
    eventually("the show listed", Duration::from_secs(20), || async {
        let listed = admin.get("/api/v1/shows").await.body;
        listed["shows"]
            .as_array()?
            .iter()
            .any(|s| s["show_id"] == show_id.as_str())
            .then_some(())
    })
    .await;
    browser.view("#/shows").await;
    browser.find("#session-form").await;
    set_value(&browser, "#session-show", &show_id).await;
    set_value(&browser, "#session-starts", "2027-09-01T19:30").await;
    browser.fill("#session-area", "B").await;
    browser.fill("#session-price", "1500").await;
    browser.fill("#session-capacity", "20").await;
    browser.click("#session-submit").await;
    browser.find("#session-added").await;
    let sessions = eventually("two sessions", Duration::from_secs(20), || async {
        let listed = admin
            .get(&format!("/api/v1/shows/{show_id}/sessions"))
            .await
            .body;
        let all = listed["sessions"].as_array()?.clone();
        (all.len() == 2).then_some(all)
    })
    .await;
    assert!(
        sessions
            .iter()
            .any(|s| s["seat_areas"][0]["area_id"] == "B" && s["seat_areas"][0]["capacity"] == 20),
        "{sessions:?}"
    );
    browser.check_accessibility("catalog-shows").await;
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_stock_alert_reaches_the_admin_console_live() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "VASE", "name": "Vase", "category": "家居", "price": 1200, "currency": "CNY"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/VASE/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let browser = Browser::admin_console(ordo.base_url()).await;
    browser.view("#/products/VASE").await;
    browser.fill("#edit-threshold", "5").await;
    browser.click("#threshold-submit").await;
    // The answer is the write side's: the threshold is set.
    browser.wait_text("#threshold-set", "5").await;

    browser.view("#/alerts").await;
    browser.find("#no-alerts").await;
    browser.check_accessibility("catalog-alerts").await;
    // An order takes 6 of the 10 units: 4 left, below 5.
    let customer = ordo.customer("vase@example.com").await;
    let placed = customer
        .send(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "VASE", "quantity": 6}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    browser
        .wait_text("[data-alert='stock_below_threshold']", "VASE")
        .await;
    assert!(!browser.has("#no-alerts").await);
    browser.close().await;
    ordo.stop().await;
}
