//! Contract of the requests Ordo sends to Elasticsearch, checked field by field against the
//! shapes the Elasticsearch REST API documents (create index, `_bulk`, `_search`,
//! `_aliases`), with no server: a cluster is not needed to catch a request the API would
//! refuse or misread.
//!
//! References: "Create index API" (`PUT /<index>` with `settings`, `mappings`, `aliases`),
//! "Bulk API" (NDJSON: an action line `{"index": {"_index", "_id", "version",
//! "version_type"}}` then the source line, every line ending in a newline), "Search API"
//! (`query.bool.must/should/filter`, `post_filter`, `aggs` with `filter` and `terms`,
//! `sort`, `search_after`, `size`), "Aliases API" (`POST /_aliases` with `actions`, each
//! one of `add` / `remove` naming `index` and `alias`, applied atomically).

use chrono::{TimeZone, Utc};
use ordo_projections::search::elastic::rebuild::alias_swap_body;
use ordo_projections::search::elastic::{
    bulk_lines, document_version, first_index, index_body, ndjson, parse_response, search_body,
    show_bulk_lines, show_document_version, IndexNames, ProductDocument, SearchIndex, ShowDocument,
};

const PRODUCTS_ALIAS: &str = "ordo-products";
use ordo_projections::search::{SearchCursor, SearchParams, SearchQuery};
use serde_json::{json, Value};

fn query(pairs: &[(&str, &str)]) -> SearchQuery {
    let mut params = SearchParams::default();
    for (k, v) in pairs {
        let v = Some(v.to_string());
        match *k {
            "q" => params.q = v,
            "type" => params.item_type = v,
            "city" => params.city = v,
            "category" => params.category = v,
            "min_price" => params.min_price = v,
            "max_price" => params.max_price = v,
            "available_only" => params.available_only = v,
            "cursor" => params.cursor = v,
            "limit" => params.limit = v,
            _ => panic!("unknown parameter {k}"),
        }
    }
    SearchQuery::parse(params).unwrap()
}

fn doc(product_version: i64, inventory_version: i64) -> ProductDocument {
    ProductDocument {
        on_sale: true,
        sku: "HP-1".into(),
        name: "Headphones".into(),
        description: "Closed-back".into(),
        category: "audio".into(),
        price_minor: 5000,
        currency: "EUR".into(),
        available: 3,
        product_version,
        inventory_version,
        updated_at: Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap(),
    }
}

#[test]
fn index_creation_body_has_settings_mappings_and_the_alias() {
    for (name, definition) in ordo_schemas::ELASTICSEARCH_INDICES {
        let alias = format!("ordo-{name}");
        assert_eq!(first_index(&alias), format!("ordo-{name}-v1"));
        let body = index_body(definition, Some(&alias)).unwrap();
        assert!(index_body(definition, None)
            .unwrap()
            .get("aliases")
            .is_none());
        let top: Vec<&String> = body.as_object().unwrap().keys().collect();
        for key in &top {
            assert!(
                ["settings", "mappings", "aliases"].contains(&key.as_str()),
                "unexpected {key}"
            );
        }
        assert_eq!(body["aliases"][&alias]["is_write_index"], true);
        let properties = body["mappings"]["properties"].as_object().unwrap();
        assert_eq!(body["mappings"]["dynamic"], "strict");
        // Every field the bulk source lines and the search body use is mapped with the
        // type those queries need.
        for (field, kind) in [
            ("type", "keyword"),
            ("id", "keyword"),
            ("title", "text"),
            ("description", "text"),
            ("category", "keyword"),
            ("city", "keyword"),
            ("price", "long"),
            ("currency", "keyword"),
            ("updated_at", "date"),
        ] {
            assert_eq!(properties[field]["type"], kind, "{name}.{field}");
        }
        match *name {
            "products" => assert_eq!(properties["available"]["type"], "boolean"),
            _ => {
                assert_eq!(properties["available_until"]["type"], "date");
                assert_eq!(properties["venue"]["type"], "text");
                assert_eq!(properties["starts_at"]["type"], "date");
                // The city filter is a term query on a case-folded keyword.
                assert_eq!(properties["city"]["fields"]["folded"]["type"], "keyword");
            }
        }
        assert_eq!(properties["title"]["fields"]["exact"]["type"], "keyword");
        let normalizer = properties["title"]["fields"]["exact"]["normalizer"]
            .as_str()
            .unwrap();
        assert!(body["settings"]["analysis"]["normalizer"][normalizer].is_object());
    }
}

#[test]
fn bulk_body_is_ndjson_index_actions_with_external_versions() {
    let lines = bulk_lines(PRODUCTS_ALIAS, &doc(3, 7));
    let body = ndjson(&lines);
    assert!(
        body.ends_with('\n'),
        "the bulk body must end with a newline"
    );
    let parsed: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 2);
    for line in body.lines() {
        assert!(!line.contains('\n'));
    }

    let action = parsed[0].as_object().unwrap();
    assert_eq!(action.keys().collect::<Vec<_>>(), vec!["index"]);
    let meta = action["index"].as_object().unwrap();
    assert_eq!(meta["_index"], "ordo-products");
    assert_eq!(meta["_id"], "HP-1");
    assert_eq!(meta["version_type"], "external");
    assert!(meta["version"].is_i64());
    assert_eq!(meta["version"], document_version(3, 7));
    assert_eq!(meta.len(), 4, "{meta:?}");

    let source = &parsed[1];
    assert_eq!(
        source,
        &json!({"type": "product", "id": "HP-1", "title": "Headphones", "description": "Closed-back",
                "category": "audio", "price": 5000, "currency": "EUR", "available": true,
                "updated_at": "2024-05-01T10:00:00Z"})
    );
}

#[test]
fn external_versions_grow_with_either_sequence_and_stay_in_range() {
    assert!(document_version(3, 8) > document_version(3, 7));
    assert!(document_version(4, 0) > document_version(3, 7_000_000));
    assert!(document_version(1, 0) > 0);
    // Elasticsearch accepts external versions up to 2^63 - 1.
    assert!(document_version(1 << 39, (1 << 23) - 1) > 0);
}

#[test]
fn search_body_has_bool_query_filters_facets_sort_and_search_after() {
    let cursor = SearchCursor {
        score: 1.5,
        item_type: "product".into(),
        id: "HP-1".into(),
    }
    .encode();
    let q = query(&[
        ("q", "hedphones"),
        ("type", "product"),
        ("category", "audio"),
        ("city", "Lyon"),
        ("min_price", "100"),
        ("max_price", "9000"),
        ("available_only", "true"),
        ("limit", "10"),
        ("cursor", &cursor),
    ]);
    let body = search_body(&q);

    assert_eq!(
        body["size"], 11,
        "one more than the page, to know if another page exists"
    );
    let bool_query = body["query"]["bool"].as_object().unwrap();
    let must = bool_query["must"].as_array().unwrap();
    assert_eq!(must.len(), 1);
    let multi = &must[0]["multi_match"];
    assert_eq!(multi["query"], "hedphones");
    assert_eq!(multi["fuzziness"], "AUTO");
    assert!(multi["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str().unwrap().starts_with("title")));
    assert_eq!(
        bool_query["should"][0]["term"]["title.exact"]["value"],
        "hedphones"
    );
    let filter = bool_query["filter"].as_array().unwrap();
    assert!(
        filter.contains(&json!({"term": {"type": "product"}})),
        "{filter:?}"
    );
    assert!(
        filter.contains(&json!({"range": {"price": {"gte": 100, "lte": 9000}}})),
        "{filter:?}"
    );
    // Available: a product's flag, or a show whose last session with seats is ahead.
    assert!(
        filter.contains(&json!({"bool": {
            "should": [{"term": {"available": true}}, {"range": {"available_until": {"gt": "now"}}}],
            "minimum_should_match": 1,
        }})),
        "{filter:?}"
    );

    // Category and city filter the hits but not their own facet.
    let post = body["post_filter"]["bool"]["filter"].as_array().unwrap();
    assert!(post.contains(&json!({"term": {"category": "audio"}})));
    assert!(post.contains(&json!({"term": {"city.folded": "Lyon"}})));
    assert_eq!(
        body["aggs"]["category"]["aggs"]["values"]["terms"]["field"],
        "category"
    );
    assert_eq!(
        body["aggs"]["category"]["filter"]["bool"]["filter"],
        json!([{"term": {"city.folded": "Lyon"}}])
    );
    assert_eq!(
        body["aggs"]["city"]["aggs"]["values"]["terms"]["field"],
        "city"
    );
    assert_eq!(
        body["aggs"]["city"]["filter"]["bool"]["filter"],
        json!([{"term": {"category": "audio"}}])
    );
    assert!(body["aggs"]["city"]["aggs"]["values"]["terms"]["size"].is_u64());

    assert_eq!(
        body["sort"],
        json!([{"_score": {"order": "desc"}}, {"type": {"order": "asc"}}, {"id": {"order": "asc"}}])
    );
    assert_eq!(body["search_after"], json!([1.5, "product", "HP-1"]));
    assert_eq!(
        body["sort"].as_array().unwrap().len(),
        body["search_after"].as_array().unwrap().len()
    );
}

#[test]
fn browsing_without_words_matches_all_and_the_first_page_has_no_search_after() {
    let body = search_body(&query(&[]));
    assert_eq!(body["query"]["bool"]["must"], json!([{"match_all": {}}]));
    assert_eq!(body["query"]["bool"]["filter"], json!([]));
    assert!(body.get("search_after").is_none());
    assert_eq!(body["size"], 21);
}

#[test]
fn search_responses_become_pages_with_facets_and_a_cursor() {
    let q = query(&[("q", "headphones"), ("limit", "1")]);
    let response = json!({
        "took": 3, "timed_out": false,
        "hits": {"hits": [
            {"_index": "ordo-products-v1", "_id": "HP-1", "_score": 12.5, "sort": [12.5, "product", "HP-1"],
             "_source": {"type": "product", "id": "HP-1", "title": "Headphones", "category": "audio",
                         "price": 5000, "currency": "EUR", "available": true}},
            {"_index": "ordo-products-v1", "_id": "HP-2", "_score": 3.0, "sort": [3.0, "product", "HP-2"],
             "_source": {"type": "product", "id": "HP-2", "title": "Wireless Headphones", "category": "audio",
                         "price": 12000, "currency": "EUR", "available": false}}
        ]},
        "aggregations": {
            "category": {"doc_count": 2, "values": {"buckets": [{"key": "audio", "doc_count": 2}]}},
            "city": {"doc_count": 2, "values": {"buckets": []}}
        }
    });
    let page = parse_response(&q, &response, Utc::now()).unwrap();
    assert_eq!(page.results.len(), 1);
    assert_eq!(page.results[0].id, "HP-1");
    assert_eq!(page.results[0].score, 12.5);
    assert_eq!(page.facets.category.get("audio"), Some(&2));
    assert!(page.facets.city.is_empty());
    let next = query(&[
        ("q", "headphones"),
        ("limit", "1"),
        ("cursor", page.next_cursor.as_deref().unwrap()),
    ]);
    assert_eq!(
        search_body(&next)["search_after"],
        json!([12.5, "product", "HP-1"])
    );
}

fn show(show_version: i64, seats_version: i64) -> ShowDocument {
    ShowDocument {
        show_id: "6a1f0c3e-0000-4000-8000-000000000001".into(),
        title: "Rock Night".into(),
        description: "Loud".into(),
        category: "concert".into(),
        city: "Lyon".into(),
        venue: "Le Transbordeur".into(),
        first_session_at: Some(Utc.with_ymd_and_hms(2030, 5, 1, 20, 0, 0).unwrap()),
        price_minor: 3500,
        currency: "EUR".into(),
        available_until: Some(Utc.with_ymd_and_hms(2030, 5, 2, 20, 0, 0).unwrap()),
        show_version,
        seats_version,
        updated_at: Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap(),
    }
}

#[test]
fn show_documents_are_index_actions_with_external_versions_and_mapped_fields_only() {
    let lines = show_bulk_lines("ordo-shows", &show(2, 9));
    let meta = lines[0]["index"].as_object().unwrap();
    assert_eq!(meta["_index"], "ordo-shows");
    assert_eq!(meta["_id"], "6a1f0c3e-0000-4000-8000-000000000001");
    assert_eq!(meta["version_type"], "external");
    assert_eq!(meta["version"], show_document_version(2, 9));
    assert_eq!(
        lines[1],
        json!({"type": "show", "id": "6a1f0c3e-0000-4000-8000-000000000001", "title": "Rock Night",
               "description": "Loud", "category": "concert", "city": "Lyon",
               "venue": "Le Transbordeur", "starts_at": "2030-05-01T20:00:00Z", "price": 3500,
               "currency": "EUR", "available_until": "2030-05-02T20:00:00Z",
               "updated_at": "2024-05-01T10:00:00Z"})
    );
    // The mapping is strict: every field sent must be mapped, or the write is refused.
    let definition: serde_json::Value =
        serde_json::from_str(SearchIndex::Shows.definition()).unwrap();
    let mapped = definition["mappings"]["properties"].as_object().unwrap();
    for field in lines[1].as_object().unwrap().keys() {
        assert!(mapped.contains_key(field), "shows.{field} is not mapped");
    }
    let definition: serde_json::Value =
        serde_json::from_str(SearchIndex::Products.definition()).unwrap();
    let mapped = definition["mappings"]["properties"].as_object().unwrap();
    for field in bulk_lines(PRODUCTS_ALIAS, &doc(1, 1))[1]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(mapped.contains_key(field), "products.{field} is not mapped");
    }
}

#[test]
fn alias_swap_removes_the_old_generation_and_adds_the_new_in_one_request() {
    let names = IndexNames::default();
    let body = alias_swap_body(
        &names.alias(SearchIndex::Products),
        &["ordo-products-v1".to_string()],
        &names.generation(SearchIndex::Products, 2),
    );
    assert_eq!(
        body,
        json!({"actions": [
            {"remove": {"index": "ordo-products-v1", "alias": "ordo-products"}},
            {"add": {"index": "ordo-products-v2", "alias": "ordo-products", "is_write_index": true}},
        ]})
    );
    // With no alias yet (deleted by hand), only the add.
    let body = alias_swap_body("ordo-shows", &[], "ordo-shows-v3");
    assert_eq!(body["actions"].as_array().unwrap().len(), 1);
    assert_eq!(body["actions"][0]["add"]["index"], "ordo-shows-v3");
}

#[test]
fn a_show_is_available_until_its_last_session_with_seats() {
    let q = query(&[("type", "show")]);
    let response = json!({
        "hits": {"hits": [
            {"_id": "a", "_score": 1.0, "sort": [1.0, "show", "a"],
             "_source": {"type": "show", "id": "a", "title": "Soon", "category": "concert", "city": "Lyon",
                         "price": 100, "currency": "EUR", "available_until": "2030-01-01T20:00:00Z"}},
            {"_id": "b", "_score": 1.0, "sort": [1.0, "show", "b"],
             "_source": {"type": "show", "id": "b", "title": "Past", "category": "concert", "city": "Lyon",
                         "price": 100, "currency": "EUR", "available_until": "2020-01-01T20:00:00Z"}},
            {"_id": "c", "_score": 1.0, "sort": [1.0, "show", "c"],
             "_source": {"type": "show", "id": "c", "title": "Sold out", "category": "concert", "city": "Lyon",
                         "price": 100, "currency": "EUR", "available_until": null}}
        ]}
    });
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let page = parse_response(&q, &response, now).unwrap();
    let available: Vec<bool> = page.results.iter().map(|h| h.available).collect();
    assert_eq!(available, vec![true, false, false]);
    assert_eq!(page.results[0].city.as_deref(), Some("Lyon"));
}
