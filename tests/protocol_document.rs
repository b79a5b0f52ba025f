//! Keeps `docs/PROTOCOL.md` true: every worked example, limit, endpoint and problem type in it is
//! read from the document at test time and recomputed with the project's own code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use actix_web::body::MessageBody;
use actix_web::ResponseError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use projections::command::{
    Audience, CastBallot, CheckpointReference, ChoiceKind, ClosePoll, Genesis, ParseError,
    PollDefinition, RegisterKey, Role, RoleChange, TallyVisibility,
};
use projections::protocol::{
    entry_hash, public_key_of, signed_message, SignatureError, COMMAND_DOMAIN, ENTRY_HEADER_BYTES,
    GENESIS_PREVIOUS_HASH, SYSTEM_DOMAIN,
};
use projections::replay::seal;
use projections::{
    limits, Action, Command, Entry, EntryKind, Ledger, PublicKey, Refusal, Replayer, SealedEntry,
    SignedCommand, Tally, Timestamp,
};
use sha2::{Digest, Sha256};
use veche::envelope::{sign_system, Envelope, EnvelopeError};
use veche::http::problem::ApiError;
use veche::node::CommandError;
use veche::writer::SubmitError;

const DOCUMENT: &str = "docs/PROTOCOL.md";

// ---------------------------------------------------------------------------------------------
// Reading the document
// ---------------------------------------------------------------------------------------------

/// The document's text and its marked code blocks: a fence whose info string carries `id=<name>`.
struct Document {
    text: String,
    blocks: BTreeMap<String, String>,
    /// Block ids in the order they appear.
    order: Vec<String>,
}

fn document() -> Document {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOCUMENT);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let mut blocks = BTreeMap::new();
    let mut order = Vec::new();
    // The id of the block being read (empty for an unmarked block) and its lines so far.
    let mut open: Option<(String, Vec<&str>)> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match open.take() {
            // The end of an unmarked block: nothing to keep.
            Some((id, _)) if fence && id.is_empty() => {}
            Some((id, lines)) if fence => {
                let previous = blocks.insert(id.clone(), lines.join("\n"));
                assert!(
                    previous.is_none(),
                    "block id={id} appears twice in {DOCUMENT}"
                );
                order.push(id);
            }
            Some((id, mut lines)) => {
                lines.push(line);
                open = Some((id, lines));
            }
            None if fence => {
                let id = line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("id="))
                    .unwrap_or("");
                open = Some((id.to_string(), Vec::new()));
            }
            None => {}
        }
    }
    assert!(open.is_none(), "{DOCUMENT} ends inside a code block");
    Document {
        text,
        blocks,
        order,
    }
}

impl Document {
    /// The block's exact text, without the newline before the closing fence.
    fn block(&self, id: &str) -> &str {
        self.blocks
            .get(id)
            .unwrap_or_else(|| panic!("{DOCUMENT} has no block marked id={id}"))
    }

    /// A hexadecimal block: whitespace (line wrapping) is ignored, letters must be lowercase.
    fn hex(&self, id: &str) -> Vec<u8> {
        let digits: String = self
            .block(id)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(
            !digits.bytes().any(|byte| byte.is_ascii_uppercase()),
            "block id={id} must be lowercase hexadecimal"
        );
        hex::decode(&digits).unwrap_or_else(|error| panic!("block id={id} is not hex: {error}"))
    }

    fn hex_array<const N: usize>(&self, id: &str) -> [u8; N] {
        let bytes = self.hex(id);
        bytes
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("block id={id} is {} bytes, not {N}", bytes.len()))
    }

    fn json(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(self.block(id))
            .unwrap_or_else(|error| panic!("block id={id} is not JSON: {error}"))
    }

    /// A block of `name value` lines.
    fn pairs(&self, id: &str) -> Vec<(String, String)> {
        self.block(id)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next().unwrap_or_default().to_string();
                let value = words.collect::<Vec<_>>().join(" ");
                (name, value)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The worked examples, built from first principles
// ---------------------------------------------------------------------------------------------

const CITIZEN_SEED: [u8; 32] = [0x01; 32];
const OFFICIAL_SEED: [u8; 32] = [0x02; 32];
const SERVER_SEED: [u8; 32] = [0x03; 32];
const ADMIN_SEED: [u8; 32] = [0x04; 32];

fn key(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn command(seed: [u8; 32], nonce: &str, issued_at: &str, action: Action) -> Command {
    Command {
        author: public_key_of(&key(seed)),
        nonce: nonce.into(),
        issued_at: at(issued_at),
        action,
    }
}

fn genesis() -> Command {
    command(
        SERVER_SEED,
        "00000000000000000000000000000000",
        "2026-11-23T09:58:00.000Z",
        Action::Genesis(Genesis {
            log_origin: "veche.example.city/log".into(),
            admin_keys: vec![public_key_of(&key(ADMIN_SEED))],
            recovery: None,
        }),
    )
}

/// The key of `seed` registering itself, with `nonce` at `issued_at`.
fn registers(seed: [u8; 32], nonce: &str, issued_at: &str) -> Command {
    command(seed, nonce, issued_at, Action::RegisterKey(RegisterKey {}))
}

fn citizen_registers() -> Command {
    let nonce = "000102030405060708090a0b0c0d0e0f";
    registers(CITIZEN_SEED, nonce, "2026-11-23T10:00:00.000Z")
}

/// Not a documented example: the document only says the official registers "the same way".
fn official_registers() -> Command {
    let nonce = "101112131415161718191a1b1c1d1e1f";
    registers(OFFICIAL_SEED, nonce, "2026-11-23T10:01:00.000Z")
}

fn admin_grants_official() -> Command {
    let grant = Action::GrantRole(RoleChange {
        subject: public_key_of(&key(OFFICIAL_SEED)),
        role: Role::Official,
        department: Some("Transport".into()),
    });
    let nonce = "202122232425262728292a2b2c2d2e2f";
    command(ADMIN_SEED, nonce, "2026-11-23T10:02:00.000Z", grant)
}

fn official_opens_poll() -> Command {
    let nonce = "303132333435363738393a3b3c3d3e3f";
    command(
        OFFICIAL_SEED,
        nonce,
        "2026-11-23T10:03:00.000Z",
        Action::OpenPoll(PollDefinition {
            title: "Where should the new bike lane go?".into(),
            description: "Consultative poll — the Transport department publishes its answer."
                .into(),
            options: vec![
                "Riverside Avenue".into(),
                "Market Street".into(),
                "Station Road".into(),
            ],
            choice_kind: ChoiceKind::SingleChoice,
            max_choices: 1,
            audience: Audience::Everyone,
            opens_at: at("2026-11-23T10:00:00.000Z"),
            closes_at: at("2026-11-30T18:00:00.000Z"),
            vote_changes_allowed: true,
            tally_visibility: TallyVisibility::Public,
            anonymous: None,
        }),
    )
}

fn citizen_votes() -> Command {
    let ballot = Action::CastBallot(CastBallot {
        version: None,
        poll: 4,
        choices: vec![1],
    });
    let nonce = "404142434445464748494a4b4c4d4e4f";
    command(CITIZEN_SEED, nonce, "2026-11-23T10:07:30.000Z", ballot)
}

/// A documented client command: its block-id stem, its author's seed and its meaning.
fn client_examples() -> Vec<(&'static str, [u8; 32], Command)> {
    vec![
        ("register", CITIZEN_SEED, citizen_registers()),
        ("grant", ADMIN_SEED, admin_grants_official()),
        ("open-poll", OFFICIAL_SEED, official_opens_poll()),
        ("ballot", CITIZEN_SEED, citizen_votes()),
    ]
}

/// `command` signed by the key of `seed` and opened again, as the server receives it.
fn signed(seed: [u8; 32], command: &Command) -> SignedCommand {
    Envelope::sign(&key(seed), command).open().unwrap()
}

const GENESIS_SERVER_TIME: &str = "2026-11-23T09:58:00.000Z";
const REGISTER_SERVER_TIME: &str = "2026-11-23T10:00:01.250Z";

/// The log the examples tell: genesis, the citizen's key, the official's key, the grant, the
/// poll and the ballot, each sealed by the same code the writer runs.
fn story() -> Vec<SealedEntry> {
    let steps: Vec<(SignedCommand, &str)> = vec![
        (
            sign_system(&key(SERVER_SEED), genesis()),
            GENESIS_SERVER_TIME,
        ),
        (
            signed(CITIZEN_SEED, &citizen_registers()),
            REGISTER_SERVER_TIME,
        ),
        (
            signed(OFFICIAL_SEED, &official_registers()),
            "2026-11-23T10:01:00.300Z",
        ),
        (
            signed(ADMIN_SEED, &admin_grants_official()),
            "2026-11-23T10:02:00.200Z",
        ),
        (
            signed(OFFICIAL_SEED, &official_opens_poll()),
            "2026-11-23T10:03:00.500Z",
        ),
        (
            signed(CITIZEN_SEED, &citizen_votes()),
            "2026-11-23T10:07:30.400Z",
        ),
    ];
    let mut ledger = Ledger::new();
    let mut sealed = Vec::new();
    for (signed, server_time) in steps {
        let action = signed.command.action.name();
        let entry = seal(&ledger, signed, at(server_time))
            .unwrap_or_else(|refusal| panic!("the example {action} is refused: {refusal}"));
        ledger.evolve(&entry.event);
        sealed.push(entry);
    }
    sealed
}

// ---------------------------------------------------------------------------------------------
// Keys, prefixes and limits
// ---------------------------------------------------------------------------------------------

#[test]
fn the_documented_public_keys_derive_from_the_documented_seeds() {
    let doc = document();
    for (name, seed) in [
        ("citizen", CITIZEN_SEED),
        ("official", OFFICIAL_SEED),
        ("server", SERVER_SEED),
        ("admin", ADMIN_SEED),
    ] {
        let documented_seed: [u8; 32] = doc.hex_array(&format!("example-{name}-seed"));
        assert_eq!(documented_seed, seed, "the {name} seed");
        let documented_key: [u8; 32] = doc.hex_array(&format!("example-{name}-public-key"));
        assert_eq!(
            documented_key,
            public_key_of(&key(seed)).0,
            "the {name} public key"
        );
        // Independently of the project: the standard RFC 8032 derivation.
        assert_eq!(
            documented_key,
            SigningKey::from_bytes(&documented_seed)
                .verifying_key()
                .to_bytes()
        );
        assert!(!PublicKey(documented_key).is_weak());
    }
}

#[test]
fn the_documented_weak_key_is_refused_as_weak() {
    let doc = document();
    let weak: [u8; 32] = doc.hex_array("example-weak-key");
    // The document names it: the identity point, y = 1 with the sign bit clear.
    let mut identity = [0; 32];
    identity[0] = 1;
    assert_eq!(weak, identity);
    assert!(PublicKey(weak).is_weak());
    let citizen = public_key_of(&key(CITIZEN_SEED));
    let mut command = citizen_registers();
    command.author = PublicKey(weak);
    let envelope = Envelope {
        payload: String::from_utf8(command.to_payload()).unwrap(),
        signature: hex::encode(key(CITIZEN_SEED).sign(b"anything").to_bytes()),
        content: Vec::new(),
    };
    assert_eq!(envelope.open().err(), Some(EnvelopeError::WeakKey));
    assert!(!citizen.is_weak());
}

#[test]
fn the_documented_domain_prefixes_are_the_ones_the_code_signs_under() {
    let doc = document();
    assert_eq!(doc.hex("command-domain-hex"), COMMAND_DOMAIN);
    assert_eq!(doc.hex("system-domain-hex"), SYSTEM_DOMAIN);
    assert_eq!(EntryKind::Command.domain(), COMMAND_DOMAIN);
    assert_eq!(EntryKind::System.domain(), SYSTEM_DOMAIN);
    assert!(doc.text.contains(r#""veche command v1\n""#));
    assert!(doc.text.contains(r#""veche system event v1\n""#));
}

/// `(name, value)` for each named constant of `projections::limits`, the name in lower case.
macro_rules! limits_by_name {
    ($($constant:ident),* $(,)?) => {
        [$((stringify!($constant).to_lowercase(), limits::$constant as i128)),*]
    };
}

#[test]
fn the_documented_limits_are_the_ones_the_code_enforces() {
    let doc = document();
    // The document names each limit as its constant in `projections::limits`, in lower case.
    let mut code: BTreeMap<String, i128> = limits_by_name![
        ENTRY_BYTES_MAX,
        PAYLOAD_BYTES_MAX,
        REQUEST_BODY_BYTES_MAX,
        COMMAND_AGE_MS_MAX,
        COMMAND_FUTURE_MS_MAX,
        NONCE_HEX_CHARS,
        RESIDENT_TAG_HEX_CHARS,
        POLL_OPTIONS_MIN,
        POLL_OPTIONS_MAX,
        POLL_TITLE_CHARS_MAX,
        POLL_DESCRIPTION_CHARS_MAX,
        POLL_OPTION_CHARS_MAX,
        POLL_DURATION_MS_MAX,
        POLL_CORRECTIONS_MAX,
        DEPARTMENT_CHARS_MAX,
        DISTRICT_CHARS_MAX,
        AUDIENCE_DISTRICTS_MAX,
        CATEGORY_ID_CHARS_MAX,
        CATEGORY_NAME_CHARS_MAX,
        CATEGORY_DAYS_MAX,
        SUPPORT_THRESHOLD_MAX,
        COMPLAINT_DESCRIPTION_CHARS_MAX,
        ADDRESS_CHARS_MAX,
        ATTACHMENTS_MAX,
        URL_CHARS_MAX,
        NOTE_CHARS_MAX,
        PROPOSAL_TITLE_CHARS_MAX,
        PROPOSAL_BODY_CHARS_MAX,
        COMMANDS_PER_KEY_PER_MINUTE_MAX,
        COMPLAINTS_PER_RESIDENT_PER_DAY_MAX,
        REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX,
    ]
    .into_iter()
    .collect();
    code.insert("entry_header_bytes".into(), ENTRY_HEADER_BYTES as i128);
    let documented: BTreeMap<String, i128> = doc
        .pairs("limits")
        .into_iter()
        .map(|(name, value)| {
            let number = value
                .parse()
                .unwrap_or_else(|_| panic!("limit {name} is not a number: {value}"));
            (name, number)
        })
        .collect();
    assert_eq!(documented, code);
}

// ---------------------------------------------------------------------------------------------
// Commands: payloads, signatures, envelopes
// ---------------------------------------------------------------------------------------------

#[test]
fn the_documented_payloads_are_what_the_code_writes_and_parse_to_their_meaning() {
    let doc = document();
    let mut examples: Vec<(&str, Command)> = client_examples()
        .into_iter()
        .map(|(stem, _, command)| (stem, command))
        .collect();
    examples.push(("genesis", genesis()));
    for (stem, command) in examples {
        let id = format!("example-{stem}-payload");
        let documented = doc.block(&id);
        assert_eq!(
            documented.as_bytes(),
            command.to_payload(),
            "block id={id} differs from the payload the code writes"
        );
        assert_eq!(Command::parse(documented.as_bytes()), Ok(command), "{id}");
    }
}

#[test]
fn the_documented_signatures_are_what_the_code_produces() {
    let doc = document();
    for (stem, seed, command) in client_examples() {
        let payload = doc.block(&format!("example-{stem}-payload")).as_bytes();
        let documented: [u8; 64] = doc.hex_array(&format!("example-{stem}-signature"));
        let signed = Envelope::sign(&key(seed), &command);
        assert_eq!(signed.payload.as_bytes(), payload, "{stem}");
        assert_eq!(
            hex::decode(&signed.signature).unwrap(),
            documented,
            "example-{stem}-signature differs from the signature the code produces"
        );
        let length: usize = doc
            .block(&format!("example-{stem}-signed-message-length"))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            length,
            signed_message(EntryKind::Command, payload).len(),
            "{stem}"
        );
    }
    let genesis_payload = doc.block("example-genesis-payload").as_bytes();
    let documented: [u8; 64] = doc.hex_array("example-genesis-signature");
    assert_eq!(
        sign_system(&key(SERVER_SEED), genesis()).signature,
        documented
    );
    let length: usize = doc
        .block("example-genesis-signed-message-length")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        length,
        signed_message(EntryKind::System, genesis_payload).len()
    );
}

#[test]
fn the_documented_envelopes_open_and_are_the_ones_the_code_signs() {
    let doc = document();
    for (stem, seed, command) in client_examples() {
        let id = format!("example-{stem}-envelope");
        let documented: Envelope = serde_json::from_value(doc.json(&id))
            .unwrap_or_else(|error| panic!("block id={id} is not an envelope: {error}"));
        assert_eq!(documented, Envelope::sign(&key(seed), &command), "{id}");
        assert_eq!(
            documented.payload,
            doc.block(&format!("example-{stem}-payload")),
            "{id}"
        );
        let opened = documented
            .open()
            .unwrap_or_else(|error| panic!("block id={id} does not open: {error}"));
        assert_eq!(opened.command, command, "{id}");
        assert_eq!(opened.signer, public_key_of(&key(seed)), "{id}");
    }
}

/// Checks the documented signatures with nothing of veche: the documented prefix bytes, the
/// documented payload text and the documented key, through plain strict Ed25519.
#[test]
fn the_documented_signatures_verify_with_plain_ed25519_over_prefix_and_payload() {
    let doc = document();
    let prefix = doc.hex("command-domain-hex");
    for (stem, signer) in [
        ("register", "citizen"),
        ("grant", "admin"),
        ("open-poll", "official"),
        ("ballot", "citizen"),
    ] {
        let payload = doc.block(&format!("example-{stem}-payload"));
        let author: [u8; 32] = doc.hex_array(&format!("example-{signer}-public-key"));
        let signature: [u8; 64] = doc.hex_array(&format!("example-{stem}-signature"));
        let verifying = VerifyingKey::from_bytes(&author).unwrap();
        let mut message = prefix.clone();
        message.extend_from_slice(payload.as_bytes());
        verifying
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .unwrap_or_else(|error| panic!("example-{stem}-signature: {error}"));
        // The author named inside the payload is the key the signature is checked under.
        let parsed: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(parsed["author"], hex::encode(author), "{stem}");
        // And the prefix matters: the same signature does not verify over the bare payload.
        assert!(verifying
            .verify_strict(payload.as_bytes(), &Signature::from_bytes(&signature))
            .is_err());
    }
    let system_prefix = doc.hex("system-domain-hex");
    let server: [u8; 32] = doc.hex_array("example-server-public-key");
    let signature: [u8; 64] = doc.hex_array("example-genesis-signature");
    let mut message = system_prefix;
    message.extend_from_slice(doc.block("example-genesis-payload").as_bytes());
    VerifyingKey::from_bytes(&server)
        .unwrap()
        .verify_strict(&message, &Signature::from_bytes(&signature))
        .unwrap();
}

/// Every action's documented example body, parsed as the body of a payload by the citizen.
fn documented_actions(doc: &Document) -> Vec<(&'static str, Action)> {
    Action::NAMES
        .iter()
        .map(|&name| {
            let id = format!("body-{name}");
            let body = doc.json(&id);
            let payload = serde_json::json!({
                "action": name,
                "author": public_key_of(&key(CITIZEN_SEED)),
                "nonce": "505152535455565758595a5b5c5d5e5f",
                "issued_at": "2026-11-23T10:00:00.000Z",
                "body": body,
            });
            let command = Command::parse(payload.to_string().as_bytes())
                .unwrap_or_else(|error| panic!("block id={id} is not a {name} body: {error}"));
            assert_eq!(command.action.name(), name);
            // Every field the code writes is shown, and nothing else.
            let written = serde_json::to_value(&command.action).unwrap();
            assert_eq!(
                written["body"], body,
                "block id={id} differs from the body the code writes for it"
            );
            (name, command.action)
        })
        .collect()
}

#[test]
fn every_action_has_a_documented_body_that_parses_in_the_documented_order() {
    let doc = document();
    assert_eq!(documented_actions(&doc).len(), Action::NAMES.len());
    let body_blocks: Vec<&str> = doc
        .order
        .iter()
        .filter_map(|id| id.strip_prefix("body-"))
        .collect();
    assert_eq!(body_blocks, Action::NAMES, "action reference order");
    for name in Action::NAMES {
        assert!(
            doc.text.contains(&format!("#### `{name}`")),
            "{DOCUMENT} has no `#### `{name}`` heading"
        );
    }
}

/// The action reference reuses the worked examples where it can, so its bodies are pinned to them;
/// in every other body, each 64-digit hex value is a documented key or the documented file hash.
#[test]
fn the_documented_bodies_are_the_worked_examples_and_name_only_documented_keys() {
    let doc = document();
    let body_of = |id: &str| -> serde_json::Value {
        let payload: serde_json::Value = serde_json::from_str(doc.block(id)).unwrap();
        payload["body"].clone()
    };
    for (name, payload_id) in [
        ("register_key", "example-register-payload"),
        ("grant_role", "example-grant-payload"),
        ("open_poll", "example-open-poll-payload"),
        ("cast_ballot", "example-ballot-payload"),
        ("genesis", "example-genesis-payload"),
    ] {
        assert_eq!(
            doc.json(&format!("body-{name}")),
            body_of(payload_id),
            "body-{name} differs from the body of {payload_id}"
        );
    }
    let revoke = Action::RevokeRole(RoleChange {
        subject: public_key_of(&key(OFFICIAL_SEED)),
        role: Role::Moderator,
        department: None,
    });
    let close = Action::ClosePoll(ClosePoll {
        poll: 4,
        final_tally: Tally {
            counts: vec![12, 30, 7],
            turnout: 49,
            superseded_ballots: 3,
            voided_ballots: 0,
        },
        checkpoint: CheckpointReference {
            size: 412,
            root: "6b1f0c5e9a3d4c2b8e7f6a5d4c3b2a190817263544536271809f8e7d6c5b4a39".into(),
        },
    });
    for action in [revoke, close] {
        assert_eq!(
            doc.json(&format!("body-{}", action.name())),
            serde_json::to_value(&action).unwrap()["body"],
            "body-{}",
            action.name()
        );
    }

    let file_hash: [u8; 32] = doc.hex_array("example-attachment-sha256");
    assert_eq!(<[u8; 32]>::from(Sha256::digest(b"test")), file_hash);
    let mut known: Vec<String> = ["citizen", "official", "server", "admin"]
        .iter()
        .map(|name| hex::encode(doc.hex(&format!("example-{name}-public-key"))))
        .collect();
    known.push(hex::encode(file_hash));
    // The attestation's resident tag is the one the documented secret gives the identity.
    let resident_tag = hex::encode(doc.hex("example-resident-tag"));
    assert_eq!(
        veche::registrar::resident_tag(b"example registrar secret", "AB123456"),
        resident_tag
    );
    known.push(resident_tag);
    // The committed fields of the bodies commit to the documented pieces of content.
    for line in doc.block("example-content").lines() {
        let piece: projections::content::ContentPiece = serde_json::from_str(line).unwrap();
        known.push(piece.commitment().to_hex());
    }
    // The close example's Merkle root and the attestation's digest are illustrative: no key or
    // file hashes to them.
    known.push(
        doc.json("body-close_poll")["checkpoint"]["root"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    known.push(
        doc.json("body-attest_state")["ledger_sha256"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    // So is the anonymous ballot's randomizer: a citizen's random prefix, 32 bytes as any is.
    known.push(
        doc.json("body-cast_anonymous_ballot")["credential"]["randomizer"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    for name in Action::NAMES {
        let body = doc.block(&format!("body-{name}"));
        let tokens = body.split(|c: char| !c.is_ascii_hexdigit());
        for token in tokens.filter(|token| token.len() == 64) {
            assert!(
                known.iter().any(|known| known == token),
                "body-{name} names {token}, which is no documented key or hash"
            );
        }
    }
}

#[test]
fn the_documented_endpoints_are_where_the_client_sends_each_action_and_exist() {
    let doc = document();
    let documented: BTreeMap<String, String> = doc.pairs("endpoints").into_iter().collect();
    assert_eq!(
        documented.keys().map(String::as_str).collect::<Vec<_>>(),
        Action::NAMES
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "the endpoint table names every action once"
    );
    let openapi: serde_json::Value = serde_json::from_str(&veche::http::openapi_json()).unwrap();
    for (name, action) in documented_actions(&doc) {
        let line = &documented[name];
        if line == "system" {
            assert!(
                action.is_system(),
                "{name} is documented as a system action"
            );
            continue;
        }
        assert!(!action.is_system(), "{name} is a system action");
        let template = line
            .strip_prefix("POST ")
            .unwrap_or_else(|| panic!("{name}: {line} is neither `system` nor a POST"));
        assert!(
            openapi["paths"][template]["post"].is_object(),
            "{name}: the API has no POST {template}"
        );
        let mut path = template.to_string();
        let poll = match &action {
            Action::CastBallot(ballot) => Some(ballot.poll),
            Action::RequestCredentials(request) => Some(request.poll),
            Action::CastAnonymousBallot(ballot) => Some(ballot.poll),
            Action::CorrectPoll(correction) => Some(correction.poll),
            _ => None,
        };
        if let Some(poll) = poll {
            path = path.replace("{poll}", &poll.to_string());
        }
        if let Some(complaint) = action.complaint() {
            path = path.replace("{complaint}", &complaint.to_string());
        }
        if let Some(proposal) = action.proposal() {
            path = path.replace("{proposal}", &proposal.to_string());
        }
        assert_eq!(path, veche::client::endpoint_for(&action), "{name}");
    }
}

/// §6 says both ends of the window are inclusive and §5 that a resent envelope is refused as a
/// replay once its first copy is in the log.
#[test]
fn the_documented_freshness_window_is_inclusive_and_a_resent_envelope_is_a_replay() {
    let doc = document();
    let window = |name: &str| -> i64 {
        doc.pairs("limits")
            .into_iter()
            .find(|(limit, _)| limit == name)
            .map(|(_, value)| value.parse().unwrap())
            .unwrap()
    };
    let (age_max, future_max) = (
        window("command_age_ms_max"),
        window("command_future_ms_max"),
    );
    let mut ledger = Ledger::new();
    let genesis = seal(
        &ledger,
        sign_system(&key(SERVER_SEED), genesis()),
        at(GENESIS_SERVER_TIME),
    )
    .unwrap();
    ledger.evolve(&genesis.event);
    let envelope: Envelope = serde_json::from_value(doc.json("example-register-envelope")).unwrap();
    let issued_at = citizen_registers().issued_at;
    let attempt = |ledger: &Ledger, server_time: i64| {
        seal(
            ledger,
            envelope.clone().open().unwrap(),
            issued_at.plus_milliseconds(server_time),
        )
        .map(|_| ())
    };
    assert_eq!(attempt(&ledger, age_max), Ok(()));
    assert_eq!(attempt(&ledger, age_max + 1), Err(Refusal::StaleCommand));
    assert_eq!(attempt(&ledger, -future_max), Ok(()));
    assert_eq!(
        attempt(&ledger, -future_max - 1),
        Err(Refusal::FutureCommand)
    );

    let first = seal(
        &ledger,
        envelope.clone().open().unwrap(),
        at(REGISTER_SERVER_TIME),
    )
    .unwrap();
    ledger.evolve(&first.event);
    assert_eq!(attempt(&ledger, 1_300), Err(Refusal::ReplayedNonce));
}

// ---------------------------------------------------------------------------------------------
// Entries, the chain and the receipt
// ---------------------------------------------------------------------------------------------

#[test]
fn the_documented_entries_are_the_bytes_the_writer_seals() {
    let doc = document();
    let sealed = story();
    for (stem, entry) in [("genesis", &sealed[0]), ("register", &sealed[1])] {
        assert_eq!(
            doc.hex(&format!("example-{stem}-entry")),
            entry.bytes,
            "example-{stem}-entry differs from the entry the writer seals"
        );
        assert_eq!(
            doc.hex_array::<32>(&format!("example-{stem}-entry-hash")),
            entry.event.hash,
            "example-{stem}-entry-hash"
        );
    }
}

#[test]
fn the_documented_entries_decode_to_their_documented_fields() {
    let doc = document();
    for (stem, kind, payload_id) in [
        ("genesis", EntryKind::System, "example-genesis-payload"),
        ("register", EntryKind::Command, "example-register-payload"),
    ] {
        let bytes = doc.hex(&format!("example-{stem}-entry"));
        let entry = Entry::decode(&bytes).unwrap();
        assert_eq!(entry.kind, kind);
        assert_eq!(entry.payload, doc.block(payload_id).as_bytes());
        assert_eq!(entry.verify_signature(), Ok(()), "{stem}");

        // Read the layout table and check every field against the bytes, by offset alone.
        let id = format!("example-{stem}-entry-fields");
        let mut lines = doc.block(&id).lines();
        let headings: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(headings, ["offset", "length", "field", "value"], "{id}");
        let rows: Vec<Vec<String>> = lines
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.split_whitespace().map(str::to_string).collect())
            .collect();
        let names: Vec<&str> = rows.iter().map(|row| row[2].as_str()).collect();
        assert_eq!(
            names,
            [
                "version",
                "kind",
                "position",
                "server_time",
                "previous_hash",
                "signer",
                "signature",
                "payload"
            ],
            "{id}"
        );
        let mut expected_offset = 0;
        for row in &rows {
            let offset: usize = row[0].parse().unwrap();
            let length: usize = row[1].parse().unwrap();
            assert_eq!(offset, expected_offset, "{id}: {} offset", row[2]);
            expected_offset = offset + length;
            let field = &bytes[offset..offset + length];
            if row[2] == "payload" {
                assert_eq!(offset, ENTRY_HEADER_BYTES, "{id}");
                assert_eq!(row[3], format!("({payload_id})"), "{id}");
                assert_eq!(field, doc.block(payload_id).as_bytes(), "{id}");
            } else {
                assert_eq!(hex::encode(field), row[3], "{id}: {}", row[2]);
            }
        }
        assert_eq!(
            expected_offset,
            bytes.len(),
            "{id}: the fields cover the entry"
        );
    }
}

#[test]
fn the_documented_entry_hashes_chain_and_the_entries_replay() {
    let doc = document();
    let genesis_bytes = doc.hex("example-genesis-entry");
    let register_bytes = doc.hex("example-register-entry");
    let genesis_hash: [u8; 32] = doc.hex_array("example-genesis-entry-hash");
    let register_hash: [u8; 32] = doc.hex_array("example-register-entry-hash");

    // Independently of the project: SHA-256 of the whole entry, links at bytes 18..50.
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&genesis_bytes)),
        genesis_hash
    );
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&register_bytes)),
        register_hash
    );
    assert_eq!(genesis_bytes[18..50], GENESIS_PREVIOUS_HASH);
    assert_eq!(register_bytes[18..50], genesis_hash);
    assert_eq!(entry_hash(&register_bytes), register_hash);

    // The verifier's replay accepts them as the first two entries of a log.
    let mut replayer = Replayer::new();
    let genesis = replayer.apply(&genesis_bytes, Some(&genesis_hash)).unwrap();
    assert_eq!(genesis.position, 0);
    assert_eq!(genesis.server_time, at(GENESIS_SERVER_TIME));
    let register = replayer
        .apply(&register_bytes, Some(&register_hash))
        .unwrap();
    assert_eq!(register.position, 1);
    assert_eq!(register.server_time, at(REGISTER_SERVER_TIME));
    assert_eq!(
        replayer.ledger.server_key(),
        Some(PublicKey(doc.hex_array("example-server-public-key")))
    );
    assert!(replayer
        .ledger
        .is_admin(PublicKey(doc.hex_array("example-admin-public-key"))));
    assert!(replayer
        .ledger
        .keys
        .contains_key(&PublicKey(doc.hex_array("example-citizen-public-key"))));
}

#[test]
fn the_documented_receipt_is_the_one_for_the_register_entry() {
    let doc = document();
    let sealed = story();
    let event = &sealed[1].event;
    let receipt = doc.json("example-register-receipt");
    // What the server answers once the registration is the second entry of the log: the tree
    // of two leaves, its checkpoint signed by the server key, and the one-hash proof.
    let mut tree = veche::transparency::TreeState::new("veche.example.city/log", &key(SERVER_SEED));
    for entry in &sealed[..2] {
        tree.push(entry.event.leaf_hash);
    }
    tree.sign(&key(SERVER_SEED));
    let appended = veche::writer::Appended {
        position: event.position,
        entry_hash: event.hash,
        leaf_hash: event.leaf_hash,
        server_time: event.server_time,
    };
    let store = veche::store::MemoryStore::new();
    let expected = serde_json::to_value(tree.receipt(&store, &appended, None).unwrap()).unwrap();
    assert_eq!(
        receipt,
        expected,
        "the documented receipt should be {}",
        serde_json::to_string(&expected).unwrap()
    );
    assert_eq!(receipt["position"], event.position);
    assert_eq!(receipt["entry_hash"], hex::encode(event.hash));
    assert_eq!(receipt["server_time"], event.server_time.to_rfc3339());
    // The example shows every field the API's receipt has, and no other.
    let openapi: serde_json::Value = serde_json::from_str(&veche::http::openapi_json()).unwrap();
    let schema_fields: Vec<&String> = openapi["components"]["schemas"]["Receipt"]["properties"]
        .as_object()
        .expect("the OpenAPI document describes Receipt")
        .keys()
        .collect();
    let documented_fields: Vec<&String> = receipt.as_object().unwrap().keys().collect();
    let required: Vec<&str> = openapi["components"]["schemas"]["Receipt"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field.as_str().unwrap())
        .collect();
    for field in &schema_fields {
        assert!(
            documented_fields.contains(field) || !required.contains(&field.as_str()),
            "the example lacks the required field {field}"
        );
    }
    for field in &documented_fields {
        assert!(
            schema_fields.contains(field),
            "{field} is not in the schema"
        );
    }
}

#[test]
fn the_documented_story_is_accepted_in_order_and_the_ballot_names_the_poll_position() {
    let sealed = story();
    let open_poll = &sealed[4].event;
    assert_eq!(open_poll.command.action.name(), "open_poll");
    let Action::CastBallot(ballot) = &sealed[5].event.command.action else {
        panic!("the last example is not a ballot")
    };
    assert_eq!(ballot.poll, open_poll.position);
    // And the whole story replays from its bytes.
    let mut replayer = Replayer::new();
    for entry in &sealed {
        replayer
            .apply(&entry.bytes, Some(&entry.event.hash))
            .unwrap();
    }
    let poll = &replayer.ledger.polls[&open_poll.position];
    assert_eq!(poll.tally.counts, vec![0, 1, 0]);
}

// ---------------------------------------------------------------------------------------------
// Problem types
// ---------------------------------------------------------------------------------------------

/// Every error the API can answer with, one of each kind, with the same exhaustive reminder.
fn every_api_error() -> Vec<ApiError> {
    let envelope_errors = vec![
        EnvelopeError::MalformedSignature,
        EnvelopeError::WeakKey,
        EnvelopeError::Payload(ParseError::TooLarge { length_bytes: 0 }),
        EnvelopeError::Payload(ParseError::Malformed(String::new())),
        EnvelopeError::Payload(ParseError::UnknownAction(String::new())),
        EnvelopeError::Signature(SignatureError::InvalidKey),
        EnvelopeError::Signature(SignatureError::Mismatch),
    ];
    for error in &envelope_errors {
        match error {
            EnvelopeError::MalformedSignature
            | EnvelopeError::WeakKey
            | EnvelopeError::Payload(
                ParseError::TooLarge { .. }
                | ParseError::Malformed(_)
                | ParseError::UnknownAction(_),
            )
            | EnvelopeError::Signature(SignatureError::InvalidKey | SignatureError::Mismatch) => {}
        }
    }
    let mut submit_errors = vec![
        SubmitError::Overloaded,
        SubmitError::StoreUnavailable(String::new()),
        SubmitError::Stopped,
        SubmitError::Faulted(String::new()),
    ];
    submit_errors.extend(Refusal::examples().into_iter().map(SubmitError::Refused));
    for error in &submit_errors {
        match error {
            SubmitError::Refused(_)
            | SubmitError::Overloaded
            | SubmitError::StoreUnavailable(_)
            | SubmitError::Stopped
            | SubmitError::Faulted(_) => {}
        }
    }
    let mut command_errors = vec![
        CommandError::ActionMismatch {
            expected: "register_key",
            found: "cast_ballot",
        },
        CommandError::ContentMismatch(projections::content::ContentError::Unmatched {
            commitment: projections::content::Commitment([0; 32]),
        }),
    ];
    command_errors.extend(envelope_errors.into_iter().map(CommandError::Envelope));
    command_errors.extend(submit_errors.into_iter().map(CommandError::Submit));
    for error in &command_errors {
        match error {
            CommandError::Envelope(_)
            | CommandError::ActionMismatch { .. }
            | CommandError::ContentMismatch(_)
            | CommandError::Submit(_) => {}
        }
    }
    let mut api_errors = vec![
        ApiError::MalformedRequest(String::new()),
        ApiError::BodyTooLarge(0),
        ApiError::NotFound(String::new()),
        ApiError::TallySealed,
        ApiError::IssuerKeyNotHeld(String::new()),
        ApiError::StoreUnavailable(String::new()),
        ApiError::RateLimited {
            subject: "key",
            retry_after_seconds: 1,
        },
        ApiError::BeyondTreeSize {
            requested: 2,
            size: 1,
        },
        ApiError::ImpossibleProof(String::new()),
        ApiError::Faulted(String::new()),
        ApiError::StateUnproven(String::new()),
        ApiError::TooManyStreams(1),
        ApiError::StreamsFull(1),
        ApiError::MethodNotAllowed(String::new()),
        ApiError::InvalidApiKey,
    ];
    api_errors.extend(command_errors.into_iter().map(ApiError::Command));
    for error in &api_errors {
        match error {
            ApiError::Command(_)
            | ApiError::MalformedRequest(_)
            | ApiError::BodyTooLarge(_)
            | ApiError::NotFound(_)
            | ApiError::TallySealed
            | ApiError::IssuerKeyNotHeld(_)
            | ApiError::StoreUnavailable(_)
            | ApiError::BeyondTreeSize { .. }
            | ApiError::ImpossibleProof(_)
            | ApiError::Faulted(_)
            | ApiError::StateUnproven(_)
            | ApiError::TooManyStreams(_)
            | ApiError::StreamsFull(_)
            | ApiError::MethodNotAllowed(_)
            | ApiError::InvalidApiKey
            | ApiError::RateLimited { .. } => {}
        }
    }
    api_errors
}

#[test]
fn the_documented_problem_types_and_statuses_are_the_ones_the_server_answers() {
    let doc = document();
    const MARK: &str = "| `urn:veche:problem:";
    let mut documented = BTreeMap::new();
    for line in doc.text.lines().filter(|line| line.starts_with(MARK)) {
        let rest = &line[MARK.len()..];
        let code = &rest[..rest.find('`').unwrap()];
        let status: u16 = line.split('|').nth(2).unwrap().trim().parse().unwrap();
        let previous = documented.insert(code.to_string(), status);
        assert!(previous.is_none(), "{code} is listed twice");
    }
    let mut answered = BTreeMap::new();
    for error in every_api_error() {
        let status = error.status_code().as_u16();
        let body = error.error_response().into_body().try_into_bytes().unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let code = problem["type"]
            .as_str()
            .unwrap()
            .strip_prefix("urn:veche:problem:")
            .unwrap()
            .to_string();
        assert_eq!(problem["status"], status);
        if let Some(previous) = answered.insert(code.clone(), status) {
            assert_eq!(previous, status, "{code} is answered with two statuses");
        }
    }
    for refusal in Refusal::examples() {
        assert!(answered.contains_key(refusal.code()), "{}", refusal.code());
    }
    assert_eq!(documented, answered);
}
