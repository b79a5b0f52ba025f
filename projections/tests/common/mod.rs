//! Helpers shared by the integration tests: finding the public test data beside the checkout.

use std::path::PathBuf;

/// `../shared/testdata/<name>` beside the workspace root. The tests that read it are compiled as
/// ignored when the data is absent (see `projections/build.rs`), so reaching this without it
/// (under `CI=true`, or after the data was removed) is a failure: a test that silently skipped
/// would prove nothing.
pub fn testdata(name: &str) -> PathBuf {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(name);
    assert!(
        directory.is_dir(),
        "the test data {} is absent; it lives in ../shared/testdata beside the checkout",
        directory.display()
    );
    directory
}
