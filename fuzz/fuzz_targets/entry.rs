//! Checks that `Entry::decode` accepts exactly the well-formed layouts and that `encode()` gives
//! the same bytes back, and that strict and batch signature verification never panic and agree:
//! the batch accepts everything strict verification accepts and names the same failing entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use projections::limits::ENTRY_BYTES_MAX;
use projections::protocol::{self, verify_batch, Entry, EntryError, ENTRY_HEADER_BYTES};

fuzz_target!(|data: &[u8]| {
    let decoded = Entry::decode(data);
    check_decode_refusals(data, &decoded);
    let Ok(entry) = decoded else {
        return;
    };
    assert_eq!(
        entry.encode(),
        data,
        "encode() does not give back the decoded bytes"
    );
    check_batch_agrees_with_strict(&entry);

    // The same entry re-signed by the fixed key: every verifier must accept it.
    let key = veche_fuzz::signing_key();
    let mut signed = entry.clone();
    signed.signer = veche_fuzz::public_key();
    signed.signature = protocol::sign(&key, signed.kind, &signed.payload);
    assert_eq!(signed.verify_signature(), Ok(()));
    assert_eq!(verify_batch(&[&signed]), Ok(()));
    assert_eq!(Entry::decode(&signed.encode()).as_ref(), Ok(&signed));

    // A good entry before the fuzzed one: a failure must be pinned on the fuzzed one, index 1.
    let strict = entry.verify_signature();
    let pair = verify_batch(&[&signed, &entry]);
    match strict {
        Ok(()) => assert_eq!(
            pair,
            Ok(()),
            "the batch refused entries that verify one by one"
        ),
        Err(error) => {
            if let Err(failure) = pair {
                assert_eq!(
                    failure,
                    (1, error),
                    "the batch named the wrong entry or reason"
                );
            }
        }
    }
});

/// Decoding refuses exactly what the layout rules refuse, with that reason.
fn check_decode_refusals(data: &[u8], decoded: &Result<Entry, EntryError>) {
    let expected = if data.len() < ENTRY_HEADER_BYTES {
        Err(EntryError::TooShort {
            length_bytes: data.len(),
        })
    } else if data.len() > ENTRY_BYTES_MAX {
        Err(EntryError::TooLong {
            length_bytes: data.len(),
        })
    } else if data[0] != protocol::ENTRY_VERSION {
        Err(EntryError::UnknownVersion(data[0]))
    } else if !matches!(data[1], 1 | 2) {
        Err(EntryError::UnknownKind(data[1]))
    } else {
        Ok(())
    };
    assert_eq!(decoded.as_ref().map(|_| ()), expected.as_ref().map(|_| ()));
    if let (Err(actual), Err(expected)) = (decoded, expected) {
        assert_eq!(*actual, expected);
    }
}

/// One entry alone: batch and strict verification agree, except that the batch equation may
/// accept a signature whose `R` carries a small-order component (documented on `verify_batch`).
fn check_batch_agrees_with_strict(entry: &Entry) {
    let strict = entry.verify_signature();
    let batch = verify_batch(&[entry]);
    match (strict, batch) {
        (Ok(()), batch) => assert_eq!(batch, Ok(()), "batch refused a strictly valid entry"),
        (Err(error), Err(failure)) => assert_eq!(failure, (0, error)),
        (Err(_), Ok(())) => {}
    }
}
