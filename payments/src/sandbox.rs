//! The sandbox payment provider: a stand-in for a real provider, served by Ordo itself
//! under `/sandbox/provider` when `ORDO_SANDBOX_PROVIDER=true` (off by default). It accepts
//! charges and answers later by calling Ordo's callback endpoint with a signed body, like a
//! real provider. Outcomes by token:
//!
//! | token           | outcome                                                    |
//! |-----------------|------------------------------------------------------------|
//! | `tok_success`   | captured after the configured delay                         |
//! | `tok_decline`   | failed (`card_declined`)                                     |
//! | `tok_timeout`   | never answers                                               |
//! | `tok_duplicate` | captured, and the same callback is sent three times         |
//! | `tok_lost_callback` | captured after the delay, but the callback is never sent (a lost webhook) |
//! | anything else   | captured, as `tok_success`                                  |
//!
//! Like a real provider it serves a daily statement, `GET /statements/{YYYY-MM-DD}`: every
//! capture and refund it booked that day (UTC), for Ordo's reconciliation.
//!
//! # Trust
//! The sandbox is unauthenticated, so it must not be a way to pay without money:
//! - it charges only payments that Ordo's event store holds (through [`PaymentRecords`]),
//!   with the amount and currency recorded there; anything else is refused (422). A charge
//!   of a payment that already has its outcome is accepted and sends nothing;
//! - it calls back only to the configured public URL of Ordo
//!   (`<public url>/api/v1/payments/<id>/callbacks`); a charge naming another
//!   `callback_url` is refused with 422 and nothing is sent;
//! - it signs with its own secret (`ORDO_SANDBOX_SECRET`), the one Ordo verifies callbacks
//!   with (`ORDO_PAYMENT_SECRET`) as with any provider;
//! - it remembers at most `max_charges` charges, forgetting the oldest first.
//!
//! Charges are idempotent by payment id; callbacks are retried until Ordo answers 2xx.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use ordo_aggregates::common::{Money, PaymentId};
use ordo_sagas::{MovementKind, StatementEntry};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::signature::{self, sign, SIGNATURE_HEADER};

/// What Ordo's event store holds of a payment, as the sandbox checks a charge against it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedPayment {
    /// The amount to charge.
    pub amount: Money,
    /// Whether it still waits for the provider (created or authorized).
    pub open: bool,
}

/// The payments Ordo recorded: the sandbox charges only these.
#[async_trait]
pub trait PaymentRecords: Send + Sync + 'static {
    /// The payment `payment_id` as recorded, `None` when there is none.
    async fn recorded(&self, payment_id: PaymentId) -> Result<Option<RecordedPayment>, String>;
}

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The secret callbacks are signed with.
    pub secret: Vec<u8>,
    /// How long before a charge's outcome is sent.
    pub delay: Duration,
    /// Ordo's public base URL: callbacks go to `<base>/api/v1/payments/<id>/callbacks`.
    pub callback_base_url: String,
    /// Most charges remembered; the oldest are forgotten first.
    pub max_charges: usize,
}

impl SandboxSettings {
    /// The charges remembered by default.
    pub const DEFAULT_MAX_CHARGES: usize = 10_000;
}

/// The sandbox's settings and memory of charges.
#[derive(Clone)]
pub struct Sandbox {
    settings: Arc<SandboxSettings>,
    records: Arc<dyn PaymentRecords>,
    charges: Arc<Mutex<Charges>>,
    client: reqwest::Client,
}

/// The charges remembered, with their order of arrival for eviction.
#[derive(Default)]
struct Charges {
    by_payment: HashMap<Uuid, ChargeRecord>,
    arrival: VecDeque<Uuid>,
}

impl Charges {
    /// Remembers a new charge, forgetting the oldest beyond `max`.
    fn insert(&mut self, payment_id: Uuid, record: ChargeRecord, max: usize) {
        if self.by_payment.insert(payment_id, record).is_none() {
            self.arrival.push_back(payment_id);
        }
        while self.arrival.len() > max.max(1) {
            if let Some(oldest) = self.arrival.pop_front() {
                self.by_payment.remove(&oldest);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct ChargeRecord {
    amount: i64,
    currency: String,
    /// Voided before its outcome was sent: the outcome is never sent.
    voided: bool,
    /// When the sandbox captured it, once it did.
    captured_at: Option<DateTime<Utc>>,
    /// Refund id -> amount and when: a repeated refund request changes nothing.
    refunds: HashMap<Uuid, (i64, DateTime<Utc>)>,
}

#[derive(Debug, Deserialize)]
struct Charge {
    payment_id: Uuid,
    amount: i64,
    currency: String,
    token: String,
    /// Must be Ordo's own callback URL of this payment when given.
    callback_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Refund {
    refund_id: Uuid,
    amount: i64,
}

type Answer = (StatusCode, Json<serde_json::Value>);

fn refusal(status: StatusCode, code: &str, detail: String) -> Answer {
    (status, Json(json!({"error": code, "detail": detail})))
}

impl Sandbox {
    /// A sandbox charging the payments of `records`.
    pub fn new(settings: SandboxSettings, records: Arc<dyn PaymentRecords>) -> Self {
        Self {
            settings: Arc::new(SandboxSettings {
                callback_base_url: settings.callback_base_url.trim_end_matches('/').to_string(),
                ..settings
            }),
            records,
            charges: Arc::new(Mutex::new(Charges::default())),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                // The callback URL is Ordo's own: a redirect elsewhere is not followed.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
        }
    }

    /// The provider's routes, to be nested under `/sandbox/provider`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/charges", post(charge))
            .route("/charges/{payment_id}/void", post(void))
            .route("/charges/{payment_id}/refunds", post(refund))
            .route("/statements/{date}", get(statement))
            .with_state(self)
    }

    /// Where the outcome of `payment_id` is posted.
    pub fn callback_url(&self, payment_id: Uuid) -> String {
        format!(
            "{}/api/v1/payments/{payment_id}/callbacks",
            self.settings.callback_base_url
        )
    }

    /// How many charges it remembers now.
    pub fn remembered(&self) -> usize {
        self.charges.lock().expect("charges lock").by_payment.len()
    }

    fn send_callback(&self, payment_id: Uuid, body: serde_json::Value, times: usize) {
        let sandbox = self.clone();
        let url = self.callback_url(payment_id);
        tokio::spawn(async move {
            if !sandbox.settings.delay.is_zero() {
                tokio::time::sleep(sandbox.settings.delay).await;
            }
            if !sandbox.settle(payment_id, body["status"] == "captured") || times == 0 {
                return;
            }
            let bytes = serde_json::to_vec(&body).expect("json");
            for _ in 0..times {
                // Like a real provider: retry with backoff until the merchant answers 2xx,
                // signing each attempt at the time it is sent.
                let mut pause = Duration::from_millis(100);
                for _ in 0..8 {
                    let signature = sign(&sandbox.settings.secret, signature::now(), &bytes);
                    let sent = sandbox
                        .client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header(SIGNATURE_HEADER, &signature)
                        .body(bytes.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => break,
                        Ok(response)
                            if response.status().is_client_error()
                                && response.status() != StatusCode::TOO_MANY_REQUESTS =>
                        {
                            tracing::warn!(%url, status = %response.status(), "sandbox callback refused");
                            break;
                        }
                        _ => {
                            tokio::time::sleep(pause).await;
                            pause *= 2;
                        }
                    }
                }
            }
        });
    }

    /// Decides a charge whose delay passed: false when it was voided meanwhile (nothing is
    /// sent); a capture is booked on the statement.
    fn settle(&self, payment_id: Uuid, capture: bool) -> bool {
        let mut charges = self.charges.lock().expect("charges lock");
        let Some(charge) = charges.by_payment.get_mut(&payment_id) else {
            return true;
        };
        if charge.voided {
            return false;
        }
        if capture && charge.captured_at.is_none() {
            charge.captured_at = Some(Utc::now());
        }
        true
    }

    /// The captures and refunds booked on `date`, oldest first.
    pub fn statement(&self, date: NaiveDate) -> Vec<StatementEntry> {
        let charges = self.charges.lock().expect("charges lock");
        let mut entries = Vec::new();
        for (payment_id, charge) in &charges.by_payment {
            let provider_ref = format!("sbx_{}", payment_id.simple());
            if let Some(at) = charge.captured_at.filter(|at| at.date_naive() == date) {
                entries.push(StatementEntry {
                    kind: MovementKind::Capture,
                    payment_id: *payment_id,
                    refund_id: None,
                    provider_ref: provider_ref.clone(),
                    amount: charge.amount,
                    currency: charge.currency.clone(),
                    at,
                });
            }
            for (refund_id, (amount, at)) in &charge.refunds {
                if at.date_naive() == date {
                    entries.push(StatementEntry {
                        kind: MovementKind::Refund,
                        payment_id: *payment_id,
                        refund_id: Some(*refund_id),
                        provider_ref: provider_ref.clone(),
                        amount: *amount,
                        currency: charge.currency.clone(),
                        at: *at,
                    });
                }
            }
        }
        entries.sort_by_key(|a| (a.at, a.payment_id));
        entries
    }

    /// Refuses a callback URL other than Ordo's own for the payment.
    fn check_callback_url(&self, charge: &Charge) -> Result<(), Answer> {
        match &charge.callback_url {
            Some(url) if url.trim_end_matches('/') != self.callback_url(charge.payment_id) => {
                Err(refusal(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "foreign_callback_url",
                    "the sandbox calls back only Ordo's own callback URL of the payment".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Checks a charge against Ordo's records: `Err` is the refusal to answer; `Ok(false)`
    /// a payment that already has its outcome (a repeated charge after the sandbox forgot
    /// it), accepted with nothing sent.
    async fn check(&self, charge: &Charge) -> Result<bool, Answer> {
        let recorded = self
            .records
            .recorded(PaymentId::from(charge.payment_id))
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "sandbox could not read the payment");
                refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the payment could not be read".into(),
                )
            })?;
        let Some(recorded) = recorded else {
            return Err(refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_payment",
                format!("Ordo holds no payment {}", charge.payment_id),
            ));
        };
        if recorded.amount.amount_minor() != charge.amount
            || recorded.amount.currency().as_str() != charge.currency
        {
            return Err(refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount_mismatch",
                format!("the payment is of {}", recorded.amount),
            ));
        }
        Ok(recorded.open)
    }
}

async fn charge(State(sandbox): State<Sandbox>, Json(charge): Json<Charge>) -> Answer {
    if let Err(refused) = sandbox.check_callback_url(&charge) {
        return refused;
    }
    let provider_ref = format!("sbx_{}", charge.payment_id.simple());
    let remembered = sandbox
        .charges
        .lock()
        .expect("charges lock")
        .by_payment
        .get(&charge.payment_id)
        .map(|record| (record.amount, record.currency.clone()));
    if let Some((amount, currency)) = remembered {
        // A repeated charge: idempotent by payment id, for the same amount only.
        if amount != charge.amount || currency != charge.currency {
            return refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount_mismatch",
                format!("the payment is of {amount} {currency} (minor units)"),
            );
        }
        return (
            StatusCode::ACCEPTED,
            Json(json!({"provider_ref": provider_ref})),
        );
    }
    match sandbox.check(&charge).await {
        Err(refused) => return refused,
        Ok(false) => {
            return (
                StatusCode::ACCEPTED,
                Json(json!({"provider_ref": provider_ref})),
            )
        }
        Ok(true) => {}
    }
    let first_time = {
        let mut charges = sandbox.charges.lock().expect("charges lock");
        let first = !charges.by_payment.contains_key(&charge.payment_id);
        if first {
            charges.insert(
                charge.payment_id,
                ChargeRecord {
                    amount: charge.amount,
                    currency: charge.currency.clone(),
                    voided: false,
                    captured_at: None,
                    refunds: HashMap::new(),
                },
                sandbox.settings.max_charges,
            );
        }
        first
    };
    if first_time {
        let captured = json!({
            "payment_id": charge.payment_id, "provider_ref": provider_ref, "status": "captured",
            "amount": charge.amount, "currency": charge.currency,
        });
        match charge.token.as_str() {
            "tok_timeout" => {}
            // Captured, and the webhook is lost: only the statement shows it.
            "tok_lost_callback" => sandbox.send_callback(charge.payment_id, captured, 0),
            "tok_decline" => sandbox.send_callback(
                charge.payment_id,
                json!({"payment_id": charge.payment_id, "provider_ref": provider_ref, "status": "failed",
                       "reason": "card_declined", "amount": charge.amount, "currency": charge.currency}),
                1,
            ),
            "tok_duplicate" => sandbox.send_callback(charge.payment_id, captured, 3),
            _ => sandbox.send_callback(charge.payment_id, captured, 1),
        }
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"provider_ref": provider_ref})),
    )
}

async fn void(State(sandbox): State<Sandbox>, Path(payment_id): Path<Uuid>) -> StatusCode {
    // Voiding stops a charge whose outcome was not sent yet.
    if let Some(charge) = sandbox
        .charges
        .lock()
        .expect("charges lock")
        .by_payment
        .get_mut(&payment_id)
    {
        charge.voided = true;
    }
    StatusCode::OK
}

async fn refund(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<Uuid>,
    Json(refund): Json<Refund>,
) -> Answer {
    let mut charges = sandbox.charges.lock().expect("charges lock");
    let Some(record) = charges.by_payment.get_mut(&payment_id) else {
        // The sandbox keeps charges in memory only: after a restart (or once forgotten) it
        // takes a refund of a charge it no longer remembers on trust, where a real provider
        // would check it. A refund moves no money towards anyone but the payer.
        return (StatusCode::OK, Json(json!({"refunded": refund.amount})));
    };
    let refunded_before: i64 = record.refunds.values().map(|(amount, _)| amount).sum();
    if !record.refunds.contains_key(&refund.refund_id) {
        if refunded_before + refund.amount > record.amount {
            return refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund_exceeds_charge",
                "refund exceeds the charge".into(),
            );
        }
        record
            .refunds
            .insert(refund.refund_id, (refund.amount, Utc::now()));
    }
    (
        StatusCode::OK,
        Json(json!({"refunded": record.refunds.values().map(|(amount, _)| amount).sum::<i64>()})),
    )
}

async fn statement(State(sandbox): State<Sandbox>, Path(date): Path<String>) -> Answer {
    let Ok(date) = NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_date",
            "the date is YYYY-MM-DD".into(),
        );
    };
    (
        StatusCode::OK,
        Json(json!({"date": date.to_string(), "entries": sandbox.statement(date)})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(amount: i64) -> ChargeRecord {
        ChargeRecord {
            amount,
            currency: "EUR".into(),
            voided: false,
            captured_at: None,
            refunds: HashMap::new(),
        }
    }

    #[test]
    fn charges_beyond_the_cap_forget_the_oldest_first() {
        let mut charges = Charges::default();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            charges.insert(*id, record(100), 3);
        }
        assert_eq!(charges.by_payment.len(), 3);
        assert_eq!(charges.arrival.len(), 3);
        assert!(!charges.by_payment.contains_key(&ids[0]));
        assert!(!charges.by_payment.contains_key(&ids[1]));
        assert!(ids[2..]
            .iter()
            .all(|id| charges.by_payment.contains_key(id)));
        // Remembering one again does not count it twice.
        charges.insert(ids[4], record(100), 3);
        assert_eq!(charges.arrival.len(), 3);
    }
}
