//! The payment provider as the sagas see it: a true external boundary, so a trait. Ordo
//! reaches providers over HTTP and ships a sandbox provider (both in the payments crate); a
//! real one implements the same trait without touching the sagas. What a provider reports
//! is acted on only once it is recorded in the event store: the sagas read captures from
//! the payment aggregate, never from the message alone.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ordo_aggregates::common::{Money, PaymentId, RefundId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A charge to start. The provider answers later through Ordo's callback endpoint.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// Ordo's payment id, also the provider's idempotency key.
    pub payment_id: PaymentId,
    /// What to charge.
    pub amount: Money,
    /// The customer's payment method (`card`, `alipay`...).
    pub method: String,
    /// The token the customer's payment method produced, sealed (only the provider's
    /// adapter holds the key that opens it).
    pub sealed_token: String,
    /// Where the provider posts the outcome.
    pub callback_url: String,
}

/// What moved money on the provider's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// A charge captured.
    Capture,
    /// Money given back on a captured charge.
    Refund,
}

/// One line of the provider's daily statement: a capture or a refund as the provider
/// booked it, by the provider's clock (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEntry {
    /// Capture or refund.
    pub kind: MovementKind,
    /// Ordo's payment id the charge was made for.
    pub payment_id: Uuid,
    /// Ordo's refund id, for a refund.
    #[serde(default)]
    pub refund_id: Option<Uuid>,
    /// The provider's reference of the charge.
    pub provider_ref: String,
    /// Amount in minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When the provider booked it.
    pub at: DateTime<Utc>,
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the request for good (bad token, unknown payment).
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The provider could not be reached or failed; retry later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider. Every call is idempotent per payment (and refund) id, so a saga
/// step repeated after a crash does not charge or refund twice.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Starts a charge; the outcome comes through the callback.
    async fn charge(&self, request: ChargeRequest) -> Result<(), ProviderError>;
    /// Cancels a charge that was not captured.
    async fn void(&self, payment_id: PaymentId) -> Result<(), ProviderError>;
    /// Gives money back on a captured charge.
    async fn refund(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
    ) -> Result<(), ProviderError>;
    /// The captures and refunds the provider booked on `date` (UTC), for reconciliation.
    async fn statement(&self, date: NaiveDate) -> Result<Vec<StatementEntry>, ProviderError> {
        let _ = date;
        Err(ProviderError::Refused(
            "this provider serves no statement".into(),
        ))
    }
}
