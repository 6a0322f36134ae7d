//! Reconciliation (对账) of one day's payments: the provider's daily statement (its
//! captures and refunds) compared with what Ordo's event store holds.
//!
//! ```text
//! statement capture, Ordo's payment still open, same amount -> apply the capture (补单):
//!     the Capture command the lost callback would have sent; the checkout (or booking,
//!     service order) process then goes on as after any capture
//! statement capture, Ordo captured the same amount          -> matched
//! statement capture, anything else                          -> listed (unknown payment,
//!     another amount, a payment Ordo failed or voided)
//! statement refund,  Ordo holds the refund with its amount  -> matched, else listed
//! Ordo capture or refund of the day the statement lacks      -> listed
//! ```
//!
//! Only what the write side holds decides: each payment is loaded from the event store, and
//! Ordo's movements of the day are its `PaymentCaptured` and `PaymentRefunded` events. A
//! capture is applied through the payment aggregate with a deterministic command id, and
//! capturing a captured payment is a no-op, so running a day again applies nothing twice.
//! Every run is kept with its discrepancies.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ordo_aggregates::common::{Money, PaymentId, RefundId};
use ordo_aggregates::payment::PaymentStatus;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::port::StepError;
use crate::provider::{MovementKind, PaymentProvider, ProviderError, StatementEntry};
use crate::repository;

/// A payment as the event store holds it, as reconciliation compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    /// Where it stands.
    pub status: PaymentStatus,
    /// What it is for.
    pub amount: Money,
    /// What was captured, once captured.
    pub captured: Option<Money>,
    /// Every refund by id.
    pub refunds: BTreeMap<RefundId, Money>,
}

/// What reconciliation reads and does on the write side.
#[async_trait]
pub trait ReconciliationPort: Send + Sync + 'static {
    /// The payment `payment_id`, `None` when the event store holds none.
    async fn payment_record(
        &self,
        payment_id: PaymentId,
    ) -> Result<Option<PaymentRecord>, StepError>;
    /// Records the capture the provider booked; answers whether it changed the payment.
    async fn capture_payment(
        &self,
        payment_id: PaymentId,
        provider_ref: &str,
        amount: Money,
        metadata: CommandMetadata,
    ) -> Result<bool, StepError>;
}

/// What kind of disagreement a discrepancy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// The provider captured a payment Ordo still held open: the capture was applied.
    MissedCapture,
    /// The provider captured a payment Ordo failed or voided, or the capture was refused.
    CaptureNotApplicable,
    /// The statement names a payment Ordo does not hold.
    UnknownPayment,
    /// The provider captured another amount than Ordo's payment.
    AmountMismatch,
    /// Ordo captured a payment the statement of the day does not show.
    CaptureMissingAtProvider,
    /// Ordo refunded what the statement of the day does not show.
    RefundMissingAtProvider,
    /// The statement shows a refund Ordo does not hold.
    RefundUnknownToOrdo,
    /// The provider refunded another amount than Ordo's refund.
    RefundAmountMismatch,
}

impl DiscrepancyKind {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DiscrepancyKind::MissedCapture => "missed_capture",
            DiscrepancyKind::CaptureNotApplicable => "capture_not_applicable",
            DiscrepancyKind::UnknownPayment => "unknown_payment",
            DiscrepancyKind::AmountMismatch => "amount_mismatch",
            DiscrepancyKind::CaptureMissingAtProvider => "capture_missing_at_provider",
            DiscrepancyKind::RefundMissingAtProvider => "refund_missing_at_provider",
            DiscrepancyKind::RefundUnknownToOrdo => "refund_unknown_to_ordo",
            DiscrepancyKind::RefundAmountMismatch => "refund_amount_mismatch",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            DiscrepancyKind::MissedCapture,
            DiscrepancyKind::CaptureNotApplicable,
            DiscrepancyKind::UnknownPayment,
            DiscrepancyKind::AmountMismatch,
            DiscrepancyKind::CaptureMissingAtProvider,
            DiscrepancyKind::RefundMissingAtProvider,
            DiscrepancyKind::RefundUnknownToOrdo,
            DiscrepancyKind::RefundAmountMismatch,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// One disagreement between the statement and Ordo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    /// What disagrees.
    pub kind: DiscrepancyKind,
    /// The payment concerned.
    pub payment_id: Uuid,
    /// The refund concerned, for refunds.
    pub refund_id: Option<Uuid>,
    /// The amount on the statement, in minor units.
    pub provider_amount: Option<i64>,
    /// The amount Ordo holds, in minor units.
    pub ordo_amount: Option<i64>,
    /// ISO 4217 code.
    pub currency: String,
    /// Whether this run applied it (a missed capture recorded in Ordo).
    pub applied: bool,
    /// What was found, in words.
    pub detail: String,
}

/// The outcome of reconciling one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationReport {
    /// This run.
    pub run_id: Uuid,
    /// The day reconciled (UTC).
    pub date: NaiveDate,
    /// When it ran.
    pub ran_at: DateTime<Utc>,
    /// Captures and refunds on the provider's statement.
    pub provider_entries: i32,
    /// Captures and refunds Ordo recorded that day.
    pub ordo_entries: i32,
    /// Statement entries Ordo agrees with (those applied by this run excluded).
    pub matched: i32,
    /// Missed captures this run applied.
    pub applied: i32,
    /// Every disagreement found, the applied captures included.
    pub discrepancies: Vec<Discrepancy>,
}

/// A capture or refund Ordo's event store recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdoMovement {
    /// Capture or refund.
    pub kind: MovementKind,
    /// The payment.
    pub payment_id: Uuid,
    /// The refund, for refunds.
    pub refund_id: Option<Uuid>,
    /// Amount in minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The provider's statement could not be had.
    #[error("the provider's statement could not be read: {0}")]
    Provider(#[from] ProviderError),
    /// The event store or the database failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Reconciles days of payments.
pub struct Reconciler {
    pool: PgPool,
    port: Arc<dyn ReconciliationPort>,
    provider: Arc<dyn PaymentProvider>,
}

impl Reconciler {
    /// A reconciler reading the provider's statements from `provider`, the payments
    /// through `port`, and keeping its runs in `pool`.
    pub fn new(
        pool: PgPool,
        port: Arc<dyn ReconciliationPort>,
        provider: Arc<dyn PaymentProvider>,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            port,
            provider,
        })
    }

    /// Reconciles `date`: applies the missed captures, lists every other discrepancy, and
    /// keeps the run.
    pub async fn run(&self, date: NaiveDate) -> Result<ReconciliationReport, ReconcileError> {
        let statement = self.provider.statement(date).await?;
        let ordo = repository::payment_movements(&self.pool, date)
            .await
            .map_err(anyhow::Error::from)?;
        let mut report = ReconciliationReport {
            run_id: Uuid::new_v4(),
            date,
            ran_at: Utc::now(),
            provider_entries: count(statement.len()),
            ordo_entries: count(ordo.len()),
            matched: 0,
            applied: 0,
            discrepancies: Vec::new(),
        };
        for entry in &statement {
            self.compare(date, entry, &mut report).await?;
        }
        let on_statement: HashSet<(MovementKind, Uuid, Option<Uuid>)> = statement
            .iter()
            .map(|e| (e.kind, e.payment_id, e.refund_id))
            .collect();
        for movement in ordo {
            if on_statement.contains(&(movement.kind, movement.payment_id, movement.refund_id)) {
                continue;
            }
            let kind = match movement.kind {
                MovementKind::Capture => DiscrepancyKind::CaptureMissingAtProvider,
                MovementKind::Refund => DiscrepancyKind::RefundMissingAtProvider,
            };
            report.discrepancies.push(Discrepancy {
                kind,
                payment_id: movement.payment_id,
                refund_id: movement.refund_id,
                provider_amount: None,
                ordo_amount: Some(movement.amount),
                currency: movement.currency,
                applied: false,
                detail: format!(
                    "Ordo recorded it on {date}; the provider's statement does not show it"
                ),
            });
        }
        repository::save_reconciliation(&self.pool, &report)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(report)
    }

    /// The latest run of `date`, with the number of runs so far.
    pub async fn latest(
        &self,
        date: NaiveDate,
    ) -> Result<Option<(ReconciliationReport, i64)>, ReconcileError> {
        Ok(repository::latest_reconciliation(&self.pool, date)
            .await
            .map_err(anyhow::Error::from)?)
    }

    async fn compare(
        &self,
        date: NaiveDate,
        entry: &StatementEntry,
        report: &mut ReconciliationReport,
    ) -> Result<(), ReconcileError> {
        let record = match self
            .port
            .payment_record(PaymentId::from(entry.payment_id))
            .await
        {
            Ok(record) => record,
            Err(StepError::Refused { .. }) => None,
            Err(StepError::Failed(err)) => return Err(err.into()),
        };
        let found = |kind, ordo_amount: Option<i64>, detail: String| Discrepancy {
            kind,
            payment_id: entry.payment_id,
            refund_id: entry.refund_id,
            provider_amount: Some(entry.amount),
            ordo_amount,
            currency: entry.currency.clone(),
            applied: false,
            detail,
        };
        let Some(record) = record else {
            report.discrepancies.push(found(
                DiscrepancyKind::UnknownPayment,
                None,
                "Ordo holds no such payment".into(),
            ));
            return Ok(());
        };
        let same = |money: &Money| {
            money.amount_minor() == entry.amount && money.currency().as_str() == entry.currency
        };
        match entry.kind {
            MovementKind::Capture => {
                if record.status.is_captured() {
                    let captured = record.captured.as_ref().unwrap_or(&record.amount);
                    if same(captured) {
                        report.matched += 1;
                    } else {
                        report.discrepancies.push(found(
                            DiscrepancyKind::AmountMismatch,
                            Some(captured.amount_minor()),
                            format!("Ordo captured {captured}"),
                        ));
                    }
                    return Ok(());
                }
                if !matches!(
                    record.status,
                    PaymentStatus::Created | PaymentStatus::Authorized
                ) {
                    report.discrepancies.push(found(
                        DiscrepancyKind::CaptureNotApplicable,
                        Some(record.amount.amount_minor()),
                        format!("the payment is {} in Ordo", record.status),
                    ));
                    return Ok(());
                }
                if !same(&record.amount) {
                    report.discrepancies.push(found(
                        DiscrepancyKind::AmountMismatch,
                        Some(record.amount.amount_minor()),
                        format!("the payment is of {}", record.amount),
                    ));
                    return Ok(());
                }
                let metadata = CommandMetadata::caused_by(
                    &format!("reconciliation:{date}"),
                    &report.run_id.to_string(),
                    Uuid::new_v5(&entry.payment_id, b"reconciliation:capture").to_string(),
                );
                match self
                    .port
                    .capture_payment(
                        PaymentId::from(entry.payment_id),
                        &entry.provider_ref,
                        record.amount.clone(),
                        metadata,
                    )
                    .await
                {
                    Ok(changed) => {
                        let mut discrepancy = found(
                            DiscrepancyKind::MissedCapture,
                            None,
                            "the provider captured it and Ordo never heard: capture applied".into(),
                        );
                        discrepancy.applied = changed;
                        if changed {
                            report.applied += 1;
                            report.discrepancies.push(discrepancy);
                        } else {
                            // Captured meanwhile (the callback came after all).
                            report.matched += 1;
                        }
                    }
                    Err(StepError::Refused { detail, .. }) => {
                        report.discrepancies.push(found(
                            DiscrepancyKind::CaptureNotApplicable,
                            Some(record.amount.amount_minor()),
                            format!("the capture was refused: {detail}"),
                        ));
                    }
                    Err(StepError::Failed(err)) => return Err(err.into()),
                }
            }
            MovementKind::Refund => {
                let held = entry
                    .refund_id
                    .and_then(|id| record.refunds.get(&RefundId::from(id)));
                match held {
                    Some(amount) if same(amount) => report.matched += 1,
                    Some(amount) => report.discrepancies.push(found(
                        DiscrepancyKind::RefundAmountMismatch,
                        Some(amount.amount_minor()),
                        format!("Ordo refunded {amount}"),
                    )),
                    None => report.discrepancies.push(found(
                        DiscrepancyKind::RefundUnknownToOrdo,
                        None,
                        "Ordo holds no such refund of the payment".into(),
                    )),
                }
            }
        }
        Ok(())
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in [
            DiscrepancyKind::MissedCapture,
            DiscrepancyKind::CaptureNotApplicable,
            DiscrepancyKind::UnknownPayment,
            DiscrepancyKind::AmountMismatch,
            DiscrepancyKind::CaptureMissingAtProvider,
            DiscrepancyKind::RefundMissingAtProvider,
            DiscrepancyKind::RefundUnknownToOrdo,
            DiscrepancyKind::RefundAmountMismatch,
        ] {
            assert_eq!(DiscrepancyKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(DiscrepancyKind::parse("other"), None);
    }
}
