//! End to end: coupon batches and claims on a real `ordo serve` against real Postgres and
//! NATS. Claims and their idempotent repeat, the per-customer limit, the quota under a
//! flash of 1,000 simultaneous claims, every refusal (changing nothing), and the customer's
//! coupon list with its status filter.

use std::time::Duration;

use ordo_tests::{assert_problem, eventually, Answer, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn batch(quota: i64, per_user_limit: i64) -> Value {
    json!({
        "name": "Welcome", "kind": "amount_off", "value": 500, "min_spend": 3000,
        "quota": quota, "per_user_limit": per_user_limit, "currency": "EUR",
        "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
    })
}

async fn create_batch(admin: &Api, body: Value) -> String {
    let created = admin.post("/api/v1/admin/coupon-batches", body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["batch_id"].as_str().unwrap().to_owned()
}

async fn claim(customer: &Api, batch_id: &str, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    customer
        .send(
            Method::POST,
            "/api/v1/coupons/claim",
            Some(json!({ "batch_id": batch_id })),
            &headers,
        )
        .await
}

/// The caller's coupons (after their last write is in the read model), filtered by `query`.
async fn coupons(customer: &Api, query: &str) -> Vec<Value> {
    let answer = customer
        .send(
            Method::GET,
            &format!("/api/v1/coupons{query}"),
            None,
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["coupons"].as_array().unwrap().clone()
}

/// The batch as the admin list shows it, once `check` holds.
async fn batch_row(admin: &Api, batch_id: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually("the batch in the admin list", WAIT, || async {
        let answer = admin.get("/api/v1/admin/coupon-batches?limit=100").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body["batches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["batch_id"] == batch_id)
            .filter(|b| check(b))
            .cloned()
    })
    .await
}

async fn claimed_events(ordo: &TestOrdo, batch_id: &str) -> usize {
    ordo_tests::event_types(ordo.pool(), "coupon_batch", batch_id)
        .await
        .iter()
        .filter(|t| *t == "CouponClaimed")
        .count()
}

#[tokio::test]
async fn a_claim_hands_out_a_coupon_and_its_repeat_with_the_same_key_claims_nothing_new() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let shopper = ordo.customer("claim@example.com").await;
    let batch_id = create_batch(&admin, batch(10, 2)).await;

    let first = claim(&shopper, &batch_id, Some("claim-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["status"], "claimed");
    assert_eq!(first.body["batch_id"], batch_id.as_str());
    let coupon_id = first.body["coupon_id"].as_str().unwrap().to_owned();
    let again = claim(&shopper, &batch_id, Some("claim-1")).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(again.body["coupon_id"], coupon_id.as_str());
    assert_eq!(again.body["version"], first.body["version"]);
    assert_eq!(claimed_events(&ordo, &batch_id).await, 1);

    let mine = coupons(&shopper, "").await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["coupon_id"], coupon_id.as_str());
    assert_eq!(mine[0]["status"], "claimed");
    assert_eq!(mine[0]["kind"], "amount_off");
    assert_eq!(mine[0]["value"], 500);
    assert_eq!(mine[0]["min_spend"], 3000);
    assert_eq!(mine[0]["currency"], "EUR");
    let row = batch_row(&admin, &batch_id, |b| b["claimed"] == 1).await;
    assert_eq!(row["quota"], 10);
    assert_eq!(row["per_user_limit"], 2);
    ordo.stop().await;
}

#[tokio::test]
async fn the_per_customer_limit_and_the_quota_are_refused_with_their_problems() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let ann = ordo.customer("ann@example.com").await;
    let bob = ordo.customer("bob@example.com").await;
    let batch_id = create_batch(&admin, batch(3, 2)).await;

    assert_eq!(claim(&ann, &batch_id, None).await.status, 201);
    assert_eq!(claim(&ann, &batch_id, None).await.status, 201);
    let over_limit = claim(&ann, &batch_id, None).await;
    assert_problem(&over_limit, 409, "coupon_limit_reached");
    assert_eq!(claim(&bob, &batch_id, None).await.status, 201);
    let exhausted = claim(&bob, &batch_id, None).await;
    assert_problem(&exhausted, 409, "coupons_exhausted");
    assert_eq!(claimed_events(&ordo, &batch_id).await, 3);
    assert_eq!(coupons(&ann, "").await.len(), 2);
    assert_eq!(coupons(&bob, "").await.len(), 1);
    batch_row(&admin, &batch_id, |b| b["claimed"] == 3).await;
    ordo.stop().await;
}

#[tokio::test]
async fn a_flash_of_1000_simultaneous_claims_for_100_coupons_hands_out_exactly_100() {
    // 20 customers each send 50 claims at once: 1,000 claims in flight together, against
    // a quota of 100 that a customer alone could take (per_user_limit 100).
    let ordo = TestOrdo::with_env(&[
        ("ORDO_RATE_LIMIT_PER_USER", "100000"),
        ("ORDO_RATE_LIMIT_PER_USER_BURST", "100000"),
        ("ORDO_RATE_LIMIT_PER_IP", "100000"),
        ("ORDO_RATE_LIMIT_PER_IP_BURST", "100000"),
    ])
    .await;
    let admin = ordo.admin().await;
    let batch_id = create_batch(&admin, batch(100, 100)).await;
    let mut customers = Vec::new();
    for n in 0..20 {
        customers.push(ordo.customer(&format!("flash-{n}@example.com")).await);
    }
    let batch_ref = batch_id.as_str();
    let claims = customers
        .iter()
        .flat_map(|customer| (0..50).map(move |_| claim(customer, batch_ref, None)));
    let answers = futures::future::join_all(claims).await;
    assert_eq!(answers.len(), 1000);
    let won = answers.iter().filter(|a| a.status == 201).count();
    let exhausted = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["type"] == "urn:ordo:problem:coupons_exhausted")
        .count();
    assert_eq!(
        (won, exhausted),
        (100, 900),
        "other answers: {:?}",
        answers
            .iter()
            .filter(|a| a.status != 201 && a.status != 409)
            .map(|a| (a.status, &a.body))
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(claimed_events(&ordo, &batch_id).await, 100);
    let mut ids: Vec<&str> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.body["coupon_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every coupon handed out is distinct");
    batch_row(&admin, &batch_id, |b| b["claimed"] == 100).await;
    let late = ordo.customer("late@example.com").await;
    assert_problem(
        &claim(&late, &batch_id, None).await,
        409,
        "coupons_exhausted",
    );
    ordo.stop().await;
}

#[tokio::test]
async fn every_refusal_answers_its_problem_and_changes_nothing() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let shopper = ordo.customer("refused@example.com").await;

    let invalid: [(&str, Value); 8] = [
        ("quota", {
            let mut b = batch(0, 1);
            b["per_user_limit"] = json!(1);
            b
        }),
        ("per_user_limit", batch(5, 6)),
        ("value", {
            let mut b = batch(5, 1);
            b["kind"] = json!("percent_off");
            b["value"] = json!(101);
            b
        }),
        ("value", {
            let mut b = batch(5, 1);
            b["value"] = json!(0);
            b
        }),
        ("valid_until", {
            let mut b = batch(5, 1);
            b["valid_until"] = json!("2019-01-01T00:00:00Z");
            b
        }),
        ("currency", {
            let mut b = batch(5, 1);
            b["currency"] = json!("EURO");
            b
        }),
        ("name", {
            let mut b = batch(5, 1);
            b["name"] = json!("  ");
            b
        }),
        ("min_spend", {
            let mut b = batch(5, 1);
            b["min_spend"] = json!(-1);
            b
        }),
    ];
    for (field, body) in invalid {
        let answer = admin.post("/api/v1/admin/coupon-batches", body).await;
        assert_problem(&answer, 422, "validation_failed");
        assert_eq!(answer.body["field"], field, "{:?}", answer.body);
    }
    let unknown_kind = {
        let mut b = batch(5, 1);
        b["kind"] = json!("free_lunch");
        b
    };
    let answer = admin
        .post("/api/v1/admin/coupon-batches", unknown_kind)
        .await;
    assert!([400, 422].contains(&answer.status), "{:?}", answer.body);

    // Roles come before bodies.
    let answer = shopper
        .post("/api/v1/admin/coupon-batches", batch(5, 1))
        .await;
    assert_problem(&answer, 403, "forbidden");
    let answer = ordo
        .api()
        .post(
            "/api/v1/coupons/claim",
            json!({"batch_id": "not even a uuid"}),
        )
        .await;
    assert_problem(&answer, 401, "unauthorized");
    let listed = admin.get("/api/v1/admin/coupon-batches").await;
    assert_eq!(listed.body["batches"], json!([]), "nothing was created");

    // Claims of no batch, of an expired one, with a bad body.
    let answer = claim(&shopper, "00000000-0000-4000-8000-000000000001", None).await;
    assert_problem(&answer, 404, "not_found");
    let expired = create_batch(
        &admin,
        json!({
            "name": "Last year", "kind": "percent_off", "value": 10, "quota": 5,
            "per_user_limit": 1, "currency": "EUR",
            "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2021-01-01T00:00:00Z",
        }),
    )
    .await;
    assert_problem(
        &claim(&shopper, &expired, None).await,
        409,
        "coupon_batch_expired",
    );
    let answer = shopper
        .post("/api/v1/coupons/claim", json!({"batch_id": 7}))
        .await;
    assert!([400, 422].contains(&answer.status), "{:?}", answer.body);
    assert_eq!(claimed_events(&ordo, &expired).await, 0);
    assert!(coupons(&shopper, "").await.is_empty());

    // The same key with other terms names the same batch: refused.
    let keyed = |body: Value| {
        admin.send(
            Method::POST,
            "/api/v1/admin/coupon-batches",
            Some(body),
            &[("idempotency-key", "batch-key")],
        )
    };
    let first = keyed(batch(5, 1)).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let repeat = keyed(batch(5, 1)).await;
    assert_eq!(repeat.status, 201);
    assert_eq!(repeat.body["batch_id"], first.body["batch_id"]);
    assert_problem(&keyed(batch(6, 1)).await, 409, "coupon_batch_exists");
    ordo.stop().await;
}

#[tokio::test]
async fn the_coupon_list_filters_by_status_and_shows_only_the_callers_coupons() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let ann = ordo.customer("list-ann@example.com").await;
    let bob = ordo.customer("list-bob@example.com").await;
    let first = create_batch(&admin, batch(10, 5)).await;
    let second = create_batch(&admin, batch(10, 5)).await;
    for batch_id in [&first, &second, &first] {
        assert_eq!(claim(&ann, batch_id, None).await.status, 201);
    }
    assert_eq!(claim(&bob, &second, None).await.status, 201);

    // `Prefer: wait` covers a caller's last command only (README): her claim on the other
    // batch may still be on its way to the read model.
    let all = eventually("ann's three coupons listed", WAIT, || async {
        let all = coupons(&ann, "").await;
        (all.len() == 3).then_some(all)
    })
    .await;
    assert!(all.iter().all(|c| c["status"] == "claimed"));
    assert_eq!(coupons(&ann, "?status=claimed").await.len(), 3);
    assert!(coupons(&ann, "?status=locked").await.is_empty());
    assert!(coupons(&ann, "?status=redeemed").await.is_empty());
    assert_eq!(coupons(&bob, "").await.len(), 1);
    assert_eq!(coupons(&bob, "").await[0]["batch_id"], second.as_str());

    // Pages, newest claim first.
    let page = ann.get("/api/v1/coupons?limit=2").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["coupons"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = ann
        .get(&format!("/api/v1/coupons?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest.body["coupons"].as_array().unwrap().len(), 1);
    assert!(rest.body["next_cursor"].is_null());
    let mut seen: Vec<Value> = page.body["coupons"].as_array().unwrap().clone();
    seen.extend(rest.body["coupons"].as_array().unwrap().iter().cloned());
    assert_eq!(seen, all);

    let bad = ann.get("/api/v1/coupons?status=lost").await;
    assert_problem(&bad, 422, "validation_failed");
    assert_eq!(bad.body["field"], "status");
    assert_problem(
        &ordo.api().get("/api/v1/coupons").await,
        401,
        "unauthorized",
    );
    ordo.stop().await;
}

/// A lock, redeem or release from one process: `Ok(version)` or the refusal's code.
fn outcome(
    result: Result<
        ordo_store::Committed<ordo_aggregates::coupon::CouponEvent>,
        ordo_store::CommandError<ordo_aggregates::coupon::CouponError>,
    >,
) -> Result<i64, String> {
    match result {
        Ok(committed) => Ok(committed.version),
        Err(ordo_store::CommandError::Rejected(err)) => Err(err.code().to_owned()),
        Err(other) => Err(other.to_string()),
    }
}

#[tokio::test]
async fn of_orders_racing_for_one_coupon_exactly_one_locks_it_and_redeem_and_release_follow_it() {
    use ordo_aggregates::common::{CouponId, OrderId, UserId};
    use ordo_gateway::offers::Offers;
    use ordo_store::CommandMetadata;

    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let shopper = ordo.customer("race@example.com").await;
    let other = ordo.customer("race-other@example.com").await;
    let batch_id = create_batch(&admin, batch(5, 1)).await;
    let claimed = claim(&shopper, &batch_id, None).await;
    assert_eq!(claimed.status, 201, "{:?}", claimed.body);
    let coupon =
        CouponId::from(uuid::Uuid::parse_str(claimed.body["coupon_id"].as_str().unwrap()).unwrap());
    let owner = UserId::from(uuid::Uuid::parse_str(&shopper.user_id).unwrap());
    let meta = || CommandMetadata::from_request("coupon-race", None);
    let now = chrono::Utc::now();

    // Two checkouts in two processes (two buses, each with its own cached state), four
    // orders each, all locking the same coupon at once.
    let first = Offers::new(ordo.pool().clone());
    let second = Offers::new(ordo.pool().clone());
    let orders: Vec<OrderId> = (0..8).map(|_| OrderId::new_v4()).collect();
    let attempts = orders.iter().enumerate().map(|(n, order)| {
        let offers = if n % 2 == 0 { &first } else { &second };
        async move {
            (
                *order,
                outcome(offers.lock_coupon(coupon, *order, owner, now, meta()).await),
            )
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<OrderId> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|(_, r)| r.is_err())
            .all(|(_, r)| r.as_ref().unwrap_err() == "coupon_in_use"),
        "{results:?}"
    );
    let winner = winners[0];
    let loser = *orders.iter().find(|o| **o != winner).unwrap();
    let locked_at = outcome(first.lock_coupon(coupon, winner, owner, now, meta()).await);
    let again = outcome(second.lock_coupon(coupon, winner, owner, now, meta()).await);
    assert_eq!(
        locked_at, again,
        "locking again for the same order is a no-op"
    );

    let status_is = |status: &'static str, order: Option<OrderId>| {
        let shopper = &shopper;
        async move {
            eventually(&format!("the coupon {status}"), WAIT, || async {
                let listed = shopper
                    .get(&format!("/api/v1/coupons?status={status}"))
                    .await;
                let rows = listed.body["coupons"].as_array()?.clone();
                let expected = order.map(|o| json!(o.to_string())).unwrap_or(Value::Null);
                (rows.len() == 1 && rows[0]["order_id"] == expected).then_some(())
            })
            .await
        }
    };
    status_is("locked", Some(winner)).await;
    assert!(coupons(&shopper, "?status=claimed").await.is_empty());

    // Someone else's coupon cannot be locked; a release by an order not holding it is a no-op.
    let stranger = UserId::from(uuid::Uuid::parse_str(&other.user_id).unwrap());
    assert_eq!(
        outcome(
            first
                .lock_coupon(coupon, loser, stranger, now, meta())
                .await
        ),
        Err("coupon_not_found".into())
    );
    assert_eq!(
        outcome(first.release_coupon(coupon, loser, meta()).await),
        again
    );
    assert_eq!(
        outcome(first.redeem_coupon(coupon, loser, meta()).await),
        Err("coupon_not_locked".into())
    );

    // The winner gives it back (rejected, cancelled or expired); another order takes it and
    // is paid: redeemed for good.
    outcome(second.release_coupon(coupon, winner, meta()).await).unwrap();
    status_is("claimed", None).await;
    outcome(first.lock_coupon(coupon, loser, owner, now, meta()).await).unwrap();
    let redeemed = outcome(second.redeem_coupon(coupon, loser, meta()).await).unwrap();
    assert_eq!(
        outcome(first.redeem_coupon(coupon, loser, meta()).await),
        Ok(redeemed)
    );
    assert_eq!(
        outcome(first.release_coupon(coupon, loser, meta()).await),
        Ok(redeemed),
        "a redeemed coupon stays redeemed"
    );
    assert_eq!(
        outcome(second.lock_coupon(coupon, winner, owner, now, meta()).await),
        Err("coupon_redeemed".into())
    );
    status_is("redeemed", Some(loser)).await;
    let events = ordo_tests::event_types(ordo.pool(), "coupon_batch", &batch_id).await;
    assert_eq!(
        events,
        [
            "CouponBatchCreated",
            "CouponClaimed",
            "CouponLocked",
            "CouponReleased",
            "CouponLocked",
            "CouponRedeemed"
        ]
    );
    ordo.stop().await;
}
