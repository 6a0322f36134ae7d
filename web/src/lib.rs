//! The web front ends of Ordo: the storefront and box office at `/`, the provider console at
//! `/provider` and the admin console at `/admin`. They are plain HTML, CSS and JavaScript
//! modules under `web/assets/`, embedded in the binary at build time (nothing is fetched from
//! elsewhere, at build time or in the browser) and served by `ordo serve` beside the API.
//! The pages talk only to the public `/api/v1`, with the bearer token of their login.
//!
//! Every page is sent with a Content-Security-Policy that allows scripts, styles and
//! connections from this origin only: the pages hold no inline script or style.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: its name under `/assets/`, its media type and its bytes.
#[derive(Debug)]
pub struct Asset {
    /// The file name, as under `/assets/`.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";

/// Every file the pages use.
pub static ASSETS: &[Asset] = &[
    asset!("shop.html", "text/html; charset=utf-8"),
    asset!("provider.html", "text/html; charset=utf-8"),
    asset!("admin.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("i18n.js", "text/javascript; charset=utf-8"),
    asset!("shop.js", "text/javascript; charset=utf-8"),
    asset!("shop_aftersales.js", "text/javascript; charset=utf-8"),
    asset!("provider.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("admin_commerce.js", "text/javascript; charset=utf-8"),
    asset!("admin_ops.js", "text/javascript; charset=utf-8"),
    asset!("admin_catalog.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The pages: the path each is served at and its file.
pub static PAGES: &[(&str, &str)] = &[
    ("/", "shop.html"),
    ("/provider", "provider.html"),
    ("/admin", "admin.html"),
];

/// What the pages may load: this origin's scripts, styles, images (and the blob: URLs of
/// images fetched with the bearer token) and API; no frames, no inline code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Finds an embedded file by name.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// The routes of the pages (`/`, `/provider`, `/admin`, with or without a trailing slash)
/// and of their files (`/assets/{name}`). They take no state and so merge into any router.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new().route("/assets/{name}", get(serve_asset));
    for (path, file) in PAGES {
        let file: &'static str = file;
        router = router.route(path, get(move || async move { serve(file) }));
        if *path != "/" {
            router = router.route(&format!("{path}/"), get(move || async move { serve(file) }));
        }
    }
    router
}

async fn serve_asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some(asset) = find(name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file",
        )
            .into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        asset.body,
    )
        .into_response();
    if asset.content_type == HTML {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        response
            .headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";

    fn text(asset: &Asset) -> &str {
        std::str::from_utf8(asset.body).expect("assets are UTF-8")
    }

    #[test]
    fn pages_hold_no_inline_script_or_style_and_load_only_embedded_files() {
        for (_, file) in PAGES {
            let page = text(find(file).expect("page embedded"));
            assert!(!page.contains("<style"), "{file}: inline style");
            assert!(!page.contains(" style="), "{file}: style attribute");
            for (at, _) in page.match_indices("<script") {
                let tag = &page[at..at + page[at..].find('>').expect("tag closes")];
                assert!(
                    tag.contains("src=\"/assets/"),
                    "{file}: inline script {tag}"
                );
            }
            for (at, _) in page.match_indices("/assets/") {
                let rest = &page[at + "/assets/".len()..];
                let name = &rest[..rest.find('"').expect("quoted")];
                assert!(find(name).is_some(), "{file} loads {name}, not embedded");
            }
        }
    }

    #[test]
    fn scripts_import_only_embedded_modules_and_nothing_from_elsewhere() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let source = text(asset);
            assert!(
                !source.contains("http://") && !source.contains("https://"),
                "{}: names another origin",
                asset.name
            );
            let imports = source
                .lines()
                .filter(|l| l.starts_with("import ") || l.starts_with("} from "))
                .filter_map(|l| l.split_once(" from '"))
                .map(|(_, rest)| rest.trim_end_matches(&['\'', ';'][..]));
            for name in imports {
                let name = name.trim_start_matches("./");
                assert!(find(name).is_some(), "{}: imports {name}", asset.name);
            }
            assert!(!source.contains("eval("), "{}: eval", asset.name);
        }
    }

    #[test]
    fn pages_are_served_with_their_policy_and_unknown_files_are_not_found() {
        let page = serve("shop.html");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        let script = serve("common.js");
        assert_eq!(script.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("nothing.js").status(), StatusCode::NOT_FOUND);
    }
}
