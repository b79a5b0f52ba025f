//! veche: a citizen-signed, hash-chained event log for city polls, served over HTTP.
//!
//! See `ARCHITECTURE.md` for the map. The pure rules live in the `projections` crate; this crate
//! holds the effects: storage, the writer thread, the clock, HTTP and the command-line client.

pub mod client;
pub mod clock;
pub mod coordination;
pub mod envelope;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod server;
pub mod signature_pool;
pub mod snapshot;
pub mod store;
pub mod transparency;
pub mod verification;
pub mod writer;
