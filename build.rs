//! Sets `no_database` and `no_redis` when `DATABASE_URL` or `REDIS_URL` is unset, so the tests
//! that need PostgreSQL or Redis show as ignored, with the reason, instead of passing without
//! having run.
//!
//! Under `CI=true` neither cfg is ever set: there the tests run, and fail if the service is
//! missing.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(no_database)");
    println!("cargo:rustc-check-cfg=cfg(no_redis)");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CI");
    let in_ci = std::env::var("CI").as_deref() == Ok("true");
    for (variable, cfg) in [("DATABASE_URL", "no_database"), ("REDIS_URL", "no_redis")] {
        println!("cargo:rerun-if-env-changed={variable}");
        let set = std::env::var(variable).is_ok_and(|value| !value.is_empty());
        if !in_ci && !set {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
