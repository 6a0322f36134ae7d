//! Stream and consumer definitions: the JSON files under `nats/streams/` and
//! `nats/consumers/`, applied to the server by the app at start.
//!
//! The files are written in the NATS CLI's own format so operators can diff and apply the
//! very same files (`nats stream add --config nats/streams/ORDO_ORDER.json`). The stream
//! files are embedded in the binary with `include_str!`, so a deployed `ordo` never depends
//! on its working directory. Files are written for the default namespace `ordo`; for any
//! other namespace (tests, side-by-side deployments) names and subjects are rewritten:
//! `ORDO_` becomes `<NS>_` and `ordo.` becomes `<ns>.`.
//!
//! Streams deliberately carry no per-subject message limit (`max_msgs_per_subject: -1`):
//! each aggregate has its own subject, and on nats-server 2.9 such limits make every
//! publish slow.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, PullConsumer};
use async_nats::jetstream::context::{Context, CreateStreamErrorKind};
use async_nats::jetstream::stream;
use async_nats::jetstream::ErrorCode;

use crate::subjects::{Namespace, AGGREGATE_TYPES};

/// The stream definition files, by file name, as committed under `nats/streams/`.
pub const STREAM_FILES: &[(&str, &str)] = &[
    (
        "ORDO_ORDER.json",
        include_str!("../streams/ORDO_ORDER.json"),
    ),
    (
        "ORDO_INVENTORY.json",
        include_str!("../streams/ORDO_INVENTORY.json"),
    ),
    (
        "ORDO_PAYMENT.json",
        include_str!("../streams/ORDO_PAYMENT.json"),
    ),
    (
        "ORDO_PRODUCT.json",
        include_str!("../streams/ORDO_PRODUCT.json"),
    ),
    (
        "ORDO_BOOKING.json",
        include_str!("../streams/ORDO_BOOKING.json"),
    ),
    ("ORDO_SHOW.json", include_str!("../streams/ORDO_SHOW.json")),
    (
        "ORDO_CATEGORY.json",
        include_str!("../streams/ORDO_CATEGORY.json"),
    ),
    (
        "ORDO_PROMOTION.json",
        include_str!("../streams/ORDO_PROMOTION.json"),
    ),
    (
        "ORDO_COUPON_BATCH.json",
        include_str!("../streams/ORDO_COUPON_BATCH.json"),
    ),
    ("ORDO_CART.json", include_str!("../streams/ORDO_CART.json")),
    (
        "ORDO_CUSTOMER.json",
        include_str!("../streams/ORDO_CUSTOMER.json"),
    ),
    (
        "ORDO_PROVIDER.json",
        include_str!("../streams/ORDO_PROVIDER.json"),
    ),
    (
        "ORDO_SERVICE_ORDER.json",
        include_str!("../streams/ORDO_SERVICE_ORDER.json"),
    ),
    (
        "ORDO_SHIPMENT.json",
        include_str!("../streams/ORDO_SHIPMENT.json"),
    ),
    (
        "ORDO_AFTERSALE.json",
        include_str!("../streams/ORDO_AFTERSALE.json"),
    ),
    (
        "ORDO_REVIEW.json",
        include_str!("../streams/ORDO_REVIEW.json"),
    ),
    ("ORDO_DLQ.json", include_str!("../streams/ORDO_DLQ.json")),
];

/// The durable consumers' definitions under `nats/consumers/`, embedded so the binary
/// applies exactly the files an operator can apply with `nats consumer add`.
pub const CONSUMER_FILES: &[(&str, &str)] = &[
    (
        "projection-products.json",
        include_str!("../consumers/projection-products.json"),
    ),
    (
        "projection-customers.json",
        include_str!("../consumers/projection-customers.json"),
    ),
    (
        "projection-categories.json",
        include_str!("../consumers/projection-categories.json"),
    ),
    (
        "projection-promotions.json",
        include_str!("../consumers/projection-promotions.json"),
    ),
    (
        "projection-coupons.json",
        include_str!("../consumers/projection-coupons.json"),
    ),
    (
        "projection-inventory.json",
        include_str!("../consumers/projection-inventory.json"),
    ),
    (
        "projection-orders.json",
        include_str!("../consumers/projection-orders.json"),
    ),
    (
        "projection-payments.json",
        include_str!("../consumers/projection-payments.json"),
    ),
    (
        "projection-providers.json",
        include_str!("../consumers/projection-providers.json"),
    ),
    (
        "projection-service-orders.json",
        include_str!("../consumers/projection-service-orders.json"),
    ),
    (
        "notifications-service-orders.json",
        include_str!("../consumers/notifications-service-orders.json"),
    ),
    (
        "saga-service-order.json",
        include_str!("../consumers/saga-service-order.json"),
    ),
    (
        "saga-service-order-payments.json",
        include_str!("../consumers/saga-service-order-payments.json"),
    ),
    (
        "saga-checkout.json",
        include_str!("../consumers/saga-checkout.json"),
    ),
    (
        "saga-checkout-payments.json",
        include_str!("../consumers/saga-checkout-payments.json"),
    ),
    (
        "projection-shows.json",
        include_str!("../consumers/projection-shows.json"),
    ),
    (
        "projection-bookings.json",
        include_str!("../consumers/projection-bookings.json"),
    ),
    (
        "saga-booking.json",
        include_str!("../consumers/saga-booking.json"),
    ),
    (
        "saga-booking-payments.json",
        include_str!("../consumers/saga-booking-payments.json"),
    ),
    (
        "saga-booking-seats.json",
        include_str!("../consumers/saga-booking-seats.json"),
    ),
    (
        "policy-seat-stock.json",
        include_str!("../consumers/policy-seat-stock.json"),
    ),
    (
        "notifications-orders.json",
        include_str!("../consumers/notifications-orders.json"),
    ),
    (
        "notifications-payments.json",
        include_str!("../consumers/notifications-payments.json"),
    ),
    (
        "notifications-bookings.json",
        include_str!("../consumers/notifications-bookings.json"),
    ),
    (
        "notifications-inventory.json",
        include_str!("../consumers/notifications-inventory.json"),
    ),
    (
        "projection-search-es.json",
        include_str!("../consumers/projection-search-es.json"),
    ),
    (
        "projection-search-es-inventory.json",
        include_str!("../consumers/projection-search-es-inventory.json"),
    ),
    (
        "projection-search-es-shows.json",
        include_str!("../consumers/projection-search-es-shows.json"),
    ),
    (
        "projection-shipments.json",
        include_str!("../consumers/projection-shipments.json"),
    ),
    (
        "saga-fulfilment.json",
        include_str!("../consumers/saga-fulfilment.json"),
    ),
    (
        "saga-fulfilment-shipments.json",
        include_str!("../consumers/saga-fulfilment-shipments.json"),
    ),
    (
        "projection-aftersales.json",
        include_str!("../consumers/projection-aftersales.json"),
    ),
    (
        "saga-aftersale.json",
        include_str!("../consumers/saga-aftersale.json"),
    ),
    (
        "notifications-aftersales.json",
        include_str!("../consumers/notifications-aftersales.json"),
    ),
    (
        "projection-reviews.json",
        include_str!("../consumers/projection-reviews.json"),
    ),
    (
        "notifications-reviews.json",
        include_str!("../consumers/notifications-reviews.json"),
    ),
];

/// The embedded definition of the consumer named `durable_name`, if there is one.
pub fn consumer_definition(
    durable_name: &str,
    namespace: &Namespace,
) -> Option<Result<ConsumerDefinition, DefinitionError>> {
    CONSUMER_FILES
        .iter()
        .find(|(file, _)| file.strip_suffix(".json") == Some(durable_name))
        .map(|(file, json)| parse_consumer(file, json, namespace))
}

/// Why a definition could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The file is not a valid stream or consumer configuration.
    #[error("definition {file}: {source}")]
    Parse {
        /// The file (or label) the JSON came from.
        file: String,
        /// What serde refused.
        #[source]
        source: serde_json::Error,
    },
    /// A consumer definition whose stream cannot be told from its filter subject.
    #[error("consumer definition {file}: cannot tell its stream from filter_subject {filter:?}")]
    UnknownStream {
        /// The file (or label) the JSON came from.
        file: String,
        /// The filter subject found in it.
        filter: String,
    },
    /// Reading a definitions directory failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path that could not be read.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused a stream.
    #[error("stream {stream}: {source}")]
    Stream {
        /// The stream name.
        stream: String,
        /// The server's or client's error.
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    /// The server refused a consumer.
    #[error("consumer {consumer} on {stream}: {source}")]
    Consumer {
        /// The stream name.
        stream: String,
        /// The durable name.
        consumer: String,
        /// The server's or client's error.
        #[source]
        source: async_nats::jetstream::stream::ConsumerError,
    },
}

/// Rewrites a name or subject written for the default namespace into `namespace`.
fn rewrite(value: &str, namespace: &Namespace) -> String {
    if namespace.as_str() == Namespace::DEFAULT {
        return value.to_owned();
    }
    let upper = format!("{}_", Namespace::DEFAULT.to_ascii_uppercase());
    let lower = format!("{}.", Namespace::DEFAULT);
    if let Some(rest) = value.strip_prefix(&upper) {
        format!("{}_{rest}", namespace.stream_prefix())
    } else if let Some(rest) = value.strip_prefix(&lower) {
        format!("{}.{rest}", namespace.as_str())
    } else {
        value.to_owned()
    }
}

/// Parses one stream definition (CLI JSON) and rewrites it for `namespace`.
pub fn parse_stream(
    file: &str,
    json: &str,
    namespace: &Namespace,
) -> Result<stream::Config, DefinitionError> {
    let mut config: stream::Config =
        serde_json::from_str(json).map_err(|source| DefinitionError::Parse {
            file: file.to_owned(),
            source,
        })?;
    config.name = rewrite(&config.name, namespace);
    config.num_replicas = namespace.stream_replicas();
    config.subjects = config
        .subjects
        .iter()
        .map(|s| rewrite(s, namespace))
        .collect();
    Ok(config)
}

/// Every embedded stream definition, rewritten for `namespace`: one per aggregate type
/// plus the dead-letter stream.
pub fn stream_configs(namespace: &Namespace) -> Result<Vec<stream::Config>, DefinitionError> {
    STREAM_FILES
        .iter()
        .map(|(file, json)| parse_stream(file, json, namespace))
        .collect()
}

/// The stream configuration for an aggregate type, including types without a committed
/// file: those get the same settings as `ORDO_ORDER`, so a new aggregate never blocks the
/// relay for want of a stream.
pub fn stream_config_for(
    namespace: &Namespace,
    aggregate_type: &str,
) -> Result<stream::Config, DefinitionError> {
    let wanted = namespace.stream_name(aggregate_type);
    let configs = stream_configs(namespace)?;
    if let Some(found) = configs.iter().find(|c| c.name == wanted) {
        return Ok(found.clone());
    }
    let (file, template) = STREAM_FILES[0];
    let mut config = parse_stream(file, template, namespace)?;
    config.name = wanted;
    config.subjects = vec![namespace.stream_filter(aggregate_type)];
    config.description = Some(format!("Ordo {aggregate_type} events"));
    Ok(config)
}

/// Creates a stream, or updates it to `config` when it exists.
///
/// Safe when several processes start at once: whoever loses the race to create finds the
/// stream existing and updates it to the same configuration instead.
pub async fn ensure_stream(
    jetstream: &Context,
    config: &stream::Config,
) -> Result<stream::Info, DefinitionError> {
    let wrap = |source| DefinitionError::Stream {
        stream: config.name.clone(),
        source,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match jetstream.update_stream(config).await {
            Ok(info) => return Ok(info),
            Err(err) if err.kind() == CreateStreamErrorKind::NotFound => {}
            Err(err) => return Err(wrap(err)),
        }
        match jetstream.create_stream(config.clone()).await {
            Ok(created) => return Ok(created.cached_info().clone()),
            Err(err) if attempt < 3 && is_already_exists(&err) => {
                // Another process created it between our update and create: update again.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(wrap(err)),
        }
    }
}

fn is_already_exists(err: &async_nats::jetstream::context::CreateStreamError) -> bool {
    match err.kind() {
        CreateStreamErrorKind::JetStream(js) => js.error_code() == ErrorCode::STREAM_NAME_EXIST,
        _ => false,
    }
}

/// Creates or updates every stream: one per aggregate type in [`AGGREGATE_TYPES`] and the
/// dead-letter stream. Idempotent.
pub async fn ensure_streams(
    jetstream: &Context,
    namespace: &Namespace,
) -> Result<(), DefinitionError> {
    let configs = stream_configs(namespace)?;
    for config in &configs {
        ensure_stream(jetstream, config).await?;
    }
    // A type listed in AGGREGATE_TYPES but without a committed file still gets its stream.
    for aggregate_type in AGGREGATE_TYPES {
        let name = namespace.stream_name(aggregate_type);
        if !configs.iter().any(|c| c.name == name) {
            ensure_stream(jetstream, &stream_config_for(namespace, aggregate_type)?).await?;
        }
    }
    Ok(())
}

/// A durable consumer read from a `nats/consumers/<NAME>.json` file.
#[derive(Debug, Clone)]
pub struct ConsumerDefinition {
    /// The stream it reads, told from its filter subject (`ordo.events.order.>` reads
    /// `ORDO_ORDER`; `ordo.dlq.<x>` reads `ORDO_DLQ`), since the CLI's consumer JSON does
    /// not name its stream (`nats consumer add ORDO_ORDER --config <file>`).
    pub stream: String,
    /// The consumer configuration, rewritten for the namespace.
    pub config: pull::Config,
}

/// Parses one consumer definition (the CLI's ConsumerConfig JSON: `durable_name`,
/// `filter_subject`, `ack_policy`, `deliver_policy`, `ack_wait`, `max_deliver`,
/// `max_ack_pending`...) and rewrites it for `namespace`.
pub fn parse_consumer(
    file: &str,
    json: &str,
    namespace: &Namespace,
) -> Result<ConsumerDefinition, DefinitionError> {
    let parse_error = |source| DefinitionError::Parse {
        file: file.to_owned(),
        source,
    };
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(parse_error)?;
    // The CLI omits policies left at their defaults; async-nats requires them.
    if let Some(object) = value.as_object_mut() {
        object
            .entry("replay_policy")
            .or_insert_with(|| "instant".into());
        object
            .entry("ack_policy")
            .or_insert_with(|| "explicit".into());
        object
            .entry("deliver_policy")
            .or_insert_with(|| "all".into());
    }
    let mut config: pull::Config = serde_json::from_value(value).map_err(parse_error)?;
    config.filter_subject = rewrite(&config.filter_subject, namespace);
    let filter = config.filter_subject.clone();
    let events_prefix = format!("{}.events.", namespace.as_str());
    let dlq_prefix = format!("{}.dlq.", namespace.as_str());
    let stream = if let Some(rest) = filter.strip_prefix(&events_prefix) {
        let aggregate_type = rest.split('.').next().unwrap_or_default();
        (!aggregate_type.is_empty() && aggregate_type != ">" && aggregate_type != "*")
            .then(|| namespace.stream_name(aggregate_type))
    } else if filter.starts_with(&dlq_prefix) {
        Some(namespace.dlq_stream())
    } else {
        None
    };
    let stream = stream.ok_or_else(|| DefinitionError::UnknownStream {
        file: file.to_owned(),
        filter,
    })?;
    Ok(ConsumerDefinition { stream, config })
}

/// Loads every `*.json` consumer definition in `dir` (normally `nats/consumers/`), sorted
/// by file name. A missing directory yields no definitions.
pub fn load_consumers(
    dir: &Path,
    namespace: &Namespace,
) -> Result<Vec<ConsumerDefinition>, DefinitionError> {
    let io = |source| DefinitionError::Io {
        path: dir.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io(err)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let json = std::fs::read_to_string(path).map_err(io)?;
            parse_consumer(&path.display().to_string(), &json, namespace)
        })
        .collect()
}

/// Creates or updates a durable consumer from its definition.
pub async fn ensure_consumer_definition(
    jetstream: &Context,
    definition: &ConsumerDefinition,
) -> Result<PullConsumer, DefinitionError> {
    jetstream
        .create_consumer_on_stream(definition.config.clone(), &definition.stream)
        .await
        .map_err(|source| DefinitionError::Consumer {
            stream: definition.stream.clone(),
            consumer: definition.config.durable_name.clone().unwrap_or_default(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
    use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};

    #[test]
    fn every_stream_file_parses_with_the_agreed_settings() {
        let configs = stream_configs(&Namespace::default()).unwrap();
        assert_eq!(configs.len(), AGGREGATE_TYPES.len() + 1);
        for config in &configs {
            let file = STREAM_FILES
                .iter()
                .find(|(f, _)| f.trim_end_matches(".json") == config.name);
            assert!(
                file.is_some(),
                "{} is not named after its file",
                config.name
            );
            assert_eq!(config.retention, RetentionPolicy::Limits);
            assert_eq!(config.storage, StorageType::File);
            assert_eq!(config.discard, DiscardPolicy::Old);
            assert_eq!(config.num_replicas, 1);
            assert_eq!(config.duplicate_window, Duration::from_secs(120));
            assert!(config.max_messages_per_subject <= 0, "no per-subject limit");
            assert!(!config.allow_rollup && !config.deny_delete && !config.deny_purge);
        }
        for aggregate_type in AGGREGATE_TYPES {
            let config = configs
                .iter()
                .find(|c| c.name == format!("ORDO_{}", aggregate_type.to_uppercase()))
                .unwrap();
            assert_eq!(
                config.subjects,
                vec![format!("ordo.events.{aggregate_type}.>")]
            );
        }
        let dlq = configs.iter().find(|c| c.name == "ORDO_DLQ").unwrap();
        assert_eq!(dlq.subjects, vec!["ordo.dlq.>".to_owned()]);
    }

    #[test]
    fn every_stream_takes_the_namespace_replicas() {
        let ns = Namespace::parse("ordo").unwrap().with_stream_replicas(3);
        let configs = stream_configs(&ns).unwrap();
        assert!(configs.iter().all(|c| c.num_replicas == 3));
        assert_eq!(stream_config_for(&ns, "brand_new").unwrap().num_replicas, 3);
        let ns = Namespace::parse("ordo").unwrap().with_stream_replicas(0);
        assert_eq!(ns.stream_replicas(), 1);
    }

    #[test]
    fn stream_files_are_rewritten_for_another_namespace() {
        let ns = Namespace::parse("t0000abcd").unwrap();
        let configs = stream_configs(&ns).unwrap();
        let order = configs
            .iter()
            .find(|c| c.name == "T0000ABCD_ORDER")
            .unwrap();
        assert_eq!(order.subjects, vec!["t0000abcd.events.order.>".to_owned()]);
        assert!(configs.iter().any(|c| c.name == "T0000ABCD_DLQ"));
    }

    #[test]
    fn types_without_a_file_get_a_stream_like_the_others() {
        let ns = Namespace::default();
        let config = stream_config_for(&ns, "catalog").unwrap();
        assert_eq!(config.name, "ORDO_CATALOG");
        assert_eq!(config.subjects, vec!["ordo.events.catalog.>".to_owned()]);
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
    }

    #[test]
    fn consumer_definitions_parse_and_find_their_stream() {
        let json = r#"{
            "durable_name": "projection-orders",
            "filter_subject": "ordo.events.order.>",
            "ack_policy": "explicit",
            "deliver_policy": "all",
            "ack_wait": 30000000000,
            "max_deliver": 8,
            "max_ack_pending": 256
        }"#;
        let ns = Namespace::parse("tabc").unwrap();
        let def = parse_consumer("projection-orders.json", json, &ns).unwrap();
        assert_eq!(def.stream, "TABC_ORDER");
        assert_eq!(def.config.filter_subject, "tabc.events.order.>");
        assert_eq!(
            def.config.durable_name.as_deref(),
            Some("projection-orders")
        );
        assert_eq!(def.config.ack_policy, AckPolicy::Explicit);
        assert_eq!(def.config.deliver_policy, DeliverPolicy::All);
        assert_eq!(def.config.ack_wait, Duration::from_secs(30));
        assert_eq!(def.config.max_deliver, 8);
        assert_eq!(def.config.max_ack_pending, 256);

        let dlq = parse_consumer(
            "dlq.json",
            r#"{"durable_name": "dlq-reader", "filter_subject": "ordo.dlq.>"}"#,
            &Namespace::default(),
        )
        .unwrap();
        assert_eq!(dlq.stream, "ORDO_DLQ");

        let err = parse_consumer(
            "bad.json",
            r#"{"durable_name": "x", "filter_subject": "elsewhere.>"}"#,
            &Namespace::default(),
        );
        assert!(matches!(err, Err(DefinitionError::UnknownStream { .. })));
    }

    #[test]
    fn committed_consumer_files_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("consumers");
        for def in load_consumers(&dir, &Namespace::default()).unwrap() {
            assert!(
                def.config.durable_name.is_some(),
                "{def:?} has no durable name"
            );
            assert_eq!(def.config.ack_policy, AckPolicy::Explicit);
        }
    }

    #[test]
    fn every_consumer_file_is_embedded_under_its_durable_name() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("consumers");
        let on_disk = load_consumers(&dir, &Namespace::default()).unwrap();
        assert_eq!(on_disk.len(), CONSUMER_FILES.len());
        for def in on_disk {
            let name = def.config.durable_name.clone().unwrap();
            let embedded = consumer_definition(&name, &Namespace::default())
                .unwrap_or_else(|| panic!("{name}.json is not embedded"))
                .unwrap();
            assert_eq!(embedded.config.durable_name.as_deref(), Some(name.as_str()));
            assert_eq!(embedded.stream, def.stream);
        }
    }
}
