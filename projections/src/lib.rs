//! The pure core of veche: the signed-command protocol, the event vocabulary, the rules that decide
//! whether a command may be appended, and the folds that turn the log into every published number.
//!
//! Invariant: no IO, no clock, no randomness, no unordered iteration; the crate's `clippy.toml`
//! makes clippy refuse the types and functions that would bring them in. The server and `veche
//! verify` run this same code, so a recount can never disagree with the server by construction.

pub mod checkpoint;
pub mod command;
pub mod content;
pub mod credential;
pub mod keyed_map;
pub mod ledger;
pub mod limits;
pub mod merkle;
pub mod protocol;
pub mod replay;
pub mod statistics;
pub mod text;
pub mod tiles;
pub mod time;

pub use command::{Action, Command, Tally};
/// The complaint and proposal aggregates, at the paths clients have always named.
pub use ledger::{complaints, proposals};
pub use ledger::{Event, Ledger, Poll, PollStatus, Refusal};
pub use protocol::{Entry, EntryKind, Hash, PublicKey};
pub use replay::{ReplayError, ReplayFailure, Replayer, SealedEntry, SignedCommand};
pub use time::Timestamp;
