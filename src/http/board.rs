//! The public board: the committed `board/dist/` files, compiled into the binary and served at
//! `/` (the page) and under `/board/` (its script, stylesheet and icon).
//!
//! The assets are built from `board/src/` by `board/build.mjs` and committed, so the server builds
//! on a machine without Node.js; `.ci/board-check` rebuilds them and fails on any difference.
//! Nothing the board uses is fetched from elsewhere, and the Content-Security-Policy says so to the
//! browser: scripts, styles, images and connections come from this origin only.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::http::problem::ApiError;

/// One built file: its name under `/board/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../board/dist/index.html"),
    },
    Asset {
        name: "board.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../board/dist/board.js"),
    },
    Asset {
        name: "board.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../board/dist/board.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../board/dist/favicon.svg"),
    },
];

/// Only this origin, for everything; no framing, no plugins, no forms posted elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; object-src 'none'; \
                                       frame-ancestors 'none'; form-action 'self'";

/// Each asset's entity tag: a digest of its bytes, so a new binary with new assets is never
/// answered 304 for an old copy, while an unchanged one costs a browser nothing to revalidate.
fn entity_tags() -> &'static [String; 4] {
    static TAGS: OnceLock<[String; 4]> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS.each_ref().map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            format!("\"{}\"", hex::encode(&digest[..12]))
        })
    })
}

/// The asset's answer: 304 when the browser holds these bytes already. Names are fixed (no hash
/// in them), so browsers revalidate every time (`no-cache`) instead of keeping a stale copy.
fn serve(index: usize, request: &HttpRequest) -> HttpResponse {
    let asset = &ASSETS[index];
    let tag = &entity_tags()[index];
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == tag));
    let mut answer = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, tag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if fresh {
        return answer.finish();
    }
    answer.content_type(asset.content_type).body(asset.bytes)
}

async fn page(request: HttpRequest) -> HttpResponse {
    serve(0, &request)
}

async fn asset(request: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match ASSETS.iter().position(|asset| asset.name == name.as_str()) {
        Some(index) => Ok(serve(index, &request)),
        None => Err(ApiError::NotFound(request.path().to_string())),
    }
}

/// Registers the board's routes, outside the documented API (like `/openapi.json`).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(page))
        .route("/board/{name}", web::get().to(asset));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_built_and_the_page_names_only_local_files() {
        for asset in &ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.name);
        }
        let page = String::from_utf8_lossy(ASSETS[0].bytes);
        assert!(page.contains("/board/board.js") && page.contains("/board/board.css"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[actix_web::test]
    async fn assets_carry_their_type_policy_and_tag_and_revalidate_to_304() {
        use actix_web::{http::StatusCode, test, App};
        let app = test::init_service(App::new().configure(configure)).await;
        let page = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(page.status(), StatusCode::OK);
        let headers = page.headers();
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-cache");
        let script = test::TestRequest::get().uri("/board/board.js").to_request();
        let script = test::call_service(&app, script).await;
        assert_eq!(script.status(), StatusCode::OK);
        let tag = script.headers().get(header::ETAG).unwrap().clone();
        let again = test::TestRequest::get()
            .uri("/board/board.js")
            .insert_header((header::IF_NONE_MATCH, tag))
            .to_request();
        let again = test::call_service(&app, again).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(test::read_body(again).await.len(), 0);
    }
}
