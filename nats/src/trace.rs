//! Trace context across NATS: the W3C `traceparent` of a span, and a span made a child of
//! the context a message carries.
//!
//! These only do something when an OpenTelemetry layer is installed (`ORDO_OTLP_ENDPOINT`);
//! otherwise a span has no trace context, [`traceparent_of`] answers `None` and
//! [`follow`] does nothing.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` of `span` (`00-<trace id>-<span id>-<flags>`), if it is traced.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
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

/// Reads a W3C `traceparent` (version 00); `None` unless it is well formed and valid.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Makes `span` a child of the remote span `traceparent` names, when there is one.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_back() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = parse_traceparent(value).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(context.span_id().to_string(), "b7ad6b7169203331");
        assert!(context.is_sampled());
    }

    #[test]
    fn a_malformed_or_zero_traceparent_is_ignored() {
        assert!(parse_traceparent("").is_none());
        assert!(
            parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").is_none()
        );
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01").is_none()
        );
        assert!(
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331").is_none()
        );
        assert!(
            parse_traceparent("00-zzf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").is_none()
        );
    }

    #[test]
    fn an_untraced_span_has_no_traceparent() {
        assert!(traceparent_of(&tracing::info_span!("x")).is_none());
    }
}
