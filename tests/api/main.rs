//! The integration test binary: spawns the real server on port 0 and drives it over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_recovery;
mod audit;
mod content;
mod content_verify;
mod crash;
mod defects;
mod district_month;
mod document_agreement;
mod documentation;
mod faulty_store;
mod harness;
mod idempotent_retries;
mod key_lifecycle;
mod lifecycle;
mod open311_and_audiences;
mod polls;
mod readiness;
mod refusals;
mod scale_out;
mod simulation;
mod snapshot;
mod streams_capped;
mod tampering;
mod tiles_checked;
mod truncated_tail;
