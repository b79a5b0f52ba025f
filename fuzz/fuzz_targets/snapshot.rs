//! Checks that reading a ledger snapshot never panics or over-allocates on any bytes, and that
//! whatever it accepts writes back to bytes that read as the same ledger.
#![no_main]

use libfuzzer_sys::fuzz_target;
use projections::ledger::snapshot::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(ledger) = decode(data) else {
        return;
    };
    let mut again = Vec::new();
    encode(&ledger, &mut again);
    assert_eq!(
        decode(&again).as_ref(),
        Ok(&ledger),
        "a snapshot written from a read ledger reads back differently"
    );
});
