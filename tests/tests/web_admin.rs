//! The admin console's operations in a real browser (headless Chromium over WebDriver)
//! against a real `ordo serve`: the login form, at home and on its own route; a dead letter (an order the orders read model refused) is
//! listed, inspected and re-driven after the fix, and the order reaches the read model; a
//! saga stuck on a failing step is found by id, its error shown, and resumed from the
//! console. The pages pass axe-core at desktop and phone width.

use std::time::Duration;

use ordo_tests::{eventually, Browser, TestOrdo, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::json;

const FAIL_FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_CONSUMER_MAX_DELIVER", "2"),
    ("ORDO_CONSUMER_BACKOFF", "100ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_redrives_a_dead_letter_and_resumes_a_stuck_saga_from_the_console() {
    let ordo = TestOrdo::with_env(FAIL_FAST).await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "WIDGET", "name": "Widget", "category": "test", "price": 500, "currency": "CNY"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/WIDGET/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200);
    let victim = ordo.customer("victim@example.com").await;
    let pool = ordo.pool();

    // The orders read model refuses the victim's rows, and the saga's confirm step fails:
    // the order's events are dead-lettered and its checkout saga gets stuck.
    for statement in [
        "CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'orders read model is broken'; END; $$",
        &format!(
            "CREATE TRIGGER refuse_order BEFORE INSERT ON orders FOR EACH ROW
             WHEN (NEW.customer_id = '{}') EXECUTE FUNCTION refuse_order()",
            victim.user_id
        ),
        "CREATE FUNCTION refuse_step() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'saga log is full'; END; $$",
        "CREATE TRIGGER refuse_step BEFORE INSERT ON saga_steps FOR EACH ROW
         WHEN (NEW.step = 'confirm_order') EXECUTE FUNCTION refuse_step()",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
    let placed = victim
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "WIDGET", "quantity": 1}]}),
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    eventually("the saga stuck", Duration::from_secs(30), || async {
        let saga = admin
            .get(&format!("/api/v1/admin/sagas/{order_id}"))
            .await
            .body;
        (saga["status"] == "stuck").then_some(())
    })
    .await;
    let letter = eventually(
        "the order's dead letter",
        Duration::from_secs(30),
        || async {
            let listed = admin
                .get("/api/v1/admin/dead-letters?consumer=projection-orders")
                .await;
            listed.body["dead_letters"]
                .as_array()?
                .iter()
                .find(|l| l["aggregate_id"] == order_id.as_str() && l["parked"] == false)
                .and_then(|l| l["dlq_sequence"].as_u64())
        },
    )
    .await;

    let browser = Browser::open(ordo.base_url()).await;
    browser.goto("/admin#/").await;
    browser.check_accessibility("admin-login").await;
    // The login route shows the same form on its own and logs in from there.
    browser.view("#/login").await;
    browser.find("#login-form").await;
    browser.check_accessibility("admin-login-route").await;
    browser.fill("#login-email", ADMIN_EMAIL).await;
    browser.fill("#login-password", ADMIN_PASSWORD).await;
    browser.click("#login-submit").await;
    browser.wait_text("#who", ADMIN_EMAIL).await;
    browser.check_accessibility("admin-home").await;

    // The dead letter is listed and inspected; after the fix it is re-driven.
    browser.view("#/dead-letters").await;
    browser
        .wait_text("#dead-letters", "orders read model is broken")
        .await;
    browser.click(&format!("[data-inspect='{letter}']")).await;
    browser.wait_text("#dead-letter pre", "OrderPlaced").await;
    browser.check_accessibility("admin-dead-letters").await;
    sqlx::query("DROP TRIGGER refuse_order ON orders")
        .execute(pool)
        .await
        .unwrap();
    browser.click(&format!("[data-redrive='{letter}']")).await;
    browser.wait_text("#redriven", &letter.to_string()).await;
    eventually(
        "the order in the read model",
        Duration::from_secs(30),
        || async {
            (victim
                .get(&format!("/api/v1/orders/{order_id}"))
                .await
                .status
                == 200)
                .then_some(())
        },
    )
    .await;

    // The stuck saga is found by id, its error shown; after the fix it is resumed.
    browser.view("#/sagas").await;
    browser.fill("#saga-id", &order_id).await;
    browser.click("#saga-form-submit").await;
    browser.find("#saga-status[data-status='stuck']").await;
    browser.wait_text("#saga-error", "saga log is full").await;
    browser.check_accessibility("admin-saga-stuck").await;
    sqlx::query("DROP TRIGGER refuse_step ON saga_steps")
        .execute(pool)
        .await
        .unwrap();
    browser.click("#resume-saga").await;
    browser.find("#resumed").await;
    eventually("the saga resumed", Duration::from_secs(30), || async {
        let saga = admin
            .get(&format!("/api/v1/admin/sagas/{order_id}"))
            .await
            .body;
        (saga["status"] == "awaiting_payment").then_some(())
    })
    .await;
    browser.click("#saga-form-submit").await;
    browser
        .find("#saga-status[data-status='awaiting_payment']")
        .await;

    // The projections page shows each projection and its lag.
    browser.view("#/projections").await;
    browser.wait_text("#projections", "projection-orders").await;
    browser.check_accessibility("admin-projections").await;
    for view in [
        "#/catalog",
        "#/promotions",
        "#/orders",
        "#/providers",
        "#/shows",
        "#/check-in",
    ] {
        browser.view(view).await;
        browser.find("main h1").await;
        browser.find("main form, main table").await;
        browser
            .check_accessibility(&format!("admin-{}", view.trim_start_matches("#/")))
            .await;
    }
    browser.close().await;
    ordo.stop().await;
}
