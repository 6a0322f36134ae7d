//! A customer's profile (full name, phone) and postal addresses, identified by the user's
//! id. Every one of these values is personal data: it travels in events as a
//! [`PersonalText`], sealed with the customer's own key before it is stored, so erasing
//! that key erases it from every event (crypto-shredding). The rules here never look at the
//! values themselves, only at which addresses exist and which one is the default.
//!
//! Addresses: at most [`MAX_ADDRESSES`]; exactly one is the default while any exist. The
//! first address becomes the default; choosing another one as default moves it; removing
//! the default makes the oldest remaining address the default; a default cannot be unset
//! except by choosing another.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{AddressId, DomainError, ErrorKind, ParseError, PersonalText, UserId};

/// The most addresses one customer keeps.
pub const MAX_ADDRESSES: usize = 20;

/// Bounds of the profile and address fields, in characters (trimmed).
pub mod limits {
    /// Full name and recipient: 1 to this many.
    pub const NAME_MAX: usize = 100;
    /// Province, city, district: 1 to this many.
    pub const REGION_MAX: usize = 100;
    /// The street line(s): 1 to this many.
    pub const DETAIL_MAX: usize = 300;
    /// Postal code: 1 to this many letters, digits, spaces or '-'.
    pub const POSTAL_CODE_MAX: usize = 16;
    /// Phone: this many characters at most (digits, spaces, '-', '(', ')', a leading '+').
    pub const PHONE_MAX: usize = 20;
    /// Phone: digits it has at least.
    pub const PHONE_MIN_DIGITS: usize = 5;
    /// Phone: digits it has at most.
    pub const PHONE_MAX_DIGITS: usize = 15;
}

/// Parses a full name or a recipient: 1 to 100 characters on one line.
pub fn parse_name(
    subject: UserId,
    raw: &str,
    field: &'static str,
) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(subject, raw, field, 1, limits::NAME_MAX, true)
}

/// Parses a province, city or district: 1 to 100 characters on one line.
pub fn parse_region(
    subject: UserId,
    raw: &str,
    field: &'static str,
) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(subject, raw, field, 1, limits::REGION_MAX, true)
}

/// Parses the street detail: 1 to 300 characters, lines allowed.
pub fn parse_detail(subject: UserId, raw: &str) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(subject, raw, "detail", 1, limits::DETAIL_MAX, false)
}

/// Parses a postal code: 1 to 16 ASCII letters, digits, spaces or '-'.
pub fn parse_postal_code(subject: UserId, raw: &str) -> Result<PersonalText, ParseError> {
    let code = raw.trim();
    let ok = (1..=limits::POSTAL_CODE_MAX).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
    if !ok {
        return Err(ParseError::new(
            "postal_code",
            "postal_code must be 1 to 16 letters, digits, spaces or '-'",
        ));
    }
    Ok(PersonalText::clear(subject, code))
}

/// Parses a phone number: an optional leading '+', then digits, spaces, '-', '(' or ')';
/// 5 to 15 digits and at most 20 characters in all.
pub fn parse_phone(
    subject: UserId,
    raw: &str,
    field: &'static str,
) -> Result<PersonalText, ParseError> {
    let phone = raw.trim();
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let ok = raw.chars().count() <= limits::PHONE_MAX
        && (limits::PHONE_MIN_DIGITS..=limits::PHONE_MAX_DIGITS).contains(&digits)
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'(' | b')'));
    if !ok {
        return Err(ParseError::new(
            field,
            format!(
                "{field} must be 5 to 15 digits (spaces, '-', '(', ')' and a leading '+' allowed), at most 20 characters"
            ),
        ));
    }
    Ok(PersonalText::clear(subject, phone))
}

/// A postal address; every field is personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// Who receives deliveries there.
    pub recipient: PersonalText,
    /// The recipient's phone.
    pub phone: PersonalText,
    /// Province or state.
    pub province: PersonalText,
    /// City.
    pub city: PersonalText,
    /// District, where the address has one.
    #[serde(default)]
    pub district: Option<PersonalText>,
    /// Street, number, building, floor...
    pub detail: PersonalText,
    /// Postal code, where the address has one.
    #[serde(default)]
    pub postal_code: Option<PersonalText>,
}

/// Changes to an address; an absent field stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressChanges {
    /// New recipient.
    #[serde(default)]
    pub recipient: Option<PersonalText>,
    /// New phone.
    #[serde(default)]
    pub phone: Option<PersonalText>,
    /// New province.
    #[serde(default)]
    pub province: Option<PersonalText>,
    /// New city.
    #[serde(default)]
    pub city: Option<PersonalText>,
    /// New district.
    #[serde(default)]
    pub district: Option<PersonalText>,
    /// New detail.
    #[serde(default)]
    pub detail: Option<PersonalText>,
    /// New postal code.
    #[serde(default)]
    pub postal_code: Option<PersonalText>,
}

impl AddressChanges {
    /// True when no field changes.
    pub fn is_empty(&self) -> bool {
        *self == AddressChanges::default()
    }

    fn apply_to(self, address: &mut PostalAddress) {
        let AddressChanges {
            recipient,
            phone,
            province,
            city,
            district,
            detail,
            postal_code,
        } = self;
        if let Some(v) = recipient {
            address.recipient = v;
        }
        if let Some(v) = phone {
            address.phone = v;
        }
        if let Some(v) = province {
            address.province = v;
        }
        if let Some(v) = city {
            address.city = v;
        }
        if let Some(v) = district {
            address.district = Some(v);
        }
        if let Some(v) = detail {
            address.detail = v;
        }
        if let Some(v) = postal_code {
            address.postal_code = Some(v);
        }
    }
}

/// Commands accepted by a [`Customer`].
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    /// Sets some fields of the profile; absent fields stay as they are.
    ChangeProfile {
        /// New full name.
        full_name: Option<PersonalText>,
        /// New phone.
        phone: Option<PersonalText>,
    },
    /// Adds an address.
    AddAddress {
        /// The new address's id (chosen by the caller).
        address_id: AddressId,
        /// The address.
        address: PostalAddress,
        /// Makes it the default (the first address always is).
        make_default: bool,
    },
    /// Changes an address and/or makes it the default.
    ChangeAddress {
        /// Which address.
        address_id: AddressId,
        /// The fields that change.
        changes: AddressChanges,
        /// `Some(true)` makes it the default; `Some(false)` is refused on the default.
        make_default: Option<bool>,
    },
    /// Removes an address.
    RemoveAddress {
        /// Which address.
        address_id: AddressId,
    },
}

/// Events of a [`Customer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    /// Some fields of the profile were set; only set fields are present.
    ProfileChanged {
        /// New full name.
        #[serde(default)]
        full_name: Option<PersonalText>,
        /// New phone.
        #[serde(default)]
        phone: Option<PersonalText>,
    },
    /// An address was added.
    AddressAdded {
        /// Its id.
        address_id: AddressId,
        /// The address.
        address: PostalAddress,
    },
    /// Some fields of an address changed.
    AddressChanged {
        /// Which address.
        address_id: AddressId,
        /// The fields that changed.
        changes: AddressChanges,
    },
    /// An address was removed.
    AddressRemoved {
        /// Which address.
        address_id: AddressId,
    },
    /// An address became the default (the previous default, if any, no longer is).
    DefaultAddressChosen {
        /// Which address.
        address_id: AddressId,
    },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            CustomerEvent::ProfileChanged { .. } => "ProfileChanged",
            CustomerEvent::AddressAdded { .. } => "AddressAdded",
            CustomerEvent::AddressChanged { .. } => "AddressChanged",
            CustomerEvent::AddressRemoved { .. } => "AddressRemoved",
            CustomerEvent::DefaultAddressChosen { .. } => "DefaultAddressChosen",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`CustomerCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    /// The customer has no address with this id.
    #[error("address not found")]
    AddressNotFound,
    /// An address with this id exists already.
    #[error("an address with this id exists already")]
    AddressExists,
    /// The customer has [`MAX_ADDRESSES`] addresses already.
    #[error("at most {MAX_ADDRESSES} addresses; remove one first")]
    AddressLimitReached,
    /// The default address cannot be unset; choose another address as default instead.
    #[error("the default address stays the default until another address is chosen as default")]
    DefaultCannotBeUnset,
}

impl CustomerError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            CustomerError::AddressNotFound => "address_not_found",
            CustomerError::AddressExists => "address_exists",
            CustomerError::AddressLimitReached => "address_limit_reached",
            CustomerError::DefaultCannotBeUnset => "default_address_required",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CustomerError::AddressNotFound => ErrorKind::NotFound,
            CustomerError::AddressExists
            | CustomerError::AddressLimitReached
            | CustomerError::DefaultCannotBeUnset => ErrorKind::Refused,
        }
    }
}

impl DomainError for CustomerError {
    fn code(&self) -> &'static str {
        CustomerError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        CustomerError::kind(self)
    }
}

/// One address of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAddress {
    /// Its id.
    pub address_id: AddressId,
    /// The address.
    pub address: PostalAddress,
}

/// A customer's profile and addresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    full_name: Option<PersonalText>,
    phone: Option<PersonalText>,
    /// Oldest first.
    addresses: Vec<StoredAddress>,
    default_address: Option<AddressId>,
}

impl Customer {
    /// The full name, once set.
    pub fn full_name(&self) -> Option<&PersonalText> {
        self.full_name.as_ref()
    }

    /// The phone, once set.
    pub fn phone(&self) -> Option<&PersonalText> {
        self.phone.as_ref()
    }

    /// The addresses, oldest first.
    pub fn addresses(&self) -> &[StoredAddress] {
        &self.addresses
    }

    /// One address.
    pub fn address(&self, address_id: AddressId) -> Option<&StoredAddress> {
        self.addresses.iter().find(|a| a.address_id == address_id)
    }

    /// The default address's id, while any address exists.
    pub fn default_address(&self) -> Option<AddressId> {
        self.default_address
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut events = Vec::new();
        match command {
            CustomerCommand::ChangeProfile { full_name, phone } => {
                if full_name.is_some() || phone.is_some() {
                    events.push(CustomerEvent::ProfileChanged { full_name, phone });
                }
            }
            CustomerCommand::AddAddress {
                address_id,
                address,
                make_default,
            } => {
                if self.address(address_id).is_some() {
                    return Err(CustomerError::AddressExists);
                }
                if self.addresses.len() >= MAX_ADDRESSES {
                    return Err(CustomerError::AddressLimitReached);
                }
                let first = self.addresses.is_empty();
                events.push(CustomerEvent::AddressAdded {
                    address_id,
                    address,
                });
                if first || make_default {
                    events.push(CustomerEvent::DefaultAddressChosen { address_id });
                }
            }
            CustomerCommand::ChangeAddress {
                address_id,
                changes,
                make_default,
            } => {
                if self.address(address_id).is_none() {
                    return Err(CustomerError::AddressNotFound);
                }
                let is_default = self.default_address == Some(address_id);
                if make_default == Some(false) && is_default {
                    return Err(CustomerError::DefaultCannotBeUnset);
                }
                if !changes.is_empty() {
                    events.push(CustomerEvent::AddressChanged {
                        address_id,
                        changes,
                    });
                }
                if make_default == Some(true) && !is_default {
                    events.push(CustomerEvent::DefaultAddressChosen { address_id });
                }
            }
            CustomerCommand::RemoveAddress { address_id } => {
                if self.address(address_id).is_none() {
                    return Err(CustomerError::AddressNotFound);
                }
                events.push(CustomerEvent::AddressRemoved { address_id });
                if self.default_address == Some(address_id) {
                    if let Some(next) = self.addresses.iter().find(|a| a.address_id != address_id) {
                        events.push(CustomerEvent::DefaultAddressChosen {
                            address_id: next.address_id,
                        });
                    }
                }
            }
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CustomerEvent::ProfileChanged { full_name, phone } => {
                if let Some(v) = full_name {
                    self.full_name = Some(v);
                }
                if let Some(v) = phone {
                    self.phone = Some(v);
                }
            }
            CustomerEvent::AddressAdded {
                address_id,
                address,
            } => self.addresses.push(StoredAddress {
                address_id,
                address,
            }),
            CustomerEvent::AddressChanged {
                address_id,
                changes,
            } => {
                if let Some(stored) = self
                    .addresses
                    .iter_mut()
                    .find(|a| a.address_id == address_id)
                {
                    changes.apply_to(&mut stored.address);
                }
            }
            CustomerEvent::AddressRemoved { address_id } => {
                self.addresses.retain(|a| a.address_id != address_id);
                if self.default_address == Some(address_id) {
                    self.default_address = None;
                }
            }
            CustomerEvent::DefaultAddressChosen { address_id } => {
                self.default_address = Some(address_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};
    use uuid::Uuid;

    use super::*;

    fn given(events: Vec<CustomerEvent>) -> AggregateTestExecutor<Customer> {
        TestFramework::<Customer>::with(()).given(events)
    }

    fn subject() -> UserId {
        UserId::from(Uuid::from_u128(1))
    }

    fn text(value: &str) -> PersonalText {
        PersonalText::clear(subject(), value)
    }

    fn address_id(n: u128) -> AddressId {
        AddressId::from(Uuid::from_u128(100 + n))
    }

    fn address(recipient: &str) -> PostalAddress {
        PostalAddress {
            recipient: text(recipient),
            phone: text("+33 6 12 34 56 78"),
            province: text("Rhône"),
            city: text("Lyon"),
            district: None,
            detail: text("1 rue de la République"),
            postal_code: Some(text("69001")),
        }
    }

    fn added(n: u128) -> CustomerEvent {
        CustomerEvent::AddressAdded {
            address_id: address_id(n),
            address: address("Ada"),
        }
    }

    fn chosen(n: u128) -> CustomerEvent {
        CustomerEvent::DefaultAddressChosen {
            address_id: address_id(n),
        }
    }

    fn add(n: u128, make_default: bool) -> CustomerCommand {
        CustomerCommand::AddAddress {
            address_id: address_id(n),
            address: address("Ada"),
            make_default,
        }
    }

    #[test]
    fn change_profile_records_the_fields_given_and_nothing_for_none() {
        given(vec![])
            .when(CustomerCommand::ChangeProfile {
                full_name: Some(text("Ada Lovelace")),
                phone: None,
            })
            .then_expect_events(vec![CustomerEvent::ProfileChanged {
                full_name: Some(text("Ada Lovelace")),
                phone: None,
            }]);
        given(vec![])
            .when(CustomerCommand::ChangeProfile {
                full_name: None,
                phone: None,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn the_first_address_becomes_the_default_and_later_ones_only_when_asked() {
        given(vec![])
            .when(add(1, false))
            .then_expect_events(vec![added(1), chosen(1)]);
        given(vec![added(1), chosen(1)])
            .when(add(2, false))
            .then_expect_events(vec![added(2)]);
        given(vec![added(1), chosen(1)])
            .when(add(2, true))
            .then_expect_events(vec![added(2), chosen(2)]);
    }

    #[test]
    fn choosing_a_new_default_moves_it_and_the_default_cannot_be_unset() {
        let history = vec![added(1), chosen(1), added(2)];
        given(history.clone())
            .when(CustomerCommand::ChangeAddress {
                address_id: address_id(2),
                changes: AddressChanges::default(),
                make_default: Some(true),
            })
            .then_expect_events(vec![chosen(2)]);
        let err = given(history.clone())
            .when(CustomerCommand::ChangeAddress {
                address_id: address_id(1),
                changes: AddressChanges::default(),
                make_default: Some(false),
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, CustomerError::DefaultCannotBeUnset);
        assert_eq!(err.kind(), ErrorKind::Refused);
        given(history)
            .when(CustomerCommand::ChangeAddress {
                address_id: address_id(1),
                changes: AddressChanges::default(),
                make_default: Some(true),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn removing_the_default_makes_the_oldest_remaining_address_the_default() {
        given(vec![added(1), added(2), added(3), chosen(3)])
            .when(CustomerCommand::RemoveAddress {
                address_id: address_id(3),
            })
            .then_expect_events(vec![
                CustomerEvent::AddressRemoved {
                    address_id: address_id(3),
                },
                chosen(1),
            ]);
        given(vec![added(1), chosen(1)])
            .when(CustomerCommand::RemoveAddress {
                address_id: address_id(1),
            })
            .then_expect_events(vec![CustomerEvent::AddressRemoved {
                address_id: address_id(1),
            }]);
    }

    #[test]
    fn unknown_addresses_are_not_found_and_the_limit_holds() {
        for command in [
            CustomerCommand::RemoveAddress {
                address_id: address_id(9),
            },
            CustomerCommand::ChangeAddress {
                address_id: address_id(9),
                changes: AddressChanges::default(),
                make_default: None,
            },
        ] {
            let err = given(vec![added(1)])
                .when(command)
                .inspect_result()
                .unwrap_err();
            assert_eq!(err, CustomerError::AddressNotFound);
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
        let full: Vec<CustomerEvent> = (0..MAX_ADDRESSES as u128).map(added).collect();
        let err = given(full)
            .when(add(99, false))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, CustomerError::AddressLimitReached);
        assert_eq!(err.code(), "address_limit_reached");
        let err = given(vec![added(1)])
            .when(add(1, false))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, CustomerError::AddressExists);
    }

    #[test]
    fn state_follows_the_events_and_holds_sealed_or_erased_values_as_they_come() {
        let mut customer = Customer::default();
        customer.apply(added(1));
        customer.apply(chosen(1));
        customer.apply(CustomerEvent::AddressChanged {
            address_id: address_id(1),
            changes: AddressChanges {
                city: Some(PersonalText::Erased { subject: subject() }),
                district: Some(text("2e")),
                ..AddressChanges::default()
            },
        });
        customer.apply(CustomerEvent::ProfileChanged {
            full_name: None,
            phone: Some(text("0612345678")),
        });
        let stored = customer.address(address_id(1)).unwrap();
        assert!(stored.address.city.is_erased());
        assert_eq!(
            stored.address.district.as_ref().unwrap().clear_value(),
            Some("2e")
        );
        assert_eq!(customer.default_address(), Some(address_id(1)));
        assert_eq!(customer.phone().unwrap().clear_value(), Some("0612345678"));
        assert!(customer.full_name().is_none());
        customer.apply(CustomerEvent::AddressRemoved {
            address_id: address_id(1),
        });
        assert!(customer.addresses().is_empty());
        assert_eq!(customer.default_address(), None);
    }

    #[test]
    fn phones_and_postal_codes_are_checked() {
        for good in ["+33 6 12 34 56 78", "(021) 555-1234", "12345"] {
            assert!(parse_phone(subject(), good, "phone").is_ok(), "{good}");
        }
        for bad in [
            "",
            "1234",
            "+",
            "12a45678",
            "1234567890123456",
            "++123456",
            &"1".repeat(21),
        ] {
            let err = parse_phone(subject(), bad, "phone").unwrap_err();
            assert_eq!(err.field(), "phone", "{bad}");
        }
        assert!(parse_postal_code(subject(), " 69001 ").is_ok());
        assert!(parse_postal_code(subject(), "SW1A 1AA").is_ok());
        assert!(parse_postal_code(subject(), "69.001").is_err());
        assert!(parse_postal_code(subject(), &"1".repeat(17)).is_err());
        assert!(parse_name(subject(), &"x".repeat(101), "recipient").is_err());
        assert!(parse_detail(subject(), "line 1\nline 2").is_ok());
        assert!(parse_region(subject(), "", "city").is_err());
    }
}
