//! What the rule tables share: a cast of keys, a prelude log, steps that sign, decide and evolve,
//! and the runner that checks each row both at the writer (`seal`) and on replay (`Replayer`).

use ed25519_dalek::SigningKey;

use crate::command::{
    Action, Attestation, CategoryDefinition, Command, Genesis, KeyRevocation, RecoveryQuorum,
    RegisterKey, Role, RoleChange,
};
use crate::ledger::{snapshot, Ledger};
use crate::protocol::{public_key_of, EntryKind, PublicKey};
use crate::replay::{
    check_entry, lay, seal, seal_knowing, MarkedState, ReplayFailure, Replayer, SignatureCheck,
    SignedCommand,
};
use crate::time::{Timestamp, DAY_MS};

/// The server key: signs genesis and every system event.
pub const SERVER: u8 = 1;
/// The one admin key genesis names. Never registered: admin rights come from genesis alone.
pub const ADMIN: u8 = 2;
/// An official of `ROADS`, the department of the `potholes` category.
pub const OFFICIAL: u8 = 3;
/// An official of `PARKS`, responsible for nothing in the prelude's catalogue.
pub const OTHER_OFFICIAL: u8 = 4;
pub const MODERATOR: u8 = 5;
pub const REGISTRAR: u8 = 6;
/// A registered citizen a registrar attested as a verified resident of `NORTH`.
pub const CITIZEN: u8 = 7;
/// A registered citizen nobody attested.
pub const NEIGHBOUR: u8 = 8;
/// A key that never registered.
pub const STRANGER: u8 = 9;
/// The custodians of the recovery quorum; any two of them replace an admin key.
pub const RECOVERY_KEYS: [u8; 3] = [10, 11, 12];
/// A key that takes over as admin.
pub const SUCCESSOR: u8 = 13;

pub const ROADS: &str = "roads";
pub const PARKS: &str = "parks";
pub const NORTH: &str = "north";
/// The prelude's category: routed to `ROADS`, 5 working days, 7 days to confirm, 2 supports,
/// proposals live 30 days.
pub const POTHOLES: &str = "potholes";

/// Thursday 1 January 2026, 00:00 UTC: every row's clock starts here.
pub const T0: Timestamp = Timestamp(1_767_225_600_000);
pub const MINUTE_MS: i64 = 60 * 1000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;

pub fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn public(seed: u8) -> PublicKey {
    public_key_of(&signing_key(seed))
}

/// A small-order point (the identity, y = 1): a key no one may register.
pub fn weak_key() -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    PublicKey(bytes)
}

pub fn after_days(days: i64) -> Timestamp {
    T0.plus_milliseconds(days * DAY_MS)
}

pub fn after_milliseconds(milliseconds: i64) -> Timestamp {
    T0.plus_milliseconds(milliseconds)
}

type ActionSource = Box<dyn Fn(&Ledger) -> Action>;

/// One command as a row names it: who signs it, in which kind of entry, at which server time.
/// The action may be computed from the ledger it meets (identifiers, tallies, checkpoints).
pub struct Step {
    kind: EntryKind,
    signer: PublicKey,
    author: PublicKey,
    signing_seed: Option<u8>,
    action: ActionSource,
    server_time: Timestamp,
    issued_at: Option<Timestamp>,
    nonce: Option<String>,
}

impl Step {
    /// A client command of `seed`'s key, at `T0`.
    pub fn by(seed: u8, action: Action) -> Step {
        Step::by_with(seed, move |_| action.clone())
    }

    /// A client command whose action depends on the ledger it is decided against.
    pub fn by_with(seed: u8, action: impl Fn(&Ledger) -> Action + 'static) -> Step {
        Step {
            kind: EntryKind::Command,
            signer: public(seed),
            author: public(seed),
            signing_seed: Some(seed),
            action: Box::new(action),
            server_time: T0,
            issued_at: None,
            nonce: None,
        }
    }

    /// A system event signed by the server key.
    pub fn system(action: Action) -> Step {
        Step::system_with(move |_| action.clone())
    }

    pub fn system_with(action: impl Fn(&Ledger) -> Action + 'static) -> Step {
        Step {
            kind: EntryKind::System,
            ..Step::by_with(SERVER, action)
        }
    }

    /// A command claimed by `key`, whose secret half the tables do not hold (weak keys).
    pub fn unsigned(key: PublicKey, action: Action) -> Step {
        Step {
            signer: key,
            author: key,
            signing_seed: None,
            ..Step::by(STRANGER, action)
        }
    }

    pub fn at(self, server_time: Timestamp) -> Step {
        Step {
            server_time,
            ..self
        }
    }

    pub fn issued(self, issued_at: Timestamp) -> Step {
        Step {
            issued_at: Some(issued_at),
            ..self
        }
    }

    pub fn nonce(self, nonce: &str) -> Step {
        Step {
            nonce: Some(nonce.to_string()),
            ..self
        }
    }

    pub fn kind(self, kind: EntryKind) -> Step {
        Step { kind, ..self }
    }

    /// Names another author in the payload than the key that signs the entry.
    pub fn authored_by(self, seed: u8) -> Step {
        Step {
            author: public(seed),
            ..self
        }
    }

    fn signed(&self, ledger: &Ledger, fallback_nonce: u64) -> SignedCommand {
        let command = Command {
            author: self.author,
            nonce: self
                .nonce
                .clone()
                .unwrap_or_else(|| format!("{fallback_nonce:032x}")),
            issued_at: self.issued_at.unwrap_or(self.server_time),
            action: (self.action)(ledger),
        };
        let payload = command.to_payload();
        let signature = self.signing_seed.map_or([0; 64], |seed| {
            crate::protocol::sign(&signing_key(seed), self.kind, &payload)
        });
        SignedCommand {
            kind: self.kind,
            signer: self.signer,
            signature,
            payload,
            command,
        }
    }
}

/// What a row expects of its `when` step.
pub enum Then {
    Accepted,
    /// Accepted, and the folded ledger passes this check.
    AcceptedAnd(fn(&Ledger) -> bool),
    /// Refused with this `Refusal::code`.
    Refused(&'static str),
}

pub struct Row {
    pub name: &'static str,
    pub given: Vec<Step>,
    pub when: Step,
    pub then: Then,
}

pub fn row(name: &'static str, given: Vec<Step>, when: Step, then: Then) -> Row {
    Row {
        name,
        given,
        when,
        then,
    }
}

/// The prelude followed by `more`.
pub fn base_and(more: Vec<Step>) -> Vec<Step> {
    let mut steps = base();
    steps.extend(more);
    steps
}

/// Genesis, the cast registered, their roles granted, the citizen attested, one category.
pub fn base() -> Vec<Step> {
    let mut steps = vec![genesis()];
    for seed in [
        OFFICIAL,
        OTHER_OFFICIAL,
        MODERATOR,
        REGISTRAR,
        CITIZEN,
        NEIGHBOUR,
    ] {
        steps.push(Step::by(seed, register()));
    }
    steps.push(Step::by(
        ADMIN,
        grant(OFFICIAL, Role::Official, Some(ROADS)),
    ));
    steps.push(Step::by(
        ADMIN,
        grant(OTHER_OFFICIAL, Role::Official, Some(PARKS)),
    ));
    steps.push(Step::by(ADMIN, grant(MODERATOR, Role::Moderator, None)));
    steps.push(Step::by(ADMIN, grant(REGISTRAR, Role::Registrar, None)));
    steps.push(Step::by(REGISTRAR, attest(CITIZEN, Some(NORTH))));
    steps.push(Step::by(ADMIN, Action::DefineCategory(potholes())));
    steps
}

/// The genesis of every table: one admin key, and three recovery keys of which two recover it.
pub fn genesis() -> Step {
    let Action::Genesis(mut genesis) = genesis_naming(vec![public(ADMIN)]) else {
        unreachable!("genesis_naming names a genesis")
    };
    genesis.recovery = Some(RecoveryQuorum {
        keys: RECOVERY_KEYS.iter().map(|&seed| public(seed)).collect(),
        threshold: 2,
    });
    Step::system(Action::Genesis(genesis))
}

/// A genesis with these admin keys and no recovery quorum.
pub fn genesis_naming(admin_keys: Vec<PublicKey>) -> Action {
    Action::Genesis(Genesis {
        log_origin: "veche.test/rules".into(),
        admin_keys,
        recovery: None,
    })
}

pub fn register() -> Action {
    Action::RegisterKey(RegisterKey {})
}

pub fn role_change(subject: u8, role: Role, department: Option<&str>) -> RoleChange {
    RoleChange {
        subject: public(subject),
        role,
        department: department.map(str::to_string),
    }
}

pub fn grant(subject: u8, role: Role, department: Option<&str>) -> Action {
    Action::GrantRole(role_change(subject, role, department))
}

pub fn revoke(subject: u8, role: Role) -> Action {
    Action::RevokeRole(role_change(subject, role, None))
}

pub fn attest(subject: u8, district: Option<&str>) -> Action {
    attest_as(subject, district, subject)
}

/// An attestation of `subject` as the verified resident whose tag is made from `resident`.
pub fn attest_as(subject: u8, district: Option<&str>, resident: u8) -> Action {
    Action::AttestResident(Attestation {
        subject: public(subject),
        district: district.map(str::to_string),
        verified: true,
        resident_tag: Some(resident_tag(resident)),
    })
}

/// A well-formed resident tag, different for each `resident`.
pub fn resident_tag(resident: u8) -> String {
    hex::encode([resident; 32])
}

pub fn revoke_key(subject: u8) -> Action {
    Action::RevokeKey(KeyRevocation {
        subject: public(subject),
    })
}

pub fn potholes() -> CategoryDefinition {
    CategoryDefinition {
        id: POTHOLES.into(),
        name: "Potholes".into(),
        department: ROADS.into(),
        sla_working_days: 5,
        confirmation_window_days: 7,
        support_threshold: 2,
        proposal_lifetime_days: 30,
        supports_from_residents_only: false,
    }
}

/// The identifier of the `index`-th item (in log order) of an aggregate keyed by position.
pub fn nth<V>(items: &std::collections::BTreeMap<u64, V>, index: usize) -> u64 {
    match items.keys().nth(index) {
        Some(&id) => id,
        None => panic!("the ledger has no item number {index}"),
    }
}

/// The ledger after a row's given steps, each signed, decided (`seal`) and folded (`evolve`),
/// with the digest of the state at the latest mark, as a node's background snapshot finds it.
fn folded(row: &Row) -> Result<(Ledger, Option<MarkedState>), String> {
    let mut ledger = Ledger::new();
    let mut marked = None;
    for step in &row.given {
        let index = ledger.size;
        let signed = step.signed(&ledger, index);
        let sealed = seal_knowing(&ledger, signed, step.server_time, marked.as_ref())
            .map_err(|refusal| format!("the step at {index} was refused: {}", refusal.code()))?;
        if let Action::MarkState(_) = &sealed.event.command.action {
            marked = Some(MarkedState {
                size: ledger.size,
                ledger_sha256: snapshot::digest(&ledger),
            });
        }
        ledger.evolve(&sealed.event);
    }
    Ok((ledger, marked))
}

/// The ledger after `steps`, each signed, decided (`seal`) and folded (`evolve`).
pub fn fold_steps(steps: &[Step]) -> Result<Ledger, String> {
    fold_onto(Ledger::new(), steps)
}

/// `ledger` after `steps` more, each with a nonce of its own position.
pub fn fold_onto(mut ledger: Ledger, steps: &[Step]) -> Result<Ledger, String> {
    for step in steps {
        let index = ledger.size;
        let signed = step.signed(&ledger, index);
        let sealed = seal(&ledger, signed, step.server_time)
            .map_err(|refusal| format!("the step at {index} was refused: {}", refusal.code()))?;
        ledger.evolve(&sealed.event);
    }
    Ok(ledger)
}

/// Runs one row; `Err` says how it went wrong.
fn run_row(row: &Row) -> Result<(), String> {
    let (ledger, marked) = folded(row)?;
    let signed = row.when.signed(&ledger, row.given.len() as u64);
    let at_writer = seal_knowing(
        &ledger,
        signed.clone(),
        row.when.server_time,
        marked.as_ref(),
    )
    .map(|_| ());
    let at_replay = replay_one(&ledger, marked, signed, row.when.server_time);
    let (replayed, replay_outcome) = at_replay?;
    check_deadline_index(&replayed, row.when.server_time)?;
    if at_writer != replay_outcome {
        return Err(format!(
            "the writer says {at_writer:?} but replay says {replay_outcome:?}"
        ));
    }
    match (&row.then, at_writer) {
        (Then::Accepted, Ok(())) => Ok(()),
        (Then::AcceptedAnd(check), Ok(())) if check(&replayed) => Ok(()),
        (Then::AcceptedAnd(_), Ok(())) => {
            Err("accepted, but the ledger fails the row's check".into())
        }
        (Then::Refused(code), Err(refusal)) if refusal.code() == *code => Ok(()),
        (Then::Refused(code), outcome) => Err(format!("expected {code}, got {outcome:?}")),
        (_, Err(refusal)) => Err(format!("expected acceptance, got {}", refusal.code())),
    }
}

/// The deadline index that `evolve` kept must equal one rebuilt from the state, and list, at the
/// row's time and well after it, exactly what asking every poll, complaint and proposal gives.
fn check_deadline_index(ledger: &Ledger, at: Timestamp) -> Result<(), String> {
    if ledger.deadlines != ledger.deadlines_rebuilt() {
        return Err(
            "the deadline index kept by evolve differs from one rebuilt from the state".into(),
        );
    }
    for days in [0, 1, 8, 40, 400] {
        let now = at.plus_milliseconds(days * 24 * HOUR_MS);
        let listed = ledger.due_system_actions(now);
        let scanned = scanned_due(ledger, now);
        if listed != scanned {
            return Err(format!(
                "{days} days on, the index lists {listed:?} but the records owe {scanned:?}"
            ));
        }
    }
    Ok(())
}

/// What every record owes at `now`, asked one by one: the scan the index replaces.
pub fn scanned_due(ledger: &Ledger, now: Timestamp) -> Vec<Action> {
    let checkpoint = ledger.checkpoint_reference();
    let polls = ledger
        .polls
        .keys()
        .filter_map(|&id| ledger.polls.close_action(id, now, &checkpoint));
    let complaints = ledger.complaints.keys().filter_map(|&id| {
        ledger
            .complaints
            .breach_action(id, now)
            .or_else(|| ledger.complaints.silence_action(id, now))
    });
    let proposals = ledger
        .proposals
        .keys()
        .filter_map(|&id| ledger.proposals.expiry_action(id, now));
    polls.chain(complaints).chain(proposals).collect()
}

/// Lays `signed` at the next position without deciding it, as a faulty or hostile server
/// would, and replays it: the verifier must reach the writer's verdict, and fold nothing of a
/// refused entry. Returns the ledger after the replay and the verdict.
fn replay_one(
    ledger: &Ledger,
    marked: Option<MarkedState>,
    signed: SignedCommand,
    server_time: Timestamp,
) -> Result<(Ledger, Result<(), crate::Refusal>), String> {
    let bytes = lay(ledger, signed, server_time).bytes;
    let checked = check_entry(&bytes, None, SignatureCheck::AlreadyVerified)
        .map_err(|failure| format!("the entry does not check: {failure}"))?;
    let mut replayer = Replayer {
        ledger: ledger.clone(),
        marked,
    };
    let before = encoded(ledger);
    let verdict = match replayer.apply_checked(checked) {
        Ok(_) => {
            if replayer.ledger.size != ledger.size + 1 {
                return Err("an accepted entry did not grow the log by one".into());
            }
            Ok(())
        }
        Err(error) => match error.failure {
            ReplayFailure::Refused(refusal) => {
                if encoded(&replayer.ledger) != before
                    || replayer.ledger.head_hash != ledger.head_hash
                {
                    return Err(format!(
                        "a refused entry ({}) changed the ledger",
                        refusal.code()
                    ));
                }
                Err(refusal)
            }
            other => return Err(format!("replay failed for another reason: {other}")),
        },
    };
    Ok((replayer.ledger, verdict))
}

fn encoded(ledger: &Ledger) -> Vec<u8> {
    let mut bytes = Vec::new();
    snapshot::encode(ledger, &mut bytes);
    bytes
}

/// Runs every row and fails with the names of the rows that did not hold.
pub fn run_table(rows: &[Row]) {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| run_row(row).err().map(|why| format!("{}: {why}", row.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// The refusal codes a table's rows expect.
pub fn refusal_codes(rows: &[Row]) -> Vec<&'static str> {
    rows.iter()
        .filter_map(|row| match row.then {
            Then::Refused(code) => Some(code),
            Then::Accepted | Then::AcceptedAnd(_) => None,
        })
        .collect()
}

/// The names of the actions a table's rows expect accepted.
pub fn accepted_actions(rows: &[Row]) -> Vec<&'static str> {
    rows.iter()
        .filter(|row| matches!(row.then, Then::Accepted | Then::AcceptedAnd(_)))
        .filter_map(|row| {
            folded(row)
                .ok()
                .map(|ledger| (row.when.action)(&ledger.0).name())
        })
        .collect()
}
