//! `veche proposal`: residents submit, support and withdraw proposals and erase their words;
//! moderators publish or reject them; officials of the category's department answer them.
//!
//! The title and body are the author's own words, committed and sent beside the command; the
//! official's answer and a moderator's reason are public text in the log.

use clap::{Subcommand, ValueEnum};
use projections::command::{
    ModerationDecision, ProposalAnswer, ProposalModeration, ProposalOutcome, ProposalReference,
    ProposalSubmission,
};
use projections::Action;

use crate::cli::output::{self, PROPOSAL_HEADER};
use crate::cli::{
    complaint, query, read_and_show, text_argument, Connection, OutputArgument, Session,
};
use crate::KeyArgument;

#[derive(clap::Args)]
pub struct ProposalCommand {
    #[command(subcommand)]
    action: ProposalAction,
    #[command(flatten)]
    server: Connection,
    #[command(flatten)]
    output: OutputArgument,
}

#[derive(Subcommand)]
enum ProposalAction {
    /// Submit a proposal (resident). Prints the proposal's id.
    Submit(Submit),
    /// Support a published proposal (resident).
    Support(Reference),
    /// Withdraw your support before the threshold is reached.
    WithdrawSupport(Reference),
    /// Withdraw your own proposal before review (the author).
    Withdraw(Reference),
    /// Erase the title and body of your own proposal (the author).
    Erase(Reference),
    /// Publish a submitted proposal, or with `--reject REASON` reject it (moderator).
    Moderate(Moderate),
    /// Answer a proposal under review (official of the category's department).
    Answer(Answer),
    /// One proposal.
    Show(Show),
    /// Proposals, filtered and sorted.
    List(List),
}

impl ProposalCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let (server, output) = (&self.server, self.output);
        match self.action {
            ProposalAction::Submit(submit) => submit.run(server, output),
            ProposalAction::Support(reference) => {
                reference.send(server, output, Action::SupportProposal, "supported")
            }
            ProposalAction::WithdrawSupport(reference) => reference.send(
                server,
                output,
                Action::WithdrawSupport,
                "withdrew the support of",
            ),
            ProposalAction::Withdraw(reference) => {
                reference.send(server, output, Action::WithdrawProposal, "withdrew")
            }
            ProposalAction::Erase(reference) => {
                complaint::erase(&reference.key, server, output, reference.proposal)
            }
            ProposalAction::Moderate(moderate) => moderate.run(server, output),
            ProposalAction::Answer(answer) => answer.run(server, output),
            ProposalAction::Show(show) => show.run(server, output),
            ProposalAction::List(list) => list.run(server, output),
        }
    }
}

#[derive(clap::Args)]
struct Submit {
    #[command(flatten)]
    key: KeyArgument,
    /// The category's id (`veche category list`).
    #[arg(long)]
    category: String,
    /// 1 to 200 characters.
    #[arg(long)]
    title: String,
    /// 1 to 10,000 characters; `@FILE` reads it from a file.
    #[arg(long)]
    body: String,
    /// The district it concerns, if one.
    #[arg(long)]
    district: Option<String>,
}

impl Submit {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let session = Session::open(server, &self.key)?;
        let submission = ProposalSubmission {
            title: session.commit(&self.title),
            body: session.commit(&text_argument(&self.body)?),
            category: self.category,
            district: self.district,
        };
        let receipt = session.send(Action::SubmitProposal(submission))?;
        output::receipt(output, &receipt, |id| format!("submitted proposal {id}"));
        Ok(())
    }
}

/// A proposal and who signs the step.
#[derive(clap::Args)]
struct Reference {
    #[command(flatten)]
    key: KeyArgument,
    /// The proposal's id.
    proposal: u64,
}

impl Reference {
    fn send(
        self,
        server: &Connection,
        output: OutputArgument,
        action: fn(ProposalReference) -> Action,
        done: &str,
    ) -> anyhow::Result<()> {
        let proposal = self.proposal;
        let receipt =
            Session::open(server, &self.key)?.send(action(ProposalReference { proposal }))?;
        output::receipt(output, &receipt, |_| format!("{done} proposal {proposal}"));
        Ok(())
    }
}

#[derive(clap::Args)]
struct Moderate {
    #[command(flatten)]
    key: KeyArgument,
    proposal: u64,
    /// Reject with this public reason instead of publishing.
    #[arg(long)]
    reject: Option<String>,
}

impl Moderate {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let proposal = self.proposal;
        let (decision, done) = match self.reject {
            Some(reason) => (ModerationDecision::Reject { reason }, "rejected"),
            None => (ModerationDecision::Publish, "published"),
        };
        let moderation = ProposalModeration { proposal, decision };
        let receipt =
            Session::open(server, &self.key)?.send(Action::ModerateProposal(moderation))?;
        output::receipt(output, &receipt, |_| format!("{done} proposal {proposal}"));
        Ok(())
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Outcome {
    Accepted,
    Declined,
    Implemented,
}

#[derive(clap::Args)]
struct Answer {
    #[command(flatten)]
    key: KeyArgument,
    proposal: u64,
    #[arg(long, value_enum)]
    outcome: Outcome,
    /// The answer, public in the log; `@FILE` reads it from a file.
    #[arg(long)]
    text: String,
}

impl Answer {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let proposal = self.proposal;
        let outcome = match self.outcome {
            Outcome::Accepted => ProposalOutcome::Accepted,
            Outcome::Declined => ProposalOutcome::Declined,
            Outcome::Implemented => ProposalOutcome::Implemented,
        };
        let answer = ProposalAnswer {
            proposal,
            outcome,
            answer: text_argument(&self.text)?,
        };
        let receipt = Session::open(server, &self.key)?.send(Action::AnswerProposal(answer))?;
        output::receipt(output, &receipt, |_| {
            format!("answered proposal {proposal}")
        });
        Ok(())
    }
}

#[derive(clap::Args)]
struct Show {
    proposal: u64,
}

impl Show {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let path = format!("/v1/proposals/{}", self.proposal);
        read_and_show(server, output, &path, output::proposal)
    }
}

/// The filters of `GET /v1/proposals`.
#[derive(clap::Args)]
struct List {
    /// submitted, published, rejected, under_review, accepted, declined, implemented,
    /// withdrawn or expired.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    district: Option<String>,
    /// newest (default), supports, or trending (supports gained in the last 7 days).
    #[arg(long)]
    sort: Option<String>,
    /// The `more: --after CURSOR` of the previous page.
    #[arg(long)]
    after: Option<String>,
    /// Proposals per page, 1 to 100.
    #[arg(long)]
    limit: Option<usize>,
}

impl List {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let path = format!(
            "/v1/proposals{}",
            query(&[
                ("status", self.status),
                ("category", self.category),
                ("district", self.district),
                ("sort", self.sort),
                ("cursor", self.after),
                ("limit", self.limit.map(|limit| limit.to_string())),
            ])
        );
        read_and_show(server, output, &path, |page| {
            output::page(
                page,
                "proposals",
                "next_cursor",
                &PROPOSAL_HEADER,
                output::proposal_row,
            )
        })
    }
}
