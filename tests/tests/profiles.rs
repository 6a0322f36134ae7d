//! Profiles and postal addresses against a real `ordo serve`: the profile answers the name
//! given at registration until one is set; one address is the default at a time (the
//! first, or the one chosen; removing it passes the default to the oldest remaining); a
//! foreign address is 404; bad input is a problem naming its field and changes nothing; at
//! most 20 addresses.

use ordo_tests::{Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

fn address(recipient: &str) -> Value {
    json!({"recipient": recipient, "phone": "+86 138 0013 8000", "province": "Zhejiang",
           "city": "Hangzhou", "district": "Xihu", "detail": "1 Wensan Road", "postal_code": "310000"})
}

async fn add(api: &Api, body: Value) -> ordo_tests::Answer {
    api.post("/api/v1/users/me/addresses", body).await
}

async fn addresses(api: &Api) -> Vec<Value> {
    let answer = api.get("/api/v1/users/me/addresses").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["addresses"].as_array().unwrap().clone()
}

/// The recipients of the addresses marked default.
async fn defaults(api: &Api) -> Vec<String> {
    addresses(api)
        .await
        .iter()
        .filter(|a| a["is_default"] == true)
        .map(|a| a["recipient"].as_str().unwrap().to_owned())
        .collect()
}

async fn patch(api: &Api, path: &str, body: Value) -> ordo_tests::Answer {
    api.send(Method::PATCH, path, Some(body), &[]).await
}

#[tokio::test]
async fn the_profile_shows_the_registered_name_until_set_and_validates_its_fields() {
    let ordo = TestOrdo::start().await;
    let customer = ordo.customer("profile@example.com").await;
    let api = &customer.api;
    let profile = api.get("/api/v1/users/me").await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(profile.body["user_id"], customer.user_id);
    assert_eq!(profile.body["full_name"], "Test Customer");
    assert_eq!(profile.body["phone"], Value::Null);

    let set = patch(
        api,
        "/api/v1/users/me",
        json!({"phone": "+1 (415) 555-0100"}),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["phone"], "+1 (415) 555-0100");
    assert_eq!(set.body["full_name"], "Test Customer");
    let set = patch(api, "/api/v1/users/me", json!({"full_name": "  Ada King "})).await;
    assert_eq!(set.body["full_name"], "Ada King");
    assert_eq!(
        api.get("/api/v1/users/me").await.body["phone"],
        "+1 (415) 555-0100"
    );

    for (body, field) in [
        (json!({"phone": "12ab"}), "phone"),
        (json!({"phone": "1234"}), "phone"),
        (json!({"full_name": ""}), "full_name"),
        (json!({"full_name": "x".repeat(101)}), "full_name"),
    ] {
        let refused = patch(api, "/api/v1/users/me", body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {:?}", refused.body);
        assert_eq!(refused.body["type"], "urn:ordo:problem:validation_failed");
        assert!(
            refused.body.to_string().contains(field),
            "{:?}",
            refused.body
        );
    }
    let profile = api.get("/api/v1/users/me").await.body;
    assert_eq!(profile["full_name"], "Ada King");
    assert_eq!(profile["phone"], "+1 (415) 555-0100");
    ordo.stop().await;
}

#[tokio::test]
async fn one_address_is_the_default_at_a_time() {
    let ordo = TestOrdo::start().await;
    let customer = ordo.customer("addresses@example.com").await;
    let api = &customer.api;

    let first = add(api, address("First")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(
        first.body["is_default"], true,
        "the first address is the default"
    );
    assert_eq!(first.body["recipient"], "First");
    assert_eq!(first.body["postal_code"], "310000");
    let first_id = first.body["address_id"].as_str().unwrap().to_owned();
    assert_eq!(
        first.header("location").as_deref(),
        Some(format!("/api/v1/users/me/addresses/{first_id}").as_str())
    );
    let second = add(api, address("Second")).await;
    assert_eq!(second.body["is_default"], false);
    let second_id = second.body["address_id"].as_str().unwrap().to_owned();
    assert_eq!(defaults(api).await, ["First"]);

    let mut third_body = address("Third");
    third_body["is_default"] = json!(true);
    let third = add(api, third_body).await;
    assert_eq!(third.body["is_default"], true);
    let third_id = third.body["address_id"].as_str().unwrap().to_owned();
    assert_eq!(defaults(api).await, ["Third"]);

    // Choosing another default moves it; unsetting the default is refused.
    let chosen = patch(
        api,
        &format!("/api/v1/users/me/addresses/{second_id}"),
        json!({"is_default": true, "city": "Ningbo"}),
    )
    .await;
    assert_eq!(chosen.status, 200, "{:?}", chosen.body);
    assert_eq!(chosen.body["city"], "Ningbo");
    assert_eq!(chosen.body["recipient"], "Second");
    assert_eq!(defaults(api).await, ["Second"]);
    let unset = patch(
        api,
        &format!("/api/v1/users/me/addresses/{second_id}"),
        json!({"is_default": false}),
    )
    .await;
    assert_eq!(unset.status, 409, "{:?}", unset.body);
    assert_eq!(
        unset.body["type"],
        "urn:ordo:problem:default_address_required"
    );

    // Removing the default passes it to the oldest remaining address.
    let removed = api
        .send(
            Method::DELETE,
            &format!("/api/v1/users/me/addresses/{second_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    assert_eq!(defaults(api).await, ["First"]);
    let left: Vec<Value> = addresses(api).await;
    assert_eq!(left.len(), 2);
    assert_eq!(left[0]["address_id"], first_id);
    assert_eq!(left[1]["address_id"], third_id);
    let again = api
        .send(
            Method::DELETE,
            &format!("/api/v1/users/me/addresses/{second_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, 404);
    ordo.stop().await;
}

#[tokio::test]
async fn foreign_addresses_are_not_found_bad_input_changes_nothing_and_twenty_is_the_limit() {
    let ordo = TestOrdo::start().await;
    let owner = ordo.customer("owner@example.com").await;
    let stranger = ordo.customer("stranger@example.com").await;
    let owned = add(&owner.api, address("Owner")).await;
    let owned_id = owned.body["address_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/users/me/addresses/{owned_id}");

    let foreign = patch(&stranger.api, &path, json!({"city": "Elsewhere"})).await;
    assert_eq!(foreign.status, 404, "{:?}", foreign.body);
    assert_eq!(foreign.body["type"], "urn:ordo:problem:not_found");
    let foreign = stranger.api.send(Method::DELETE, &path, None, &[]).await;
    assert_eq!(foreign.status, 404);
    assert!(addresses(&stranger.api).await.is_empty());
    let not_an_id = patch(&owner.api, "/api/v1/users/me/addresses/nope", json!({})).await;
    assert_eq!(not_an_id.status, 404);
    assert_eq!(addresses(&owner.api).await[0]["city"], "Hangzhou");

    for (field, value) in [
        ("recipient", json!("")),
        ("phone", json!("call me")),
        ("city", json!("x".repeat(101))),
        ("detail", json!("")),
        ("postal_code", json!("31.0000")),
        ("district", json!("a\u{7}b")),
    ] {
        let mut body = address("Bad");
        body[field] = value;
        let refused = add(&owner.api, body).await;
        assert_eq!(refused.status, 422, "{field}: {:?}", refused.body);
        assert_eq!(refused.body["type"], "urn:ordo:problem:validation_failed");
        assert!(
            refused.body.to_string().contains(field),
            "{:?}",
            refused.body
        );
        let refused = patch(&owner.api, &path, json!({ field: "" })).await;
        assert_eq!(refused.status, 422, "{field}: {:?}", refused.body);
    }
    let array = patch(&owner.api, "/api/v1/users/me", json!([null, null])).await;
    assert_eq!(
        array.status, 422,
        "a body that is not an object: {:?}",
        array.body
    );
    let missing = add(&owner.api, json!({"recipient": "No city"})).await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    assert_eq!(addresses(&owner.api).await.len(), 1, "nothing was added");
    assert_eq!(addresses(&owner.api).await[0]["recipient"], "Owner");

    for n in 1..20 {
        let added = add(&owner.api, address(&format!("Extra {n}"))).await;
        assert_eq!(added.status, 201, "{n}: {:?}", added.body);
    }
    let over = add(&owner.api, address("One too many")).await;
    assert_eq!(over.status, 409, "{:?}", over.body);
    assert_eq!(over.body["type"], "urn:ordo:problem:address_limit_reached");
    assert_eq!(addresses(&owner.api).await.len(), 20);
    ordo.stop().await;
}
