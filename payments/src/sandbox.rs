//! The sandbox payment provider: a stand-in for a real provider, served by Ordo itself
//! under `/sandbox/provider`. It accepts charges and answers later by calling the charge's
//! callback URL with an HMAC-SHA256 signed body, like a real provider. Outcomes by token:
//!
//! | token           | outcome                                                    |
//! |-----------------|------------------------------------------------------------|
//! | `tok_success`   | captured after the configured delay                         |
//! | `tok_decline`   | failed (`card_declined`)                                     |
//! | `tok_timeout`   | never answers                                               |
//! | `tok_duplicate` | captured, and the same callback is sent three times         |
//! | anything else   | captured, as `tok_success`                                  |
//!
//! Charges are idempotent by payment id; callbacks are retried until Ordo answers 2xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::signature::{sign, SIGNATURE_HEADER};

/// The sandbox's settings and memory of charges.
#[derive(Clone)]
pub struct Sandbox {
    secret: Arc<Vec<u8>>,
    delay: Duration,
    charges: Arc<Mutex<HashMap<Uuid, ChargeRecord>>>,
    client: reqwest::Client,
}

#[derive(Debug, Clone)]
struct ChargeRecord {
    amount: i64,
    /// Voided before its outcome was sent: the outcome is never sent.
    voided: bool,
    /// Refund id -> amount: a repeated refund request changes nothing.
    refunds: HashMap<Uuid, i64>,
}

#[derive(Debug, Deserialize)]
struct Charge {
    payment_id: Uuid,
    amount: i64,
    currency: String,
    token: String,
    callback_url: String,
}

#[derive(Debug, Deserialize)]
struct Refund {
    refund_id: Uuid,
    amount: i64,
}

impl Sandbox {
    /// A sandbox signing callbacks with `secret`, answering charges after `delay`.
    pub fn new(secret: &[u8], delay: Duration) -> Self {
        Self {
            secret: Arc::new(secret.to_vec()),
            delay,
            charges: Arc::new(Mutex::new(HashMap::new())),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
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
            .with_state(self)
    }

    fn send_callback(&self, payment_id: Uuid, url: String, body: serde_json::Value, times: usize) {
        let sandbox = self.clone();
        tokio::spawn(async move {
            if !sandbox.delay.is_zero() {
                tokio::time::sleep(sandbox.delay).await;
            }
            let voided = sandbox
                .charges
                .lock()
                .expect("charges lock")
                .get(&payment_id)
                .is_some_and(|c| c.voided);
            if voided {
                return;
            }
            let bytes = serde_json::to_vec(&body).expect("json");
            let signature = sign(&sandbox.secret, &bytes);
            for _ in 0..times {
                // Like a real provider: retry with backoff until the merchant answers 2xx.
                let mut pause = Duration::from_millis(100);
                for _ in 0..8 {
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
}

async fn charge(
    State(sandbox): State<Sandbox>,
    Json(charge): Json<Charge>,
) -> (StatusCode, Json<serde_json::Value>) {
    let provider_ref = format!("sbx_{}", charge.payment_id.simple());
    let first_time = {
        let mut charges = sandbox.charges.lock().expect("charges lock");
        let first = !charges.contains_key(&charge.payment_id);
        charges.entry(charge.payment_id).or_insert(ChargeRecord {
            amount: charge.amount,
            voided: false,
            refunds: HashMap::new(),
        });
        first
    };
    if first_time {
        let captured = json!({
            "payment_id": charge.payment_id, "provider_ref": provider_ref, "status": "captured",
            "amount": charge.amount, "currency": charge.currency,
        });
        match charge.token.as_str() {
            "tok_timeout" => {}
            "tok_decline" => sandbox.send_callback(
                charge.payment_id,
                charge.callback_url.clone(),
                json!({"payment_id": charge.payment_id, "provider_ref": provider_ref, "status": "failed",
                       "reason": "card_declined", "amount": charge.amount, "currency": charge.currency}),
                1,
            ),
            "tok_duplicate" => {
                sandbox.send_callback(charge.payment_id, charge.callback_url.clone(), captured, 3)
            }
            _ => sandbox.send_callback(charge.payment_id, charge.callback_url.clone(), captured, 1),
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
) -> (StatusCode, Json<serde_json::Value>) {
    let mut charges = sandbox.charges.lock().expect("charges lock");
    let Some(record) = charges.get_mut(&payment_id) else {
        // The sandbox keeps charges in memory only: after a restart it takes a refund of a
        // charge it no longer remembers on trust, where a real provider would check it.
        return (StatusCode::OK, Json(json!({"refunded": refund.amount})));
    };
    let refunded_before: i64 = record.refunds.values().sum();
    if !record.refunds.contains_key(&refund.refund_id) {
        if refunded_before + refund.amount > record.amount {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "refund exceeds the charge"})),
            );
        }
        record.refunds.insert(refund.refund_id, refund.amount);
    }
    (
        StatusCode::OK,
        Json(json!({"refunded": record.refunds.values().sum::<i64>()})),
    )
}
