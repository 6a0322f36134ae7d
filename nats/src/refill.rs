//! Refilling a JetStream stream from the Postgres event store.
//!
//! Postgres is the source of truth; a stream is a copy that can be lost or damaged
//! (nats-server 2.9 does not fsync every message, so a power cut can cost the latest ones).
//! [`refill_stream`] republishes every stored event of one aggregate type, in
//! `events.position` order, with exactly the subject, headers and `Nats-Msg-Id` the relay
//! uses ([`OutgoingEvent::from_row`]). Consumers then re-read what they already applied as
//! no-ops: their claims ([`crate::applied`]) recognise each aggregate sequence.
//!
//! Without purging, events still in the stream's duplicate window are dropped by JetStream
//! and older ones are appended again (harmless, thanks to the claims). With purging, the
//! stream is emptied first, so it ends with exactly one message per stored event: what a
//! damaged stream needs.

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::PgPool;

use crate::definitions;
use crate::envelope::{EventRow, OutgoingEvent};
use crate::subjects::{Namespace, AGGREGATE_TYPES};

/// How many publishes are in flight before their acknowledgements are awaited.
const PIPELINE: usize = 256;

/// What a refill did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefillReport {
    /// The stream refilled.
    pub stream: String,
    /// The aggregate type whose events it holds.
    pub aggregate_type: String,
    /// Messages removed by `--purge` before publishing.
    pub purged: u64,
    /// Events read from Postgres and published.
    pub published: u64,
    /// Of those, the ones JetStream dropped as duplicates (still in its window).
    pub duplicates: u64,
    /// Messages in the stream afterwards.
    pub messages: u64,
}

/// The aggregate type of a stream named either as this namespace names it
/// (`T1234_ORDER`), as the committed definition files name it (`ORDO_ORDER`), or by the
/// aggregate type itself (`order`). Dead letters are not events and cannot be refilled.
pub fn aggregate_type_of(namespace: &Namespace, stream: &str) -> Result<&'static str, String> {
    let found = AGGREGATE_TYPES.iter().copied().find(|aggregate_type| {
        stream == namespace.stream_name(aggregate_type)
            || stream == Namespace::default().stream_name(aggregate_type)
            || stream == *aggregate_type
    });
    found.ok_or_else(|| {
        let valid: Vec<String> = AGGREGATE_TYPES
            .iter()
            .map(|t| namespace.stream_name(t))
            .collect();
        format!(
            "unknown stream {stream:?}: the event streams are {}",
            valid.join(", ")
        )
    })
}

/// Republishes every stored event of `aggregate_type` into its stream (created when
/// missing), in `events.position` order; purges the stream first when `purge` is set.
pub async fn refill_stream(
    js: &async_nats::jetstream::Context,
    pool: &PgPool,
    namespace: &Namespace,
    aggregate_type: &str,
    purge: bool,
) -> anyhow::Result<RefillReport> {
    let config = definitions::stream_config_for(namespace, aggregate_type)?;
    definitions::ensure_stream(js, &config).await?;
    let mut stream = js.get_stream(&config.name).await?;
    let mut report = RefillReport {
        stream: config.name.clone(),
        aggregate_type: aggregate_type.to_owned(),
        ..RefillReport::default()
    };
    if purge {
        report.purged = stream.purge().await?.purged;
    }

    let mut rows = sqlx::query_as::<_, EventRow>(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, metadata, recorded_at \
         FROM events WHERE aggregate_type = $1 ORDER BY position",
    )
    .bind(aggregate_type)
    .fetch(pool);
    let mut in_flight = Vec::with_capacity(PIPELINE);
    while let Some(row) = rows.try_next().await? {
        let event = OutgoingEvent::from_row(namespace, &row);
        // Publishes on one connection keep their order; acks are awaited in batches.
        let ack = js
            .publish_with_headers(event.subject, event.headers, event.payload)
            .await?;
        in_flight.push(ack);
        if in_flight.len() >= PIPELINE {
            settle(&mut in_flight, &mut report).await?;
        }
    }
    settle(&mut in_flight, &mut report).await?;
    report.messages = stream.info().await?.state.messages;
    Ok(report)
}

async fn settle(
    in_flight: &mut Vec<async_nats::jetstream::context::PublishAckFuture>,
    report: &mut RefillReport,
) -> anyhow::Result<()> {
    for ack in in_flight.drain(..) {
        let ack = ack.await?;
        report.published += 1;
        if ack.duplicate {
            report.duplicates += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_three_ways_and_the_dlq_is_refused() {
        let ns = Namespace::parse("t1").unwrap();
        assert_eq!(aggregate_type_of(&ns, "T1_ORDER"), Ok("order"));
        assert_eq!(aggregate_type_of(&ns, "ORDO_ORDER"), Ok("order"));
        assert_eq!(aggregate_type_of(&ns, "payment"), Ok("payment"));
        let err = aggregate_type_of(&ns, "T1_DLQ").unwrap_err();
        assert!(err.contains("T1_ORDER") && err.contains("T1_SHOW"), "{err}");
    }
}
