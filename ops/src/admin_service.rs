//! The operators' NATS micro service: every `ordo` process registers a service named
//! `ordo` whose endpoints answer JSON under `<ns>.admin.*`, so the standard NATS CLI can
//! inspect and drive Ordo (`nats micro ls`, `nats req ordo.admin.status ''`).
//!
//! The service is named `ordo` whatever the namespace (its metadata carries the namespace);
//! processes sharing a namespace share a queue group, so a request is answered by one of
//! them. Failures answer as micro service errors (`Nats-Service-Error` and
//! `Nats-Service-Error-Code` headers): 400 for a bad request, 404 for an unknown name,
//! 500 for anything else, 503 when [`MAX_CONCURRENT_REQUESTS`] are already in progress.
//! Every request is logged with its subject, reply subject, request id and the operator it
//! declares (see `AdminAudit`), and again with its outcome.
//!
//! | subject | body | answer |
//! | --- | --- | --- |
//! | `<ns>.admin.status` | none | roles, uptime, outbox depth, relay leadership |
//! | `<ns>.admin.projections.status` | none | each projection's position, lag and state |
//! | `<ns>.admin.projections.rebuild` | `{"name": "projection-orders", "wait": false}` | the rebuild started (or its report with `wait`) |
//! | `<ns>.admin.dlq.list` | none or `{"consumer": "..."}` | the dead letters |
//! | `<ns>.admin.dlq.redrive` | `{"sequence": 5}` or `{"all": true, "consumer": "..."}` | what was re-driven |
//! | `<ns>.admin.saga` | `{"saga_id": "..."}` | the saga with its steps |

use std::collections::HashMap;
use std::time::Instant;

use async_nats::service::{error::Error as ServiceError, Request, ServiceExt};
use bytes::Bytes;
use futures::StreamExt;
use ordo_nats::relay::Relay;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::OpsContext;

/// The service name every Ordo process registers.
pub const SERVICE_NAME: &str = "ordo";

/// Admin requests one process handles at once; more are refused with 503.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;

/// Who asked what, for the log of every admin request. nats-server 2.9 tells a responder
/// nothing about the sender's connection, so the identity is what the configuration
/// guarantees (in `nats/server/ordo.conf` only the `operator` user may publish to
/// `<ns>.admin.>`) plus what the requester declares: an `Ordo-Operator` header naming the
/// person, and an `Ordo-Request-Id` header (made here when missing) to follow the request.
struct AdminAudit {
    subject: String,
    reply: String,
    request_id: String,
    operator: String,
}

impl AdminAudit {
    fn of(request: &Request) -> Self {
        let header = |name: &str| {
            request
                .message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().chars().take(200).collect::<String>())
        };
        Self {
            subject: request.message.subject.to_string(),
            reply: request
                .message
                .reply
                .as_ref()
                .map(|reply| reply.to_string())
                .unwrap_or_default(),
            request_id: header("Ordo-Request-Id").unwrap_or_else(|| Uuid::new_v4().to_string()),
            operator: header("Ordo-Operator").unwrap_or_else(|| "undeclared".to_owned()),
        }
    }
}

/// What the endpoints need to answer.
#[derive(Clone)]
pub struct AdminContext {
    /// Shared state: database, JetStream, namespace.
    pub ops: OpsContext,
    /// The roles this process runs.
    pub roles: Vec<String>,
    /// When the process started.
    pub started: Instant,
    /// This process's relay, when it runs the relay role.
    pub relay: Option<Relay>,
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Status,
    ProjectionsStatus,
    ProjectionsRebuild,
    DlqList,
    DlqRedrive,
    Saga,
}

const ENDPOINTS: &[(Endpoint, &str, &str)] = &[
    (Endpoint::Status, "status", "status"),
    (
        Endpoint::ProjectionsStatus,
        "projections-status",
        "projections.status",
    ),
    (
        Endpoint::ProjectionsRebuild,
        "projections-rebuild",
        "projections.rebuild",
    ),
    (Endpoint::DlqList, "dlq-list", "dlq.list"),
    (Endpoint::DlqRedrive, "dlq-redrive", "dlq.redrive"),
    (Endpoint::Saga, "saga", "saga"),
];

/// An error answered to the requester.
struct Failure {
    code: usize,
    message: String,
}

impl Failure {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 404,
            message: message.into(),
        }
    }

    fn internal(err: impl std::fmt::Display) -> Self {
        Self {
            code: 500,
            message: err.to_string(),
        }
    }
}

/// Registers the service and answers requests until `shutdown`.
pub async fn run(context: AdminContext, shutdown: CancellationToken) -> anyhow::Result<()> {
    let namespace = context.ops.namespace.as_str().to_owned();
    let service = context
        .ops
        .nats
        .service_builder()
        .description("Ordo operator endpoints: status, projections, dead letters, sagas")
        .metadata(HashMap::from([
            ("namespace".to_owned(), namespace.clone()),
            ("roles".to_owned(), context.roles.join(",")),
        ]))
        // One queue group per namespace: processes of one deployment share the requests.
        .queue_group(format!("ordo-{namespace}"))
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|err| anyhow::anyhow!("registering the NATS admin service failed: {err}"))?;
    let service_id = service.info().await.id;
    let group = service.group(format!("{namespace}.admin"));
    let mut endpoints = Vec::new();
    for (kind, name, subject) in ENDPOINTS {
        let endpoint = group
            .endpoint_builder()
            .name(*name)
            .add(*subject)
            .await
            .map_err(|err| anyhow::anyhow!("adding admin endpoint {subject} failed: {err}"))?;
        let kind = *kind;
        endpoints.push(endpoint.map(move |request| (kind, request)).boxed());
    }
    let mut requests = futures::stream::select_all(endpoints);
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS));
    tracing::info!(subject = %format!("{namespace}.admin.>"), %service_id, "NATS admin service ready");
    loop {
        let (kind, request) = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = requests.next() => match next {
                Some(next) => next,
                None => break,
            },
        };
        let audit = AdminAudit::of(&request);
        // Bounded: a request beyond the limit is refused at once rather than queued.
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                subject = %audit.subject, reply = %audit.reply, request_id = %audit.request_id,
                operator = %audit.operator, limit = MAX_CONCURRENT_REQUESTS,
                "admin request refused: too many in progress"
            );
            let busy = ServiceError {
                status: format!(
                    "{MAX_CONCURRENT_REQUESTS} admin requests are in progress; try again"
                ),
                code: 503,
            };
            if let Err(err) = request.respond(Err(busy)).await {
                tracing::warn!(error = %err, "cannot answer an admin request");
            }
            continue;
        };
        tracing::info!(
            subject = %audit.subject, reply = %audit.reply, request_id = %audit.request_id,
            operator = %audit.operator, "admin request"
        );
        let context = context.clone();
        let service_id = service_id.clone();
        // One task per request: a rebuild waited for must not hold up the others.
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = handle(&context, &service_id, kind, &request).await;
            let code = answer.as_ref().map_or_else(|failure| failure.code, |_| 200);
            tracing::info!(
                subject = %audit.subject, request_id = %audit.request_id,
                operator = %audit.operator, code,
                elapsed_ms = started.elapsed().as_millis() as u64, "admin request answered"
            );
            let response = match answer {
                Ok(value) => Ok(Bytes::from(value.to_string())),
                Err(failure) => Err(ServiceError {
                    status: failure.message,
                    code: failure.code,
                }),
            };
            if let Err(err) = request.respond(response).await {
                tracing::warn!(error = %err, "cannot answer an admin request");
            }
            drop(permit);
        });
    }
    service.stop().await.ok();
    Ok(())
}

async fn handle(
    context: &AdminContext,
    service_id: &str,
    kind: Endpoint,
    request: &Request,
) -> Result<Value, Failure> {
    let ops = &context.ops;
    let body = &request.message.payload;
    match kind {
        Endpoint::Status => {
            let outbox = ordo_nats::outbox_depth(&ops.pool)
                .await
                .map_err(Failure::internal)?;
            Ok(json!({
                "service": SERVICE_NAME,
                "service_id": service_id,
                "version": env!("CARGO_PKG_VERSION"),
                "namespace": ops.namespace.as_str(),
                "pid": std::process::id(),
                "roles": context.roles,
                "uptime_seconds": context.started.elapsed().as_secs(),
                "outbox_depth": outbox,
                "relay_leader": context.relay.as_ref().map(Relay::is_leader),
            }))
        }
        Endpoint::ProjectionsStatus => {
            let reports = crate::operations::projection_reports(ops)
                .await
                .map_err(Failure::internal)?;
            Ok(json!({ "projections": reports }))
        }
        Endpoint::ProjectionsRebuild => {
            #[derive(Deserialize)]
            struct Body {
                name: String,
                #[serde(default)]
                wait: bool,
            }
            let body: Body = parse(body, "{\"name\": \"projection-orders\"}")?;
            let target =
                crate::operations::rebuild_target(ops, &body.name).map_err(Failure::not_found)?;
            if body.wait {
                let report = crate::operations::rebuild(ops, &target)
                    .await
                    .map_err(|err| Failure::internal(format!("{err:#}")))?;
                return Ok(json!({ "state": "live", "report": report }));
            }
            let ops = ops.clone();
            let name = target.name();
            // Rebuilds outlast a request's timeout: follow them with projections.status.
            tokio::spawn(async move {
                if let Err(err) = crate::operations::rebuild(&ops, &target).await {
                    tracing::warn!(projection = name, error = %format!("{err:#}"), "rebuild failed");
                }
            });
            Ok(json!({ "projection": name, "state": "rebuilding" }))
        }
        Endpoint::DlqList => {
            #[derive(Deserialize, Default)]
            struct Body {
                consumer: Option<String>,
            }
            let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
                Body::default()
            } else {
                parse(body, "{\"consumer\": \"projection-orders\"} or nothing")?
            };
            let letters =
                ordo_nats::dlq::list(&ops.jetstream, &ops.namespace, body.consumer.as_deref())
                    .await
                    .map_err(Failure::internal)?;
            Ok(json!({ "dead_letters": letters }))
        }
        Endpoint::DlqRedrive => {
            #[derive(Deserialize)]
            struct Body {
                sequence: Option<u64>,
                #[serde(default)]
                all: bool,
                consumer: Option<String>,
            }
            const EXPECTED: &str = "{\"sequence\": 5} or {\"all\": true, \"consumer\": \"...\"}";
            let body: Body = parse(body, EXPECTED)?;
            let report = match (body.sequence, body.all) {
                (Some(sequence), false) => {
                    ordo_nats::dlq::redrive(&ops.jetstream, &ops.pool, &ops.namespace, sequence)
                        .await
                        .map_err(|err| {
                            let message = format!("{err:#}");
                            if message.starts_with("no dead letter") {
                                Failure::not_found(message)
                            } else {
                                Failure::internal(message)
                            }
                        })?
                }
                (None, true) => ordo_nats::dlq::redrive_all(
                    &ops.jetstream,
                    &ops.pool,
                    &ops.namespace,
                    body.consumer.as_deref(),
                )
                .await
                .map_err(Failure::internal)?,
                _ => return Err(Failure::bad_request(format!("expected {EXPECTED}"))),
            };
            Ok(serde_json::to_value(report).map_err(Failure::internal)?)
        }
        Endpoint::Saga => {
            #[derive(Deserialize)]
            struct Body {
                saga_id: String,
            }
            let body: Body = parse(body, "{\"saga_id\": \"<uuid>\"}")?;
            let id: Uuid = body.saga_id.parse().map_err(|_| {
                Failure::bad_request(format!("{:?} is not a saga id (a UUID)", body.saga_id))
            })?;
            let saga = ordo_sagas::repository::find(&ops.pool, id)
                .await
                .map_err(Failure::internal)?
                .ok_or_else(|| Failure::not_found(format!("no saga {id}")))?;
            Ok(serde_json::to_value(saga).map_err(Failure::internal)?)
        }
    }
}

/// Reads a JSON body, answering a 400 that shows what was expected.
fn parse<T: DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|err| Failure::bad_request(format!("bad JSON body ({err}); expected {expected}")))
}
