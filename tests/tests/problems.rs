//! Every error answer of the API is a problem document (`application/problem+json`), also
//! where the answer comes from the framework rather than a handler: a query string that does
//! not parse, a body of the wrong media type (400, as every malformed body), a method the
//! route does not have.

use ordo_tests::TestOrdo;

/// Sends a raw request and answers status, content type and the JSON body.
async fn raw(request: reqwest::RequestBuilder) -> (u16, String, serde_json::Value) {
    let response = request.send().await.expect("ordo answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, content_type, body)
}

#[tokio::test]
async fn framework_rejections_are_problem_documents() {
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let token = admin.token.clone().expect("the admin has a token");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", ordo.base_url());

    let cases = [
        (
            "a query string that does not parse",
            client
                .get(url("/api/v1/products?limit=many"))
                .bearer_auth(&token),
            400,
        ),
        (
            "a body that is not JSON by its media type",
            client
                .post(url("/api/v1/products"))
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body("sku=1"),
            400,
        ),
        (
            "a method the route does not have",
            client.delete(url("/api/v1/products")).bearer_auth(&token),
            405,
        ),
    ];
    for (what, request, expected) in cases {
        let (status, content_type, body) = raw(request).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(body["status"], expected, "{what}: {body}");
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:ordo:problem:")),
            "{what}: {body}"
        );
    }
    ordo.stop().await;
}
