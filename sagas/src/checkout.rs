//! The checkout saga for goods. When an order is placed it reserves stock for every line;
//! if every reservation holds it confirms the order, otherwise it releases what it reserved
//! and rejects the order with the SKUs that were short.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ordo_aggregates::common::{OrderId, Quantity, Sku};
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::CommandMetadata;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::port::{CheckoutPort, StepError};
use crate::repository;

/// Durable consumer name of the checkout saga on the order stream.
pub const CHECKOUT_CONSUMER: &str = "saga-checkout";
/// The saga type stored in `sagas.saga_type`.
pub const CHECKOUT_SAGA: &str = "checkout";

/// Settings of the checkout saga.
#[derive(Debug, Clone)]
pub struct CheckoutSettings {
    /// How long a confirmed order waits for payment.
    pub payment_timeout: Duration,
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        Self {
            payment_timeout: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Deserialize)]
struct PlacedPayload {
    order_id: Uuid,
    customer_id: Uuid,
    lines: Vec<PlacedLine>,
}

#[derive(Debug, Deserialize)]
struct PlacedLine {
    sku: String,
    quantity: i64,
}

/// Runs checkouts: an [`EventHandler`] on the order stream.
pub struct CheckoutSaga {
    pool: PgPool,
    port: Arc<dyn CheckoutPort>,
    settings: CheckoutSettings,
}

impl CheckoutSaga {
    /// A saga issuing its commands through `port` and keeping its state in `pool`.
    pub fn new(pool: PgPool, port: Arc<dyn CheckoutPort>, settings: CheckoutSettings) -> Self {
        Self {
            pool,
            port,
            settings,
        }
    }

    async fn on_order_placed(
        &self,
        conn: &mut sqlx::PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let placed: PlacedPayload = serde_json::from_value(event.payload.clone())
            .map_err(|err| HandlerError::Permanent(err.into()))?;
        let order_id = OrderId::from(placed.order_id);
        let saga_id = placed.order_id;
        let lines = placed
            .lines
            .iter()
            .map(|line| {
                Ok::<_, anyhow::Error>((
                    Sku::parse(&line.sku).map_err(|e| anyhow::anyhow!("{e}"))?,
                    Quantity::parse(line.quantity).map_err(|e| anyhow::anyhow!("{e}"))?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(HandlerError::Permanent)?;
        let data = serde_json::json!({
            "customer_id": placed.customer_id,
            "lines": placed.lines.iter().map(|l| serde_json::json!({"sku": l.sku, "quantity": l.quantity})).collect::<Vec<_>>(),
        });
        repository::start(conn, saga_id, CHECKOUT_SAGA, "reserving", &data)
            .await
            .map_err(retry)?;

        let metadata = |step: &str| {
            CommandMetadata::caused_by(
                &event.correlation_id,
                &event.event_id.to_string(),
                step_id(saga_id, step).to_string(),
            )
        };

        let mut reserved = Vec::new();
        let mut short = Vec::new();
        let mut refusal = None;
        for (sku, quantity) in &lines {
            let step = format!("reserve_stock:{sku}");
            match self
                .port
                .reserve_stock(sku, order_id, *quantity, metadata(&step))
                .await
            {
                Ok(()) => {
                    reserved.push(sku.clone());
                    repository::log_step(
                        conn,
                        saga_id,
                        "reserve_stock",
                        Some(format!("{sku} x{}", quantity.get())),
                    )
                    .await
                    .map_err(retry)?;
                }
                Err(StepError::Refused { code, detail }) => {
                    repository::log_step(
                        conn,
                        saga_id,
                        "reserve_refused",
                        Some(format!("{sku}: {detail}")),
                    )
                    .await
                    .map_err(retry)?;
                    short.push(sku.clone());
                    refusal.get_or_insert(code);
                }
                Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
            }
        }

        if short.is_empty() {
            self.port
                .confirm_order(order_id, metadata("confirm_order"))
                .await
                .map_err(step_failure)?;
            let deadline = chrono::Utc::now()
                + chrono::Duration::from_std(self.settings.payment_timeout)
                    .unwrap_or(chrono::Duration::minutes(15));
            repository::log_step(conn, saga_id, "confirm_order", None)
                .await
                .map_err(retry)?;
            repository::set_status(conn, saga_id, "awaiting_payment", Some(deadline))
                .await
                .map_err(retry)?;
        } else {
            // Compensate: release every line, also those whose reservation may have been
            // made by an earlier attempt of this step before a crash.
            for (sku, _) in &lines {
                self.port
                    .release_stock(sku, order_id, metadata(&format!("release_stock:{sku}")))
                    .await
                    .map_err(step_failure)?;
            }
            for sku in &reserved {
                repository::log_step(conn, saga_id, "release_stock", Some(sku.to_string()))
                    .await
                    .map_err(retry)?;
            }
            let reason = match refusal.as_deref() {
                Some("insufficient_stock") | None => "insufficient_stock".to_string(),
                Some(other) => other.to_string(),
            };
            self.port
                .reject_order(order_id, &reason, short.clone(), metadata("reject_order"))
                .await
                .map_err(step_failure)?;
            repository::log_step(conn, saga_id, "reject_order", Some(reason))
                .await
                .map_err(retry)?;
            repository::set_status(conn, saga_id, "rejected", None)
                .await
                .map_err(retry)?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for CheckoutSaga {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await.map_err(retry)?;
        match claim(&mut tx, CHECKOUT_CONSUMER, event)
            .await
            .map_err(retry)?
        {
            Claim::AlreadyApplied => return Ok(()),
            Claim::Gap { expected } => {
                return Err(HandlerError::Retry(anyhow::anyhow!(
                    "order {} sequence {} arrived before {expected}",
                    event.aggregate_id,
                    event.sequence
                )))
            }
            Claim::Apply => {}
        }
        let outcome = match event.event_type.as_str() {
            "OrderPlaced" => self.on_order_placed(&mut tx, event).await,
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => {
                tx.commit().await.map_err(retry)?;
                Ok(())
            }
            Err(err) => {
                drop(tx);
                if let Ok(saga_id) = event.aggregate_id.parse::<Uuid>() {
                    let message = match &err {
                        HandlerError::Retry(e) | HandlerError::Permanent(e) => e.to_string(),
                    };
                    let _ = repository::record_error(&self.pool, saga_id, &message).await;
                }
                Err(err)
            }
        }
    }
}

/// The deterministic id of a saga step's command.
pub fn step_id(saga_id: Uuid, step: &str) -> Uuid {
    Uuid::new_v5(&saga_id, step.as_bytes())
}

fn retry(err: impl Into<anyhow::Error>) -> HandlerError {
    HandlerError::Retry(err.into())
}

fn step_failure(err: StepError) -> HandlerError {
    match err {
        StepError::Failed(err) => HandlerError::Retry(err),
        // A compensation or confirmation refused is not expected: keep it visible and retry.
        StepError::Refused { code, detail } => {
            HandlerError::Retry(anyhow::anyhow!("step refused ({code}): {detail}"))
        }
    }
}
