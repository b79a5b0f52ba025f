//! Open-data exports: every file's bytes as a pure function of the ledger at one log size, so the
//! server that streams them and the journalist who recomputes them run this same code
//! (`docs/OPEN_DATA.md` documents every column).
//!
//! Only what the log holds goes in: content the citizens committed to (complaint descriptions,
//! addresses, proposal titles) is named by its commitment, never by its text, so erased or
//! redacted content cannot leak into a file and every byte can be recomputed from the log alone.
//! Authors' keys are left out as well: open data is about the city, not about who wrote.
//!
//! CSV follows RFC 4180 (comma, CRLF, a field quoted when it holds a comma, quote, CR or LF,
//! quotes doubled) and is written here rather than through a CSV library so that the bytes are
//! this module's alone to define; the tests read it back with the `csv` crate. Numbers are
//! written as serde_json writes them (shortest round-trip form), timestamps as RFC 3339 in UTC
//! with milliseconds, absent values as an empty field.

use std::collections::BTreeMap;

use projections::command::{Audience, ChoiceKind, RejectionReason, TallyVisibility};
use projections::complaints::Complaint;
use projections::ledger::PollStatus;
use projections::proposals::Proposal;
use projections::statistics::{complaint_statistics, ComplaintStatistics};
use projections::{Ledger, Poll, Timestamp};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Every export, by file name, in the order a dump lists them.
pub const FILES: [&str; 10] = [
    "complaints.csv",
    "complaints.geojson",
    "polls.csv",
    "polls.json",
    "poll-results.csv",
    "poll-results.json",
    "proposals.csv",
    "proposals.json",
    "complaint-statistics.csv",
    "complaint-statistics.json",
];

/// The `format` member of a dump's manifest: which layout of files and manifest it is.
pub const MANIFEST_FORMAT: &str = "veche open-data dump v1";
pub const MANIFEST_FILE: &str = "manifest.json";

/// A file's media type, from its extension.
pub fn content_type(name: &str) -> &'static str {
    if name.ends_with(".csv") {
        "text/csv; charset=utf-8; header=present"
    } else if name.ends_with(".geojson") {
        "application/geo+json"
    } else {
        "application/json"
    }
}

/// Why a file could not be rendered: only a JSON encoder failing, which these types never make
/// it do.
#[derive(Debug, thiserror::Error)]
pub enum OpenDataError {
    #[error("no export is named {0:?}")]
    UnknownFile(String),
    #[error("cannot encode the export: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Where the numbers were taken: the log size, its Merkle root (base64) and origin. A signed
/// checkpoint with the same size and root (the `X-Veche-Checkpoint` header, a dump's manifest)
/// ties the file to the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamp {
    pub log_origin: String,
    pub log_size: u64,
    pub root: String,
    /// The server time of the last entry: poll statuses are as of this instant.
    pub last_entry_at: Timestamp,
}

impl Stamp {
    pub fn of(ledger: &Ledger) -> Stamp {
        Stamp {
            log_origin: ledger
                .identity()
                .map(|identity| identity.log_origin.clone())
                .unwrap_or_default(),
            log_size: ledger.size,
            root: base64::engine::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                ledger.merkle.root(),
            ),
            last_entry_at: ledger.last_server_time,
        }
    }
}

/// One complaint's row: what the log says of it, its texts only by commitment.
#[derive(Clone, Debug, Serialize)]
pub struct ComplaintRow {
    pub id: u64,
    pub filed_at: Timestamp,
    pub category: String,
    pub district: String,
    pub latitude: f64,
    pub longitude: f64,
    pub status: &'static str,
    pub department: Option<String>,
    pub accepted_at: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub confirmation_deadline: Option<Timestamp>,
    pub sla_breached: bool,
    pub disputes: u32,
    pub rejection_reason: Option<&'static str>,
    pub duplicate_of: Option<u64>,
    pub merged_into: Option<u64>,
    /// Space-separated ids of the complaints merged into this one.
    pub merged_from: String,
    pub attachments: usize,
    pub evidence: usize,
    pub answer: Option<String>,
    pub description_commitment: String,
    pub content_erased_by: Option<u64>,
}

/// The CSV header of `complaints.csv`, in the row's field order.
pub const COMPLAINT_COLUMNS: [&str; 23] = [
    "id",
    "filed_at",
    "category",
    "district",
    "latitude",
    "longitude",
    "status",
    "department",
    "accepted_at",
    "deadline",
    "resolved_at",
    "confirmation_deadline",
    "sla_breached",
    "disputes",
    "rejection_reason",
    "duplicate_of",
    "merged_into",
    "merged_from",
    "attachments",
    "evidence",
    "answer",
    "description_commitment",
    "content_erased_by",
];

impl ComplaintRow {
    pub fn of(complaint: &Complaint, ledger: &Ledger) -> ComplaintRow {
        let location = &complaint.filing.location;
        let merged_from: Vec<String> = complaint.merged_from.iter().map(u64::to_string).collect();
        ComplaintRow {
            id: complaint.id,
            filed_at: complaint.filed_at,
            category: complaint.filing.category.clone(),
            district: location.district.clone(),
            latitude: location.latitude.0,
            longitude: location.longitude.0,
            status: complaint.status.name(),
            department: complaint.department.clone(),
            accepted_at: complaint.accepted_at,
            deadline: complaint.deadline,
            resolved_at: complaint.resolved_at,
            confirmation_deadline: complaint.confirmation_deadline,
            sla_breached: complaint.sla_breached,
            disputes: complaint.disputes,
            rejection_reason: complaint.rejection.as_ref().map(RejectionReason::name),
            duplicate_of: match complaint.rejection {
                Some(RejectionReason::DuplicateOf { complaint }) => Some(complaint),
                _ => None,
            },
            merged_into: complaint.merged_into,
            merged_from: merged_from.join(" "),
            attachments: complaint.filing.attachments.len(),
            evidence: complaint.evidence.len(),
            answer: complaint.answer.clone(),
            description_commitment: hex::encode(complaint.filing.description.0),
            content_erased_by: ledger.erasures.erased_by(complaint.id),
        }
    }

    /// Every complaint's row, in id order: the copy a server takes under one read of its ledger.
    pub fn all(ledger: &Ledger) -> Vec<ComplaintRow> {
        let rows = ledger.complaints.values();
        rows.map(|complaint| ComplaintRow::of(complaint, ledger))
            .collect()
    }

    fn fields(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.filed_at.to_rfc3339(),
            self.category.clone(),
            self.district.clone(),
            number(self.latitude),
            number(self.longitude),
            self.status.to_owned(),
            optional(self.department.as_ref()),
            optional_time(self.accepted_at),
            optional_time(self.deadline),
            optional_time(self.resolved_at),
            optional_time(self.confirmation_deadline),
            self.sla_breached.to_string(),
            self.disputes.to_string(),
            optional(self.rejection_reason),
            optional(self.duplicate_of),
            optional(self.merged_into),
            self.merged_from.clone(),
            self.attachments.to_string(),
            self.evidence.to_string(),
            optional(self.answer.as_ref()),
            self.description_commitment.clone(),
            optional(self.content_erased_by),
        ]
    }
}

/// The two complaint files, written in three parts so a server can stream the rows a page at a
/// time: `head`, then `rows` of consecutive pages (each told the index of its first row), then
/// `tail`; the concatenation is the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComplaintFormat {
    Csv,
    GeoJson,
}

#[derive(Serialize)]
struct Feature<'a> {
    r#type: &'static str,
    id: u64,
    geometry: Point,
    properties: &'a ComplaintRow,
}

#[derive(Serialize)]
struct Point {
    r#type: &'static str,
    /// Longitude first, as RFC 7946 orders a position.
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct CollectionHead<'a> {
    r#type: &'static str,
    /// A foreign member (RFC 7946 §6.1): where the numbers were taken.
    veche: &'a Stamp,
}

impl ComplaintFormat {
    pub fn of(name: &str) -> Option<ComplaintFormat> {
        match name {
            "complaints.csv" => Some(ComplaintFormat::Csv),
            "complaints.geojson" => Some(ComplaintFormat::GeoJson),
            _ => None,
        }
    }

    pub fn head(self, stamp: &Stamp) -> Result<Vec<u8>, OpenDataError> {
        match self {
            ComplaintFormat::Csv => Ok(csv_line(COMPLAINT_COLUMNS.map(str::to_owned))),
            ComplaintFormat::GeoJson => {
                let mut head = serde_json::to_vec(&CollectionHead {
                    r#type: "FeatureCollection",
                    veche: stamp,
                })?;
                // Reopen the object for the features: `{"type":…,"veche":{…}` then the array.
                head.pop();
                head.extend_from_slice(b",\"features\":[\n");
                Ok(head)
            }
        }
    }

    pub fn rows(self, rows: &[ComplaintRow], first: usize) -> Result<Vec<u8>, OpenDataError> {
        let mut bytes = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            match self {
                ComplaintFormat::Csv => bytes.extend(csv_line(row.fields())),
                ComplaintFormat::GeoJson => {
                    if first + index > 0 {
                        bytes.extend_from_slice(b",\n");
                    }
                    serde_json::to_writer(&mut bytes, &feature(row))?;
                }
            }
        }
        Ok(bytes)
    }

    pub fn tail(self) -> Vec<u8> {
        match self {
            ComplaintFormat::Csv => Vec::new(),
            ComplaintFormat::GeoJson => b"\n]}\n".to_vec(),
        }
    }

    /// The whole file at once (the verifier's and a dump's way).
    pub fn render(self, ledger: &Ledger) -> Result<Vec<u8>, OpenDataError> {
        let mut bytes = self.head(&Stamp::of(ledger))?;
        bytes.extend(self.rows(&ComplaintRow::all(ledger), 0)?);
        bytes.extend(self.tail());
        Ok(bytes)
    }
}

fn feature(row: &ComplaintRow) -> Feature<'_> {
    Feature {
        r#type: "Feature",
        id: row.id,
        geometry: Point {
            r#type: "Point",
            coordinates: [row.longitude, row.latitude],
        },
        properties: row,
    }
}

/// Any export's bytes at the ledger's size.
pub fn render(name: &str, ledger: &Ledger) -> Result<Vec<u8>, OpenDataError> {
    if let Some(format) = ComplaintFormat::of(name) {
        return format.render(ledger);
    }
    let stamp = Stamp::of(ledger);
    match name {
        "polls.csv" => Ok(polls_csv(ledger)),
        "polls.json" => json_file(&stamp, "polls", polls_json(ledger)),
        "poll-results.csv" => Ok(results_csv(ledger)),
        "poll-results.json" => json_file(&stamp, "results", results_json(ledger)),
        "proposals.csv" => Ok(proposals_csv(ledger)),
        "proposals.json" => json_file(&stamp, "proposals", proposal_rows(ledger)),
        "complaint-statistics.csv" => Ok(statistics_csv(ledger)),
        "complaint-statistics.json" => {
            json_file(&stamp, "statistics", complaint_statistics(ledger))
        }
        other => Err(OpenDataError::UnknownFile(other.to_owned())),
    }
}

/// A JSON export: `{"meta": stamp, "<key>": value}` and a newline.
fn json_file(stamp: &Stamp, key: &str, value: impl Serialize) -> Result<Vec<u8>, OpenDataError> {
    let mut bytes = b"{\"meta\":".to_vec();
    serde_json::to_writer(&mut bytes, stamp)?;
    bytes.push(b',');
    serde_json::to_writer(&mut bytes, key)?;
    bytes.push(b':');
    serde_json::to_writer(&mut bytes, &value)?;
    bytes.extend_from_slice(b"}\n");
    Ok(bytes)
}

/// SHA-256 of a file, lowercase hex, as a manifest lists it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---- Dumps ----

/// A dump's manifest (`manifest.json`): every file with its digest and where it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub log_origin: String,
    /// When the dump was made (the dumping machine's clock; not recomputed).
    pub dumped_at: Timestamp,
    pub files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The log size the file was computed at.
    pub log_size: u64,
    /// The signed checkpoint (C2SP note) at that size.
    pub checkpoint: String,
}

/// One file of a dump as the check sees it: the manifest's digest, the digest of the bytes on
/// disk, and the root of the checkpoint the manifest names (its signature already checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpedFile {
    pub name: String,
    pub manifest_sha256: String,
    pub file_sha256: String,
    pub checkpoint_root: projections::Hash,
}

/// Recomputes each file at the ledger's size and names every one whose bytes on disk, manifest
/// digest or checkpoint do not agree with the log, with the reason.
pub fn differing_files(
    files: &[DumpedFile],
    ledger: &Ledger,
) -> Result<Vec<String>, OpenDataError> {
    let mut differing = Vec::new();
    for file in files {
        let recount = sha256_hex(&render(&file.name, ledger)?);
        if file.file_sha256 != file.manifest_sha256 {
            differing.push(format!(
                "{}: its bytes are not the ones the manifest lists",
                file.name
            ));
        } else if recount != file.manifest_sha256 {
            differing.push(format!(
                "{}: differs from the file the log gives",
                file.name
            ));
        } else if file.checkpoint_root != ledger.merkle.root() {
            differing.push(format!(
                "{}: its checkpoint's root is not the log's at size {}",
                file.name, ledger.size
            ));
        }
    }
    Ok(differing)
}

// ---- CSV ----

/// One RFC 4180 record with its CRLF.
fn csv_line(fields: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut line = String::new();
    for (index, field) in fields.into_iter().enumerate() {
        if index > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&field);
        }
    }
    line.push_str("\r\n");
    line.into_bytes()
}

fn csv_file<const N: usize>(
    columns: [&str; N],
    rows: impl Iterator<Item = Vec<String>>,
) -> Vec<u8> {
    let mut bytes = csv_line(columns.map(str::to_owned));
    for row in rows {
        bytes.extend(csv_line(row));
    }
    bytes
}

/// A number as serde_json writes it: the shortest text that reads back as the same `f64`.
fn number(value: f64) -> String {
    serde_json::Number::from_f64(value).map_or_else(String::new, |number| number.to_string())
}

fn optional(value: Option<impl ToString>) -> String {
    value.map_or_else(String::new, |value| value.to_string())
}

fn optional_time(value: Option<Timestamp>) -> String {
    value.map_or_else(String::new, Timestamp::to_rfc3339)
}

fn optional_number(value: Option<f64>) -> String {
    value.map_or_else(String::new, number)
}

// ---- Polls ----

pub fn poll_status_name(status: PollStatus) -> &'static str {
    match status {
        PollStatus::Scheduled => "scheduled",
        PollStatus::Open => "open",
        PollStatus::Closing => "closing",
        PollStatus::Closed => "closed",
    }
}

fn choice_kind_name(kind: ChoiceKind) -> &'static str {
    match kind {
        ChoiceKind::SingleChoice => "single_choice",
        ChoiceKind::MultipleChoice => "multiple_choice",
    }
}

fn visibility_name(visibility: TallyVisibility) -> &'static str {
    match visibility {
        TallyVisibility::Public => "public",
        TallyVisibility::Sealed => "sealed",
    }
}

/// The audience's kind and its districts, `;`-separated.
fn audience_fields(audience: &Audience) -> (&'static str, String) {
    match audience {
        Audience::Everyone => ("everyone", String::new()),
        Audience::Verified => ("verified", String::new()),
        Audience::Districts { districts } => ("districts", districts.join(";")),
    }
}

pub const POLL_COLUMNS: [&str; 18] = [
    "id",
    "author",
    "opened_at",
    "title",
    "description",
    "choice_kind",
    "max_choices",
    "options",
    "audience",
    "districts",
    "opens_at",
    "closes_at",
    "vote_changes_allowed",
    "tally_visibility",
    "anonymous",
    "status",
    "closed_at_position",
    "closed_at",
];

fn polls_csv(ledger: &Ledger) -> Vec<u8> {
    let now = ledger.last_server_time;
    let rows = ledger.polls.values().map(|poll| {
        let definition = &poll.definition;
        let (audience, districts) = audience_fields(&definition.audience);
        vec![
            poll.id.to_string(),
            poll.author.to_hex(),
            poll.opened_at.to_rfc3339(),
            definition.title.clone(),
            definition.description.clone(),
            choice_kind_name(definition.choice_kind).to_owned(),
            definition.max_choices.to_string(),
            definition.options.len().to_string(),
            audience.to_owned(),
            districts,
            definition.opens_at.to_rfc3339(),
            definition.closes_at.to_rfc3339(),
            definition.vote_changes_allowed.to_string(),
            visibility_name(definition.tally_visibility).to_owned(),
            definition.anonymous.is_some().to_string(),
            poll_status_name(poll.status(now)).to_owned(),
            optional(poll.closed.as_ref().map(|closed| closed.position)),
            optional_time(poll.closed.as_ref().map(|closed| closed.server_time)),
        ]
    });
    csv_file(POLL_COLUMNS, rows)
}

/// A poll as `polls.json` lists it: its definition exactly as the `open_poll` payload gave it.
#[derive(Serialize)]
struct PollEntry<'a> {
    id: u64,
    author: String,
    opened_at: Timestamp,
    definition: &'a projections::command::PollDefinition,
    status: &'static str,
    closed_at_position: Option<u64>,
    closed_at: Option<Timestamp>,
}

fn polls_json(ledger: &Ledger) -> Vec<PollEntry<'_>> {
    let now = ledger.last_server_time;
    ledger
        .polls
        .values()
        .map(|poll| PollEntry {
            id: poll.id,
            author: poll.author.to_hex(),
            opened_at: poll.opened_at,
            definition: &poll.definition,
            status: poll_status_name(poll.status(now)),
            closed_at_position: poll.closed.as_ref().map(|closed| closed.position),
            closed_at: poll.closed.as_ref().map(|closed| closed.server_time),
        })
        .collect()
}

/// A poll's result as `/v1/polls/{id}/tally` serves it, less the log size (in `meta`).
#[derive(Serialize)]
pub struct PollResult<'a> {
    pub poll: u64,
    pub status: &'static str,
    pub counts: &'a [u64],
    pub turnout: u64,
    pub superseded_ballots: u64,
    pub leading_options: Vec<u32>,
    pub is_final: bool,
    pub credentials_issued: Option<&'a [u64]>,
    pub ballot_keys_counted: Option<&'a [u64]>,
}

/// The polls whose counts are published: all but the sealed ones still open.
fn published_results(ledger: &Ledger) -> impl Iterator<Item = PollResult<'_>> {
    let now = ledger.last_server_time;
    let published = |poll: &&Poll| {
        poll.closed.is_some() || poll.definition.tally_visibility != TallyVisibility::Sealed
    };
    ledger
        .polls
        .values()
        .filter(published)
        .map(move |poll| PollResult {
            poll: poll.id,
            status: poll_status_name(poll.status(now)),
            counts: &poll.tally.counts,
            turnout: poll.tally.turnout,
            superseded_ballots: poll.tally.superseded_ballots,
            leading_options: poll.leading_options(),
            is_final: poll.closed.is_some(),
            credentials_issued: poll.credentials.as_ref().map(|counts| &counts.issued[..]),
            ballot_keys_counted: poll.credentials.as_ref().map(|counts| &counts.counted[..]),
        })
}

fn results_json(ledger: &Ledger) -> Vec<PollResult<'_>> {
    published_results(ledger).collect()
}

pub const RESULT_COLUMNS: [&str; 9] = [
    "poll",
    "status",
    "is_final",
    "option_index",
    "option",
    "count",
    "leading",
    "turnout",
    "superseded_ballots",
];

fn results_csv(ledger: &Ledger) -> Vec<u8> {
    let rows = published_results(ledger).flat_map(|result| {
        let options = ledger
            .polls
            .get(&result.poll)
            .map(|poll| poll.definition.options.clone())
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = (0..result.counts.len())
            .map(|index| {
                vec![
                    result.poll.to_string(),
                    result.status.to_owned(),
                    result.is_final.to_string(),
                    index.to_string(),
                    options.get(index).cloned().unwrap_or_default(),
                    result.counts[index].to_string(),
                    result.leading_options.contains(&(index as u32)).to_string(),
                    result.turnout.to_string(),
                    result.superseded_ballots.to_string(),
                ]
            })
            .collect();
        rows
    });
    csv_file(RESULT_COLUMNS, rows)
}

// ---- Proposals ----

/// One proposal's standing, its texts only by commitment.
#[derive(Serialize)]
pub struct ProposalRow {
    pub id: u64,
    pub category: String,
    pub district: Option<String>,
    pub status: &'static str,
    pub department: String,
    pub submitted_at: Timestamp,
    pub published_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub support_threshold: u64,
    pub supports: u64,
    pub reached_threshold_at: Option<Timestamp>,
    pub rejection_reason: Option<String>,
    pub outcome: Option<&'static str>,
    pub answered_at: Option<Timestamp>,
    pub answer: Option<String>,
    pub title_commitment: String,
    pub body_commitment: String,
    pub content_erased_by: Option<u64>,
}

pub const PROPOSAL_COLUMNS: [&str; 18] = [
    "id",
    "category",
    "district",
    "status",
    "department",
    "submitted_at",
    "published_at",
    "expires_at",
    "support_threshold",
    "supports",
    "reached_threshold_at",
    "rejection_reason",
    "outcome",
    "answered_at",
    "answer",
    "title_commitment",
    "body_commitment",
    "content_erased_by",
];

fn outcome_name(outcome: projections::command::ProposalOutcome) -> &'static str {
    use projections::command::ProposalOutcome;
    match outcome {
        ProposalOutcome::Accepted => "accepted",
        ProposalOutcome::Declined => "declined",
        ProposalOutcome::Implemented => "implemented",
    }
}

impl ProposalRow {
    fn of(proposal: &Proposal, ledger: &Ledger) -> ProposalRow {
        let answer = proposal.answer.as_ref();
        ProposalRow {
            id: proposal.id,
            category: proposal.submission.category.clone(),
            district: proposal.submission.district.clone(),
            status: proposal.status.name(),
            department: proposal.department.clone(),
            submitted_at: proposal.submitted_at,
            published_at: proposal.published_at,
            expires_at: proposal.expires_at,
            support_threshold: proposal.support_threshold,
            supports: proposal.supports(),
            reached_threshold_at: proposal.reached_threshold_at,
            rejection_reason: proposal.rejection_reason.clone(),
            outcome: answer.map(|answer| outcome_name(answer.outcome)),
            answered_at: answer.map(|answer| answer.at),
            answer: answer.map(|answer| answer.answer.clone()),
            title_commitment: hex::encode(proposal.submission.title.0),
            body_commitment: hex::encode(proposal.submission.body.0),
            content_erased_by: ledger.erasures.erased_by(proposal.id),
        }
    }

    fn fields(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.category.clone(),
            optional(self.district.as_ref()),
            self.status.to_owned(),
            self.department.clone(),
            self.submitted_at.to_rfc3339(),
            optional_time(self.published_at),
            optional_time(self.expires_at),
            self.support_threshold.to_string(),
            self.supports.to_string(),
            optional_time(self.reached_threshold_at),
            optional(self.rejection_reason.as_ref()),
            optional(self.outcome),
            optional_time(self.answered_at),
            optional(self.answer.as_ref()),
            self.title_commitment.clone(),
            self.body_commitment.clone(),
            optional(self.content_erased_by),
        ]
    }
}

fn proposal_rows(ledger: &Ledger) -> Vec<ProposalRow> {
    let rows = ledger.proposals.values();
    rows.map(|proposal| ProposalRow::of(proposal, ledger))
        .collect()
}

fn proposals_csv(ledger: &Ledger) -> Vec<u8> {
    let rows = proposal_rows(ledger);
    csv_file(PROPOSAL_COLUMNS, rows.iter().map(ProposalRow::fields))
}

// ---- Complaint statistics ----

pub const STATISTICS_COLUMNS: [&str; 24] = [
    "grouping",
    "group",
    "filed",
    "filed_through_gateway",
    "accepted",
    "rejected",
    "merged",
    "awaiting_triage",
    "awaiting_department",
    "resolved",
    "awaiting_confirmation",
    "confirmed",
    "closed_unconfirmed",
    "cannot_resolve",
    "disputed",
    "reopened",
    "sla_breached",
    "resolved_within_sla",
    "accepted_per_filed",
    "resolved_per_accepted_including_unconfirmed",
    "confirmed_per_accepted",
    "resolved_within_sla_share",
    "resolution_hours_median",
    "resolution_hours_p90",
];

fn statistics_fields(grouping: &str, group: &str, counts: &ComplaintStatistics) -> Vec<String> {
    let mut fields = vec![grouping.to_owned(), group.to_owned()];
    fields.extend(
        [
            counts.filed,
            counts.filed_through_gateway,
            counts.accepted,
            counts.rejected,
            counts.merged,
            counts.awaiting_triage,
            counts.awaiting_department,
            counts.resolved,
            counts.awaiting_confirmation,
            counts.confirmed,
            counts.closed_unconfirmed,
            counts.cannot_resolve,
            counts.disputed,
            counts.reopened,
            counts.sla_breached,
            counts.resolved_within_sla,
        ]
        .map(|count| count.to_string()),
    );
    fields.extend(
        [
            counts.accepted_per_filed,
            counts.resolved_per_accepted_including_unconfirmed,
            counts.confirmed_per_accepted,
            counts.resolved_within_sla_share,
            counts.resolution_hours_median,
            counts.resolution_hours_p90,
        ]
        .map(optional_number),
    );
    fields
}

/// One row per group: `overall` first, then by district, category, department and month.
fn statistics_csv(ledger: &Ledger) -> Vec<u8> {
    let report = complaint_statistics(ledger);
    let mut rows = vec![statistics_fields("overall", "", &report.overall)];
    let groupings: [(&str, &BTreeMap<String, ComplaintStatistics>); 4] = [
        ("district", &report.by_district),
        ("category", &report.by_category),
        ("department", &report.by_department),
        ("month", &report.by_month),
    ];
    for (grouping, groups) in groupings {
        rows.extend(
            groups
                .iter()
                .map(|(group, counts)| statistics_fields(grouping, group, counts)),
        );
    }
    csv_file(STATISTICS_COLUMNS, rows.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_quoted_only_when_it_must_be() {
        let line = csv_line(["plain".into(), "a,b".into(), "say \"hi\"".into(), "".into()]);
        assert_eq!(line, b"plain,\"a,b\",\"say \"\"hi\"\"\",\r\n");
    }

    #[test]
    fn numbers_are_written_as_json_writes_them() {
        assert_eq!(number(55.756), "55.756");
        assert_eq!(number(5.0), "5.0");
        assert_eq!(number(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(optional_number(None), "");
    }

    #[test]
    fn the_statistics_columns_are_every_field_of_a_group() {
        let fields = serde_json::to_value(ComplaintStatistics::default()).unwrap();
        let mut named: Vec<&str> = STATISTICS_COLUMNS[2..].to_vec();
        let mut serialised: Vec<&str> = fields
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        named.sort_unstable();
        serialised.sort_unstable();
        assert_eq!(named, serialised);
        let row = statistics_fields("overall", "", &ComplaintStatistics::default());
        assert_eq!(row.len(), STATISTICS_COLUMNS.len());
    }

    fn row(id: u64) -> ComplaintRow {
        ComplaintRow {
            id,
            filed_at: Timestamp(1_795_428_000_000 + id as i64),
            category: "potholes".into(),
            district: "Arbat, \"old\" town".into(),
            latitude: 55.751,
            longitude: 37.618,
            status: "filed",
            department: None,
            accepted_at: None,
            deadline: None,
            resolved_at: None,
            confirmation_deadline: None,
            sla_breached: false,
            disputes: 0,
            rejection_reason: None,
            duplicate_of: None,
            merged_into: None,
            merged_from: String::new(),
            attachments: 1,
            evidence: 0,
            answer: Some("Fixed.\nThanks".into()),
            description_commitment: "00".repeat(32),
            content_erased_by: None,
        }
    }

    #[test]
    fn a_complaint_file_streamed_in_chunks_is_the_file_rendered_at_once() {
        let rows: Vec<ComplaintRow> = (0..2_500).map(row).collect();
        let stamp = Stamp::of(&Ledger::new());
        for format in [ComplaintFormat::Csv, ComplaintFormat::GeoJson] {
            let mut whole = format.head(&stamp).unwrap();
            whole.extend(format.rows(&rows, 0).unwrap());
            whole.extend(format.tail());
            let mut streamed = format.head(&stamp).unwrap();
            for (index, chunk) in rows.chunks(1_000).enumerate() {
                streamed.extend(format.rows(chunk, index * 1_000).unwrap());
            }
            streamed.extend(format.tail());
            assert!(whole == streamed, "{format:?}");
        }
        let geojson: serde_json::Value = {
            let format = ComplaintFormat::GeoJson;
            let mut bytes = format.head(&stamp).unwrap();
            bytes.extend(format.rows(&rows[..2], 0).unwrap());
            bytes.extend(format.tail());
            serde_json::from_slice(&bytes).unwrap()
        };
        let properties = geojson["features"][1]["properties"].as_object().unwrap();
        let mut keys: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut columns = COMPLAINT_COLUMNS.to_vec();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
        assert_eq!(row(0).fields().len(), COMPLAINT_COLUMNS.len());
    }

    #[test]
    fn an_empty_log_renders_every_file() {
        let ledger = Ledger::new();
        for name in FILES {
            let bytes = render(name, &ledger).unwrap();
            assert!(!bytes.is_empty(), "{name}");
            if !name.ends_with(".csv") {
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap();
            }
        }
        assert!(render("secrets.csv", &ledger).is_err());
    }
}
