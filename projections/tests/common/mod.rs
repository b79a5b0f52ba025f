//! Helpers shared by the integration tests: finding the public test data beside the checkout.

use std::path::PathBuf;

/// `../shared/testdata/<name>` beside the workspace root, or `None` (with the reason printed)
/// when it is absent on a developer machine. On CI (`CI=true`) the data must be there: a test
/// that silently skipped there would prove nothing.
pub fn testdata(name: &str) -> Option<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(name);
    if directory.is_dir() {
        return Some(directory);
    }
    let reason = format!(
        "the test data {} is absent; it lives in ../shared/testdata beside the checkout",
        directory.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}");
    }
    println!("skipped: {reason}");
    None
}
