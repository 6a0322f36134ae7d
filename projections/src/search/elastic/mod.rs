//! Search on Elasticsearch (or OpenSearch), used when `ORDO_ELASTICSEARCH_URL` is set.
//!
//! - Indices ([`documents`]): `ordo-products-v1` and `ordo-shows-v1`, created from
//!   `schemas/elasticsearch/` with the aliases `ordo-products` and `ordo-shows` (the prefix
//!   is `ORDO_ELASTICSEARCH_INDEX_PREFIX`). Ordo reads and writes only through the aliases,
//!   so a rebuild ([`rebuild`]) fills the next generation beside the live one and swaps the
//!   alias.
//! - Indexing ([`indexer`]): the consumers `projection-search-es` (product stream),
//!   `projection-search-es-shows` (show stream) and `projection-search-es-inventory`
//!   (stock of products and of seat areas) bulk-index the current document from the
//!   Postgres read models with `version_type: external`, so replays and duplicates never
//!   overwrite newer data.
//! - Querying: `multi_match` with `fuzziness: AUTO` for typos, an exact-title boost, the
//!   filters in `bool.filter`, category and city in `post_filter` so that their facets
//!   (terms aggregations, each under a filter of the other) still show every choice, and
//!   `search_after` on the sort `[_score, type, id]` for the cursor.
//!
//! The request bodies are built by pure functions so that tests check them against the
//! REST API's shapes without a server.

pub mod documents;
pub mod indexer;
pub mod rebuild;

use chrono::{DateTime, Utc};
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::Transport;
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesExistsAliasParts, IndicesGetAliasParts,
};
use elasticsearch::{BulkParts, CountParts, Elasticsearch, SearchParts};
use serde_json::{json, Value};

pub use documents::{
    bulk_lines, bulk_outcome, document_version, first_index, index_body, ndjson, show_bulk_lines,
    show_document_version, BulkOutcome, IndexNames, ProductDocument, SearchIndex, ShowDocument,
};
pub use indexer::{
    SearchIndexer, CONSUMERS, INVENTORY_CONSUMER, PRODUCTS_CONSUMER, SHOWS_CONSUMER,
};
pub use rebuild::IndexRebuildReport;

use super::{Facets, ItemType, SearchCursor, SearchHit, SearchPage, SearchQuery};

/// The aliases a query reads.
pub fn aliases_for(names: &IndexNames, query: &SearchQuery) -> Vec<String> {
    let mut aliases = Vec::new();
    if query.wants(ItemType::Product) {
        aliases.push(names.alias(SearchIndex::Products));
    }
    if query.wants(ItemType::Show) {
        aliases.push(names.alias(SearchIndex::Shows));
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
        // Products carry a flag; shows the start of their last session with seats left.
        filter.push(json!({"bool": {
            "should": [
                {"term": {"available": true}},
                {"range": {"available_until": {"gt": "now"}}},
            ],
            "minimum_should_match": 1,
        }}));
    }
    let category_filter = query
        .category
        .as_ref()
        .map(|c| json!({"term": {"category": c}}));
    // Cities match whatever their case, as in Postgres; facets show them as written.
    let city_filter = query
        .city
        .as_ref()
        .map(|c| json!({"term": {"city.folded": c}}));
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

/// Reads a `_search` response into a page; a show is available while its
/// `available_until` is after `now`.
pub fn parse_response(
    query: &SearchQuery,
    response: &Value,
    now: DateTime<Utc>,
) -> anyhow::Result<SearchPage> {
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
            available: source["available"].as_bool().unwrap_or_else(|| {
                source["available_until"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|until| until > now)
            }),
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
    names: IndexNames,
}

impl EsSearch {
    /// A client of the cluster at `url` (e.g. `http://127.0.0.1:9200`), with index names
    /// under `prefix`.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let transport = Transport::single_node(url)
            .map_err(|err| anyhow::anyhow!("ORDO_ELASTICSEARCH_URL {url:?}: {err}"))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
            names: IndexNames::new(prefix)?,
        })
    }

    /// The index and alias names.
    pub fn names(&self) -> &IndexNames {
        &self.names
    }

    /// Creates `<alias>-v1` with its alias for every index whose alias does not exist yet.
    /// An existing alias is left alone: it may point at a rebuilt generation.
    pub async fn ensure_indices(&self) -> anyhow::Result<()> {
        for index in SearchIndex::ALL {
            let alias = self.names.alias(index);
            let exists = self
                .client
                .indices()
                .exists_alias(IndicesExistsAliasParts::Name(&[alias.as_str()]))
                .send()
                .await?;
            if exists.status_code().is_success() {
                continue;
            }
            self.create_index(&first_index(&alias), index.definition(), Some(&alias))
                .await?;
        }
        Ok(())
    }

    /// `PUT /<name>` from `definition`, with `alias` when given. An index that already
    /// exists (another process created it first) is not an error.
    pub async fn create_index(
        &self,
        name: &str,
        definition: &str,
        alias: Option<&str>,
    ) -> anyhow::Result<()> {
        let response = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(name))
            .body(index_body(definition, alias)?)
            .send()
            .await?;
        let status = response.status_code();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            if !text.contains("resource_already_exists_exception") {
                anyhow::bail!("creating {name} failed ({status}): {text}");
            }
        }
        Ok(())
    }

    /// `GET /<pattern>/_alias`: the matching indices and their aliases.
    pub async fn aliases_of(&self, pattern: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .indices()
            .get_alias(IndicesGetAliasParts::Index(&[pattern]))
            .send()
            .await?;
        let status = response.status_code();
        let answer: Value = response.json().await?;
        // A pattern matching nothing answers 200 with `{}`; 404 is kept for older servers.
        match status.as_u16() {
            200 => Ok(answer),
            404 => Ok(json!({})),
            _ => anyhow::bail!("reading the aliases of {pattern} failed ({status}): {answer}"),
        }
    }

    /// `POST /_aliases` with `body` (applied atomically).
    pub async fn update_aliases(&self, body: Value) -> anyhow::Result<()> {
        let response = self
            .client
            .indices()
            .update_aliases()
            .body(body)
            .send()
            .await?;
        let status = response.status_code();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("swapping aliases failed ({status}): {text}");
        }
        Ok(())
    }

    /// `DELETE /<indices>`.
    pub async fn delete_indices(&self, indices: &[String]) -> anyhow::Result<()> {
        let names: Vec<&str> = indices.iter().map(String::as_str).collect();
        let response = self
            .client
            .indices()
            .delete(IndicesDeleteParts::Index(&names))
            .send()
            .await?;
        let status = response.status_code();
        if !status.is_success() && status.as_u16() != 404 {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("deleting {indices:?} failed ({status}): {text}");
        }
        Ok(())
    }

    /// Documents in `target` (an index or alias).
    pub async fn count(&self, target: &str) -> anyhow::Result<u64> {
        let response = self
            .client
            .count(CountParts::Index(&[target]))
            .send()
            .await?;
        let status = response.status_code();
        let answer: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("counting {target} failed ({status}): {answer}");
        }
        answer["count"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("count response without count: {answer}"))
    }

    /// Sends bulk lines; documents the index already holds at this version or a newer one
    /// count as stale, not as failures.
    pub async fn bulk(&self, lines: Vec<Value>) -> anyhow::Result<BulkOutcome> {
        let body: Vec<JsonBody<Value>> = lines.into_iter().map(JsonBody::from).collect();
        let response = self.client.bulk(BulkParts::None).body(body).send().await?;
        let status = response.status_code();
        let answer: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("bulk request failed ({status}): {answer}");
        }
        bulk_outcome(&answer)
    }

    /// Answers a search.
    pub async fn search(&self, query: &SearchQuery) -> anyhow::Result<SearchPage> {
        let aliases = aliases_for(&self.names, query);
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
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
        parse_response(query, &answer, Utc::now())
    }
}
