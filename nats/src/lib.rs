//! JetStream for Ordo: subjects, stream definitions, the outbox relay and the consumer loop.
//!
//! Events are committed to Postgres (the source of truth); a trigger records each new
//! event's position in `outbox`. The [`relay`] publishes outbox rows to JetStream, one
//! stream per aggregate type, with `Nats-Msg-Id` so re-sends after a crash are absorbed.
//! Durable pull consumers ([`consumer`]) hand each event to a handler in stream order,
//! retry with backoff and dead-letter what keeps failing, parking the failed event's
//! aggregate so its later events wait in order; [`dlq`] reads dead letters and re-drives
//! them; [`applied`] lets a handler apply an event's effect exactly once, in its own
//! transaction.
//!
//! # Layout
//!
//! - [`subjects`]: the [`Namespace`](subjects::Namespace) and every stream name and subject.
//! - [`definitions`]: the stream JSON files under `nats/streams/` (the NATS CLI's format),
//!   consumer JSON files under `nats/consumers/`, and `ensure_streams`.
//! - [`envelope`]: the wire format: headers and payload of a published event, and
//!   [`ReceivedEvent`](envelope::ReceivedEvent) on the consumer side.
//! - [`relay`]: the outbox relay, a single leader across processes (advisory lock).
//! - [`consumer`]: the consumer loop: ack, nak with backoff, dead letters and parks.
//! - [`lease`]: which process runs each consumer (one at a time, advisory locks).
//! - [`dlq`]: list, show and re-drive dead letters; the parked aggregates.
//! - [`applied`]: per-consumer, per-aggregate idempotency in Postgres.
//! - [`refill`]: refilling a lost or damaged stream from the Postgres event store.
//! - [`trace`]: W3C trace context in message headers (OpenTelemetry, when enabled).
#![forbid(unsafe_code)]

pub mod applied;
pub mod consumer;
pub mod definitions;
pub mod dlq;
pub mod envelope;
pub mod lease;
pub mod refill;
pub mod relay;
pub mod subjects;
pub mod trace;

pub use applied::{apply_once, claim, Claim};
pub use consumer::{ensure_consumer, run_consumer, ConsumerSpec, EventHandler, HandlerError};
pub use dlq::{DeadLetter, Park, RedriveReport};
pub use envelope::{EventRow, OutgoingEvent, ReceivedEvent};
pub use relay::{outbox_depth, Relay};
pub use subjects::{Namespace, AGGREGATE_TYPES};
