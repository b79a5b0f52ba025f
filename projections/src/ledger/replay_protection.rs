//! Replay protection: a command is fresh (issued inside the freshness window around the server's
//! time) and its (author, nonce) pair was never appended before.
//!
//! Invariant: every (author, nonce) pair of the last `COMMAND_AGE_MS_MAX` is remembered; older
//! ones may be forgotten, because a command that old is refused as stale before its nonce is
//! looked at.

use std::collections::BTreeSet;

use sha2::Digest;

use super::event::Event;
use super::refusal::Refusal;
use crate::command::Command;
use crate::keyed_map::KeyedMap;
use crate::limits;
use crate::protocol::{EntryKind, PublicKey};
use crate::time::Timestamp;

/// The replay protection aggregate: the nonces seen inside the freshness window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayProtection {
    pub(super) nonces: NonceWindow,
}

impl ReplayProtection {
    /// Is `command`, in an entry of `kind` at `server_time`, fresh and never seen? System events
    /// carry the server's own time and are not checked for freshness.
    pub fn decide(
        &self,
        kind: EntryKind,
        command: &Command,
        server_time: Timestamp,
    ) -> Result<(), Refusal> {
        if kind == EntryKind::Command {
            if command.issued_at < server_time.plus_milliseconds(-limits::COMMAND_AGE_MS_MAX) {
                return Err(Refusal::StaleCommand);
            }
            if command.issued_at > server_time.plus_milliseconds(limits::COMMAND_FUTURE_MS_MAX) {
                return Err(Refusal::FutureCommand);
            }
        }
        if self.nonces.contains(command.author, &command.nonce) {
            return Err(Refusal::ReplayedNonce);
        }
        Ok(())
    }

    /// Remembers the event's nonce and forgets those that fell out of the window.
    pub fn evolve(&mut self, event: &Event) {
        let command = &event.command;
        self.nonces
            .insert(command.author, &command.nonce, command.issued_at);
        self.nonces.forget_before(
            event
                .server_time
                .plus_milliseconds(-limits::COMMAND_AGE_MS_MAX),
        );
    }
}

/// Nonces seen inside the freshness window. Older ones need not be kept: a command that old is
/// refused as stale before its nonce is looked at.
///
/// Each (author, nonce) pair is kept as the first 16 bytes of its SHA-256, not as a key and a
/// string: the window holds every command of the last minutes, which at ingest rates is millions
/// of pairs, and the digest cuts the memory for each from about 180 bytes to about 60. Two pairs
/// share a digest with probability about n^2 / 2^129 (n pairs in the window), and making another
/// author's pair collide with one's own is a 128-bit second-preimage search, so a refusal for a
/// reused nonce is still only ever earned by the author.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct NonceWindow {
    pub(super) seen: KeyedMap<NonceDigest, ()>,
    pub(super) by_issue_time: BTreeSet<(Timestamp, NonceDigest)>,
}

pub(super) type NonceDigest = [u8; 16];

fn nonce_digest(author: PublicKey, nonce: &str) -> NonceDigest {
    let digest = sha2::Sha256::new()
        .chain_update(author.0)
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&digest[..16]);
    prefix
}

impl NonceWindow {
    fn contains(&self, author: PublicKey, nonce: &str) -> bool {
        self.seen.contains_key(&nonce_digest(author, nonce))
    }

    pub(super) fn insert(&mut self, author: PublicKey, nonce: &str, issued_at: Timestamp) {
        let digest = nonce_digest(author, nonce);
        if self.seen.insert(digest, ()).is_none() {
            self.by_issue_time.insert((issued_at, digest));
        }
    }

    fn forget_before(&mut self, horizon: Timestamp) {
        while let Some(oldest) = self.by_issue_time.first() {
            if oldest.0 >= horizon {
                break;
            }
            if let Some((_, digest)) = self.by_issue_time.pop_first() {
                self.seen.remove(&digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_remembered_inside_the_window_and_forgotten_after_it() {
        let author = PublicKey([7; 32]);
        let other = PublicKey([8; 32]);
        let mut window = NonceWindow::default();
        window.insert(author, "00", Timestamp(1_000));
        window.insert(author, "01", Timestamp(2_000));
        assert!(window.contains(author, "00"));
        assert!(
            !window.contains(other, "00"),
            "a nonce belongs to its author"
        );
        window.forget_before(Timestamp(1_500));
        assert!(!window.contains(author, "00"));
        assert!(window.contains(author, "01"));
    }
}
