//! The `customer_directory` read model: one row per customer, with the full name and phone
//! opened from the sealed events through the personal-data vault, and how many addresses
//! they keep. Once a user is erased their values open as erased and are written as NULL;
//! the erasure itself sets them to NULL ([`ERASURE_SCRUB`]) in its transaction.
//!
//! Erasure cannot slip between opening and writing: each event's transaction holds the
//! subject's key row `FOR SHARE`, and erasure updates that row before it scrubs, so it
//! waits for a projection that opened with the key, and a projection after it finds none.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use ordo_aggregates::common::PersonalText;
use ordo_aggregates::customer::CustomerEvent;
use ordo_contracts::CustomerMessage;
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::personal::open_value;
use ordo_store::PersonalDataSealer;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Sets the personal columns of user `$1` to NULL.
pub const ERASURE_SCRUB: &str =
    "UPDATE customer_directory SET full_name = NULL, phone = NULL WHERE user_id = $1";

static VAULT: OnceLock<Arc<dyn PersonalDataSealer>> = OnceLock::new();

/// Gives the projection the vault to open personal values with; done once at start by
/// every process that applies or rebuilds it (later calls are ignored).
pub fn install_vault(vault: Arc<dyn PersonalDataSealer>) {
    let _ = VAULT.set(vault);
}

/// Builds `customer_directory` from the customer stream.
pub struct CustomersProjection;

async fn opened(value: Option<PersonalText>) -> anyhow::Result<Option<Option<String>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let vault = VAULT
        .get()
        .ok_or_else(|| anyhow::anyhow!("no personal-data vault installed"))?;
    let opened = open_value(vault.as_ref(), &value).await?;
    Ok(Some(opened.clear_value().map(str::to_owned)))
}

#[async_trait]
impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        "projection-customers"
    }

    fn aggregate_type(&self) -> &'static str {
        "customer"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customer_directory"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let CustomerMessage { id, event, facts } = ordo_contracts::customer(event)?;
        let user_id = Uuid::from(id);
        sqlx::query("SELECT 1 FROM personal_data_keys WHERE subject_id = $1 FOR SHARE")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO customer_directory (user_id, version, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET version = $2, updated_at = $3",
        )
        .bind(user_id)
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        match event {
            CustomerEvent::ProfileChanged { full_name, phone } => {
                let full_name = opened(full_name).await?;
                let phone = opened(phone).await?;
                sqlx::query(
                    "UPDATE customer_directory SET
                        full_name = CASE WHEN $2 THEN $3 ELSE full_name END,
                        phone = CASE WHEN $4 THEN $5 ELSE phone END
                     WHERE user_id = $1",
                )
                .bind(user_id)
                .bind(full_name.is_some())
                .bind(full_name.flatten())
                .bind(phone.is_some())
                .bind(phone.flatten())
                .execute(&mut *tx)
                .await?;
            }
            CustomerEvent::AddressAdded { .. } => {
                sqlx::query(
                    "UPDATE customer_directory SET address_count = address_count + 1
                     WHERE user_id = $1",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
            CustomerEvent::AddressRemoved { .. } => {
                sqlx::query(
                    "UPDATE customer_directory SET address_count = greatest(address_count - 1, 0)
                     WHERE user_id = $1",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
            CustomerEvent::AddressChanged { .. } | CustomerEvent::DefaultAddressChosen { .. } => {}
        }
        Ok(())
    }
}
