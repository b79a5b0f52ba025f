//! `veche complaint`: the "Our City" complaint from every side. Residents file, supplement,
//! confirm, dispute and erase; moderators read the queue, accept (route), reject, merge, ask
//! for details and redact; officials start work and answer.
//!
//! The author's words (description, address, attachment URLs, supplements, dispute reasons) are
//! committed in the signed command and travel beside it; officials' answers and moderators'
//! questions are public text in the log itself, as the protocol has them.

use clap::{Subcommand, ValueEnum};
use projections::command::{
    CannotResolve, ComplaintFiling, ComplaintReference, ContentReference, Degrees, Dispute,
    Location, Merge, Redaction, RedactionReason, RejectionReason, Resolution, Supplement, Triage,
    TriageDecision,
};
use projections::Action;

use crate::cli::output::{self, COMPLAINT_HEADER};
use crate::cli::{
    query, read_and_show, segment, text_argument, Connection, OutputArgument, Session,
};
use crate::KeyArgument;

#[derive(clap::Args)]
pub struct ComplaintCommand {
    #[command(subcommand)]
    action: ComplaintAction,
    #[command(flatten)]
    server: Connection,
    #[command(flatten)]
    output: OutputArgument,
}

/// The signer of a complaint action.
#[derive(clap::Args)]
struct Signer {
    #[command(flatten)]
    key: KeyArgument,
}

#[derive(Subcommand)]
enum ComplaintAction {
    /// File a complaint (resident). Prints the complaint's id.
    File(File),
    /// Add the details a moderator asked for (the author).
    Supplement(SupplementArguments),
    /// Confirm the fix (the author).
    Confirm(Reference),
    /// Dispute the fix: the complaint reopens (the author).
    Dispute(DisputeArguments),
    /// Erase the content of your own entry: the complaint's filing, or a supplement or dispute
    /// of yours named with `--entry`.
    Erase(Erase),
    /// One complaint with its timeline.
    Show(Show),
    /// Complaints, oldest first, with every filter the API has (moderators: `--status filed`).
    Queue(Queue),
    /// A department's work: complaints routed to it that await its work.
    Department(Department),
    /// Accept the complaint and route it to its category's department (moderator).
    #[command(visible_alias = "route")]
    Accept(Reference),
    /// Reject the complaint (moderator).
    Reject(Reject),
    /// Merge the complaint into another about the same problem (moderator).
    Merge(MergeArguments),
    /// Ask the author for details (moderator).
    AskDetails(AskDetails),
    /// Redact the content of any entry, with a public reason (moderator).
    Redact(Redact),
    /// Start work on a routed complaint (official of its department).
    StartWork(Reference),
    /// Answer a complaint: report it fixed, or with `--cannot-resolve` that it cannot be
    /// (official of its department).
    Answer(Answer),
}

impl ComplaintCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let (server, output) = (&self.server, self.output);
        match self.action {
            ComplaintAction::File(file) => file.run(server, output),
            ComplaintAction::Supplement(supplement) => supplement.run(server, output),
            ComplaintAction::Confirm(reference) => reference.send(server, output, confirm),
            ComplaintAction::Dispute(dispute) => dispute.run(server, output),
            ComplaintAction::Erase(erase) => erase.run(server, output),
            ComplaintAction::Show(show) => show.run(server, output),
            ComplaintAction::Queue(queue) => queue.run(server, output),
            ComplaintAction::Department(department) => department.run(server, output),
            ComplaintAction::Accept(reference) => reference.send(server, output, accept),
            ComplaintAction::Reject(reject) => reject.run(server, output),
            ComplaintAction::Merge(merge) => merge.run(server, output),
            ComplaintAction::AskDetails(ask) => ask.run(server, output),
            ComplaintAction::Redact(redact) => redact.run(server, output),
            ComplaintAction::StartWork(reference) => reference.send(server, output, start_work),
            ComplaintAction::Answer(answer) => answer.run(server, output),
        }
    }
}

/// Signs and sends `action`, and prints its receipt with `what` it did.
fn send_and_show(
    signer: &Signer,
    server: &Connection,
    output: OutputArgument,
    action: Action,
    what: impl Fn(u64) -> String,
) -> anyhow::Result<()> {
    let receipt = Session::open(server, &signer.key)?.send(action)?;
    output::receipt(output, &receipt, what);
    Ok(())
}

#[derive(clap::Args)]
struct File {
    #[command(flatten)]
    signer: Signer,
    /// The category's id, e.g. street-lighting (`veche category list`).
    #[arg(long)]
    category: String,
    /// What is wrong, in your words; `@FILE` reads it from a file.
    #[arg(long)]
    description: String,
    /// The street address (kept beside the log, erasable).
    #[arg(long)]
    address: String,
    #[arg(long)]
    district: String,
    /// Latitude, at most 3 decimals (the public grid).
    #[arg(long, allow_negative_numbers = true)]
    latitude: f64,
    /// Longitude, at most 3 decimals.
    #[arg(long, allow_negative_numbers = true)]
    longitude: f64,
    /// A photo or document as FILE=URL: the file's SHA-256 goes into the log, the URL beside
    /// it; repeat for several.
    #[arg(long = "attach")]
    attachments: Vec<String>,
}

impl File {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let session = Session::open(server, &self.signer.key)?;
        let filing = ComplaintFiling {
            category: self.category,
            description: session.commit(&text_argument(&self.description)?),
            location: Location {
                latitude: Degrees(self.latitude),
                longitude: Degrees(self.longitude),
                address: session.commit(&self.address),
                district: self.district,
            },
            attachments: session.attachments(&self.attachments)?,
            // A resident files in their own name; gateways file through Open311.
            through_gateway: false,
        };
        let receipt = session.send(Action::FileComplaint(filing))?;
        output::receipt(output, &receipt, |id| format!("filed complaint {id}"));
        Ok(())
    }
}

/// A complaint and who signs the step.
#[derive(clap::Args)]
struct Reference {
    #[command(flatten)]
    signer: Signer,
    /// The complaint's id.
    complaint: u64,
}

impl Reference {
    fn send(
        self,
        server: &Connection,
        output: OutputArgument,
        step: fn(ComplaintReference) -> (Action, &'static str),
    ) -> anyhow::Result<()> {
        let complaint = self.complaint;
        let (action, done) = step(ComplaintReference { complaint });
        send_and_show(&self.signer, server, output, action, |_| {
            format!("{done} complaint {complaint}")
        })
    }
}

fn confirm(reference: ComplaintReference) -> (Action, &'static str) {
    (Action::ConfirmResolution(reference), "confirmed the fix of")
}

fn start_work(reference: ComplaintReference) -> (Action, &'static str) {
    (Action::StartWork(reference), "started work on")
}

fn accept(reference: ComplaintReference) -> (Action, &'static str) {
    let triage = Triage {
        complaint: reference.complaint,
        decision: TriageDecision::Accept,
    };
    (Action::TriageComplaint(triage), "accepted and routed")
}

#[derive(clap::Args)]
struct SupplementArguments {
    #[command(flatten)]
    signer: Signer,
    complaint: u64,
    /// The details asked for; `@FILE` reads them from a file.
    #[arg(long)]
    text: String,
    /// A photo or document as FILE=URL; repeat for several.
    #[arg(long = "attach")]
    attachments: Vec<String>,
}

impl SupplementArguments {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let session = Session::open(server, &self.signer.key)?;
        let supplement = Supplement {
            complaint: self.complaint,
            text: session.commit(&text_argument(&self.text)?),
            attachments: session.attachments(&self.attachments)?,
        };
        let receipt = session.send(Action::SupplementComplaint(supplement))?;
        let complaint = self.complaint;
        output::receipt(output, &receipt, |entry| {
            format!("supplemented complaint {complaint} in entry {entry}")
        });
        Ok(())
    }
}

#[derive(clap::Args)]
struct DisputeArguments {
    #[command(flatten)]
    signer: Signer,
    complaint: u64,
    /// Why the problem is not fixed; `@FILE` reads it from a file.
    #[arg(long)]
    reason: String,
}

impl DisputeArguments {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let session = Session::open(server, &self.signer.key)?;
        let dispute = Dispute {
            complaint: self.complaint,
            reason: session.commit(&text_argument(&self.reason)?),
        };
        let receipt = session.send(Action::DisputeResolution(dispute))?;
        let complaint = self.complaint;
        output::receipt(output, &receipt, |_| {
            format!("disputed the fix of complaint {complaint}: it is in progress again")
        });
        Ok(())
    }
}

#[derive(clap::Args)]
struct Erase {
    #[command(flatten)]
    signer: Signer,
    /// The complaint whose filed content goes (the filing's entry is the complaint's id).
    #[arg(required_unless_present = "entry")]
    complaint: Option<u64>,
    /// Another entry of yours instead (a supplement, a dispute), by position.
    #[arg(long, conflicts_with = "complaint")]
    entry: Option<u64>,
}

impl Erase {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let entry = self.entry.or(self.complaint).unwrap_or_default();
        erase(&self.signer.key, server, output, entry)
    }
}

/// The author's erasure of the content entry `entry` commits to.
pub fn erase(
    key: &KeyArgument,
    server: &Connection,
    output: OutputArgument,
    entry: u64,
) -> anyhow::Result<()> {
    let receipt =
        Session::open(server, key)?.send(Action::EraseContent(ContentReference { entry }))?;
    output::receipt(output, &receipt, |_| {
        format!("erased the content of entry {entry}")
    });
    Ok(())
}

#[derive(clap::Args)]
struct Show {
    complaint: u64,
}

impl Show {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let path = format!("/v1/complaints/{}", self.complaint);
        read_and_show(server, output, &path, output::complaint)
    }
}

/// The filters of `GET /v1/complaints`; they combine.
#[derive(clap::Args)]
struct Queue {
    /// filed (the moderator's queue), needs_info, accepted, in_progress, resolved,
    /// cannot_resolve, confirmed, closed_unconfirmed, rejected or merged.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    district: Option<String>,
    #[arg(long)]
    department: Option<String>,
    /// Only complaints open and due within a day or already late (`false`: only the others).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    sla_at_risk: Option<bool>,
    /// Only complaints waiting at least this many hours since filing.
    #[arg(long)]
    older_than_hours: Option<u32>,
    /// Only complaints filed less than this many hours ago.
    #[arg(long)]
    newer_than_hours: Option<u32>,
    /// Start after this complaint id (the `more: --after N` of the previous page).
    #[arg(long)]
    after: Option<u64>,
    /// Complaints per page, 1 to 100.
    #[arg(long)]
    limit: Option<usize>,
}

impl Queue {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let text = |value: Option<String>| value;
        let number = |value: Option<u64>| value.map(|value| value.to_string());
        let path = format!(
            "/v1/complaints{}",
            query(&[
                ("status", text(self.status)),
                ("category", text(self.category)),
                ("district", text(self.district)),
                ("department", text(self.department)),
                ("sla_at_risk", self.sla_at_risk.map(|risk| risk.to_string())),
                (
                    "older_than_hours",
                    number(self.older_than_hours.map(u64::from))
                ),
                (
                    "newer_than_hours",
                    number(self.newer_than_hours.map(u64::from))
                ),
                ("after", number(self.after)),
                ("limit", number(self.limit.map(|limit| limit as u64))),
            ])
        );
        show_complaint_page(server, output, &path)
    }
}

fn show_complaint_page(
    server: &Connection,
    output: OutputArgument,
    path: &str,
) -> anyhow::Result<()> {
    read_and_show(server, output, path, |page| {
        output::page(
            page,
            "complaints",
            "next_after",
            &COMPLAINT_HEADER,
            output::complaint_row,
        )
    })
}

#[derive(clap::Args)]
struct Department {
    /// The department's name, as its officials were granted it.
    department: String,
    #[arg(long)]
    after: Option<u64>,
    #[arg(long)]
    limit: Option<usize>,
}

impl Department {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let path = format!(
            "/v1/departments/{}/complaints{}",
            segment(&self.department),
            query(&[
                ("after", self.after.map(|after| after.to_string())),
                ("limit", self.limit.map(|limit| limit.to_string())),
            ])
        );
        show_complaint_page(server, output, &path)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum RejectReason {
    Spam,
    DuplicateOf,
    OutOfScope,
    InsufficientInfo,
}

#[derive(clap::Args)]
struct Reject {
    #[command(flatten)]
    signer: Signer,
    complaint: u64,
    #[arg(long, value_enum)]
    reason: RejectReason,
    /// The complaint this one duplicates (with `--reason duplicate-of`).
    #[arg(long, required_if_eq("reason", "duplicate-of"))]
    duplicate_of: Option<u64>,
    /// Also redact the filed content (with `--reason spam`): one public act.
    #[arg(long)]
    redact: bool,
}

impl Reject {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let rejection = match (self.reason, self.duplicate_of) {
            (RejectReason::Spam, _) => RejectionReason::Spam {
                redact_content: self.redact,
            },
            (RejectReason::DuplicateOf, Some(complaint)) => {
                RejectionReason::DuplicateOf { complaint }
            }
            (RejectReason::DuplicateOf, None) => {
                anyhow::bail!("name the original: --duplicate-of N")
            }
            (RejectReason::OutOfScope, _) => RejectionReason::OutOfScope,
            (RejectReason::InsufficientInfo, _) => RejectionReason::InsufficientInfo,
        };
        if self.redact && !matches!(self.reason, RejectReason::Spam) {
            anyhow::bail!("--redact goes only with --reason spam; redact other content with `veche complaint redact`");
        }
        let complaint = self.complaint;
        let triage = Triage {
            complaint,
            decision: TriageDecision::Reject { rejection },
        };
        send_and_show(
            &self.signer,
            server,
            output,
            Action::TriageComplaint(triage),
            |_| format!("rejected complaint {complaint}"),
        )
    }
}

#[derive(clap::Args)]
struct MergeArguments {
    #[command(flatten)]
    signer: Signer,
    /// The complaint that stops here.
    complaint: u64,
    /// The complaint that carries on.
    #[arg(long)]
    into: u64,
}

impl MergeArguments {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let (complaint, into) = (self.complaint, self.into);
        let merge = Action::MergeComplaint(Merge { complaint, into });
        send_and_show(&self.signer, server, output, merge, |_| {
            format!("merged complaint {complaint} into {into}")
        })
    }
}

#[derive(clap::Args)]
struct AskDetails {
    #[command(flatten)]
    signer: Signer,
    complaint: u64,
    /// The question, public in the log.
    #[arg(long)]
    question: String,
}

impl AskDetails {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let complaint = self.complaint;
        let triage = Triage {
            complaint,
            decision: TriageDecision::NeedsInfo {
                question: text_argument(&self.question)?,
            },
        };
        send_and_show(
            &self.signer,
            server,
            output,
            Action::TriageComplaint(triage),
            |_| format!("asked the author of complaint {complaint} for details"),
        )
    }
}

#[derive(clap::Args)]
struct Redact {
    #[command(flatten)]
    signer: Signer,
    /// The entry whose content goes: a complaint's id for its filing, or any entry's position.
    entry: u64,
    #[arg(long, value_enum)]
    reason: RedactReason,
}

#[derive(Clone, Copy, ValueEnum)]
enum RedactReason {
    ThirdPartyPersonalData,
    IllegalContent,
    Spam,
}

impl Redact {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let reason = match self.reason {
            RedactReason::ThirdPartyPersonalData => RedactionReason::ThirdPartyPersonalData,
            RedactReason::IllegalContent => RedactionReason::IllegalContent,
            RedactReason::Spam => RedactionReason::Spam,
        };
        let entry = self.entry;
        let redaction = Action::RedactContent(Redaction { entry, reason });
        send_and_show(&self.signer, server, output, redaction, |_| {
            format!("redacted the content of entry {entry}")
        })
    }
}

#[derive(clap::Args)]
struct Answer {
    #[command(flatten)]
    signer: Signer,
    complaint: u64,
    /// The answer, public in the log: what was done, or why it cannot be done.
    #[arg(long)]
    text: String,
    /// Report that the problem cannot be fixed, instead of fixed.
    #[arg(long)]
    cannot_resolve: bool,
    /// A photo of the fix as FILE=URL; repeat for several.
    #[arg(long = "evidence", conflicts_with = "cannot_resolve")]
    evidence: Vec<String>,
}

impl Answer {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let session = Session::open(server, &self.signer.key)?;
        let (complaint, text) = (self.complaint, text_argument(&self.text)?);
        let (action, done) = if self.cannot_resolve {
            let reason = CannotResolve {
                complaint,
                reason: text,
            };
            (Action::CannotResolve(reason), "cannot be resolved")
        } else {
            let resolution = Resolution {
                complaint,
                answer: text,
                evidence: session.attachments(&self.evidence)?,
            };
            (Action::ResolveComplaint(resolution), "resolved")
        };
        let receipt = session.send(action)?;
        output::receipt(output, &receipt, |_| {
            format!("answered complaint {complaint}: {done}")
        });
        Ok(())
    }
}
