//! [`HttpProvider`]: the payment provider reached over HTTP with its REST API (charges,
//! voids, refunds; every call idempotent by Ordo's ids) and its daily statement. The sandbox provider speaks it.
//! It alone opens the customer's sealed payment token, to send it to the provider.

use std::time::Duration;

use async_trait::async_trait;
use ordo_aggregates::common::{Money, PaymentId, RefundId};
use ordo_sagas::{ChargeRequest, PaymentProvider, ProviderError, StatementEntry};
use serde_json::json;
use tracing::Instrument;

use crate::TokenSeal;

/// A provider at `base_url` (e.g. `http://127.0.0.1:8080/sandbox/provider`).
pub struct HttpProvider {
    base_url: String,
    client: reqwest::Client,
    seal: TokenSeal,
}

impl HttpProvider {
    /// A client of the provider at `base_url`, opening payment tokens with `seal`.
    pub fn new(base_url: &str, seal: TokenSeal) -> Self {
        Self {
            seal,
            base_url: base_url.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<(), ProviderError> {
        let span = tracing::info_span!("payment_provider", call = path);
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .json(&body)
            .send()
            .instrument(span)
            .await
            .map_err(|err| ProviderError::Unavailable(err.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() {
            let text = response.text().await.unwrap_or_default();
            Err(ProviderError::Refused(format!("{status}: {text}")))
        } else {
            Err(ProviderError::Unavailable(format!(
                "provider answered {status}"
            )))
        }
    }
}

#[async_trait]
impl PaymentProvider for HttpProvider {
    async fn charge(&self, request: ChargeRequest) -> Result<(), ProviderError> {
        let token = self
            .seal
            .open(&request.sealed_token)
            .map_err(|err| ProviderError::Refused(err.to_string()))?;
        self.post(
            "/charges",
            json!({
                "payment_id": request.payment_id,
                "amount": request.amount.amount_minor(),
                "currency": request.amount.currency().to_string(),
                "method": request.method,
                "token": token,
                "callback_url": request.callback_url,
            }),
        )
        .await
    }

    async fn void(&self, payment_id: PaymentId) -> Result<(), ProviderError> {
        self.post(&format!("/charges/{payment_id}/void"), json!({}))
            .await
    }

    async fn refund(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
    ) -> Result<(), ProviderError> {
        self.post(
            &format!("/charges/{payment_id}/refunds"),
            json!({"refund_id": refund_id, "amount": amount.amount_minor(), "currency": amount.currency().to_string()}),
        )
        .await
    }

    async fn statement(
        &self,
        date: chrono::NaiveDate,
    ) -> Result<Vec<StatementEntry>, ProviderError> {
        #[derive(serde::Deserialize)]
        struct Statement {
            entries: Vec<StatementEntry>,
        }
        let response = self
            .client
            .get(format!("{}/statements/{date}", self.base_url))
            .send()
            .await
            .map_err(|err| ProviderError::Unavailable(err.to_string()))?;
        let status = response.status();
        if status.is_client_error() {
            let text = response.text().await.unwrap_or_default();
            return Err(ProviderError::Refused(format!("{status}: {text}")));
        }
        if !status.is_success() {
            return Err(ProviderError::Unavailable(format!(
                "provider answered {status}"
            )));
        }
        let statement: Statement = response
            .json()
            .await
            .map_err(|err| ProviderError::Unavailable(format!("unreadable statement: {err}")))?;
        Ok(statement.entries)
    }
}
