//! The served OpenAPI document against the code, by schemathesis (from PyPI): generated
//! requests to every operation, as an admin, and no answer may be a server error or
//! contradict the document (an undeclared status, content type or header, a body off its
//! schema, an invalid request accepted, a missing required header or an unsupported method
//! not refused).
//!
//! The document states the bounds the handlers enforce (patterns of texts, SKUs, UUIDs
//! and cursors, lengths, ranges), and a well-formed request naming something that does not
//! exist is answered 404, so that `positive_data_acceptance` (a request the document allows
//! is not refused as invalid) holds. The rules that span fields, which a JSON Schema cannot
//! state (a validity window is not empty, a session's seat areas have distinct ids), are
//! named per operation in `tests/schemathesis.toml`, where such a request may be answered 422.
//!
//! `scripts/test.sh` installs schemathesis and names its `st` command in
//! `ORDO_SCHEMATHESIS`; without it, `st` is looked for on the PATH. To check one operation
//! alone, name it in `ORDO_CONTRACT_OPERATION` (for example `PUT /api/v1/providers/me/profile`).

use ordo_tests::TestOrdo;

#[tokio::test]
async fn the_served_openapi_document_says_what_the_code_answers() {
    let st = std::env::var("ORDO_SCHEMATHESIS").unwrap_or_else(|_| "st".into());
    let ordo = TestOrdo::start().await;
    let admin = ordo.admin().await;
    let token = admin.token.clone().expect("the admin has a token");
    let output = tokio::process::Command::new(&st)
        .args([
            "--config-file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml"),
            "run",
            &format!("{}/api/v1/openapi.json", ordo.base_url()),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "10",
            "--seed",
            "1",
            // Generating texts that match both a pattern and a length bound filters many
            // candidates; that is not a finding about the API.
            "--suppress-health-check",
            "filter_too_much",
            "--no-color",
        ])
        .args(
            std::env::var("ORDO_CONTRACT_OPERATION")
                .map(|operation| vec!["--include-name".to_owned(), operation])
                .unwrap_or_default(),
        )
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "cannot run schemathesis ({st}: {err}); scripts/test.sh installs it, or: \
                 pip install schemathesis"
            )
        });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers that contradict the document:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("passed"),
        "schemathesis ran no test case:\n{report}"
    );
    ordo.stop().await;
}
