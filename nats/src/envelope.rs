//! The wire format of an event on JetStream: subject, headers and payload.
//!
//! The relay turns a row of the `events` table into an [`OutgoingEvent`]; consumers turn a
//! JetStream message back into a [`ReceivedEvent`]. Both directions live here so the two
//! can never drift apart.
//!
//! The payload is the event's own JSON object, without the outer tag serde writes for an
//! externally tagged enum (`{"StockReserved": {...}}` is published as `{...}`), because the
//! event type is already in the subject and in `Ordo-Event-Type`, and the published payload
//! is what the JSON Schemas in `schemas/` describe. [`ReceivedEvent::decode`] puts the tag
//! back to deserialize into an aggregate's event enum.

use std::collections::HashMap;

use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::subjects::Namespace;

/// Header names, shared by the relay, the consumer loop and the dead-letter writer.
pub mod header {
    /// JetStream's de-duplication id: `<aggregate_type>:<aggregate_id>:<sequence>`.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The event's sequence within its aggregate (1, 2, ...).
    pub const SEQUENCE: &str = "Ordo-Sequence";
    /// The event type, e.g. `StockReserved`.
    pub const EVENT_TYPE: &str = "Ordo-Event-Type";
    /// The event's schema version, e.g. `1.0`.
    pub const EVENT_VERSION: &str = "Ordo-Event-Version";
    /// The aggregate type, e.g. `inventory`.
    pub const AGGREGATE_TYPE: &str = "Ordo-Aggregate-Type";
    /// The aggregate id.
    pub const AGGREGATE_ID: &str = "Ordo-Aggregate-Id";
    /// A UUID stable across re-publishes of the same event.
    pub const EVENT_ID: &str = "Ordo-Event-Id";
    /// The id of the request that started the chain of work.
    pub const CORRELATION_ID: &str = "Ordo-Correlation-Id";
    /// The id of the message that directly caused this event.
    pub const CAUSATION_ID: &str = "Ordo-Causation-Id";
    /// The user on whose behalf the command ran, when known.
    pub const USER_ID: &str = "Ordo-User-Id";
    /// The command that produced the event, when known.
    pub const COMMAND_ID: &str = "Ordo-Command-Id";
    /// When the event was committed, RFC 3339.
    pub const RECORDED_AT: &str = "Ordo-Recorded-At";
    /// W3C trace context: the relay's publish span when tracing is on, else the committing
    /// command's recorded one, else derived from the correlation id.
    pub const TRACEPARENT: &str = "traceparent";
    /// On an event re-driven from the dead-letter stream: the one consumer it is meant for.
    /// Every other consumer of the stream acks it unhandled (it applied the event already).
    pub const REDRIVE_FOR: &str = "Ordo-Redrive-For";
}

/// The fixed namespace of event ids: `Ordo-Event-Id` is the UUIDv5 of the `Nats-Msg-Id` in
/// it, so every re-publish of one event carries the same id.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_646f_0e5e_4e1d_9a7b_6576_656e_7473);

/// The event id of one event: stable, derived from its place in its aggregate.
pub fn event_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        msg_id(aggregate_type, aggregate_id, sequence).as_bytes(),
    )
}

/// The `Nats-Msg-Id` of one event: `<aggregate_type>:<aggregate_id>:<sequence>`.
pub fn msg_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> String {
    format!("{aggregate_type}:{aggregate_id}:{sequence}")
}

/// A W3C `traceparent` whose trace id is the correlation id, when that is a UUID, so a
/// tracing backend groups every event of one request into one trace.
pub fn traceparent(correlation_id: &str, event_id: Uuid) -> Option<String> {
    let trace = Uuid::parse_str(correlation_id).ok()?;
    if trace.is_nil() {
        // An all-zero trace id is invalid in W3C trace context.
        return None;
    }
    let span = &event_id.simple().to_string()[..16];
    Some(format!("00-{}-{span}-01", trace.simple()))
}

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A header the format requires is absent.
    #[error("message on {subject:?} lacks the {header} header")]
    MissingHeader {
        /// The message subject.
        subject: String,
        /// The missing header.
        header: &'static str,
    },
    /// A header is present but unreadable.
    #[error("message on {subject:?} has an invalid {header} header: {value:?}")]
    InvalidHeader {
        /// The message subject.
        subject: String,
        /// The header.
        header: &'static str,
        /// Its value.
        value: String,
    },
    /// The payload is not JSON.
    #[error("message on {subject:?} has a payload that is not JSON: {source}")]
    InvalidPayload {
        /// The message subject.
        subject: String,
        /// What serde_json refused.
        #[source]
        source: serde_json::Error,
    },
    /// The message did not come from a JetStream consumer (no ack metadata).
    #[error("message on {subject:?} is not a JetStream delivery: {reason}")]
    NotJetStream {
        /// The message subject.
        subject: String,
        /// Why its reply subject could not be read.
        reason: String,
    },
    /// The payload does not deserialize into the requested event type.
    #[error("event {event_type} does not decode: {source}")]
    Decode {
        /// The event type.
        event_type: String,
        /// What serde_json refused.
        #[source]
        source: serde_json::Error,
    },
}

/// One row of the `events` table, as the relay reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Global insertion order (the outbox key).
    pub position: i64,
    /// The aggregate type, e.g. `order`.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate.
    pub sequence: i64,
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The event's schema version.
    pub event_version: String,
    /// The event as serde wrote it (externally tagged).
    pub payload: Value,
    /// A flat string map: correlation_id, causation_id, user_id, command_id.
    pub metadata: Value,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
}

/// An event ready to publish: subject, headers and payload.
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    /// The outbox position it came from.
    pub position: i64,
    /// `<ns>.events.<aggregate_type>.<aggregate_id>.<EventType>`.
    pub subject: String,
    /// The `Nats-Msg-Id`.
    pub msg_id: String,
    /// Every header listed in [`header`].
    pub headers: HeaderMap,
    /// The event's JSON without the serde outer tag.
    pub payload: Bytes,
}

fn metadata_string(metadata: &Value, key: &str) -> Option<String> {
    match metadata.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Removes the outer tag of an externally tagged enum value: `{"T": {...}}` -> `{...}`,
/// and the unit variant `"T"` -> `{}`. Anything else is left as it is.
pub fn untag_payload(event_type: &str, payload: &Value) -> Value {
    match payload {
        Value::Object(map) if map.len() == 1 && map.contains_key(event_type) => {
            match &map[event_type] {
                // A newtype or unit variant written as `{"T": null}` still publishes an object.
                Value::Null => Value::Object(Default::default()),
                inner => inner.clone(),
            }
        }
        Value::String(s) if s == event_type => Value::Object(Default::default()),
        other => other.clone(),
    }
}

/// Deserializes a published payload (without its tag) of type `event_type` into an
/// aggregate's externally tagged event enum, putting back the tag the relay removed. What
/// [`ReceivedEvent::decode`] does, for a payload that was rewritten first (upcast).
pub fn decode_payload<E: DeserializeOwned>(
    event_type: &str,
    payload: &Value,
) -> Result<E, EnvelopeError> {
    let tagged = Value::Object(
        [(event_type.to_owned(), payload.clone())]
            .into_iter()
            .collect(),
    );
    match serde_json::from_value(tagged) {
        Ok(event) => Ok(event),
        Err(first) => {
            // A unit variant was published as `{}`; serde wants it as the bare name.
            let is_empty = match payload {
                Value::Object(map) => map.is_empty(),
                Value::Null => true,
                _ => false,
            };
            if is_empty {
                if let Ok(event) = serde_json::from_value(Value::String(event_type.to_owned())) {
                    return Ok(event);
                }
            }
            Err(EnvelopeError::Decode {
                event_type: event_type.to_owned(),
                source: first,
            })
        }
    }
}

impl OutgoingEvent {
    /// Builds the message for one `events` row.
    pub fn from_row(namespace: &Namespace, row: &EventRow) -> Self {
        let msg_id = msg_id(&row.aggregate_type, &row.aggregate_id, row.sequence);
        let event_id = event_id(&row.aggregate_type, &row.aggregate_id, row.sequence);
        // An event without a request id starts its own correlation, so the headers that
        // consumers rely on are always present.
        let correlation_id = metadata_string(&row.metadata, "correlation_id")
            .unwrap_or_else(|| event_id.to_string());
        let command_id = metadata_string(&row.metadata, "command_id");
        let causation_id = metadata_string(&row.metadata, "causation_id")
            .or_else(|| command_id.clone())
            .unwrap_or_else(|| correlation_id.clone());

        let mut headers = HeaderMap::new();
        headers.insert(header::MSG_ID, msg_id.as_str());
        headers.insert(header::SEQUENCE, row.sequence.to_string());
        headers.insert(header::EVENT_TYPE, row.event_type.as_str());
        headers.insert(header::EVENT_VERSION, row.event_version.as_str());
        headers.insert(header::AGGREGATE_TYPE, row.aggregate_type.as_str());
        headers.insert(header::AGGREGATE_ID, row.aggregate_id.as_str());
        headers.insert(header::EVENT_ID, event_id.to_string());
        headers.insert(header::CORRELATION_ID, correlation_id.as_str());
        headers.insert(header::CAUSATION_ID, causation_id);
        if let Some(user_id) = metadata_string(&row.metadata, "user_id") {
            headers.insert(header::USER_ID, user_id);
        }
        if let Some(command_id) = command_id {
            headers.insert(header::COMMAND_ID, command_id);
        }
        headers.insert(
            header::RECORDED_AT,
            row.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        );
        // The trace context of the command that committed the event, when it was traced;
        // else one derived from the correlation id.
        if let Some(tp) = metadata_string(&row.metadata, "traceparent")
            .filter(|tp| crate::trace::parse_traceparent(tp).is_some())
            .or_else(|| traceparent(&correlation_id, event_id))
        {
            headers.insert(header::TRACEPARENT, tp);
        }

        let payload = untag_payload(&row.event_type, &row.payload);
        Self {
            position: row.position,
            subject: namespace.event_subject(
                &row.aggregate_type,
                &row.aggregate_id,
                &row.event_type,
            ),
            msg_id,
            headers,
            payload: Bytes::from(payload.to_string()),
        }
    }
}

/// An event as a consumer receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The stream it was read from, e.g. `ORDO_ORDER`.
    pub stream: String,
    /// Its sequence in that stream.
    pub stream_sequence: u64,
    /// Its subject.
    pub subject: String,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate.
    pub sequence: i64,
    /// The event type.
    pub event_type: String,
    /// The event's schema version.
    pub event_version: String,
    /// The stable event id.
    pub event_id: Uuid,
    /// The request that started the chain.
    pub correlation_id: String,
    /// The message that caused this event.
    pub causation_id: String,
    /// The user, when known.
    pub user_id: Option<String>,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
    /// The event's JSON without the serde outer tag.
    pub payload: Value,
    /// How many times JetStream has delivered it (1 on the first delivery).
    pub delivered: i64,
}

impl ReceivedEvent {
    /// Reads a message delivered by a JetStream consumer.
    pub fn from_message(message: &async_nats::jetstream::Message) -> Result<Self, EnvelopeError> {
        let subject = message.subject.to_string();
        let info = message.info().map_err(|err| EnvelopeError::NotJetStream {
            subject: subject.clone(),
            reason: err.to_string(),
        })?;
        Self::from_parts(
            info.stream,
            info.stream_sequence,
            info.delivered,
            &subject,
            message.headers.as_ref(),
            &message.payload,
        )
    }

    /// Reads an event from its parts; used for consumer deliveries and for messages read
    /// straight from a stream (replays, tests).
    pub fn from_parts(
        stream: &str,
        stream_sequence: u64,
        delivered: i64,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<Self, EnvelopeError> {
        let required = |name: &'static str| -> Result<String, EnvelopeError> {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| EnvelopeError::MissingHeader {
                    subject: subject.to_owned(),
                    header: name,
                })
        };
        let invalid = |name: &'static str, value: &str| EnvelopeError::InvalidHeader {
            subject: subject.to_owned(),
            header: name,
            value: value.to_owned(),
        };

        let sequence_raw = required(header::SEQUENCE)?;
        let sequence = sequence_raw
            .parse::<i64>()
            .map_err(|_| invalid(header::SEQUENCE, &sequence_raw))?;
        let event_id_raw = required(header::EVENT_ID)?;
        let event_id =
            Uuid::parse_str(&event_id_raw).map_err(|_| invalid(header::EVENT_ID, &event_id_raw))?;
        let recorded_raw = required(header::RECORDED_AT)?;
        let recorded_at = DateTime::parse_from_rfc3339(&recorded_raw)
            .map_err(|_| invalid(header::RECORDED_AT, &recorded_raw))?
            .with_timezone(&Utc);
        let payload =
            serde_json::from_slice(payload).map_err(|source| EnvelopeError::InvalidPayload {
                subject: subject.to_owned(),
                source,
            })?;

        Ok(Self {
            stream: stream.to_owned(),
            stream_sequence,
            subject: subject.to_owned(),
            aggregate_type: required(header::AGGREGATE_TYPE)?,
            aggregate_id: required(header::AGGREGATE_ID)?,
            sequence,
            event_type: required(header::EVENT_TYPE)?,
            event_version: required(header::EVENT_VERSION)?,
            event_id,
            correlation_id: required(header::CORRELATION_ID)?,
            causation_id: required(header::CAUSATION_ID)?,
            user_id: headers
                .and_then(|h| h.get(header::USER_ID))
                .map(|v| v.as_str().to_owned()),
            recorded_at,
            payload,
            delivered,
        })
    }

    /// Deserializes the payload into an aggregate's (externally tagged) event enum by
    /// putting back the tag the relay removed.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, EnvelopeError> {
        decode_payload(&self.event_type, &self.payload)
    }

    /// The `Nats-Msg-Id` this event was published with.
    pub fn msg_id(&self) -> String {
        msg_id(&self.aggregate_type, &self.aggregate_id, self.sequence)
    }

    /// The metadata as a flat map, the shape the `events` table stores (for handlers that
    /// issue commands carrying the chain on: causation = this event's id).
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        map.insert("correlation_id".to_owned(), self.correlation_id.clone());
        map.insert("causation_id".to_owned(), self.causation_id.clone());
        if let Some(user_id) = &self.user_id {
            map.insert("user_id".to_owned(), user_id.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum InventoryEvent {
        StockReserved { sku: String, quantity: u32 },
        StockReleased(Released),
        OrderExpired,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Released {
        sku: String,
    }

    fn row(event: &InventoryEvent, event_type: &str, sequence: i64, metadata: Value) -> EventRow {
        EventRow {
            position: 42,
            aggregate_type: "inventory".into(),
            aggregate_id: "sku-1".into(),
            sequence,
            event_type: event_type.into(),
            event_version: "1.0".into(),
            payload: serde_json::to_value(event).unwrap(),
            metadata,
            recorded_at: "2024-05-01T10:00:00.123456Z".parse().unwrap(),
        }
    }

    fn receive(out: &OutgoingEvent) -> ReceivedEvent {
        ReceivedEvent::from_parts(
            "ORDO_INVENTORY",
            7,
            1,
            &out.subject,
            Some(&out.headers),
            &out.payload,
        )
        .unwrap()
    }

    #[test]
    fn struct_variant_round_trips_without_its_tag_on_the_wire() {
        let event = InventoryEvent::StockReserved {
            sku: "sku-1".into(),
            quantity: 3,
        };
        let correlation = "0b0f4d9e-8d7a-4c55-9f1e-3c2b1a000001";
        let out = OutgoingEvent::from_row(
            &Namespace::default(),
            &row(
                &event,
                "StockReserved",
                2,
                json!({"correlation_id": correlation, "causation_id": "cmd-9", "user_id": "u-1", "command_id": "cmd-9"}),
            ),
        );
        assert_eq!(out.subject, "ordo.events.inventory.sku-1.StockReserved");
        assert_eq!(out.msg_id, "inventory:sku-1:2");
        let payload: Value = serde_json::from_slice(&out.payload).unwrap();
        assert_eq!(payload, json!({"sku": "sku-1", "quantity": 3}));

        let h = |name| out.headers.get(name).unwrap().as_str().to_owned();
        assert_eq!(h(header::MSG_ID), "inventory:sku-1:2");
        assert_eq!(h(header::SEQUENCE), "2");
        assert_eq!(h(header::EVENT_VERSION), "1.0");
        assert_eq!(h(header::CAUSATION_ID), "cmd-9");
        assert_eq!(h(header::USER_ID), "u-1");
        let event_id = event_id("inventory", "sku-1", 2);
        assert_eq!(h(header::EVENT_ID), event_id.to_string());
        assert_eq!(
            h(header::TRACEPARENT),
            format!(
                "00-0b0f4d9e8d7a4c559f1e3c2b1a000001-{}-01",
                &event_id.simple().to_string()[..16]
            )
        );

        let received = receive(&out);
        assert_eq!(received.sequence, 2);
        assert_eq!(received.correlation_id, correlation);
        assert_eq!(received.user_id.as_deref(), Some("u-1"));
        assert_eq!(
            received.recorded_at,
            row(&event, "StockReserved", 2, json!({})).recorded_at
        );
        assert_eq!(received.decode::<InventoryEvent>().unwrap(), event);
    }

    #[test]
    fn newtype_and_unit_variants_round_trip() {
        let released = InventoryEvent::StockReleased(Released {
            sku: "sku-1".into(),
        });
        let out = OutgoingEvent::from_row(
            &Namespace::default(),
            &row(&released, "StockReleased", 3, json!({})),
        );
        assert_eq!(receive(&out).decode::<InventoryEvent>().unwrap(), released);

        let expired = InventoryEvent::OrderExpired;
        assert_eq!(
            serde_json::to_value(&expired).unwrap(),
            json!("OrderExpired")
        );
        let out = OutgoingEvent::from_row(
            &Namespace::default(),
            &row(&expired, "OrderExpired", 4, json!({})),
        );
        assert_eq!(&out.payload[..], b"{}");
        assert_eq!(receive(&out).decode::<InventoryEvent>().unwrap(), expired);
    }

    #[test]
    fn event_ids_are_stable_and_missing_metadata_gets_defaults() {
        assert_eq!(event_id("order", "o-1", 1), event_id("order", "o-1", 1));
        assert_ne!(event_id("order", "o-1", 1), event_id("order", "o-1", 2));
        let out = OutgoingEvent::from_row(
            &Namespace::default(),
            &row(&InventoryEvent::OrderExpired, "OrderExpired", 1, json!({})),
        );
        let received = receive(&out);
        // No request id: the event starts its own correlation and trace.
        assert_eq!(received.correlation_id, received.event_id.to_string());
        assert_eq!(received.causation_id, received.correlation_id);
        assert!(out.headers.get(header::TRACEPARENT).is_some());
        assert!(out.headers.get(header::USER_ID).is_none());
        assert_eq!(received.user_id, None);
    }

    #[test]
    fn missing_headers_are_a_clear_error() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEQUENCE, "1");
        let err =
            ReceivedEvent::from_parts("S", 1, 1, "ordo.events.order.o.X", Some(&headers), b"{}")
                .unwrap_err();
        assert!(err.to_string().contains(header::EVENT_ID), "{err}");
        let err = ReceivedEvent::from_parts("S", 1, 1, "x", None, b"{}").unwrap_err();
        assert!(matches!(err, EnvelopeError::MissingHeader { .. }));
    }

    #[test]
    fn traceparent_needs_a_uuid_correlation_id() {
        let id = event_id("order", "o-1", 1);
        assert!(traceparent("req-123", id).is_none());
        assert!(traceparent(&Uuid::nil().to_string(), id).is_none());
        let tp = traceparent("0b0f4d9e-8d7a-4c55-9f1e-3c2b1a000001", id).unwrap();
        assert_eq!(tp.len(), 55);
    }
}
