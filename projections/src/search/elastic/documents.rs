//! What Ordo stores in Elasticsearch: the index and alias names, the product and show
//! documents read from the Postgres read models, their external versions, and the `_bulk`
//! lines that write them. Pure functions, so that tests check every request body without
//! a cluster.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// One of the search indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchIndex {
    /// Catalog products (`type: product`, `id` = SKU).
    Products,
    /// Shows (`type: show`, `id` = show id).
    Shows,
}

impl SearchIndex {
    /// Both indices.
    pub const ALL: [SearchIndex; 2] = [SearchIndex::Products, SearchIndex::Shows];

    /// Its name in `schemas/elasticsearch/` and in its alias: `products`, `shows`.
    pub fn name(self) -> &'static str {
        match self {
            SearchIndex::Products => "products",
            SearchIndex::Shows => "shows",
        }
    }

    /// The name operators rebuild it by: `search-products`, `search-shows`.
    pub fn rebuild_name(self) -> &'static str {
        match self {
            SearchIndex::Products => "search-products",
            SearchIndex::Shows => "search-shows",
        }
    }

    /// The index whose rebuild name (or alias name, `ordo-products`) is `name`.
    pub fn from_rebuild_name(name: &str, names: &IndexNames) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|index| index.rebuild_name() == name || names.alias(*index) == name)
    }

    /// The body of `PUT /<index>` (settings and mappings) from `schemas/elasticsearch/`.
    pub fn definition(self) -> &'static str {
        ordo_schemas::ELASTICSEARCH_INDICES
            .iter()
            .find(|(name, _)| *name == self.name())
            .map(|(_, definition)| *definition)
            .expect("every search index has a definition in schemas/elasticsearch")
    }
}

/// Index and alias names under one prefix (`ORDO_ELASTICSEARCH_INDEX_PREFIX`, `ordo` by
/// default): the alias `ordo-products` points at one concrete index `ordo-products-v<n>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNames {
    prefix: String,
}

impl IndexNames {
    /// Names under `prefix`, which must be a valid start of an index name.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 100
            && !prefix.starts_with(['-', '_'])
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        anyhow::ensure!(
            valid,
            "ORDO_ELASTICSEARCH_INDEX_PREFIX {prefix:?} must be lowercase letters, digits, - and _, \
             not starting with - or _"
        );
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The alias every read and write goes through, e.g. `ordo-products`.
    pub fn alias(&self, index: SearchIndex) -> String {
        format!("{}-{}", self.prefix, index.name())
    }

    /// The concrete index of generation `generation`, e.g. `ordo-products-v2`.
    pub fn generation(&self, index: SearchIndex, generation: u32) -> String {
        format!("{}-v{generation}", self.alias(index))
    }

    /// The pattern matching every generation, e.g. `ordo-products-v*`.
    pub fn generations_pattern(&self, index: SearchIndex) -> String {
        format!("{}-v*", self.alias(index))
    }
}

impl Default for IndexNames {
    fn default() -> Self {
        Self {
            prefix: "ordo".into(),
        }
    }
}

/// The first concrete index behind an alias: `ordo-products` -> `ordo-products-v1`.
pub fn first_index(alias: &str) -> String {
    format!("{alias}-v1")
}

/// The body of `PUT /<index>`: the schema file's settings and mappings, plus the alias
/// when given (the first generation is created with it; a rebuild's gets it at the swap).
pub fn index_body(definition: &str, alias: Option<&str>) -> anyhow::Result<Value> {
    let mut body: Value = serde_json::from_str(definition)?;
    if let Some(alias) = alias {
        body["aliases"] = json!({ alias: { "is_write_index": true } });
    }
    Ok(body)
}

/// The external version of a product document: the product's sequence in the high 40 bits,
/// its inventory sequence in the low 23, so a newer state of either is a larger number.
/// (Elasticsearch versions are signed 64-bit, at most 2^63 - 1.)
pub fn document_version(product_version: i64, inventory_version: i64) -> i64 {
    (product_version << 23) | inventory_version.clamp(0, (1 << 23) - 1)
}

/// The external version of a show document: the show's sequence in the high 24 bits, the
/// sum of its seat areas' inventory sequences in the low 39.
///
/// A show's set of seat areas only changes with a show event, which raises the high part;
/// under one show version the areas are fixed and each inventory sequence only grows, so
/// their sum grows with every seat change. Any later state of the read models therefore
/// has a larger (or, for the same state, equal) version.
pub fn show_document_version(show_version: i64, seats_version: i64) -> i64 {
    (show_version << 39) | seats_version.clamp(0, (1 << 39) - 1)
}

/// A product as indexed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProductDocument {
    /// SKU.
    pub sku: String,
    /// Title.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Price, minor units.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// Units available now.
    pub available: i64,
    /// False once delisted: the document is then deleted from the index.
    pub on_sale: bool,
    /// The products row's version.
    pub product_version: i64,
    /// The inventory_levels row's version (0 without stock).
    pub inventory_version: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A show as indexed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ShowDocument {
    /// The show's id.
    pub show_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// City.
    pub city: String,
    /// Venue.
    pub venue: String,
    /// Its first session.
    pub first_session_at: Option<DateTime<Utc>>,
    /// Its cheapest seat, minor units (0 without seat areas).
    pub price_minor: i64,
    /// The currency of its seats ("" without seat areas).
    pub currency: String,
    /// The start of its last session that still has seats: it can be booked until then.
    /// Stored instead of a flag because passing time, not an event, makes a session past.
    pub available_until: Option<DateTime<Utc>>,
    /// The shows row's version.
    pub show_version: i64,
    /// The sum of its seat areas' inventory_levels versions.
    pub seats_version: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The two NDJSON lines of a bulk `index` action for one product: the action with its
/// external version, then the document.
pub fn bulk_lines(index: &str, doc: &ProductDocument) -> [Value; 2] {
    [
        index_action(
            index,
            &doc.sku,
            document_version(doc.product_version, doc.inventory_version),
        ),
        json!({
            "type": "product",
            "id": doc.sku,
            "title": doc.name,
            "description": doc.description,
            "category": doc.category,
            "price": doc.price_minor,
            "currency": doc.currency,
            "available": doc.available > 0,
            "updated_at": doc.updated_at,
        }),
    ]
}

/// The NDJSON line of a bulk `delete` action for one delisted product, with the external
/// version it would have had, so an older `index` arriving late cannot bring it back.
pub fn delete_lines(index: &str, doc: &ProductDocument) -> [Value; 1] {
    [json!({"delete": {
        "_index": index,
        "_id": doc.sku,
        "version": document_version(doc.product_version, doc.inventory_version),
        "version_type": "external",
    }})]
}

/// The two NDJSON lines of a bulk `index` action for one show.
pub fn show_bulk_lines(index: &str, doc: &ShowDocument) -> [Value; 2] {
    [
        index_action(
            index,
            &doc.show_id,
            show_document_version(doc.show_version, doc.seats_version),
        ),
        json!({
            "type": "show",
            "id": doc.show_id,
            "title": doc.title,
            "description": doc.description,
            "category": doc.category,
            "city": doc.city,
            "venue": doc.venue,
            "starts_at": doc.first_session_at,
            "price": doc.price_minor,
            "currency": doc.currency,
            "available_until": doc.available_until,
            "updated_at": doc.updated_at,
        }),
    ]
}

fn index_action(index: &str, id: &str, version: i64) -> Value {
    json!({"index": {
        "_index": index,
        "_id": id,
        "version": version,
        "version_type": "external",
    }})
}

/// A `_bulk` request body: every line as JSON, each followed by a newline.
pub fn ndjson(lines: &[Value]) -> String {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line.to_string());
        body.push('\n');
    }
    body
}

/// What a `_bulk` request did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Documents written.
    pub written: u64,
    /// Documents refused because the index already held this version or a newer one.
    pub stale: u64,
}

/// Reads a `_bulk` response: version conflicts (409) are stale writes, not failures; any
/// other item error fails the whole request, to be retried.
pub fn bulk_outcome(answer: &Value) -> anyhow::Result<BulkOutcome> {
    let mut outcome = BulkOutcome::default();
    for item in answer["items"].as_array().into_iter().flatten() {
        let result = &item["index"];
        match result["status"].as_u64() {
            Some(200..=299) => outcome.written += 1,
            Some(409) => outcome.stale += 1,
            _ => anyhow::bail!("bulk item failed: {}", result["error"]),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_valid_index_names() {
        assert!(IndexNames::new("ordo").is_ok());
        assert!(IndexNames::new("ordo_t1-a").is_ok());
        for bad in ["", "Ordo", "-ordo", "_ordo", "or do", "ordo*", "a/b"] {
            assert!(IndexNames::new(bad).is_err(), "{bad:?}");
        }
        let names = IndexNames::new("shop").unwrap();
        assert_eq!(names.alias(SearchIndex::Shows), "shop-shows");
        assert_eq!(
            names.generation(SearchIndex::Products, 3),
            "shop-products-v3"
        );
        assert_eq!(
            SearchIndex::from_rebuild_name("shop-shows", &names),
            Some(SearchIndex::Shows)
        );
        assert_eq!(
            SearchIndex::from_rebuild_name("search-products", &names),
            Some(SearchIndex::Products)
        );
        assert_eq!(SearchIndex::from_rebuild_name("orders", &names), None);
    }

    #[test]
    fn show_versions_grow_with_the_show_even_when_seats_go_away() {
        assert!(show_document_version(2, 0) > show_document_version(1, 1_000_000));
        assert!(show_document_version(1, 8) > show_document_version(1, 7));
        assert!(show_document_version(1 << 23, (1 << 39) - 1) > 0);
    }

    #[test]
    fn bulk_outcomes_count_stale_writes_and_fail_on_other_errors() {
        let answer = json!({"errors": true, "items": [
            {"index": {"_id": "a", "status": 201, "result": "created"}},
            {"index": {"_id": "b", "status": 200, "result": "updated"}},
            {"index": {"_id": "c", "status": 409, "error": {"type": "version_conflict_engine_exception"}}},
        ]});
        assert_eq!(
            bulk_outcome(&answer).unwrap(),
            BulkOutcome {
                written: 2,
                stale: 1
            }
        );
        let failed = json!({"errors": true, "items": [
            {"index": {"_id": "a", "status": 400, "error": {"type": "strict_dynamic_mapping_exception"}}},
        ]});
        assert!(bulk_outcome(&failed).is_err());
    }
}
