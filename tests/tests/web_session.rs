//! How the web pages handle the API's refusals, in a real browser (headless Chromium over
//! WebDriver) against a real `ordo serve`: an access token that no longer works is renewed
//! with the refresh token and the page goes on; a session that cannot be renewed sends the
//! person back to the login, saying why; a 429 is shown in words with a retry offered after
//! the wait, and the retry succeeds.

use std::time::{Duration, Instant};

use ordo_tests::{Browser, TestOrdo, CUSTOMER_PASSWORD};
use serde_json::json;

async fn register(browser: &Browser, email: &str) {
    browser.goto("/#/register").await;
    browser.fill("#register-name", "周杰").await;
    browser.fill("#register-email", email).await;
    browser.fill("#register-password", CUSTOMER_PASSWORD).await;
    browser.click("#register-submit").await;
    browser.wait_text("#who", email).await;
}

async fn token(browser: &Browser, which: &str) -> String {
    browser
        .script(
            "return JSON.parse(sessionStorage.getItem('ordo.session'))[arguments[0]];",
            vec![json!(which)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn spoil(browser: &Browser, which: &str) {
    browser
        .script(
            "const s = JSON.parse(sessionStorage.getItem('ordo.session'));
             s[arguments[0]] = s[arguments[0]].slice(0, -4) + 'AAAA';
             sessionStorage.setItem('ordo.session', JSON.stringify(s)); return true;",
            vec![json!(which)],
        )
        .await;
}

#[tokio::test]
async fn a_stale_token_is_renewed_and_a_session_that_cannot_be_is_sent_to_the_login() {
    let ordo = TestOrdo::start().await;
    let browser = Browser::open(ordo.base_url()).await;
    register(&browser, "jie@example.com").await;

    // The access token stops working: the page renews it and shows the orders.
    spoil(&browser, "access_token").await;
    let spoiled = token(&browser, "access_token").await;
    browser.view("#/orders").await;
    browser.wait_text("main", "还没有订单").await;
    assert_ne!(token(&browser, "access_token").await, spoiled);

    // Neither token works: the person is sent to the login and told why.
    spoil(&browser, "access_token").await;
    spoil(&browser, "refresh_token").await;
    browser.view("#/coupons").await;
    browser.find("#login-form").await;
    browser.wait_text("#status", "登录已过期").await;
    assert!(browser.has("#login-link").await, "logged out in the header");
    browser.check_accessibility("shop-session-expired").await;
    browser.close().await;
    ordo.stop().await;
}

#[tokio::test]
async fn too_many_requests_are_told_in_words_with_a_retry_that_works() {
    let ordo = TestOrdo::with_env(&[
        ("ORDO_RATE_LIMIT_PER_USER", "1"),
        ("ORDO_RATE_LIMIT_PER_USER_BURST", "1"),
    ])
    .await;
    let browser = Browser::open(ordo.base_url()).await;
    register(&browser, "busy@example.com").await;
    // The checkout page asks for several things at once: beyond the burst, 429.
    let started = Instant::now();
    loop {
        browser.view("#/orders").await;
        browser.view("#/checkout").await;
        if browser
            .has(".problem[data-code='rate_limited'] button")
            .await
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no 429 shown: {}",
            browser.body_text().await
        );
    }
    let told = browser
        .wait_text(".problem[data-code='rate_limited']", "")
        .await;
    assert!(told.contains("请稍后重试"), "{told}");
    browser.screenshot("shop-rate-limited").await;
    // The retry is offered once the wait is over, and it works.
    let started = Instant::now();
    loop {
        if browser
            .has(".problem[data-code='rate_limited'] button:enabled")
            .await
        {
            browser
                .click(".problem[data-code='rate_limited'] button:enabled")
                .await;
        } else if !browser.has(".problem[data-code='rate_limited']").await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the retry never succeeded: {}",
            browser.body_text().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser.close().await;
    ordo.stop().await;
}
