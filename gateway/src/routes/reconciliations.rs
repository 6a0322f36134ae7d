//! Reconciliation (对账) of a day's payments with the payment provider's statement
//! (admin): run it, read its latest run. The work is `ordo_sagas::reconciliation`'s; the
//! CLI's `ordo reconcile --date D` runs the same.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use ordo_sagas::reconciliation::{Discrepancy, ReconcileError, ReconciliationReport};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::identity::AdminUser;
use crate::problem::{ApiError, ApiJson};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/admin/reconciliations/{date}",
        get(get_reconciliation).post(run_reconciliation),
    )
}

/// One disagreement between the provider's statement and Ordo.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscrepancyView {
    /// `missed_capture` (applied), `capture_not_applicable`, `unknown_payment`,
    /// `amount_mismatch`, `capture_missing_at_provider`, `refund_missing_at_provider`,
    /// `refund_unknown_to_ordo` or `refund_amount_mismatch`.
    pub kind: String,
    pub payment_id: Uuid,
    pub refund_id: Option<Uuid>,
    /// On the statement, in minor units.
    pub provider_amount: Option<i64>,
    /// In Ordo, in minor units.
    pub ordo_amount: Option<i64>,
    pub currency: String,
    /// Whether this run applied it (a missed capture recorded in Ordo).
    pub applied: bool,
    pub detail: String,
}

/// A run of a day's reconciliation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    /// The day (UTC).
    pub date: String,
    pub run_id: Uuid,
    pub ran_at: DateTime<Utc>,
    /// Runs of this day so far.
    pub runs: i64,
    /// Captures and refunds on the provider's statement.
    pub provider_entries: i32,
    /// Captures and refunds Ordo recorded that day.
    pub ordo_entries: i32,
    /// Statement entries Ordo agrees with.
    pub matched: i32,
    /// Missed captures this run applied.
    pub applied: i32,
    pub discrepancies: Vec<DiscrepancyView>,
}

impl ReconciliationView {
    /// The view of `report`, the `runs`-th run of its day.
    pub fn of(report: ReconciliationReport, runs: i64) -> Self {
        Self {
            date: report.date.to_string(),
            run_id: report.run_id,
            ran_at: report.ran_at,
            runs,
            provider_entries: report.provider_entries,
            ordo_entries: report.ordo_entries,
            matched: report.matched,
            applied: report.applied,
            discrepancies: report
                .discrepancies
                .into_iter()
                .map(|d: Discrepancy| DiscrepancyView {
                    kind: d.kind.as_str().to_string(),
                    payment_id: d.payment_id,
                    refund_id: d.refund_id,
                    provider_amount: d.provider_amount,
                    ordo_amount: d.ordo_amount,
                    currency: d.currency,
                    applied: d.applied,
                    detail: d.detail,
                })
                .collect(),
        }
    }
}

fn parse_date(date: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .filter(|_| date.len() == 10)
        .ok_or_else(|| ApiError::NotFound(format!("no day {date}")))
}

fn reconcile_error(err: ReconcileError) -> ApiError {
    match err {
        ReconcileError::Provider(err) => ApiError::Unavailable {
            detail: err.to_string(),
            retry_after_secs: 5,
        },
        ReconcileError::Failed(err) => ApiError::Internal(err),
    }
}

/// Reconciles a day (admin): the provider's statement of that day compared with Ordo's
/// captures and refunds; a capture Ordo missed is applied (and the order it pays goes on
/// as after any capture), every other discrepancy listed. Running a day again applies
/// nothing twice.
#[utoipa::path(post, path = "/api/v1/admin/reconciliations/{date}", tag = "payments",
    security(("bearer" = [])),
    params(("date" = String, Path, description = "the day, YYYY-MM-DD (UTC)", pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
    responses((status = 200, body = ReconciliationView), (status = 404, description = "no such day"),
               (status = 503, description = "the provider's statement could not be read")))]
pub async fn run_reconciliation(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(date): Path<String>,
) -> Result<ApiJson<ReconciliationView>, ApiError> {
    let date = parse_date(&date)?;
    let report = state.reconciler.run(date).await.map_err(reconcile_error)?;
    let runs = state
        .reconciler
        .latest(date)
        .await
        .map_err(reconcile_error)?
        .map(|(_, runs)| runs)
        .unwrap_or(1);
    Ok(ApiJson(ReconciliationView::of(report, runs)))
}

/// The latest reconciliation run of a day (admin).
#[utoipa::path(get, path = "/api/v1/admin/reconciliations/{date}", tag = "payments",
    security(("bearer" = [])),
    params(("date" = String, Path, description = "the day, YYYY-MM-DD (UTC)", pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
    responses((status = 200, body = ReconciliationView), (status = 404, description = "the day was never reconciled")))]
pub async fn get_reconciliation(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(date): Path<String>,
) -> Result<ApiJson<ReconciliationView>, ApiError> {
    let day = parse_date(&date)?;
    let (report, runs) = state
        .reconciler
        .latest(day)
        .await
        .map_err(reconcile_error)?
        .ok_or_else(|| ApiError::NotFound(format!("{date} was never reconciled")))?;
    Ok(ApiJson(ReconciliationView::of(report, runs)))
}
