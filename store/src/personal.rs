//! Personal data in event payloads (crypto-shredding): the [`PersonalDataSealer`] that
//! seals every clear [`PersonalText`](ordo_aggregates::common::PersonalText) value of a
//! payload with its subject's key before the payload is stored, and opens sealed values
//! again for those who may read them (erased once the key is gone). The keys live outside
//! the event store (the identity vault implements the trait).
//!
//! The functions here find personal values in any JSON payload: an object whose only key
//! is `$personal`, at any depth.

use std::collections::BTreeSet;

use ordo_aggregates::common::{UserId, PERSONAL_KEY};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Why personal values could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum PersonalDataError {
    /// A sealed value does not open with its subject's key (altered, or not sealed by it).
    #[error("a sealed personal value of subject {0} does not open with its key")]
    NotOpenable(UserId),
    /// A value is not of the `$personal` form.
    #[error("malformed personal value: {0}")]
    Malformed(String),
    /// The key vault failed.
    #[error("personal data keys unavailable: {0}")]
    Vault(String),
}

/// Seals and opens the personal values of event payloads with their subjects' keys.
#[async_trait::async_trait]
pub trait PersonalDataSealer: Send + Sync {
    /// Replaces every clear personal value of `payload` by its sealed form (or by the erased
    /// form when its subject was erased already). Sealed and erased values stay as they are.
    async fn seal(&self, payload: &mut Value) -> Result<(), PersonalDataError>;

    /// Replaces every sealed personal value of `payload` by its clear form, or by the
    /// erased form when its subject's key was deleted.
    async fn open(&self, payload: &mut Value) -> Result<(), PersonalDataError>;
}

/// True when `value` is a personal value: `{"$personal": {...}}`.
pub fn is_personal(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.len() == 1 && map.get(PERSONAL_KEY).is_some_and(Value::is_object))
}

/// Every personal value of `payload`, at any depth, as the inner object of `$personal`.
pub fn personal_values_mut(payload: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    fn walk<'a>(value: &'a mut Value, out: &mut Vec<&'a mut serde_json::Map<String, Value>>) {
        if is_personal(value) {
            if let Some(Value::Object(inner)) = value.get_mut(PERSONAL_KEY) {
                out.push(inner);
            }
            return;
        }
        match value {
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, out)),
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(payload, &mut out);
    out
}

/// The subject of a personal value's inner object.
pub fn subject_of(inner: &serde_json::Map<String, Value>) -> Result<UserId, PersonalDataError> {
    inner
        .get("subject")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| PersonalDataError::Malformed("no subject".into()))
}

/// True when `payload` holds a personal value in the clear.
pub fn has_clear_values(payload: &Value) -> bool {
    match payload {
        value if is_personal(value) => value[PERSONAL_KEY].get("clear").is_some(),
        Value::Object(map) => map.values().any(has_clear_values),
        Value::Array(items) => items.iter().any(has_clear_values),
        _ => false,
    }
}

/// The subjects whose personal values `payload` holds.
pub fn subjects(payload: &mut Value) -> BTreeSet<UserId> {
    personal_values_mut(payload)
        .into_iter()
        .filter_map(|inner| subject_of(inner).ok())
        .collect()
}

/// Opens the personal values of `value` (any serialisable type holding
/// [`PersonalText`](ordo_aggregates::common::PersonalText)s, such as an aggregate's view):
/// the same value with clear or erased values in place of sealed ones.
pub async fn open_value<T: Serialize + DeserializeOwned>(
    sealer: &dyn PersonalDataSealer,
    value: &T,
) -> Result<T, PersonalDataError> {
    let mut json =
        serde_json::to_value(value).map_err(|e| PersonalDataError::Malformed(e.to_string()))?;
    sealer.open(&mut json).await?;
    serde_json::from_value(json).map_err(|e| PersonalDataError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn personal_values_are_found_at_any_depth_and_clear_ones_noticed() {
        let subject = "00000000-0000-0000-0000-000000000001";
        let mut payload = json!({"AddressAdded": {
            "address_id": "x",
            "address": {
                "recipient": {"$personal": {"subject": subject, "clear": "Ada"}},
                "lines": [{"$personal": {"subject": subject, "sealed": "00"}}],
                "not_personal": {"$personal": "text", "other": 1},
            }
        }});
        assert!(has_clear_values(&payload));
        assert_eq!(personal_values_mut(&mut payload).len(), 2);
        assert_eq!(subjects(&mut payload).len(), 1);
        for inner in personal_values_mut(&mut payload) {
            inner.remove("clear");
            inner.insert("erased".into(), json!(true));
        }
        assert!(!has_clear_values(&payload));
        assert!(!has_clear_values(&json!({"name": "Ada", "n": [1, 2]})));
    }
}
