//! Logging and tracing, set up once: JSON lines on stderr, filtered by `ORDO_LOG`; and,
//! when `ORDO_OTLP_ENDPOINT` is set, OpenTelemetry spans exported over OTLP/HTTP.
//!
//! Ordo's spans (targets `ordo*`) become OpenTelemetry spans: the HTTP request, the
//! command and its commit, the relay's publish, each consumer's handling of an event (saga
//! steps and projections), and payment provider calls. The trace context crosses NATS in
//! each event's `traceparent` header (see `ordo_nats::trace`), so one request is one
//! trace. Every span carries the request id: a span that does not name one inherits its
//! parent's. Without an endpoint no OpenTelemetry layer is installed at all.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where and how often spans are exported.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// The collector's base URL; spans are posted to `<endpoint>/v1/traces`.
    pub endpoint: String,
    /// How long finished spans wait before they are sent in one batch.
    pub flush_interval: Duration,
}

/// Keeps the span exporter alive; dropping it sends the spans still waiting.
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
/// Call it before starting the async runtime: the exporter runs on its own thread.
pub fn init(filter: &str, export: Option<TraceExport>) -> TelemetryGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let provider = export.and_then(|export| match tracer_provider(&export) {
        Ok(provider) => Some(provider),
        Err(err) => {
            eprintln!(
                "ordo: tracing disabled, cannot export to {}: {err}",
                export.endpoint
            );
            None
        }
    });
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("ordo"))
            .with_filter(filter_fn(|meta| {
                meta.target().starts_with("ordo") && *meta.level() <= tracing::Level::INFO
            }))
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .with(provider.as_ref().map(|_| RequestIdOnEverySpan))
        .try_init();
    TelemetryGuard { provider }
}

fn tracer_provider(export: &TraceExport) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!(
            "{}/v1/traces",
            export.endpoint.trim_end_matches('/')
        ))
        .build()?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(export.flush_interval)
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("ordo")
                .build(),
        )
        .build())
}

/// The request id a span carries, kept in its extensions for its children.
#[derive(Clone)]
struct RequestIdOf(String);

/// Gives every exported span a `request_id` attribute: its own field, else its parent's.
/// It runs after the OpenTelemetry layer, whose span data it extends.
struct RequestIdOnEverySpan;

impl<S> Layer<S> for RequestIdOnEverySpan
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut own = FindRequestId(None);
        attrs.record(&mut own);
        if let Some(request_id) = own.0.filter(|r| !r.is_empty()) {
            span.extensions_mut().insert(RequestIdOf(request_id));
            return;
        }
        let inherited = span
            .parent()
            .and_then(|parent| parent.extensions().get::<RequestIdOf>().cloned());
        if let Some(request_id) = inherited {
            let mut extensions = span.extensions_mut();
            if let Some(otel) = extensions.get_mut::<tracing_opentelemetry::OtelData>() {
                otel.builder
                    .attributes
                    .get_or_insert_with(Vec::new)
                    .push(KeyValue::new("request_id", request_id.0.clone()));
            }
            extensions.insert(request_id);
        }
    }
}

struct FindRequestId(Option<String>);

impl Visit for FindRequestId {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}
