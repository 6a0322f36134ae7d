//! The carriers as Ordo reaches them: [`Carriers`], the adapter behind the fulfilment
//! process's `Carrier` port, and [`SandboxCarrier`], a stand-in carrier that Ordo plays
//! itself for demos and tests (carrier code `sandbox`; on with `ORDO_SANDBOX_PROVIDER`).
//!
//! Asked to follow a parcel, the sandbox carrier reports it the way a real carrier's
//! webhook does: it posts `{shipment_id, tracking_no, status, at}` to Ordo's tracking
//! endpoint, signed like the payment provider's callbacks (`Ordo-Signature: t=..,v1=..`
//! over the timestamp and the exact body, see [`crate::signature`]), first `in_transit`,
//! then `delivered`, `delay` apart. Each post is retried with back-off until Ordo answers
//! 2xx (a 4xx other than 429 ends it). Following the same parcel twice sends its updates
//! twice, which Ordo takes as the no-ops they are.
//!
//! # Trust
//! It posts only to Ordo's own public URL (`<public url>/api/v1/shipments/<id>/tracking`):
//! a parcel naming another URL is refused and nothing is sent. It signs with the secret
//! Ordo verifies carrier updates with.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use ordo_sagas::fulfilment::{Carrier, CarrierError, Parcel};
use serde_json::json;

use crate::signature::{self, sign, SIGNATURE_HEADER};

/// How the sandbox carrier behaves.
#[derive(Debug, Clone)]
pub struct SandboxCarrierSettings {
    /// The secret its updates are signed with.
    pub secret: Vec<u8>,
    /// The time between following a parcel and each of its updates.
    pub delay: Duration,
    /// Ordo's public base URL: updates go to `<base>/api/v1/shipments/<id>/tracking`.
    pub public_url: String,
}

/// The stand-in carrier.
#[derive(Clone)]
pub struct SandboxCarrier {
    settings: std::sync::Arc<SandboxCarrierSettings>,
    client: reqwest::Client,
}

impl SandboxCarrier {
    /// A sandbox carrier posting to Ordo at `settings.public_url`.
    pub fn new(settings: SandboxCarrierSettings) -> Self {
        Self {
            settings: std::sync::Arc::new(SandboxCarrierSettings {
                public_url: settings.public_url.trim_end_matches('/').to_string(),
                ..settings
            }),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
        }
    }

    /// Where the updates of `parcel` go.
    fn tracking_url(&self, parcel: &Parcel) -> String {
        format!(
            "{}/api/v1/shipments/{}/tracking",
            self.settings.public_url, parcel.shipment_id
        )
    }

    /// Posts one signed update, retrying until Ordo answers 2xx or refuses it.
    async fn post(&self, url: &str, body: &serde_json::Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        let mut pause = Duration::from_millis(100);
        for _ in 0..8 {
            let signature = sign(&self.settings.secret, signature::now(), &bytes);
            let sent = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(bytes.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                // A refusal ends it; a conflict or a rate limit with Retry-After is retried.
                Ok(response)
                    if response.status().is_client_error()
                        && response.status() != StatusCode::TOO_MANY_REQUESTS
                        && response.headers().get("retry-after").is_none() =>
                {
                    tracing::warn!(%url, status = %response.status(), "sandbox carrier update refused");
                    return;
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
}

#[async_trait]
impl Carrier for SandboxCarrier {
    async fn follow(&self, parcel: Parcel) -> Result<(), CarrierError> {
        let url = self.tracking_url(&parcel);
        if parcel.tracking_url.trim_end_matches('/') != url {
            return Err(CarrierError::Refused(
                "the sandbox carrier posts only to Ordo's own tracking URL of the shipment".into(),
            ));
        }
        let carrier = self.clone();
        tokio::spawn(async move {
            for status in ["in_transit", "delivered"] {
                tokio::time::sleep(carrier.settings.delay).await;
                let body = json!({
                    "shipment_id": parcel.shipment_id,
                    "tracking_no": parcel.tracking_no.as_str(),
                    "status": status,
                    "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
                carrier.post(&url, &body).await;
            }
        });
        Ok(())
    }
}

/// Every carrier Ordo knows: the sandbox when it is on. Another carrier's updates come from
/// its own webhook, signed with the carrier secret; following its parcels needs nothing
/// from Ordo, so it is answered as refused (no integration), which the fulfilment process
/// records and goes on waiting for the updates.
pub struct Carriers {
    sandbox: Option<SandboxCarrier>,
}

impl Carriers {
    /// The carriers, with the sandbox carrier when given.
    pub fn new(sandbox: Option<SandboxCarrier>) -> Self {
        Self { sandbox }
    }
}

#[async_trait]
impl Carrier for Carriers {
    async fn follow(&self, parcel: Parcel) -> Result<(), CarrierError> {
        match &self.sandbox {
            Some(sandbox) if parcel.carrier.is_sandbox() => sandbox.follow(parcel).await,
            None if parcel.carrier.is_sandbox() => Err(CarrierError::Refused(
                "the sandbox carrier is off (ORDO_SANDBOX_PROVIDER)".into(),
            )),
            _ => Err(CarrierError::Refused(format!(
                "no integration with carrier {}: its webhook posts the updates",
                parcel.carrier
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_aggregates::shipment::{CarrierCode, TrackingNumber};

    fn parcel(carrier: &str, url: &str) -> Parcel {
        Parcel {
            shipment_id: uuid::Uuid::from_u128(7).into(),
            carrier: CarrierCode::parse(carrier).unwrap(),
            tracking_no: TrackingNumber::parse("SBX-7").unwrap(),
            tracking_url: url.into(),
        }
    }

    fn sandbox() -> SandboxCarrier {
        SandboxCarrier::new(SandboxCarrierSettings {
            secret: b"0123456789abcdef".to_vec(),
            delay: Duration::from_secs(3600),
            public_url: "http://127.0.0.1:9/".into(),
        })
    }

    #[tokio::test]
    async fn the_sandbox_posts_only_to_ordos_own_tracking_url() {
        let refused = sandbox()
            .follow(parcel("sandbox", "http://evil.example/hook"))
            .await;
        assert!(matches!(refused, Err(CarrierError::Refused(_))));
        let own = format!(
            "http://127.0.0.1:9/api/v1/shipments/{}/tracking",
            uuid::Uuid::from_u128(7)
        );
        assert!(sandbox().follow(parcel("sandbox", &own)).await.is_ok());
    }

    #[tokio::test]
    async fn only_the_sandbox_carrier_is_followed() {
        let url = format!(
            "http://127.0.0.1:9/api/v1/shipments/{}/tracking",
            uuid::Uuid::from_u128(7)
        );
        let carriers = Carriers::new(Some(sandbox()));
        assert!(carriers.follow(parcel("sandbox", &url)).await.is_ok());
        assert!(matches!(
            carriers.follow(parcel("sf-express", &url)).await,
            Err(CarrierError::Refused(_))
        ));
        assert!(matches!(
            Carriers::new(None).follow(parcel("sandbox", &url)).await,
            Err(CarrierError::Refused(_))
        ));
    }
}
