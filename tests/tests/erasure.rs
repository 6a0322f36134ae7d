//! Erasure of personal data by crypto-shredding, against a real `ordo serve`: a customer's
//! profile and address values are sealed in every event from the start (the raw `events`
//! table never holds them), opened for the customer while their key exists, and gone
//! everywhere once the customer or an admin erases the account: no table of the database
//! holds them, the events still load (shown as erased), replays show no trace, the account
//! cannot log in and its tokens stop working.

use std::time::Duration;

use ordo_tests::{Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

/// The distinctive personal values the tests write, to be searched for afterwards.
const NAME: &str = "Zephyrine Quillfeather";
const PHONE: &str = "+33 6 98 76 54 32";
const RECIPIENT: &str = "Xanthippe Marlowe";
const CITY: &str = "Vireloup-sur-Brume";
const DETAIL: &str = "17 Rue des Glycines Oubliees";
const POSTAL_CODE: &str = "73915";

fn values() -> [&'static str; 6] {
    [NAME, PHONE, RECIPIENT, CITY, DETAIL, POSTAL_CODE]
}

async fn send(api: &Api, method: Method, path: &str, body: Option<Value>) -> ordo_tests::Answer {
    api.send(method, path, body, &[]).await
}

/// Sets a profile and an address with the distinctive values; answers the address id.
async fn write_personal_data(api: &Api) -> String {
    let profile = send(
        api,
        Method::PATCH,
        "/api/v1/users/me",
        Some(json!({"full_name": NAME, "phone": PHONE})),
    )
    .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let address = api
        .post(
            "/api/v1/users/me/addresses",
            json!({"recipient": RECIPIENT, "phone": PHONE, "province": "Savoie", "city": CITY,
                   "detail": DETAIL, "postal_code": POSTAL_CODE}),
        )
        .await;
    assert_eq!(address.status, 201, "{:?}", address.body);
    address.body["address_id"].as_str().unwrap().to_owned()
}

/// Every stored payload of the `events` table, as text.
async fn raw_events(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT payload::text FROM events ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Every row of every table of the database, as text, one table per entry.
async fn every_table(pool: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let text: String = sqlx::query_scalar(&format!(
            "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table, text));
    }
    out
}

/// The payloads of the customer stream, once it holds `count` messages.
async fn stream_payloads(ordo: &TestOrdo, count: usize) -> Vec<(String, String)> {
    let js = async_nats::jetstream::new(ordo.nats().await);
    let name = ordo.stream_name("CUSTOMER");
    ordo_tests::eventually(
        "the customer events are published",
        Duration::from_secs(20),
        || async {
            let mut stream = js.get_stream(&name).await.ok()?;
            let messages = stream.info().await.ok()?.state.messages;
            (messages as usize >= count).then_some(())
        },
    )
    .await;
    let stream = js.get_stream(&name).await.unwrap();
    let mut out = Vec::new();
    for sequence in 1..=count as u64 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        out.push((
            format!("stream message {sequence}"),
            String::from_utf8_lossy(&message.payload).into_owned(),
        ));
    }
    out
}

/// The customer's row of `customer_directory`: full name, phone, address count; waits for
/// it to hold a name when `named`.
async fn directory_row(
    ordo: &TestOrdo,
    user_id: &str,
    named: bool,
) -> (Option<String>, Option<String>, i32) {
    ordo_tests::eventually("the customer directory row", Duration::from_secs(20), || async {
        let row: Option<(Option<String>, Option<String>, i32)> = sqlx::query_as(
            "SELECT full_name, phone, address_count FROM customer_directory WHERE user_id = $1::uuid",
        )
        .bind(user_id)
        .fetch_optional(ordo.pool())
        .await
        .unwrap();
        row.filter(|r| !named || (r.0.is_some() && r.2 > 0))
    })
    .await
}

/// The places among `haystacks` that hold one of `needles`.
fn traces(haystacks: &[(String, String)], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (place, text) in haystacks {
        for needle in needles {
            if text.contains(needle) {
                found.push(format!("{needle:?} in {place}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_customer_erases_their_personal_data_and_no_trace_is_left() {
    let ordo = TestOrdo::start().await;
    let email = "zephyrine@example.com";
    let customer = ordo.customer(email).await;
    let api = &customer.api;
    let address_id = write_personal_data(api).await;

    // Sealed from the start: the events hold neither the values nor any clear form.
    let events = raw_events(ordo.pool()).await;
    assert!(
        events.len() >= 3,
        "profile, address and default: {events:?}"
    );
    let stored: Vec<(String, String)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("event {i}"), e.clone()))
        .collect();
    assert_eq!(traces(&stored, &values()), Vec::<String>::new());
    let customer_events: Vec<&String> = events.iter().filter(|e| e.contains("$personal")).collect();
    assert!(!customer_events.is_empty());
    assert!(customer_events
        .iter()
        .all(|e| e.contains("\"sealed\"") && !e.contains("\"clear\"")));

    // JetStream carries what the events table holds: sealed values only.
    let published = stream_payloads(&ordo, customer_events.len()).await;
    assert_eq!(traces(&published, &values()), Vec::<String>::new());
    assert!(
        published.iter().all(|(_, p)| p.contains("sealed")),
        "{published:?}"
    );

    // The customer reads them back in the clear.
    let profile = api.get("/api/v1/users/me").await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.body["full_name"], NAME);
    assert_eq!(profile.body["phone"], PHONE);
    assert_eq!(profile.body["erased"], false);
    let addresses = api.get("/api/v1/users/me/addresses").await;
    assert_eq!(addresses.body["addresses"][0]["address_id"], address_id);
    assert_eq!(addresses.body["addresses"][0]["recipient"], RECIPIENT);
    assert_eq!(addresses.body["addresses"][0]["city"], CITY);
    assert_eq!(addresses.body["addresses"][0]["is_default"], true);

    // The customer directory read model holds them, opened through the vault.
    let directory = directory_row(&ordo, &customer.user_id, true).await;
    assert_eq!(
        directory,
        (Some(NAME.to_owned()), Some(PHONE.to_owned()), 1)
    );

    // A replay keeps them sealed, or opens them when asked to.
    let (ok, out, err) = ordo.cli(&["replay", "--aggregate-type", "customer"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"sealed\"") && !out.contains(NAME), "{out}");
    let (ok, out, err) = ordo
        .cli(&[
            "replay",
            "--aggregate-type",
            "customer",
            "--open-personal-data",
        ])
        .await;
    assert!(ok, "{err}");
    assert!(out.contains(NAME) && out.contains(CITY), "{out}");

    // Erasure.
    let erased = send(api, Method::DELETE, "/api/v1/users/me", None).await;
    assert_eq!(erased.status, 204, "{:?}", erased.body);

    // The token stops working and the account cannot log in.
    assert_eq!(api.get("/api/v1/users/me").await.status, 401);
    let login = ordo
        .api()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": ordo_tests::CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 401, "{:?}", login.body);

    // No table of the database holds a value, nor the email: not the events, not the
    // keys, not the users, not a read model.
    let mut needles = values().to_vec();
    needles.push(email);
    assert_eq!(
        traces(&every_table(ordo.pool()).await, &needles),
        Vec::<String>::new()
    );
    let key: (Option<Vec<u8>>, bool) = sqlx::query_as(
        "SELECT key, erased_at IS NOT NULL FROM personal_data_keys WHERE subject_id = $1::uuid",
    )
    .bind(&customer.user_id)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    assert_eq!(key, (None, true), "the key is deleted");
    assert_eq!(
        raw_events(ordo.pool()).await,
        events,
        "events are kept as they were"
    );

    // The events still load: the admin sees the profile and address as erased.
    let admin = ordo.admin().await;
    let view = admin
        .get(&format!("/api/v1/admin/users/{}", customer.user_id))
        .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    assert_eq!(view.body["profile"]["erased"], true);
    assert_eq!(view.body["profile"]["full_name"], Value::Null);
    assert_eq!(view.body["profile"]["phone"], Value::Null);
    let address = &view.body["addresses"][0];
    assert_eq!(address["address_id"], address_id);
    assert_eq!(address["recipient"], Value::Null);
    assert_eq!(address["city"], Value::Null);
    assert_eq!(address["is_default"], true);

    // A replay of the customer's events shows them, without a trace of the values.
    let (ok, out, err) = ordo.cli(&["replay", "--aggregate-type", "customer"]).await;
    assert!(ok, "{err}");
    assert!(out.lines().count() >= 3, "{out}");
    assert!(out.contains("AddressAdded"), "{out}");
    assert_eq!(
        traces(&[("replay".into(), out)], &values()),
        Vec::<String>::new()
    );

    // A rebuild of the directory from the events writes them as erased.
    let (ok, out, err) = ordo.cli(&["projections", "rebuild", "customers"]).await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        directory_row(&ordo, &customer.user_id, false).await,
        (None, None, 1)
    );
    assert_eq!(
        traces(&every_table(ordo.pool()).await, &needles),
        Vec::<String>::new()
    );

    // Erasing again is harmless.
    let again = send(
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/users/{}", customer.user_id),
        None,
    )
    .await;
    assert_eq!(again.status, 204, "{:?}", again.body);
    ordo.stop().await;
}

#[tokio::test]
async fn an_admin_erases_another_user_and_a_customer_cannot() {
    let ordo = TestOrdo::start().await;
    let victim = ordo.customer("victim@example.com").await;
    let other = ordo.customer("other@example.com").await;
    write_personal_data(&victim.api).await;
    let victim_path = format!("/api/v1/admin/users/{}", victim.user_id);

    // A customer may neither erase nor view another user.
    let refused = send(&other.api, Method::DELETE, &victim_path, None).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(other.api.get(&victim_path).await.status, 403);
    assert_eq!(
        victim.api.get("/api/v1/users/me").await.body["full_name"],
        NAME
    );

    // An admin may; an unknown user is 404. An admin's own account is not erased by itself.
    let admin = ordo.admin().await;
    let own = send(&admin, Method::DELETE, "/api/v1/users/me", None).await;
    assert_eq!(own.status, 403, "{:?}", own.body);
    let admin_id = admin.get("/api/v1/users/me").await.body["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_erased = send(
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/users/{admin_id}"),
        None,
    )
    .await;
    assert_eq!(admin_erased.status, 409, "{:?}", admin_erased.body);
    assert_eq!(
        admin_erased.body["type"],
        "urn:ordo:problem:admin_not_erasable"
    );
    assert_eq!(admin.get("/api/v1/users/me").await.status, 200);
    let unknown = send(
        &admin,
        Method::DELETE,
        "/api/v1/admin/users/6a1f0c3e-0000-4000-8000-000000000001",
        None,
    )
    .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    assert_eq!(unknown.body["type"], "urn:ordo:problem:not_found");
    let erased = send(&admin, Method::DELETE, &victim_path, None).await;
    assert_eq!(erased.status, 204, "{:?}", erased.body);
    assert_eq!(victim.api.get("/api/v1/users/me").await.status, 401);
    let view = admin.get(&victim_path).await;
    assert_eq!(view.body["profile"]["erased"], true);
    assert_eq!(view.body["addresses"][0]["recipient"], Value::Null);

    // The other customer's data is untouched.
    write_personal_data(&other.api).await;
    assert_eq!(
        other.api.get("/api/v1/users/me").await.body["full_name"],
        NAME
    );
    let other_view = admin
        .get(&format!("/api/v1/admin/users/{}", other.user_id))
        .await;
    assert_eq!(other_view.body["profile"]["erased"], false);
    assert_eq!(other_view.body["addresses"][0]["recipient"], RECIPIENT);
    ordo.stop().await;
}

/// The distinctive values of the marketplace test.
const PROVIDER_NAME: &str = "Oswaldine Brackenridge";
const PROVIDER_PHONE: &str = "+44 20 7946 0958";
const BIO: &str = "Tamer of the Grindelwald boilers";
const ORDER_DESCRIPTION: &str = "The Fennimore cistern hums at night";
const ORDER_ADDRESS: &str = "9 Quiddle Lane, Sproutham";

#[tokio::test]
async fn erasing_a_provider_and_a_customer_of_the_marketplace_leaves_no_trace_of_them() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let provider = ordo.provider("oswaldine@example.com").await;
    let profile = send(
        &provider.api,
        Method::PUT,
        "/api/v1/providers/me/profile",
        Some(json!({"full_name": PROVIDER_NAME, "phone": PROVIDER_PHONE,
                    "skills": ["plumbing"], "service_areas": ["NORTH"], "bio": BIO})),
    )
    .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(profile.body["full_name"], PROVIDER_NAME);
    let customer = ordo.customer("quiddle@example.com").await;
    let published = customer
        .api
        .post(
            "/api/v1/service-orders",
            json!({"title": "Cistern", "description": ORDER_DESCRIPTION,
                   "service_type": "plumbing", "price": 5000, "currency": "EUR",
                   "location": "NORTH", "address": ORDER_ADDRESS}),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let order_path = format!(
        "/api/v1/service-orders/{}",
        published.body["order_id"].as_str().unwrap()
    );
    let needles = [
        PROVIDER_NAME,
        PROVIDER_PHONE,
        BIO,
        ORDER_DESCRIPTION,
        ORDER_ADDRESS,
    ];

    // Sealed in the events from the start; opened for their owners and admins.
    let stored: Vec<(String, String)> = raw_events(ordo.pool())
        .await
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("event {i}"), e))
        .collect();
    assert_eq!(traces(&stored, &needles), Vec::<String>::new());
    let seen = admin.get(&order_path).await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["description"], ORDER_DESCRIPTION);
    assert_eq!(seen.body["address"], ORDER_ADDRESS);

    // Both erase their accounts.
    let erased = send(&provider.api, Method::DELETE, "/api/v1/users/me", None).await;
    assert_eq!(erased.status, 204, "{:?}", erased.body);
    let erased = send(&customer.api, Method::DELETE, "/api/v1/users/me", None).await;
    assert_eq!(erased.status, 204, "{:?}", erased.body);

    // No table holds a value; the order still loads, its personal values erased, and the
    // provider's public profile still answers without them.
    assert_eq!(
        traces(&every_table(ordo.pool()).await, &needles),
        Vec::<String>::new()
    );
    let seen = admin.get(&order_path).await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["description"], Value::Null);
    assert_eq!(seen.body["address"], Value::Null);
    assert_eq!(seen.body["title"], "Cistern");
    let public = ordo
        .api()
        .get(&format!("/api/v1/providers/{}", provider.user_id))
        .await;
    assert_eq!(public.status, 200, "{:?}", public.body);
    assert_eq!(public.body["skills"], json!(["plumbing"]));
    assert_eq!(
        traces(
            &[("public profile".into(), public.body.to_string())],
            &needles
        ),
        Vec::<String>::new()
    );

    // A replay of the marketplace's events shows no trace of them either.
    for aggregate_type in ["provider", "service_order"] {
        let (ok, out, err) = ordo
            .cli(&["replay", "--aggregate-type", aggregate_type])
            .await;
        assert!(ok, "{err}");
        assert!(!out.is_empty(), "{aggregate_type} has events");
        assert_eq!(
            traces(&[("replay".into(), out)], &needles),
            Vec::<String>::new()
        );
    }
    ordo.stop().await;
}
