//! A month of a city district through the HTTP API, driven by a seeded random schedule on a
//! manual clock: complaints from filing to confirmation, proposals from submission to answer.
//! The test keeps its own tally of what it did and asserts every number the server publishes
//! against it, then restarts the server on the same data and expects byte-identical answers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Datelike;
use ed25519_dalek::SigningKey;
use projections::command::{
    Attachment, Attestation, CannotResolve, CategoryDefinition, ComplaintFiling,
    ComplaintReference, Degrees, Dispute, Location, Merge, ModerationDecision, ProposalAnswer,
    ProposalModeration, ProposalOutcome, ProposalReference, ProposalSubmission, RegisterKey,
    RejectionReason, Resolution, Role, RoleChange, Supplement, Triage, TriageDecision,
};
use projections::{Action, Timestamp};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{
    assert_data_directory_verifies, public, resident_tag_of, Answer, TestApp, MINUTE_MS, TEST_START,
};

/// Change the seed and the month plays out differently; every assertion must still hold.
const SEED: u64 = 0x2026_1123_0000_5eed;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const MONTH_DAYS: i64 = 30;
const CITIZENS: usize = 60;
const DISTRICTS: [&str; 3] = ["Arbat", "Tverskoy", "Presnensky"];
const STREETS: [&str; 6] = [
    "Tverskaya",
    "Arbat",
    "Povarskaya",
    "Malaya Bronnaya",
    "Sadovaya",
    "Krasnopresnenskaya",
];

#[derive(Clone, Copy)]
struct CategorySpec {
    id: &'static str,
    name: &'static str,
    department: &'static str,
    sla_working_days: u32,
    confirmation_window_days: u32,
    support_threshold: u64,
    proposal_lifetime_days: u32,
}

impl CategorySpec {
    fn definition(&self) -> CategoryDefinition {
        CategoryDefinition {
            id: self.id.into(),
            name: self.name.into(),
            department: self.department.into(),
            sla_working_days: self.sla_working_days,
            confirmation_window_days: self.confirmation_window_days,
            support_threshold: self.support_threshold,
            proposal_lifetime_days: self.proposal_lifetime_days,
            supports_from_residents_only: false,
        }
    }
}

/// Four departments with different SLAs; two categories share the roads department.
const CATEGORIES: [CategorySpec; 5] = [
    CategorySpec {
        id: "street-lighting",
        name: "Street lighting",
        department: "roads",
        sla_working_days: 3,
        confirmation_window_days: 5,
        support_threshold: 12,
        proposal_lifetime_days: 14,
    },
    CategorySpec {
        id: "potholes",
        name: "Potholes",
        department: "roads",
        sla_working_days: 8,
        confirmation_window_days: 7,
        support_threshold: 15,
        proposal_lifetime_days: 20,
    },
    CategorySpec {
        id: "yard-cleaning",
        name: "Yard cleaning",
        department: "housing",
        sla_working_days: 2,
        confirmation_window_days: 3,
        support_threshold: 10,
        proposal_lifetime_days: 10,
    },
    CategorySpec {
        id: "park-benches",
        name: "Park benches",
        department: "parks",
        sla_working_days: 5,
        confirmation_window_days: 7,
        support_threshold: 8,
        proposal_lifetime_days: 12,
    },
    CategorySpec {
        id: "night-noise",
        name: "Noise at night",
        department: "public-order",
        sla_working_days: 10,
        confirmation_window_days: 5,
        support_threshold: 20,
        proposal_lifetime_days: 15,
    },
];

/// Mid-month the admin shortens the potholes SLA and window: complaints accepted before keep
/// the terms in force at their acceptance.
const POTHOLES_V2: CategorySpec = CategorySpec {
    id: "potholes",
    name: "Potholes and road surface",
    department: "roads",
    sla_working_days: 5,
    confirmation_window_days: 4,
    support_threshold: 15,
    proposal_lifetime_days: 20,
};

/// xorshift64: tiny, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn percent(&mut self) -> u64 {
        self.below(100)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low).max(0) as u64 + 1) as i64
    }
}

fn ts(milliseconds: i64) -> String {
    Timestamp(milliseconds).to_rfc3339()
}

fn opt_ts(milliseconds: Option<i64>) -> Value {
    milliseconds.map_or(Value::Null, |at| json!(ts(at)))
}

/// The same time of day `days` working days later, counted with chrono's calendar rather than
/// the server's arithmetic, so the two have to agree.
fn plus_working_days(from: i64, days: u32) -> i64 {
    let mut moment = chrono::DateTime::from_timestamp_millis(from).unwrap();
    let mut left = days;
    while left > 0 {
        moment += chrono::TimeDelta::days(1);
        if moment.weekday().num_days_from_monday() < 5 {
            left -= 1;
        }
    }
    moment.timestamp_millis()
}

fn month_of(milliseconds: i64) -> String {
    chrono::DateTime::from_timestamp_millis(milliseconds)
        .unwrap()
        .format("%Y-%m")
        .to_string()
}

fn photo(label: &str) -> Attachment {
    Attachment {
        sha256: hex::encode(Sha256::digest(label.as_bytes())),
        url: crate::harness::commit(&format!(
            "https://photos.example/{}.jpg",
            label.replace(' ', "-")
        )),
    }
}

fn attachment_json(attachment: &Attachment) -> Value {
    json!({"sha256": attachment.sha256, "url": text_of(attachment.url)})
}

/// The text a test committed to: what a read serves in the commitment's place.
fn text_of(commitment: projections::content::Commitment) -> String {
    crate::harness::CONTENT
        .text(&commitment)
        .expect("the test committed to this text")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Filed,
    NeedsInfo,
    Accepted,
    InProgress,
    Resolved,
    CannotResolve,
    Confirmed,
    ClosedUnconfirmed,
    Rejected,
    Merged,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Filed => "filed",
            Status::NeedsInfo => "needs_info",
            Status::Accepted => "accepted",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::CannotResolve => "cannot_resolve",
            Status::Confirmed => "confirmed",
            Status::ClosedUnconfirmed => "closed_unconfirmed",
            Status::Rejected => "rejected",
            Status::Merged => "merged",
        }
    }

    fn awaits_department(self) -> bool {
        matches!(self, Status::Accepted | Status::InProgress)
    }

    fn resolution_stands(self) -> bool {
        matches!(
            self,
            Status::Resolved | Status::Confirmed | Status::ClosedUnconfirmed
        )
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            Status::Confirmed
                | Status::ClosedUnconfirmed
                | Status::Rejected
                | Status::Merged
                | Status::CannotResolve
        )
    }
}

/// What the test knows about one complaint, from what it sent and when.
struct ComplaintModel {
    id: u64,
    author: usize,
    filing: ComplaintFiling,
    filed_at: i64,
    status: Status,
    department: Option<&'static str>,
    accepted_at: Option<i64>,
    deadline: Option<i64>,
    window_days: u32,
    resolved_at: Option<i64>,
    confirmation_deadline: Option<i64>,
    sla_breached: bool,
    disputes: u32,
    rejection: Option<Value>,
    merged_into: Option<u64>,
    merged_from: Vec<u64>,
    answer: Option<String>,
    attachments: Vec<Attachment>,
    evidence: Vec<Attachment>,
    timeline: Vec<Value>,
    asked_for_details: bool,
    supplemented: bool,
}

impl ComplaintModel {
    fn category(&self) -> &str {
        &self.filing.category
    }

    fn district(&self) -> &str {
        &self.filing.location.district
    }

    fn sla_at_risk(&self, now: i64) -> bool {
        self.status.awaits_department() && self.deadline.is_some_and(|due| now + DAY_MS >= due)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProposalStatus {
    Submitted,
    Published,
    Rejected,
    UnderReview,
    Accepted,
    Declined,
    Implemented,
    Withdrawn,
    Expired,
}

impl ProposalStatus {
    const ALL: [ProposalStatus; 9] = [
        ProposalStatus::Submitted,
        ProposalStatus::Published,
        ProposalStatus::Rejected,
        ProposalStatus::UnderReview,
        ProposalStatus::Accepted,
        ProposalStatus::Declined,
        ProposalStatus::Implemented,
        ProposalStatus::Withdrawn,
        ProposalStatus::Expired,
    ];

    fn name(self) -> &'static str {
        match self {
            ProposalStatus::Submitted => "submitted",
            ProposalStatus::Published => "published",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::UnderReview => "under_review",
            ProposalStatus::Accepted => "accepted",
            ProposalStatus::Declined => "declined",
            ProposalStatus::Implemented => "implemented",
            ProposalStatus::Withdrawn => "withdrawn",
            ProposalStatus::Expired => "expired",
        }
    }
}

fn outcome_name(outcome: ProposalOutcome) -> &'static str {
    match outcome {
        ProposalOutcome::Accepted => "accepted",
        ProposalOutcome::Declined => "declined",
        ProposalOutcome::Implemented => "implemented",
    }
}

/// What the test knows about one proposal. `id` is set once the submission lands.
struct ProposalModel {
    id: Option<u64>,
    author: usize,
    submission: ProposalSubmission,
    status: ProposalStatus,
    department: &'static str,
    submitted_at: i64,
    published_at: Option<i64>,
    expires_at: Option<i64>,
    threshold: u64,
    supporters: BTreeSet<usize>,
    /// (position, at, supports after the event)
    history: Vec<(u64, i64, u64)>,
    reached_at: Option<i64>,
    rejection_reason: Option<String>,
    answer: Option<Value>,
}

impl ProposalModel {
    fn supports(&self) -> u64 {
        self.supporters.len() as u64
    }

    fn trending(&self, now: i64) -> i64 {
        let since = now - 7 * DAY_MS;
        let before = self
            .history
            .iter()
            .rfind(|(_, at, _)| *at < since)
            .map_or(0, |(_, _, supports)| *supports);
        self.supports() as i64 - before as i64
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Triage,
    Supplement,
    StartWork,
    Resolve,
    CannotResolve,
    Merge,
    Confirm,
    Dispute,
}

#[derive(Clone, Copy, Debug)]
enum ProposalStep {
    Submit,
    Publish,
    Reject,
    Support(usize),
    WithdrawSupport(usize),
    Answer(ProposalOutcome),
    Withdraw,
}

#[derive(Debug)]
enum Task {
    Redefine,
    RevokeModerator,
    File { citizen: usize, category: usize },
    Complaint { index: usize, step: Step },
    Proposal { index: usize, step: ProposalStep },
}

/// How a proposal's month is meant to go; the model, not the plan, says what happened.
#[derive(Clone, Copy)]
enum ProposalFate {
    Reach(Option<ProposalOutcome>),
    Expire,
    StillPublished,
    Rejected,
    WithdrawnWhileSubmitted,
    WithdrawnWhilePublished,
    LeftSubmitted,
}

const PROPOSAL_FATES: [ProposalFate; 14] = [
    ProposalFate::Reach(Some(ProposalOutcome::Accepted)),
    ProposalFate::Reach(Some(ProposalOutcome::Declined)),
    ProposalFate::Reach(Some(ProposalOutcome::Implemented)),
    ProposalFate::Reach(Some(ProposalOutcome::Accepted)),
    ProposalFate::Reach(None),
    ProposalFate::Expire,
    ProposalFate::Expire,
    ProposalFate::Expire,
    ProposalFate::StillPublished,
    ProposalFate::Rejected,
    ProposalFate::Rejected,
    ProposalFate::WithdrawnWhileSubmitted,
    ProposalFate::WithdrawnWhilePublished,
    ProposalFate::LeftSubmitted,
];

struct People {
    /// The second moderator loses the role on day 20.
    moderators: [SigningKey; 2],
    officials: BTreeMap<&'static str, Vec<SigningKey>>,
    registrar: SigningKey,
    citizens: Vec<SigningKey>,
    districts: Vec<&'static str>,
}

enum Due {
    Breach(usize),
    Close(usize),
    Expire(usize),
}

struct World {
    app: TestApp,
    people: People,
    server_key: String,
    rng: Rng,
    end: i64,
    schedule: BTreeMap<(i64, u64), Task>,
    sequence: u64,
    /// Entries in the log as the test counts them.
    size: u64,
    catalogue: BTreeMap<&'static str, (CategorySpec, u32)>,
    second_moderator_active: bool,
    complaints: Vec<ComplaintModel>,
    proposals: Vec<ProposalModel>,
    /// Refusals the month met on purpose, by problem code.
    refusals: BTreeMap<String, u64>,
}

/// What an accepted command must do to complaint `index`: move it to `status` and add a timeline
/// step naming `action`, with `note`.
struct Expected<'a> {
    index: usize,
    action: &'static str,
    status: Status,
    note: Option<&'a str>,
}

impl<'a> Expected<'a> {
    /// Complaint `index` moved to `status` by the action named `action`, with no note.
    fn new(index: usize, action: &'static str, status: Status) -> Self {
        Expected {
            index,
            action,
            status,
            note: None,
        }
    }

    /// The same step, with the note the timeline must show.
    fn noted(self, note: &'a str) -> Self {
        Expected {
            note: Some(note),
            ..self
        }
    }
}

fn step_json(
    position: u64,
    at: i64,
    action: &str,
    actor: &str,
    status: Status,
    note: Option<&str>,
) -> Value {
    let mut step = json!({
        "position": position,
        "at": ts(at),
        "action": action,
        "actor": actor,
        "status": status.name(),
    });
    if let Some(note) = note {
        step["note"] = json!(note);
    }
    step
}

impl World {
    fn now(&self) -> i64 {
        self.app.now().0
    }

    fn hex(key: &SigningKey) -> String {
        public(key).to_hex()
    }

    fn plan(&mut self, at: i64, task: Task) {
        // Whatever would happen after the month is next month's business.
        if at <= self.end {
            self.schedule.insert((at, self.sequence), task);
            self.sequence += 1;
        }
    }

    /// Moves the clock (never backwards) and lets the server append what fell due.
    async fn set_time(&mut self, at: i64) {
        assert!(at >= self.now(), "the schedule went backwards");
        self.app.clock.set(Timestamp(at));
        self.flush().await;
    }

    /// Appends due system events now (the background task may beat us to it: same events, same
    /// time) and folds into the model what the test expects them to be.
    async fn flush(&mut self) {
        let now = self.now();
        let mut due = Vec::new();
        for (index, complaint) in self.complaints.iter().enumerate() {
            if complaint.status.awaits_department()
                && !complaint.sla_breached
                && complaint.deadline.is_some_and(|deadline| now > deadline)
            {
                due.push(Due::Breach(index));
            } else if complaint.status == Status::Resolved
                && complaint
                    .confirmation_deadline
                    .is_some_and(|deadline| now >= deadline)
            {
                due.push(Due::Close(index));
            }
        }
        for (index, proposal) in self.proposals.iter().enumerate() {
            if proposal.status == ProposalStatus::Published
                && proposal.expires_at.is_some_and(|expiry| now >= expiry)
            {
                due.push(Due::Expire(index));
            }
        }
        self.app.node.append_due_system_events().await.unwrap();
        let size = self.app.node.ledger().size;
        assert_eq!(
            size,
            self.size + due.len() as u64,
            "system events due at {}",
            ts(now)
        );
        for (offset, due) in due.into_iter().enumerate() {
            let position = self.size + offset as u64;
            match due {
                Due::Breach(index) => {
                    let complaint = &mut self.complaints[index];
                    complaint.sla_breached = true;
                    let status = complaint.status;
                    complaint.timeline.push(step_json(
                        position,
                        now,
                        "breach_sla",
                        &self.server_key,
                        status,
                        None,
                    ));
                }
                Due::Close(index) => {
                    let complaint = &mut self.complaints[index];
                    complaint.status = Status::ClosedUnconfirmed;
                    complaint.timeline.push(step_json(
                        position,
                        now,
                        "close_unconfirmed",
                        &self.server_key,
                        Status::ClosedUnconfirmed,
                        None,
                    ));
                }
                Due::Expire(index) => self.proposals[index].status = ProposalStatus::Expired,
            }
        }
        self.size = size;
    }

    /// Sends `command` by `key`, insists it landed in order, moves the complaint to the expected
    /// status and appends the timeline step the API must show, by `key`; the time it landed.
    async fn complaint_command(
        &mut self,
        key: &SigningKey,
        command: Action,
        expected: Expected<'_>,
    ) -> i64 {
        let answer = self.app.act(key, command).await;
        let what = format!("{} to {}", expected.action, expected.status.name());
        let position = self.accepted(&answer, &what);
        let now = self.now();
        let complaint = &mut self.complaints[expected.index];
        complaint.status = expected.status;
        complaint.timeline.push(step_json(
            position,
            now,
            expected.action,
            &Self::hex(key),
            expected.status,
            expected.note,
        ));
        now
    }

    /// Insists the command landed at the next position at the current time.
    fn accepted(&mut self, answer: &Answer, what: &str) -> u64 {
        assert_eq!(answer.status, 201, "{what} was refused: {}", answer.body);
        let position = answer.body["position"].as_u64().unwrap();
        assert_eq!(position, self.size, "{what} landed out of order");
        assert_eq!(answer.body["server_time"], json!(ts(self.now())), "{what}");
        self.size += 1;
        position
    }

    fn refused(&mut self, answer: &Answer, status: u16, code: &str, what: &str) {
        assert_eq!(
            (answer.status, answer.problem_type()),
            (status, format!("urn:veche:problem:{code}").as_str()),
            "{what}: {}",
            answer.body
        );
        assert_eq!(answer.content_type, "application/problem+json", "{what}");
        *self.refusals.entry(code.to_string()).or_default() += 1;
    }

    /// Setup commands one after another, two seconds apart: no key nears its rate limit.
    async fn setup(&mut self, key: &SigningKey, action: Action) -> u64 {
        let at = self.now() + 2_000;
        self.set_time(at).await;
        self.command(key, action).await
    }

    /// A command that must be accepted now.
    async fn command(&mut self, key: &SigningKey, action: Action) -> u64 {
        let name = action.name();
        let answer = self.app.act(key, action).await;
        self.accepted(&answer, name)
    }

    fn moderator(&mut self) -> usize {
        if self.second_moderator_active && self.rng.percent() < 40 {
            1
        } else {
            0
        }
    }

    fn official(&mut self, department: &str) -> &SigningKey {
        let count = self.people.officials[department].len() as u64;
        let pick = self.rng.below(count) as usize;
        &self.people.officials[department][pick]
    }

    async fn run(&mut self, task: Task) {
        match task {
            Task::Redefine => {
                let admin = self.app.admin.clone();
                self.command(&admin, Action::DefineCategory(POTHOLES_V2.definition()))
                    .await;
                let version = self.catalogue["potholes"].1 + 1;
                self.catalogue.insert("potholes", (POTHOLES_V2, version));
            }
            Task::RevokeModerator => {
                let admin = self.app.admin.clone();
                let revoke = Action::RevokeRole(RoleChange {
                    subject: public(&self.people.moderators[1]),
                    role: Role::Moderator,
                    department: None,
                });
                self.command(&admin, revoke).await;
                self.second_moderator_active = false;
            }
            Task::File { citizen, category } => self.file(citizen, category).await,
            Task::Complaint { index, step } => self.complaint_step(index, step).await,
            Task::Proposal { index, step } => self.proposal_step(index, step).await,
        }
    }

    async fn file(&mut self, citizen: usize, category: usize) {
        let number = self.complaints.len();
        let spec = CATEGORIES[category];
        let district = self.people.districts[citizen];
        let street = STREETS[self.rng.below(STREETS.len() as u64) as usize];
        let house = 1 + self.rng.below(120);
        let attachments = if self.rng.percent() < 50 {
            vec![photo(&format!("complaint {number}"))]
        } else {
            Vec::new()
        };
        let filing = ComplaintFiling {
            category: spec.id.into(),
            description: crate::harness::commit(&format!(
                "{} at {house} {street} St (report {number}).",
                spec.name
            )),
            location: Location {
                // On the public 0.001-degree grid: whole thousandths divided land on it.
                latitude: Degrees((55_700 + self.rng.below(1_000) / 10) as f64 / 1_000.0),
                longitude: Degrees((37_550 + self.rng.below(1_000) / 10) as f64 / 1_000.0),
                address: crate::harness::commit(&format!("{house} {street} St")),
                district: district.into(),
            },
            attachments: attachments.clone(),
            through_gateway: false,
        };
        let author = &self.people.citizens[citizen];
        let answer = self
            .app
            .act(author, Action::FileComplaint(filing.clone()))
            .await;
        let author_hex = Self::hex(author);
        let id = self.accepted(&answer, "file_complaint");
        let now = self.now();
        self.complaints.push(ComplaintModel {
            id,
            author: citizen,
            filing,
            filed_at: now,
            status: Status::Filed,
            department: None,
            accepted_at: None,
            deadline: None,
            window_days: 0,
            resolved_at: None,
            confirmation_deadline: None,
            sla_breached: false,
            disputes: 0,
            rejection: None,
            merged_into: None,
            merged_from: Vec::new(),
            answer: None,
            attachments,
            evidence: Vec::new(),
            timeline: vec![step_json(
                id,
                now,
                "file_complaint",
                &author_hex,
                Status::Filed,
                None,
            )],
            asked_for_details: false,
            supplemented: false,
        });
        let at = now + self.rng.between(HOUR_MS, 36 * HOUR_MS);
        self.plan(
            at,
            Task::Complaint {
                index: number,
                step: Step::Triage,
            },
        );
    }

    /// A complaint to point at: one of `candidates`, preferring the same category and district.
    fn pick_related(&mut self, index: usize, candidates: Vec<usize>) -> Option<usize> {
        let complaint = &self.complaints[index];
        let close: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&other| {
                self.complaints[other].category() == complaint.category()
                    && self.complaints[other].district() == complaint.district()
            })
            .collect();
        let pool = if close.is_empty() { candidates } else { close };
        if pool.is_empty() {
            return None;
        }
        let pick = self.rng.below(pool.len() as u64) as usize;
        Some(pool[pick])
    }

    /// When the department answers, from `from`: some before the deadline, some after.
    fn resolution_time(&mut self, index: usize, from: i64) -> i64 {
        let deadline = self.complaints[index].deadline.unwrap();
        let latest = (deadline + 3 * DAY_MS).max(from + 3 * DAY_MS);
        self.rng.between(from + 2 * HOUR_MS, latest)
    }

    fn plan_department(&mut self, index: usize, from: i64) {
        let roll = self.rng.percent();
        let (at, step) = if roll < 7 {
            // Forgotten by the department: the deadline passes and the server says so.
            return;
        } else if roll < 14 {
            (self.resolution_time(index, from), Step::CannotResolve)
        } else if roll < 17 {
            let at = from + self.rng.between(2 * HOUR_MS, 48 * HOUR_MS);
            (at, Step::Merge)
        } else if roll < 57 {
            let at = from + self.rng.between(HOUR_MS, 24 * HOUR_MS);
            (at, Step::StartWork)
        } else {
            (self.resolution_time(index, from), Step::Resolve)
        };
        self.plan(at, Task::Complaint { index, step });
    }

    async fn complaint_step(&mut self, index: usize, step: Step) {
        match step {
            Step::Triage => self.triage(index).await,
            Step::Supplement => self.supplement(index).await,
            Step::Merge => {
                let candidates = (0..self.complaints.len())
                    .filter(|&other| other != index && !self.complaints[other].status.is_final())
                    .collect();
                if let Some(target) = self.pick_related(index, candidates) {
                    self.merge(index, target).await;
                }
            }
            Step::StartWork => {
                let department = self.complaints[index].department.unwrap();
                let id = self.complaints[index].id;
                let official = self.official(department).clone();
                let action = Action::StartWork(ComplaintReference { complaint: id });
                let expected = Expected::new(index, "start_work", Status::InProgress);
                let now = self.complaint_command(&official, action, expected).await;
                let roll = self.rng.percent();
                if roll >= 10 {
                    let at = self.resolution_time(index, now);
                    let step = if roll < 20 {
                        Step::CannotResolve
                    } else {
                        Step::Resolve
                    };
                    self.plan(at, Task::Complaint { index, step });
                }
            }
            Step::Resolve => self.resolve(index).await,
            Step::CannotResolve => {
                let department = self.complaints[index].department.unwrap();
                let id = self.complaints[index].id;
                let official = self.official(department).clone();
                let reason = format!("Complaint {id} concerns private property.");
                let action = Action::CannotResolve(CannotResolve {
                    complaint: id,
                    reason: reason.clone(),
                });
                let expected =
                    Expected::new(index, "cannot_resolve", Status::CannotResolve).noted(&reason);
                self.complaint_command(&official, action, expected).await;
                self.complaints[index].answer = Some(reason.clone());
            }
            Step::Confirm => {
                let complaint = &self.complaints[index];
                let author = self.people.citizens[complaint.author].clone();
                let action = Action::ConfirmResolution(ComplaintReference {
                    complaint: complaint.id,
                });
                let expected = Expected::new(index, "confirm_resolution", Status::Confirmed);
                self.complaint_command(&author, action, expected).await;
            }
            Step::Dispute => {
                let complaint = &self.complaints[index];
                let author = self.people.citizens[complaint.author].clone();
                let reason = format!("Complaint {}: nothing has changed.", complaint.id);
                let action = Action::DisputeResolution(Dispute {
                    complaint: complaint.id,
                    reason: crate::harness::commit(&reason),
                });
                // Content beside the log, served as the step's note.
                let expected =
                    Expected::new(index, "dispute_resolution", Status::InProgress).noted(&reason);
                let now = self.complaint_command(&author, action, expected).await;
                let complaint = &mut self.complaints[index];
                complaint.disputes += 1;
                complaint.resolved_at = None;
                complaint.confirmation_deadline = None;
                // Reopened: the department tries again, usually with a fix.
                let at = self.resolution_time(index, now);
                let step = if self.rng.percent() < 85 {
                    Step::Resolve
                } else {
                    Step::CannotResolve
                };
                self.plan(at, Task::Complaint { index, step });
            }
        }
    }

    async fn triage(&mut self, index: usize) {
        let moderator_index = self.moderator();
        let moderator = self.people.moderators[moderator_index].clone();
        let id = self.complaints[index].id;
        let roll = self.rng.percent();
        let rejection = match roll {
            0..=7 => Some(RejectionReason::Spam {
                redact_content: false,
            }),
            8..=11 => Some(RejectionReason::OutOfScope),
            12..=15 => Some(RejectionReason::InsufficientInfo),
            16..=21 => self
                .pick_related(index, (0..index).collect())
                .map(|original| RejectionReason::DuplicateOf {
                    complaint: self.complaints[original].id,
                }),
            _ => None,
        };
        if let Some(rejection) = rejection {
            let reason = serde_json::to_value(&rejection).unwrap();
            let action = Action::TriageComplaint(Triage {
                complaint: id,
                decision: TriageDecision::Reject {
                    rejection: rejection.clone(),
                },
            });
            let note = reason["reason"].as_str().unwrap().to_string();
            let expected = Expected::new(index, "triage_complaint", Status::Rejected).noted(&note);
            self.complaint_command(&moderator, action, expected).await;
            self.complaints[index].rejection = Some(reason);
            return;
        }
        if (22..28).contains(&roll) {
            let candidates = (0..index)
                .filter(|&other| !self.complaints[other].status.is_final())
                .collect();
            if let Some(target) = self.pick_related(index, candidates) {
                self.merge_by(index, target, &moderator).await;
                return;
            }
        }
        if (28..38).contains(&roll) && !self.complaints[index].asked_for_details {
            let question = format!("Complaint {id}: which entrance, and since when?");
            let action = Action::TriageComplaint(Triage {
                complaint: id,
                decision: TriageDecision::NeedsInfo {
                    question: question.clone(),
                },
            });
            let expected =
                Expected::new(index, "triage_complaint", Status::NeedsInfo).noted(&question);
            let now = self.complaint_command(&moderator, action, expected).await;
            self.complaints[index].asked_for_details = true;
            if self.rng.percent() < 75 {
                let at = now + self.rng.between(2 * HOUR_MS, 72 * HOUR_MS);
                self.plan(
                    at,
                    Task::Complaint {
                        index,
                        step: Step::Supplement,
                    },
                );
            }
            return;
        }
        let action = Action::TriageComplaint(Triage {
            complaint: id,
            decision: TriageDecision::Accept,
        });
        let expected = Expected::new(index, "triage_complaint", Status::Accepted);
        let now = self.complaint_command(&moderator, action, expected).await;
        let category = self.complaints[index].category().to_string();
        let (spec, _) = self.catalogue[category.as_str()];
        let complaint = &mut self.complaints[index];
        complaint.department = Some(spec.department);
        complaint.accepted_at = Some(now);
        complaint.deadline = Some(plus_working_days(now, spec.sla_working_days));
        complaint.window_days = spec.confirmation_window_days;
        self.plan_department(index, now);
    }

    async fn supplement(&mut self, index: usize) {
        let complaint = &self.complaints[index];
        let author = self.people.citizens[complaint.author].clone();
        let text = format!(
            "Complaint {}: the second entrance, since Monday.",
            complaint.id
        );
        let attachments = if self.rng.percent() < 50 {
            vec![photo(&format!("details {}", complaint.id))]
        } else {
            Vec::new()
        };
        let action = Action::SupplementComplaint(Supplement {
            complaint: complaint.id,
            text: crate::harness::commit(&text),
            attachments: attachments.clone(),
        });
        // Content beside the log, served as the step's note.
        let expected = Expected::new(index, "supplement_complaint", Status::Filed).noted(&text);
        let now = self.complaint_command(&author, action, expected).await;
        let complaint = &mut self.complaints[index];
        complaint.supplemented = true;
        // The author's photos sit with the author's filing, never with the department's
        // evidence of a fix.
        complaint.attachments.extend(attachments);
        let at = now + self.rng.between(HOUR_MS, 24 * HOUR_MS);
        self.plan(
            at,
            Task::Complaint {
                index,
                step: Step::Triage,
            },
        );
    }

    async fn merge(&mut self, index: usize, target: usize) {
        let moderator_index = self.moderator();
        let moderator = self.people.moderators[moderator_index].clone();
        self.merge_by(index, target, &moderator).await;
    }

    async fn merge_by(&mut self, index: usize, target: usize, moderator: &SigningKey) {
        let id = self.complaints[index].id;
        let into = self.complaints[target].id;
        let action = Action::MergeComplaint(Merge {
            complaint: id,
            into,
        });
        let note = format!("merged into {into}");
        let expected = Expected::new(index, "merge_complaint", Status::Merged).noted(&note);
        self.complaint_command(moderator, action, expected).await;
        self.complaints[target].merged_from.push(id);
        self.complaints[index].merged_into = Some(into);
    }

    async fn resolve(&mut self, index: usize) {
        let department = self.complaints[index].department.unwrap();
        let id = self.complaints[index].id;
        let official = self.official(department).clone();
        let answer_text = format!("Complaint {id}: fixed by the {department} crew.");
        let evidence = if self.rng.percent() < 60 {
            vec![photo(&format!(
                "fix {id} {}",
                self.complaints[index].disputes
            ))]
        } else {
            Vec::new()
        };
        let action = Action::ResolveComplaint(Resolution {
            complaint: id,
            answer: answer_text.clone(),
            evidence: evidence.clone(),
        });
        let expected =
            Expected::new(index, "resolve_complaint", Status::Resolved).noted(&answer_text);
        let now = self.complaint_command(&official, action, expected).await;
        let complaint = &mut self.complaints[index];
        complaint.resolved_at = Some(now);
        let window = i64::from(complaint.window_days) * DAY_MS;
        complaint.confirmation_deadline = Some(now + window);
        complaint.answer = Some(answer_text.clone());
        complaint.evidence.extend(evidence);
        let disputes = complaint.disputes;
        // The author confirms, disputes (at most twice), or stays silent until the window ends.
        let roll = self.rng.percent();
        let step = if roll < 40 {
            Step::Confirm
        } else if roll < 62 && disputes < 2 {
            Step::Dispute
        } else {
            return;
        };
        let at = self.rng.between(now + HOUR_MS, now + window - HOUR_MS);
        self.plan(at, Task::Complaint { index, step });
    }

    /// What the server must answer to a proposal step, from the model alone.
    fn expected_proposal_outcome(
        &self,
        index: usize,
        step: ProposalStep,
    ) -> Result<(), (u16, &'static str)> {
        let proposal = &self.proposals[index];
        let now = self.now();
        let transition = Err((409, "transition-not-allowed"));
        match step {
            ProposalStep::Submit => Ok(()),
            ProposalStep::Publish | ProposalStep::Reject => {
                if proposal.status == ProposalStatus::Submitted {
                    Ok(())
                } else {
                    transition
                }
            }
            ProposalStep::Support(citizen) => {
                if proposal.status != ProposalStatus::Published
                    || proposal.expires_at.is_some_and(|expiry| now >= expiry)
                {
                    transition
                } else if proposal.supporters.contains(&citizen) {
                    Err((409, "already-supported"))
                } else {
                    Ok(())
                }
            }
            ProposalStep::WithdrawSupport(citizen) => {
                if !proposal.supporters.contains(&citizen) {
                    Err((409, "not-supported"))
                } else if proposal.status == ProposalStatus::Published {
                    Ok(())
                } else if proposal.reached_at.is_some() {
                    Err((409, "threshold-reached"))
                } else {
                    transition
                }
            }
            ProposalStep::Answer(_) => {
                if proposal.status == ProposalStatus::UnderReview {
                    Ok(())
                } else {
                    transition
                }
            }
            ProposalStep::Withdraw => {
                if matches!(
                    proposal.status,
                    ProposalStatus::Submitted | ProposalStatus::Published
                ) {
                    Ok(())
                } else {
                    transition
                }
            }
        }
    }

    async fn proposal_step(&mut self, index: usize, step: ProposalStep) {
        let expected = self.expected_proposal_outcome(index, step);
        let proposal = &self.proposals[index];
        let department = proposal.department;
        let reference = |proposal: &ProposalModel| ProposalReference {
            proposal: proposal.id.unwrap(),
        };
        let (key, action) = match step {
            ProposalStep::Submit => (
                self.people.citizens[proposal.author].clone(),
                Action::SubmitProposal(proposal.submission.clone()),
            ),
            ProposalStep::Publish | ProposalStep::Reject => {
                let decision = match step {
                    ProposalStep::Publish => ModerationDecision::Publish,
                    _ => ModerationDecision::Reject {
                        reason: "The city already runs this programme.".into(),
                    },
                };
                let moderator_index = self.moderator();
                let proposal = &self.proposals[index];
                (
                    self.people.moderators[moderator_index].clone(),
                    Action::ModerateProposal(ProposalModeration {
                        proposal: proposal.id.unwrap(),
                        decision,
                    }),
                )
            }
            ProposalStep::Support(citizen) => (
                self.people.citizens[citizen].clone(),
                Action::SupportProposal(reference(proposal)),
            ),
            ProposalStep::WithdrawSupport(citizen) => (
                self.people.citizens[citizen].clone(),
                Action::WithdrawSupport(reference(proposal)),
            ),
            ProposalStep::Answer(outcome) => {
                let id = proposal.id.unwrap();
                (
                    self.official(department).clone(),
                    Action::AnswerProposal(ProposalAnswer {
                        proposal: id,
                        outcome,
                        answer: format!("Proposal {id}: {}.", outcome_name(outcome)),
                    }),
                )
            }
            ProposalStep::Withdraw => (
                self.people.citizens[proposal.author].clone(),
                Action::WithdrawProposal(reference(proposal)),
            ),
        };
        let what = format!("{} ({step:?}) of proposal {index}", action.name());
        let answer = self.app.act(&key, action.clone()).await;
        let (status, code) = match expected {
            Ok(()) => (0, ""),
            Err(refusal) => refusal,
        };
        if status != 0 {
            self.refused(&answer, status, code, &what);
            return;
        }
        let position = self.accepted(&answer, &what);
        let now = self.now();
        let category = self.proposals[index].submission.category.clone();
        let (spec, _) = self.catalogue[category.as_str()];
        let proposal = &mut self.proposals[index];
        match (step, action) {
            (ProposalStep::Submit, _) => {
                proposal.id = Some(position);
                proposal.submitted_at = now;
            }
            (ProposalStep::Publish, _) => {
                proposal.status = ProposalStatus::Published;
                proposal.published_at = Some(now);
                proposal.threshold = spec.support_threshold;
                proposal.expires_at = Some(now + i64::from(spec.proposal_lifetime_days) * DAY_MS);
            }
            (ProposalStep::Reject, _) => {
                proposal.status = ProposalStatus::Rejected;
                proposal.rejection_reason = Some("The city already runs this programme.".into());
            }
            (ProposalStep::Support(citizen), _) => {
                proposal.supporters.insert(citizen);
                proposal.history.push((position, now, proposal.supports()));
                if proposal.supports() >= proposal.threshold {
                    proposal.status = ProposalStatus::UnderReview;
                    proposal.reached_at = Some(now);
                }
            }
            (ProposalStep::WithdrawSupport(citizen), _) => {
                proposal.supporters.remove(&citizen);
                proposal.history.push((position, now, proposal.supports()));
            }
            (ProposalStep::Answer(outcome), Action::AnswerProposal(sent)) => {
                proposal.status = match outcome {
                    ProposalOutcome::Accepted => ProposalStatus::Accepted,
                    ProposalOutcome::Declined => ProposalStatus::Declined,
                    ProposalOutcome::Implemented => ProposalStatus::Implemented,
                };
                proposal.answer = Some(json!({
                    "outcome": outcome_name(outcome),
                    "answer": sent.answer,
                    "official": Self::hex(&key),
                    "at": ts(now),
                }));
            }
            (ProposalStep::Withdraw, _) => proposal.status = ProposalStatus::Withdrawn,
            (step, action) => panic!("{step:?} sent as {}", action.name()),
        }
    }

    /// Plans each proposal's month from its fate: who supports it and when.
    fn plan_proposals(&mut self, start: i64) {
        for (index, fate) in PROPOSAL_FATES.into_iter().enumerate() {
            let author = self.rng.below(CITIZENS as u64) as usize;
            let category = match fate {
                // The longest lifetime, submitted mid-month: still open when the month ends.
                ProposalFate::StillPublished => 1,
                // Short lifetimes: published early, they run out within the month.
                ProposalFate::Expire => [0, 2, 3][self.rng.below(3) as usize],
                _ => self.rng.below(CATEGORIES.len() as u64) as usize,
            };
            let spec = CATEGORIES[category];
            let submit_day = match fate {
                ProposalFate::StillPublished => 16,
                ProposalFate::LeftSubmitted => 28,
                ProposalFate::Rejected | ProposalFate::WithdrawnWhileSubmitted => {
                    self.rng.between(0, 25)
                }
                _ => self.rng.between(0, 6),
            };
            let submit_at = start + submit_day * DAY_MS + self.rng.between(HOUR_MS, 12 * HOUR_MS);
            let district = (self.rng.percent() < 70).then(|| self.people.districts[author].into());
            self.proposals.push(ProposalModel {
                id: None,
                author,
                submission: ProposalSubmission {
                    title: crate::harness::commit(&format!("{}: proposal {index}", spec.name)),
                    body: crate::harness::commit(&format!(
                        "Citizens of the district propose to improve {} (idea {index}).",
                        spec.name.to_lowercase()
                    )),
                    category: spec.id.into(),
                    district,
                },
                status: ProposalStatus::Submitted,
                department: spec.department,
                submitted_at: 0,
                published_at: None,
                expires_at: None,
                threshold: 0,
                supporters: BTreeSet::new(),
                history: Vec::new(),
                reached_at: None,
                rejection_reason: None,
                answer: None,
            });
            let mut others: Vec<usize> =
                (0..CITIZENS).filter(|&citizen| citizen != author).collect();
            // Fisher-Yates with the seeded generator: who supports is part of the seed.
            for slot in (1..others.len()).rev() {
                let swap = self.rng.below(slot as u64 + 1) as usize;
                others.swap(slot, swap);
            }
            self.plan(
                submit_at,
                Task::Proposal {
                    index,
                    step: ProposalStep::Submit,
                },
            );
            let moderated_at = submit_at + self.rng.between(2 * HOUR_MS, 20 * HOUR_MS);
            let lifetime = i64::from(spec.proposal_lifetime_days) * DAY_MS;
            let threshold = spec.support_threshold as usize;
            let proposal = |step| Task::Proposal { index, step };
            match fate {
                ProposalFate::LeftSubmitted => {}
                ProposalFate::Rejected => {
                    self.plan(moderated_at, proposal(ProposalStep::Reject));
                    self.plan(
                        moderated_at + DAY_MS,
                        proposal(ProposalStep::Support(others[0])),
                    );
                }
                ProposalFate::WithdrawnWhileSubmitted => {
                    let withdrawn_at = submit_at + self.rng.between(HOUR_MS / 2, HOUR_MS);
                    self.plan(withdrawn_at, proposal(ProposalStep::Withdraw));
                    self.plan(moderated_at, proposal(ProposalStep::Publish));
                }
                ProposalFate::Reach(outcome) => {
                    self.plan(moderated_at, proposal(ProposalStep::Publish));
                    let span = lifetime * 6 / 10;
                    let mut times: Vec<i64> = (0..=threshold)
                        .map(|_| moderated_at + HOUR_MS + self.rng.between(0, span))
                        .collect();
                    times.sort_unstable();
                    for (supporter, at) in others.iter().zip(&times) {
                        self.plan(*at, proposal(ProposalStep::Support(*supporter)));
                    }
                    // An early supporter changes their mind before the threshold is near.
                    self.plan(
                        (times[1] + times[2]) / 2,
                        proposal(ProposalStep::WithdrawSupport(others[0])),
                    );
                    let reached = times[threshold];
                    for late in 0..2 {
                        let at = reached + self.rng.between(HOUR_MS, 2 * DAY_MS);
                        self.plan(
                            at,
                            proposal(ProposalStep::Support(others[threshold + 1 + late])),
                        );
                    }
                    let at = reached + self.rng.between(HOUR_MS, 2 * DAY_MS);
                    self.plan(at, proposal(ProposalStep::WithdrawSupport(others[3])));
                    if let Some(outcome) = outcome {
                        let at = reached + self.rng.between(DAY_MS, 5 * DAY_MS);
                        self.plan(at, proposal(ProposalStep::Answer(outcome)));
                    }
                }
                ProposalFate::Expire | ProposalFate::StillPublished => {
                    self.plan(moderated_at, proposal(ProposalStep::Publish));
                    let count = self.rng.between(2, threshold as i64 / 2) as usize;
                    for supporter in &others[..count] {
                        let at = moderated_at + self.rng.between(HOUR_MS, lifetime * 8 / 10);
                        self.plan(at, proposal(ProposalStep::Support(*supporter)));
                    }
                    let at = moderated_at + lifetime * 9 / 10;
                    self.plan(at, proposal(ProposalStep::WithdrawSupport(others[0])));
                    // Too late: the proposal expired a moment before.
                    let at = moderated_at + lifetime + self.rng.between(1, DAY_MS);
                    self.plan(at, proposal(ProposalStep::Support(others[count])));
                }
                ProposalFate::WithdrawnWhilePublished => {
                    self.plan(moderated_at, proposal(ProposalStep::Publish));
                    for (order, supporter) in others[..3].iter().enumerate() {
                        let at = moderated_at + (order as i64 + 1) * HOUR_MS;
                        self.plan(at, proposal(ProposalStep::Support(*supporter)));
                    }
                    self.plan(moderated_at + 3 * DAY_MS, proposal(ProposalStep::Withdraw));
                    self.plan(
                        moderated_at + 4 * DAY_MS,
                        proposal(ProposalStep::Support(others[3])),
                    );
                    self.plan(
                        moderated_at + 4 * DAY_MS + HOUR_MS,
                        proposal(ProposalStep::WithdrawSupport(others[0])),
                    );
                }
            }
        }
    }

    // ---- What the server must publish, from the model alone. ----

    fn complaint_view(&self, complaint: &ComplaintModel, now: i64) -> Value {
        let location = &complaint.filing.location;
        json!({
            "id": complaint.id,
            "author": Self::hex(&self.people.citizens[complaint.author]),
            "category": complaint.category(),
            "description": text_of(complaint.filing.description),
            "location": {
                "latitude": location.latitude.0,
                "longitude": location.longitude.0,
                "address": text_of(location.address),
                "district": location.district,
            },
            "attachments": complaint.attachments.iter().map(attachment_json).collect::<Vec<_>>(),
            "status": complaint.status.name(),
            "department": complaint.department,
            "filed_at": ts(complaint.filed_at),
            "accepted_at": opt_ts(complaint.accepted_at),
            "deadline": opt_ts(complaint.deadline),
            "resolved_at": opt_ts(complaint.resolved_at),
            "confirmation_deadline": opt_ts(complaint.confirmation_deadline),
            "sla_breached": complaint.sla_breached,
            "sla_at_risk": complaint.sla_at_risk(now),
            "disputes": complaint.disputes,
            "rejection": complaint.rejection.clone().unwrap_or(Value::Null),
            "merged_into": complaint.merged_into,
            "merged_from": complaint.merged_from,
            "answer": complaint.answer,
            "evidence": complaint.evidence.iter().map(attachment_json).collect::<Vec<_>>(),
            "timeline": complaint.timeline,
        })
    }

    fn proposal_view(&self, proposal: &ProposalModel) -> Value {
        json!({
            "id": proposal.id,
            "author": Self::hex(&self.people.citizens[proposal.author]),
            "title": text_of(proposal.submission.title),
            "body": text_of(proposal.submission.body),
            "category": proposal.submission.category,
            "district": proposal.submission.district,
            "status": proposal.status.name(),
            "department": proposal.department,
            "submitted_at": ts(proposal.submitted_at),
            "published_at": opt_ts(proposal.published_at),
            "expires_at": opt_ts(proposal.expires_at),
            "support_threshold": proposal.threshold,
            "supports": proposal.supports(),
            "reached_threshold_at": opt_ts(proposal.reached_at),
            "rejection_reason": proposal.rejection_reason,
            "answer": proposal.answer.clone().unwrap_or(Value::Null),
            "support_history": proposal.history.iter().map(|(position, at, supports)| {
                json!({"position": position, "at": ts(*at), "supports": supports})
            }).collect::<Vec<_>>(),
        })
    }

    fn statistics(&self) -> Value {
        let all: Vec<&ComplaintModel> = self.complaints.iter().collect();
        let mut by_district: BTreeMap<String, Vec<&ComplaintModel>> = BTreeMap::new();
        let mut by_category: BTreeMap<String, Vec<&ComplaintModel>> = BTreeMap::new();
        let mut by_department: BTreeMap<String, Vec<&ComplaintModel>> = BTreeMap::new();
        let mut by_month: BTreeMap<String, Vec<&ComplaintModel>> = BTreeMap::new();
        for complaint in &all {
            by_district
                .entry(complaint.district().into())
                .or_default()
                .push(complaint);
            by_category
                .entry(complaint.category().into())
                .or_default()
                .push(complaint);
            by_department
                .entry(complaint.department.unwrap_or("unrouted").into())
                .or_default()
                .push(complaint);
            by_month
                .entry(month_of(complaint.filed_at))
                .or_default()
                .push(complaint);
        }
        let groups = |groups: BTreeMap<String, Vec<&ComplaintModel>>| -> Value {
            groups
                .into_iter()
                .map(|(key, members)| (key, group_statistics(&members)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "overall": group_statistics(&all),
            "by_district": groups(by_district),
            "by_category": groups(by_category),
            "by_department": groups(by_department),
            "by_month": groups(by_month),
        })
    }
}

fn ratio(part: u64, whole: u64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(part as f64 / whole as f64)
    }
}

/// Nearest rank: the smallest value with at least `percent` of the values at or below it.
fn percentile_hours(sorted_ms: &[i64], percent: usize) -> Value {
    if sorted_ms.is_empty() {
        return Value::Null;
    }
    let rank = (percent * sorted_ms.len()).div_ceil(100).max(1);
    json!(sorted_ms[rank - 1] as f64 / HOUR_MS as f64)
}

/// Every statistic of docs/STATISTICS.md for one group, counted straight from the model.
fn group_statistics(members: &[&ComplaintModel]) -> Value {
    let count = |keep: &dyn Fn(&ComplaintModel) -> bool| {
        members.iter().filter(|complaint| keep(complaint)).count() as u64
    };
    let is = |status: Status| count(&|complaint: &ComplaintModel| complaint.status == status);
    let filed = members.len() as u64;
    let accepted = count(&|complaint| complaint.accepted_at.is_some());
    let resolved = count(&|complaint| complaint.status.resolution_stands());
    let confirmed = is(Status::Confirmed);
    let within_sla = count(&|complaint| {
        complaint.status.resolution_stands()
            && complaint.resolved_at.unwrap() <= complaint.deadline.unwrap()
    });
    let mut hours: Vec<i64> = members
        .iter()
        .filter(|complaint| complaint.status.resolution_stands())
        .map(|complaint| complaint.resolved_at.unwrap() - complaint.filed_at)
        .collect();
    hours.sort_unstable();
    json!({
        "filed": filed,
        // Every resident of this month files with a key of their own: no gateway files here
        // (tests/api/open311_complete.rs counts the gateway's filings).
        "filed_through_gateway": 0,
        "accepted": accepted,
        "rejected": is(Status::Rejected),
        "merged": is(Status::Merged),
        "awaiting_triage": is(Status::Filed) + is(Status::NeedsInfo),
        "awaiting_department": is(Status::Accepted) + is(Status::InProgress),
        "resolved": resolved,
        "awaiting_confirmation": is(Status::Resolved),
        "confirmed": confirmed,
        "closed_unconfirmed": is(Status::ClosedUnconfirmed),
        "cannot_resolve": is(Status::CannotResolve),
        "disputed": count(&|complaint| complaint.disputes > 0),
        "reopened": members.iter().map(|complaint| u64::from(complaint.disputes)).sum::<u64>(),
        "sla_breached": count(&|complaint| complaint.sla_breached),
        "resolved_within_sla": within_sla,
        "accepted_per_filed": ratio(accepted, filed),
        "resolved_per_accepted_including_unconfirmed": ratio(resolved, accepted),
        "confirmed_per_accepted": ratio(confirmed, accepted),
        "resolved_within_sla_share": ratio(within_sla, resolved),
        "resolution_hours_median": percentile_hours(&hours, 50),
        "resolution_hours_p90": percentile_hours(&hours, 90),
    })
}

/// Walks both documents and names every difference by its path: a missing field, a field the
/// test does not know (a new number nobody checks), or a different value.
fn differences(path: &str, actual: &Value, expected: &Value, found: &mut Vec<String>) {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, value) in expected {
                match actual.get(key) {
                    Some(found_value) => {
                        differences(&format!("{path}.{key}"), found_value, value, found)
                    }
                    None => found.push(format!("{path}.{key}: missing")),
                }
            }
            for key in actual.keys().filter(|key| !expected.contains_key(*key)) {
                found.push(format!(
                    "{path}.{key}: published but not checked by this test"
                ));
            }
        }
        (Value::Array(actual), Value::Array(expected)) => {
            if actual.len() != expected.len() {
                let ids = |items: &[Value]| -> Vec<String> {
                    items.iter().map(|item| item["id"].to_string()).collect()
                };
                found.push(format!(
                    "{path}: {} items, expected {} (ids {:?}, expected {:?})",
                    actual.len(),
                    expected.len(),
                    ids(actual),
                    ids(expected)
                ));
            }
            for (index, (actual, expected)) in actual.iter().zip(expected).enumerate() {
                differences(&format!("{path}[{index}]"), actual, expected, found);
            }
        }
        _ if actual != expected => found.push(format!("{path}: got {actual}, expected {expected}")),
        _ => {}
    }
}

fn assert_same(what: &str, actual: &Value, expected: &Value) {
    let mut found = Vec::new();
    differences("", actual, expected, &mut found);
    assert!(
        found.is_empty(),
        "{what}: {} differences:\n{}",
        found.len(),
        found
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Parses JSON keeping every number exactly as the server wrote it. serde_json's default float
/// parsing may land one unit in the last place away from the written digits, which would blur
/// an exact comparison of rates and percentiles; the standard library's parse is exact.
fn exact_json(text: &str) -> Value {
    let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
    exact_value(&raw)
}

fn exact_value(raw: &RawValue) -> Value {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            let members: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).unwrap();
            Value::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key, exact_value(&value)))
                    .collect(),
            )
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text).unwrap();
            Value::Array(items.iter().map(|item| exact_value(item)).collect())
        }
        Some(b'-' | b'0'..=b'9') if text.contains(['.', 'e', 'E']) => {
            json!(text.parse::<f64>().unwrap())
        }
        _ => serde_json::from_str(text).unwrap(),
    }
}

/// Which complaints a list with query filters must return.
type Filter = Box<dyn Fn(&ComplaintModel) -> bool>;

/// Raw answers by path, to compare byte for byte after the restart.
#[derive(Default)]
struct Snapshot(BTreeMap<String, String>);

impl Snapshot {
    async fn get(&mut self, app: &TestApp, path: &str) -> Value {
        let response = app.get_response(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.unwrap();
        let value = exact_json(&text);
        self.0.insert(path.to_string(), text);
        value
    }
}

/// How a list pages: the page size asked for, the field holding a page's items, the field naming
/// the next page (absent on the last) and the query parameter that passes it back.
struct Paging {
    limit: u32,
    items: &'static str,
    next: &'static str,
    parameter: &'static str,
}

const COMPLAINT_PAGING: Paging = Paging {
    limit: 7,
    items: "complaints",
    next: "next_after",
    parameter: "after",
};

const PROPOSAL_PAGING: Paging = Paging {
    limit: 4,
    items: "proposals",
    next: "next_cursor",
    parameter: "cursor",
};

/// Every item of the list at `base`, page after page until a page names no next one.
async fn all_pages(world: &World, snapshot: &mut Snapshot, base: &str, paging: &Paging) -> Value {
    let separator = if base.contains('?') { '&' } else { '?' };
    let first = format!("{base}{separator}limit={}", paging.limit);
    let mut path = first.clone();
    let mut items = Vec::new();
    loop {
        let page = snapshot.get(&world.app, &path).await;
        items.extend(page[paging.items].as_array().unwrap().iter().cloned());
        let next = match &page[paging.next] {
            Value::Number(after) => after.to_string(),
            Value::String(cursor) => cursor.clone(),
            _ => break,
        };
        path = format!("{first}&{}={next}", paging.parameter);
    }
    Value::Array(items)
}

/// Follows `next_after` through a complaint list; every page item must be the model's view.
async fn complaint_pages(
    world: &World,
    snapshot: &mut Snapshot,
    base: &str,
    expected: &[&ComplaintModel],
) {
    let now = world.now();
    let items = all_pages(world, snapshot, base, &COMPLAINT_PAGING).await;
    let views: Vec<Value> = expected
        .iter()
        .map(|complaint| world.complaint_view(complaint, now))
        .collect();
    assert_same(base, &items, &Value::Array(views));
}

/// Follows `next_cursor` through a proposal list; every page item must be the model's view.
async fn proposal_pages(
    world: &World,
    snapshot: &mut Snapshot,
    base: &str,
    expected: &[&ProposalModel],
) {
    let items = all_pages(world, snapshot, base, &PROPOSAL_PAGING).await;
    let views: Vec<Value> = expected
        .iter()
        .map(|proposal| world.proposal_view(proposal))
        .collect();
    assert_same(base, &items, &Value::Array(views));
}

async fn set_up(app: TestApp, seed: u64) -> World {
    let server_key = app.get("/v1/log").await.body["server_key"]
        .as_str()
        .unwrap()
        .to_string();
    let size = app.log_size().await;
    let keys = |count: usize| (0..count).map(|_| app.new_key()).collect::<Vec<_>>();
    let mut staff = keys(7);
    let citizens = keys(CITIZENS);
    let registrar = staff.pop().unwrap();
    let moderators = [staff.pop().unwrap(), staff.pop().unwrap()];
    let mut officials: BTreeMap<&'static str, Vec<SigningKey>> = BTreeMap::new();
    for department in ["roads", "roads", "housing", "parks"] {
        officials
            .entry(department)
            .or_default()
            .push(staff.pop().unwrap());
    }
    officials.insert("public-order", vec![app.new_key()]);
    let mut world = World {
        people: People {
            moderators,
            officials,
            registrar,
            citizens,
            districts: (0..CITIZENS)
                .map(|citizen| DISTRICTS[citizen % DISTRICTS.len()])
                .collect(),
        },
        app,
        server_key,
        rng: Rng(seed),
        end: TEST_START.0 + MONTH_DAYS * DAY_MS,
        schedule: BTreeMap::new(),
        sequence: 0,
        size,
        catalogue: CATEGORIES
            .iter()
            .map(|spec| (spec.id, (*spec, 1)))
            .collect(),
        second_moderator_active: true,
        complaints: Vec::new(),
        proposals: Vec::new(),
        refusals: BTreeMap::new(),
    };
    let admin = world.app.admin.clone();
    for spec in CATEGORIES {
        world
            .setup(&admin, Action::DefineCategory(spec.definition()))
            .await;
    }
    let staff: Vec<(SigningKey, Role, Option<&str>)> = world
        .people
        .moderators
        .iter()
        .map(|key| (key.clone(), Role::Moderator, None))
        .chain(
            world
                .people
                .officials
                .iter()
                .flat_map(|(department, keys)| {
                    keys.iter()
                        .map(|key| (key.clone(), Role::Official, Some(*department)))
                }),
        )
        .chain([(world.people.registrar.clone(), Role::Registrar, None)])
        .collect();
    for (key, role, department) in staff {
        world.setup(&key, Action::RegisterKey(RegisterKey {})).await;
        let grant = Action::GrantRole(RoleChange {
            subject: public(&key),
            role,
            department: department.map(str::to_string),
        });
        world.setup(&admin, grant).await;
    }
    let registrar = world.people.registrar.clone();
    for citizen in 0..CITIZENS {
        let key = world.people.citizens[citizen].clone();
        world.setup(&key, Action::RegisterKey(RegisterKey {})).await;
        let attestation = Action::AttestResident(Attestation {
            subject: public(&key),
            district: Some(world.people.districts[citizen].into()),
            verified: true,
            resident_tag: Some(resident_tag_of(&key)),
        });
        world.setup(&registrar, attestation).await;
    }
    world
}

/// A month of the district played out through the API from `seed`: the world at the month's end.
async fn play(app: TestApp, seed: u64) -> World {
    let mut world = set_up(app, seed).await;
    let start = world.now() + HOUR_MS;

    // The month's schedule: filings every day, a catalogue change, a revoked moderator, and
    // each proposal's plan. Complaint steps are planned as each previous step lands.
    for day in 0..MONTH_DAYS {
        let filings = 6 + world.rng.below(7);
        for _ in 0..filings {
            let at = start + day * DAY_MS + world.rng.between(0, DAY_MS - HOUR_MS);
            let citizen = world.rng.below(CITIZENS as u64) as usize;
            let category = world.rng.below(CATEGORIES.len() as u64) as usize;
            world.plan(at, Task::File { citizen, category });
        }
    }
    world.plan(start + 15 * DAY_MS, Task::Redefine);
    world.plan(start + 20 * DAY_MS, Task::RevokeModerator);
    world.plan_proposals(start);

    while let Some(((at, _), task)) = world.schedule.pop_first() {
        world.set_time(at).await;
        world.run(task).await;
        world.flush().await;
    }
    let end = world.end;
    world.set_time(end).await;
    world
}

/// The month's log on a server over `directory`, for tests that need a city's worth of data.
pub(crate) async fn a_month_of_a_district(directory: &std::path::Path) -> TestApp {
    play(TestApp::spawn(directory).await, SEED).await.app
}

#[actix_web::test]
async fn a_month_of_a_district_publishes_statistics_that_match_an_independent_count() {
    let started = std::time::Instant::now();
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    let world = play(app, SEED).await;
    let simulated = started.elapsed();

    // The month must have exercised what the statistics are about, whatever the seed.
    let complaints = &world.complaints;
    assert!(complaints.len() >= 200, "{} complaints", complaints.len());
    let has = |keep: &dyn Fn(&ComplaintModel) -> bool| complaints.iter().any(keep);
    for status in [
        Status::Filed,
        Status::NeedsInfo,
        Status::Accepted,
        Status::InProgress,
        Status::Resolved,
        Status::CannotResolve,
        Status::Confirmed,
        Status::ClosedUnconfirmed,
        Status::Rejected,
        Status::Merged,
    ] {
        assert!(has(&|c| c.status == status), "no complaint ends {status:?}");
    }
    for reason in ["spam", "out_of_scope", "insufficient_info", "duplicate_of"] {
        assert!(
            has(&|c| c.rejection.as_ref().is_some_and(|r| r["reason"] == reason)),
            "no rejection as {reason}"
        );
    }
    assert!(has(&|c| c.supplemented), "nobody supplemented details");
    assert!(has(&|c| c.merged_into.is_some() && c.accepted_at.is_some()));
    assert!(has(
        &|c| c.status.resolution_stands() && c.resolved_at.unwrap() <= c.deadline.unwrap()
    ));
    assert!(has(&|c| c.status.resolution_stands() && c.sla_breached));
    assert!(has(&|c| c.disputes > 0 && c.status == Status::Confirmed));
    assert!(has(
        &|c| c.disputes > 0 && c.status == Status::ClosedUnconfirmed
    ));
    assert!(has(&|c| c.category() == "potholes" && c.window_days == 4));
    assert!(has(&|c| c.category() == "potholes" && c.window_days == 7));
    for status in ProposalStatus::ALL {
        assert!(
            world.proposals.iter().any(|p| p.status == status),
            "no proposal ends {status:?}"
        );
    }
    for code in ["transition-not-allowed", "threshold-reached"] {
        assert!(world.refusals.contains_key(code), "no {code} refusal met");
    }

    let mut snapshot = Snapshot::default();
    let statistics = snapshot.get(&world.app, "/v1/statistics/complaints").await;
    assert_same("statistics", &statistics, &world.statistics());
    // "Resolved" includes closures the author never confirmed; "confirmed" only what they did.
    let overall = |field: &str| statistics["overall"][field].as_u64().unwrap();
    assert!(overall("resolved") > overall("confirmed"));
    assert_eq!(
        overall("resolved"),
        overall("confirmed") + overall("closed_unconfirmed") + overall("awaiting_confirmation")
    );
    let months: Vec<&String> = statistics["by_month"].as_object().unwrap().keys().collect();
    assert_eq!(months, ["2026-11", "2026-12"]);
    assert_eq!(statistics["by_district"].as_object().unwrap().len(), 3);
    assert!(statistics["by_department"]
        .as_object()
        .unwrap()
        .contains_key("unrouted"));

    // Every complaint, page by page, is the model's view of it.
    let all: Vec<&ComplaintModel> = world.complaints.iter().collect();
    complaint_pages(&world, &mut snapshot, "/v1/complaints", &all).await;

    // The moderator queue: new first-in-first-out, and its filters combined.
    let now = world.now();
    let filters: Vec<(String, Filter)> = vec![
        (
            "/v1/complaints?status=filed".into(),
            Box::new(|c| c.status == Status::Filed),
        ),
        (
            "/v1/complaints?status=needs_info".into(),
            Box::new(|c| c.status == Status::NeedsInfo),
        ),
        (
            "/v1/complaints?status=filed&district=Arbat".into(),
            Box::new(|c| c.status == Status::Filed && c.district() == "Arbat"),
        ),
        (
            "/v1/complaints?category=potholes&district=Tverskoy".into(),
            Box::new(|c| c.category() == "potholes" && c.district() == "Tverskoy"),
        ),
        (
            "/v1/complaints?department=roads&status=in_progress".into(),
            Box::new(|c| c.department == Some("roads") && c.status == Status::InProgress),
        ),
        (
            "/v1/complaints?sla_at_risk=true".into(),
            Box::new(move |c| c.sla_at_risk(now)),
        ),
        (
            "/v1/complaints?sla_at_risk=false&department=housing".into(),
            Box::new(move |c| !c.sla_at_risk(now) && c.department == Some("housing")),
        ),
        (
            "/v1/complaints?status=resolved&category=yard-cleaning".into(),
            Box::new(|c| c.status == Status::Resolved && c.category() == "yard-cleaning"),
        ),
        // The moderator's age filters: waiting for at least two days, and filed in the last week.
        (
            "/v1/complaints?status=filed&older_than_hours=48".into(),
            Box::new(move |c| c.status == Status::Filed && now - c.filed_at >= 48 * HOUR_MS),
        ),
        (
            "/v1/complaints?newer_than_hours=168&district=Arbat".into(),
            Box::new(move |c| now - c.filed_at < 168 * HOUR_MS && c.district() == "Arbat"),
        ),
        (
            "/v1/complaints?older_than_hours=24&newer_than_hours=240".into(),
            Box::new(move |c| (24 * HOUR_MS..240 * HOUR_MS).contains(&(now - c.filed_at))),
        ),
    ];
    for (path, keep) in &filters {
        let expected: Vec<&ComplaintModel> = world.complaints.iter().filter(|c| keep(c)).collect();
        complaint_pages(&world, &mut snapshot, path, &expected).await;
    }
    // The age filters split the month: some complaints on each side of two days.
    let waiting = |c: &&ComplaintModel| now - c.filed_at >= 48 * HOUR_MS;
    let old = world.complaints.iter().filter(waiting).count();
    assert!(
        0 < old && old < world.complaints.len(),
        "{old} of {}",
        world.complaints.len()
    );
    for path in [
        "/v1/complaints?older_than_hours=87841",
        "/v1/complaints?newer_than_hours=0",
        "/v1/complaints?older_than_hours=-1",
    ] {
        let refused = world.app.get(path).await;
        assert_eq!(refused.status, 400, "{path}: {:?}", refused.body);
        assert_eq!(
            refused.body["type"], "urn:veche:problem:malformed-request",
            "{path}"
        );
    }
    let queue: Vec<&ComplaintModel> = world
        .complaints
        .iter()
        .filter(|c| c.status == Status::Filed)
        .collect();
    assert!(
        queue.len() >= 2,
        "the moderator queue is empty at the month's end"
    );

    // Each department's queue: what it owes, oldest first.
    let mut owed_somewhere = 0;
    for department in ["roads", "housing", "parks", "public-order"] {
        let owed: Vec<&ComplaintModel> = world
            .complaints
            .iter()
            .filter(|c| c.department == Some(department) && c.status.awaits_department())
            .collect();
        owed_somewhere += owed.len();
        let path = format!("/v1/departments/{department}/complaints");
        complaint_pages(&world, &mut snapshot, &path, &owed).await;
    }
    assert!(owed_somewhere > 0);

    // One complaint's whole story: the most eventful one with a dispute and a breach.
    let story = world
        .complaints
        .iter()
        .filter(|c| c.disputes > 0 && c.sla_breached)
        .max_by_key(|c| (c.timeline.len(), std::cmp::Reverse(c.id)))
        .unwrap();
    let path = format!("/v1/complaints/{}", story.id);
    let found = snapshot.get(&world.app, &path).await;
    assert_same(&path, &found, &world.complaint_view(story, now));
    let actions: Vec<&str> = found["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["action"].as_str().unwrap())
        .collect();
    for action in [
        "file_complaint",
        "triage_complaint",
        "resolve_complaint",
        "dispute_resolution",
        "breach_sla",
    ] {
        assert!(actions.contains(&action), "{path}: {actions:?}");
    }

    // Proposals: every list order, every status, a category and a district, and each one.
    let submitted: Vec<&ProposalModel> =
        world.proposals.iter().filter(|p| p.id.is_some()).collect();
    assert_eq!(submitted.len(), PROPOSAL_FATES.len());
    let sorted = |key: &dyn Fn(&ProposalModel) -> i64| {
        let mut list = submitted.clone();
        list.sort_by_key(|p| std::cmp::Reverse((key(p), p.id.unwrap())));
        list
    };
    let newest = sorted(&|p| p.submitted_at);
    proposal_pages(&world, &mut snapshot, "/v1/proposals", &newest).await;
    proposal_pages(&world, &mut snapshot, "/v1/proposals?sort=newest", &newest).await;
    let by_supports = sorted(&|p| p.supports() as i64);
    proposal_pages(
        &world,
        &mut snapshot,
        "/v1/proposals?sort=supports",
        &by_supports,
    )
    .await;
    let trending = sorted(&|p| p.trending(now));
    proposal_pages(
        &world,
        &mut snapshot,
        "/v1/proposals?sort=trending",
        &trending,
    )
    .await;
    for status in ProposalStatus::ALL {
        let expected: Vec<&ProposalModel> = newest
            .iter()
            .copied()
            .filter(|p| p.status == status)
            .collect();
        let path = format!("/v1/proposals?status={}&sort=supports", status.name());
        let mut by_support = expected.clone();
        by_support.sort_by_key(|p| std::cmp::Reverse((p.supports(), p.id.unwrap())));
        proposal_pages(&world, &mut snapshot, &path, &by_support).await;
    }
    let in_category: Vec<&ProposalModel> = newest
        .iter()
        .copied()
        .filter(|p| p.submission.category == "street-lighting")
        .collect();
    proposal_pages(
        &world,
        &mut snapshot,
        "/v1/proposals?category=street-lighting",
        &in_category,
    )
    .await;
    let in_district: Vec<&ProposalModel> = newest
        .iter()
        .copied()
        .filter(|p| p.submission.district.as_deref() == Some("Arbat"))
        .collect();
    proposal_pages(
        &world,
        &mut snapshot,
        "/v1/proposals?district=Arbat",
        &in_district,
    )
    .await;
    for proposal in &submitted {
        let path = format!("/v1/proposals/{}", proposal.id.unwrap());
        let found = snapshot.get(&world.app, &path).await;
        assert_same(&path, &found, &world.proposal_view(proposal));
    }

    let categories = snapshot.get(&world.app, "/v1/categories").await;
    let expected_categories: Vec<Value> = world
        .catalogue
        .values()
        .map(|(spec, version)| {
            json!({
                "id": spec.id,
                "name": spec.name,
                "department": spec.department,
                "sla_working_days": spec.sla_working_days,
                "confirmation_window_days": spec.confirmation_window_days,
                "support_threshold": spec.support_threshold,
                "proposal_lifetime_days": spec.proposal_lifetime_days,
                "supports_from_residents_only": false,
                "version": version,
            })
        })
        .collect();
    assert_same(
        "categories",
        &categories,
        &json!({"categories": expected_categories}),
    );
    let log = snapshot.get(&world.app, "/v1/log").await;
    assert_eq!(log["size"], world.size);

    // The same data directory, a new process's worth of state: every answer byte-identical.
    let clock = world.app.clock.clone();
    world.app.stop().await;
    let app = TestApp::spawn_with_clock(directory.path(), clock.clone()).await;
    assert!(app.node.ledger().due_system_actions(app.now()).is_empty());
    for (path, before) in &snapshot.0 {
        let after = app.get_text(path).await;
        assert!(
            after == *before,
            "{path} changed across the restart:\nbefore {before}\nafter  {after}"
        );
    }
    app.stop().await;

    // And a journalist's recount of the downloaded log agrees with every entry.
    assert_data_directory_verifies(directory.path());
    // Moved to PostgreSQL, the city serves the same tallies, statistics and root.
    crate::migration::moves_to_postgresql_with_identical_answers(
        directory.path(),
        clock,
        &snapshot.0,
    )
    .await;
    eprintln!(
        "a month of a district: {} complaints, {} proposals, {} log entries, {} snapshots, {} refusals met; simulated in {:.1?}, {:.1?} in all",
        world.complaints.len(),
        world.proposals.len(),
        world.size,
        snapshot.0.len(),
        world.refusals.values().sum::<u64>(),
        simulated,
        started.elapsed()
    );
}
