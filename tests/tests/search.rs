//! End to end: `GET /api/v1/search` on Postgres (ranking, typos, filters, facets, cursor,
//! refusals), and on a real Elasticsearch or OpenSearch when ORDO_TEST_ELASTICSEARCH_URL
//! names one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ordo_tests::{eventually, Api, TestOrdo};
use serde_json::{json, Value};

/// Ordo searching in Elasticsearch at `url`, with indices of its own (named after its
/// namespace).
async fn with_elasticsearch(url: &str) -> TestOrdo {
    let builder = TestOrdo::builder();
    let prefix = builder.namespace().to_owned();
    builder
        .env("ORDO_ELASTICSEARCH_URL", url)
        .env("ORDO_ELASTICSEARCH_INDEX_PREFIX", prefix)
        .start()
        .await
}

/// (sku, name, category, price, stock)
const CATALOG: &[(&str, &str, &str, i64, i64)] = &[
    ("HP-1", "Headphones", "audio", 5000, 3),
    ("HP-2", "Wireless Headphones", "audio", 12000, 5),
    ("ST-1", "Headphone Stand", "accessories", 2500, 0),
    ("SP-1", "Bluetooth Speaker", "audio", 8000, 2),
    ("CB-1", "USB Cable", "accessories", 900, 10),
];

async fn catalog(api: &Api) {
    let admin = api.admin().await;
    for (sku, name, category, price, stock) in CATALOG {
        let created = admin
            .post(
                "/api/v1/products",
                json!({"sku": sku, "name": name, "category": category, "price": price, "currency": "EUR",
                       "description": format!("{name} from the test catalog")}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        if *stock > 0 {
            let restocked = admin
                .post(
                    &format!("/api/v1/inventory/{sku}/restock"),
                    json!({"quantity": stock}),
                )
                .await;
            assert_eq!(restocked.status, 200, "{:?}", restocked.body);
        }
    }
}

async fn search(api: &Api, query: &str) -> Value {
    let answer = api.get(&format!("/api/v1/search?{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {:?}", answer.body);
    answer.body
}

fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the read models hold the whole catalog with its stock.
async fn indexed(api: &Api) {
    eventually(
        "catalog searchable with its stock",
        Duration::from_secs(30),
        || async {
            let page = search(api, "type=product&available_only=true&limit=100").await;
            (page["results"].as_array().map(Vec::len) == Some(4)
                && search(api, "type=product&limit=100").await["results"]
                    .as_array()
                    .map(Vec::len)
                    == Some(5))
            .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn postgres_search_ranks_filters_counts_and_pages() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    catalog(&api).await;
    indexed(&api).await;
    check_search(&api).await;
    ordo.stop().await;
}

/// The behaviour both engines must show.
async fn check_search(api: &Api) {
    // An exact title ranks first; every hit has the documented shape.
    let page = search(api, "q=headphones").await;
    let found = ids(&page);
    assert_eq!(found.first().map(String::as_str), Some("HP-1"), "{page}");
    assert!(found.contains(&"HP-2".to_string()), "{page}");
    let first = &page["results"][0];
    assert_eq!(first["type"], "product");
    assert_eq!(first["title"], "Headphones");
    assert_eq!(first["category"], "audio");
    assert_eq!(first["price"], 5000);
    assert_eq!(first["currency"], "EUR");
    assert_eq!(first["available"], true);
    assert!(first["score"].as_f64().unwrap() > page["results"][1]["score"].as_f64().unwrap());
    assert!(
        first.get("city").is_none(),
        "products have no city: {first}"
    );

    // A typo still finds the word.
    let typo = ids(&search(api, "q=hedphones").await);
    assert!(
        typo.contains(&"HP-1".to_string()) && typo.contains(&"HP-2".to_string()),
        "{typo:?}"
    );
    assert!(!typo.contains(&"CB-1".to_string()), "{typo:?}");

    // Facets count every match per category, ignoring the category filter itself.
    let filtered = search(
        api,
        "q=headphone%20speaker%20stand%20headphones&category=accessories",
    )
    .await;
    assert_eq!(ids(&filtered), vec!["ST-1".to_string()], "{filtered}");
    let facets = &search(api, "q=headphones").await["facets"];
    assert_eq!(facets["category"]["audio"], 2, "{facets}");
    assert_eq!(facets["city"], json!({}), "{facets}");

    // Price range and availability; a minimum above the maximum matches nothing.
    let empty = search(api, "min_price=8000&max_price=1000").await;
    assert_eq!(ids(&empty), Vec::<String>::new(), "{empty}");
    let cheap = ids(&search(api, "min_price=1000&max_price=8000").await);
    assert_eq!(
        cheap.iter().cloned().collect::<BTreeSet<_>>(),
        ["HP-1", "ST-1", "SP-1"]
            .map(String::from)
            .into_iter()
            .collect(),
        "{cheap:?}"
    );
    let available = ids(&search(api, "available_only=true&limit=100").await);
    assert!(!available.contains(&"ST-1".to_string()), "{available:?}");
    assert_eq!(available.len(), 4);

    // The cursor walks every match once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_string(),
        };
        let page = search(api, &query).await;
        assert!(page["results"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 5, "{seen:?}");

    // Bad input is refused as a problem naming its field.
    for (query, field) in [
        ("type=concert", "type"),
        ("limit=0", "limit"),
        ("available_only=perhaps", "available_only"),
        ("cursor=nonsense", "cursor"),
    ] {
        let answer = api.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(answer.status, 422, "{query}: {:?}", answer.body);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(answer.body["field"], field, "{query}");
    }
}

/// (title, category, city, price, session start)
const SHOWS: &[(&str, &str, &str, i64, &str)] = &[
    (
        "Rock Night",
        "concert",
        "Lyon",
        4500,
        "2030-06-01T19:00:00Z",
    ),
    (
        "Jazz Evening",
        "concert",
        "Paris",
        3000,
        "2030-06-02T19:00:00Z",
    ),
    (
        "Old Comedy",
        "theatre",
        "Lyon",
        2000,
        "2020-01-01T19:00:00Z",
    ),
];

#[tokio::test]
async fn postgres_search_finds_shows_with_city_facets_and_availability() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    catalog(&api).await;
    let ids = create_shows(&api).await;
    indexed(&api).await;
    shows_indexed(&api).await;
    check_show_search(&api, &ids).await;
    ordo.stop().await;
}

/// Creates [`SHOWS`], each with one session of 50 seats; answers their ids by title.
async fn create_shows(api: &Api) -> BTreeMap<&'static str, String> {
    let admin = api.admin().await;
    let mut ids = BTreeMap::new();
    for (title, category, city, price, starts_at) in SHOWS {
        let created = admin
            .post(
                "/api/v1/shows",
                json!({"title": title, "category": category, "city": city, "venue": format!("{city} Arena"),
                       "description": "live on stage",
                       "sessions": [{"starts_at": starts_at, "seat_areas": [
                           {"area_id": "floor", "name": "Floor", "price": price, "currency": "EUR", "capacity": 50}]}]}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        ids.insert(
            *title,
            created.body["show_id"].as_str().unwrap().to_string(),
        );
    }
    ids
}

/// Waits until both future shows are searchable with their seats.
async fn shows_indexed(api: &Api) {
    eventually(
        "shows searchable with their seats",
        Duration::from_secs(30),
        || async {
            let page = search(api, "type=show&available_only=true").await;
            (page["results"].as_array().map(Vec::len) == Some(2)).then_some(())
        },
    )
    .await;
}

/// What both engines must answer about shows.
async fn check_show_search(api: &Api, ids: &BTreeMap<&'static str, String>) {
    // A show's hit: title, city, cheapest seat, availability.
    let page = search(api, "q=rock%20night").await;
    let first = &page["results"][0];
    assert_eq!(first["type"], "show", "{page}");
    assert_eq!(first["id"], ids["Rock Night"].as_str());
    assert_eq!(first["title"], "Rock Night");
    assert_eq!(first["city"], "Lyon");
    assert_eq!(first["category"], "concert");
    assert_eq!(first["price"], 4500);
    assert_eq!(first["currency"], "EUR");
    assert_eq!(first["available"], true);

    // A typo, and a city word, both find shows.
    assert_eq!(
        ids_of(&search(api, "q=jaz%20evenin").await)[0],
        ids["Jazz Evening"]
    );
    let in_paris = ids_of(&search(api, "q=paris").await);
    assert_eq!(in_paris, vec![ids["Jazz Evening"].clone()]);

    // The city filter keeps Lyon's shows; the city facet still counts every city, and
    // the category facet counts within Lyon.
    let lyon = search(api, "type=show&city=lyon").await;
    let found: BTreeSet<String> = ids_of(&lyon).into_iter().collect();
    assert_eq!(
        found,
        [ids["Rock Night"].clone(), ids["Old Comedy"].clone()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        lyon["facets"]["city"],
        json!({"Lyon": 2, "Paris": 1}),
        "{lyon}"
    );
    assert_eq!(
        lyon["facets"]["category"],
        json!({"concert": 1, "theatre": 1}),
        "{lyon}"
    );

    // A show whose only session is past cannot be bought.
    let old = search(api, "q=old%20comedy").await;
    assert_eq!(old["results"][0]["available"], false, "{old}");

    // Types keep apart; without a type both come back.
    assert!(search(api, "type=product&q=rock").await["results"]
        .as_array()
        .unwrap()
        .is_empty());
    let everything = search(api, "limit=100").await;
    assert_eq!(
        everything["results"].as_array().unwrap().len(),
        CATALOG.len() + SHOWS.len()
    );
    assert_eq!(everything["facets"]["category"]["concert"], 2);
    assert_eq!(everything["facets"]["category"]["audio"], 3);
}

fn ids_of(page: &Value) -> Vec<String> {
    ids(page)
}

#[tokio::test]
async fn elasticsearch_search_behaves_like_postgres_and_rebuilds_by_swapping_aliases() {
    let Ok(url) = std::env::var("ORDO_TEST_ELASTICSEARCH_URL") else {
        eprintln!(
            "note: ORDO_TEST_ELASTICSEARCH_URL is not set; skipping the Elasticsearch search test"
        );
        return;
    };
    let url = url.trim_end_matches('/').to_owned();
    let ordo = with_elasticsearch(&url).await;
    let api = ordo.api();
    catalog(&api).await;
    let ids = create_shows(&api).await;
    // The indexers write as events arrive; the cluster makes writes searchable on its
    // refresh schedule (1 s by default).
    indexed(&api).await;
    shows_indexed(&api).await;
    check_search(&api).await;
    check_show_search(&api, &ids).await;

    // Rebuild both indices beside the live ones: each alias moves to generation 2 and the
    // old generation is deleted; searches answer the same.
    let http = reqwest::Client::new();
    for (name, index) in [("search-products", "products"), ("search-shows", "shows")] {
        let (ok, out, err) = ordo.cli(&["projections", "rebuild", name]).await;
        assert!(ok, "rebuild {name}: {err}");
        let alias = format!("{}-{index}", ordo.namespace());
        assert!(out.contains(&format!("{alias}-v2")), "{out}");
        let aliases: Value = http
            .get(format!("{url}/{alias}-v*/_alias"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let generations: Vec<&String> = aliases.as_object().unwrap().keys().collect();
        assert_eq!(generations, vec![&format!("{alias}-v2")], "{aliases}");
        assert!(aliases[format!("{alias}-v2")]["aliases"][&alias].is_object());
    }
    indexed(&api).await;
    shows_indexed(&api).await;
    check_search(&api).await;
    check_show_search(&api, &ids).await;

    // A delisted SKU leaves the index, and comes back once listed again.
    let admin = api.admin().await;
    let found = |present: bool| {
        let api = api.clone();
        async move {
            eventually(
                "the index follows the listing",
                Duration::from_secs(30),
                || {
                    let api = api.clone();
                    async move {
                        let page = search(&api, "q=usb%20cable").await;
                        (self::ids(&page).contains(&"CB-1".to_owned()) == present).then_some(())
                    }
                },
            )
            .await
        }
    };
    let delisted = admin.post("/api/v1/products/CB-1/delist", json!({})).await;
    assert_eq!(delisted.status, 200, "{:?}", delisted.body);
    found(false).await;
    let listed = admin.post("/api/v1/products/CB-1/list", json!({})).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    found(true).await;

    // By name: clusters refuse wildcard deletes by default (action.destructive_requires_name).
    let _ = http
        .delete(format!(
            "{url}/{ns}-products-v2,{ns}-shows-v2",
            ns = ordo.namespace()
        ))
        .send()
        .await;
    ordo.stop().await;
}

#[tokio::test]
async fn rebuilding_a_search_index_without_elasticsearch_is_refused_clearly() {
    let ordo = TestOrdo::start().await;
    let (ok, _, err) = ordo
        .cli(&["projections", "rebuild", "search-products"])
        .await;
    assert!(!ok);
    assert!(
        err.contains("ORDO_ELASTICSEARCH_URL is not set") && err.contains("projection-products"),
        "{err}"
    );
    let (ok, _, err) = ordo.cli(&["projections", "rebuild", "search-nope"]).await;
    assert!(!ok);
    assert!(err.contains("unknown projection \"search-nope\""), "{err}");
    ordo.stop().await;
}
