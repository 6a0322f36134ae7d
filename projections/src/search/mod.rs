//! Search over the catalog's products and the box office's shows: one query shape, two
//! engines with the same answers.
//!
//! - [`postgres`]: the default. Full-text search (`websearch_to_tsquery` on weighted text
//!   vectors) for relevance, plus pg_trgm word similarity on the title so
//!   a typo ("hedphones") still finds its word. Runs on the single-machine setup.
//! - [`elastic`]: with `ORDO_ELASTICSEARCH_URL`: indices behind aliases, a projection that
//!   bulk-indexes with external versions, rebuilds that swap the alias, and `multi_match`
//!   queries with fuzziness.

//!
//! [`SearchQuery::parse`] validates the request once; both engines take the parsed query
//! and answer a [`SearchPage`]. [`connect`] picks the engine from [`SearchSettings`];
//! [`SearchEngine::indexers`] are the consumers that keep Elasticsearch up to date.

pub mod elastic;
pub mod postgres;

use std::collections::BTreeMap;
use std::sync::Arc;

use ordo_nats::EventHandler;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::queries::{page, InvalidParameter};

/// What can be searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// Catalog products.
    Product,
    /// Shows (ticketing).
    Show,
}

impl ItemType {
    fn parse(text: &str) -> Result<Self, InvalidParameter> {
        match text {
            "product" => Ok(ItemType::Product),
            "show" => Ok(ItemType::Show),
            _ => Err(InvalidParameter::new(
                "type",
                "type must be product or show",
            )),
        }
    }

    /// The name used in responses and cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Product => "product",
            ItemType::Show => "show",
        }
    }
}

/// The query string of `GET /api/v1/search`, as received (every field text, so that a bad
/// value is answered as a problem document naming its field).
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct SearchParams {
    /// Words to look for (web search syntax: `"exact phrase"`, `-excluded`, `or`), at
    /// most 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// `product` or `show`; both when absent.
    #[serde(rename = "type")]
    #[param(value_type = Option<ItemType>)]
    pub item_type: Option<String>,
    /// Only items in this city (shows).
    pub city: Option<String>,
    /// Only items of this category.
    pub category: Option<String>,
    /// Lowest price, minor units (above `max_price`, nothing matches).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub min_price: Option<String>,
    /// Highest price, minor units.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub max_price: Option<String>,
    /// Only items that can be bought now (`true`/`false`).
    #[param(value_type = Option<bool>)]
    pub available_only: Option<String>,
    /// From `next_cursor` of the previous page (empty: the first page).
    #[param(
        pattern = r"^((2d)?(3[0-9]){1,308}(2e(3[0-9]){1,400})?7c(70726f64756374|73686f77)7c(2d|3[0-9]|4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a]){1,64})?$"
    )]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// Where the previous page ended: the last hit's score and id, in a cursor as the text
/// `<score>|<type>|<id>` (a decimal score without exponent, `product` or `show`, and 1 to 64
/// letters, digits, '-' or '_'), made opaque by [`page::encode_cursor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchCursor {
    /// Its score.
    pub score: f64,
    /// Its type.
    #[serde(rename = "t")]
    pub item_type: String,
    /// Its id.
    pub id: String,
}

impl SearchCursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        page::encode_cursor(&format!("{}|{}|{}", self.score, self.item_type, self.id))
    }

    fn decode(text: &str) -> Result<Self, InvalidParameter> {
        let text = page::decode_cursor(text)?;
        Self::from_text(&text).ok_or_else(page::foreign_cursor)
    }

    fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '|');
        let (score, item_type, id) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = score.strip_prefix('-').unwrap_or(score);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "1"));
        let decimal = |part: &str, most: usize| {
            (1..=most).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
        };
        if !decimal(whole, 308) || !decimal(fraction, 400) {
            return None;
        }
        let score: f64 = score.parse().ok().filter(|s: &f64| s.is_finite())?;
        let item_type = ItemType::parse(item_type).ok()?.as_str().to_string();
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        id_ok.then(|| Self {
            score,
            item_type,
            id: id.to_string(),
        })
    }
}

/// A validated search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The words, trimmed; empty to browse.
    pub text: String,
    /// Only this type, or every type.
    pub item_type: Option<ItemType>,
    /// City filter.
    pub city: Option<String>,
    /// Category filter.
    pub category: Option<String>,
    /// Lowest price (minor units).
    pub min_price: Option<i64>,
    /// Highest price (minor units).
    pub max_price: Option<i64>,
    /// Only available items.
    pub available_only: bool,
    /// After this hit.
    pub after: Option<SearchCursor>,
    /// Page size.
    pub limit: i64,
}

fn parse_price(field: &'static str, value: Option<&str>) -> Result<Option<i64>, InvalidParameter> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(InvalidParameter::new(
                field,
                format!("{field} must be a whole number of minor units, zero or more"),
            )),
        },
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl SearchQuery {
    /// Validates the query string; every refusal names its field.
    pub fn parse(params: SearchParams) -> Result<Self, InvalidParameter> {
        let text = params.q.unwrap_or_default().trim().to_string();
        if text.chars().count() > 200 {
            return Err(InvalidParameter::new(
                "q",
                "q must be at most 200 characters",
            ));
        }
        let item_type = non_empty(params.item_type)
            .as_deref()
            .map(ItemType::parse)
            .transpose()?;
        let min_price = parse_price("min_price", params.min_price.as_deref())?;
        // A minimum above the maximum is an empty range: nothing matches.
        let max_price = parse_price("max_price", params.max_price.as_deref())?;
        let available_only = match non_empty(params.available_only).as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => {
                return Err(InvalidParameter::new(
                    "available_only",
                    "available_only must be true or false",
                ))
            }
        };
        let limit =
            match non_empty(params.limit) {
                None => None,
                Some(v) => Some(v.parse::<i64>().map_err(|_| {
                    InvalidParameter::new("limit", "limit must be between 1 and 100")
                })?),
            };
        let limit = page::limit(limit)?;
        let after = non_empty(params.cursor)
            .as_deref()
            .map(SearchCursor::decode)
            .transpose()?;
        Ok(Self {
            text,
            item_type,
            city: non_empty(params.city),
            category: non_empty(params.category),
            min_price,
            max_price,
            available_only,
            after,
            limit,
        })
    }

    /// Whether this query may return items of `item_type`.
    pub fn wants(&self, item_type: ItemType) -> bool {
        self.item_type.is_none_or(|t| t == item_type)
    }
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// `product` or `show`.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// The SKU of a product, the id of a show.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Category.
    pub category: String,
    /// City (shows only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub city: Option<String>,
    /// Price in minor units (a show's lowest seat price).
    pub price: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Whether it can be bought now.
    pub available: bool,
    /// Relevance: higher is better; comparable within one answer only.
    pub score: f64,
}

/// Counts of matching items per value, per facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    /// Matches per category (ignoring the category filter, so other choices show).
    pub category: BTreeMap<String, i64>,
    /// Matches per city (ignoring the city filter).
    pub city: BTreeMap<String, i64>,
}

/// The answer of `GET /api/v1/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchPage {
    /// Hits, best first.
    pub results: Vec<SearchHit>,
    /// Facet counts over every match, not only this page.
    pub facets: Facets,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Where search runs: Postgres unless an Elasticsearch URL is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchSettings {
    /// Elasticsearch (or OpenSearch) URL, e.g. `http://127.0.0.1:9200`; `None` or empty
    /// for Postgres.
    pub elasticsearch_url: Option<String>,
    /// First part of the index and alias names (`<prefix>-products`).
    pub index_prefix: String,
}

/// Why a search was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The Postgres read models could not be read.
    #[error("searching the read models failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Elasticsearch did not answer (or answered an error); retrying later may succeed.
    #[error("search is temporarily unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

/// The engine that answers searches.
#[derive(Clone)]
pub enum SearchEngine {
    /// Postgres full-text and trigram search (the default).
    Postgres(sqlx::PgPool),
    /// Elasticsearch (or OpenSearch) behind the `ordo-*` aliases.
    Elasticsearch(elastic::EsSearch),
}

/// A consumer that keeps a search index up to date: its durable name, the aggregate type
/// whose stream it reads, and what handles each event.
pub struct IndexerConsumer {
    /// Its durable consumer name, e.g. `projection-search-es`.
    pub name: &'static str,
    /// The aggregate type of its stream.
    pub aggregate_type: &'static str,
    /// The indexer.
    pub handler: Arc<dyn EventHandler>,
}

impl SearchEngine {
    /// Answers a search.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        match self {
            SearchEngine::Postgres(pool) => Ok(postgres::search(pool, query).await?),
            SearchEngine::Elasticsearch(es) => es.search(query).await.map_err(|err| {
                tracing::warn!(error = %err, "elasticsearch search failed");
                SearchError::Unavailable(err)
            }),
        }
    }

    /// The Elasticsearch indexers' consumers, reading the read models from `pool` (none
    /// when search runs on Postgres).
    pub fn indexers(&self, pool: &sqlx::PgPool) -> Vec<IndexerConsumer> {
        let SearchEngine::Elasticsearch(es) = self else {
            return Vec::new();
        };
        elastic::CONSUMERS
            .into_iter()
            .map(|(name, aggregate_type, _)| IndexerConsumer {
                name,
                aggregate_type,
                handler: Arc::new(elastic::SearchIndexer::new(
                    pool.clone(),
                    es.clone(),
                    aggregate_type,
                )),
            })
            .collect()
    }
}

/// The engine `settings` ask for; with Elasticsearch, its indices and aliases are created
/// when missing.
pub async fn connect(
    settings: &SearchSettings,
    pool: &sqlx::PgPool,
) -> anyhow::Result<SearchEngine> {
    match settings
        .elasticsearch_url
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => Ok(SearchEngine::Postgres(pool.clone())),
        Some(url) => {
            let es = elastic::EsSearch::connect(url, &settings.index_prefix)?;
            es.ensure_indices().await.map_err(|err| {
                anyhow::anyhow!("preparing the Elasticsearch indices at {url}: {err:#}")
            })?;
            Ok(SearchEngine::Elasticsearch(es))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> SearchParams {
        let query: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_urlencoded_like(&query)
    }

    fn serde_urlencoded_like(query: &str) -> SearchParams {
        let value: serde_json::Map<String, serde_json::Value> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(value)).unwrap()
    }

    #[test]
    fn min_price_above_max_price_is_an_empty_range() {
        let query =
            SearchQuery::parse(params(&[("min_price", "500"), ("max_price", "100")])).unwrap();
        assert_eq!((query.min_price, query.max_price), (Some(500), Some(100)));
    }

    #[test]
    fn cursors_are_a_decimal_score_a_type_and_an_id() {
        let cursor = |text: &str| page::encode_cursor(text);
        for text in [
            "0.0607927|product|TEE-BLACK-M",
            "-3|show|0f3c-aa_1",
            "12.5|show|x",
        ] {
            assert!(SearchCursor::decode(&cursor(text)).is_ok(), "{text}");
        }
        for text in [
            "1e5|product|A",
            "0.5|concert|A",
            "0.5|product|",
            "0.5|product|A B",
            ".5|product|A",
            "5.|product|A",
            "NaN|product|A",
            "{\"score\":1.0,\"t\":\"product\",\"id\":\"A\"}",
        ] {
            assert!(SearchCursor::decode(&cursor(text)).is_err(), "{text}");
        }
        let huge = format!("{}|product|A", "9".repeat(309));
        assert!(SearchCursor::decode(&cursor(&huge)).is_err());
    }

    #[test]
    fn unknown_types_and_bad_numbers_are_refused() {
        assert!(SearchQuery::parse(params(&[("type", "concert")])).is_err());
        assert!(SearchQuery::parse(params(&[("min_price", "-1")])).is_err());
        assert!(SearchQuery::parse(params(&[("available_only", "maybe")])).is_err());
        assert!(SearchQuery::parse(params(&[("limit", "0")])).is_err());
        assert!(SearchQuery::parse(params(&[("cursor", "zz")])).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = SearchCursor {
            score: 0.123456,
            item_type: "product".into(),
            id: "SKU-1".into(),
        };
        let parsed = SearchQuery::parse(params(&[("cursor", &cursor.encode())])).unwrap();
        assert_eq!(parsed.after, Some(cursor));
    }
}
