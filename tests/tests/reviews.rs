//! End to end: reviews through HTTP against real Postgres and NATS — only the buyer of a
//! delivered order line reviews it, once, with one follow-up; a sensitive word holds a
//! review for an admin; reports hide a review at the threshold; a product lists its
//! published reviews newest first and keeps a rating that equals a recomputation from
//! the reviews, also after a rebuild of the read model.

use std::time::Duration;

use ordo_tests::{assert_problem, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const ENV: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_SANDBOX_CARRIER_DELAY", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
    ("ORDO_REVIEW_BLOCKED_WORDS", "scam, rubbish"),
    ("ORDO_REVIEW_HIDE_AFTER_REPORTS", "2"),
];

async fn order(api: &Api, order_id: &str) -> Value {
    api.get(&format!("/api/v1/orders/{order_id}")).await.body
}

/// A delivered order of one MUG by `customer`.
async fn delivered_order(admin: &Api, customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "MUG", "quantity": 1}]})),
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
            json!({"carrier": "sandbox", "tracking_no": "SBX-REV"}),
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

async fn review(customer: &Api, order_id: &str, rating: i64, comment: &str) -> (u16, Value) {
    let answer = customer
        .post(
            "/api/v1/reviews",
            json!({"order_id": order_id, "sku": "MUG", "rating": rating, "comment": comment,
                   "dimensions": {"quality": rating}, "images": ["https://img.example.com/mug.jpg"]}),
        )
        .await;
    (answer.status, answer.body)
}

async fn rating(api: &Api) -> Value {
    api.get("/api/v1/products/MUG/rating").await.body
}

async fn wait_rating(api: &Api, total: i64) -> Value {
    eventually(
        &format!("{total} reviews in the rating"),
        Duration::from_secs(20),
        || async {
            let body = rating(api).await;
            (body["total_reviews"] == total).then_some(body)
        },
    )
    .await
}

/// The rating recomputed from the published reviews the product lists.
async fn recomputed(api: &Api) -> (i64, f64, [i64; 5]) {
    let mut stars = [0i64; 5];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products/MUG/reviews?limit=2&cursor={c}"),
            None => "/api/v1/products/MUG/reviews?limit=2".to_string(),
        };
        let page = api.get(&path).await.body;
        for review in page["reviews"].as_array().unwrap() {
            assert_eq!(review["status"], "published");
            stars[review["rating"].as_i64().unwrap() as usize - 1] += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let total: i64 = stars.iter().sum();
    let sum: i64 = stars
        .iter()
        .enumerate()
        .map(|(i, n)| (i as i64 + 1) * n)
        .sum();
    let mean = ((sum as f64 / total as f64) * 100.0).round() / 100.0;
    (total, mean, stars)
}

/// Waits until the admins' moderation queue lists exactly `expected` for `query` (the
/// queue is read from the reviews read model, which follows the decisions).
async fn wait_queue(admin: &Api, query: &str, expected: &[&str]) {
    eventually(
        &format!("the moderation queue{query} listing {expected:?}"),
        Duration::from_secs(20),
        || async {
            let listed = admin.get(&format!("/api/v1/admin/reviews{query}")).await;
            assert_eq!(listed.status, 200, "{:?}", listed.body);
            let ids: Vec<String> = listed.body["reviews"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["review_id"].as_str().unwrap().to_owned())
                .collect();
            (ids == expected).then_some(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_review_once_moderation_holds_reports_hide_and_the_rating_survives_a_rebuild() {
    let ordo = TestOrdo::with_env(ENV).await;
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "MUG", "name": "Mug", "category": "kitchen", "price": 1200, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/MUG/restock", json!({"quantity": 20}))
        .await;
    assert_eq!(restocked.status, 200);
    let ann = ordo.customer("ann@example.com").await;
    let bob = ordo.customer("bob@example.com").await;
    let cat = ordo.customer("cat@example.com").await;
    let stranger = ordo.customer("stranger@example.com").await;

    let ann_order = delivered_order(&admin, &ann.api).await;
    let bob_order = delivered_order(&admin, &bob.api).await;
    let cat_order = delivered_order(&admin, &cat.api).await;

    // Someone who did not buy the line cannot review it.
    let (status, body) = review(&stranger.api, &ann_order, 1, "never bought it").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "urn:ordo:problem:unknown_order");

    let (status, body) = review(&ann.api, &ann_order, 5, "Lovely mug").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "published");
    let ann_review = body["review_id"].as_str().unwrap().to_owned();
    let (status, body) = review(&ann.api, &ann_order, 4, "again").await;
    assert_eq!(status, 409, "a line is reviewed once: {body}");
    assert_eq!(body["type"], "urn:ordo:problem:already_reviewed");

    let (status, body) = review(&bob.api, &bob_order, 3, "Decent").await;
    assert_eq!(status, 201, "{body}");
    let bob_review = body["review_id"].as_str().unwrap().to_owned();

    // A sensitive word holds the review for an admin.
    let (status, body) = review(&cat.api, &cat_order, 1, "What a SCAM").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "pending_moderation");
    let cat_review = body["review_id"].as_str().unwrap().to_owned();
    let rated = wait_rating(&ann.api, 2).await;
    assert_eq!(rated["average_rating"], 4.0, "{rated}");
    // The admins' moderation queue holds it, and only it; customers do not see the queue.
    assert_eq!(ann.api.get("/api/v1/admin/reviews").await.status, 403);
    wait_queue(&admin, "", &[cat_review.as_str()]).await;
    wait_queue(&admin, "?status=pending_moderation", &[cat_review.as_str()]).await;
    let unknown = admin.get("/api/v1/admin/reviews?status=lost").await;
    assert_eq!(unknown.status, 422, "{:?}", unknown.body);
    assert_eq!(rated["rating_distribution"]["5"], 1);
    assert_eq!(rated["rating_distribution"]["3"], 1);
    assert_eq!(rated["rating_distribution"]["1"], 0);
    let published = admin
        .post(
            &format!("/api/v1/admin/reviews/{cat_review}/publish"),
            json!({}),
        )
        .await;
    assert_eq!(published.status, 200, "{:?}", published.body);
    assert_eq!(published.body["status"], "published");
    wait_rating(&ann.api, 3).await;

    // One follow-up, by the author only.
    let foreign = bob
        .api
        .post(
            &format!("/api/v1/reviews/{ann_review}/follow-up"),
            json!({"comment": "hijack"}),
        )
        .await;
    assert_eq!(foreign.status, 404);
    let followed = ann
        .api
        .post(
            &format!("/api/v1/reviews/{ann_review}/follow-up"),
            json!({"comment": "Still lovely after a month."}),
        )
        .await;
    assert_eq!(followed.status, 200, "{:?}", followed.body);
    let again = ann
        .api
        .post(
            &format!("/api/v1/reviews/{ann_review}/follow-up"),
            json!({"comment": "More"}),
        )
        .await;
    assert_problem(&again, 409, "already_followed_up");

    // Two reports (one per user) hide Bob's review until an admin decides.
    for reporter in [&stranger.api, &stranger.api, &cat.api] {
        let reported = reporter
            .post(&format!("/api/v1/reviews/{bob_review}/report"), json!({}))
            .await;
        assert_eq!(reported.status, 200, "{:?}", reported.body);
    }
    let hidden = wait_rating(&ann.api, 2).await;
    assert_eq!(hidden["average_rating"], 3.0, "{hidden}");
    // Published, Cat's review left the queue; hidden, Bob's joined it.
    wait_queue(&admin, "", &[bob_review.as_str()]).await;
    wait_queue(&admin, "?status=hidden", &[bob_review.as_str()]).await;
    let rejected = admin
        .post(
            &format!("/api/v1/admin/reviews/{bob_review}/reject"),
            json!({"reason": "Reported as off topic."}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{:?}", rejected.body);
    assert_eq!(rejected.body["status"], "rejected");
    wait_queue(&admin, "", &[]).await;
    wait_queue(&admin, "?status=rejected", &[bob_review.as_str()]).await;
    eventually("moderation notices", Duration::from_secs(20), || async {
        let kinds: Vec<String> = bob.api.get("/api/v1/notifications").await.body["notifications"]
            .as_array()?
            .iter()
            .filter_map(|n| n["kind"].as_str().map(str::to_owned))
            .collect();
        (kinds.iter().any(|k| k == "review_hidden") && kinds.iter().any(|k| k == "review_rejected"))
            .then_some(())
    })
    .await;

    // Newest first, published only, with the follow-up.
    let listed = ordo.api().get("/api/v1/products/MUG/reviews").await.body;
    let ids: Vec<&str> = listed["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["review_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [cat_review.as_str(), ann_review.as_str()]);
    assert_eq!(
        listed["reviews"][1]["follow_up"],
        "Still lovely after a month."
    );

    // The rating equals a recomputation from the reviews, before and after a rebuild.
    let kept = rating(&ordo.api()).await;
    let (total, mean, stars) = recomputed(&ordo.api()).await;
    assert_eq!(kept["total_reviews"], total);
    assert_eq!(kept["average_rating"], mean);
    for (i, n) in stars.iter().enumerate() {
        assert_eq!(kept["rating_distribution"][(i + 1).to_string()], *n);
    }
    let (ok, out, err) = ordo
        .cli(&["projections", "rebuild", "projection-reviews"])
        .await;
    assert!(ok, "rebuild: {out} {err}");
    let rebuilt = rating(&ordo.api()).await;
    assert_eq!(rebuilt, kept);
    assert_eq!(recomputed(&ordo.api()).await, (total, mean, stars));
    ordo.stop().await;
}
