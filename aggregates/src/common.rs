//! Value types shared by every aggregate: identifiers, SKUs, quantities, money and
//! bounded texts, each parsed once at the edge so that business rules only ever see
//! values that are already valid. Also the [`ErrorKind`] every aggregate error maps to,
//! and [`PersonalText`], the form personal data takes inside events (crypto-shredding).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How a refused command should be understood by callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is valid but the business rules refuse it in the current state (HTTP 409).
    Refused,
    /// The input itself is malformed or breaks a rule that does not depend on state (HTTP 422).
    Invalid,
    /// The aggregate the command addresses does not exist (HTTP 404).
    NotFound,
    /// The command names something else that does not exist, such as an unknown SKU in a
    /// cart line (HTTP 404, with the error's own code).
    UnknownReference,
}

/// Common surface of every aggregate error, so that callers can map any of them the same way.
pub trait DomainError: std::error::Error {
    /// Stable snake_case code naming the refusal (used as the problem+json type).
    fn code(&self) -> &'static str;
    /// The broad class of the refusal.
    fn kind(&self) -> ErrorKind;
}

/// A raw value could not be turned into a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    field: &'static str,
    message: String,
}

impl ParseError {
    /// Builds an error about `field` with a message meant for the person who sent the value.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// Name of the input field that was refused.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// Human readable explanation of what the field must look like.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Stable code of every parse error.
    pub fn code(&self) -> &'static str {
        "invalid_input"
    }

    /// A parse error is always bad input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl DomainError for ParseError {
    fn code(&self) -> &'static str {
        ParseError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ParseError::kind(self)
    }
}

/// True when `s` is 1..=64 ASCII letters, digits, '-' or '_': safe as a NATS subject token.
fn is_token(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Stock keeping unit: 1 to 64 ASCII letters, digits, '-' or '_', stored in uppercase.
///
/// SKUs appear as tokens of NATS subjects, so '.', '*', '>' and whitespace are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// Parses a SKU, trimming surrounding whitespace and normalising to uppercase.
    pub fn parse(raw: &str) -> Result<Sku, ParseError> {
        let s = raw.trim();
        if is_token(s) {
            Ok(Sku(s.to_ascii_uppercase()))
        } else {
            Err(ParseError::new(
                "sku",
                "sku must be 1 to 64 letters, digits, '-' or '_'",
            ))
        }
    }

    /// The normalised SKU text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Sku {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sku::parse(s)
    }
}

impl TryFrom<String> for Sku {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Sku::parse(&value)
    }
}

impl From<Sku> for String {
    fn from(value: Sku) -> Self {
        value.0
    }
}

/// Identifier of a seat area within a session: same character rules as a SKU, case preserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AreaId(String);

impl AreaId {
    /// Parses an area id: trimmed, 1 to 64 ASCII letters, digits, '-' or '_'.
    pub fn parse(raw: &str) -> Result<AreaId, ParseError> {
        let s = raw.trim();
        if is_token(s) {
            Ok(AreaId(s.to_owned()))
        } else {
            Err(ParseError::new(
                "area_id",
                "area_id must be 1 to 64 letters, digits, '-' or '_'",
            ))
        }
    }

    /// The area id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AreaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AreaId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AreaId::parse(s)
    }
}

impl TryFrom<String> for AreaId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        AreaId::parse(&value)
    }
}

impl From<AreaId> for String {
    fn from(value: AreaId) -> Self {
        value.0
    }
}

/// Identifies a product (an SPU, the thing shoppers see, which has one or more SKUs): spelled
/// like a SKU, 1 to 64 ASCII letters, digits, '-' or '_', stored in uppercase. A product
/// created with a single SKU and no id of its own is identified by that SKU.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductId(String);

impl ProductId {
    /// Parses a product id, trimming surrounding whitespace and normalising to uppercase.
    pub fn parse(raw: &str) -> Result<ProductId, ParseError> {
        let s = raw.trim();
        if is_token(s) {
            Ok(ProductId(s.to_ascii_uppercase()))
        } else {
            Err(ParseError::new(
                "product_id",
                "product_id must be 1 to 64 letters, digits, '-' or '_'",
            ))
        }
    }

    /// The id of the product whose only SKU is `sku` and that has no id of its own.
    pub fn of_single_sku(sku: &Sku) -> ProductId {
        ProductId(sku.as_str().to_owned())
    }

    /// The normalised id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProductId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProductId::parse(s)
    }
}

impl TryFrom<String> for ProductId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ProductId::parse(&value)
    }
}

impl From<ProductId> for String {
    fn from(value: ProductId) -> Self {
        value.0
    }
}

/// A link to a picture or video of a product: an `http` or `https` URL of at most 2000
/// characters, without whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaUrl(String);

impl MediaUrl {
    /// Longest URL accepted.
    pub const MAX_LEN: usize = 2000;

    /// Parses a media URL.
    pub fn parse(raw: &str) -> Result<MediaUrl, ParseError> {
        let s = raw.trim();
        let scheme_ok = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .is_some_and(|rest| !rest.is_empty());
        if scheme_ok
            && s.chars().count() <= Self::MAX_LEN
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Ok(MediaUrl(s.to_owned()))
        } else {
            Err(ParseError::new(
                "media",
                "media must be http(s) URLs of at most 2000 characters without spaces",
            ))
        }
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MediaUrl {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        MediaUrl::parse(&value)
    }
}

impl From<MediaUrl> for String {
    fn from(value: MediaUrl) -> Self {
        value.0
    }
}

/// A number of units of one item: 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// Largest quantity accepted in one command.
    pub const MAX: u32 = 1_000_000;

    /// Parses a quantity; anything outside 1..=1,000,000 is refused.
    pub fn parse(raw: i64) -> Result<Quantity, ParseError> {
        if (1..=i64::from(Self::MAX)).contains(&raw) {
            Ok(Quantity(raw as u32))
        } else {
            Err(ParseError::new(
                "quantity",
                "quantity must be a whole number from 1 to 1000000",
            ))
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ParseError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Quantity::parse(value)
    }
}

impl From<Quantity> for u32 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

/// ISO 4217 style currency code: three ASCII letters, stored in uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses a currency code, trimming whitespace and normalising to uppercase.
    pub fn parse(raw: &str) -> Result<Currency, ParseError> {
        let s = raw.trim();
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Currency(s.to_ascii_uppercase()))
        } else {
            Err(ParseError::new(
                "currency",
                "currency must be a code of 3 letters such as EUR",
            ))
        }
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Currency {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

/// Arithmetic on [`Money`] that cannot give a meaningful amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The two amounts are in different currencies.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in the amount type.
    #[error("amount overflow")]
    Overflow,
    /// The result would be below zero.
    #[error("amount would be negative")]
    Negative,
}

/// A non-negative amount of money in the minor unit of its currency (cents for EUR).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

#[derive(Deserialize)]
struct MoneyRepr {
    amount_minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = ParseError;
    fn try_from(value: MoneyRepr) -> Result<Self, Self::Error> {
        Money::new(value.amount_minor, value.currency)
    }
}

impl Money {
    /// Builds an amount; negative amounts are refused.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Money, ParseError> {
        if amount_minor < 0 {
            return Err(ParseError::new(
                "amount_minor",
                "amount_minor must be zero or more",
            ));
        }
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    /// Zero in the given currency.
    pub fn zero(currency: Currency) -> Money {
        Money {
            amount_minor: 0,
            currency,
        }
    }

    /// The amount in minor units.
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency of the amount.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// True when the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    /// The amount times `factor`, or `None` on overflow.
    pub fn checked_mul(&self, factor: u32) -> Option<Money> {
        self.amount_minor
            .checked_mul(i64::from(factor))
            .map(|amount_minor| Money {
                amount_minor,
                currency: self.currency.clone(),
            })
    }

    /// The sum of two amounts of the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount_minor,
            currency: self.currency.clone(),
        })
    }

    /// The difference of two amounts of the same currency; refused below zero.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        if amount_minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Money {
            amount_minor,
            currency: self.currency.clone(),
        })
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency.clone(),
                right: other.currency.clone(),
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} minor units", self.amount_minor, self.currency)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies an order.
    OrderId
);
uuid_id!(
    /// Identifies a user (customer, merchant or admin).
    UserId
);
uuid_id!(
    /// Identifies a payment.
    PaymentId
);
uuid_id!(
    /// Identifies what holds reserved stock: the order or the booking that reserved it.
    ReservationId
);
uuid_id!(
    /// Identifies a show.
    ShowId
);
uuid_id!(
    /// Identifies a session (one performance) of a show.
    SessionId
);
uuid_id!(
    /// Identifies a booking of seats.
    BookingId
);
uuid_id!(
    /// Identifies an issued ticket.
    TicketId
);
uuid_id!(
    /// Identifies a category of the catalog's tree.
    CategoryId
);
uuid_id!(
    /// Identifies a shopping cart (a customer's, or a guest's).
    CartId
);
uuid_id!(
    /// Identifies one refund of a payment.
    RefundId
);
uuid_id!(
    /// Identifies a promotion (a price rule applied to every cart it fits).
    PromotionId
);
uuid_id!(
    /// Identifies a batch of coupons (its terms, quota and claims).
    CouponBatchId
);
uuid_id!(
    /// Identifies one coupon claimed by one customer from a batch.
    CouponId
);
uuid_id!(
    /// Identifies a shipment: one parcel of an order's goods on its way to the customer.
    ShipmentId
);
uuid_id!(
    /// Identifies a review of one order line.
    ReviewId
);
uuid_id!(
    /// Identifies an after-sales request (售后): a refund, a return or an exchange of some
    /// of an order's lines.
    AfterSaleId
);

uuid_id!(
    /// Identifies a service order of the marketplace.
    ServiceOrderId
);
uuid_id!(
    /// Identifies one certification a service provider submitted.
    CertificationId
);
uuid_id!(
    /// Identifies the payout of a service order's escrowed payment to its provider.
    PayoutId
);

/// A whole percentage from 1 to 100, as in "10 % off".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Percent(u8);

impl Percent {
    /// Parses a percentage; anything outside 1..=100 is refused.
    pub fn parse(raw: i64) -> Result<Percent, ParseError> {
        if (1..=100).contains(&raw) {
            Ok(Percent(raw as u8))
        } else {
            Err(ParseError::new(
                "percent_off",
                "percent_off must be a whole number from 1 to 100",
            ))
        }
    }

    /// The percentage.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Percent {
    type Error = ParseError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Percent::parse(value)
    }
}

impl From<Percent> for u8 {
    fn from(value: Percent) -> Self {
        value.0
    }
}

uuid_id!(
    /// Identifies one postal address of a customer.
    AddressId
);

/// The JSON key that marks a personal value inside an event payload.
pub const PERSONAL_KEY: &str = "$personal";

/// A piece of personal data (a name, a phone number, an address line, free text a user
/// wrote) belonging to one data subject (a user), as it travels inside events.
///
/// It is written into events as `{"$personal": {"subject": "<user id>", ...}}` with one of:
/// - `"clear": "<text>"`: the value itself. Only ever in memory: the command bus seals every
///   clear value before an event is stored, and refuses to store one it cannot seal.
/// - `"sealed": "<hex>"`: the value encrypted with the subject's own key, which lives
///   outside the event store. This is what the `events` table and JetStream hold.
/// - `"erased": true`: the subject's key was deleted (right to erasure), so the value is
///   gone for good; opening a sealed value after that gives this.
///
/// Aggregates never base a decision on a personal value, so their state may hold any of
/// the three forms (after a load, the sealed one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PersonalText {
    /// The readable value.
    Clear {
        /// Whose data it is.
        subject: UserId,
        /// The text.
        value: String,
    },
    /// The value encrypted with the subject's key.
    Sealed {
        /// Whose data it is.
        subject: UserId,
        /// Hex of the nonce and ciphertext.
        sealed: String,
    },
    /// The value was erased with the subject's key.
    Erased {
        /// Whose data it was.
        subject: UserId,
    },
}

impl PersonalText {
    /// A readable value of `subject`.
    pub fn clear(subject: UserId, value: impl Into<String>) -> Self {
        PersonalText::Clear {
            subject,
            value: value.into(),
        }
    }

    /// Whose data it is.
    pub fn subject(&self) -> UserId {
        match self {
            PersonalText::Clear { subject, .. }
            | PersonalText::Sealed { subject, .. }
            | PersonalText::Erased { subject } => *subject,
        }
    }

    /// The text, when it is readable.
    pub fn clear_value(&self) -> Option<&str> {
        match self {
            PersonalText::Clear { value, .. } => Some(value),
            _ => None,
        }
    }

    /// True once the value was erased.
    pub fn is_erased(&self) -> bool {
        matches!(self, PersonalText::Erased { .. })
    }

    /// Parses a readable value of `subject` as a bounded text (see the text types): trimmed,
    /// `min..=max` characters, on one line when `single_line`.
    pub fn parse_text(
        subject: UserId,
        raw: &str,
        field: &'static str,
        min: usize,
        max: usize,
        single_line: bool,
    ) -> Result<Self, ParseError> {
        bounded_text(raw, field, min, max, single_line).map(|value| Self::clear(subject, value))
    }
}

/// The inner object of the JSON form of a [`PersonalText`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalFields {
    subject: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clear: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    erased: Option<bool>,
}

/// The JSON form of a [`PersonalText`]: `{"$personal": {...}}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalWire {
    #[serde(rename = "$personal")]
    personal: PersonalFields,
}

impl Serialize for PersonalText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let personal = match self {
            PersonalText::Clear { subject, value } => PersonalFields {
                subject: *subject,
                clear: Some(value.clone()),
                sealed: None,
                erased: None,
            },
            PersonalText::Sealed { subject, sealed } => PersonalFields {
                subject: *subject,
                clear: None,
                sealed: Some(sealed.clone()),
                erased: None,
            },
            PersonalText::Erased { subject } => PersonalFields {
                subject: *subject,
                clear: None,
                sealed: None,
                erased: Some(true),
            },
        };
        PersonalWire { personal }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PersonalText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let PersonalWire { personal } = PersonalWire::deserialize(deserializer)?;
        let subject = personal.subject;
        match (personal.clear, personal.sealed, personal.erased) {
            (Some(value), None, None) => Ok(PersonalText::Clear { subject, value }),
            (None, Some(sealed), None) => Ok(PersonalText::Sealed { subject, sealed }),
            (None, None, Some(true)) => Ok(PersonalText::Erased { subject }),
            _ => Err(serde::de::Error::custom(
                "a personal value has exactly one of clear, sealed or erased: true",
            )),
        }
    }
}

/// Checks a text and returns it trimmed when its length in characters is within bounds.
fn bounded_text(
    raw: &str,
    field: &'static str,
    min: usize,
    max: usize,
    single_line: bool,
) -> Result<String, ParseError> {
    let s = raw.trim();
    let len = s.chars().count();
    let controls_ok = if single_line {
        !s.chars().any(char::is_control)
    } else {
        !s.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    };
    if (min..=max).contains(&len) && controls_ok {
        return Ok(s.to_owned());
    }
    let message = if min == 0 {
        format!("{field} must be at most {max} characters")
    } else {
        format!("{field} must be {min} to {max} characters")
    };
    let message = if single_line {
        format!("{message} on one line")
    } else {
        message
    };
    Err(ParseError::new(field, message))
}

macro_rules! text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr, $single:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the text: surrounding whitespace is trimmed, then its length checked.
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                bounded_text(raw, $field, $min, $max, $single).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

text!(
    /// Name of a product: 1 to 200 characters on one line.
    ProductName, "name", 1, 200, true
);
text!(
    /// Free description: at most 5000 characters, may be empty, may span lines.
    Description, "description", 0, 5000, false
);
text!(
    /// Category of a product or a show: 1 to 100 characters on one line.
    Category, "category", 1, 100, true
);
text!(
    /// Name of a category of the catalog's tree: 1 to 100 characters on one line.
    CategoryName, "name", 1, 100, true
);
text!(
    /// Name of a specification of a SKU, such as "colour": 1 to 40 characters on one line.
    SpecName, "spec", 1, 40, true
);
text!(
    /// Value of a specification of a SKU, such as "black": 1 to 100 characters on one line.
    SpecValue, "spec", 1, 100, true
);
text!(
    /// City where a show takes place: 1 to 100 characters on one line.
    City, "city", 1, 100, true
);
text!(
    /// Title of a show: 1 to 200 characters on one line.
    Title, "title", 1, 200, true
);
text!(
    /// Venue of a show: 1 to 200 characters on one line.
    Venue, "venue", 1, 200, true
);
text!(
    /// Display name of a seat area: 1 to 100 characters on one line.
    AreaName, "area_name", 1, 100, true
);
text!(
    /// Name of a promotion or of a coupon batch: 1 to 200 characters on one line.
    CampaignName, "name", 1, 200, true
);
text!(
    /// Why an admin refused something (a provider's verification, a service order): 1 to
    /// 500 characters, lines allowed.
    Reason, "reason", 1, 500, false
);

text!(
    /// What a buyer writes in a review or its follow-up: at most 2000 characters, may be
    /// empty, may span lines.
    ReviewComment, "comment", 0, 2000, false
);

#[cfg(test)]
pub(crate) mod fixtures {
    //! Values used by the tests of every aggregate.
    use super::*;

    pub fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    pub fn qty(n: i64) -> Quantity {
        Quantity::parse(n).unwrap()
    }

    pub fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
    }

    pub fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").unwrap()).unwrap()
    }

    pub fn id<T: From<Uuid>>(n: u128) -> T {
        T::from(Uuid::from_u128(n))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn sku_is_trimmed_and_uppercased() {
        assert_eq!(Sku::parse("  ab-12_x ").unwrap().as_str(), "AB-12_X");
    }

    #[test]
    fn sku_accepts_64_characters() {
        assert!(Sku::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn sku_refuses_subject_breaking_characters_and_bad_lengths() {
        for bad in ["", "   ", "a.b", "a*b", "a>b", "a b", "é", &"a".repeat(65)] {
            let err = Sku::parse(bad).unwrap_err();
            assert_eq!(err.field(), "sku", "{bad:?}");
            assert_eq!(
                err.to_string(),
                "sku must be 1 to 64 letters, digits, '-' or '_'"
            );
        }
    }

    #[test]
    fn sku_deserialization_validates_and_normalises() {
        let sku: Sku = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(sku.as_str(), "ABC");
        assert!(serde_json::from_str::<Sku>("\"a.b\"").is_err());
        assert_eq!(serde_json::to_string(&sku).unwrap(), "\"ABC\"");
    }

    #[test]
    fn area_id_keeps_case_and_refuses_dots() {
        assert_eq!(AreaId::parse(" Balcony_A ").unwrap().as_str(), "Balcony_A");
        assert!(AreaId::parse("a.b").is_err());
        assert!(AreaId::parse("").is_err());
        assert!(AreaId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn quantity_accepts_bounds_and_refuses_outside() {
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(1_000_000).unwrap().get(), 1_000_000);
        for bad in [0, -1, 1_000_001, i64::MAX, i64::MIN] {
            assert_eq!(Quantity::parse(bad).unwrap_err().field(), "quantity");
        }
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("5").unwrap().get(), 5);
    }

    #[test]
    fn currency_is_three_letters_uppercased() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        for bad in ["", "EU", "EURO", "E1R", "€"] {
            assert_eq!(Currency::parse(bad).unwrap_err().field(), "currency");
        }
    }

    #[test]
    fn money_refuses_negative_amounts() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(
            Money::new(-1, eur.clone()).unwrap_err().field(),
            "amount_minor"
        );
        assert!(Money::new(0, eur).unwrap().is_zero());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":-5,"currency":"EUR"}"#).is_err());
    }

    #[test]
    fn money_serializes_with_minor_units_and_currency() {
        let json = serde_json::to_value(eur(1250)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount_minor": 1250, "currency": "EUR"})
        );
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), eur(1250));
    }

    #[test]
    fn money_arithmetic_checks_currency_and_overflow() {
        assert_eq!(eur(100).checked_add(&eur(25)).unwrap(), eur(125));
        assert_eq!(eur(100).checked_sub(&eur(25)).unwrap(), eur(75));
        assert_eq!(eur(100).checked_mul(3).unwrap(), eur(300));
        assert!(matches!(
            eur(1).checked_add(&usd(1)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            eur(1).checked_sub(&usd(1)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            eur(i64::MAX).checked_add(&eur(1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(eur(1).checked_sub(&eur(2)), Err(MoneyError::Negative));
        assert_eq!(eur(i64::MAX).checked_mul(2), None);
        assert_eq!(Money::zero(Currency::parse("EUR").unwrap()), eur(0));
    }

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = OrderId::new_v4();
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", id.as_uuid())
        );
        assert!("not-a-uuid".parse::<BookingId>().is_err());
        let raw = Uuid::from_u128(7);
        assert_eq!(*TicketId::from(raw).as_uuid(), raw);
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(ProductName::parse("  Mug ").unwrap().as_str(), "Mug");
        assert!(ProductName::parse(&"x".repeat(200)).is_ok());
        assert_eq!(
            ProductName::parse(&"x".repeat(201))
                .unwrap_err()
                .to_string(),
            "name must be 1 to 200 characters on one line"
        );
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse("a\nb").is_err());
        assert!(Description::parse("").is_ok());
        assert!(Description::parse("line one\nline two").is_ok());
        assert!(Description::parse(&"é".repeat(5000)).is_ok());
        assert_eq!(
            Description::parse(&"x".repeat(5001)).unwrap_err().field(),
            "description"
        );
        assert!(Category::parse("Music").is_ok());
        assert!(Category::parse(&"x".repeat(101)).is_err());
        assert!(City::parse("Lyon").is_ok());
        assert!(City::parse("").is_err());
        assert!(Title::parse("Hamlet").is_ok());
        assert!(Title::parse(&"x".repeat(201)).is_err());
        assert!(Venue::parse("Opera").is_ok());
        assert!(Venue::parse(" ").is_err());
        assert!(AreaName::parse("Stalls").is_ok());
        assert!(AreaName::parse(&"x".repeat(101)).is_err());
        assert!(serde_json::from_str::<Title>("\"\"").is_err());
    }

    #[test]
    fn percent_is_one_to_a_hundred() {
        assert_eq!(Percent::parse(1).unwrap().get(), 1);
        assert_eq!(Percent::parse(100).unwrap().get(), 100);
        for bad in [0, -5, 101] {
            assert_eq!(Percent::parse(bad).unwrap_err().field(), "percent_off");
        }
        assert!(serde_json::from_str::<Percent>("0").is_err());
        assert!(CampaignName::parse("Summer sale").is_ok());
        assert!(CampaignName::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn personal_text_round_trips_in_each_form_and_refuses_mixed_forms() {
        let subject = UserId::from(Uuid::from_u128(9));
        for value in [
            PersonalText::clear(subject, "Ada"),
            PersonalText::Sealed {
                subject,
                sealed: "00ff".into(),
            },
            PersonalText::Erased { subject },
        ] {
            let json = serde_json::to_value(&value).unwrap();
            assert_eq!(json[PERSONAL_KEY]["subject"], subject.to_string());
            assert_eq!(serde_json::from_value::<PersonalText>(json).unwrap(), value);
            assert_eq!(value.subject(), subject);
        }
        assert_eq!(
            serde_json::to_value(PersonalText::clear(subject, "Ada")).unwrap(),
            serde_json::json!({"$personal": {"subject": subject.to_string(), "clear": "Ada"}})
        );
        assert_eq!(
            PersonalText::clear(subject, "Ada").clear_value(),
            Some("Ada")
        );
        assert!(PersonalText::Erased { subject }.is_erased());
        let subject = subject.to_string();
        for bad in [
            serde_json::json!({"$personal": {"subject": subject, "clear": "a", "sealed": "b"}}),
            serde_json::json!({"$personal": {"subject": subject}}),
            serde_json::json!({"$personal": {"subject": subject, "erased": false}}),
            serde_json::json!({"$personal": {"subject": subject, "clear": "a", "x": 1}}),
            serde_json::json!("Ada"),
        ] {
            assert!(
                serde_json::from_value::<PersonalText>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parse_error_is_invalid_input() {
        let err = Sku::parse("").unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
}
