//! Sets `projections_no_testdata` when the shared test vectors are absent, so the tests that read
//! them show as ignored, with the reason, instead of passing without having run.
//!
//! The vectors live in `shared/testdata` beside the checkout. Under `CI=true` the cfg is never
//! set: there the tests run, and fail if the data is missing.

// The build script runs in cargo, before and outside the fold: reading the environment and the
// file system is its whole job, so the crate's purity lints do not apply to it.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rustc-check-cfg=cfg(projections_no_testdata)");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let beside_checkout = manifest.join("../..");
    let shared = beside_checkout.join("shared");
    let testdata = shared.join("testdata");
    watch(&testdata, &shared);
    let in_ci = std::env::var("CI").as_deref() == Ok("true");
    if !in_ci && !testdata.is_dir() {
        println!("cargo:rustc-cfg=projections_no_testdata");
    }
}

/// Asks cargo to run this script again when the data appears or changes. A path that does not
/// exist would rerun it (and rebuild the crate) on every build, and the checkout's parent would
/// be scanned with the whole checkout in it; so with no `shared` directory at all, only editing
/// this file (`touch projections/build.rs`) recomputes the cfg.
fn watch(testdata: &Path, shared: &Path) {
    if testdata.is_dir() {
        println!("cargo:rerun-if-changed={}", testdata.display());
    } else if shared.is_dir() {
        println!("cargo:rerun-if-changed={}", shared.display());
    }
}
