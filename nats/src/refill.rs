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
//! stream is emptied first (deleted and created again with its consumers, which also
//! clears its duplicate window), so it ends with exactly one message per stored event:
//! what a damaged stream needs.

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::PgPool;

use crate::definitions;
use crate::envelope::{EventRow, OutgoingEvent};
use crate::subjects::{Namespace, AGGREGATE_TYPES};

/// How many publishes are in flight before their acknowledgements are awaited.
const PIPELINE: usize = 256;

/// Refill attempts before giving up.
const ATTEMPTS: u64 = 5;

/// How long a deleted stream's files may take to disappear.
const REMOVAL_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

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
    let mut report = RefillReport {
        stream: config.name.clone(),
        aggregate_type: aggregate_type.to_owned(),
        ..RefillReport::default()
    };
    if purge {
        report.purged = recreate(js, &config).await?;
    } else {
        definitions::ensure_stream(js, &config).await?;
    }
    let mut attempt = 1;
    loop {
        let mut round = RefillReport::default();
        let outcome = match publish_all(js, pool, namespace, aggregate_type, &mut round).await {
            Ok(()) => readable(js, &config.name).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok(()) => {
                report.published = round.published;
                report.duplicates = round.duplicates;
                break;
            }
            Err(err) if attempt < ATTEMPTS => {
                // nats-server 2.9 removes a deleted stream's files in the background: a
                // stream created at once under the same name (by this refill or a worker)
                // can lose its own files to it. Start over on a fresh stream.
                tracing::warn!(stream = %report.stream, error = %format!("{err:#}"), attempt, "refill interrupted; starting again on a fresh stream");
                attempt += 1;
                recreate(js, &config).await?;
            }
            Err(err) => return Err(err),
        }
    }
    let mut stream = js.get_stream(&config.name).await?;
    report.messages = stream.info().await?.state.messages;
    Ok(report)
}

/// Empties a stream by deleting and creating it again, with its consumers as they were
/// defined; answers how many messages it held. A purge alone would not do: the stream
/// would keep its duplicate window, and drop the very events republished into it.
/// The consumers start again from the first message, which their claims turn into
/// no-ops for what they already applied.
async fn recreate(
    js: &async_nats::jetstream::Context,
    config: &async_nats::jetstream::stream::Config,
) -> anyhow::Result<u64> {
    let (held, consumers) = match js.get_stream(&config.name).await {
        Ok(mut stream) => {
            let held = stream.info().await?.state.messages;
            let consumers: Vec<async_nats::jetstream::consumer::Info> =
                stream.consumers().try_collect().await?;
            (held, consumers)
        }
        Err(_) => (0, Vec::new()),
    };
    if held > 0 || !consumers.is_empty() {
        js.delete_stream(&config.name).await?;
        // Let the server finish removing the old files (in the background on 2.9) before
        // a stream of the same name is created.
        tokio::time::sleep(REMOVAL_PAUSE).await;
    }
    definitions::ensure_stream(js, config).await?;
    let stream = js.get_stream(&config.name).await?;
    for consumer in consumers {
        let mut consumer_config = consumer.config;
        // A consumer starts again from the stream's first message.
        consumer_config.deliver_policy = async_nats::jetstream::consumer::DeliverPolicy::All;
        if let Err(err) = stream
            .create_consumer::<async_nats::jetstream::consumer::Config>(consumer_config)
            .await
        {
            // A running worker may have recreated it first; it carries on either way.
            tracing::warn!(consumer = %consumer.name, error = %err, "cannot recreate consumer");
        }
    }
    Ok(held)
}

/// Checks that the stream's first and last messages can be read back.
async fn readable(js: &async_nats::jetstream::Context, name: &str) -> anyhow::Result<()> {
    tokio::time::sleep(REMOVAL_PAUSE / 4).await;
    let mut stream = js.get_stream(name).await?;
    let state = stream.info().await?.state.clone();
    if state.messages == 0 {
        return Ok(());
    }
    for sequence in [state.first_sequence, state.last_sequence] {
        stream.get_raw_message(sequence).await.map_err(|err| {
            anyhow::anyhow!("message {sequence} of {name} cannot be read back: {err}")
        })?;
    }
    Ok(())
}

/// Publishes every stored event of `aggregate_type`, in position order.
async fn publish_all(
    js: &async_nats::jetstream::Context,
    pool: &PgPool,
    namespace: &Namespace,
    aggregate_type: &str,
    report: &mut RefillReport,
) -> anyhow::Result<()> {
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
            settle(&mut in_flight, report).await?;
        }
    }
    settle(&mut in_flight, report).await
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
