//! `ordo replay`: events for analysts, as JSON Lines or CSV, read from the Postgres event
//! store (in global `position` order) or from a JetStream stream (an ordered consumer read
//! to the end), filtered by stream or aggregate type, aggregate id, event type and time;
//! or applied through the projections' own code into a fresh read model database.
//!
//! Every record has the fields a consumer sees, built by the same envelope code the relay
//! publishes with, so a replay from Postgres and one from JetStream describe an event
//! identically (only `position` versus `stream_sequence` differ). The `payload` is the
//! event as published: its own object, without the enum tag of the `events` table.
//!
//! Personal values (crypto-shredding) stay sealed as stored, and show as
//! `{"$personal": {"subject": ..., "erased": true}}` once their user was erased; with
//! `--open-personal-data` they are opened through the personal-data vault (clear while the
//! user's key exists). A replay never shows an erased value in the clear.
//!
//! All input is checked before anything is opened or written, and refused with one line.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ordo_nats::envelope::{EventRow, OutgoingEvent, ReceivedEvent};
use ordo_nats::subjects::{Namespace, AGGREGATE_TYPES};
use ordo_nats::EventHandler;
use ordo_projections::ProjectionHandler;
use ordo_store::personal::personal_values_mut;
use ordo_store::PersonalDataSealer;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Options of `ordo replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Where events are read: `postgres` (the event store, by global position) or
    /// `jetstream` (the aggregate type's stream, by stream sequence).
    #[arg(long, default_value = "postgres")]
    pub source: String,
    /// Output format: `jsonl` (one JSON object per line) or `csv` (header row, payload as
    /// a JSON text column).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only this stream, e.g. ORDO_ORDER.
    #[arg(long)]
    pub stream: Option<String>,
    /// Only this aggregate type, e.g. order.
    #[arg(long)]
    pub aggregate_type: Option<String>,
    /// Only this aggregate.
    #[arg(long)]
    pub aggregate_id: Option<String>,
    /// Only these event types (repeat the option for several).
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    /// Only events recorded at or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events recorded before this instant (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Instead of writing events, migrate the database at this URL and apply the events
    /// to its read models with the projections' own code. The database must be fresh.
    #[arg(long, value_name = "DATABASE_URL")]
    pub into_read_model: Option<String>,
    /// Show personal values in the clear, for those allowed to read them (without it they
    /// stay sealed). Erased values show as erased either way.
    #[arg(long)]
    pub open_personal_data: bool,
}

/// Where events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `events` table.
    Postgres,
    /// JetStream.
    JetStream,
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines.
    JsonLines,
    /// CSV with a header row.
    Csv,
}

/// A validated replay request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayPlan {
    /// Source.
    pub source: Source,
    /// Format.
    pub format: Format,
    /// The aggregate types to read (one, or all).
    pub aggregate_types: Vec<String>,
    /// Aggregate id filter.
    pub aggregate_id: Option<String>,
    /// Event type filter (empty: all).
    pub event_types: BTreeSet<String>,
    /// Inclusive lower bound.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub until: Option<DateTime<Utc>>,
}

fn parse_instant(option: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            anyhow::anyhow!(
                "{option} {text:?} is not an RFC 3339 instant such as 2024-05-01T10:00:00Z"
            )
        })
}

impl ReplayPlan {
    /// Checks the options; every refusal is one line.
    pub fn parse(args: &ReplayArgs, namespace: &Namespace) -> anyhow::Result<Self> {
        let source = match args.source.as_str() {
            "postgres" => Source::Postgres,
            "jetstream" => Source::JetStream,
            other => anyhow::bail!("unknown source {other:?}: use postgres or jetstream"),
        };
        let format = match args.format.as_str() {
            "jsonl" | "json" | "ndjson" => Format::JsonLines,
            "csv" => Format::Csv,
            other => anyhow::bail!("unknown format {other:?}: use jsonl or csv"),
        };
        let from_stream = match &args.stream {
            None => None,
            Some(stream) => Some(
                AGGREGATE_TYPES
                    .iter()
                    .find(|t| namespace.stream_name(t) == stream.to_ascii_uppercase())
                    .map(|t| t.to_string())
                    .ok_or_else(|| {
                        let known: Vec<String> = AGGREGATE_TYPES
                            .iter()
                            .map(|t| namespace.stream_name(t))
                            .collect();
                        anyhow::anyhow!(
                            "unknown stream {stream:?}: known streams are {}",
                            known.join(", ")
                        )
                    })?,
            ),
        };
        let from_type = match &args.aggregate_type {
            None => None,
            Some(t) => Some(
                AGGREGATE_TYPES
                    .iter()
                    .find(|known| **known == t.as_str())
                    .map(|t| t.to_string())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "unknown aggregate type {t:?}: known types are {}",
                            AGGREGATE_TYPES.join(", ")
                        )
                    })?,
            ),
        };
        let aggregate_types = match (from_stream, from_type) {
            (Some(a), Some(b)) if a != b => {
                anyhow::bail!(
                    "--stream and --aggregate-type name different aggregate types ({a} and {b})"
                )
            }
            (Some(a), _) | (None, Some(a)) => vec![a],
            (None, None) => AGGREGATE_TYPES.iter().map(|t| t.to_string()).collect(),
        };
        let since = args
            .since
            .as_deref()
            .map(|t| parse_instant("--since", t))
            .transpose()?;
        let until = args
            .until
            .as_deref()
            .map(|t| parse_instant("--until", t))
            .transpose()?;
        if let (Some(since), Some(until)) = (since, until) {
            if since >= until {
                anyhow::bail!("--since must be before --until");
            }
        }
        if let Some(id) = &args.aggregate_id {
            if id.is_empty() || id.contains(['.', '*', '>', ' ']) {
                anyhow::bail!("--aggregate-id {id:?} is not an aggregate id");
            }
        }
        Ok(Self {
            source,
            format,
            aggregate_types,
            aggregate_id: args.aggregate_id.clone(),
            event_types: args.event_types.iter().cloned().collect(),
            since,
            until,
        })
    }

    /// Whether an event passes the filters.
    pub fn accepts(&self, event: &ReceivedEvent) -> bool {
        self.aggregate_types.contains(&event.aggregate_type)
            && self
                .aggregate_id
                .as_ref()
                .is_none_or(|id| *id == event.aggregate_id)
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && self.since.is_none_or(|t| event.recorded_at >= t)
            && self.until.is_none_or(|t| event.recorded_at < t)
    }
}

/// The column names of a record, in order; the first is `position` (Postgres) or
/// `stream_sequence` (JetStream).
pub fn columns(source: Source) -> [&'static str; 12] {
    [
        match source {
            Source::Postgres => "position",
            Source::JetStream => "stream_sequence",
        },
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "event_type",
        "event_version",
        "event_id",
        "correlation_id",
        "causation_id",
        "user_id",
        "recorded_at",
        "payload",
    ]
}

/// One event as a record (a JSON object with [`columns`]).
pub fn record(source: Source, order: u64, event: &ReceivedEvent) -> Value {
    let mut object = json!({
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "event_id": event.event_id,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "user_id": event.user_id,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "payload": event.payload,
    });
    object[columns(source)[0]] = json!(order);
    object
}

/// An event as a consumer would receive it, from its `events` row.
pub fn received_from_row(namespace: &Namespace, row: &EventRow) -> anyhow::Result<ReceivedEvent> {
    let out = OutgoingEvent::from_row(namespace, row);
    Ok(ReceivedEvent::from_parts(
        &namespace.stream_name(&row.aggregate_type),
        0,
        1,
        &out.subject,
        Some(&out.headers),
        &out.payload,
    )?)
}

type EventStream<'a> =
    std::pin::Pin<Box<dyn Stream<Item = anyhow::Result<(u64, ReceivedEvent)>> + Send + 'a>>;

/// Events of the plan from Postgres, by position, with how many there are.
async fn from_postgres<'a>(
    pool: &'a PgPool,
    namespace: &'a Namespace,
    plan: &'a ReplayPlan,
) -> anyhow::Result<(Option<u64>, EventStream<'a>)> {
    macro_rules! filter {
        () => {
            " WHERE aggregate_type = ANY($1)
              AND ($2::text IS NULL OR aggregate_id = $2)
              AND (cardinality($3::text[]) = 0 OR event_type = ANY($3))
              AND ($4::timestamptz IS NULL OR recorded_at >= $4)
              AND ($5::timestamptz IS NULL OR recorded_at < $5)"
        };
    }
    let types: Vec<String> = plan.event_types.iter().cloned().collect();
    let total: i64 = sqlx::query_scalar(concat!("SELECT count(*) FROM events", filter!()))
        .bind(&plan.aggregate_types)
        .bind(plan.aggregate_id.as_deref())
        .bind(&types)
        .bind(plan.since)
        .bind(plan.until)
        .fetch_one(pool)
        .await
        .context("reading the event store")?;
    let sql = concat!(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload, metadata, recorded_at
         FROM events",
        filter!(),
        " ORDER BY position"
    );
    let rows = sqlx::query_as::<_, EventRow>(sql)
        .bind(plan.aggregate_types.clone())
        .bind(plan.aggregate_id.clone())
        .bind(types)
        .bind(plan.since)
        .bind(plan.until)
        .fetch(pool)
        .map_err(anyhow::Error::from)
        .and_then(move |row| async move {
            let event = received_from_row(namespace, &row)?;
            Ok((row.position as u64, event))
        });
    Ok((Some(total as u64), Box::pin(rows)))
}

/// Events of the plan from JetStream: one ordered consumer per stream, read until nothing
/// is pending, then the next stream.
async fn from_jetstream<'a>(
    js: &'a async_nats::jetstream::Context,
    namespace: &'a Namespace,
    plan: &'a ReplayPlan,
) -> anyhow::Result<(Option<u64>, EventStream<'a>)> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    let mut total = 0u64;
    let mut consumers = Vec::new();
    for aggregate_type in &plan.aggregate_types {
        let stream_name = namespace.stream_name(aggregate_type);
        let stream = js
            .get_stream(&stream_name)
            .await
            .map_err(|err| anyhow::anyhow!("stream {stream_name}: {err}"))?;
        let filter_subject = match &plan.aggregate_id {
            Some(id) => format!("{}.events.{aggregate_type}.{id}.*", namespace.as_str()),
            None => namespace.stream_filter(aggregate_type),
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject,
                ..Default::default()
            })
            .await
            .map_err(|err| anyhow::anyhow!("reading stream {stream_name}: {err}"))?;
        let pending = consumer.cached_info().num_pending;
        total += pending;
        if pending > 0 {
            consumers.push((stream_name, consumer));
        }
    }
    let events = futures::stream::iter(consumers)
        .then(|(stream_name, consumer)| async move {
            let messages = consumer
                .messages()
                .await
                .map_err(|err| anyhow::anyhow!("reading stream {stream_name}: {err}"))?;
            // Stops after the message that leaves nothing pending: the end of the stream
            // as it was when the consumer was created plus anything added since.
            let until_end = messages
                .map_err(|err| anyhow::anyhow!("reading the stream: {err}"))
                .and_then(|message| async move {
                    let info = message.info().map_err(|err| anyhow::anyhow!("{err}"))?;
                    let pending = info.pending;
                    let event = ReceivedEvent::from_parts(
                        info.stream,
                        info.stream_sequence,
                        info.delivered,
                        &message.subject,
                        message.headers.as_ref(),
                        &message.payload,
                    )?;
                    Ok((pending, event))
                })
                .boxed();
            // Ends right after the message that leaves nothing pending, without asking
            // for another one (which would wait for an event that may never come).
            let until_end = futures::stream::unfold(Some(until_end), |state| async move {
                let mut stream = state?;
                let item = stream.next().await?;
                let last = matches!(item, Ok((0, _)) | Err(_));
                let item = item.map(|(_, e): (u64, ReceivedEvent)| (e.stream_sequence, e));
                Some((item, (!last).then_some(stream)))
            });
            anyhow::Ok(until_end)
        })
        .try_flatten();
    Ok((Some(total), Box::pin(events)))
}

fn progress(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Writes records in one format.
enum Writer {
    Json(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
}

impl Writer {
    fn new(format: Format, source: Source, out: Box<dyn Write>) -> anyhow::Result<Self> {
        Ok(match format {
            Format::JsonLines => Writer::Json(out),
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(columns(source))?;
                Writer::Csv(Box::new(writer))
            }
        })
    }

    fn write(&mut self, source: Source, record: &Value) -> anyhow::Result<()> {
        match self {
            Writer::Json(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
            }
            Writer::Csv(writer) => {
                let cells: Vec<String> = columns(source)
                    .iter()
                    .map(|c| match &record[*c] {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                writer.write_record(cells)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Writer::Json(mut out) => out.flush()?,
            Writer::Csv(mut writer) => writer.flush()?,
        }
        Ok(())
    }
}

/// Refuses a target database whose read models already hold data: a replay applies every
/// event from the first, so it needs empty tables.
async fn ensure_fresh(pool: &PgPool, handlers: &[Arc<ProjectionHandler>]) -> anyhow::Result<()> {
    let names: Vec<&str> = handlers.iter().map(|h| h.name()).collect();
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM consumer_positions WHERE consumer = ANY($1)")
            .bind(&names)
            .fetch_one(pool)
            .await?;
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM products) + (SELECT count(*) FROM inventory_levels)
              + (SELECT count(*) FROM orders)",
    )
    .fetch_one(pool)
    .await?;
    if applied > 0 || rows > 0 {
        anyhow::bail!("the target database already has read model data: --into-read-model needs a fresh database");
    }
    Ok(())
}

/// Makes the personal-data vault over the event store's database.
pub type PersonalDataVaultFactory = Box<dyn FnOnce(PgPool) -> Arc<dyn PersonalDataSealer> + Send>;

/// Shows the personal values of replayed payloads as the replay may: erased ones as erased,
/// the others sealed as stored, or opened when asked to. The vault is connected on the
/// first payload with personal values.
struct PersonalDataView {
    database_url: String,
    factory: Option<PersonalDataVaultFactory>,
    vault: Option<Arc<dyn PersonalDataSealer>>,
    open: bool,
}

impl PersonalDataView {
    async fn show(&mut self, payload: &mut Value) -> anyhow::Result<()> {
        if personal_values_mut(payload).is_empty() {
            return Ok(());
        }
        if self.vault.is_none() {
            let factory = self.factory.take().ok_or_else(|| {
                anyhow::anyhow!(
                    "this replay has no personal-data vault to show personal values with"
                )
            })?;
            let pool = ordo_store::database::connect(&self.database_url, 2).await?;
            self.vault = Some(factory(pool));
        }
        let vault = self.vault.as_ref().expect("vault connected");
        let mut opened = payload.clone();
        vault.open(&mut opened).await?;
        if self.open {
            *payload = opened;
            return Ok(());
        }
        // The same structure, so the values come in the same order.
        for (stored, opened) in personal_values_mut(payload)
            .into_iter()
            .zip(personal_values_mut(&mut opened))
        {
            if opened.contains_key("erased") {
                *stored = opened.clone();
            }
        }
        Ok(())
    }
}

/// Where `ordo replay` reads from: the event store's database, the streams' namespace, and
/// a way to connect to NATS (asked for only when the source is JetStream).
pub struct ReplaySources<Connect> {
    /// Makes the personal-data vault (asked for only when a payload holds personal values).
    pub personal_data: Option<PersonalDataVaultFactory>,
    /// The event store's database URL.
    pub database_url: String,
    /// The streams' namespace (`ORDO_NATS_NAMESPACE`).
    pub namespace: String,
    /// Connects to NATS with the process's credentials.
    pub connect_nats: Connect,
}

/// Runs `ordo replay`.
pub async fn run<Connect>(sources: ReplaySources<Connect>, args: ReplayArgs) -> anyhow::Result<()>
where
    Connect: AsyncFnOnce() -> anyhow::Result<async_nats::Client>,
{
    let namespace = Namespace::parse(&sources.namespace)
        .map_err(|err| anyhow::anyhow!("ORDO_NATS_NAMESPACE: {err}"))?;
    let plan = ReplayPlan::parse(&args, &namespace)?;

    let pool;
    let js;
    let (total, mut events) = match plan.source {
        Source::Postgres => {
            pool = ordo_store::database::connect(&sources.database_url, 4).await?;
            from_postgres(&pool, &namespace, &plan).await?
        }
        Source::JetStream => {
            js = async_nats::jetstream::new((sources.connect_nats)().await?);
            from_jetstream(&js, &namespace, &plan).await?
        }
    };
    let bar = progress(total);

    if let Some(url) = &args.into_read_model {
        let target = ordo_store::database::connect(url, 4).await?;
        ordo_store::database::migrate(&target).await?;
        let handlers = ordo_projections::all(target.clone());
        ensure_fresh(&target, &handlers).await?;
        // The customer directory opens personal values with the event store's keys.
        if let Some(factory) = sources.personal_data {
            let keys = ordo_store::database::connect(&sources.database_url, 2).await?;
            ordo_projections::customers::install_vault(factory(keys));
        }
        let mut applied = 0u64;
        while let Some(item) = events.next().await {
            let (_, event) = item?;
            bar.inc(1);
            if !plan.accepts(&event) {
                continue;
            }
            for handler in handlers
                .iter()
                .filter(|h| h.aggregate_type() == event.aggregate_type)
            {
                handler.handle(&event).await.map_err(|err| {
                    anyhow::anyhow!(
                        "{} could not apply {} {} #{}: {err}",
                        handler.name(),
                        event.aggregate_type,
                        event.aggregate_id,
                        event.sequence
                    )
                })?;
            }
            applied += 1;
        }
        bar.finish_and_clear();
        eprintln!(
            "applied {applied} events to the read models of {}",
            ordo_store::database::redact(url)
        );
        return Ok(());
    }

    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut writer = Writer::new(plan.format, plan.source, out)?;
    let mut personal = PersonalDataView {
        database_url: sources.database_url.clone(),
        factory: sources.personal_data,
        vault: None,
        open: args.open_personal_data,
    };
    let mut written = 0u64;
    while let Some(item) = events.next().await {
        let (order, event) = item?;
        bar.inc(1);
        if plan.accepts(&event) {
            let mut record = record(plan.source, order, &event);
            personal.show(&mut record["payload"]).await?;
            writer.write(plan.source, &record)?;
            written += 1;
        }
    }
    writer.finish()?;
    bar.finish_and_clear();
    if args.output.is_some() {
        eprintln!("wrote {written} events");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ReplayArgs {
        ReplayArgs {
            source: "postgres".into(),
            format: "jsonl".into(),
            output: None,
            stream: None,
            aggregate_type: None,
            aggregate_id: None,
            event_types: vec![],
            since: None,
            until: None,
            into_read_model: None,
            open_personal_data: false,
        }
    }

    #[test]
    fn streams_map_to_their_aggregate_type() {
        let ns = Namespace::default();
        let plan = ReplayPlan::parse(
            &ReplayArgs {
                stream: Some("ORDO_ORDER".into()),
                ..args()
            },
            &ns,
        )
        .unwrap();
        assert_eq!(plan.aggregate_types, vec!["order".to_string()]);
        let err = ReplayPlan::parse(
            &ReplayArgs {
                stream: Some("ORDO_NOPE".into()),
                ..args()
            },
            &ns,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("unknown stream"), "{err}");
        let err = ReplayPlan::parse(
            &ReplayArgs {
                stream: Some("ORDO_ORDER".into()),
                aggregate_type: Some("payment".into()),
                ..args()
            },
            &ns,
        )
        .unwrap_err();
        assert!(err.to_string().contains("different"), "{err}");
    }

    #[test]
    fn time_ranges_must_be_ordered_rfc3339() {
        let ns = Namespace::default();
        let bad = ReplayArgs {
            since: Some("2024-05-02T00:00:00Z".into()),
            until: Some("2024-05-01T00:00:00Z".into()),
            ..args()
        };
        assert!(ReplayPlan::parse(&bad, &ns).is_err());
        let bad = ReplayArgs {
            since: Some("yesterday".into()),
            ..args()
        };
        assert!(ReplayPlan::parse(&bad, &ns)
            .unwrap_err()
            .to_string()
            .contains("RFC 3339"));
        let bad = ReplayArgs {
            format: "xml".into(),
            ..args()
        };
        assert!(ReplayPlan::parse(&bad, &ns).is_err());
    }
}
