//! End to end, through HTTP only: the service marketplace. A customer publishes an order,
//! an admin approves it, twenty verified providers race to accept it and exactly one wins,
//! the customer pays into escrow, the work is done and confirmed (or confirms itself), the
//! provider is paid out and reviewed, and the provider's rating shows it, also after a
//! rebuild of the read model. Unverified and non-matching providers are refused with
//! problems; every party is told of each step in their inbox; a cancelled paid order is
//! refunded; a review with a sensitive word counts only once an admin publishes it; and
//! `ordo serve` killed at each step of the
//! payment and release flow loses nothing and pays nothing twice.

use std::time::Duration;

use futures::future::join_all;
use ordo_tests::{assert_problem, eventually, Api, Customer, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

const CRASH_AFTER_STEP: &str = "ORDO_CRASH_AFTER_STEP";
const RACERS: usize = 20;

async fn start(extra: &[(&str, &str)]) -> TestOrdo {
    let mut env = vec![
        ("ORDO_SANDBOX_DELAY", "20ms"),
        ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
        ("ORDO_CONSUMER_ACK_WAIT", "2s"),
    ];
    env.extend_from_slice(extra);
    TestOrdo::with_env(&env).await
}

/// A provider with a profile offering `skill` in `area` and a certification submitted.
async fn certified_provider(ordo: &TestOrdo, email: &str, skill: &str, area: &str) -> Customer {
    let provider = ordo.provider(email).await;
    let profile = provider
        .send(
            Method::PUT,
            "/api/v1/providers/me/profile",
            Some(json!({"full_name": "Pat Fixer", "phone": "+49 30 1234567",
                        "skills": [skill], "service_areas": [area], "bio": "Pipes and taps."})),
            &[],
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(profile.body["full_name"], "Pat Fixer");
    assert_eq!(profile.body["verification_status"], "unverified");
    let certified = provider
        .post(
            "/api/v1/providers/me/certifications",
            json!({"name": "Master plumber", "file_url": "https://files.example.com/cert.pdf"}),
        )
        .await;
    assert_eq!(certified.status, 201, "{:?}", certified.body);
    assert_eq!(
        certified.body["verification_status"],
        "pending_verification"
    );
    provider
}

async fn verified_provider(
    ordo: &TestOrdo,
    admin: &Api,
    email: &str,
    skill: &str,
    area: &str,
) -> Customer {
    let provider = certified_provider(ordo, email, skill, area).await;
    let verified = admin
        .post(
            &format!("/api/v1/admin/providers/{}/verify", provider.user_id),
            json!({}),
        )
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    assert_eq!(verified.body["verification_status"], "verified");
    provider
}

/// Publishes a plumbing order in the north at 80.00 EUR and has the admin approve it.
async fn approved_order(customer: &Api, admin: &Api) -> String {
    let published = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": "Fix the kitchen sink", "description": "It drips all night.",
                   "service_type": "plumbing", "price": 8000, "currency": "EUR",
                   "location": "NORTH", "address": "1 Main Street"}),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    assert_eq!(published.body["status"], "pending_review");
    let order_id = published.body["order_id"].as_str().unwrap().to_owned();
    let approved = admin
        .post(
            &format!("/api/v1/admin/service-orders/{order_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["status"], "pending");
    order_id
}

async fn order_in(api: &Api, order_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(what, Duration::from_secs(30), || async {
        let answer = api.get(&format!("/api/v1/service-orders/{order_id}")).await;
        (answer.status == 200 && check(&answer.body)).then_some(answer.body)
    })
    .await
}

async fn status_of(api: &Api, order_id: &str, status: &str) -> Value {
    order_in(api, order_id, &format!("order {order_id} {status}"), |b| {
        b["status"] == status
    })
    .await
}

/// Waits until `api`'s inbox holds an entry of `kind`.
async fn inbox_has(api: &Api, kind: &str) {
    eventually(
        &format!("a {kind} notification"),
        Duration::from_secs(20),
        || async {
            let body = api.get("/api/v1/notifications?limit=100").await.body;
            body["notifications"]
                .as_array()
                .is_some_and(|all| all.iter().any(|n| n["kind"] == kind))
                .then_some(())
        },
    )
    .await;
}

async fn pay(customer: &Api, order_id: &str) {
    let paid = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
}

async fn step(api: &Api, order_id: &str, action: &str, status: &str) {
    let answer = api
        .post(
            &format!("/api/v1/service-orders/{order_id}/{action}"),
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{action}: {:?}", answer.body);
    assert_eq!(answer.body["status"], status, "{action}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_providers_race_one_wins_and_is_paid_out_reviewed_and_rated() {
    let ordo = start(&[]).await;
    let admin = ordo.admin().await;
    let customer = ordo.customer("home@example.com").await;
    let stranger = ordo.customer("stranger@example.com").await;
    let mut racers = Vec::new();
    for i in 0..RACERS {
        racers.push(
            verified_provider(
                &ordo,
                &admin,
                &format!("plumber{i}@example.com"),
                "plumbing",
                "NORTH",
            )
            .await,
        );
    }
    let unverified = certified_provider(&ordo, "new@example.com", "plumbing", "NORTH").await;
    let elsewhere =
        verified_provider(&ordo, &admin, "south@example.com", "plumbing", "SOUTH").await;
    let pending = eventually(
        "the pending provider listed",
        Duration::from_secs(20),
        || async {
            let list = admin
                .get("/api/v1/admin/providers?status=pending_verification")
                .await;
            let providers = list.body["providers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (providers.len() == 1).then_some(providers)
        },
    )
    .await;
    assert_eq!(pending[0]["provider_id"], unverified.user_id.as_str());

    // A customer publishes; a provider cannot take it before the admin approves it.
    let published = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": "Fix the kitchen sink", "description": "It drips all night.",
                   "service_type": "plumbing", "price": 8000, "currency": "EUR",
                   "location": "NORTH", "address": "1 Main Street"}),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let order_id = published.body["order_id"].as_str().unwrap().to_owned();
    let early = racers[0]
        .post(
            &format!("/api/v1/service-orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_problem(&early, 409, "transition_not_allowed");
    let approved = admin
        .post(
            &format!("/api/v1/admin/service-orders/{order_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);

    // Matching verified providers see it; the others do not, and are refused.
    eventually("the order matches", Duration::from_secs(20), || async {
        let list = racers[7].get("/api/v1/providers/me/matching-orders").await;
        (list.body["service_orders"][0]["order_id"] == order_id.as_str()).then_some(())
    })
    .await;
    let none = elsewhere.get("/api/v1/providers/me/matching-orders").await;
    assert_eq!(none.body["service_orders"], json!([]));
    let refused = unverified
        .post(
            &format!("/api/v1/service-orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_problem(&refused, 409, "provider_not_verified");
    let refused = elsewhere
        .post(
            &format!("/api/v1/service-orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_problem(&refused, 409, "provider_not_matching");
    let refused = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);

    // Twenty providers accept at once: exactly one wins.
    let accept_path = format!("/api/v1/service-orders/{order_id}/accept");
    let answers = join_all(
        racers
            .iter()
            .map(|provider| provider.post(&accept_path, json!({}))),
    )
    .await;
    let won: Vec<usize> = (0..RACERS).filter(|i| answers[*i].status == 200).collect();
    let lost = answers.iter().filter(|a| a.status == 409).count();
    println!(
        "acceptance race: {} of {RACERS} won, {lost} refused",
        won.len()
    );
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(lost, RACERS - 1);
    for answer in answers.iter().filter(|a| a.status == 409) {
        assert_problem(answer, 409, "already_accepted");
        assert_eq!(
            answer.body["detail"],
            "the order has been accepted by another provider"
        );
    }
    let winner = &racers[won[0]];
    let loser = &racers[(won[0] + 1) % RACERS];
    // The matching providers were told of the order; the customer and the winner of its
    // acceptance.
    for (who, kind) in [
        (&loser.api, "service_order_available"),
        (&winner.api, "service_order_won"),
        (&customer.api, "service_order_accepted"),
    ] {
        inbox_has(who, kind).await;
    }
    let told = unverified.get("/api/v1/notifications").await;
    assert_eq!(told.body["notifications"], json!([]), "{:?}", told.body);
    assert_eq!(answers[won[0]].body["provider_id"], winner.user_id.as_str());
    // The order is the customer's and the winner's: 404 for everyone else.
    for other in [&stranger.api, &loser.api] {
        let hidden = other
            .get(&format!("/api/v1/service-orders/{order_id}"))
            .await;
        assert_problem(&hidden, 404, "not_found");
    }
    let seen = winner
        .get(&format!("/api/v1/service-orders/{order_id}"))
        .await;
    assert_eq!(seen.body["address"], "1 Main Street");

    // The customer pays: the money is held in escrow.
    pay(&customer, &order_id).await;
    let paid = status_of(&customer, &order_id, "paid").await;
    assert_eq!(paid["escrow"], 8000);
    assert_eq!(paid["payout"], Value::Null);
    let too_early = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/confirm"),
            json!({}),
        )
        .await;
    assert_problem(&too_early, 409, "transition_not_allowed");
    let not_theirs = loser
        .post(
            &format!("/api/v1/service-orders/{order_id}/start"),
            json!({}),
        )
        .await;
    assert_problem(&not_theirs, 404, "not_found");
    step(winner, &order_id, "start", "in_progress").await;
    let late_cancel = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/cancel"),
            json!({}),
        )
        .await;
    assert_problem(&late_cancel, 409, "transition_not_allowed");
    step(winner, &order_id, "complete", "done").await;
    step(&customer, &order_id, "confirm", "completed").await;
    let released = order_in(&customer, &order_id, "the payout", |b| {
        !b["payout"].is_null()
    })
    .await;
    assert_eq!(released["payout"]["amount"], 8000);
    assert_eq!(released["payout"]["provider_id"], winner.user_id.as_str());

    // The customer reviews once; the provider's rating shows it.
    let review = json!({"rating": 4, "comment": "Quick and clean.",
                        "dimensions": {"professionalism": 5, "attitude": 4, "punctuality": 3}});
    let reviewed = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/review"),
            review.clone(),
        )
        .await;
    assert_eq!(reviewed.status, 200, "{:?}", reviewed.body);
    assert_eq!(reviewed.body["status"], "reviewed");
    let again = customer
        .post(&format!("/api/v1/service-orders/{order_id}/review"), review)
        .await;
    assert_problem(&again, 409, "already_reviewed");
    for kind in [
        "service_order_escrowed",
        "service_order_paid_out",
        "service_order_reviewed",
    ] {
        inbox_has(winner, kind).await;
    }
    inbox_has(&customer, "service_order_paid").await;
    let expected_rating = json!({
        "average_rating": 4.0, "total_reviews": 1,
        "rating_distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
        "professionalism": 5.0, "attitude": 4.0, "punctuality": 3.0, "completed_orders": 1
    });
    let profile_path = format!("/api/v1/providers/{}", winner.user_id);
    let profile = eventually("the rating", Duration::from_secs(20), || async {
        let body = ordo.api().get(&profile_path).await.body;
        (body["rating"] == expected_rating).then_some(body)
    })
    .await;
    assert_eq!(profile["completed_orders"], 1);
    assert_eq!(profile["verified"], true);
    assert_eq!(profile["skills"], json!(["plumbing"]));

    // Rebuilt from the event history, the read model says the same.
    let (ok, out, err) = ordo
        .cli(&["projections", "rebuild", "projection-service-orders"])
        .await;
    assert!(ok, "rebuild: {out} {err}");
    let rebuilt = ordo.api().get(&profile_path).await.body;
    assert_eq!(rebuilt["rating"], expected_rating);
    let listed = customer.get("/api/v1/service-orders").await;
    assert_eq!(listed.body["service_orders"][0]["status"], "reviewed");
    ordo.stop().await;
}

/// An order of `customer` taken by `provider`, paid, done and confirmed.
async fn completed_order(customer: &Api, admin: &Api, provider: &Api) -> String {
    let order_id = approved_order(customer, admin).await;
    step(provider, &order_id, "accept", "accepted").await;
    pay(customer, &order_id).await;
    status_of(customer, &order_id, "paid").await;
    step(provider, &order_id, "start", "in_progress").await;
    step(provider, &order_id, "complete", "done").await;
    step(customer, &order_id, "confirm", "completed").await;
    order_id
}

/// Waits until the admins' queue of providers' reviews lists exactly `expected`.
async fn wait_service_queue(admin: &Api, query: &str, expected: &[&str]) {
    eventually(
        &format!("the service review queue{query} listing {expected:?}"),
        Duration::from_secs(20),
        || async {
            let listed = admin
                .get(&format!("/api/v1/admin/service-reviews{query}"))
                .await;
            assert_eq!(listed.status, 200, "{:?}", listed.body);
            let ids: Vec<String> = listed.body["reviews"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["service_order_id"].as_str().unwrap().to_owned())
                .collect();
            (ids == expected).then_some(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_with_a_sensitive_word_counts_only_once_an_admin_publishes_it() {
    let ordo = start(&[("ORDO_REVIEW_BLOCKED_WORDS", "scam, fraud")]).await;
    let admin = ordo.admin().await;
    let customer = ordo.customer("picky@example.com").await;
    let provider =
        verified_provider(&ordo, &admin, "judged@example.com", "plumbing", "NORTH").await;
    let profile_path = format!("/api/v1/providers/{}", provider.user_id);
    let total_reviews = || async {
        ordo.api().get(&profile_path).await.body["rating"]["total_reviews"]
            .as_i64()
            .unwrap_or(-1)
    };
    let review = |rating: i64, comment: &str| {
        json!({"rating": rating, "comment": comment,
               "dimensions": {"professionalism": rating, "attitude": rating, "punctuality": rating}})
    };

    // A clean review is published at once.
    let clean = completed_order(&customer, &admin, &provider).await;
    let reviewed = customer
        .post(
            &format!("/api/v1/service-orders/{clean}/review"),
            review(5, "Quick and clean."),
        )
        .await;
    assert_eq!(reviewed.status, 200, "{:?}", reviewed.body);
    assert_eq!(reviewed.body["review"]["status"], "published");
    eventually(
        "the clean review counted",
        Duration::from_secs(20),
        || async { (total_reviews().await == 1).then_some(()) },
    )
    .await;

    // One with a sensitive word waits for an admin and does not count; rejected, it never does.
    let rejected = completed_order(&customer, &admin, &provider).await;
    let held = customer
        .post(
            &format!("/api/v1/service-orders/{rejected}/review"),
            review(1, "A total SCAM."),
        )
        .await;
    assert_eq!(held.status, 200, "{:?}", held.body);
    assert_eq!(held.body["status"], "reviewed");
    assert_eq!(held.body["review"]["status"], "pending_moderation");
    let again = customer
        .post(
            &format!("/api/v1/service-orders/{rejected}/review"),
            review(2, "Second try."),
        )
        .await;
    assert_problem(&again, 409, "already_reviewed");
    assert_eq!(
        customer.get("/api/v1/admin/service-reviews").await.status,
        403
    );
    let unknown = admin.get("/api/v1/admin/service-reviews?status=lost").await;
    assert_eq!(unknown.status, 422, "{:?}", unknown.body);
    wait_service_queue(&admin, "", &[rejected.as_str()]).await;
    assert_eq!(total_reviews().await, 1, "a held review is not counted");
    inbox_has(&customer, "review_pending_moderation").await;
    let blank = admin
        .post(
            &format!("/api/v1/admin/service-orders/{rejected}/review/reject"),
            json!({"reason": " "}),
        )
        .await;
    assert_eq!(blank.status, 422, "{:?}", blank.body);
    let refused = admin
        .post(
            &format!("/api/v1/admin/service-orders/{rejected}/review/reject"),
            json!({"reason": "Abusive wording."}),
        )
        .await;
    assert_eq!(refused.status, 200, "{:?}", refused.body);
    assert_eq!(refused.body["review"]["status"], "rejected");
    let republish = admin
        .post(
            &format!("/api/v1/admin/service-orders/{rejected}/review/publish"),
            json!({}),
        )
        .await;
    assert_problem(&republish, 409, "invalid_transition");
    wait_service_queue(&admin, "", &[]).await;
    wait_service_queue(&admin, "?status=rejected", &[rejected.as_str()]).await;
    assert_eq!(total_reviews().await, 1);
    inbox_has(&customer, "review_rejected").await;

    // Held, then published: it counts from then on, and the provider hears of it.
    let published = completed_order(&customer, &admin, &provider).await;
    let held = customer
        .post(
            &format!("/api/v1/service-orders/{published}/review"),
            review(3, "Not fraud, just slow."),
        )
        .await;
    assert_eq!(held.body["review"]["status"], "pending_moderation");
    let never_reviewed = completed_order(&customer, &admin, &provider).await;
    let nothing = admin
        .post(
            &format!("/api/v1/admin/service-orders/{never_reviewed}/review/publish"),
            json!({}),
        )
        .await;
    assert_problem(&nothing, 409, "not_reviewed");
    let approved = admin
        .post(
            &format!("/api/v1/admin/service-orders/{published}/review/publish"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["review"]["status"], "published");
    let expected_rating = json!({
        "average_rating": 4.0, "total_reviews": 2,
        "rating_distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1},
        "professionalism": 4.0, "attitude": 4.0, "punctuality": 4.0, "completed_orders": 4
    });
    eventually(
        "the published review counted",
        Duration::from_secs(20),
        || async {
            let body = ordo.api().get(&profile_path).await.body;
            (body["rating"] == expected_rating).then_some(())
        },
    )
    .await;
    inbox_has(&customer, "review_published").await;
    inbox_has(&provider, "service_order_reviewed").await;
    wait_service_queue(
        &admin,
        "?status=published",
        &[published.as_str(), clean.as_str()],
    )
    .await;

    // Rebuilt from the event history, the rating and the queue say the same.
    let (ok, out, err) = ordo
        .cli(&["projections", "rebuild", "projection-service-orders"])
        .await;
    assert!(ok, "rebuild: {out} {err}");
    assert_eq!(
        ordo.api().get(&profile_path).await.body["rating"],
        expected_rating
    );
    wait_service_queue(&admin, "?status=rejected", &[rejected.as_str()]).await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_order_confirms_itself_and_a_cancelled_paid_order_is_refunded() {
    let ordo = start(&[("ORDO_SERVICE_CONFIRM_AFTER", "1s")]).await;
    let admin = ordo.admin().await;
    let customer = ordo.customer("home@example.com").await;
    let provider = verified_provider(&ordo, &admin, "fixer@example.com", "plumbing", "NORTH").await;

    // Nobody confirms: after ORDO_SERVICE_CONFIRM_AFTER the order completes and pays out.
    let order_id = approved_order(&customer, &admin).await;
    step(&provider, &order_id, "accept", "accepted").await;
    pay(&customer, &order_id).await;
    status_of(&customer, &order_id, "paid").await;
    step(&provider, &order_id, "start", "in_progress").await;
    step(&provider, &order_id, "complete", "done").await;
    let released = order_in(&customer, &order_id, "the automatic payout", |b| {
        b["status"] == "completed" && !b["payout"].is_null()
    })
    .await;
    assert_eq!(released["payout"]["amount"], 8000);

    // Cancelled once paid, before the work starts: the escrow goes back.
    let order_id = approved_order(&customer, &admin).await;
    step(&provider, &order_id, "accept", "accepted").await;
    pay(&customer, &order_id).await;
    status_of(&customer, &order_id, "paid").await;
    let cancelled = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/cancel"),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    let refunded = order_in(&customer, &order_id, "the refund", |b| {
        b["refunded"] == 8000
    })
    .await;
    assert_eq!(refunded["status"], "cancelled");
    assert_eq!(refunded["payout"], Value::Null);
    let payment = customer
        .get(&format!(
            "/api/v1/payments/{}",
            refunded["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);

    // Cancelled before acceptance: nothing to refund; then nobody may take it.
    let order_id = approved_order(&customer, &admin).await;
    step(&customer, &order_id, "cancel", "cancelled").await;
    let refused = provider
        .post(
            &format!("/api/v1/service-orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_problem(&refused, 409, "transition_not_allowed");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_problems() {
    let ordo = start(&[]).await;
    let admin = ordo.admin().await;
    let customer = ordo.customer("home@example.com").await;
    let provider = ordo.provider("fixer@example.com").await;
    let admin_role = ordo
        .api()
        .post(
            "/api/v1/auth/register",
            json!({"email": "boss@example.com", "password": "Secure-pass-123",
                   "full_name": "Boss", "role": "admin"}),
        )
        .await;
    assert_problem(&admin_role, 422, "validation_failed");
    let no_profile = provider
        .post(
            "/api/v1/providers/me/certifications",
            json!({"name": "Plumber", "file_url": "https://files.example.com/c.pdf"}),
        )
        .await;
    assert_problem(&no_profile, 409, "profile_required");
    let bad_area = provider
        .send(
            Method::PUT,
            "/api/v1/providers/me/profile",
            Some(
                json!({"full_name": "P", "phone": "+49 30 1234567", "skills": ["plumbing"],
                        "service_areas": ["UP"]}),
            ),
            &[],
        )
        .await;
    assert_problem(&bad_area, 422, "validation_failed");
    let not_pending = admin
        .post(
            &format!("/api/v1/admin/providers/{}/verify", customer.user_id),
            json!({}),
        )
        .await;
    assert_problem(&not_pending, 404, "not_found");
    let free = customer
        .post(
            "/api/v1/service-orders",
            json!({"title": "t", "description": "d", "service_type": "plumbing", "price": 0,
                   "currency": "EUR", "location": "NORTH", "address": "a"}),
        )
        .await;
    assert_problem(&free, 422, "validation_failed");
    let as_provider = provider
        .post(
            "/api/v1/service-orders",
            json!({"title": "t", "description": "d", "service_type": "plumbing", "price": 10,
                   "currency": "EUR", "location": "NORTH", "address": "a"}),
        )
        .await;
    assert_eq!(as_provider.status, 403, "{:?}", as_provider.body);
    let order_id = approved_order(&customer, &admin).await;
    let unpaid = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_problem(&unpaid, 409, "service_order_not_payable");
    let unreviewable = customer
        .post(
            &format!("/api/v1/service-orders/{order_id}/review"),
            json!({"rating": 9, "dimensions": {"professionalism": 1, "attitude": 1, "punctuality": 1}}),
        )
        .await;
    assert_problem(&unreviewable, 422, "validation_failed");
    ordo.stop().await;
}

/// Restarts the process so that it crashes at `point`, or never.
async fn restart_crashing_at(ordo: &mut TestOrdo, point: Option<&str>) {
    ordo.set_env(CRASH_AFTER_STEP, point.unwrap_or_default());
    if let Err(err) = ordo.restart().await {
        assert!(
            point.is_some() && !ordo.is_running(),
            "ordo restarts: {err}"
        );
    }
}

async fn wait_for_crash(ordo: &mut TestOrdo, point: &str) {
    eventually(
        &format!("the process crashed at {point}"),
        Duration::from_secs(30),
        || {
            let alive = ordo.is_running();
            async move { (!alive).then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_payment_and_release_step_loses_nothing_and_pays_nothing_twice() {
    let mut ordo = start(&[]).await;
    let admin = ordo.admin().await;
    let customer = ordo.customer("home@example.com").await;
    let provider = verified_provider(&ordo, &admin, "fixer@example.com", "plumbing", "NORTH").await;
    let order_id = approved_order(&customer, &admin).await;
    step(&provider, &order_id, "accept", "accepted").await;

    // Paying: killed after attaching, after asking for the charge, after marking paid.
    for point in [
        "service_order:attach_payment",
        "service_order:charge_requested",
        "service_order:mark_paid",
    ] {
        restart_crashing_at(&mut ordo, Some(point)).await;
        if point == "service_order:attach_payment" {
            if let Some(answer) = customer
                .try_send(
                    Method::POST,
                    &format!("/api/v1/service-orders/{order_id}/pay"),
                    Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
                    &[],
                )
                .await
            {
                assert_eq!(answer.status, 202, "{:?}", answer.body);
            }
        }
        wait_for_crash(&mut ordo, point).await;
    }
    restart_crashing_at(&mut ordo, None).await;
    status_of(&customer, &order_id, "paid").await;
    let payments = ordo_tests::payments_of(ordo.pool(), &order_id).await;
    assert_eq!(payments.len(), 1, "one payment: {payments:?}");

    step(&provider, &order_id, "start", "in_progress").await;
    step(&provider, &order_id, "complete", "done").await;
    // Releasing: killed after the payout is released, before the saga records it.
    restart_crashing_at(&mut ordo, Some("service_order:release_payout")).await;
    if let Some(answer) = customer
        .try_send(
            Method::POST,
            &format!("/api/v1/service-orders/{order_id}/confirm"),
            Some(json!({})),
            &[],
        )
        .await
    {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    wait_for_crash(&mut ordo, "service_order:release_payout").await;
    restart_crashing_at(&mut ordo, None).await;
    order_in(&customer, &order_id, "the payout", |b| {
        !b["payout"].is_null()
    })
    .await;

    let events = ordo_tests::event_types(ordo.pool(), "service_order", &order_id).await;
    assert_eq!(
        events,
        [
            "ServiceOrderPublished",
            "ServiceOrderApproved",
            "ServiceOrderAccepted",
            "ServicePaymentAttached",
            "ServiceOrderPaid",
            "WorkStarted",
            "WorkDone",
            "ServiceOrderConfirmed",
            "PayoutReleased",
        ]
    );
    assert_eq!(
        ordo_tests::event_types(ordo.pool(), "payment", &payments[0]).await,
        ["PaymentCreated", "PaymentCaptured"]
    );
    ordo.stop().await;
}
