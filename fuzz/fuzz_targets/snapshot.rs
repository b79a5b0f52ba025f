//! Checks that reading a ledger snapshot never panics or over-allocates on any bytes, and that
//! whatever it accepts is canonical: written back, it gives exactly the bytes that were read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use projections::ledger::snapshot::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(ledger) = decode(data) else {
        return;
    };
    let mut again = Vec::new();
    encode(&ledger, &mut again);
    // One ledger, one byte string: a digest of the snapshot then names the fold it holds.
    assert!(
        again == data,
        "an accepted snapshot writes back to different bytes ({} read, {} written)",
        data.len(),
        again.len()
    );
});
