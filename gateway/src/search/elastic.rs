//! Search on Elasticsearch (or OpenSearch), used when `ORDO_ELASTICSEARCH_URL` is set.
//!
//! - Indices: `ordo-products-v1` created from `schemas/elasticsearch/products.json` with the
//!   alias `ordo-products`; Ordo only ever names the alias, so a rebuild fills a `-v2`
//!   beside it and swaps the alias.
//! - Indexing: [`SearchIndexer`] runs as the consumers `projection-search-es` (product
//!   stream) and `projection-search-es-inventory` (inventory stream). For each event it
//!   waits until the Postgres read models reflect it, then bulk-indexes the product's row
//!   with `version_type: external`. The version is the pair (product sequence, inventory
//!   sequence) packed into one number ([`document_version`]); both only grow, so a replayed
//!   or duplicated event carries a version the index already has (or a lower one) and
//!   Elasticsearch refuses it instead of overwriting newer data.
//! - Querying: `multi_match` with `fuzziness: AUTO` for typos, an exact-title boost, the
//!   filters in `bool.filter`, category and city in `post_filter` so that their facets
//!   (terms aggregations, each under a filter of the other) still show every choice, and
//!   `search_after` on the sort `[_score, type, id]` for the cursor.
//!
//! The request bodies are built by pure functions ([`index_body`], [`bulk_lines`],
//! [`search_body`]) so that tests check them against the REST API's shapes without a
//! server.

use async_trait::async_trait;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::Transport;
use elasticsearch::indices::{IndicesCreateParts, IndicesExistsAliasParts};
use elasticsearch::{BulkParts, Elasticsearch, SearchParts};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::{Facets, ItemType, SearchCursor, SearchHit, SearchPage, SearchQuery};

/// The alias products are read and written through.
pub const PRODUCTS_ALIAS: &str = "ordo-products";
/// The alias shows are read and written through.
pub const SHOWS_ALIAS: &str = "ordo-shows";
/// The consumer indexing product changes.
pub const PRODUCTS_CONSUMER: &str = "projection-search-es";
/// The consumer indexing availability changes.
pub const INVENTORY_CONSUMER: &str = "projection-search-es-inventory";

/// The first concrete index behind an alias: `ordo-products` -> `ordo-products-v1`.
pub fn first_index(alias: &str) -> String {
    format!("{alias}-v1")
}

/// The body of `PUT /<alias>-v1`: the schema file's settings and mappings, plus the alias.
pub fn index_body(definition: &str, alias: &str) -> anyhow::Result<Value> {
    let mut body: Value = serde_json::from_str(definition)?;
    body["aliases"] = json!({ alias: { "is_write_index": true } });
    Ok(body)
}

/// The external version of a product document: the product's sequence in the high 40 bits,
/// its inventory sequence in the low 23, so a newer state of either is a larger number.
/// (Elasticsearch versions are signed 64-bit, at most 2^63 - 1.)
pub fn document_version(product_version: i64, inventory_version: i64) -> i64 {
    (product_version << 23) | inventory_version.clamp(0, (1 << 23) - 1)
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
    /// The products row's version.
    pub product_version: i64,
    /// The inventory_levels row's version (0 without stock).
    pub inventory_version: i64,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The two NDJSON lines of a bulk `index` action for one product: the action with its
/// external version, then the document.
pub fn bulk_lines(alias: &str, doc: &ProductDocument) -> [Value; 2] {
    [
        json!({"index": {
            "_index": alias,
            "_id": doc.sku,
            "version": document_version(doc.product_version, doc.inventory_version),
            "version_type": "external",
        }}),
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

/// A `_bulk` request body: every line as JSON, each followed by a newline.
pub fn ndjson(lines: &[Value]) -> String {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line.to_string());
        body.push('\n');
    }
    body
}

/// The aliases a query reads.
pub fn aliases_for(query: &SearchQuery) -> Vec<&'static str> {
    let mut aliases = Vec::new();
    if query.wants(ItemType::Product) {
        aliases.push(PRODUCTS_ALIAS);
    }
    if query.wants(ItemType::Show) {
        aliases.push(SHOWS_ALIAS);
    }
    aliases
}

/// The `_search` body of a query.
pub fn search_body(query: &SearchQuery) -> Value {
    let must = if query.text.is_empty() {
        vec![json!({"match_all": {}})]
    } else {
        vec![json!({"multi_match": {
            "query": query.text,
            "fields": ["title^3", "category^2", "description"],
            "fuzziness": "AUTO",
            "operator": "or",
        }})]
    };
    let should = if query.text.is_empty() {
        vec![]
    } else {
        // An exact title outranks any partial or fuzzy match.
        vec![json!({"term": {"title.exact": {"value": query.text.to_lowercase(), "boost": 10.0}}})]
    };
    let mut filter = Vec::new();
    if let Some(t) = query.item_type {
        filter.push(json!({"term": {"type": t.as_str()}}));
    }
    if query.min_price.is_some() || query.max_price.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(min) = query.min_price {
            range.insert("gte".into(), json!(min));
        }
        if let Some(max) = query.max_price {
            range.insert("lte".into(), json!(max));
        }
        filter.push(json!({"range": {"price": range}}));
    }
    if query.available_only {
        filter.push(json!({"term": {"available": true}}));
    }
    let category_filter = query
        .category
        .as_ref()
        .map(|c| json!({"term": {"category": c}}));
    let city_filter = query.city.as_ref().map(|c| json!({"term": {"city": c}}));
    let all_of = |filters: Vec<Value>| json!({"bool": {"filter": filters}});
    let mut body = json!({
        "size": query.limit + 1,
        "track_total_hits": false,
        "query": {"bool": {"must": must, "should": should, "filter": filter}},
        "post_filter": all_of(category_filter.iter().chain(city_filter.iter()).cloned().collect()),
        "aggs": {
            "category": {
                "filter": all_of(city_filter.iter().cloned().collect()),
                "aggs": {"values": {"terms": {"field": "category", "size": 100}}},
            },
            "city": {
                "filter": all_of(category_filter.iter().cloned().collect()),
                "aggs": {"values": {"terms": {"field": "city", "size": 100}}},
            },
        },
        "sort": [{"_score": {"order": "desc"}}, {"type": {"order": "asc"}}, {"id": {"order": "asc"}}],
    });
    if let Some(after) = &query.after {
        body["search_after"] = json!([after.score, after.item_type, after.id]);
    }
    body
}

/// Reads a `_search` response into a page.
pub fn parse_response(query: &SearchQuery, response: &Value) -> anyhow::Result<SearchPage> {
    let hits = response["hits"]["hits"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("search response without hits.hits"))?;
    let mut results = Vec::new();
    for hit in hits {
        let source = &hit["_source"];
        let score = hit["sort"][0]
            .as_f64()
            .or_else(|| hit["_score"].as_f64())
            .unwrap_or(0.0);
        results.push(SearchHit {
            item_type: if source["type"] == "show" {
                ItemType::Show
            } else {
                ItemType::Product
            },
            id: source["id"].as_str().unwrap_or_default().to_string(),
            title: source["title"].as_str().unwrap_or_default().to_string(),
            category: source["category"].as_str().unwrap_or_default().to_string(),
            city: source["city"].as_str().map(str::to_string),
            price: source["price"].as_i64().unwrap_or(0),
            currency: source["currency"].as_str().unwrap_or_default().to_string(),
            available: source["available"].as_bool().unwrap_or(false),
            score,
        });
    }
    let mut facets = Facets::default();
    for (name, target) in [
        ("category", &mut facets.category),
        ("city", &mut facets.city),
    ] {
        if let Some(buckets) = response["aggregations"][name]["values"]["buckets"].as_array() {
            for bucket in buckets {
                if let (Some(key), Some(n)) = (bucket["key"].as_str(), bucket["doc_count"].as_i64())
                {
                    target.insert(key.to_string(), n);
                }
            }
        }
    }
    let next_cursor = if results.len() as i64 > query.limit {
        results.truncate(query.limit as usize);
        results.last().map(|last| {
            SearchCursor {
                score: last.score,
                item_type: last.item_type.as_str().to_string(),
                id: last.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(SearchPage {
        results,
        facets,
        next_cursor,
    })
}

/// The Elasticsearch client with Ordo's indices.
#[derive(Clone)]
pub struct EsSearch {
    client: Elasticsearch,
}

impl EsSearch {
    /// A client of the cluster at `url` (e.g. `http://127.0.0.1:9200`).
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        let transport = Transport::single_node(url)
            .map_err(|err| anyhow::anyhow!("ORDO_ELASTICSEARCH_URL {url:?}: {err}"))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
        })
    }

    /// Creates `ordo-<name>-v1` with its alias for every index definition whose alias does
    /// not exist yet. An existing alias is left alone: it may point at a rebuilt index.
    pub async fn ensure_indices(&self) -> anyhow::Result<()> {
        for (name, definition) in ordo_schemas::ELASTICSEARCH_INDICES {
            let alias = format!("ordo-{name}");
            let exists = self
                .client
                .indices()
                .exists_alias(IndicesExistsAliasParts::Name(&[alias.as_str()]))
                .send()
                .await?;
            if exists.status_code().is_success() {
                continue;
            }
            let index = first_index(&alias);
            let response = self
                .client
                .indices()
                .create(IndicesCreateParts::Index(&index))
                .body(index_body(definition, &alias)?)
                .send()
                .await?;
            let status = response.status_code();
            // Another process may have created it between the check and here.
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                if !text.contains("resource_already_exists_exception") {
                    anyhow::bail!("creating {index} failed ({status}): {text}");
                }
            }
        }
        Ok(())
    }

    /// Sends bulk lines; a version conflict (the index has this version or a newer one)
    /// counts as success.
    pub async fn bulk(&self, lines: Vec<Value>) -> anyhow::Result<()> {
        let body: Vec<JsonBody<Value>> = lines.into_iter().map(JsonBody::from).collect();
        let response = self.client.bulk(BulkParts::None).body(body).send().await?;
        let status = response.status_code();
        let answer: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("bulk request failed ({status}): {answer}");
        }
        if answer["errors"].as_bool() == Some(true) {
            for item in answer["items"].as_array().into_iter().flatten() {
                let result = &item["index"];
                let conflict = result["status"].as_u64() == Some(409);
                if result["error"].is_object() && !conflict {
                    anyhow::bail!("bulk item failed: {}", result["error"]);
                }
            }
        }
        Ok(())
    }

    /// Answers a search.
    pub async fn search(&self, query: &SearchQuery) -> anyhow::Result<SearchPage> {
        let aliases = aliases_for(query);
        let response = self
            .client
            .search(SearchParts::Index(&aliases))
            .ignore_unavailable(true)
            .body(search_body(query))
            .send()
            .await?;
        let status = response.status_code();
        let answer: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("search failed ({status}): {answer}");
        }
        parse_response(query, &answer)
    }
}

/// Indexes products as their events arrive (see the module documentation).
pub struct SearchIndexer {
    pool: PgPool,
    es: EsSearch,
    aggregate_type: &'static str,
}

impl SearchIndexer {
    /// The indexer of one stream: `product` or `inventory`.
    pub fn new(pool: PgPool, es: EsSearch, aggregate_type: &'static str) -> Self {
        Self {
            pool,
            es,
            aggregate_type,
        }
    }

    /// The consumers and their aggregate types.
    pub fn consumers() -> [(&'static str, &'static str); 2] {
        [
            (PRODUCTS_CONSUMER, "product"),
            (INVENTORY_CONSUMER, "inventory"),
        ]
    }

    /// The product's current row, with its availability.
    pub async fn load(&self, sku: &str) -> sqlx::Result<Option<ProductDocument>> {
        sqlx::query_as(
            "SELECT p.sku, p.name, p.description, p.category, p.price_minor, p.currency,
                    coalesce(i.available, 0) AS available, p.version AS product_version,
                    coalesce(i.version, 0) AS inventory_version,
                    greatest(p.updated_at, coalesce(i.updated_at, p.updated_at)) AS updated_at
             FROM products p LEFT JOIN inventory_levels i ON i.sku = p.sku
             WHERE p.sku = $1",
        )
        .bind(sku)
        .fetch_optional(&self.pool)
        .await
    }
}

#[async_trait]
impl EventHandler for SearchIndexer {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        if event.aggregate_type != self.aggregate_type {
            return Ok(());
        }
        let Some(doc) = self.load(&event.aggregate_id).await? else {
            if self.aggregate_type == "product" {
                // The products projection has not applied the creation yet.
                return Err(HandlerError::retry(anyhow::anyhow!(
                    "product {} is not in the read model yet",
                    event.aggregate_id
                )));
            }
            // Stock of a SKU that is not in the catalog: nothing to index; the product's
            // creation will index it with its stock.
            return Ok(());
        };
        let reached = match self.aggregate_type {
            "product" => doc.product_version >= event.sequence,
            _ => doc.inventory_version >= event.sequence,
        };
        if !reached {
            return Err(HandlerError::retry(anyhow::anyhow!(
                "{} {} read model at an older version than {}",
                self.aggregate_type,
                event.aggregate_id,
                event.sequence
            )));
        }
        self.es
            .bulk(bulk_lines(PRODUCTS_ALIAS, &doc).to_vec())
            .await
            .map_err(HandlerError::Retry)
    }
}
