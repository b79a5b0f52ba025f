//! veche-verifier: what a journalist installs to check a veche log, and what a citizen needs to
//! speak the protocol. It depends on `projections` and, behind the default `http` feature, on an
//! HTTP client; on nothing of the server.
//!
//! - `pipeline`: the one replay pipeline (read ahead, check in parallel, fold in order), which
//!   the server's start-up and snapshot audit run over their store as well;
//! - `verification`: the export reader, checkpoint and saved-state checks, the recount diff;
//! - `published` (http): the server reader; `served_content` (http): the server's content
//!   against the log's commitments and erasures;
//! - `envelope`, `keys`, `client`: the citizen side (signing, key files, sending commands);
//! - `credentials`, `wallet`: anonymous polls' credentials, and the wallet that keeps them;
//! - `open_data`: the open-data files rendered from a ledger, byte for byte as the server
//!   serves them, and a dump's check; `open_data_cli` (http): `veche open-data dump|verify`;
//! - `cli` (http): `veche verify`, shared by `veche-verify` and the server binary.

#[cfg(feature = "http")]
pub mod cli;
pub mod client;
pub mod credentials;
pub mod envelope;
pub mod keys;
pub mod open_data;
#[cfg(feature = "http")]
pub mod open_data_cli;
pub mod pipeline;
#[cfg(feature = "http")]
pub mod published;
#[cfg(feature = "http")]
pub mod served_content;
pub mod verification;
pub mod wallet;
