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

use crate::harness::{lighting, public, refusal_mismatch, streetlight_filing, TestApp, MINUTE_MS};

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
const TESTED_ELSEWHERE: [&str; 5] = [
    "register_key",
    "open_poll",
    "cast_ballot",
    "genesis",
    "close_poll",
];

/// Client actions with a lifecycle state: each needs a wrong-state case in the table.
const STATEFUL_CLIENT_ACTIONS: [&str; 13] = [
    "triage_complaint",
    "merge_complaint",
    "supplement_complaint",
    "start_work",
    "resolve_complaint",
    "cannot_resolve",
    "confirm_resolution",
    "dispute_resolution",
    "moderate_proposal",
    "support_proposal",
    "withdraw_support",
    "answer_proposal",
    "withdraw_proposal",
];

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
    filed: u64,
    needs_info: u64,
    accepted: u64,
    in_progress: u64,
    resolved: u64,
    rejected: u64,
    merged: u64,
    cannot_resolve: u64,
    confirmed: u64,
    closed_unconfirmed: u64,
}

struct Proposals {
    submitted: u64,
    published: u64,
    rejected: u64,
    under_review: u64,
    answered: u64,
    withdrawn: u64,
    expired: u64,
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
    }
}

fn filing() -> Action {
    Action::FileComplaint(streetlight_filing("Tverskoy"))
}

fn submission(category: &str) -> Action {
    Action::SubmitProposal(ProposalSubmission {
        title: "More light on the boulevard".into(),
        body: "Add lamps every twenty metres along the boulevard.".into(),
        category: category.into(),
        district: Some("Tverskoy".into()),
    })
}

fn triage(complaint: u64, decision: TriageDecision) -> Action {
    Action::TriageComplaint(Triage {
        complaint,
        decision,
    })
}

fn accept(complaint: u64) -> Action {
    triage(complaint, TriageDecision::Accept)
}

fn reject(complaint: u64, rejection: RejectionReason) -> Action {
    triage(complaint, TriageDecision::Reject { rejection })
}

fn merge(complaint: u64, into: u64) -> Action {
    Action::MergeComplaint(Merge { complaint, into })
}

fn supplement(complaint: u64) -> Action {
    Action::SupplementComplaint(Supplement {
        complaint,
        text: "It is the lamp nearest the bus stop.".into(),
        attachments: vec![],
    })
}

fn reference(complaint: u64) -> ComplaintReference {
    ComplaintReference { complaint }
}

fn start(complaint: u64) -> Action {
    Action::StartWork(reference(complaint))
}

fn resolve(complaint: u64) -> Action {
    Action::ResolveComplaint(Resolution {
        complaint,
        answer: "The lamp was replaced.".into(),
        evidence: vec![],
    })
}

fn cannot(complaint: u64) -> Action {
    Action::CannotResolve(CannotResolve {
        complaint,
        reason: "The lamp belongs to a private yard.".into(),
    })
}

fn confirm(complaint: u64) -> Action {
    Action::ConfirmResolution(reference(complaint))
}

fn dispute(complaint: u64) -> Action {
    Action::DisputeResolution(Dispute {
        complaint,
        reason: "Still dark.".into(),
    })
}

fn moderate(proposal: u64, decision: ModerationDecision) -> Action {
    Action::ModerateProposal(ProposalModeration { proposal, decision })
}

fn publish(proposal: u64) -> Action {
    moderate(proposal, ModerationDecision::Publish)
}

fn turn_down(proposal: u64) -> Action {
    moderate(
        proposal,
        ModerationDecision::Reject {
            reason: "Already planned for next year.".into(),
        },
    )
}

fn support(proposal: u64) -> Action {
    Action::SupportProposal(ProposalReference { proposal })
}

fn withdraw_support(proposal: u64) -> Action {
    Action::WithdrawSupport(ProposalReference { proposal })
}

fn answer(proposal: u64, outcome: ProposalOutcome) -> Action {
    Action::AnswerProposal(ProposalAnswer {
        proposal,
        outcome,
        answer: "The department will light the boulevard in spring.".into(),
    })
}

fn withdraw(proposal: u64) -> Action {
    Action::WithdrawProposal(ProposalReference { proposal })
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
    let closed_unconfirmed = app.act_ok(&author, filing()).await;
    app.act_ok(&revoked_moderator, accept(closed_unconfirmed))
        .await;
    app.act_ok(&roads, resolve(closed_unconfirmed)).await;
    let revoke = Action::RevokeRole(RoleChange {
        subject: public(&revoked_moderator),
        role: Role::Moderator,
        department: None,
    });
    app.act_ok(&app.admin, revoke).await;
    let expired = app.act_ok(&author, submission("benches")).await;
    app.act_ok(&moderator, publish(expired)).await;
    app.act_ok(&supporters[0], support(expired)).await;

    // A week and a day: the resolution's seven-day window ends in silence and the one-day
    // proposal expires; the server appends both system events now.
    app.clock.advance_milliseconds(8 * DAY_MS);
    app.node.append_due_system_events().await.unwrap();

    let filed = app.act_ok(&author, filing()).await;
    let needs_info = app.act_ok(&author, filing()).await;
    let question = TriageDecision::NeedsInfo {
        question: "Which lamp exactly?".into(),
    };
    app.act_ok(&moderator, triage(needs_info, question)).await;
    let accepted = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, accept(accepted)).await;
    let in_progress = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, accept(in_progress)).await;
    app.act_ok(&roads, start(in_progress)).await;
    let resolved = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, accept(resolved)).await;
    app.act_ok(&roads, resolve(resolved)).await;
    let rejected = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, reject(rejected, RejectionReason::Spam))
        .await;
    let merged = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, merge(merged, accepted)).await;
    let cannot_resolve = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, accept(cannot_resolve)).await;
    app.act_ok(&roads, cannot(cannot_resolve)).await;
    let confirmed = app.act_ok(&author, filing()).await;
    app.act_ok(&moderator, accept(confirmed)).await;
    app.act_ok(&roads, resolve(confirmed)).await;
    app.act_ok(&author, confirm(confirmed)).await;

    let submitted = app.act_ok(&author, submission("street-lighting")).await;
    let published = app.act_ok(&author, submission("street-lighting")).await;
    app.act_ok(&moderator, publish(published)).await;
    app.act_ok(&supporters[0], support(published)).await;
    let rejected_proposal = app.act_ok(&author, submission("street-lighting")).await;
    app.act_ok(&moderator, turn_down(rejected_proposal)).await;
    let under_review = app.act_ok(&author, submission("street-lighting")).await;
    let answered = app.act_ok(&author, submission("street-lighting")).await;
    for proposal in [under_review, answered] {
        app.act_ok(&moderator, publish(proposal)).await;
        for supporter in &supporters {
            app.act_ok(supporter, support(proposal)).await;
        }
    }
    app.act_ok(&roads, answer(answered, ProposalOutcome::Implemented))
        .await;
    let withdrawn = app.act_ok(&author, submission("street-lighting")).await;
    app.act_ok(&moderator, publish(withdrawn)).await;
    app.act_ok(&supporters[0], support(withdrawn)).await;
    app.act_ok(&author, withdraw(withdrawn)).await;

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
            ("complaints", c.filed, "filed"),
            ("complaints", c.needs_info, "needs_info"),
            ("complaints", c.accepted, "accepted"),
            ("complaints", c.in_progress, "in_progress"),
            ("complaints", c.resolved, "resolved"),
            ("complaints", c.rejected, "rejected"),
            ("complaints", c.merged, "merged"),
            ("complaints", c.cannot_resolve, "cannot_resolve"),
            ("complaints", c.confirmed, "confirmed"),
            ("complaints", c.closed_unconfirmed, "closed_unconfirmed"),
            ("proposals", p.submitted, "submitted"),
            ("proposals", p.published, "published"),
            ("proposals", p.rejected, "rejected"),
            ("proposals", p.under_review, "under_review"),
            ("proposals", p.answered, "implemented"),
            ("proposals", p.withdrawn, "withdrawn"),
            ("proposals", p.expired, "expired"),
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
            accept(c.filed),
            403,
            "not-moderator",
        ),
        case(
            "an official triaging a complaint",
            &f.roads,
            accept(c.filed),
            403,
            "not-moderator",
        ),
        case(
            "a revoked moderator triaging a complaint",
            &f.revoked_moderator,
            accept(c.filed),
            403,
            "not-moderator",
        ),
        case(
            "a registrar merging complaints",
            &f.registrar,
            merge(c.filed, c.accepted),
            403,
            "not-moderator",
        ),
        case(
            "a revoked moderator merging complaints",
            &f.revoked_moderator,
            merge(c.filed, c.accepted),
            403,
            "not-moderator",
        ),
        case(
            "the author starting work on their own complaint",
            citizen,
            start(c.accepted),
            403,
            "not-official",
        ),
        case(
            "a moderator resolving a complaint",
            &f.moderator,
            resolve(c.in_progress),
            403,
            "not-official",
        ),
        case(
            "a citizen declaring a complaint cannot be resolved",
            &f.neighbour,
            cannot(c.in_progress),
            403,
            "not-official",
        ),
        case(
            "an official of another department starting work",
            &f.parks,
            start(c.accepted),
            403,
            "not-responsible-department",
        ),
        case(
            "an official of another department resolving",
            &f.parks,
            resolve(c.in_progress),
            403,
            "not-responsible-department",
        ),
        case(
            "an official of another department declaring it cannot be resolved",
            &f.parks,
            cannot(c.in_progress),
            403,
            "not-responsible-department",
        ),
        case(
            "an official of another department starting work on a complaint not yet routed",
            &f.parks,
            start(c.filed),
            403,
            "not-responsible-department",
        ),
        case(
            "a citizen signing an SLA breach",
            citizen,
            Action::BreachSla(reference(c.accepted)),
            403,
            "system-only",
        ),
        case(
            "a citizen signing a silent close",
            citizen,
            Action::CloseUnconfirmed(reference(c.resolved)),
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
            accept(c.accepted),
            409,
            transition,
        ),
        case(
            "triaging a rejected complaint",
            &f.moderator,
            accept(c.rejected),
            409,
            transition,
        ),
        case(
            "triaging a merged complaint",
            &f.moderator,
            reject(c.merged, RejectionReason::OutOfScope),
            409,
            transition,
        ),
        case(
            "merging a rejected complaint",
            &f.moderator,
            merge(c.rejected, c.accepted),
            409,
            transition,
        ),
        case(
            "merging a merged complaint again",
            &f.moderator,
            merge(c.merged, c.in_progress),
            409,
            transition,
        ),
        case(
            "merging a resolved complaint",
            &f.moderator,
            merge(c.resolved, c.accepted),
            409,
            transition,
        ),
        case(
            "merging a confirmed complaint",
            &f.moderator,
            merge(c.confirmed, c.accepted),
            409,
            transition,
        ),
        case(
            "merging into a rejected complaint",
            &f.moderator,
            merge(c.filed, c.rejected),
            422,
            "invalid-complaint",
        ),
        case(
            "supplementing a complaint nobody asked about",
            citizen,
            supplement(c.filed),
            409,
            transition,
        ),
        case(
            "supplementing an accepted complaint",
            citizen,
            supplement(c.accepted),
            409,
            transition,
        ),
        case(
            "starting work on a complaint not yet triaged",
            &f.roads,
            start(c.filed),
            409,
            transition,
        ),
        case(
            "starting work on a rejected complaint",
            &f.roads,
            start(c.rejected),
            409,
            transition,
        ),
        case(
            "starting work twice",
            &f.roads,
            start(c.in_progress),
            409,
            transition,
        ),
        case(
            "starting work on a resolved complaint",
            &f.roads,
            start(c.resolved),
            409,
            transition,
        ),
        case(
            "resolving a rejected complaint",
            &f.roads,
            resolve(c.rejected),
            409,
            transition,
        ),
        case(
            "resolving a complaint waiting for the author's details",
            &f.roads,
            resolve(c.needs_info),
            409,
            transition,
        ),
        case(
            "resolving a merged complaint",
            &f.roads,
            resolve(c.merged),
            409,
            transition,
        ),
        case(
            "resolving a complaint twice",
            &f.roads,
            resolve(c.resolved),
            409,
            transition,
        ),
        case(
            "resolving a complaint declared unresolvable",
            &f.roads,
            resolve(c.cannot_resolve),
            409,
            transition,
        ),
        case(
            "declaring a confirmed complaint unresolvable",
            &f.roads,
            cannot(c.confirmed),
            409,
            transition,
        ),
        case(
            "declaring a complaint not yet triaged unresolvable",
            &f.roads,
            cannot(c.filed),
            409,
            transition,
        ),
        case(
            "confirming a complaint still in progress",
            citizen,
            confirm(c.in_progress),
            409,
            transition,
        ),
        case(
            "confirming an accepted complaint",
            citizen,
            confirm(c.accepted),
            409,
            transition,
        ),
        case(
            "confirming a resolution twice",
            citizen,
            confirm(c.confirmed),
            409,
            transition,
        ),
        case(
            "confirming a complaint declared unresolvable",
            citizen,
            confirm(c.cannot_resolve),
            409,
            transition,
        ),
        case(
            "disputing an accepted complaint",
            citizen,
            dispute(c.accepted),
            409,
            transition,
        ),
        case(
            "disputing a confirmed resolution",
            citizen,
            dispute(c.confirmed),
            409,
            transition,
        ),
        case(
            "acting on a complaint that does not exist",
            &f.roads,
            start(999_999),
            404,
            "unknown-complaint",
        ),
        // Complaints: the wrong author.
        case(
            "a neighbour confirming someone else's resolution",
            &f.neighbour,
            confirm(c.resolved),
            403,
            "not-author",
        ),
        case(
            "a neighbour disputing someone else's resolution",
            &f.neighbour,
            dispute(c.resolved),
            403,
            "not-author",
        ),
        case(
            "the resolving official confirming their own fix",
            &f.roads,
            confirm(c.resolved),
            403,
            "not-author",
        ),
        case(
            "a neighbour supplementing someone else's complaint",
            &f.neighbour,
            supplement(c.needs_info),
            403,
            "not-author",
        ),
        // Complaints: outside the window.
        case(
            "confirming after the confirmation window closed",
            citizen,
            confirm(c.closed_unconfirmed),
            409,
            "confirmation-window-closed",
        ),
        case(
            "disputing after the confirmation window closed",
            citizen,
            dispute(c.closed_unconfirmed),
            409,
            "confirmation-window-closed",
        ),
        // Proposals: the wrong role.
        case(
            "a citizen moderating a proposal",
            citizen,
            publish(p.submitted),
            403,
            "not-moderator",
        ),
        case(
            "a revoked moderator moderating a proposal",
            &f.revoked_moderator,
            publish(p.submitted),
            403,
            "not-moderator",
        ),
        case(
            "an official moderating a proposal",
            &f.roads,
            turn_down(p.submitted),
            403,
            "not-moderator",
        ),
        case(
            "a citizen answering a proposal",
            citizen,
            answer(p.under_review, ProposalOutcome::Accepted),
            403,
            "not-official",
        ),
        case(
            "a moderator answering a proposal",
            &f.moderator,
            answer(p.under_review, ProposalOutcome::Declined),
            403,
            "not-official",
        ),
        case(
            "an official of another department answering a proposal",
            &f.parks,
            answer(p.under_review, ProposalOutcome::Accepted),
            403,
            "not-responsible-department",
        ),
        case(
            "an unregistered key supporting a proposal",
            &f.stranger,
            support(p.published),
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
                proposal: p.published,
            }),
            403,
            "system-only",
        ),
        // Proposals: the wrong state.
        case(
            "publishing a proposal twice",
            &f.moderator,
            publish(p.published),
            409,
            transition,
        ),
        case(
            "rejecting a rejected proposal",
            &f.moderator,
            turn_down(p.rejected),
            409,
            transition,
        ),
        case(
            "rejecting a proposal under review",
            &f.moderator,
            turn_down(p.under_review),
            409,
            transition,
        ),
        case(
            "supporting an unpublished proposal",
            second_supporter,
            support(p.submitted),
            409,
            transition,
        ),
        case(
            "supporting a rejected proposal",
            second_supporter,
            support(p.rejected),
            409,
            transition,
        ),
        case(
            "supporting a proposal under review",
            &f.neighbour,
            support(p.under_review),
            409,
            transition,
        ),
        case(
            "supporting a withdrawn proposal",
            second_supporter,
            support(p.withdrawn),
            409,
            transition,
        ),
        case(
            "supporting a proposal twice",
            first_supporter,
            support(p.published),
            409,
            "already-supported",
        ),
        case(
            "withdrawing a support never given",
            second_supporter,
            withdraw_support(p.published),
            409,
            "not-supported",
        ),
        case(
            "withdrawing a support after the threshold was reached",
            first_supporter,
            withdraw_support(p.under_review),
            409,
            "threshold-reached",
        ),
        case(
            "withdrawing a support from an answered proposal",
            first_supporter,
            withdraw_support(p.answered),
            409,
            "threshold-reached",
        ),
        case(
            "withdrawing a support from a withdrawn proposal",
            first_supporter,
            withdraw_support(p.withdrawn),
            409,
            transition,
        ),
        case(
            "answering a proposal not under review",
            &f.roads,
            answer(p.published, ProposalOutcome::Accepted),
            409,
            transition,
        ),
        case(
            "answering a proposal twice",
            &f.roads,
            answer(p.answered, ProposalOutcome::Declined),
            409,
            transition,
        ),
        case(
            "withdrawing a proposal twice",
            citizen,
            withdraw(p.withdrawn),
            409,
            transition,
        ),
        case(
            "withdrawing a proposal under review",
            citizen,
            withdraw(p.under_review),
            409,
            transition,
        ),
        case(
            "withdrawing a rejected proposal",
            citizen,
            withdraw(p.rejected),
            409,
            transition,
        ),
        case(
            "acting on a proposal that does not exist",
            first_supporter,
            support(999_999),
            404,
            "unknown-proposal",
        ),
        // Proposals: the wrong author.
        case(
            "a neighbour withdrawing someone else's proposal",
            &f.neighbour,
            withdraw(p.published),
            403,
            "not-author",
        ),
        case(
            "a moderator withdrawing someone else's proposal",
            &f.moderator,
            withdraw(p.submitted),
            403,
            "not-author",
        ),
        // Proposals: outside the window.
        case(
            "supporting a proposal after it expired",
            second_supporter,
            support(p.expired),
            409,
            transition,
        ),
        case(
            "withdrawing a support after the proposal expired",
            first_supporter,
            withdraw_support(p.expired),
            409,
            transition,
        ),
        case(
            "withdrawing a proposal after it expired",
            citizen,
            withdraw(p.expired),
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
    for name in STATEFUL_CLIENT_ACTIONS {
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
            log_origin: "test.veche/log".into(),
            snapshot: None,
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
        let signed = veche::client::signed_envelope(key, action, self.clock.now(), &self.entropy)
            .open()
            .unwrap();
        match self.node.append(signed).await {
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
    let bare = BareNode::start();
    bare.act(&bare.admin, Action::DefineCategory(lighting()))
        .await;
    let moderator = bare.member(Some((Role::Moderator, None))).await;
    let roads = bare.member(Some((Role::Official, Some("roads")))).await;
    let author = bare.member(None).await;
    let on_time = bare.act(&author, filing()).await;
    let late = bare.act(&author, filing()).await;
    bare.act(&moderator, accept(on_time)).await;
    bare.act(&moderator, accept(late)).await;
    bare.act(&roads, resolve(on_time)).await;
    // Eight working days later and then some: the deadline has passed, no breach event yet.
    bare.clock.advance_milliseconds(14 * DAY_MS);
    assert!(!bare.node.ledger().complaints[&late].sla_breached);
    bare.act(&roads, resolve(late)).await;
    let ledger = bare.node.ledger();
    assert!(ledger.complaints[&late].sla_breached);
    assert!(!ledger.complaints[&on_time].sla_breached);
    let statistics = projections::statistics::complaint_statistics(&ledger);
    assert_eq!(statistics.overall.sla_breached, 1);
    assert_eq!(statistics.overall.resolved_within_sla, 1);
}

#[tokio::test]
async fn a_proposal_past_its_lifetime_refuses_withdrawals_even_before_the_expiry_event() {
    let bare = BareNode::start();
    bare.act(&bare.admin, Action::DefineCategory(lighting()))
        .await;
    let moderator = bare.member(Some((Role::Moderator, None))).await;
    let author = bare.member(None).await;
    let supporter = bare.member(None).await;
    let proposal = bare.act(&author, submission("street-lighting")).await;
    bare.act(&moderator, publish(proposal)).await;
    bare.act(&supporter, support(proposal)).await;
    // The lighting category gives proposals 30 days; no expiry event is appended here.
    bare.clock.advance_milliseconds(31 * DAY_MS);
    let size = bare.node.ledger().size;
    for (key, action) in [
        (&supporter, withdraw_support(proposal)),
        (&author, withdraw(proposal)),
        (&author, support(proposal)),
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
