//! What the marketplace routes share: the provider and service order buses (their events
//! sealed with the personal-data vault), and reading one aggregate with its personal
//! values opened.

use std::sync::Arc;

use ordo_aggregates::common::{ServiceOrderId, UserId};
use ordo_aggregates::provider::Provider;
use ordo_aggregates::service_order::ServiceOrder;
use ordo_identity::PersonalDataVault;
use ordo_store::personal::open_value;
use ordo_store::{CommandBus, PersonalDataSealer};

use crate::commands::api_error;
use crate::problem::ApiError;

/// The marketplace side of the gateway.
pub struct Marketplace {
    /// Service providers.
    pub providers: Arc<CommandBus<Provider>>,
    /// Service orders.
    pub service_orders: Arc<CommandBus<ServiceOrder>>,
    /// The per-user keys personal values are sealed with.
    pub vault: Arc<PersonalDataVault>,
}

impl Marketplace {
    /// Buses over `pool` sealing with `vault`.
    pub fn new(pool: sqlx::PgPool, vault: Arc<PersonalDataVault>) -> Self {
        let sealer: Arc<dyn PersonalDataSealer> = vault.clone();
        Self {
            providers: Arc::new(
                CommandBus::new(pool.clone(), ()).with_personal_data_sealer(sealer.clone()),
            ),
            service_orders: Arc::new(CommandBus::new(pool, ()).with_personal_data_sealer(sealer)),
            vault,
        }
    }

    /// The provider as the event store has it now (personal values sealed), and its
    /// version (0 when it has no event yet).
    pub async fn provider(&self, provider_id: UserId) -> Result<(Provider, i64), ApiError> {
        self.providers
            .load(&provider_id.to_string())
            .await
            .map_err(api_error)
    }

    /// The provider with its personal values opened.
    pub async fn opened_provider(&self, provider_id: UserId) -> Result<(Provider, i64), ApiError> {
        let (provider, version) = self.provider(provider_id).await?;
        Ok((self.open(&provider).await?, version))
    }

    /// The service order as the event store has it now; `None` when it does not exist.
    pub async fn service_order(
        &self,
        order_id: ServiceOrderId,
    ) -> Result<Option<(ServiceOrder, i64)>, ApiError> {
        let (order, version) = self
            .service_orders
            .load(&order_id.to_string())
            .await
            .map_err(api_error)?;
        Ok((version > 0).then_some((order, version)))
    }

    /// `value` with its personal values opened (erased ones stay erased).
    pub async fn open<T>(&self, value: &T) -> Result<T, ApiError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        open_value(self.vault.as_ref(), value)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("opening personal values: {e}")))
    }
}
