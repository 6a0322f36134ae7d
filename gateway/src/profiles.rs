//! What the profile, address and erasure routes share: the customer bus (whose events are
//! sealed with the personal-data vault), reading a customer's current profile with its
//! personal values opened (read-your-writes: it loads the aggregate), the address snapshot
//! a checkout takes, and erasing a user.

use std::sync::Arc;

use ordo_aggregates::common::{AddressId, PersonalText, UserId};
use ordo_aggregates::customer::{Customer, PostalAddress, StoredAddress};
use ordo_identity::{IdentityService, PersonalDataVault};
use ordo_store::personal::open_value;
use ordo_store::{CommandBus, PersonalDataSealer};
use serde::{Deserialize, Serialize};

/// The customer side of the gateway.
pub struct Profiles {
    /// Customers' profiles and addresses.
    pub customers: Arc<CommandBus<Customer>>,
    /// The per-user keys their personal values are sealed with.
    pub vault: Arc<PersonalDataVault>,
}

/// A customer's profile and addresses with their personal values opened: clear, or
/// erased once the user was erased.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenedCustomer {
    /// The full name, once set.
    pub full_name: Option<PersonalText>,
    /// The phone, once set.
    pub phone: Option<PersonalText>,
    /// The addresses, oldest first.
    pub addresses: Vec<StoredAddress>,
    /// The default address.
    pub default_address: Option<AddressId>,
    /// The aggregate's version.
    pub version: i64,
}

/// A postal address in the clear, as a checkout copies it into an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSnapshot {
    /// Who receives deliveries there.
    pub recipient: String,
    /// The recipient's phone.
    pub phone: String,
    /// Province or state.
    pub province: String,
    /// City.
    pub city: String,
    /// District, if any.
    pub district: Option<String>,
    /// Street detail.
    pub detail: String,
    /// Postal code, if any.
    pub postal_code: Option<String>,
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The event store or the vault failed.
    #[error("reading the customer failed: {0}")]
    Failed(String),
}

impl Profiles {
    /// A customer bus sealing with `vault`.
    pub fn new(pool: sqlx::PgPool, vault: Arc<PersonalDataVault>) -> Self {
        let sealer: Arc<dyn PersonalDataSealer> = vault.clone();
        Self {
            customers: Arc::new(CommandBus::new(pool, ()).with_personal_data_sealer(sealer)),
            vault,
        }
    }

    /// The customer of `user_id` as the event store has it now, personal values opened.
    pub async fn opened(&self, user_id: UserId) -> Result<OpenedCustomer, ProfileError> {
        let (customer, version) = self
            .customers
            .load(&user_id.to_string())
            .await
            .map_err(|e| ProfileError::Failed(e.to_string()))?;
        let sealed = OpenedCustomer {
            full_name: customer.full_name().cloned(),
            phone: customer.phone().cloned(),
            addresses: customer.addresses().to_vec(),
            default_address: customer.default_address(),
            version,
        };
        open_value(self.vault.as_ref(), &sealed)
            .await
            .map_err(|e| ProfileError::Failed(e.to_string()))
    }

    /// The clear values of one address of `user_id`, for a checkout to copy into an order;
    /// `None` when the user has no such address, or it was erased.
    pub async fn address_snapshot(
        &self,
        user_id: UserId,
        address_id: AddressId,
    ) -> Result<Option<AddressSnapshot>, ProfileError> {
        let customer = self.opened(user_id).await?;
        Ok(customer
            .addresses
            .iter()
            .find(|a| a.address_id == address_id)
            .and_then(|a| snapshot(&a.address)))
    }
}

fn snapshot(address: &PostalAddress) -> Option<AddressSnapshot> {
    let text = |t: &PersonalText| t.clear_value().map(str::to_owned);
    Some(AddressSnapshot {
        recipient: text(&address.recipient)?,
        phone: text(&address.phone)?,
        province: text(&address.province)?,
        city: text(&address.city)?,
        district: address.district.as_ref().and_then(text),
        detail: text(&address.detail)?,
        postal_code: address.postal_code.as_ref().and_then(text),
    })
}

/// Erases a user (right to erasure): their personal-data key, their account row, their
/// sessions and their opened values in read models ([`ordo_projections::ERASURE_SCRUBS`]),
/// in one transaction (see [`IdentityService::erase_user`]).
pub async fn erase_user(
    identity: &IdentityService,
    user_id: UserId,
) -> Result<(), ordo_identity::IdentityError> {
    identity
        .erase_user(*user_id.as_uuid(), ordo_projections::ERASURE_SCRUBS)
        .await
}
