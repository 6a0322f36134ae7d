//! The operator subcommands of `ordo` print their answer and nothing else: no log lines
//! around it unless `ORDO_LOG` asks for them.

use ordo_tests::{delete_streams, nats_url, ordo_binary, unique_namespace, TestDatabase};
use tokio::process::Command;

/// Runs `ordo <args>` with only the connection settings (no `ORDO_LOG`), answering success,
/// standard output and standard error.
async fn ordo(database_url: &str, namespace: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(ordo_binary())
        .args(args)
        .env_remove("ORDO_LOG")
        .env("ORDO_DATABASE_URL", database_url)
        .env("ORDO_NATS_URL", nats_url())
        .env("ORDO_NATS_NAMESPACE", namespace)
        .output()
        .await
        .expect("ordo runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn subcommands_print_their_answer_and_no_log_lines() {
    let db = TestDatabase::create().await.expect("database");
    let namespace = unique_namespace();

    let (ok, out, err) = ordo(&db.url, &namespace, &["migrate"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "database migrated and streams ready\n");
    assert_eq!(err, "", "migrate logs nothing by default");

    let (ok, out, err) = ordo(&db.url, &namespace, &["dlq", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "no dead letters\n");
    assert_eq!(err, "", "dlq list logs nothing by default");

    let (ok, out, err) = ordo(&db.url, &namespace, &["projections", "status", "--json"]).await;
    assert!(ok, "{err}");
    assert_eq!(err, "", "projections status logs nothing by default");
    let reports: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON report"))
        .collect();
    assert!(
        reports.iter().any(|r| r["name"] == "projection-orders"),
        "{out}"
    );

    let (ok, out, err) = ordo(&db.url, &namespace, &["streams", "rebuild", "order"]).await;
    assert!(ok, "{err}");
    assert_eq!(err, "", "streams rebuild logs nothing by default");
    assert_eq!(out.lines().count(), 1, "one line of answer: {out}");

    // A bad argument is one plain line on stderr and a failure exit.
    let (ok, out, err) = ordo(&db.url, &namespace, &["projections", "rebuild", "nope"]).await;
    assert!(!ok);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ordo: "), "{err}");

    delete_streams(&namespace).await;
}
