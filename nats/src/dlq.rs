//! Dead letters: reading them, the aggregates parked behind them, and re-driving them.
//!
//! The consumer loop ([`crate::consumer`]) writes a dead letter to `<NS>_DLQ` at
//! `<ns>.dlq.<consumer>` and parks the event's aggregate for that consumer in
//! `dead_letter_parks`, so the aggregate's later events follow it into the dead-letter
//! stream, marked parked, instead of overtaking it. Here operators [`list`] and [`show`]
//! dead letters (read with `STREAM.MSG.GET`, which moves no consumer and works on
//! nats-server 2.9), see the [`parked`] aggregates, and, once the cause is fixed,
//! [`redrive`] them.
//!
//! A re-drive works per consumer and aggregate: it deletes the park row first, so the
//! re-driven events are handled instead of parked again, then republishes each dead letter
//! to its original subject, in dead-letter order, with its original headers plus
//! `Ordo-Redrive-For: <consumer>` (the other consumers of the stream skip it) and a new
//! `Nats-Msg-Id` (`<original>:redrive:<dlq sequence>`, so JetStream does not drop it as a
//! duplicate of the original, while a repeated re-drive is de-duplicated), waits for the
//! stream's ack and only then deletes the dead letter.
//!
//! A live event of the aggregate may reach the consumer between the unpark and the
//! re-driven events. It is not lost nor applied out of order: the handler's claim
//! ([`crate::applied`]) answers `Gap` and the consumer loop naks it with a delay until the
//! re-driven events before it have been applied.

use std::collections::BTreeMap;

use async_nats::jetstream::context::Context;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::consumer::dlq_header;
use crate::envelope::header;
use crate::subjects::Namespace;

/// One message of the dead-letter stream, decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream: the id operators re-drive it by.
    pub dlq_sequence: u64,
    /// The durable consumer that gave up on it.
    pub consumer: String,
    /// The subject it was read from, where a re-drive republishes it.
    pub original_subject: String,
    /// The stream it was read from.
    pub original_stream: String,
    /// Its sequence in that stream.
    pub stream_sequence: u64,
    /// The aggregate type (from its headers, else its subject; empty if unknown).
    pub aggregate_type: String,
    /// The aggregate id (from its headers, else its subject; empty if unknown).
    pub aggregate_id: String,
    /// The event type (from its headers, else its subject; empty if unknown).
    pub event_type: String,
    /// The event's sequence within its aggregate (0 if unknown).
    pub sequence: i64,
    /// Why the consumer gave up: the handler's last error, or
    /// `parked behind dead letter <n>`.
    pub error: String,
    /// Deliveries attempted.
    pub attempts: i64,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
    /// Whether it did not fail itself but waited behind an earlier dead letter of its
    /// aggregate.
    pub parked: bool,
    /// The event's own headers as published, `Nats-Msg-Id` included, without the
    /// `Ordo-Dlq-*` ones (those are the fields above).
    pub headers: BTreeMap<String, String>,
    /// The payload: its JSON, or a JSON string of its text when it is not JSON.
    pub payload: Value,
}

/// An aggregate parked behind a dead letter, for one consumer: a `dead_letter_parks` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Park {
    /// The consumer whose later events of the aggregate are parked.
    pub consumer: String,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The dead letter they wait behind (its sequence in the dead-letter stream).
    pub dlq_sequence: u64,
    /// That dead letter's error.
    pub error: String,
    /// When the aggregate was parked.
    pub parked_at: DateTime<Utc>,
}

/// What a re-drive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// The dead letters republished and removed, by dead-letter sequence, in the order
    /// they were republished.
    pub redriven: Vec<u64>,
    /// The parks removed: `(consumer, aggregate_type, aggregate_id)`.
    pub unparked: Vec<(String, String, String)>,
}

/// Every dead letter, in dead-letter order; only `consumer`'s when given.
pub async fn list(
    js: &Context,
    ns: &Namespace,
    consumer: Option<&str>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let stream = dlq_stream(js, ns).await?;
    Ok(read(&stream, ns, consumer)
        .await?
        .into_iter()
        .map(|stored| stored.letter)
        .collect())
}

/// The dead letter at `dlq_sequence`; an error `no dead letter <n>` when there is none.
pub async fn show(js: &Context, ns: &Namespace, dlq_sequence: u64) -> anyhow::Result<DeadLetter> {
    let stream = dlq_stream(js, ns).await?;
    Ok(fetch(&stream, ns, dlq_sequence).await?.letter)
}

/// The aggregates parked behind a dead letter, oldest first.
pub async fn parked(pool: &PgPool) -> anyhow::Result<Vec<Park>> {
    let rows: Vec<(String, String, String, i64, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT consumer, aggregate_type, aggregate_id, dlq_sequence, error, parked_at \
         FROM dead_letter_parks ORDER BY parked_at, consumer, aggregate_type, aggregate_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(consumer, aggregate_type, aggregate_id, dlq_sequence, error, parked_at)| Park {
                consumer,
                aggregate_type,
                aggregate_id,
                dlq_sequence: u64::try_from(dlq_sequence).unwrap_or_default(),
                error,
                parked_at,
            },
        )
        .collect())
}

/// Re-drives the dead letter `dlq_sequence` and every later dead letter of the same
/// consumer and aggregate, in dead-letter order, unparking the aggregate first.
///
/// Refused when an earlier dead letter of that consumer and aggregate is still in the
/// stream: the events it holds would only wait behind it again (the claim's `Gap`).
pub async fn redrive(
    js: &Context,
    pool: &PgPool,
    ns: &Namespace,
    dlq_sequence: u64,
) -> anyhow::Result<RedriveReport> {
    let stream = dlq_stream(js, ns).await?;
    let target = fetch(&stream, ns, dlq_sequence).await?;
    let mut report = RedriveReport::default();
    let Some(group) = Group::of(&target.letter) else {
        // Unknown aggregate (an unreadable message): nothing is parked behind it.
        republish(js, &stream, &target, &mut report).await?;
        return Ok(report);
    };
    if let Some(earlier) = read(&stream, ns, Some(&group.consumer))
        .await?
        .iter()
        .find(|stored| stored.letter.dlq_sequence < dlq_sequence && group.holds(&stored.letter))
    {
        anyhow::bail!(
            "dead letter {dlq_sequence} waits behind dead letter {} of the same aggregate; \
             re-drive that one",
            earlier.letter.dlq_sequence
        );
    }
    redrive_groups(js, pool, ns, &stream, &[(group, dlq_sequence)], &mut report).await?;
    Ok(report)
}

/// Re-drives every dead letter (only `consumer`'s when given): per consumer and aggregate,
/// each group in dead-letter order, unparking each aggregate first.
pub async fn redrive_all(
    js: &Context,
    pool: &PgPool,
    ns: &Namespace,
    consumer: Option<&str>,
) -> anyhow::Result<RedriveReport> {
    let stream = dlq_stream(js, ns).await?;
    let mut report = RedriveReport::default();
    let mut groups: Vec<(Group, u64)> = Vec::new();
    for stored in read(&stream, ns, consumer).await? {
        match Group::of(&stored.letter) {
            Some(group) => {
                if !groups.iter().any(|(known, _)| *known == group) {
                    groups.push((group, stored.letter.dlq_sequence));
                }
            }
            None => republish(js, &stream, &stored, &mut report).await?,
        }
    }
    redrive_groups(js, pool, ns, &stream, &groups, &mut report).await?;
    Ok(report)
}

/// A consumer and one of its aggregates: the unit of parking and of re-driving.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    consumer: String,
    aggregate_type: String,
    aggregate_id: String,
}

impl Group {
    /// The group of a dead letter whose headers name its aggregate, as the consumer loop
    /// parks it. An unreadable message parks nothing and is re-driven on its own, even if
    /// its subject names an aggregate.
    fn of(letter: &DeadLetter) -> Option<Self> {
        let aggregate_type = letter.headers.get(header::AGGREGATE_TYPE)?;
        let aggregate_id = letter.headers.get(header::AGGREGATE_ID)?;
        Some(Self {
            consumer: letter.consumer.clone(),
            aggregate_type: aggregate_type.clone(),
            aggregate_id: aggregate_id.clone(),
        })
    }

    fn holds(&self, letter: &DeadLetter) -> bool {
        Self::of(letter).as_ref() == Some(self)
    }
}

/// Unparks each group, then republishes its dead letters from its starting sequence on.
async fn redrive_groups(
    js: &Context,
    pool: &PgPool,
    ns: &Namespace,
    stream: &Stream<()>,
    groups: &[(Group, u64)],
    report: &mut RedriveReport,
) -> anyhow::Result<()> {
    for (group, _) in groups {
        // First, so the re-driven events are handled rather than parked again. The DELETE
        // waits for any parked dead letter being written (the consumer holds the row
        // FOR SHARE meanwhile), so the stream read below has every one of them.
        let removed = sqlx::query(
            "DELETE FROM dead_letter_parks \
             WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3",
        )
        .bind(&group.consumer)
        .bind(&group.aggregate_type)
        .bind(&group.aggregate_id)
        .execute(pool)
        .await?;
        if removed.rows_affected() > 0 {
            report.unparked.push((
                group.consumer.clone(),
                group.aggregate_type.clone(),
                group.aggregate_id.clone(),
            ));
        }
    }
    let consumers: Vec<&str> = {
        let mut names: Vec<&str> = groups.iter().map(|(g, _)| g.consumer.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    for consumer in consumers {
        let letters = read(stream, ns, Some(consumer)).await?;
        for (group, from) in groups.iter().filter(|(g, _)| g.consumer == consumer) {
            for stored in letters
                .iter()
                .filter(|s| s.letter.dlq_sequence >= *from && group.holds(&s.letter))
            {
                republish(js, stream, stored, report).await?;
            }
        }
    }
    Ok(())
}

/// Republishes one dead letter to its original subject, waits for the ack, then deletes
/// it from the dead-letter stream.
async fn republish(
    js: &Context,
    stream: &Stream<()>,
    stored: &Stored,
    report: &mut RedriveReport,
) -> anyhow::Result<()> {
    let letter = &stored.letter;
    if letter.original_subject.is_empty() {
        anyhow::bail!(
            "dead letter {} has no original subject to re-drive to",
            letter.dlq_sequence
        );
    }
    let mut headers = HeaderMap::new();
    for (name, values) in stored.message.headers.iter() {
        let name_str: &str = name.as_ref();
        if is_dlq_header(name_str)
            || name_str.eq_ignore_ascii_case(header::MSG_ID)
            || name_str.eq_ignore_ascii_case(header::REDRIVE_FOR)
        {
            continue;
        }
        for value in values {
            headers.append(name.clone(), value.clone());
        }
    }
    // A dead letter re-driven before carries `<id>:redrive:<n>`: keep the base id.
    let original = letter
        .headers
        .get(header::MSG_ID)
        .map(|id| id.split(":redrive:").next().unwrap_or(id).to_owned())
        .unwrap_or_default();
    headers.insert(
        header::MSG_ID,
        format!("{original}:redrive:{}", letter.dlq_sequence),
    );
    headers.insert(header::REDRIVE_FOR, letter.consumer.as_str());
    js.publish_with_headers(
        letter.original_subject.clone(),
        headers,
        stored.message.payload.clone(),
    )
    .await?
    .await?;
    stream.delete_message(letter.dlq_sequence).await?;
    report.redriven.push(letter.dlq_sequence);
    Ok(())
}

/// A dead letter with the stored message it was read from (its exact headers and
/// payload bytes, which a re-drive republishes).
struct Stored {
    letter: DeadLetter,
    message: StreamMessage,
}

async fn dlq_stream(js: &Context, ns: &Namespace) -> anyhow::Result<Stream<()>> {
    Ok(js.get_stream_no_info(ns.dlq_stream()).await?)
}

/// Reads the dead letters (only `consumer`'s when given) in order, jumping over deleted
/// sequences with `next_by_subj`.
async fn read(
    stream: &Stream<()>,
    ns: &Namespace,
    consumer: Option<&str>,
) -> anyhow::Result<Vec<Stored>> {
    let filter = match consumer {
        Some(consumer) => ns.dlq_subject(consumer),
        None => ns.dlq_filter(),
    };
    let mut found = Vec::new();
    let mut next = 1;
    loop {
        match stream.get_first_raw_message_by_subject(&filter, next).await {
            Ok(message) => {
                next = message.sequence + 1;
                found.push(decode(ns, message));
            }
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => return Ok(found),
            Err(err) => return Err(err.into()),
        }
    }
}

async fn fetch(stream: &Stream<()>, ns: &Namespace, dlq_sequence: u64) -> anyhow::Result<Stored> {
    match stream.get_raw_message(dlq_sequence).await {
        Ok(message) => Ok(decode(ns, message)),
        Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => {
            anyhow::bail!("no dead letter {dlq_sequence}")
        }
        Err(err) => Err(err.into()),
    }
}

fn is_dlq_header(name: &str) -> bool {
    name.get(..dlq_header::PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(dlq_header::PREFIX))
}

/// Decodes a stored dead letter. Lenient on purpose: a dead letter is shown even when
/// some of its headers are missing (an unreadable message has none of the event's).
fn decode(ns: &Namespace, message: StreamMessage) -> Stored {
    let get = |name: &str| {
        message
            .headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let original_subject = get(dlq_header::ORIGINAL_SUBJECT);
    let consumer = match get(dlq_header::CONSUMER) {
        c if c.is_empty() => message
            .subject
            .as_str()
            .strip_prefix(&ns.dlq_subject(""))
            .unwrap_or_default()
            .to_owned(),
        c => c,
    };

    let mut headers = BTreeMap::new();
    for (name, values) in message.headers.iter() {
        let name: &str = name.as_ref();
        if is_dlq_header(name) || name.eq_ignore_ascii_case(header::MSG_ID) {
            continue;
        }
        if let Some(value) = values.last() {
            headers.insert(name.to_owned(), value.as_str().to_owned());
        }
    }
    let original_msg_id = get(dlq_header::ORIGINAL_MSG_ID);
    if !original_msg_id.is_empty() {
        headers.insert(header::MSG_ID.to_owned(), original_msg_id);
    }

    let from_subject = ns.parse_event_subject(&original_subject);
    let pick = |name: &str, part: Option<&str>| {
        headers
            .get(name)
            .cloned()
            .or_else(|| part.map(str::to_owned))
            .unwrap_or_default()
    };
    let aggregate_type = pick(header::AGGREGATE_TYPE, from_subject.map(|s| s.0));
    let aggregate_id = pick(header::AGGREGATE_ID, from_subject.map(|s| s.1));
    let event_type = pick(header::EVENT_TYPE, from_subject.map(|s| s.2));
    let sequence = headers
        .get(header::SEQUENCE)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);

    let failed_at = DateTime::parse_from_rfc3339(&get(dlq_header::FAILED_AT))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| {
            // Not written by the consumer loop: the time it was stored will do.
            let nanos = message.time.unix_timestamp_nanos();
            DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or_default())
        });
    let payload = serde_json::from_slice(&message.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&message.payload).into_owned()));

    let letter = DeadLetter {
        dlq_sequence: message.sequence,
        consumer,
        original_subject,
        original_stream: get(dlq_header::ORIGINAL_STREAM),
        stream_sequence: get(dlq_header::STREAM_SEQUENCE).parse().unwrap_or(0),
        aggregate_type,
        aggregate_id,
        event_type,
        sequence,
        error: get(dlq_header::ERROR),
        attempts: get(dlq_header::ATTEMPTS).parse().unwrap_or(0),
        failed_at,
        parked: get(dlq_header::PARKED) == "true",
        headers,
        payload,
    };
    Stored { letter, message }
}
