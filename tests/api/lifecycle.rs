//! Every lifecycle transition veche must refuse, in one table: the wrong role, the wrong state,
//! the wrong author and outside the window, for every complaint and proposal action. Each case
//! asserts its status, its problem type, the problem content type, and that the log did not grow.

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use projections::command::{
    Attestation, CannotResolve, CategoryDefinition, ComplaintReference, Dispute, Merge,
    ModerationDecision, ProposalAnswer, ProposalModeration, ProposalOutcome, ProposalReference,
    ProposalSubmission, RejectionReason, Resolution, Role, RoleChange, Supplement, Triage,
    TriageDecision,
};
use projections::Action;

use crate::harness::{
    lighting, public, refusal_mismatch, resident_tag_of, streetlight_filing, TestApp, MINUTE_MS,
};

const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// Complaint and proposal actions whose refusals this table must show, by name.
const LIFECYCLE_ACTIONS: [&str; 16] = [
    "triage_complaint",
    "merge_complaint",
    "supplement_complaint",
    "start_work",
    "resolve_complaint",
    "cannot_resolve",
    "confirm_resolution",
    "dispute_resolution",
    "breach_sla",
    "close_unconfirmed",
    "moderate_proposal",
    "support_proposal",
    "withdraw_support",
    "answer_proposal",
    "withdraw_proposal",
    "expire_proposal",
];

/// Role-gated actions around the lifecycle: who may file, attest, define and grant.
const ROLE_ACTIONS: [&str; 6] = [
    "file_complaint",
    "submit_proposal",
    "attest_resident",
    "define_category",
    "grant_role",
    "revoke_role",
];

/// Actions whose refusals live in `refusals.rs` and `polls.rs`; listed so that a new action in
/// `Action::NAMES` fails this test until someone decides where its refusals are tested.
const TESTED_ELSEWHERE: [&str; 15] = [
    "register_key",
    "open_poll",
    "cast_ballot",
    "genesis",
    "close_poll",
    // The admin office: tests/api/admin_recovery.rs, and the keys rule table in projections.
    "hand_over_admin",
    "approve_recovery",
    // Written before a snapshot: tests/api/snapshot.rs, and the state rule table in projections.
    "attest_state",
    // Written before a periodic snapshot: tests/api/crash.rs, and the state rule table.
    "mark_state",
    // A key's lifecycle: tests/api/key_lifecycle.rs, and the keys rule table in projections.
    "revoke_key",
    // Erasure and redaction: tests/api/content.rs, and the erasures rule table in projections.
    "erase_content",
    "redact_content",
    // Anonymous polls: tests/api/anonymous_polls.rs, and their rule table in projections.
    "request_credentials",
    "cast_anonymous_ballot",
    // Corrections: tests/api/poll_corrections.rs, and their rule table in projections.
    "correct_poll",
];

/// The lifecycle's system events; every other lifecycle action is a client's, with a state, and
/// needs a wrong-state case in the table.
const LIFECYCLE_SYSTEM_EVENTS: [&str; 3] = ["breach_sla", "close_unconfirmed", "expire_proposal"];

struct Case<'a> {
    name: &'static str,
    key: &'a SigningKey,
    action: Action,
    status: u16,
    code: &'static str,
}

/// Keys in every role, and one complaint and one proposal in every status.
struct Fixture {
    app: TestApp,
    moderator: SigningKey,
    revoked_moderator: SigningKey,
    roads: SigningKey,
    parks: SigningKey,
    registrar: SigningKey,
    author: SigningKey,
    neighbour: SigningKey,
    supporters: [SigningKey; 3],
    stranger: SigningKey,
    complaints: Complaints,
    proposals: Proposals,
}

struct Complaints {
    filed: Complaint,
    needs_info: Complaint,
    accepted: Complaint,
    in_progress: Complaint,
    resolved: Complaint,
    rejected: Complaint,
    merged: Complaint,
    cannot_resolve: Complaint,
    confirmed: Complaint,
    closed_unconfirmed: Complaint,
}

struct Proposals {
    submitted: Proposal,
    published: Proposal,
    rejected: Proposal,
    under_review: Proposal,
    answered: Proposal,
    withdrawn: Proposal,
    expired: Proposal,
}

/// Parks proposals live one day, so a published one expires while the fixture waits a week.
fn benches() -> CategoryDefinition {
    CategoryDefinition {
        id: "benches".into(),
        name: "Benches".into(),
        department: "parks".into(),
        sla_working_days: 5,
        confirmation_window_days: 3,
        support_threshold: 2,
        proposal_lifetime_days: 1,
        supports_from_residents_only: false,
    }
}

fn filing() -> Action {
    Action::FileComplaint(streetlight_filing("Tverskoy"))
}

fn submission(category: &str) -> Action {
    Action::SubmitProposal(ProposalSubmission {
        title: crate::harness::commit("More light on the boulevard"),
        body: crate::harness::commit("Add lamps every twenty metres along the boulevard."),
        category: category.into(),
        district: Some("Tverskoy".into()),
    })
}

/// A complaint of the fixture, by id, and the commands the table sends about it.
#[derive(Clone, Copy)]
struct Complaint(u64);

impl Complaint {
    fn triage(self, decision: TriageDecision) -> Action {
        Action::TriageComplaint(Triage {
            complaint: self.0,
            decision,
        })
    }

    fn accept(self) -> Action {
        self.triage(TriageDecision::Accept)
    }

    fn reject(self, rejection: RejectionReason) -> Action {
        self.triage(TriageDecision::Reject { rejection })
    }

    fn merge_into(self, into: Complaint) -> Action {
        let (complaint, into) = (self.0, into.0);
        Action::MergeComplaint(Merge { complaint, into })
    }

    fn supplement(self) -> Action {
        Action::SupplementComplaint(Supplement {
            complaint: self.0,
            text: crate::harness::commit("It is the lamp nearest the bus stop."),
            attachments: vec![],
        })
    }

    fn reference(self) -> ComplaintReference {
        ComplaintReference { complaint: self.0 }
    }

    fn start(self) -> Action {
        Action::StartWork(self.reference())
    }

    fn confirm(self) -> Action {
        Action::ConfirmResolution(self.reference())
    }

    fn resolve(self) -> Action {
        let answer = "The lamp was replaced.".into();
        Action::ResolveComplaint(Resolution {
            complaint: self.0,
            answer,
            evidence: vec![],
        })
    }

    fn cannot(self) -> Action {
        let reason = "The lamp belongs to a private yard.".into();
        Action::CannotResolve(CannotResolve {
            complaint: self.0,
            reason,
        })
    }

    fn dispute(self) -> Action {
        let reason = crate::harness::commit("Still dark.");
        Action::DisputeResolution(Dispute {
            complaint: self.0,
            reason,
        })
    }
}

/// A proposal of the fixture, by id, and the commands the table sends about it.
#[derive(Clone, Copy)]
struct Proposal(u64);

impl Proposal {
    fn publish(self) -> Action {
        self.moderate(ModerationDecision::Publish)
    }

    fn turn_down(self) -> Action {
        let reason = "Already planned for next year.".into();
        self.moderate(ModerationDecision::Reject { reason })
    }

    fn moderate(self, decision: ModerationDecision) -> Action {
        Action::ModerateProposal(ProposalModeration {
            proposal: self.0,
            decision,
        })
    }

    fn support(self) -> Action {
        Action::SupportProposal(ProposalReference { proposal: self.0 })
    }

    fn withdraw_support(self) -> Action {
        Action::WithdrawSupport(ProposalReference { proposal: self.0 })
    }

    fn answer(self, outcome: ProposalOutcome) -> Action {
        let answer = "The department will light the boulevard in spring.".into();
        Action::AnswerProposal(ProposalAnswer {
            proposal: self.0,
            outcome,
            answer,
        })
    }

    fn withdraw(self) -> Action {
        Action::WithdrawProposal(ProposalReference { proposal: self.0 })
    }
}

/// A key and the command it sends about a complaint.
type Walk<'a> = (&'a SigningKey, fn(Complaint) -> Action);

/// Files a complaint by `author` and walks it through `steps`, each insisted on; the complaint.
async fn walked(app: &TestApp, author: &SigningKey, steps: &[Walk<'_>]) -> Complaint {
    let complaint = Complaint(app.act_ok(author, filing()).await);
    for (key, step) in steps {
        app.act_ok(key, step(complaint)).await;
    }
    complaint
}

async fn fixture(app: TestApp) -> Fixture {
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    app.act_ok(&app.admin, Action::DefineCategory(benches()))
        .await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let revoked_moderator = app.citizen().await;
    app.grant(&revoked_moderator, Role::Moderator, None).await;
    let roads = app.citizen().await;
    app.grant(&roads, Role::Official, Some("roads")).await;
    let parks = app.citizen().await;
    app.grant(&parks, Role::Official, Some("parks")).await;
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let author = app.citizen().await;
    let neighbour = app.citizen().await;
    let supporters = [
        app.citizen().await,
        app.citizen().await,
        app.citizen().await,
    ];
    let stranger = app.new_key();

    // A moderator who triaged before losing the role: the revocation, not the history, counts.
    let steps: [Walk; 2] = [
        (&revoked_moderator, Complaint::accept),
        (&roads, Complaint::resolve),
    ];
    let closed_unconfirmed = walked(&app, &author, &steps).await;
    let revoke = Action::RevokeRole(RoleChange {
        subject: public(&revoked_moderator),
        role: Role::Moderator,
        department: None,
    });
    app.act_ok(&app.admin, revoke).await;
    let expired = Proposal(app.act_ok(&author, submission("benches")).await);
    app.act_ok(&moderator, expired.publish()).await;
    app.act_ok(&supporters[0], expired.support()).await;

    // A week and a day: the resolution's seven-day window ends in silence and the one-day
    // proposal expires; the server appends both system events now.
    app.clock.advance_milliseconds(8 * DAY_MS);
    app.node.append_due_system_events().await.unwrap();

    let filed = Complaint(app.act_ok(&author, filing()).await);
    let needs_info = Complaint(app.act_ok(&author, filing()).await);
    let question = TriageDecision::NeedsInfo {
        question: "Which lamp exactly?".into(),
    };
    app.act_ok(&moderator, needs_info.triage(question)).await;
    let accept: Walk = (&moderator, Complaint::accept);
    let resolve: Walk = (&roads, Complaint::resolve);
    let accepted = walked(&app, &author, &[accept]).await;
    let in_progress = walked(&app, &author, &[accept, (&roads, Complaint::start)]).await;
    let resolved = walked(&app, &author, &[accept, resolve]).await;
    let rejected = Complaint(app.act_ok(&author, filing()).await);
    app.act_ok(
        &moderator,
        rejected.reject(RejectionReason::Spam {
            redact_content: false,
        }),
    )
    .await;
    let merged = Complaint(app.act_ok(&author, filing()).await);
    app.act_ok(&moderator, merged.merge_into(accepted)).await;
    let cannot_resolve = walked(&app, &author, &[accept, (&roads, Complaint::cannot)]).await;
    let confirm: Walk = (&author, Complaint::confirm);
    let confirmed = walked(&app, &author, &[accept, resolve, confirm]).await;

    let submitted = Proposal(app.act_ok(&author, submission("street-lighting")).await);
    let published = Proposal(app.act_ok(&author, submission("street-lighting")).await);
    app.act_ok(&moderator, published.publish()).await;
    app.act_ok(&supporters[0], published.support()).await;
    let rejected_proposal = Proposal(app.act_ok(&author, submission("street-lighting")).await);
    app.act_ok(&moderator, rejected_proposal.turn_down()).await;
    let under_review = Proposal(app.act_ok(&author, submission("street-lighting")).await);
    let answered = Proposal(app.act_ok(&author, submission("street-lighting")).await);
    for proposal in [under_review, answered] {
        app.act_ok(&moderator, proposal.publish()).await;
        for supporter in &supporters {
            app.act_ok(supporter, proposal.support()).await;
        }
    }
    app.act_ok(&roads, answered.answer(ProposalOutcome::Implemented))
        .await;
    let withdrawn = Proposal(app.act_ok(&author, submission("street-lighting")).await);
    app.act_ok(&moderator, withdrawn.publish()).await;
    app.act_ok(&supporters[0], withdrawn.support()).await;
    app.act_ok(&author, withdrawn.withdraw()).await;

    let fixture = Fixture {
        complaints: Complaints {
            filed,
            needs_info,
            accepted,
            in_progress,
            resolved,
            rejected,
            merged,
            cannot_resolve,
            confirmed,
            closed_unconfirmed,
        },
        proposals: Proposals {
            submitted,
            published,
            rejected: rejected_proposal,
            under_review,
            answered,
            withdrawn,
            expired,
        },
        app,
        moderator,
        revoked_moderator,
        roads,
        parks,
        registrar,
        author,
        neighbour,
        supporters,
        stranger,
    };
    fixture.assert_statuses().await;
    fixture
}

impl Fixture {
    /// The fixture is only worth its cases if every item is in the status its name says.
    async fn assert_statuses(&self) {
        let (c, p) = (&self.complaints, &self.proposals);
        for (collection, id, status) in [
            ("complaints", c.filed.0, "filed"),
            ("complaints", c.needs_info.0, "needs_info"),
            ("complaints", c.accepted.0, "accepted"),
            ("complaints", c.in_progress.0, "in_progress"),
            ("complaints", c.resolved.0, "resolved"),
            ("complaints", c.rejected.0, "rejected"),
            ("complaints", c.merged.0, "merged"),
            ("complaints", c.cannot_resolve.0, "cannot_resolve"),
            ("complaints", c.confirmed.0, "confirmed"),
            ("complaints", c.closed_unconfirmed.0, "closed_unconfirmed"),
            ("proposals", p.submitted.0, "submitted"),
            ("proposals", p.published.0, "published"),
            ("proposals", p.rejected.0, "rejected"),
            ("proposals", p.under_review.0, "under_review"),
            ("proposals", p.answered.0, "implemented"),
            ("proposals", p.withdrawn.0, "withdrawn"),
            ("proposals", p.expired.0, "expired"),
        ] {
            let found = self.app.get(&format!("/v1/{collection}/{id}")).await.body;
            assert_eq!(found["status"], status, "{collection} {id}: {found}");
        }
    }
}

fn case<'a>(
    name: &'static str,
    key: &'a SigningKey,
    action: Action,
    status: u16,
    code: &'static str,
) -> Case<'a> {
    Case {
        name,
        key,
        action,
        status,
        code,
    }
}

fn cases(fixture: &Fixture) -> Vec<Case<'_>> {
    let f = fixture;
    let c = &f.complaints;
    let p = &f.proposals;
    let citizen = &f.author;
    let [first_supporter, second_supporter, _] = &f.supporters;
    let transition = "transition-not-allowed";
    vec![
        // Complaints: the wrong role.
        case(
            "a citizen triaging a complaint",
            citizen,
            c.filed.accept(),
            403,
            "not-moderator",
        ),
        case(
            "an official triaging a complaint",
            &f.roads,
            c.filed.accept(),
            403,
            "not-moderator",
        ),
        case(
            "a revoked moderator triaging a complaint",
            &f.revoked_moderator,
            c.filed.accept(),
            403,
            "not-moderator",
        ),
        case(
            "a registrar merging complaints",
            &f.registrar,
            c.filed.merge_into(c.accepted),
            403,
            "not-moderator",
        ),
        case(
            "a revoked moderator merging complaints",
            &f.revoked_moderator,
            c.filed.merge_into(c.accepted),
            403,
            "not-moderator",
        ),
        case(
            "the author starting work on their own complaint",
            citizen,
            c.accepted.start(),
            403,
            "not-official",
        ),
        case(
            "a moderator resolving a complaint",
            &f.moderator,
            c.in_progress.resolve(),
            403,
            "not-official",
        ),
        case(
            "a citizen declaring a complaint cannot be resolved",
            &f.neighbour,
            c.in_progress.cannot(),
            403,
            "not-official",
        ),
        case(
            "an official of another department starting work",
            &f.parks,
            c.accepted.start(),
            403,
            "not-responsible-department",
        ),
        case(
            "an official of another department resolving",
            &f.parks,
            c.in_progress.resolve(),
            403,
            "not-responsible-department",
        ),
        case(
            "an official of another department declaring it cannot be resolved",
            &f.parks,
            c.in_progress.cannot(),
            403,
            "not-responsible-department",
        ),
        case(
            "an official of another department starting work on a complaint not yet routed",
            &f.parks,
            c.filed.start(),
            403,
            "not-responsible-department",
        ),
        case(
            "a citizen signing an SLA breach",
            citizen,
            Action::BreachSla(c.accepted.reference()),
            403,
            "system-only",
        ),
        case(
            "a citizen signing a silent close",
            citizen,
            Action::CloseUnconfirmed(c.resolved.reference()),
            403,
            "system-only",
        ),
        case(
            "an unregistered key filing a complaint",
            &f.stranger,
            filing(),
            403,
            "not-eligible",
        ),
        // Complaints: the wrong state.
        case(
            "accepting a complaint twice",
            &f.moderator,
            c.accepted.accept(),
            409,
            transition,
        ),
        case(
            "triaging a rejected complaint",
            &f.moderator,
            c.rejected.accept(),
            409,
            transition,
        ),
        case(
            "triaging a merged complaint",
            &f.moderator,
            c.merged.reject(RejectionReason::OutOfScope),
            409,
            transition,
        ),
        case(
            "merging a rejected complaint",
            &f.moderator,
            c.rejected.merge_into(c.accepted),
            409,
            transition,
        ),
        case(
            "merging a merged complaint again",
            &f.moderator,
            c.merged.merge_into(c.in_progress),
            409,
            transition,
        ),
        case(
            "merging a resolved complaint",
            &f.moderator,
            c.resolved.merge_into(c.accepted),
            409,
            transition,
        ),
        case(
            "merging a confirmed complaint",
            &f.moderator,
            c.confirmed.merge_into(c.accepted),
            409,
            transition,
        ),
        case(
            "merging into a rejected complaint",
            &f.moderator,
            c.filed.merge_into(c.rejected),
            422,
            "invalid-complaint",
        ),
        case(
            "supplementing a complaint nobody asked about",
            citizen,
            c.filed.supplement(),
            409,
            transition,
        ),
        case(
            "supplementing an accepted complaint",
            citizen,
            c.accepted.supplement(),
            409,
            transition,
        ),
        case(
            "starting work on a complaint not yet triaged",
            &f.roads,
            c.filed.start(),
            409,
            transition,
        ),
        case(
            "starting work on a rejected complaint",
            &f.roads,
            c.rejected.start(),
            409,
            transition,
        ),
        case(
            "starting work twice",
            &f.roads,
            c.in_progress.start(),
            409,
            transition,
        ),
        case(
            "starting work on a resolved complaint",
            &f.roads,
            c.resolved.start(),
            409,
            transition,
        ),
        case(
            "resolving a rejected complaint",
            &f.roads,
            c.rejected.resolve(),
            409,
            transition,
        ),
        case(
            "resolving a complaint waiting for the author's details",
            &f.roads,
            c.needs_info.resolve(),
            409,
            transition,
        ),
        case(
            "resolving a merged complaint",
            &f.roads,
            c.merged.resolve(),
            409,
            transition,
        ),
        case(
            "resolving a complaint twice",
            &f.roads,
            c.resolved.resolve(),
            409,
            transition,
        ),
        case(
            "resolving a complaint declared unresolvable",
            &f.roads,
            c.cannot_resolve.resolve(),
            409,
            transition,
        ),
        case(
            "declaring a confirmed complaint unresolvable",
            &f.roads,
            c.confirmed.cannot(),
            409,
            transition,
        ),
        case(
            "declaring a complaint not yet triaged unresolvable",
            &f.roads,
            c.filed.cannot(),
            409,
            transition,
        ),
        case(
            "confirming a complaint still in progress",
            citizen,
            c.in_progress.confirm(),
            409,
            transition,
        ),
        case(
            "confirming an accepted complaint",
            citizen,
            c.accepted.confirm(),
            409,
            transition,
        ),
        case(
            "confirming a resolution twice",
            citizen,
            c.confirmed.confirm(),
            409,
            transition,
        ),
        case(
            "confirming a complaint declared unresolvable",
            citizen,
            c.cannot_resolve.confirm(),
            409,
            transition,
        ),
        case(
            "disputing an accepted complaint",
            citizen,
            c.accepted.dispute(),
            409,
            transition,
        ),
        case(
            "disputing a confirmed resolution",
            citizen,
            c.confirmed.dispute(),
            409,
            transition,
        ),
        case(
            "acting on a complaint that does not exist",
            &f.roads,
            Complaint(999_999).start(),
            404,
            "unknown-complaint",
        ),
        // Complaints: the wrong author.
        case(
            "a neighbour confirming someone else's resolution",
            &f.neighbour,
            c.resolved.confirm(),
            403,
            "not-author",
        ),
        case(
            "a neighbour disputing someone else's resolution",
            &f.neighbour,
            c.resolved.dispute(),
            403,
            "not-author",
        ),
        case(
            "the resolving official confirming their own fix",
            &f.roads,
            c.resolved.confirm(),
            403,
            "not-author",
        ),
        case(
            "a neighbour supplementing someone else's complaint",
            &f.neighbour,
            c.needs_info.supplement(),
            403,
            "not-author",
        ),
        // Complaints: outside the window.
        case(
            "confirming after the confirmation window closed",
            citizen,
            c.closed_unconfirmed.confirm(),
            409,
            "confirmation-window-closed",
        ),
        case(
            "disputing after the confirmation window closed",
            citizen,
            c.closed_unconfirmed.dispute(),
            409,
            "confirmation-window-closed",
        ),
        // Proposals: the wrong role.
        case(
            "a citizen moderating a proposal",
            citizen,
            p.submitted.publish(),
            403,
            "not-moderator",
        ),
        case(
            "a revoked moderator moderating a proposal",
            &f.revoked_moderator,
            p.submitted.publish(),
            403,
            "not-moderator",
        ),
        case(
            "an official moderating a proposal",
            &f.roads,
            p.submitted.turn_down(),
            403,
            "not-moderator",
        ),
        case(
            "a citizen answering a proposal",
            citizen,
            p.under_review.answer(ProposalOutcome::Accepted),
            403,
            "not-official",
        ),
        case(
            "a moderator answering a proposal",
            &f.moderator,
            p.under_review.answer(ProposalOutcome::Declined),
            403,
            "not-official",
        ),
        case(
            "an official of another department answering a proposal",
            &f.parks,
            p.under_review.answer(ProposalOutcome::Accepted),
            403,
            "not-responsible-department",
        ),
        case(
            "an unregistered key supporting a proposal",
            &f.stranger,
            p.published.support(),
            403,
            "not-eligible",
        ),
        case(
            "an unregistered key submitting a proposal",
            &f.stranger,
            submission("street-lighting"),
            403,
            "not-eligible",
        ),
        case(
            "a citizen signing a proposal's expiry",
            citizen,
            Action::ExpireProposal(ProposalReference {
                proposal: p.published.0,
            }),
            403,
            "system-only",
        ),
        // Proposals: the wrong state.
        case(
            "publishing a proposal twice",
            &f.moderator,
            p.published.publish(),
            409,
            transition,
        ),
        case(
            "rejecting a rejected proposal",
            &f.moderator,
            p.rejected.turn_down(),
            409,
            transition,
        ),
        case(
            "rejecting a proposal under review",
            &f.moderator,
            p.under_review.turn_down(),
            409,
            transition,
        ),
        case(
            "supporting an unpublished proposal",
            second_supporter,
            p.submitted.support(),
            409,
            transition,
        ),
        case(
            "supporting a rejected proposal",
            second_supporter,
            p.rejected.support(),
            409,
            transition,
        ),
        case(
            "supporting a proposal under review",
            &f.neighbour,
            p.under_review.support(),
            409,
            transition,
        ),
        case(
            "supporting a withdrawn proposal",
            second_supporter,
            p.withdrawn.support(),
            409,
            transition,
        ),
        case(
            "supporting a proposal twice",
            first_supporter,
            p.published.support(),
            409,
            "already-supported",
        ),
        case(
            "withdrawing a support never given",
            second_supporter,
            p.published.withdraw_support(),
            409,
            "not-supported",
        ),
        case(
            "withdrawing a support after the threshold was reached",
            first_supporter,
            p.under_review.withdraw_support(),
            409,
            "threshold-reached",
        ),
        case(
            "withdrawing a support from an answered proposal",
            first_supporter,
            p.answered.withdraw_support(),
            409,
            "threshold-reached",
        ),
        case(
            "withdrawing a support from a withdrawn proposal",
            first_supporter,
            p.withdrawn.withdraw_support(),
            409,
            transition,
        ),
        case(
            "answering a proposal not under review",
            &f.roads,
            p.published.answer(ProposalOutcome::Accepted),
            409,
            transition,
        ),
        case(
            "answering a proposal twice",
            &f.roads,
            p.answered.answer(ProposalOutcome::Declined),
            409,
            transition,
        ),
        case(
            "withdrawing a proposal twice",
            citizen,
            p.withdrawn.withdraw(),
            409,
            transition,
        ),
        case(
            "withdrawing a proposal under review",
            citizen,
            p.under_review.withdraw(),
            409,
            transition,
        ),
        case(
            "withdrawing a rejected proposal",
            citizen,
            p.rejected.withdraw(),
            409,
            transition,
        ),
        case(
            "acting on a proposal that does not exist",
            first_supporter,
            Proposal(999_999).support(),
            404,
            "unknown-proposal",
        ),
        // Proposals: the wrong author.
        case(
            "a neighbour withdrawing someone else's proposal",
            &f.neighbour,
            p.published.withdraw(),
            403,
            "not-author",
        ),
        case(
            "a moderator withdrawing someone else's proposal",
            &f.moderator,
            p.submitted.withdraw(),
            403,
            "not-author",
        ),
        // Proposals: outside the window.
        case(
            "supporting a proposal after it expired",
            second_supporter,
            p.expired.support(),
            409,
            transition,
        ),
        case(
            "withdrawing a support after the proposal expired",
            first_supporter,
            p.expired.withdraw_support(),
            409,
            transition,
        ),
        case(
            "withdrawing a proposal after it expired",
            citizen,
            p.expired.withdraw(),
            409,
            transition,
        ),
        // Registrar and admin actions by the wrong role.
        case(
            "a citizen attesting a resident",
            citizen,
            Action::AttestResident(Attestation {
                subject: public(&f.neighbour),
                district: Some("Arbat".into()),
                verified: true,
                resident_tag: Some(resident_tag_of(&f.neighbour)),
            }),
            403,
            "not-registrar",
        ),
        case(
            "a moderator attesting a resident",
            &f.moderator,
            Action::AttestResident(Attestation {
                subject: public(&f.neighbour),
                district: None,
                verified: true,
                resident_tag: Some(resident_tag_of(&f.neighbour)),
            }),
            403,
            "not-registrar",
        ),
        case(
            "a citizen defining a category",
            citizen,
            Action::DefineCategory(lighting()),
            403,
            "not-admin",
        ),
        case(
            "an official changing their category's SLA",
            &f.roads,
            Action::DefineCategory(CategoryDefinition {
                sla_working_days: 40,
                ..lighting()
            }),
            403,
            "not-admin",
        ),
        case(
            "a moderator granting a role",
            &f.moderator,
            Action::GrantRole(RoleChange {
                subject: public(&f.neighbour),
                role: Role::Moderator,
                department: None,
            }),
            403,
            "not-admin",
        ),
        case(
            "a registrar revoking a role",
            &f.registrar,
            Action::RevokeRole(RoleChange {
                subject: public(&f.moderator),
                role: Role::Moderator,
                department: None,
            }),
            403,
            "not-admin",
        ),
    ]
}

/// The table must reach every action that has a lifecycle or a role, and must notice new ones.
fn assert_coverage(cases: &[Case<'_>]) {
    let covered: BTreeSet<&str> = cases.iter().map(|case| case.action.name()).collect();
    for name in LIFECYCLE_ACTIONS.iter().chain(&ROLE_ACTIONS) {
        assert!(covered.contains(name), "no refusal case for {name}");
    }
    for name in Action::NAMES {
        assert!(
            covered.contains(name) || TESTED_ELSEWHERE.contains(&name),
            "{name} is a new action: add its refusals to this table or to TESTED_ELSEWHERE"
        );
    }
    let stateful_client_actions = LIFECYCLE_ACTIONS
        .into_iter()
        .filter(|name| !LIFECYCLE_SYSTEM_EVENTS.contains(name));
    for name in stateful_client_actions {
        assert!(
            cases
                .iter()
                .any(|case| case.action.name() == name && case.code == "transition-not-allowed"),
            "no wrong-state case for {name}"
        );
        // Withdrawing a support needs no role: its "who" refusal is `not-supported`.
        if name != "withdraw_support" {
            assert!(
                cases
                    .iter()
                    .any(|case| case.action.name() == name && case.status == 403),
                "no wrong-role or wrong-author case for {name}"
            );
        }
    }
}

#[actix_web::test]
async fn every_forbidden_lifecycle_transition_is_refused_with_its_problem_type_and_appends_nothing()
{
    let directory = tempfile::tempdir().unwrap();
    let fixture = fixture(TestApp::spawn(directory.path()).await).await;
    let cases = cases(&fixture);
    assert_coverage(&cases);
    let app = &fixture.app;
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {:?}", case.name);
        // A minute per case keeps every key far below its rate limit; nothing comes due in the
        // hour the table takes, so the background closer appends nothing while sizes are read.
        app.clock.advance_milliseconds(MINUTE_MS);
        assert!(
            app.node.ledger().due_system_actions(app.now()).is_empty(),
            "{}: a system event came due during the table",
            case.name
        );
        let send = app.act(case.key, case.action.clone());
        let mismatch = refusal_mismatch(app, case.name, case.status, case.code, send).await;
        failures.extend(mismatch);
    }
    assert!(
        failures.is_empty(),
        "{} of {} lifecycle refusals did not hold:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    fixture.app.stop().await;
}

/// A node without the HTTP server's background task, so no system event (a breach, an expiry)
/// can slip in between a deadline passing and the command that follows it.
struct BareNode {
    node: veche::node::Node,
    clock: std::sync::Arc<veche::clock::ManualClock>,
    entropy: veche::keys::SeededEntropy,
    admin: SigningKey,
}

impl BareNode {
    /// A bare node whose admin has defined the street-lighting category.
    async fn with_lighting() -> BareNode {
        let bare = BareNode::start();
        bare.act(&bare.admin, Action::DefineCategory(lighting()))
            .await;
        bare
    }

    fn start() -> BareNode {
        use std::sync::Arc;
        use veche::keys::{generate_key, SeededEntropy};
        let entropy = SeededEntropy::new(404);
        let server = generate_key(&entropy);
        let admin = generate_key(&entropy);
        let clock = Arc::new(veche::clock::ManualClock::starting_at(
            crate::harness::TEST_START,
        ));
        let node = veche::node::Node::start(veche::node::NodeConfig {
            store: Arc::new(veche::store::MemoryStore::new()),
            clock: clock.clone(),
            server_key: server,
            admin_keys: vec![public(&admin)],
            recovery: None,
            log_origin: "test.veche/log".into(),
            snapshot: None,
            snapshot_interval_entries: 0,
        })
        .unwrap();
        BareNode {
            node,
            clock,
            entropy,
            admin,
        }
    }

    async fn submit(&self, key: &SigningKey, action: Action) -> Result<u64, String> {
        use veche::clock::Clock;
        let envelope = veche::client::signed_envelope(key, action, self.clock.now(), &self.entropy);
        let (signed, content) = crate::harness::opened_with_content(envelope);
        match self.node.append(signed, content).await {
            Ok(receipt) => Ok(receipt.position),
            Err(veche::writer::SubmitError::Refused(refusal)) => Err(refusal.code().to_owned()),
            Err(other) => panic!("{other}"),
        }
    }

    async fn act(&self, key: &SigningKey, action: Action) -> u64 {
        let name = action.name();
        self.submit(key, action)
            .await
            .unwrap_or_else(|code| panic!("{name} refused: {code}"))
    }

    /// A registered key, granted `role` when given.
    async fn member(&self, role: Option<(Role, Option<&str>)>) -> SigningKey {
        let key = veche::keys::generate_key(&self.entropy);
        self.act(
            &key,
            Action::RegisterKey(projections::command::RegisterKey {}),
        )
        .await;
        if let Some((role, department)) = role {
            let grant = Action::GrantRole(RoleChange {
                subject: public(&key),
                role,
                department: department.map(str::to_owned),
            });
            self.act(&self.admin, grant).await;
        }
        key
    }
}

#[tokio::test]
async fn an_answer_after_the_deadline_breaches_the_sla_even_before_the_breach_event() {
    let bare = BareNode::with_lighting().await;
    let moderator = bare.member(Some((Role::Moderator, None))).await;
    let roads = bare.member(Some((Role::Official, Some("roads")))).await;
    let author = bare.member(None).await;
    let on_time = Complaint(bare.act(&author, filing()).await);
    let late = Complaint(bare.act(&author, filing()).await);
    bare.act(&moderator, on_time.accept()).await;
    bare.act(&moderator, late.accept()).await;
    bare.act(&roads, on_time.resolve()).await;
    // Eight working days later and then some: the deadline has passed, no breach event yet.
    bare.clock.advance_milliseconds(14 * DAY_MS);
    assert!(!bare.node.ledger().complaints[&late.0].sla_breached);
    bare.act(&roads, late.resolve()).await;
    let ledger = bare.node.ledger();
    assert!(ledger.complaints[&late.0].sla_breached);
    assert!(!ledger.complaints[&on_time.0].sla_breached);
    let statistics = projections::statistics::complaint_statistics(&ledger);
    assert_eq!(statistics.overall.sla_breached, 1);
    assert_eq!(statistics.overall.resolved_within_sla, 1);
}

#[tokio::test]
async fn a_proposal_past_its_lifetime_refuses_withdrawals_even_before_the_expiry_event() {
    let bare = BareNode::with_lighting().await;
    let moderator = bare.member(Some((Role::Moderator, None))).await;
    let author = bare.member(None).await;
    let supporter = bare.member(None).await;
    let proposal = Proposal(bare.act(&author, submission("street-lighting")).await);
    bare.act(&moderator, proposal.publish()).await;
    bare.act(&supporter, proposal.support()).await;
    // The lighting category gives proposals 30 days; no expiry event is appended here.
    bare.clock.advance_milliseconds(31 * DAY_MS);
    let size = bare.node.ledger().size;
    for (key, action) in [
        (&supporter, proposal.withdraw_support()),
        (&author, proposal.withdraw()),
        (&author, proposal.support()),
    ] {
        let name = action.name();
        assert_eq!(
            bare.submit(key, action).await,
            Err("transition-not-allowed".to_owned()),
            "{name} after the proposal's lifetime"
        );
    }
    assert_eq!(bare.node.ledger().size, size, "nothing was appended");
}
