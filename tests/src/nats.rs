//! NATS of the tests: the server URL, a JetStream namespace per test, and the deletion of a
//! namespace's streams once the test is over.

use futures::StreamExt;
use uuid::Uuid;

/// The NATS server of the tests.
pub fn nats_url() -> String {
    std::env::var("ORDO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A NATS namespace no other test uses.
pub fn unique_namespace() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// The name of the JetStream stream of `kind` (`ORDER`, `PAYMENT`...) in `namespace`.
pub fn stream_name(namespace: &str, kind: &str) -> String {
    format!("{}_{kind}", namespace.to_uppercase())
}

/// Deletes every stream of a namespace on the test server (end-of-test cleanup).
pub async fn delete_streams(namespace: &str) {
    delete_streams_on(&nats_url(), namespace).await;
}

/// Deletes every stream of a namespace on the server at `url`.
pub async fn delete_streams_on(url: &str, namespace: &str) {
    let Ok(client) = async_nats::connect(url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let prefix = format!("{}_", namespace.to_uppercase());
    let mut names = js.stream_names();
    let mut doomed = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        if name.starts_with(&prefix) {
            doomed.push(name);
        }
    }
    for name in doomed {
        let _ = js.delete_stream(&name).await;
    }
}
