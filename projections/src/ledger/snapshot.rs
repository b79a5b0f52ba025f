//! The ledger's snapshot form: one canonical byte string for everything the fold has built, so a
//! node can start from it and later prove, by folding the log again, that it is that fold.
//!
//! Canonical means equal ledgers give equal bytes: every collection walks in key order (hash maps
//! are `KeyedMap`s, which only iterate sorted). So a digest of the encoding compares two ledgers without holding both.
//!
//! Layout (integers little-endian, `varint` is unsigned LEB128):
//! - `u64` length, then the ledger as JSON without its three large collections (small, rich and
//!   rarely read: polls' definitions, complaints, proposals, the catalogue);
//! - keys: `u64` count, then per key in byte order: 32-byte key, `u64` registration position,
//!   `i64` registration time, `u32` length and JSON of its attestation (0: none); the roles,
//!   held by few keys, are in the ledger part with the grant each is held since;
//! - ballots: per poll in id order, `u64` count, then ascending voter positions as varint gaps,
//!   each followed by its choice set as a varint (about 2 bytes a ballot instead of 16);
//! - nonces: `u64` count, then in issue-time order the time as a varint gap after the previous
//!   (the first after `i64::MIN`) and the 16-byte digest.

use super::keys::{KeyRecord, KeyStanding};
use super::polls::ChoiceSet;
use super::replay_protection::{NonceDigest, NonceWindow};
use super::Ledger;
use crate::keyed_map::KeyedMap;
use crate::protocol::PublicKey;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum SnapshotError {
    #[error("the snapshot ends early, in its {0}")]
    Truncated(&'static str),
    #[error("the snapshot's ledger part does not read: {0}")]
    Json(String),
    #[error("the snapshot's {0} are not in canonical order")]
    NotCanonical(&'static str),
    #[error("the snapshot has {0} bytes after its end")]
    TrailingBytes(usize),
}

/// The SHA-256 of `ledger`'s canonical snapshot form: what an `attest_state` entry names, and
/// what a start-up snapshot's ledger part must hash to for the log to prove it.
/// Streamed through the hash a block at a time: a replay computes one at every `mark_state`,
/// and the encoding of millions of ballots must not cost their size in memory again.
pub fn digest(ledger: &Ledger) -> crate::protocol::Hash {
    use sha2::Digest;
    let mut hashing = Hashing {
        hasher: sha2::Sha256::new(),
        block: Vec::with_capacity(crate::limits::STATE_DIGEST_BLOCK_BYTES),
    };
    encode_into(ledger, &mut hashing);
    hashing.hasher.update(&hashing.block);
    hashing.hasher.finalize().into()
}

/// Where the encoder writes: a byte vector, or the hash of `digest`.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct Hashing {
    hasher: sha2::Sha256,
    block: Vec<u8>,
}

impl Sink for Hashing {
    fn put(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.block.extend_from_slice(bytes);
        if self.block.len() >= crate::limits::STATE_DIGEST_BLOCK_BYTES {
            self.hasher.update(&self.block);
            self.block.clear();
        }
    }
}

/// Writes `ledger` in its canonical snapshot form.
pub fn encode(ledger: &Ledger, out: &mut Vec<u8>) {
    encode_into(ledger, out);
}

fn encode_into(ledger: &Ledger, out: &mut impl Sink) {
    let small = plain_json(ledger);
    put_u64(out, small.len() as u64);
    out.put(&small);

    put_u64(out, ledger.keys.len() as u64);
    // `KeyedMap` walks in key order: the canonical order needs no sort here.
    for (key, record) in ledger.keys.iter() {
        out.put(&key.0);
        put_u64(out, record.registered_at_position);
        out.put(&record.registered_at.0.to_le_bytes());
        let standing = record
            .standing
            .as_deref()
            .map(plain_json)
            .unwrap_or_default();
        out.put(&(standing.len() as u32).to_le_bytes());
        out.put(&standing);
    }

    for poll in ledger.polls.values() {
        put_u64(out, poll.ballots.len() as u64);
        let mut previous = 0;
        for (&voter, &choices) in poll.ballots.iter() {
            put_varint(out, voter - previous);
            put_varint(out, choices.0);
            previous = voter;
        }
    }

    let nonces = &ledger.replay.nonces.by_issue_time;
    put_u64(out, nonces.len() as u64);
    let mut previous = i64::MIN;
    for (issued_at, digest) in nonces {
        put_varint(out, issued_at.0.wrapping_sub(previous) as u64);
        out.put(digest);
        previous = issued_at.0;
    }
}

/// Serialises plain data whose map keys are all strings or numbers, which cannot fail: a failure
/// is a bug in a type's `Serialize`, not a state a snapshot can be in.
fn plain_json<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(json) => json,
        Err(error) => unreachable!("plain ledger data failed to serialise as JSON: {error}"),
    }
}

/// Reads JSON that must be exactly what [`plain_json`] writes for the value it parses to, so that
/// whitespace, member order, unknown members or escapes cannot give two byte strings for one ledger.
fn canonical_json<T>(json: &[u8], part: &'static str) -> Result<T, SnapshotError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let value: T =
        serde_json::from_slice(json).map_err(|error| SnapshotError::Json(error.to_string()))?;
    if plain_json(&value) != json {
        return Err(SnapshotError::NotCanonical(part));
    }
    Ok(value)
}

/// Reads a ledger written by [`encode`]; refuses anything [`encode`] could not have written.
pub fn decode(bytes: &[u8]) -> Result<Ledger, SnapshotError> {
    let mut reader = Reader { bytes, offset: 0 };
    let small_length = reader.length("ledger part")?;
    let small = reader.take(small_length, "ledger part")?;
    let mut ledger: Ledger = canonical_json(small, "ledger part")?;

    ledger.keys.records = read_keys(&mut reader)?;
    read_ballots(&mut reader, &mut ledger)?;
    ledger.replay.nonces = read_nonces(&mut reader)?;
    ledger.rebuild_deadlines();

    let left = reader.bytes.len() - reader.offset;
    if left != 0 {
        return Err(SnapshotError::TrailingBytes(left));
    }
    Ok(ledger)
}

/// The key records, ascending by key.
fn read_keys(reader: &mut Reader<'_>) -> Result<KeyedMap<PublicKey, KeyRecord>, SnapshotError> {
    let key_count = reader.count(32 + 8 + 8 + 4, "keys")?;
    let mut keys = KeyedMap::with_capacity(key_count);
    let mut previous: Option<PublicKey> = None;
    for _ in 0..key_count {
        let key = PublicKey(reader.array("keys")?);
        if previous.is_some_and(|previous| previous >= key) {
            return Err(SnapshotError::NotCanonical("keys"));
        }
        previous = Some(key);
        let registered_at_position = reader.u64("keys")?;
        let registered_at = Timestamp(i64::from_le_bytes(reader.array("keys")?));
        let standing_length = u32::from_le_bytes(reader.array("keys")?) as usize;
        let standing = if standing_length == 0 {
            None
        } else {
            let json = reader.take(standing_length, "keys")?;
            let standing: KeyStanding = canonical_json(json, "keys")?;
            Some(Box::new(standing))
        };
        keys.insert(
            key,
            KeyRecord {
                registered_at_position,
                registered_at,
                standing,
            },
        );
    }
    Ok(keys)
}

/// Each poll's ballots, in the order of the polls in the ledger part.
fn read_ballots(reader: &mut Reader<'_>, ledger: &mut Ledger) -> Result<(), SnapshotError> {
    for poll in ledger.polls.0.values_mut() {
        let count = reader.count(2, "ballots")?;
        let mut ballots = KeyedMap::with_capacity(count);
        let mut voter = 0u64;
        for index in 0..count {
            let gap = reader.varint("ballots")?;
            if index > 0 && gap == 0 {
                return Err(SnapshotError::NotCanonical("ballots"));
            }
            voter = voter
                .checked_add(gap)
                .ok_or(SnapshotError::NotCanonical("ballots"))?;
            ballots.insert(voter, ChoiceSet(reader.varint("ballots")?));
        }
        poll.ballots = ballots;
    }

    Ok(())
}

/// The replay-protection window, ascending by issue time.
fn read_nonces(reader: &mut Reader<'_>) -> Result<NonceWindow, SnapshotError> {
    let nonce_count = reader.count(1 + 16, "nonces")?;
    let mut window = NonceWindow::default();
    window.seen.reserve(nonce_count);
    // Collected in order and then built in one pass: inserting millions one by one into the
    // ordered set takes several times longer.
    let mut by_issue_time = Vec::with_capacity(nonce_count);
    let mut previous = i64::MIN;
    let mut previous_entry: Option<(Timestamp, NonceDigest)> = None;
    for _ in 0..nonce_count {
        let issued_at = previous.wrapping_add(reader.varint("nonces")? as i64);
        let digest: NonceDigest = reader.array("nonces")?;
        let entry = (Timestamp(issued_at), digest);
        // The encoder writes the set in its order, (time, digest) ascending: digests that share
        // an issue time in any other order would decode to the same ledger from other bytes.
        let ascending = previous_entry.is_none_or(|before| before < entry);
        if issued_at < previous || !ascending || window.seen.insert(digest, ()).is_some() {
            return Err(SnapshotError::NotCanonical("nonces"));
        }
        by_issue_time.push(entry);
        previous_entry = Some(entry);
        previous = issued_at;
    }
    window.by_issue_time = by_issue_time.into_iter().collect();
    Ok(window)
}

fn put_u64(out: &mut impl Sink, value: u64) {
    out.put(&value.to_le_bytes());
}

fn put_varint(out: &mut impl Sink, mut value: u64) {
    let mut bytes = [0u8; 10];
    let mut length = 0;
    while value >= 0x80 {
        bytes[length] = (value as u8) | 0x80;
        value >>= 7;
        length += 1;
    }
    bytes[length] = value as u8;
    out.put(&bytes[..=length]);
}

struct Reader<'bytes> {
    bytes: &'bytes [u8],
    offset: usize,
}

impl<'bytes> Reader<'bytes> {
    fn take(&mut self, length: usize, part: &'static str) -> Result<&'bytes [u8], SnapshotError> {
        let end = self
            .offset
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(SnapshotError::Truncated(part))?;
        let taken = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, part: &'static str) -> Result<[u8; N], SnapshotError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N, part)?);
        Ok(array)
    }

    fn u64(&mut self, part: &'static str) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array(part)?))
    }

    fn length(&mut self, part: &'static str) -> Result<usize, SnapshotError> {
        usize::try_from(self.u64(part)?).map_err(|_| SnapshotError::Truncated(part))
    }

    /// A count of items at least `item_bytes_min` long each, refused when the bytes left could not
    /// hold that many (so a corrupt count cannot ask for a huge allocation).
    fn count(&mut self, item_bytes_min: usize, part: &'static str) -> Result<usize, SnapshotError> {
        let count = self.length(part)?;
        let left = self.bytes.len() - self.offset;
        if count.saturating_mul(item_bytes_min) > left {
            return Err(SnapshotError::Truncated(part));
        }
        Ok(count)
    }

    fn varint(&mut self, part: &'static str) -> Result<u64, SnapshotError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array::<1>(part)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(SnapshotError::NotCanonical(part));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                // A last byte of zero after others adds nothing: `put_varint` never writes one,
                // and accepting it would give one number several encodings.
                if byte == 0 && shift > 0 {
                    return Err(SnapshotError::NotCanonical(part));
                }
                return Ok(value);
            }
        }
        Err(SnapshotError::NotCanonical(part))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Role;
    use crate::ledger::keys::{Grant, HeldRole};

    fn sample_ledger(reverse: bool) -> Ledger {
        let mut ledger = Ledger::new();
        ledger.size = 42;
        ledger.head_hash = [9; 32];
        ledger.last_server_time = Timestamp(1_795_428_000_000);
        let mut order: Vec<u8> = (1..=20).collect();
        if reverse {
            order.reverse();
        }
        for byte in &order {
            let mut record = KeyRecord::new(u64::from(*byte), Timestamp(i64::from(*byte) * 1_000));
            if byte % 5 == 0 {
                let held = HeldRole {
                    department: Some("roads".into()),
                    granted: Grant {
                        position: u64::from(*byte) + 100,
                        server_time: Timestamp(i64::from(*byte) * 2_000),
                    },
                };
                let roles = ledger.keys.roles.entry(PublicKey([*byte; 32])).or_default();
                roles.insert(Role::Official, held);
                let standing = record.standing_mut();
                standing.district = Some("north".into());
                standing.verified = true;
            }
            if byte % 10 == 0 {
                // A resident whose first key (20) was revoked and whose second (10) is active.
                let tag = "ab".repeat(32);
                let standing = record.standing_mut();
                standing.resident_tag = Some(tag.clone());
                standing.revoked = *byte == 20;
                standing.verified = *byte != 20;
                let resident = crate::ledger::keys::Resident {
                    number: 20,
                    active_key: Some(PublicKey([10; 32])),
                };
                ledger.keys.residents.insert(tag, resident);
            }
            ledger.keys.records.insert(PublicKey([*byte; 32]), record);
            ledger.replay.nonces.insert(
                PublicKey([*byte; 32]),
                &format!("{byte:032x}"),
                Timestamp(-5_000 + i64::from(*byte % 3)),
            );
        }
        ledger
    }

    #[test]
    fn the_streamed_digest_is_the_sha256_of_the_encoding_across_many_blocks() {
        use sha2::Digest;
        let mut ledger = sample_ledger(false);
        // About 260 KB of key records: several of the digest's blocks, and a partial last one.
        for number in 0..5_000u64 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&number.to_be_bytes());
            key[31] = 0xff;
            let record = KeyRecord::new(100 + number, Timestamp(number as i64));
            ledger.keys.records.insert(PublicKey(key), record);
        }
        let mut bytes = Vec::new();
        encode(&ledger, &mut bytes);
        assert!(
            bytes.len() > 3 * crate::limits::STATE_DIGEST_BLOCK_BYTES,
            "{} bytes",
            bytes.len()
        );
        let whole: crate::protocol::Hash = sha2::Sha256::digest(&bytes).into();
        assert_eq!(digest(&ledger), whole);
        assert_eq!(digest(&sample_ledger(false)), {
            let mut small = Vec::new();
            encode(&sample_ledger(false), &mut small);
            <[u8; 32]>::from(sha2::Sha256::digest(&small))
        });
    }

    #[test]
    fn a_snapshot_reads_back_as_the_ledger_that_wrote_it() {
        let ledger = sample_ledger(false);
        let mut bytes = Vec::new();
        encode(&ledger, &mut bytes);
        assert_eq!(decode(&bytes), Ok(ledger));
    }

    #[test]
    fn a_corrected_poll_reads_back_with_every_version_and_its_voided_count() {
        use crate::ledger::polls::corrections::tests::corrected;
        use crate::ledger::polls::ChoiceSet;
        let mut poll = corrected(|definition| definition.options.push("Library".into()));
        // A ballot cast for the new options after the correction, in the packed ballots part.
        poll.ballots.insert(30, ChoiceSet::of(&[2]));
        poll.tally.counts = vec![0, 0, 1];
        poll.tally.turnout = 1;
        let mut ledger = sample_ledger(false);
        ledger.polls.forge().insert(poll.id, poll);
        let mut bytes = Vec::new();
        encode(&ledger, &mut bytes);
        let read = decode(&bytes).expect("the snapshot reads back");
        // Decoding rebuilds the deadlines from the polls, which this hand-made ledger lacks.
        assert_eq!(read.polls, ledger.polls);
        assert_eq!(read.polls[&4].versions().len(), 2);
        assert_eq!(read.polls[&4].tally.voided_ballots, 3);
    }

    #[test]
    fn equal_ledgers_built_in_different_orders_give_the_same_bytes() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        encode(&sample_ledger(false), &mut first);
        encode(&sample_ledger(true), &mut second);
        assert_eq!(first, second);
    }

    #[test]
    fn every_truncation_and_an_appended_byte_are_refused() {
        let mut bytes = Vec::new();
        encode(&sample_ledger(false), &mut bytes);
        for length in 0..bytes.len() {
            assert!(
                decode(&bytes[..length]).is_err(),
                "a snapshot cut to {length} of {} bytes was read",
                bytes.len()
            );
        }
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(SnapshotError::TrailingBytes(1)));
    }

    #[test]
    fn varints_round_trip_at_their_boundaries() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::MAX / 2, u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            let mut reader = Reader {
                bytes: &bytes,
                offset: 0,
            };
            assert_eq!(reader.varint("test"), Ok(value));
            assert_eq!(reader.offset, bytes.len());
        }
    }

    #[test]
    fn an_overlong_varint_is_refused_as_not_canonical() {
        // 0 as two bytes, 1 as three, 127 padded with a zero byte, and 2^63 with a spare bit.
        let overlong: [&[u8]; 4] = [
            &[0x80, 0x00],
            &[0x81, 0x80, 0x00],
            &[0xff, 0x00],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02],
        ];
        for bytes in overlong {
            let mut reader = Reader { bytes, offset: 0 };
            assert_eq!(
                reader.varint("test"),
                Err(SnapshotError::NotCanonical("test")),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn a_ledger_part_that_is_not_the_canonical_json_is_refused() {
        let mut bytes = Vec::new();
        encode(&sample_ledger(false), &mut bytes);
        let small_length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        // The same ledger with a space before its first member: it parses, but writes back
        // without the space.
        let mut spaced = Vec::new();
        spaced.extend_from_slice(&(small_length as u64 + 1).to_le_bytes());
        spaced.push(b'{');
        spaced.push(b' ');
        spaced.extend_from_slice(&bytes[9..]);
        assert_eq!(
            decode(&spaced),
            Err(SnapshotError::NotCanonical("ledger part"))
        );
    }
}
