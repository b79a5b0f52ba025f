//! The OpenAPI document: generated from the code, served, committed, and browsable offline.

use crate::harness::TestApp;

const COMMITTED: &str = "openapi/openapi.json";

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    let generated = veche::http::openapi_json();
    if std::env::var_os("VECHE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} has drifted from the code; regenerate it with \
         `VECHE_UPDATE_OPENAPI=1 cargo test --test api the_committed_openapi_document_matches_the_code`"
    );
    let document: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[actix_web::test]
async fn the_served_openapi_document_is_the_generated_one_and_the_docs_ui_needs_no_network() {
    let app = TestApp::fresh().await;
    let served = app.get("/openapi.json").await;
    assert_eq!(served.status, 200);
    let generated: serde_json::Value = serde_json::from_str(&veche::http::openapi_json()).unwrap();
    assert_eq!(served.body, generated);

    let page = app.get_response("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no remote assets: {html}"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let response = app.get_response(&format!("/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset} is served from the binary");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("cdn.jsdelivr") && !body.contains("unpkg.com"),
            "{asset}"
        );
    }
    let initializer = app.get("/docs/swagger-initializer.js").await;
    let initializer = initializer
        .body
        .as_str()
        .expect("the initializer is a script, not JSON");
    assert!(
        initializer.contains(r#""validatorUrl": "none""#)
            || initializer.contains(r#""validatorUrl":"none""#),
        "the validator badge is off: {initializer}"
    );
    assert!(
        !initializer.contains("validator.swagger.io"),
        "{initializer}"
    );
    app.stop().await;
}
