//! veche: a citizen-signed, hash-chained event log for city polls, served over HTTP.
//!
//! See `ARCHITECTURE.md` for the map. The pure rules live in the `projections` crate; this crate
//! holds the effects: storage, the writer thread, the clock, HTTP and the command-line client.

pub mod clock;
pub mod co_issuer;
pub mod coordination;
pub mod gateway;
pub mod http;
pub mod issuer;
pub mod metrics;
pub mod migration;
pub mod node;
pub mod open_data;
pub mod registrar;
pub mod server;
pub mod signature_pool;
pub mod snapshot;
pub mod store;
pub mod transparency;
pub mod writer;

// The citizen side and the journalist's check live in the verifier crate, which a journalist
// installs without the server; the server speaks through the same code.
pub use veche_verifier::{client, envelope, keys, verification};
