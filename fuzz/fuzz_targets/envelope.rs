//! Checks that arbitrary HTTP bodies never panic `Envelope` parsing and `open()`, that a parsed
//! command survives `to_payload()` and a second parse unchanged (and so do its timestamps and
//! coordinates on their own), and that a payload signed by the fixed key opens exactly when it
//! parses and names that key as its author.
#![no_main]

use libfuzzer_sys::fuzz_target;
use projections::command::{Degrees, ParseError};
use projections::protocol::{self, EntryKind};
use projections::{Command, Timestamp};
use veche::envelope::{Envelope, EnvelopeError};

fuzz_target!(|data: &[u8]| {
    envelope_body(data);
    payload_round_trip(data);
    payload_signed_by_the_fixed_key(data);
    timestamp_round_trip(data);
    degrees_round_trip(data);
});

/// The bytes as the JSON body of a write request.
fn envelope_body(data: &[u8]) {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    // What the server would answer with must read back as the same envelope.
    let written = serde_json::to_vec(&envelope).unwrap_or_default();
    assert_eq!(
        serde_json::from_slice::<Envelope>(&written).ok().as_ref(),
        Some(&envelope),
        "an envelope does not survive being written and read again"
    );
    let parsed = Command::parse(envelope.payload.as_bytes());
    match envelope.clone().open() {
        Ok(signed) => {
            assert_eq!(parsed.as_ref(), Ok(&signed.command));
            assert_eq!(signed.kind, EntryKind::Command);
            assert_eq!(signed.signer, signed.command.author);
            assert_eq!(signed.payload, envelope.payload.as_bytes());
            assert_eq!(
                protocol::verify_strict(
                    signed.signer,
                    &protocol::signed_message(EntryKind::Command, &signed.payload),
                    &signed.signature,
                ),
                Ok(()),
                "open() accepted a signature that strict verification refuses"
            );
        }
        Err(EnvelopeError::Payload(error)) => assert_eq!(parsed, Err(error)),
        Err(_) => {}
    }
}

/// The bytes as a command payload: parse, write canonically, parse again.
fn payload_round_trip(data: &[u8]) {
    let Ok(command) = Command::parse(data) else {
        return;
    };
    let canonical = command.to_payload();
    let reparsed = Command::parse(&canonical);
    assert_eq!(
        reparsed.as_ref(),
        Ok(&command),
        "the canonical payload {:?} does not parse back to the command",
        String::from_utf8_lossy(&canonical)
    );
    assert_eq!(
        command.to_payload(),
        canonical,
        "writing the same command twice gives different bytes"
    );
}

/// The bytes as a payload, signed by the fixed key and opened like a request.
fn payload_signed_by_the_fixed_key(data: &[u8]) {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    if payload.len() > projections::limits::PAYLOAD_BYTES_MAX {
        return;
    }
    let key = veche_fuzz::signing_key();
    let signature = protocol::sign(&key, EntryKind::Command, data);
    let envelope = Envelope {
        payload: payload.to_owned(),
        signature: hex_of(&signature),
        content: Vec::new(),
    };
    let parsed: Result<Command, ParseError> = Command::parse(data);
    let opened = envelope.open();
    match parsed {
        Ok(command) if command.author == veche_fuzz::public_key() => {
            assert_eq!(
                opened.map(|signed| signed.command),
                Ok(command),
                "a payload the author really signed does not open"
            );
        }
        Ok(_) => assert!(
            opened.is_err(),
            "a payload signed by one key opened under another author"
        ),
        Err(error) => assert_eq!(opened.map(|_| ()), Err(EnvelopeError::Payload(error))),
    }
}

/// The bytes as the RFC 3339 text of `issued_at`, `opens_at` or `closes_at`.
fn timestamp_round_trip(data: &[u8]) {
    let Some(moment) = std::str::from_utf8(data)
        .ok()
        .and_then(Timestamp::parse_rfc3339)
    else {
        return;
    };
    let written = moment.to_rfc3339();
    assert_eq!(
        Timestamp::parse_rfc3339(&written),
        Some(moment),
        "the timestamp {moment:?} is written as {written:?}, which does not read back"
    );
}

/// The bytes as a latitude or longitude in a complaint's location.
fn degrees_round_trip(data: &[u8]) {
    let Ok(degrees) = serde_json::from_slice::<Degrees>(data) else {
        return;
    };
    let written = serde_json::to_string(&degrees).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Degrees>(&written).ok(),
        Some(degrees),
        "{} degrees are written as {written}, which reads back as another number",
        degrees.0
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
