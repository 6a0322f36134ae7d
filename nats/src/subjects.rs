//! Names on the wire: the namespace, stream names and subjects.
//!
//! Every name Ordo uses in NATS is derived here, so the relay, the consumers, the stream
//! definitions and the operators' CLI commands agree. A [`Namespace`] prefixes everything;
//! production uses the default `ordo`, tests use a random one so that their streams never
//! collide on a shared server.

use std::fmt;
use std::str::FromStr;

/// The aggregate types that have an event stream, one stream each.
pub const AGGREGATE_TYPES: &[&str] = &[
    "order",
    "inventory",
    "payment",
    "product",
    "booking",
    "show",
    "category",
    "promotion",
    "coupon_batch",
    "cart",
    "customer",
    "provider",
    "service_order",
    "shipment",
    "aftersale",
    "review",
];

/// The namespace every stream name and subject starts with.
///
/// Lowercase ASCII letters and digits only, 1 to 32 characters: it appears in subjects
/// (where `.`, `*` and `>` have meaning) and, upper-cased, in stream names (where `.` is
/// forbidden), so anything richer would need escaping.
///
/// It also carries how many replicas its streams have (1 unless
/// [`with_stream_replicas`](Namespace::with_stream_replicas) says otherwise): every stream
/// definition applied for the namespace takes that number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String, usize);

/// Why a string is not a valid [`Namespace`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid namespace {0:?}: expected 1 to 32 lowercase ASCII letters or digits")]
pub struct InvalidNamespace(pub String);

impl Namespace {
    /// The namespace of a production deployment.
    pub const DEFAULT: &'static str = "ordo";

    /// Parses a namespace, refusing anything but 1..=32 lowercase ASCII letters or digits.
    pub fn parse(value: &str) -> Result<Self, InvalidNamespace> {
        let valid = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(value.to_owned(), 1))
        } else {
            Err(InvalidNamespace(value.to_owned()))
        }
    }

    /// The same namespace with streams of `replicas` replicas (at least 1; a NATS cluster
    /// takes up to 5).
    pub fn with_stream_replicas(mut self, replicas: usize) -> Self {
        self.1 = replicas.max(1);
        self
    }

    /// How many replicas the namespace's streams have.
    pub fn stream_replicas(&self) -> usize {
        self.1
    }

    /// The namespace as written in subjects (`ordo`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of stream names (`ORDO`).
    pub fn stream_prefix(&self) -> String {
        self.0.to_ascii_uppercase()
    }

    /// The stream holding one aggregate type's events: `ORDO_ORDER`.
    pub fn stream_name(&self, aggregate_type: &str) -> String {
        format!(
            "{}_{}",
            self.stream_prefix(),
            aggregate_type.to_ascii_uppercase()
        )
    }

    /// The subjects a stream of one aggregate type captures: `ordo.events.order.>`.
    pub fn stream_filter(&self, aggregate_type: &str) -> String {
        format!("{}.events.{}.>", self.0, aggregate_type)
    }

    /// The subject of one event: `ordo.events.order.<id>.OrderPlaced`.
    pub fn event_subject(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
    ) -> String {
        format!(
            "{}.events.{aggregate_type}.{aggregate_id}.{event_type}",
            self.0
        )
    }

    /// The dead-letter stream: `ORDO_DLQ`.
    pub fn dlq_stream(&self) -> String {
        format!("{}_DLQ", self.stream_prefix())
    }

    /// The subjects the dead-letter stream captures: `ordo.dlq.>`.
    pub fn dlq_filter(&self) -> String {
        format!("{}.dlq.>", self.0)
    }

    /// The subject a consumer's dead letters go to: `ordo.dlq.<consumer>`.
    pub fn dlq_subject(&self, consumer: &str) -> String {
        format!("{}.dlq.{consumer}", self.0)
    }

    /// Parses an event subject back into `(aggregate_type, aggregate_id, event_type)`.
    ///
    /// Aggregate ids may themselves contain dots only if producers allow it; we split the
    /// fixed parts off both ends so such ids still round-trip.
    pub fn parse_event_subject<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
        let rest = subject
            .strip_prefix(self.0.as_str())?
            .strip_prefix(".events.")?;
        let (aggregate_type, rest) = rest.split_once('.')?;
        let (aggregate_id, event_type) = rest.rsplit_once('.')?;
        if aggregate_type.is_empty() || aggregate_id.is_empty() || event_type.is_empty() {
            return None;
        }
        Some((aggregate_type, aggregate_id, event_type))
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned(), 1)
    }
}

impl FromStr for Namespace {
    type Err = InvalidNamespace;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_accepts_lowercase_letters_and_digits_only() {
        assert!(Namespace::parse("ordo").is_ok());
        assert!(Namespace::parse("t0a1b2c3").is_ok());
        assert!(Namespace::parse(&"a".repeat(32)).is_ok());
        for bad in [
            "",
            "Ordo",
            "or.do",
            "or-do",
            "or do",
            "ordo>",
            &"a".repeat(33),
        ] {
            assert!(Namespace::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn default_namespace_names_match_the_architecture() {
        let ns = Namespace::default();
        assert_eq!(ns.stream_name("order"), "ORDO_ORDER");
        assert_eq!(ns.stream_filter("order"), "ordo.events.order.>");
        assert_eq!(
            ns.event_subject("inventory", "sku-1", "StockReserved"),
            "ordo.events.inventory.sku-1.StockReserved"
        );
        assert_eq!(ns.dlq_stream(), "ORDO_DLQ");
        assert_eq!(
            ns.dlq_subject("projection-orders"),
            "ordo.dlq.projection-orders"
        );
    }

    #[test]
    fn other_namespaces_prefix_every_name() {
        let ns = Namespace::parse("t1234abcd").unwrap();
        assert_eq!(ns.stream_name("show"), "T1234ABCD_SHOW");
        assert_eq!(ns.dlq_filter(), "t1234abcd.dlq.>");
    }

    #[test]
    fn event_subjects_parse_back() {
        let ns = Namespace::default();
        let subject = ns.event_subject("order", "o-1", "OrderPlaced");
        assert_eq!(
            ns.parse_event_subject(&subject),
            Some(("order", "o-1", "OrderPlaced"))
        );
        assert_eq!(ns.parse_event_subject("other.events.order.o-1.X"), None);
        assert_eq!(ns.parse_event_subject("ordo.events.order"), None);
    }
}
