//! Metadata stored with every event: it lets one request be followed through the gateway,
//! saga steps and projections (ARCHITECTURE.md section 4).

use std::collections::HashMap;

use uuid::Uuid;

/// Who and what caused a command. Stored as the events' metadata map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandMetadata {
    /// The id of the originating request (`X-Request-Id`), carried through every step.
    pub correlation_id: String,
    /// The id of the message that caused this command: the request id for HTTP commands,
    /// the event id for saga steps.
    pub causation_id: String,
    /// The authenticated user, when a user issued the command.
    pub user_id: Option<Uuid>,
    /// A deterministic id of this command (saga steps) or a random one.
    pub command_id: String,
    /// The W3C trace context of the span that issued the command, when tracing is on
    /// ([`CommandBus::execute`](crate::CommandBus::execute) fills it in): the relay
    /// continues the trace from it.
    pub traceparent: Option<String>,
}

impl CommandMetadata {
    /// Metadata for a command issued directly by an HTTP request.
    pub fn from_request(request_id: &str, user_id: Option<Uuid>) -> Self {
        Self {
            correlation_id: request_id.to_string(),
            causation_id: request_id.to_string(),
            user_id,
            command_id: Uuid::new_v4().to_string(),
            traceparent: None,
        }
    }

    /// Metadata for a command caused by an event (a saga step): the correlation id is kept
    /// and the causing event becomes the causation id.
    pub fn caused_by(correlation_id: &str, event_id: &str, command_id: String) -> Self {
        Self {
            correlation_id: correlation_id.to_string(),
            causation_id: event_id.to_string(),
            user_id: None,
            command_id,
            traceparent: None,
        }
    }

    /// The flat map stored in the `metadata` column.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::with_capacity(4);
        map.insert("correlation_id".into(), self.correlation_id.clone());
        map.insert("causation_id".into(), self.causation_id.clone());
        map.insert("command_id".into(), self.command_id.clone());
        if let Some(user) = self.user_id {
            map.insert("user_id".into(), user.to_string());
        }
        if let Some(traceparent) = &self.traceparent {
            map.insert("traceparent".into(), traceparent.clone());
        }
        map
    }
}

/// The W3C `traceparent` of the current span, when an OpenTelemetry layer traces it.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let otel = context.span();
    let span_context = otel.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}
